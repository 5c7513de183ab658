//! Uploads: an archive streamed as a multipart upload of fixed-size parts (every part but the
//! last the same size, as R2 requires), a bounded number in flight, or one PutObject when it
//! is smaller than a part; aborted on any failure; the sha256 set afterwards by copying the
//! object onto itself (in parts above S3's single-copy limit). Also the multipart uploads a
//! killed run left, listed and aborted.

use super::errors::classify;
use super::{CONTENT_TYPE, S3Storage, SINGLE_COPY_LIMIT, to_chrono};
use crate::storage::Body;
use crate::storage::ProgressSink;
use crate::storage::PutOutcome;
use crate::storage::SHA256_METADATA_KEY;
use crate::storage::StorageError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedMultipartUpload;
use aws_sdk_s3::types::CompletedPart;
use aws_sdk_s3::types::MetadataDirective;
use bytes::Bytes;
use bytes::BytesMut;
use chrono::DateTime;
use chrono::Utc;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::task::JoinSet;

impl S3Storage {
    pub(super) async fn put_streamed(
        &self,
        key: &str,
        mut body: Body,
    ) -> Result<PutOutcome, StorageError> {
        let full = self.full_key(key);
        let size = self.upload.part_size;
        let mut leftover = BytesMut::with_capacity(size);
        let (first, ended) = fill(&mut body, &mut leftover, size).await?;
        if ended && leftover.is_empty() && first.len() < size {
            let progress = body.progress();
            let outcome = body.finish();
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .content_type(CONTENT_TYPE)
                .metadata(SHA256_METADATA_KEY, &outcome.sha256)
                .body(ByteStream::from(first))
                .send()
                .await
                .map_err(|e| self.classify("upload", &e))?;
            progress.stored(outcome.size);
            progress.completing();
            return Ok(outcome);
        }
        let upload_id = self
            .start_upload(&full, None, "start of the multipart upload")
            .await?;
        let parts = match self
            .upload_parts(&full, &upload_id, first, &mut body, leftover)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                self.abort(&full, &upload_id).await;
                return Err(e);
            }
        };
        body.progress().completing();
        let outcome = body.finish();
        let t = std::time::Instant::now();
        self.complete_upload(
            &full,
            &upload_id,
            parts,
            "completion of the multipart upload",
        )
        .await?;
        tracing::debug!(
            storage = %self.name,
            bytes = outcome.size,
            secs = t.elapsed().as_secs_f64(),
            "multipart upload completed"
        );
        let t = std::time::Instant::now();
        // Record the sha256 as metadata: copy the object onto itself with the metadata replaced.
        let copied = self
            .copy_with_sha256(&full, outcome.size, &outcome.sha256)
            .await;
        if let Err(err) = copied {
            let _ = self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await;
            return Err(err);
        }
        tracing::debug!(
            storage = %self.name,
            secs = t.elapsed().as_secs_f64(),
            "sha256 metadata recorded (object copied onto itself)"
        );
        Ok(outcome)
    }

    /// Upload parts of `first` and the rest of `body`; returns the completed parts in order.
    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Bytes,
        body: &mut Body,
        mut leftover: BytesMut,
    ) -> Result<Vec<CompletedPart>, StorageError> {
        let mut tasks: JoinSet<Result<CompletedPart, StorageError>> = JoinSet::new();
        let mut done = Vec::new();
        let mut number = 0i32;
        let mut next_part = Some(first);
        loop {
            let Some(part) = next_part.take() else { break };
            number += 1;
            if number > MAX_PARTS {
                return Err(StorageError::Permanent(format!(
                    "{}: the archive is larger than S3's {MAX_PARTS} parts of {} MiB: raise upload.part_size_mib in config.json",
                    self.describe(),
                    self.upload.part_size / (1024 * 1024)
                )));
            }
            while tasks.len() >= self.upload.parts_in_flight {
                if let Some(r) = tasks.join_next().await {
                    done.push(joined(r)??);
                }
            }
            self.spawn_part(&mut tasks, (key, upload_id), number, part, body.progress());
            let (part, ended) = fill(body, &mut leftover, self.upload.part_size).await?;
            if !part.is_empty() {
                next_part = Some(part);
            }
            if ended && leftover.is_empty() && next_part.is_none() {
                break;
            }
        }
        while let Some(r) = tasks.join_next().await {
            done.push(joined(r)??);
        }
        done.sort_by_key(|p| p.part_number);
        Ok(done)
    }

    /// Start uploading part `number` of `key` on a task of its own.
    fn spawn_part(
        &self,
        tasks: &mut JoinSet<Result<CompletedPart, StorageError>>,
        (key, upload_id): (&str, &str),
        number: i32,
        part: Bytes,
        progress: ProgressSink,
    ) {
        let len = part.len() as u64;
        let (client, bucket, key, id) = (
            self.client.clone(),
            self.bucket.clone(),
            key.to_string(),
            upload_id.to_string(),
        );
        let (who, keys) = (self.describe(), self.key_vars.clone());
        tasks.spawn(async move {
            let r = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .part_number(number)
                .body(ByteStream::from(part))
                // UNSIGNED-PAYLOAD: SigV4 would otherwise hash every part once more only to
                // sign it; the whole object's sha256 (computed while streaming, stored as
                // metadata and checked by verify and restore) is the integrity check, and
                // TLS protects the bytes in transit. Accepted by AWS, R2, B2, MinIO, e2.
                .customize()
                .disable_payload_signing()
                .send()
                .await;
            match r {
                Ok(out) => {
                    progress.stored(len);
                    Ok(CompletedPart::builder()
                        .set_e_tag(out.e_tag)
                        .part_number(number)
                        .build())
                }
                Err(e) => Err(classify(
                    &who,
                    &keys,
                    &format!("upload of part {number}"),
                    &e,
                )),
            }
            .map_err(|e| {
                tracing::debug!("{who}: part {number} failed: {e}");
                e
            })
        });
    }

    /// Copy the object `full` (of `size` bytes) onto itself with the sha256 metadata set. S3
    /// copies at most 5 GiB in one CopyObject; a larger archive is copied in parts
    /// (UploadPartCopy), server-side either way.
    async fn copy_with_sha256(
        &self,
        full: &str,
        size: u64,
        sha256: &str,
    ) -> Result<(), StorageError> {
        let what = "recording the sha256 metadata";
        if size <= self.single_copy_limit {
            return self
                .client
                .copy_object()
                .bucket(&self.bucket)
                .key(full)
                .copy_source(copy_source(&self.bucket, full))
                .metadata_directive(MetadataDirective::Replace)
                .content_type(CONTENT_TYPE)
                .metadata(SHA256_METADATA_KEY, sha256)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.classify(what, &e));
        }
        let upload_id = self.start_upload(full, Some(sha256), what).await?;
        let part = self.single_copy_limit;
        let mut parts = Vec::new();
        for (i, first) in (0..size).step_by(part as usize).enumerate() {
            let last = (first + part).min(size) - 1;
            let number = i as i32 + 1;
            let r = self
                .client
                .upload_part_copy()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(&upload_id)
                .part_number(number)
                .copy_source(copy_source(&self.bucket, full))
                .copy_source_range(format!("bytes={first}-{last}"))
                .send()
                .await;
            match r {
                Ok(out) => parts.push(
                    CompletedPart::builder()
                        .set_e_tag(out.copy_part_result.and_then(|c| c.e_tag))
                        .part_number(number)
                        .build(),
                ),
                Err(e) => {
                    self.abort(full, &upload_id).await;
                    return Err(self.classify(what, &e));
                }
            }
        }
        self.complete_upload(full, &upload_id, parts, what).await?;
        tracing::debug!(storage = %self.name, "{size} bytes copied onto themselves in {} parts", size.div_ceil(part));
        Ok(())
    }

    /// Start a multipart upload of `full` (with the sha256 metadata when given); its id.
    async fn start_upload(
        &self,
        full: &str,
        sha256: Option<&str>,
        what: &str,
    ) -> Result<String, StorageError> {
        let mut req = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .content_type(CONTENT_TYPE);
        if let Some(sha) = sha256 {
            req = req.metadata(SHA256_METADATA_KEY, sha);
        }
        let created = req.send().await.map_err(|e| self.classify(what, &e))?;
        created.upload_id.ok_or_else(|| {
            StorageError::Transient(format!("{}: no upload id in the answer", self.describe()))
        })
    }

    /// Complete a multipart upload, or abort it when that fails.
    async fn complete_upload(
        &self,
        full: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        what: &str,
    ) -> Result<(), StorageError> {
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        if let Err(e) = completed {
            self.abort(full, upload_id).await;
            return Err(self.classify(what, &e));
        }
        Ok(())
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        if let Err(e) = self.try_abort(key, upload_id).await {
            tracing::warn!(
                "{}: could not abort the multipart upload of {key}: {e}",
                self.describe(),
            );
        }
    }

    pub(super) async fn try_abort(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.classify("abort", &e))
    }

    /// The multipart uploads in progress under `prefix` (a full key prefix): key, upload id
    /// and when each was started; `None` when the server does not implement the listing
    /// (s3s-fs, some providers answer `NotImplemented`).
    pub(super) async fn unfinished_uploads(
        &self,
        prefix: &str,
    ) -> Result<Option<Vec<(String, String, Option<DateTime<Utc>>)>>, StorageError> {
        let what = "listing of unfinished multipart uploads (ListMultipartUploads)";
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) if not_implemented(&e) => return Ok(None),
                Err(e) => return Err(self.classify(what, &e)),
            };
            for u in page.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    out.push((key.to_string(), id.to_string(), to_chrono(u.initiated())));
                }
            }
            if !page.is_truncated().unwrap_or(false) || page.next_key_marker().is_none() {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
        }
        Ok(Some(out))
    }
}

/// The server answered that it does not implement the call (`NotImplemented`, HTTP 501).
fn not_implemented<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    err: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    let code = match err {
        aws_sdk_s3::error::SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    };
    code == Some("NotImplemented")
        || err
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 501)
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, StorageError> {
    r.map_err(|e| StorageError::Transient(format!("upload task failed: {e}")))
}

/// S3's limit on the parts of one multipart upload.
const MAX_PARTS: i32 = 10_000;

/// [`SINGLE_COPY_LIMIT`]; debug builds (the integration tests) may lower it with
/// `WPBACKUP_TEST_SINGLE_COPY_LIMIT` (bytes, at least 5 MiB) to copy small archives in parts.
pub(super) fn single_copy_limit() -> u64 {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var("WPBACKUP_TEST_SINGLE_COPY_LIMIT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return n.max(5 << 20);
    }
    SINGLE_COPY_LIMIT
}

/// Fill one part of exactly `size` bytes (less only at the end of the stream) from `leftover`
/// and then `body`. Returns the part and whether the stream has ended.
async fn fill(
    body: &mut Body,
    leftover: &mut BytesMut,
    size: usize,
) -> Result<(Bytes, bool), StorageError> {
    let mut ended = false;
    while leftover.len() < size {
        match body.next().await? {
            Some(chunk) => leftover.extend_from_slice(&chunk),
            None => {
                ended = true;
                break;
            }
        }
    }
    let take = leftover.len().min(size);
    Ok((leftover.split_to(take).freeze(), ended))
}

/// What the CopySource header leaves as it is in a key: RFC 3986's unreserved characters and
/// the `/` between its segments.
const COPY_SOURCE_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Percent-encode a `bucket/key` for the CopySource header.
fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE_KEEP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_is_encoded() {
        assert_eq!(copy_source("b", "p/x y+z.tar.zst"), "b/p/x%20y%2Bz.tar.zst");
        assert_eq!(
            copy_source("b", "srv/site/site_1.tar.zst"),
            "b/srv/site/site_1.tar.zst"
        );
    }

    #[tokio::test]
    async fn fill_cuts_exact_parts() {
        let (tx, mut body) = Body::channel(8);
        tokio::spawn(async move {
            for _ in 0..5 {
                tx.send(Ok(Bytes::from(vec![7u8; 3]))).await.unwrap();
            }
        });
        let mut left = BytesMut::new();
        let (a, end) = fill(&mut body, &mut left, 4).await.unwrap();
        assert_eq!((a.len(), end), (4, false));
        let mut sizes = vec![a.len()];
        loop {
            let (p, end) = fill(&mut body, &mut left, 4).await.unwrap();
            if !p.is_empty() {
                sizes.push(p.len());
            }
            if end && left.is_empty() {
                break;
            }
        }
        assert_eq!(sizes, vec![4, 4, 4, 3]);
    }
}

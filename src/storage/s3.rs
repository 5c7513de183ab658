//! S3-compatible storage (AWS S3, iDrive e2, Backblaze B2, Cloudflare R2, Wasabi, MinIO, ...)
//! through `aws-sdk-s3`.
//!
//! The client is built in code, not from the environment, with the settings non-AWS providers
//! accept: checksums only when required (R2, B2, iDrive e2, MinIO reject the SDK's default CRC32
//! trailers), stalled-stream protection off for uploads (our own timeouts take its place), path
//! style when configured, and bounded retries and timeouts.
//!
//! Uploads are streamed as multipart uploads of fixed-size parts (every part but the last the
//! same size, as R2 requires), a bounded number in flight; an object smaller than one part is
//! sent with a single PutObject. On any failure the multipart upload is aborted, so nothing is
//! left looking like a finished archive. The sha256 of the whole object is known only at the
//! end, so after a multipart upload the object is copied onto itself with the metadata set.
//! A run that died mid-upload leaves its multipart upload behind: a later run lists the uploads
//! under this server's keys (ListMultipartUploads) and aborts the old ones
//! ([`super::leftovers`]).
//! Every SDK error goes through one [`S3Storage::classify`] into the [`StorageError`] classes.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use tokio::task::JoinSet;

use super::leftovers::{self, Cleanup, Removed};
use super::{
    Body, Download, ObjectInfo, ProgressSink, PutOutcome, SHA256_METADATA_KEY, Storage,
    StorageError,
};
use crate::config::{S3Config, UploadSettings};

const CONTENT_TYPE: &str = "application/zstd";

pub struct S3Storage {
    name: String,
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: String,
    /// "ACCESS_VAR and SECRET_VAR in .env": where a rejected key is fixed.
    key_vars: String,
    upload: UploadSettings,
    /// The largest object one CopyObject may copy (S3: 5 GiB).
    single_copy_limit: u64,
}

/// S3's limit for one CopyObject, and for one UploadPartCopy.
const SINGLE_COPY_LIMIT: u64 = 5 << 30;

impl S3Storage {
    pub fn new(name: &str, cfg: &S3Config) -> anyhow::Result<S3Storage> {
        let creds = Credentials::new(
            cfg.access_key.expose(),
            cfg.secret_key.expose(),
            None,
            None,
            "wpbackup",
        );
        let u = cfg.upload;
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(Region::new(cfg.region.clone()))
            .force_path_style(cfg.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .stalled_stream_protection(
                StalledStreamProtectionConfig::enabled()
                    .upload_enabled(false)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(u.max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(u.connect_timeout_secs))
                    .read_timeout(Duration::from_secs(u.timeout_secs))
                    .operation_attempt_timeout(Duration::from_secs(u.timeout_secs))
                    .build(),
            );
        if let Some(ep) = &cfg.endpoint {
            b = b.endpoint_url(ep);
        }
        let endpoint = cfg
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", cfg.region));
        Ok(S3Storage {
            name: name.to_string(),
            client: Client::from_conf(b.build()),
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.clone(),
            endpoint,
            key_vars: format!("{} and {} in .env", cfg.key_vars.0, cfg.key_vars.1),
            upload: u,
            single_copy_limit: single_copy_limit(),
        })
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn describe(&self) -> String {
        format!(
            "storage {} ({}, bucket {})",
            self.name, self.endpoint, self.bucket
        )
    }

    fn classify<E>(
        &self,
        what: &str,
        err: &SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(&self.describe(), &self.key_vars, what, err)
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

    async fn try_abort(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
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
    /// and when each was started.
    async fn unfinished_uploads(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String, Option<DateTime<Utc>>)>, StorageError> {
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
                .await
                .map_err(|e| self.classify(what, &e))?;
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
        Ok(out)
    }
}

/// One place that turns an SDK error into a [`StorageError`] a person can act on.
fn classify<E>(
    who: &str,
    keys: &str,
    what: &str,
    err: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::TimeoutError(_) => StorageError::Transient(format!("{who}: {what}: timed out")),
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            StorageError::Transient(format!(
                "{who}: {what}: cannot reach the endpoint: {}",
                short(&chain(err))
            ))
        }
        _ => {
            let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
            let (code, message) = match err {
                SdkError::ServiceError(e) => (
                    e.err().code().map(str::to_string),
                    e.err().message().map(str::to_string),
                ),
                _ => (None, None),
            };
            let code_s = code.clone().unwrap_or_else(|| format!("HTTP {status}"));
            match (code.as_deref(), status) {
                // HeadObject answers a missing key with a bare 404 that the SDK names
                // "NotFound" (there is no body to carry "NoSuchKey").
                (Some("NoSuchKey" | "NotFound"), _) => {
                    StorageError::NotFound(format!("{who}: {what}: no such object"))
                }
                // A ranged read's If-Match no longer holds: the object was replaced or
                // removed after the download started.
                (Some("PreconditionFailed"), _) | (_, 412) => {
                    StorageError::Transient(format!("{who}: {what}: {CHANGED_DURING_DOWNLOAD}"))
                }
                (Some("NoSuchBucket"), _) => StorageError::Permanent(format!(
                    "{who}: the bucket does not exist: create it or fix \"bucket\" in config.json"
                )),
                (
                    Some(
                        "InvalidAccessKeyId"
                        | "SignatureDoesNotMatch"
                        | "AccessDenied"
                        | "InvalidToken",
                    ),
                    _,
                )
                | (None, 401 | 403) => StorageError::Permanent(format!(
                    "{who}: {what}: credentials rejected ({code_s}): check {keys}"
                )),
                (None, 404) => {
                    StorageError::NotFound(format!("{who}: {what}: not found (HTTP 404)"))
                }
                (_, 500..=599) | (Some("SlowDown" | "RequestTimeout" | "InternalError"), _) => {
                    StorageError::Transient(format!("{who}: {what}: server error ({code_s})"))
                }
                _ => StorageError::Permanent(match message {
                    Some(m) => format!("{who}: {what}: {code_s}: {}", short(&m)),
                    // No S3 error in the answer (an unreadable one, say): what the SDK saw.
                    None => format!("{who}: {what}: {code_s}: {}", short(&chain(err))),
                }),
            }
        }
    }
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, StorageError> {
    r.map_err(|e| StorageError::Transient(format!("upload task failed: {e}")))
}

/// An error and its sources, as one line of their messages (no Debug dumps).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let msg = e.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// Keep error text to one readable line.
fn short(s: &str) -> String {
    let s = s.replace('\n', " ");
    if s.len() > 400 {
        let mut end = 400;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s
    }
}

/// S3's limit on the parts of one multipart upload.
const MAX_PARTS: i32 = 10_000;

/// [`SINGLE_COPY_LIMIT`]; debug builds (the integration tests) may lower it with
/// `WPBACKUP_TEST_SINGLE_COPY_LIMIT` (bytes, at least 5 MiB) to copy small archives in parts.
fn single_copy_limit() -> u64 {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var("WPBACKUP_TEST_SINGLE_COPY_LIMIT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return n.max(5 << 20);
    }
    SINGLE_COPY_LIMIT
}

/// Ranged GETs downloading at once, and the size of each: 32 MiB in flight at most. Measured
/// restoring the full benchmark workload (877 MiB) from s3s-fs into tmpfs: one GET stream
/// 10.0 s; 4 ranges of 8 MiB 5.7 s (84 MiB peak RSS); 8 of 8 MiB 4.6 s (140 MiB); 8 of 4 MiB
/// 4.5 to 5.2 s (85 MiB). `cat | zstd -d | tar -x` of the object's file took 2.3 s.
const RANGES_IN_FLIGHT: usize = 8;
const RANGE_SIZE: u64 = 4 << 20;

/// Why a download in ranges stopped when its object changed under it.
const CHANGED_DURING_DOWNLOAD: &str = "the archive was replaced or removed while it was being \
     downloaded (its ETag changed): nothing of the new one was mixed in; try again";

/// One object downloaded in ranges.
struct RangedObject {
    client: Client,
    bucket: String,
    key: String,
    /// Every range must come from this version of the object (`If-Match`).
    etag: Option<String>,
    /// For messages: the storage, where its keys are set, and the download.
    who: String,
    keys: String,
    what: String,
}

impl RangedObject {
    /// Bytes `first..=last`, whole or an error.
    async fn get(&self, first: u64, last: u64) -> Result<Vec<Bytes>, StorageError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={first}-{last}"))
            .set_if_match(self.etag.clone())
            .send()
            .await
            .map_err(|e| classify(&self.who, &self.keys, &self.what, &e))?;
        // A provider that ignores If-Match (s3s-fs does) still says which version answered.
        if let (Some(want), Some(got)) = (&self.etag, out.e_tag())
            && etag_value(want) != etag_value(got)
        {
            return Err(StorageError::Transient(format!(
                "{}: {} (bytes {first}-{last}): {CHANGED_DURING_DOWNLOAD}",
                self.who, self.what
            )));
        }
        let body_error = |msg: String| {
            StorageError::Transient(format!(
                "{}: {} (bytes {first}-{last}): {msg}",
                self.who, self.what
            ))
        };
        let segments: Vec<Bytes> = out
            .body
            .collect()
            .await
            .map_err(|e| body_error(e.to_string()))?
            .into_segments()
            .collect();
        let got: u64 = segments.iter().map(|b| b.len() as u64).sum();
        if got != last - first + 1 {
            return Err(body_error(format!(
                "{got} bytes arrived instead of {}",
                last - first + 1
            )));
        }
        Ok(segments)
    }
}

/// An ETag without what may differ in how one provider writes the same one (quotes, `W/`).
fn etag_value(etag: &str) -> &str {
    etag.trim_start_matches("W/").trim_matches('"')
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

/// Percent-encode a `bucket/key` for the CopySource header.
fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn to_chrono(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

#[async_trait]
impl Storage for S3Storage {
    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> (String, String) {
        (self.endpoint.clone(), self.bucket.clone())
    }

    async fn check(&self) -> Result<(), StorageError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => match self.classify("check", &e) {
                // HeadBucket has no body: a 404 is the bucket itself.
                StorageError::NotFound(_) => Err(StorageError::Permanent(format!(
                    "{}: the bucket does not exist: create it or fix \"bucket\" in config.json",
                    self.describe()
                ))),
                // Some keys may not call HeadBucket but may list: try that before giving up.
                StorageError::Permanent(first) => {
                    match self
                        .client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(&self.prefix)
                        .max_keys(1)
                        .send()
                        .await
                    {
                        Ok(_) => Ok(()),
                        Err(e2) => match self.classify("check", &e2) {
                            StorageError::NotFound(_) => Err(StorageError::Permanent(first)),
                            other => Err(other),
                        },
                    }
                }
                other => Err(other),
            },
        }
    }

    async fn put(&self, key: &str, mut body: Body) -> Result<PutOutcome, StorageError> {
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

    async fn get(&self, key: &str) -> Result<Download, StorageError> {
        let full = self.full_key(key);
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.classify(&format!("download of {key}"), &e))?;
        let size = head.content_length.unwrap_or(0).max(0) as u64;
        let range = RANGE_SIZE;
        if size <= range {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
                .map_err(|e| self.classify(&format!("download of {key}"), &e))?;
            return Ok(Box::pin(out.body.into_async_read()));
        }
        // Ranges, several in flight, handed on in order: one GET stream is
        // slow on most providers (and on s3s-fs), and a failed range is retried alone
        // instead of the whole archive. `If-Match` keeps every range from the same object.
        let ranges = (0..size)
            .step_by(range as usize)
            .map(move |start| (start, (start + range).min(size) - 1));
        let object = std::sync::Arc::new(RangedObject {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: full,
            etag: head.e_tag,
            who: self.describe(),
            keys: self.key_vars.clone(),
            what: format!("download of {key}"),
        });
        let attempts = self.upload.max_attempts;
        tracing::debug!(storage = %self.name, size, range, "downloading {key} in ranges");
        let chunks = futures_util::stream::iter(ranges)
            .map(move |(first, last)| {
                let object = object.clone();
                async move {
                    let mut attempt = 1;
                    loop {
                        match object.get(first, last).await {
                            Ok(data) => return Ok::<_, std::io::Error>(data),
                            Err(StorageError::Transient(msg)) if attempt < attempts => {
                                tracing::debug!("{msg}; trying again");
                                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt)))
                                    .await;
                                attempt += 1;
                            }
                            Err(e) => return Err(std::io::Error::other(e.to_string())),
                        }
                    }
                }
            })
            .buffered(RANGES_IN_FLIGHT)
            // A range arrives as the segments the connection read: passed on as they are,
            // not copied into one buffer.
            .flat_map(|r| {
                futures_util::stream::iter(match r {
                    Ok(segments) => segments.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            });
        Ok(Box::pin(tokio_util::io::StreamReader::new(chunks)))
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.classify(&format!("head of {key}"), &e))?;
        Ok(ObjectInfo {
            key: key.to_string(),
            size: out.content_length.unwrap_or(0).max(0) as u64,
            last_modified: to_chrono(out.last_modified.as_ref()),
            sha256: out
                .metadata
                .as_ref()
                .and_then(|m| m.get(SHA256_METADATA_KEY).cloned()),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(self.full_key(prefix))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.classify("listing", &e))?;
            for obj in page.contents() {
                let Some(k) = obj.key() else { continue };
                let Some(rel) = k.strip_prefix(&self.prefix) else {
                    continue;
                };
                out.push(ObjectInfo {
                    key: rel.to_string(),
                    size: obj.size().unwrap_or(0).max(0) as u64,
                    last_modified: to_chrono(obj.last_modified()),
                    sha256: None,
                });
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn clean_leftovers(
        &self,
        server_id: &str,
        min_age: Duration,
    ) -> Result<Cleanup, StorageError> {
        let prefix = self.full_key(&super::catalog::prefix(server_id, None));
        let now = Utc::now();
        let mut cleanup = Cleanup::default();
        for (full, id, started) in self.unfinished_uploads(&prefix).await? {
            let Some(key) = full.strip_prefix(&self.prefix) else {
                continue;
            };
            let Some(age) = started.and_then(|t| leftovers::stale(t, now, min_age)) else {
                continue;
            };
            if !leftovers::is_ours(key, server_id) {
                continue;
            }
            match self.try_abort(&full, &id).await {
                Ok(()) => cleanup.removed.push(Removed {
                    key: key.to_string(),
                    age,
                }),
                Err(e) => cleanup.failed.push(format!(
                    "cannot abort the unfinished multipart upload of {key} (started {} ago): {e}",
                    leftovers::human(age)
                )),
            }
        }
        Ok(cleanup)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        // One object at a time: DeleteObjects sends a CRC32 that MinIO and others reject.
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.classify(&format!("delete of {key}"), &e) {
                StorageError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
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

    #[test]
    fn etags_compare_without_quotes_or_weakness() {
        assert_eq!(etag_value("\"abc-2\""), etag_value("abc-2"));
        assert_eq!(etag_value("W/\"abc\""), "abc");
        assert_ne!(etag_value("\"abc\""), etag_value("\"abd\""));
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

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
//!
//! Here: the client and the [`Storage`] trait; the multipart upload is [`upload`], the ranged
//! download [`download`], the error classes [`errors`].

mod download;
mod errors;
mod upload;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use chrono::{DateTime, Utc};

use super::leftovers::{self, Cleanup, Removed};
use super::{Body, Download, ObjectInfo, PutOutcome, SHA256_METADATA_KEY, Storage, StorageError};
use crate::config::{S3Config, UploadSettings};
use errors::classify;
use upload::single_copy_limit;

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

    async fn put(&self, key: &str, body: Body) -> Result<PutOutcome, StorageError> {
        self.put_streamed(key, body).await
    }

    async fn get(&self, key: &str) -> Result<Download, StorageError> {
        self.get_ranged(key).await
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
                if out.len() >= super::MAX_LISTED {
                    return Err(super::too_many_listed(&self.name, prefix));
                }
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
        let Some(uploads) = self.unfinished_uploads(&prefix).await? else {
            cleanup.unsupported = Some(format!(
                "{}: listing of unfinished multipart uploads (ListMultipartUploads): not \
                 implemented by this server (NotImplemented)",
                self.describe()
            ));
            return Ok(cleanup);
        };
        for (full, id, started) in uploads {
            let Some(key) = full.strip_prefix(&self.prefix) else {
                continue;
            };
            let Some(age) = started.and_then(|t| leftovers::stale(t, now, min_age)) else {
                continue;
            };
            if !super::catalog::is_ours(key, server_id) {
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

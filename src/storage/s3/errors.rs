//! Every SDK error turned into the [`StorageError`] class a caller acts on (transient: try
//! again or fail over; permanent: say what to fix; not found), in one line a person can read.

use crate::storage::StorageError;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::error::SdkError;

/// Why a download in ranges stopped when its object changed under it.
pub(super) const CHANGED_DURING_DOWNLOAD: &str = "the archive was replaced or removed while it was being \
     downloaded (its ETag changed): nothing of the new one was mixed in; try again";

/// One place that turns an SDK error into a [`StorageError`] a person can act on.
pub(super) fn classify<E>(
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
pub(super) fn short(s: &str) -> String {
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

//! The three backends of the storage suite: a local directory, s3s-fs (a server per test: it
//! starts in a tenth of a second, and its unfinished uploads can only be seen on its disk)
//! and moto (one server shared by the tests running at once, a prefix per test).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use tempfile::TempDir;
use wpbackup::config::{S3Config, StorageConfig, StorageKind, UploadSettings};
use wpbackup::secret::Secret;
use wpbackup::storage::{self, Storage};

use super::{Backend, ChecksKeys, ListsUploads, Stalls, upload_settings};
use crate::util::moto::{self, MotoServer};
use crate::util::s3::S3Server;
use crate::util::{Shared, freeze};

/// The `.env` variables the suite's S3 keys are said to come from (errors name them).
pub const ACCESS_VAR: &str = "SUITE_ACCESS_KEY";
pub const SECRET_VAR: &str = "SUITE_SECRET_KEY";
const BUCKET: &str = "wpb-suite";
const MISSING_BUCKET: &str = "wpb-no-such-bucket";

fn open(name: &str, kind: StorageKind) -> Box<dyn Storage> {
    let cfg = StorageConfig {
        name: name.to_string(),
        priority: 1,
        kind,
    };
    storage::open(&cfg).unwrap_or_else(|e| panic!("storage {name}: {e:#}"))
}

/// An S3 storage on `endpoint`, with the keys and upload settings given.
struct S3Place<'a> {
    name: &'a str,
    endpoint: &'a str,
    bucket: &'a str,
    prefix: &'a str,
    keys: (&'a str, &'a str),
}

impl S3Place<'_> {
    fn open(&self, upload: UploadSettings) -> Box<dyn Storage> {
        let cfg = S3Config {
            endpoint: Some(self.endpoint.to_string()),
            region: "us-east-1".to_string(),
            bucket: self.bucket.to_string(),
            prefix: self.prefix.to_string(),
            path_style: true,
            access_key: Secret::new(self.keys.0),
            secret_key: Secret::new(self.keys.1),
            key_vars: (ACCESS_VAR.to_string(), SECRET_VAR.to_string()),
            upload,
        };
        open(self.name, StorageKind::S3(Box::new(cfg)))
    }
}

/// A storage on a server of its own that the test can stop answering.
pub struct Stalling {
    pub storage: Box<dyn Storage>,
    pid: u32,
    _server: Box<dyn Send + Sync>,
}

impl Stalling {
    /// From now on the server accepts connections and answers nothing.
    pub fn freeze(&self) {
        freeze(self.pid);
    }
}

// --- local -----------------------------------------------------------------------------

pub struct Local {
    dir: TempDir,
    root: PathBuf,
}

impl Backend for Local {
    fn new(test: &str) -> Local {
        let dir = tempfile::Builder::new()
            .prefix(&format!("wpb-suite-{test}"))
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("archives");
        Local { dir, root }
    }

    fn storage(&self) -> Box<dyn Storage> {
        open(
            "suite-local",
            StorageKind::Local {
                path: self.root.clone(),
            },
        )
    }

    /// Every file that is not a listed archive or the checksum file beside one.
    async fn debris(&self) -> Vec<String> {
        let mut files = Vec::new();
        walk(&self.root, &mut files);
        let mut out: Vec<String> = files
            .iter()
            .filter(|f| {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                name.starts_with('.')
                    || name
                        .strip_suffix(".sha256")
                        .is_some_and(|archive| !f.with_file_name(archive).is_file())
            })
            .map(|f| {
                f.strip_prefix(&self.root)
                    .unwrap_or(f)
                    .display()
                    .to_string()
            })
            .collect();
        out.sort();
        out
    }

    fn missing_bucket(&self) -> (Box<dyn Storage>, String) {
        // A directory that cannot be made: one of its parents is a file.
        let file = self.dir.path().join("not-a-directory");
        std::fs::write(&file, b"").expect("plain file");
        let path = file.join("archives");
        let st = open("suite-local", StorageKind::Local { path: path.clone() });
        (st, path.display().to_string())
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

impl ListsUploads for Local {
    /// The partial file an upload writes before it is renamed into place, never renamed.
    async fn leave_unfinished(&self, key: &str) {
        let path = self.root.join(key);
        let dir = path.parent().expect("key with a directory");
        std::fs::create_dir_all(dir).expect("mkdir");
        let name = path.file_name().expect("file name").to_string_lossy();
        std::fs::write(
            dir.join(format!(".{name}.partial-4242")),
            b"half an archive",
        )
        .expect("partial file");
    }
}

// --- s3s-fs ----------------------------------------------------------------------------

const S3S_ACCESS: &str = "suite-access";
const S3S_SECRET: &str = "suite-secret-Zk4";

pub struct S3s {
    server: S3Server,
}

impl S3s {
    fn place(&self, bucket: &'static str, secret: &'static str) -> S3Place<'_> {
        S3Place {
            name: "suite-s3s",
            endpoint: &self.server.endpoint,
            bucket,
            prefix: "backups/",
            keys: (S3S_ACCESS, secret),
        }
    }
}

impl Backend for S3s {
    const REFUSES_UPLOAD_TO_MISSING_BUCKET: bool = false;

    fn new(_test: &str) -> S3s {
        let server = S3Server::start(S3S_ACCESS, S3S_SECRET);
        server.create_bucket(BUCKET);
        S3s { server }
    }

    fn storage(&self) -> Box<dyn Storage> {
        self.place(BUCKET, S3S_SECRET).open(upload_settings())
    }

    /// s3s-fs keeps an unfinished upload as `.upload-ID.json` and its parts as
    /// `.upload_id-ID.part-N` in its root.
    async fn debris(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.server.root)
            .expect("s3s-fs root")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload"))
            .collect();
        out.sort();
        out
    }

    fn missing_bucket(&self) -> (Box<dyn Storage>, String) {
        let st = self
            .place(MISSING_BUCKET, S3S_SECRET)
            .open(upload_settings());
        (st, MISSING_BUCKET.to_string())
    }
}

impl ChecksKeys for S3s {
    fn wrong_key(&self) -> Box<dyn Storage> {
        self.place(BUCKET, "not-the-secret").open(upload_settings())
    }
}

impl Stalls for S3s {
    fn stalling(&self, upload: UploadSettings) -> Stalling {
        let server = S3Server::start(S3S_ACCESS, S3S_SECRET);
        server.create_bucket(BUCKET);
        let storage = S3Place {
            endpoint: &server.endpoint,
            ..self.place(BUCKET, S3S_SECRET)
        }
        .open(upload);
        Stalling {
            storage,
            pid: server.pid().expect("s3s-fs pid"),
            _server: Box::new(server),
        }
    }
}

// --- moto ------------------------------------------------------------------------------

static MOTO: Shared<MotoServer> = Shared::new();

pub struct Moto {
    server: Arc<MotoServer>,
    prefix: String,
    client: aws_sdk_s3::Client,
}

impl Moto {
    fn place(&self, bucket: &'static str) -> S3Place<'_> {
        S3Place {
            name: "suite-moto",
            endpoint: &self.server.endpoint,
            bucket,
            prefix: &self.prefix,
            keys: (moto::ACCESS_KEY, moto::SECRET_KEY),
        }
    }
}

/// A plain S3 client of moto, to look at what the storage cannot show.
fn raw_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(
            moto::ACCESS_KEY,
            moto::SECRET_KEY,
            None,
            None,
            "suite",
        ))
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

impl Backend for Moto {
    fn new(test: &str) -> Moto {
        let server = MOTO.get(|| MotoServer::start(&[BUCKET]));
        let client = raw_client(&server.endpoint);
        Moto {
            server,
            prefix: format!("{test}/"),
            client,
        }
    }

    fn storage(&self) -> Box<dyn Storage> {
        self.place(BUCKET).open(upload_settings())
    }

    /// The multipart uploads in progress under the test's prefix (ListMultipartUploads).
    async fn debris(&self) -> Vec<String> {
        let page = self
            .client
            .list_multipart_uploads()
            .bucket(BUCKET)
            .prefix(&self.prefix)
            .send()
            .await
            .expect("ListMultipartUploads on moto");
        let mut out: Vec<String> = page
            .uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_string))
            .collect();
        out.sort();
        out
    }

    fn missing_bucket(&self) -> (Box<dyn Storage>, String) {
        let st = self.place(MISSING_BUCKET).open(upload_settings());
        (st, MISSING_BUCKET.to_string())
    }
}

impl ListsUploads for Moto {
    /// A multipart upload started, one part sent, never completed nor aborted.
    async fn leave_unfinished(&self, key: &str) {
        let full = format!("{}{key}", self.prefix);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(&full)
            .send()
            .await
            .expect("CreateMultipartUpload");
        let id = created.upload_id().expect("upload id");
        self.client
            .upload_part()
            .bucket(BUCKET)
            .key(&full)
            .upload_id(id)
            .part_number(1)
            .body(b"half an archive".to_vec().into())
            .send()
            .await
            .expect("UploadPart");
    }
}

impl Stalls for Moto {
    fn stalling(&self, upload: UploadSettings) -> Stalling {
        let server = MotoServer::start(&[BUCKET]);
        let storage = S3Place {
            endpoint: &server.endpoint,
            ..self.place(BUCKET)
        }
        .open(upload);
        Stalling {
            storage,
            pid: server.pid().expect("moto pid"),
            _server: Box::new(server),
        }
    }
}

//! The cases of the storage suite, each written once for every backend.

use super::*;

/// An archive's key as backups make them (`{server}/{site}/{site}_{time}.tar.zst`).
fn archive_key(site: &str, minute: usize) -> String {
    format!(
        "srv/{site}/{site}_20260101T{:02}{:02}00Z.tar.zst",
        minute / 60,
        minute % 60
    )
}

/// `got` is `want`, byte for byte (compared by size and hash: no megabytes in the message).
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(
        (got.len(), sha256(got)),
        (want.len(), sha256(want)),
        "{what}: not the bytes stored"
    );
}

/// Fail on a hang: far longer than any configured timeout of the suite, it catches only a
/// call that never returns, and measures nothing.
async fn no_hang<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(300), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after 300 s: hangs"))
}

/// What goes up comes down whole, and the outcome of the upload says what was stored: an
/// empty archive, one byte, one smaller than a part, and exactly one part's size (the
/// boundary between a single PutObject and a multipart upload).
pub async fn round_trip<B: Backend>(b: &B) {
    let st = b.storage();
    st.check().await.expect("check of a working storage");
    for (i, len) in [0, 1, 300_000, PART].into_iter().enumerate() {
        let key = archive_key("blog", i);
        let bytes = noise(i as u64, len);
        let out = put(&*st, &key, &bytes).await;
        assert_eq!(
            (out.size, out.sha256),
            (len as u64, sha256(&bytes)),
            "{key}"
        );
        let got = read(&*st, &key).await.unwrap_or_else(|e| panic!("{e}"));
        assert_same(&got, &bytes, &key);
    }
    assert_eq!(b.debris().await, Vec::<String>::new());
}

/// Restore reads an archive in ranges, several at once (S3), or as a file (local): an
/// archive of more ranges than are in flight comes down whole; replaced while it downloads,
/// it comes down as the old archive whole or as an error naming it, never as a mix of both.
pub async fn ranged_get<B: Backend>(b: &B) {
    let st = b.storage();
    let key = archive_key("blog", 1);
    let len = RANGE * (RANGES_IN_FLIGHT + 1) + 1;
    let old = noise(1, len);
    put(&*st, &key, &old).await;
    let got = read(&*st, &key).await.unwrap_or_else(|e| panic!("{e}"));
    assert_same(&got, &old, "download in ranges");

    let mut download = st.get(&key).await.expect("get");
    let mut got = vec![0u8; 1];
    download.read_exact(&mut got).await.expect("first byte");
    // The ranges after the first eight are asked for only once the first one is read.
    put(&*st, &key, &noise(2, len)).await;
    match download.read_to_end(&mut got).await {
        Ok(_) => assert_same(&got, &old, "a download of an archive replaced meanwhile"),
        Err(e) => assert_names(&e.to_string(), &key),
    }
}

/// Listing gives every key under a prefix, past S3's pages of 1,000 keys, with its size;
/// a prefix is a string prefix, not a directory; a prefix with nothing under it is empty.
pub async fn listing_pages<B: Backend>(b: &B) {
    let st = b.storage();
    let all: Vec<String> = (0..1_100)
        .map(|i| archive_key(["blog", "shop"][i % 2], i))
        .collect();
    let st_ref = &*st;
    let puts = all.iter().map(|k| put(st_ref, k, k.as_bytes()));
    futures_util::StreamExt::collect::<Vec<_>>(futures_util::StreamExt::buffer_unordered(
        futures_util::stream::iter(puts),
        16,
    ))
    .await;
    let mut want = all.clone();
    want.sort();
    let listed = st.list("").await.expect("list");
    assert!(listed.iter().all(|o| o.size == o.key.len() as u64));
    assert_eq!(keys(&*st, "").await, want);
    let shop: Vec<String> = want
        .iter()
        .filter(|k| k.starts_with("srv/shop/"))
        .cloned()
        .collect();
    assert_eq!(shop.len(), 550);
    assert_eq!(keys(&*st, "srv/shop/").await, shop);
    let first_hour: Vec<String> = want
        .iter()
        .filter(|k| k.starts_with("srv/blog/blog_20260101T00"))
        .cloned()
        .collect();
    assert_eq!(first_hour.len(), 30);
    assert_eq!(keys(&*st, "srv/blog/blog_20260101T00").await, first_hour);
    assert_eq!(keys(&*st, "srv/nothing/").await, Vec::<String>::new());
}

/// Head gives an archive's size, time and the sha256 recorded with it; a missing archive is
/// "not found" (not a broken storage), naming the key, for head and for get.
pub async fn head<B: Backend>(b: &B) {
    let st = b.storage();
    let key = archive_key("blog", 2);
    let out = put(&*st, &key, &noise(2, 1000)).await;
    let info = st.head(&key).await.expect("head");
    assert_eq!(
        (info.key.as_str(), info.size, info.sha256.as_deref()),
        (key.as_str(), 1000, Some(out.sha256.as_str()))
    );
    assert!(info.last_modified.is_some());
    let missing = archive_key("blog", 3);
    match st.head(&missing).await {
        Err(StorageError::NotFound(msg)) => assert_names(&msg, &missing),
        other => panic!("head of a missing archive: {other:?}"),
    }
    match st.get(&missing).await {
        Err(StorageError::NotFound(msg)) => assert_names(&msg, &missing),
        Err(e) => panic!("get of a missing archive: {e:?}"),
        Ok(_) => panic!("get of a missing archive succeeded"),
    }
}

/// A deleted archive is gone (with its checksum file); deleting it again is no error.
pub async fn delete<B: Backend>(b: &B) {
    let st = b.storage();
    let key = archive_key("blog", 4);
    let kept = archive_key("blog", 5);
    put(&*st, &key, &noise(4, 1000)).await;
    put(&*st, &kept, &noise(5, 10)).await;
    st.delete(&key).await.expect("delete");
    assert!(matches!(
        st.head(&key).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(st.get(&key).await, Err(StorageError::NotFound(_))));
    assert_eq!(keys(&*st, "").await, vec![kept]);
    assert_eq!(b.debris().await, Vec::<String>::new());
    st.delete(&key).await.expect("delete of a missing archive");
}

/// An archive of several parts (the last one shorter) is stored whole, with its sha256
/// recorded, and no unfinished upload is left.
pub async fn multipart<B: Backend>(b: &B) {
    let st = b.storage();
    let key = archive_key("blog", 6);
    let bytes = noise(6, 2 * PART + 12_345);
    let out = put(&*st, &key, &bytes).await;
    assert_eq!(out.sha256, sha256(&bytes));
    let info = st.head(&key).await.expect("head");
    assert_eq!(
        (info.size, info.sha256),
        (bytes.len() as u64, Some(out.sha256))
    );
    let got = read(&*st, &key).await.unwrap_or_else(|e| panic!("{e}"));
    assert_same(&got, &bytes, "multipart archive");
    assert_eq!(b.debris().await, Vec::<String>::new());
}

/// An upload whose producer fails (the dump breaks) leaves nothing: no object, no unfinished
/// multipart upload, no partial file; the error is the producer's. Midway through a
/// multipart upload (two parts sent, the third filling), and before the first part is full.
pub async fn aborted_upload<B: Backend>(b: &B) {
    let st = b.storage();
    let reason = "mariadb-dump exited with status 2";
    for (i, len) in [2 * PART + PART / 2, 1000].into_iter().enumerate() {
        let key = archive_key("blog", 7 + i);
        let err = st
            .put(&key, body(noise(7, len), Some(reason)))
            .await
            .expect_err("an upload whose producer failed");
        assert!(err.is_source(), "{err}");
        assert_names(&err.to_string(), reason);
        assert_nothing_left(b, &*st, &key).await;
    }
}

/// A bucket (or directory) that does not exist: the pre-flight check and an upload fail with
/// an error that names the storage and the bucket.
pub async fn missing_bucket<B: Backend>(b: &B) {
    let (st, bucket) = b.missing_bucket();
    let err = st.check().await.expect_err("check of a missing bucket");
    assert!(!err.is_source(), "{err}");
    assert_names(&err.to_string(), st.name());
    assert_names(&err.to_string(), &bucket);
    if !B::REFUSES_UPLOAD_TO_MISSING_BUCKET {
        return;
    }
    let err = st
        .put(&archive_key("blog", 9), body(noise(9, 1000), None))
        .await
        .expect_err("upload into a missing bucket");
    assert_names(&err.to_string(), st.name());
    assert_names(&err.to_string(), &bucket);
}

/// A wrong secret key: the check and an upload fail as "credentials rejected", permanently,
/// naming the storage and the .env variables to fix; nothing is stored.
pub async fn wrong_key<B: ChecksKeys>(b: &B) {
    let st = b.wrong_key();
    let err = st.check().await.expect_err("check with a wrong key");
    assert!(matches!(err, StorageError::Permanent(_)), "{err:?}");
    for what in [st.name(), "credentials rejected", backends::SECRET_VAR] {
        assert_names(&err.to_string(), what);
    }
    let key = archive_key("blog", 10);
    let err = st
        .put(&key, body(noise(10, PART + 1), None))
        .await
        .expect_err("upload with a wrong key");
    assert!(matches!(err, StorageError::Permanent(_)), "{err:?}");
    assert_names(&err.to_string(), "credentials rejected");
    assert_nothing_left(b, &*b.storage(), &key).await;
}

/// A server that stops answering (SIGSTOP: connections still accepted, nothing sent back):
/// a download under way, the pre-flight check and an upload each end with a "timed out"
/// error naming the storage, after the configured timeouts, instead of hanging.
pub async fn stalled_server<B: Stalls>(b: &B) {
    let upload = UploadSettings {
        connect_timeout_secs: 2,
        timeout_secs: 2,
        max_attempts: 2,
        ..upload_settings()
    };
    let stalling = b.stalling(upload);
    let st = &*stalling.storage;
    let key = archive_key("blog", 11);
    put(st, &key, &noise(11, RANGE + 1)).await;
    let mut download = st.get(&key).await.expect("get");
    stalling.freeze();
    let mut got = Vec::new();
    let read = no_hang("download", download.read_to_end(&mut got)).await;
    let err = read
        .expect_err("download from a stalled server")
        .to_string();
    assert_names(&err, "timed out");
    assert_names(&err, st.name());
    let err = no_hang("check", st.check()).await.expect_err("check");
    assert!(matches!(err, StorageError::Transient(_)), "{err:?}");
    assert_names(&err.to_string(), "timed out");
    let key = archive_key("blog", 12);
    let up = st.put(&key, body(noise(12, 1000), None));
    let err = no_hang("upload", up).await.expect_err("upload");
    assert!(matches!(err, StorageError::Transient(_)), "{err:?}");
    assert_names(&err.to_string(), "timed out");
}

/// What a killed run left unfinished under this server's archive keys is removed by the next
/// run's cleanup; anything else (another server's upload, a key that is not an archive's) is
/// left alone.
pub async fn leftovers_of_a_killed_run<B: ListsUploads>(b: &B) {
    let st = b.storage();
    let ours = archive_key("blog", 13);
    let others = [
        "srv/blog/notes.txt",
        "other/blog/blog_20260101T030000Z.tar.zst",
    ];
    b.leave_unfinished(&ours).await;
    for k in others {
        b.leave_unfinished(k).await;
    }
    assert_eq!(b.debris().await.len(), 3, "{:?}", b.debris().await);
    let cleanup = st
        .clean_leftovers("srv", Duration::ZERO)
        .await
        .expect("cleanup");
    let removed: Vec<&str> = cleanup.removed.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(removed, vec![ours.as_str()]);
    assert!(cleanup.failed.is_empty(), "{:?}", cleanup.failed);
    assert_eq!(b.debris().await.len(), 2, "{:?}", b.debris().await);
}

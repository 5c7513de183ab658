//! Property tests of the archive reader: malformed `manifest.json` and tar streams never
//! panic, and no archive, however damaged or hostile, writes outside the directory it is
//! extracted into.

use std::path::Path;

use proptest::prelude::*;
use tar::{EntryType, Header};

use crate::config::proptests::{cases, json_value};
use crate::reader::unpack;

// ---------------------------------------------------------------------------------------------
// Archives: manifest.json and the tar stream.

use super::tests::{DUMP, manifest};

/// An uncompressed tar with raw entry names (unsafe ones too) and any entry types.
fn tar_bytes(entries: &[(Vec<u8>, u8, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::new(*kind));
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        let n = name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
        if *kind == b'2' || *kind == b'1' {
            let _ = h.set_link_name("../../outside");
        }
        h.set_cksum();
        tar.append(&h, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap()
}

fn good_tar() -> Vec<u8> {
    tar_bytes(&[
        (b"files".to_vec(), b'5', vec![]),
        (b"files/a.txt".to_vec(), b'0', b"hello".to_vec()),
        (b"database.sql".to_vec(), b'0', DUMP.to_vec()),
        (b"manifest.json".to_vec(), b'0', manifest(1, 5, DUMP)),
    ])
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

/// Read `archive` extracting into a fresh directory; panics (failing the property) if
/// anything appears outside that directory.
fn read_contained(archive: &[u8]) -> anyhow::Result<unpack::Contents> {
    let outer = tempfile::tempdir().unwrap();
    let target = outer.path().join("a/b");
    std::fs::create_dir_all(&target).unwrap();
    let mut db = tempfile::tempfile().unwrap();
    let r = unpack::read(
        archive,
        unpack::Options {
            extract_to: Some(&target),
            database_to: Some(&mut db),
            preserve_owner: false,
            only: None,
            chain: None,
            listing: None,
        },
    );
    let outside = escaped(outer.path(), &target);
    assert!(
        outside.is_empty(),
        "written outside the target: {outside:?}"
    );
    if let Ok(c) = &r {
        let _ = c.problems();
    }
    r
}

/// Everything under `root` that is not `target` or inside it (or one of its parents).
fn escaped(root: &Path, target: &Path) -> Vec<String> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().to_path_buf())
        .filter(|p| !p.starts_with(target) && !target.starts_with(p))
        .map(|p| p.display().to_string())
        .collect()
}

const NAMES: &[&[u8]] = &[
    b"files",
    b"files/",
    b"files/x",
    b"files/d/",
    b"files/../x",
    b"files/../../x",
    b"../x",
    b"/tmp/x",
    b"/",
    b"./files/y",
    b"database.sql",
    b"manifest.json",
    b"files/wp-config.php",
    b"",
    b"files/\xff\xfe",
    b"other",
];

fn entry() -> impl Strategy<Value = (Vec<u8>, u8, Vec<u8>)> {
    (
        prop_oneof![
            3 => proptest::sample::select(NAMES).prop_map(<[u8]>::to_vec),
            1 => proptest::collection::vec(any::<u8>(), 0..20),
        ],
        proptest::sample::select(&[b'0', b'1', b'2', b'3', b'5', b'6', b'7', b'x', 0u8][..]),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn manifest_reader_never_panics(m in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]) {
        let archive = zstd(&tar_bytes(&[
            (b"files/a.txt".to_vec(), b'0', b"hello".to_vec()),
            (b"database.sql".to_vec(), b'0', DUMP.to_vec()),
            (b"manifest.json".to_vec(), b'0', m.clone()),
        ]));
        let c = read_contained(&archive).expect("a well-formed tar reads");
        if c.manifest.is_none() {
            prop_assert!(!c.problems().is_empty(), "an unreadable manifest must be a problem");
        }
    }

    #[test]
    fn tar_reader_never_panics_on_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = read_contained(&data);
        let _ = read_contained(&zstd(&data));
    }

    #[test]
    fn tar_reader_never_panics_on_damaged_archives(
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..16),
        cut in any::<proptest::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut tar = good_tar();
        for (at, byte) in edits {
            let i = at.index(tar.len());
            tar[i] = byte;
        }
        if truncate {
            tar.truncate(cut.index(tar.len()));
        }
        let _ = read_contained(&zstd(&tar));
        // And the compressed stream damaged instead.
        let mut z = zstd(&good_tar());
        let i = cut.index(z.len());
        z[i] ^= 0x5a;
        let _ = read_contained(&z);
    }

    #[test]
    fn hostile_entries_never_escape_the_target(entries in proptest::collection::vec(entry(), 0..8)) {
        let _ = read_contained(&zstd(&tar_bytes(&entries)));
    }
}

#[test]
fn the_escape_check_sees_a_file_outside() {
    let outer = tempfile::tempdir().unwrap();
    let target = outer.path().join("a/b");
    std::fs::create_dir_all(target.join("files")).unwrap();
    std::fs::write(target.join("files/ok"), "x").unwrap();
    assert!(escaped(outer.path(), &target).is_empty());
    std::fs::write(outer.path().join("a/evil"), "x").unwrap();
    assert_eq!(escaped(outer.path(), &target).len(), 1);
}

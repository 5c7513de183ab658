//! Unit tests of the restore copies: which names are copies (exactly), and removal that never
//! follows a symlink.

use std::os::unix::fs::symlink;

use chrono::Timelike;

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    parse_stamp(s.as_bytes()).unwrap()
}

fn site(name: &str, path: &Path) -> SiteConfig {
    SiteConfig {
        name: name.into(),
        path: path.to_path_buf(),
        exclude: Vec::new(),
        database: None,
        enabled: true,
        hooks: Default::default(),
        exclude_tables: Vec::new(),
    }
}

#[test]
fn the_time_is_read_as_stage_writes_it() {
    let now = Utc::now().with_nanosecond(0).unwrap();
    assert_eq!(
        parse_stamp(crate::reader::stage::stamp(now).as_bytes()),
        Some(now)
    );
    for bad in [
        "20261124T030000",
        "20261124T030000Zx",
        "2026112AT030000Z",
        "20261324T030000Z",
        "+0261124T030000Z",
    ] {
        assert_eq!(parse_stamp(bad.as_bytes()), None, "{bad}");
    }
}

#[test]
fn only_exact_names_are_copies() {
    let p = b"site.before-restore-";
    assert_eq!(
        stamp_after(b"site.before-restore-20261124T030000Z", p),
        Some(t("20261124T030000Z"))
    );
    assert!(stamp_after(b"site.before-restore-20261124T030000Z-2", p).is_some());
    assert!(stamp_after(b"site.before-restore-20261124T030000Z-17", p).is_some());
    for bad in [
        "site.before-restore-20261124T030000Z-1",
        "site.before-restore-20261124T030000Z-02",
        "site.before-restore-20261124T030000Z-",
        "site.before-restore-20261124T030000Z-2x",
        "site.before-restore-20261124T030000Z.bak",
        "site.before-restore-",
        "site.before-restore-latest",
        "xsite.before-restore-20261124T030000Z",
        "site",
    ] {
        assert_eq!(stamp_after(bad.as_bytes(), p), None, "{bad}");
    }
}

#[test]
fn find_lists_the_copies_of_the_configured_sites_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (home, www) = (dir.path().join("home"), dir.path().join("www"));
    let saved = home.join("before-restore");
    std::fs::create_dir_all(&saved).unwrap();
    std::fs::create_dir_all(www.join("blog")).unwrap();
    for name in [
        "blog.before-restore-20261101T030000Z",
        "blog.before-restore-20261101T030000Z-2",
        "blog.before-restore-notes",
        "shop.before-restore-20261101T030000Z",
    ] {
        std::fs::create_dir(www.join(name)).unwrap();
    }
    std::fs::write(
        www.join("blog.before-restore-20261101T030000Z/index.php"),
        b"12345",
    )
    .unwrap();
    std::fs::write(
        www.join("wp-config.php.before-restore-20261102T030000Z"),
        b"x",
    )
    .unwrap();
    std::fs::write(www.join("wp-config.php.bak"), b"x").unwrap();
    std::fs::write(saved.join("my_blog_wp_db_20261103T030000Z.sql.zst"), b"xy").unwrap();
    std::fs::write(saved.join("my_blog_wp_db_20261103T030000Z.sql"), b"xy").unwrap();
    std::fs::write(saved.join(".my_blog_dump.tmp"), b"xy").unwrap();
    let copies = find(
        &home,
        &[
            site("my", &www.join("x")),
            site("my_blog", &www.join("blog")),
        ],
    );
    let found: Vec<_> = copies
        .iter()
        .map(|c| {
            let name = c.path.file_name().unwrap().to_string_lossy().into_owned();
            (c.kind, name, c.site.clone().unwrap_or_default(), c.bytes)
        })
        .collect();
    let blog = || "my_blog".to_string();
    assert_eq!(
        found,
        vec![
            (
                Kind::Files,
                "blog.before-restore-20261101T030000Z".into(),
                blog(),
                5
            ),
            (
                Kind::Files,
                "blog.before-restore-20261101T030000Z-2".into(),
                blog(),
                0
            ),
            (
                Kind::WpConfig,
                "wp-config.php.before-restore-20261102T030000Z".into(),
                "my".into(),
                1
            ),
            (
                Kind::Database,
                "my_blog_wp_db_20261103T030000Z.sql.zst".into(),
                blog(),
                2
            ),
        ]
    );
}

#[test]
fn a_directory_is_removed_without_following_its_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("deep")).unwrap();
    std::fs::write(outside.join("deep/keep.txt"), b"keep").unwrap();
    let copy = dir.path().join("blog.before-restore-20261101T030000Z");
    std::fs::create_dir_all(copy.join("wp-content/uploads")).unwrap();
    std::fs::write(copy.join("wp-content/uploads/a.jpg"), b"a").unwrap();
    symlink(&outside, copy.join("wp-content/link-to-dir")).unwrap();
    symlink(outside.join("deep/keep.txt"), copy.join("link-to-file")).unwrap();
    let c = RestoreCopy::new(Kind::Files, copy.clone(), None, t("20261101T030000Z"));
    remove(&c).unwrap();
    assert!(copy.symlink_metadata().is_err(), "removed");
    assert_eq!(
        std::fs::read(outside.join("deep/keep.txt")).unwrap(),
        b"keep"
    );
}

#[test]
fn a_copy_that_is_a_symlink_is_unlinked_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("releases/42");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("index.php"), b"<?php").unwrap();
    let copy = dir.path().join("blog.before-restore-20261101T030000Z");
    symlink(&live, &copy).unwrap();
    let c = RestoreCopy::new(Kind::Files, copy.clone(), None, t("20261101T030000Z"));
    assert_eq!(c.bytes, 0, "the size is the link's, not its target's");
    remove(&c).unwrap();
    assert!(copy.symlink_metadata().is_err());
    assert!(live.join("index.php").exists());
}

#[test]
fn ages_and_mount_paths_read_as_people_and_the_kernel_write_them() {
    let made = t("20261101T030000Z");
    let c = RestoreCopy {
        kind: Kind::Database,
        path: PathBuf::from("/x"),
        site: None,
        made_at: String::new(),
        made,
        bytes: 0,
    };
    let now = made + TimeDelta::days(7);
    assert!(c.is_old(now, 7));
    assert!(!c.is_old(now - TimeDelta::seconds(1), 7));
    assert_eq!(human_age(c.age(now)), "7 days");
    assert_eq!(human_age(TimeDelta::hours(5)), "5 hours");
    assert_eq!(human_age(TimeDelta::minutes(5)), "less than an hour");
    assert_eq!(
        unescape_mount_path(r"/var/www/my\040site\134x"),
        OsString::from("/var/www/my site\\x")
    );
}

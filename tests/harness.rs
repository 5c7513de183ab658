//! The harness itself: the WordPress site it builds is a real one, served by php.

use crate::util::mariadb::MariaDb;
use crate::util::wordpress::{MEDIA_PATH, UNICODE_TITLE, WordPress, http_get};

#[test]
fn wordpress_site_serves_its_posts_and_media() {
    let db = MariaDb::start();
    let site = WordPress::install(&db, "served");
    assert!(site.post_titles(&db).iter().any(|t| t == UNICODE_TITLE));
    let _php = site.serve();
    let (status, body) = http_get(&format!("{}/", site.url));
    let html = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("First post about backups"), "{html}");
    let (status, media) = http_get(&format!("{}/{MEDIA_PATH}", site.url));
    assert_eq!(status, 200);
    assert_eq!(media, std::fs::read(site.path.join(MEDIA_PATH)).unwrap());
}

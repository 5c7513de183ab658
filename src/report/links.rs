//! Links from a report to the fleet dashboard (`dashboard_url` in config.json): its fleet page
//! and a site's page, `/site/SERVER/SITE`, as the Worker routes them (dashboard/src/worker.mjs).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The dashboard's address, without a trailing slash (as config validated it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard(String);

impl Dashboard {
    pub fn new(url: &str) -> Dashboard {
        Dashboard(url.trim_end_matches('/').to_string())
    }

    /// The fleet page.
    pub fn fleet(&self) -> String {
        format!("{}/", self.0)
    }

    /// One site's page; the names are percent-encoded as path segments.
    pub fn site(&self, server: &str, site: &str) -> String {
        format!("{}/site/{}/{}", self.0, segment(server), segment(site))
    }
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`): what a path
/// segment's bytes are encoded against.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` with everything but RFC 3986's unreserved characters percent-encoded.
fn segment(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_and_site_pages() {
        let d = Dashboard::new("https://dash.example.workers.dev/");
        assert_eq!(d.fleet(), "https://dash.example.workers.dev/");
        assert_eq!(
            d.site("web-01", "example.com"),
            "https://dash.example.workers.dev/site/web-01/example.com"
        );
        assert_eq!(
            d.site("web 01", "a/b?é"),
            "https://dash.example.workers.dev/site/web%2001/a%2Fb%3F%C3%A9"
        );
    }

    #[test]
    fn a_segment_keeps_exactly_the_unreserved_characters() {
        let unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
        assert_eq!(segment(unreserved), unreserved);
        // Every other printable ASCII character, each as %XX in upper case.
        for b in 0x20u8..0x7f {
            let c = b as char;
            if !unreserved.contains(c) {
                assert_eq!(segment(&c.to_string()), format!("%{b:02X}"), "{c:?}");
            }
        }
        assert_eq!(segment("\u{7f}\n%"), "%7F%0A%25");
        assert_eq!(segment("ü"), "%C3%BC");
    }
}

//! Links from a report to the fleet dashboard (`dashboard_url` in config.json): its fleet page
//! and a site's page, `/site/SERVER/SITE`, as the Worker routes them (dashboard/src/worker.mjs).

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

/// `s` with everything but RFC 3986's unreserved characters percent-encoded.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
}

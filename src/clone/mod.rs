//! A clone: a site restored at another address. The (old, new) address pairs in every form a
//! site stores them ([`url_pairs`]), and the rewrite of the restored database to the new
//! address ([`rewrite`]), PHP-serialized values kept valid by [`crate::serialized`]. The
//! restored `wp-config.php` is rewritten by `restore/wp_config.rs` with the same pairs.

pub mod rewrite;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use rewrite::{search_replace, site_urls};

/// The (old, new) address pairs: each distinct old address that is not already covered by a
/// shorter one it starts with (home `http://a` covers siteurl `http://a/wp`).
pub fn url_pairs(olds: &[String], new: &str) -> Vec<(String, String)> {
    let mut olds: Vec<String> = olds
        .iter()
        .map(|o| o.trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty() && o != new)
        .collect();
    olds.sort();
    olds.dedup();
    let keep: Vec<String> = olds
        .iter()
        .filter(|o| !olds.iter().any(|p| p != *o && o.starts_with(p.as_str())))
        .cloned()
        .collect();
    // Each address also as page builders and blocks store it: JSON-escaped (`http:\/\/a`,
    // Gutenberg and Elementor) and URL-encoded (`http%3A%2F%2Fa`, links in query strings).
    keep.into_iter()
        .flat_map(|o| {
            let json = |s: &str| s.replace('/', "\\/");
            [
                (json(&o), json(new)),
                (url_encoded(&o), url_encoded(new)),
                (o, new.to_string()),
            ]
        })
        .collect()
}

/// What JavaScript's `encodeURIComponent` leaves as it is: letters, digits and `-_.!~*'()`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// `s` as JavaScript's `encodeURIComponent` writes it.
fn url_encoded(s: &str) -> String {
    utf8_percent_encode(s, URI_COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_pairs() {
        let p = url_pairs(
            &[
                "http://a.example/wp".into(),
                "http://a.example/".into(),
                "http://a.example".into(),
                "https://new".into(),
            ],
            "https://new",
        );
        assert_eq!(
            p,
            vec![
                (r"http:\/\/a.example".into(), r"https:\/\/new".into()),
                ("http%3A%2F%2Fa.example".into(), "https%3A%2F%2Fnew".into()),
                ("http://a.example".into(), "https://new".into()),
            ]
        );
        assert!(url_pairs(&["https://new".into()], "https://new").is_empty());
    }

    #[test]
    fn url_encoded_as_encode_uri_component() {
        // encodeURIComponent("https://a.example/x y?q=1&r=(é)~*!'") in a browser:
        assert_eq!(
            url_encoded("https://a.example/x y?q=1&r=(é)~*!'"),
            "https%3A%2F%2Fa.example%2Fx%20y%3Fq%3D1%26r%3D(%C3%A9)~*!'"
        );
    }
}

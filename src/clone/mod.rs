//! A clone: a site restored at another address. The (old, new) address pairs in every form a
//! site stores them ([`url_pairs`]), and the rewrite of the restored database to the new
//! address ([`rewrite`]), PHP-serialized values kept valid by [`crate::serialized`]. The
//! restored `wp-config.php` is rewritten by `restore/wp_config.rs` with the same pairs. What
//! the rewrite would change, counted in a dump without a database: [`dump_count`].

pub mod dump_count;
pub mod multisite;
pub mod rewrite;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use rewrite::{search_replace, site_urls};

/// The (old, new) address pairs, in every form a site holds an address (formats.md, "How a
/// clone rewrites addresses"): each distinct old address (its scheme set aside) that is not
/// already covered by a shorter one it starts with (home `http://a` covers siteurl
/// `https://a/wp`), written with `http://`, with `https://` and scheme-relative (`//a`), each
/// of those as it is, JSON-escaped and URL-encoded. Both schemes become the new address; the
/// scheme-relative form becomes the new address without its scheme.
pub fn url_pairs(olds: &[String], new: &str) -> Vec<(String, String)> {
    let new = new.trim_end_matches('/');
    let new_relative = without_scheme(new);
    let mut olds: Vec<String> = olds
        .iter()
        .map(|o| without_scheme(o.trim_end_matches('/')))
        .filter(|o| o.len() > 2 && *o != new_relative)
        .collect();
    olds.sort();
    olds.dedup();
    let keep: Vec<String> = olds
        .iter()
        .filter(|o| {
            !olds
                .iter()
                .any(|p| p != *o && o.starts_with(p.as_str()) && o[p.len()..].starts_with('/'))
        })
        .cloned()
        .collect();
    let mut pairs = Vec::new();
    for relative in keep {
        for (from, to) in [
            (format!("http:{relative}"), new.to_string()),
            (format!("https:{relative}"), new.to_string()),
            (relative, new_relative.clone()),
        ] {
            // Each form also as page builders and blocks store it: JSON-escaped
            // (`http:\/\/a`, Gutenberg and Elementor) and URL-encoded (`http%3A%2F%2Fa`,
            // links in query strings).
            let json = |s: &str| s.replace('/', "\\/");
            pairs.push((json(&from), json(&to)));
            pairs.push((url_encoded(&from), url_encoded(&to)));
            pairs.push((from, to));
        }
    }
    pairs.retain(|(from, to)| from != to);
    pairs
}

/// `//host/path` of `scheme://host/path` (an address without `://` as it is).
fn without_scheme(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => format!("//{rest}"),
        None => url.to_string(),
    }
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
                "https://a.example/wp".into(),
                "http://a.example/".into(),
                "http://a.example".into(),
                "http://a.examples".into(),
                "https://new".into(),
            ],
            "https://new",
        );
        let forms = |o: &str| {
            vec![
                (format!(r"http:\/\/{o}"), r"https:\/\/new".to_string()),
                (format!("http%3A%2F%2F{o}"), "https%3A%2F%2Fnew".to_string()),
                (format!("http://{o}"), "https://new".to_string()),
                (format!(r"https:\/\/{o}"), r"https:\/\/new".to_string()),
                (
                    format!("https%3A%2F%2F{o}"),
                    "https%3A%2F%2Fnew".to_string(),
                ),
                (format!("https://{o}"), "https://new".to_string()),
                (format!(r"\/\/{o}"), r"\/\/new".to_string()),
                (format!("%2F%2F{o}"), "%2F%2Fnew".to_string()),
                (format!("//{o}"), "//new".to_string()),
            ]
        };
        // `a.example/wp` is covered by `a.example`; `a.examples` is another host.
        let mut want = forms("a.example");
        want.extend(forms("a.examples"));
        assert_eq!(p, want);
        assert!(url_pairs(&["https://new".into(), "http://new/".into()], "https://new").is_empty());
    }

    /// The pairs applied as a clone applies them: every form of the old address moves, a
    /// longer host, another port or a longer path segment does not.
    #[test]
    fn every_form_moves_and_lookalikes_stay() {
        let pairs = url_pairs(&["http://old.example/sub".into()], "https://new.example");
        let bytes: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
            .collect();
        let moved = |s: &str| {
            String::from_utf8(crate::serialized::plain_replace(s.as_bytes(), &bytes)).unwrap()
        };
        for (old, new) in [
            ("http://old.example/sub/a.jpg", "https://new.example/a.jpg"),
            ("https://old.example/sub/", "https://new.example/"),
            (
                "<img src=\"//old.example/sub/x.png\">",
                "<img src=\"//new.example/x.png\">",
            ),
            (
                r#"{"u":"https:\/\/old.example\/sub\/p"}"#,
                r#"{"u":"https:\/\/new.example\/p"}"#,
            ),
            ("?u=%2F%2Fold.example%2Fsub%2Fq", "?u=%2F%2Fnew.example%2Fq"),
            ("see http://old.example/sub.", "see https://new.example."),
            ("http://old.example/sub?p=1#c", "https://new.example?p=1#c"),
            // Lookalikes: a longer host, another port, a longer path segment, the bare host.
            (
                "http://old.example.com.evil/sub",
                "http://old.example.com.evil/sub",
            ),
            ("http://old.example/subway", "http://old.example/subway"),
            ("http://old.example/sub-two/", "http://old.example/sub-two/"),
            ("http://old.example:8080/sub", "http://old.example:8080/sub"),
            ("mail@old.example", "mail@old.example"),
        ] {
            assert_eq!(moved(old), new, "{old}");
        }
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

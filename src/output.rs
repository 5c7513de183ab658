//! What a person (or systemd's journal) sees: log setup, progress bars, the summary table.
//!
//! On a terminal: short human log lines on stderr and a progress bar per site, all bars in one
//! [`MultiProgress`] that log lines are printed above (never through a bar). Without one
//! (systemd, cron, a pipe): structured `key=value` log lines with timestamps, and no bars.
//! Results go to stdout: a table, or one JSON document with `--json`.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;

/// True when stderr is a terminal (progress bars and colours make sense).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// The log filter for `-v`/`-q` when `RUST_LOG` is not set: wpbackup's own lines at the level
/// asked for, its dependencies (the AWS SDK, hyper, rustls, h2, globset, ...) at WARN, so `-v`
/// shows wpbackup's phases and not the SDK's hundreds of lines per upload; `-vv` lets every
/// crate's debug through (the SDK's requests included), `-vvv` its trace.
pub fn log_filter(verbose: u8, quiet: bool) -> String {
    if quiet {
        return "error".into();
    }
    match verbose {
        0 => "warn,wpbackup=info".into(),
        1 => "warn,wpbackup=debug".into(),
        2 => "debug".into(),
        _ => "trace".into(),
    }
}

/// Log to stderr at a level from `-v`/`-q` ([`log_filter`]); an explicit `RUST_LOG` wins.
pub fn init_logging(verbose: u8, quiet: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(log_filter(verbose, quiet)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if interactive() {
        builder
            .with_writer(|| AboveBars)
            .without_time()
            .with_target(false)
            .init();
    } else {
        builder.with_ansi(false).with_target(false).init();
    }
}

/// Every bar of the process, drawn together on stderr.
fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// stderr for log lines on a terminal: the bars are cleared while a line is written and drawn
/// again below it, so a warning in the middle of an upload is not torn by a redraw.
struct AboveBars;

impl Write for AboveBars {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        bars().suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A spinner for one site's work, or a hidden one off a terminal.
pub fn site_bar(site: &str, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = bars().add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(site.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Bytes in a human unit.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A duration a person reads at a glance: `4.2s`, `3m 05s`, `2h 07m`, each rounded to the
/// nearest unit it shows, so that no field reaches its next unit (119.6 s is `2m 00s`, never
/// `1m 60s`; 59.96 s is `1m 00s`, never `60.0s`). The dashboard's `humanDuration`
/// (dashboard/src/model.mjs) is the same function, for `report --html` to match its page.
pub fn human_duration(secs: f64) -> String {
    let secs = secs.max(0.0); // NaN too
    let tenths = (secs * 10.0).round();
    if tenths < 600.0 {
        return format!("{:.1}s", tenths / 10.0);
    }
    let whole = secs.round() as u64;
    if whole < 3600 {
        return format!("{}m {:02}s", whole / 60, whole % 60);
    }
    let mins = (secs / 60.0).round() as u64;
    format!("{}h {:02}m", mins / 60, mins % 60)
}

/// Text made safe inside HTML elements and quoted attributes (single or double): `&`, `<`,
/// `>`, `"` and `'` as entities. The mail report's HTML and `report --html` use it; the
/// dashboard's `esc` (dashboard/src/html.mjs) writes the same entities.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text from outside (a file name from a site or an archive, an object key) made safe to print
/// on a terminal: every character a terminal may act on instead of showing it is written as
/// an escape, so a file name cannot move the cursor, retitle the window or hide what follows
/// it. C0 controls (tab and newline too) and DEL become `\xHH` (ESC is `\x1b`); C1 controls,
/// the bidirectional overrides, embeddings and isolates (U+061C, U+200E, U+200F,
/// U+202A-U+202E, U+2066-U+2069) and the line and paragraph separators (U+2028, U+2029)
/// become `\u{HHHH}`. Everything else, backslashes included, is left as it is. Tables
/// ([`table`]) and the error wpbackup ends with pass through it; `--json` output does not
/// (it is exact, and JSON escapes its own controls).
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    printable_keeping(s, &[])
}

/// [`printable`], leaving the characters of `keep` (a newline, in a message of several lines).
pub fn printable_keeping<'a>(s: &'a str, keep: &[char]) -> std::borrow::Cow<'a, str> {
    let unsafe_char = |c: char| acted_on(c) && !keep.contains(&c);
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A message (an error chain, which may name files of a site or an archive) made
/// [`printable`], its lines and tabs kept.
pub fn printable_message(s: &str) -> std::borrow::Cow<'_, str> {
    printable_keeping(s, &['\n', '\t'])
}

/// A character a terminal acts on rather than shows (see [`printable`]).
fn acted_on(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// `n` and a noun, singular for one: `plural(1, "site")` is `1 site`, `plural(3, "copy")` is
/// `3 copies`, `plural(2, "server")` is `2 servers`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        return format!("{n} {noun}");
    }
    let many = match noun.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) => format!("{stem}ies"),
        _ if noun.ends_with('s') || noun.ends_with("sh") || noun.ends_with("ch") => {
            format!("{noun}es")
        }
        _ => format!("{noun}s"),
    };
    format!("{n} {many}")
}

/// How long ago something happened `secs` seconds ago: `just now`, `5 minutes ago`,
/// `3 hours ago`, `3 days ago`.
pub fn human_age(secs: i64) -> String {
    let (n, unit) = match secs.max(0) {
        s if s < 60 => return "just now".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// A plain text table with a header row, columns padded to their widest cell. Every cell is
/// [`printable`]: a table shows names that come from outside (sites, archives, buckets).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<std::borrow::Cow<'_, str>>> = rows
        .iter()
        .map(|row| row.iter().map(|c| printable(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(|c| c.as_ref()).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn verbosity_filters() {
        use super::log_filter;
        use tracing_subscriber::EnvFilter;
        assert_eq!(log_filter(0, true), "error");
        assert_eq!(log_filter(0, false), "warn,wpbackup=info");
        // -v: wpbackup's debug (its phases), the dependencies still at WARN.
        assert_eq!(log_filter(1, false), "warn,wpbackup=debug");
        // -vv: the SDK's debug too.
        assert_eq!(log_filter(2, false), "debug");
        assert_eq!(log_filter(3, false), "trace");
        for (v, q) in [(0, true), (0, false), (1, false), (2, false), (5, false)] {
            assert!(EnvFilter::try_new(log_filter(v, q)).is_ok(), "{v} {q}");
        }
    }

    #[test]
    fn plurals() {
        use super::plural;
        assert_eq!(plural(1, "copy"), "1 copy");
        assert_eq!(plural(2, "copy"), "2 copies");
        assert_eq!(plural(0, "site"), "0 sites");
        assert_eq!(plural(1, "site"), "1 site");
        assert_eq!(plural(1, "server"), "1 server");
        assert_eq!(plural(3, "server"), "3 servers");
        assert_eq!(plural(2, "day"), "2 days");
        assert_eq!(plural(2, "pass"), "2 passes");
    }

    use super::*;

    #[test]
    fn formats() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_duration(4.24), "4.2s");
        assert_eq!(human_duration(185.4), "3m 05s");
        assert_eq!(human_duration(7640.0), "2h 07m");
        assert_eq!(human_age(30), "just now");
        assert_eq!(human_age(60), "1 minute ago");
        assert_eq!(human_age(3 * 86_400 + 5), "3 days ago");
        assert_eq!(
            table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]),
            "A    BB\nxyz  1\n"
        );
    }

    #[test]
    fn durations_round_to_the_unit_shown_and_carry_over() {
        for (secs, shown) in [
            (0.0, "0.0s"),
            (-3.0, "0.0s"),
            (f64::NAN, "0.0s"),
            (59.6, "59.6s"),
            (59.94, "59.9s"),
            (59.96, "1m 00s"),
            (60.0, "1m 00s"),
            (60.4, "1m 00s"),
            (119.4, "1m 59s"),
            (119.6, "2m 00s"),
            (190.0, "3m 10s"),
            (3599.4, "59m 59s"),
            (3599.6, "1h 00m"),
            (3629.0, "1h 00m"),
            (3631.0, "1h 01m"),
            (7169.0, "1h 59m"),
            (7199.6, "2h 00m"),
            (90_000.0, "25h 00m"),
        ] {
            assert_eq!(human_duration(secs), shown, "{secs} s");
        }
    }

    #[test]
    fn controls_are_escaped_and_the_rest_left_alone() {
        assert_eq!(
            printable("evil\u{1b}]0;pwned\u{7}.txt"),
            "evil\\x1b]0;pwned\\x07.txt"
        );
        assert_eq!(printable("a\nb\tc\u{7f}"), "a\\x0ab\\x09c\\x7f");
        assert_eq!(
            printable("\u{9b}31m \u{202e}gpj.exe \u{2066}x\u{2069}"),
            "\\u{009b}31m \\u{202e}gpj.exe \\u{2066}x\\u{2069}"
        );
        for plain in ["wp-content/uploads/café ✓.jpg", r"a\x1b", "日本語", ""] {
            assert!(
                matches!(printable(plain), std::borrow::Cow::Borrowed(_)),
                "{plain}"
            );
        }
        assert_eq!(
            printable_keeping("one\ntwo\u{1b}", &['\n']),
            "one\ntwo\\x1b"
        );
        assert_eq!(
            table(&["PATH"], &[vec!["x\u{1b}[2J".into()]]),
            "PATH\nx\\x1b[2J\n"
        );
    }

    #[test]
    fn html_escapes_the_five_characters_once() {
        assert_eq!(
            escape_html(r#"<a href="x" title='y'>Tom & Jerry</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;"
        );
        // Text already escaped is escaped again: each `&` once, as itself.
        assert_eq!(escape_html("&amp; &#39;"), "&amp;amp; &amp;#39;");
        assert_eq!(escape_html("café ✓ plain"), "café ✓ plain");
        assert_eq!(escape_html(""), "");
    }
}

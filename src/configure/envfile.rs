//! Editing `.env` in place: the file a person may also edit by hand.
//!
//! `configure` changes only the variables it sets: every other line (comments, blank lines,
//! variables it does not know) stays where it was, a changed variable is rewritten on its own
//! line, and a new one is appended. Values are read back with the same reader wpbackup loads
//! `.env` with ([`crate::config::dotenv`]), and written quoted so that it reads exactly the
//! value given (no lost `#`, quote or newline). Writing is atomic and private: see [`write_private`];
//! [`public_warning`] is the warning for a secrets file others can read.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context as _;

/// The text of a `.env` file, editable line by line.
#[derive(Clone, Default)]
pub struct EnvFile {
    lines: Vec<String>,
    values: HashMap<String, String>,
    changed: Vec<String>,
}

impl fmt::Debug for EnvFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvFile")
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl EnvFile {
    /// Read `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> anyhow::Result<EnvFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => EnvFile::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EnvFile::default()),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("{}: cannot read", path.display())))
            }
        }
    }

    /// The text of `path`, read as wpbackup reads `.env` (see [`crate::config::dotenv`]).
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<EnvFile> {
        let values: HashMap<String, String> = crate::config::dotenv::parse(text, path)?
            .into_iter()
            .collect();
        Ok(EnvFile {
            lines: text.lines().map(str::to_string).collect(),
            values,
            changed: Vec::new(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// True when the variable is set to something non-empty.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| !v.is_empty())
    }

    /// Every variable the file sets.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.values.keys().cloned().collect();
        k.sort();
        k
    }

    /// The variables set or changed since loading, in the order they were set.
    pub fn changed(&self) -> &[String] {
        &self.changed
    }

    /// All variables, for validating a config against the file as it will be written.
    pub fn values(&self) -> HashMap<String, String> {
        self.values.clone()
    }

    /// Set `key` to `value`: rewrite its line, or append one. Setting the same value is no change.
    pub fn set(&mut self, key: &str, value: &str) {
        if self.get(key) == Some(value) {
            return;
        }
        let line = format!("{key}={}", quote(value));
        match self.lines.iter().rposition(|l| line_key(l) == Some(key)) {
            Some(i) => self.lines[i] = line,
            None => self.lines.push(line),
        }
        self.values.insert(key.to_string(), value.to_string());
        if !self.changed.iter().any(|k| k == key) {
            self.changed.push(key.to_string());
        }
    }

    pub fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

/// The variable a `.env` line sets (`KEY=...` or `export KEY=...`), if it sets one.
fn line_key(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("export ").unwrap_or(t).trim_start();
    let (k, _) = t.split_once('=')?;
    let k = k.trim_end();
    (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(k)
}

/// A value as the `.env` reader reads it back unchanged: bare when plain, single-quoted (literal) when
/// it holds no `'`, else double-quoted with `\`, `"`, `$` and newlines escaped.
pub fn quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@,+%".contains(c))
    {
        return value.to_string();
    }
    if !value.contains('\'') && !value.contains('\n') {
        return format!("'{value}'");
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Write `data` to `path` atomically (a temporary file in the same directory, fsynced, then
/// renamed over it) with mode 0600, so a crash never leaves half a file and no one else can
/// read it for a moment.
pub fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".wpbackup-tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod a temporary file in {}", dir.display()))?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The warning for a file holding secrets that is readable by group or others, if it is.
pub fn public_warning(path: &Path) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    (m.permissions().mode() & 0o077 != 0).then(|| {
        format!(
            "{} holds secrets and is readable by group or others: run `chmod 600 {}`",
            path.display(),
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_a_round_trip_through_the_env_reader() {
        let nasty = [
            "plain",
            "with space",
            "pw#'\"x1$Y42",
            "$HOME",
            "a\\b",
            "it's",
            "line\nbreak",
            "",
            "#hash",
            "=eq=",
        ];
        let mut f = EnvFile::default();
        for (i, v) in nasty.iter().enumerate() {
            f.set(&format!("K{i}"), v);
        }
        let back = EnvFile::parse(&f.text(), Path::new(".env")).unwrap();
        for (i, v) in nasty.iter().enumerate() {
            assert_eq!(
                back.get(&format!("K{i}")),
                Some(*v),
                "value {v:?}: {}",
                f.text()
            );
        }
    }

    #[test]
    fn set_keeps_other_lines_and_rewrites_in_place() {
        let text = "# my settings\nSERVER_ID=web-01\n\nexport OTHER='x y'\nKEY=old\n";
        let mut f = EnvFile::parse(text, Path::new(".env")).unwrap();
        f.set("KEY", "new");
        f.set("SERVER_ID", "web-01");
        f.set("ADDED", "1");
        assert_eq!(
            f.text(),
            "# my settings\nSERVER_ID=web-01\n\nexport OTHER='x y'\nKEY=new\nADDED=1\n"
        );
        assert_eq!(f.changed(), ["KEY", "ADDED"]);
        assert_eq!(f.get("OTHER"), Some("x y"));
    }

    #[test]
    fn written_files_are_private_and_replace_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&p, b"A=1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "A=1\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }
}

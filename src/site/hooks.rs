//! A site's hooks (`sites[].hooks` in config.json): the commands run before and after its
//! backup and its restore (maintenance mode on and off, a cache flushed, a service stopped and
//! started), as borgmatic's `before`/`after` hooks.
//!
//! Each command is an argv array run without a shell (`["sh", "-c", "..."]` when one is
//! wanted), as wpbackup's user (root, from the timer), with its working directory the site's
//! directory (`/` when it does not exist) and a clean environment: `PATH`, `HOME`, `LANG`,
//! `LC_ALL` and `TZ` when they are set, and the `WPBACKUP_*` variables of [`Vars`]; never a
//! secret (.env's keys and passwords stay in wpbackup). Stdin is empty; stdout and stderr are
//! read together and their last [`OUTPUT_TAIL`] bytes kept, logged, and quoted in the error of
//! a command that fails (a status other than 0, killed at `hooks.timeout_secs`, or not
//! started).
//!
//! The commands of a `before_*` list run in order and the first that fails stops the list (and
//! the backup or restore). Those of an `after_*` list all run, whatever one of them did: they
//! undo what the `before_*` ones did. A SIGTERM or SIGINT kills a `before_*` command; an
//! `after_*` command is left to finish (within its timeout), so the site is not left in
//! maintenance mode.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::SiteConfig;

/// The bytes of a command's output kept (its end).
pub const OUTPUT_TAIL: usize = 2000;

/// The PATH of a hook when wpbackup has none (systemd gives services one).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// When a site's hooks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    BeforeBackup,
    AfterBackup,
    BeforeRestore,
    AfterRestore,
}

impl Phase {
    /// The key in `sites[].hooks`, also `WPBACKUP_PHASE`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::BeforeBackup => "before_backup",
            Phase::AfterBackup => "after_backup",
            Phase::BeforeRestore => "before_restore",
            Phase::AfterRestore => "after_restore",
        }
    }

    fn is_before(self) -> bool {
        matches!(self, Phase::BeforeBackup | Phase::BeforeRestore)
    }

    fn commands(self, site: &SiteConfig) -> &[Vec<String>] {
        let h = &site.hooks;
        match self {
            Phase::BeforeBackup => &h.before_backup,
            Phase::AfterBackup => &h.after_backup,
            Phase::BeforeRestore => &h.before_restore,
            Phase::AfterRestore => &h.after_restore,
        }
    }
}

/// What a hook is told beyond `WPBACKUP_SITE`, `WPBACKUP_SITE_PATH` and `WPBACKUP_PHASE`.
#[derive(Debug, Default, Clone)]
pub struct Vars {
    /// `WPBACKUP_STATUS` (after hooks): `success`, `warning` or `error`.
    pub status: Option<String>,
    /// `WPBACKUP_ARCHIVE_KEY`: the archive stored (after_backup) or restored (restore hooks).
    pub archive_key: Option<String>,
    /// `WPBACKUP_STORAGE`: the storage that took or gave it.
    pub storage: Option<String>,
    /// `WPBACKUP_RESTORE_TO` (restore hooks): where the files are restored (empty: no files).
    pub restore_to: Option<String>,
}

/// The site has hooks for `phase`.
pub fn any(site: &SiteConfig, phase: Phase) -> bool {
    !phase.commands(site).is_empty()
}

/// Run the site's `phase` hooks. `Err`: what failed, each failing command named by its place
/// in config.json with its output's end (one line per failure).
pub fn run(site: &SiteConfig, phase: Phase, vars: &Vars) -> Result<(), String> {
    let commands = phase.commands(site);
    if commands.is_empty() {
        return Ok(());
    }
    let cwd = if site.path.is_dir() {
        site.path.as_path()
    } else {
        Path::new("/")
    };
    let env = environment(site, phase, vars);
    let timeout = Duration::from_secs(site.hooks.timeout_secs);
    let mut failures = Vec::new();
    for (i, argv) in commands.iter().enumerate() {
        let name = format!("{} hook [{i}] {argv:?}", phase.name());
        let started = Instant::now();
        match run_one(argv, cwd, &env, timeout, phase.is_before()) {
            Ok(output) => {
                let secs = started.elapsed().as_secs_f64();
                if output.is_empty() {
                    tracing::info!(site = %site.name, "{name} ran in {secs:.1}s");
                } else {
                    tracing::info!(site = %site.name, "{name} ran in {secs:.1}s; its output: {output}");
                }
            }
            Err(why) => {
                let failure = format!("{name} {why}");
                tracing::error!(site = %site.name, "{failure}");
                failures.push(failure);
                if phase.is_before() {
                    break;
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// The hook's whole environment.
fn environment(site: &SiteConfig, phase: Phase, vars: &Vars) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"]
        .into_iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    let mut set = |k: &str, v: &str| env.push((k.to_string(), v.to_string()));
    set("WPBACKUP_SITE", &site.name);
    set("WPBACKUP_SITE_PATH", &site.path.to_string_lossy());
    set("WPBACKUP_PHASE", phase.name());
    for (k, v) in [
        ("WPBACKUP_STATUS", &vars.status),
        ("WPBACKUP_ARCHIVE_KEY", &vars.archive_key),
        ("WPBACKUP_STORAGE", &vars.storage),
        ("WPBACKUP_RESTORE_TO", &vars.restore_to),
    ] {
        if let Some(v) = v {
            set(k, v);
        }
    }
    env
}

/// The last bytes a command wrote, and whether some were dropped before them.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    cut: bool,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        if self.bytes.len() > 2 * OUTPUT_TAIL {
            self.bytes.drain(..self.bytes.len() - OUTPUT_TAIL);
            self.cut = true;
        }
    }

    fn text(&self) -> String {
        let from = self.bytes.len().saturating_sub(OUTPUT_TAIL);
        let text = String::from_utf8_lossy(&self.bytes[from..]);
        let text = text.trim();
        if self.cut || from > 0 {
            format!("…{text}")
        } else {
            text.to_string()
        }
    }
}

/// Run one command to its end: its output's end, or why it failed (with that output).
fn run_one(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    timeout: Duration,
    stoppable: bool,
) -> Result<String, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("is empty".into());
    };
    let (mut reader, writer) =
        std::io::pipe().map_err(|e| format!("could not be started: no pipe: {e}"))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| format!("could not be started: no pipe: {e}"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0);
    let spawned = cmd.spawn();
    // The pipe's write ends go with the command: the reader sees the end when the hook's
    // processes have closed theirs.
    drop(cmd);
    let mut child = spawned.map_err(|e| {
        format!("could not be started: {e} (give the program's full path, or put it in PATH)")
    })?;
    let tail = Arc::new(Mutex::new(Tail::default()));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    {
        let tail = tail.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut t) = tail.lock() {
                    t.push(&buf[..n]);
                }
            }
            let _ = done_tx.send(());
        });
    }
    let started = Instant::now();
    let ended = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(format!("could not be waited for: {e}")),
        }
        let stop = if started.elapsed() >= timeout {
            Some(format!(
                "was killed after {}s (hooks.timeout_secs)",
                timeout.as_secs()
            ))
        } else if stoppable && let Some(sig) = crate::interrupt::received() {
            Some(format!(
                "was killed: the run was interrupted by {}",
                crate::interrupt::name(sig)
            ))
        } else {
            None
        };
        if let Some(why) = stop {
            // Not reaped yet, so the group is still the hook's and no one else's.
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = child.wait();
            break Err(why);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A process the hook left running (a service it started) may hold the pipe open: its
    // output is not waited for long.
    let _ = done_rx.recv_timeout(Duration::from_secs(2));
    let output = tail.lock().map(|t| t.text()).unwrap_or_default();
    let with_output = |why: String| {
        if output.is_empty() {
            format!("{why} (no output)")
        } else {
            format!("{why}; its output: {output}")
        }
    };
    match ended {
        Ok(status) if status.success() => Ok(output),
        Ok(status) => Err(with_output(match status.code() {
            Some(code) => format!("failed with exit status {code}"),
            None => format!("failed: {status}"),
        })),
        Err(why) => Err(with_output(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(dir: &Path, hooks: crate::config::Hooks) -> SiteConfig {
        SiteConfig {
            name: "blog".into(),
            path: dir.to_path_buf(),
            exclude: Vec::new(),
            database: None,
            enabled: true,
            hooks,
            exclude_tables: Vec::new(),
        }
    }

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn before_hooks_stop_at_the_first_failure_and_quote_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = crate::config::Hooks {
            before_backup: vec![
                argv(&["sh", "-c", "echo one >> order; echo said-one"]),
                argv(&["sh", "-c", "echo broken >&2; exit 3"]),
                argv(&["sh", "-c", "echo three >> order"]),
            ],
            ..Default::default()
        };
        let s = site(dir.path(), hooks);
        let err = run(&s, Phase::BeforeBackup, &Vars::default()).unwrap_err();
        assert!(err.contains("before_backup hook [1]"), "{err}");
        assert!(err.contains("exit status 3"), "{err}");
        assert!(err.contains("broken"), "{err}");
        let order = std::fs::read_to_string(dir.path().join("order")).unwrap();
        assert_eq!(order, "one\n");
    }

    #[test]
    fn after_hooks_all_run_with_a_clean_environment() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = crate::config::Hooks {
            after_backup: vec![
                argv(&["false"]),
                argv(&[
                    "sh",
                    "-c",
                    "echo \"$WPBACKUP_SITE $WPBACKUP_PHASE $WPBACKUP_STATUS ${CARGO:-clean}\" > env; pwd >> env",
                ]),
            ],
            ..Default::default()
        };
        let s = site(dir.path(), hooks);
        let vars = Vars {
            status: Some("error".into()),
            ..Vars::default()
        };
        let err = run(&s, Phase::AfterBackup, &vars).unwrap_err();
        assert!(err.contains("after_backup hook [0]"), "{err}");
        let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            env,
            format!("blog after_backup error clean\n{}\n", cwd.display())
        );
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed_and_a_missing_program_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = crate::config::Hooks {
            before_restore: vec![argv(&["sh", "-c", "echo waiting; sleep 30"])],
            after_restore: vec![argv(&["/nonexistent/wpbackup-hook"])],
            timeout_secs: 1,
            ..Default::default()
        };
        let s = site(dir.path(), hooks);
        let started = Instant::now();
        let err = run(&s, Phase::BeforeRestore, &Vars::default()).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        assert!(err.contains("killed after 1s"), "{err}");
        assert!(err.contains("waiting"), "{err}");
        let err = run(&s, Phase::AfterRestore, &Vars::default()).unwrap_err();
        assert!(err.contains("could not be started"), "{err}");
    }

    #[test]
    fn a_long_output_is_cut_to_its_end() {
        let mut t = Tail::default();
        for i in 0..1000 {
            t.push(format!("line {i}\n").as_bytes());
        }
        let text = t.text();
        assert!(text.len() <= OUTPUT_TAIL + 4, "{}", text.len());
        assert!(
            text.starts_with('…') && text.ends_with("line 999"),
            "{text}"
        );
    }
}

//! Who the drill's php runs as, and what it can reach: the code of an archive is the site
//! owner's code, and a drill must not lend it root, the site owner's uid, another site's uid,
//! an admin's database password or the network.
//!
//! As root, each drill picks a fresh uid (and a gid of the same number) from systemd's range
//! for dynamic users (61184-65519), one that no user, group or running process has (users
//! looked up through NSS, so systemd's own dynamic users count as taken). The scratch copy is
//! handed to that uid (it is throwaway); the live site is not, so what of it is not
//! world-readable (a `wp-config.php` of mode 0640) stays unreadable. php is started with no
//! supplementary groups, in a session of its own and, when the scratch database is reached
//! through a unix socket, in a network namespace of its own with nothing in it: no TCP at all,
//! loopback included. When the scratch database is reachable only over TCP, php keeps the
//! host's network and the drill says so. When the check ends, every process still running as
//! that uid (a daemon php forked, in any session) is killed ([`Sandbox::kill_all`]): nothing
//! else runs as it. This does not need systemd, so the timer's unit and cron mode get the same
//! confinement.
//!
//! Not as root (a test run by hand), php runs as ourselves.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

/// systemd's range for dynamic users (`DynamicUser=`), where no distribution puts users.
const FIRST: u32 = 61184;
const LAST: u32 = 65519;

/// The uid php runs as, and how.
#[derive(Debug, Clone, Copy)]
pub struct Sandbox {
    /// `None`: not root, php runs as ourselves.
    pub uid: Option<u32>,
    /// php gets a network namespace of its own (the database is a unix socket).
    pub no_network: bool,
}

impl Sandbox {
    /// A fresh uid for one drill (as root), `no_network` when php needs no TCP.
    pub fn new(no_network: bool) -> anyhow::Result<Sandbox> {
        if !rustix::process::geteuid().is_root() {
            return Ok(Sandbox {
                uid: None,
                no_network: false,
            });
        }
        let busy = uids_running()?;
        let start = random_u32() % (LAST - FIRST + 1);
        for i in 0..=(LAST - FIRST) {
            let uid = FIRST + (start + i) % (LAST - FIRST + 1);
            if !busy.contains(&uid) && !known_user(uid) {
                return Ok(Sandbox {
                    uid: Some(uid),
                    no_network,
                });
            }
        }
        bail!(
            "no free uid for the drill's php in {FIRST}-{LAST} (each is a user, a group or runs a process): free one, the drill's php never runs as an existing user"
        )
    }

    /// Hand `dir` and everything in it (never through a symlink) to php's uid.
    pub fn hand_over(&self, dir: &Path) -> anyhow::Result<()> {
        let Some(uid) = self.uid else {
            return Ok(());
        };
        for entry in walkdir::WalkDir::new(dir).follow_links(false) {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            std::os::unix::fs::lchown(entry.path(), Some(uid), Some(uid))
                .with_context(|| format!("cannot hand {} to php's uid", entry.path().display()))?;
        }
        Ok(())
    }

    /// Make `cmd` start as php's uid, confined.
    pub fn confine(&self, cmd: &mut Command) {
        let Some(uid) = self.uid else {
            return;
        };
        let no_network = self.no_network;
        let hook = move || -> std::io::Result<()> {
            // SAFETY: between fork and exec only async-signal-safe calls are made.
            unsafe {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if no_network && libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        };
        // SAFETY: the hook only calls async-signal-safe functions.
        unsafe {
            cmd.pre_exec(hook);
        }
    }

    /// Kill every process running as php's uid (php itself and whatever it started), until
    /// none is left.
    pub fn kill_all(&self) {
        let Some(uid) = self.uid else {
            return;
        };
        for _ in 0..50 {
            if !uids_running().map(|u| u.contains(&uid)).unwrap_or(false) {
                return;
            }
            // A process of that uid signals every other one of it (kill(-1) spares itself).
            let mut cmd = Command::new("/bin/true");
            let hook = move || -> std::io::Result<()> {
                // SAFETY: async-signal-safe calls only, between fork and exec.
                unsafe {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(uid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::kill(-1, libc::SIGKILL);
                }
                Ok(())
            };
            // SAFETY: see the hook.
            unsafe {
                cmd.pre_exec(hook);
            }
            match cmd.status() {
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(
                        "cannot stop the processes the drill's php left (uid {uid}): {e}; kill them by hand (pkill -KILL -U {uid})"
                    );
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        tracing::error!(
            "processes of the drill's php (uid {uid}) are still running; kill them by hand (pkill -KILL -U {uid})"
        );
    }
}

/// The real uids of the running processes.
fn uids_running() -> anyhow::Result<std::collections::BTreeSet<u32>> {
    use std::os::unix::fs::MetadataExt;
    let mut uids = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let Ok(entry) = entry else { continue };
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if is_pid && let Ok(m) = entry.metadata() {
            uids.insert(m.uid());
        }
    }
    Ok(uids)
}

/// Whether `id` is a user or a group (through NSS: /etc/passwd, LDAP, systemd's dynamic users).
fn known_user(id: u32) -> bool {
    // SAFETY: getpwuid/getgrgid return static storage we only test for null; the drill is
    // single-threaded here as far as NSS is concerned.
    unsafe { !libc::getpwuid(id).is_null() || !libc::getgrgid(id).is_null() }
}

/// Random bits from the kernel (a clock's when that cannot be read).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut buf = [0u8; N];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if read.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8;
        }
    }
    buf
}

fn random_u32() -> u32 {
    u32::from_le_bytes(random_bytes::<4>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_uid_is_nobodys() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let s = Sandbox::new(true).unwrap();
        let uid = s.uid.unwrap();
        assert!((FIRST..=LAST).contains(&uid));
        assert!(!known_user(uid));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "id -u; id -G; cat /proc/net/tcp | wc -l"]);
        s.confine(&mut cmd);
        let out = cmd.output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = said.lines().collect();
        assert_eq!(lines[0], uid.to_string(), "{said}");
        assert_eq!(lines[1], uid.to_string(), "{said}");
        // A network namespace of its own: no sockets listed but the header.
        assert_eq!(lines[2].trim(), "1", "{said}");
    }
}

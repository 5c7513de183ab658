//! Who the drill's php runs as, and what it can reach: the code of an archive is the site
//! owner's code, and a drill must not lend it root, the site owner's uid, another site's uid,
//! an admin's database password or the network.
//!
//! As root, each drill picks a fresh uid (and a gid of the same number) from systemd's range
//! for dynamic users (61184-65519), one that no user or group has (looked up through NSS, so
//! systemd's own dynamic users count as taken), that systemd has not registered
//! (`/run/systemd/dynamic-uid/`) and that no running process has. The scratch copy is handed to
//! that uid (it is throwaway); the live site is not, so what of it is not world-readable (a
//! `wp-config.php` of mode 0640) stays unreadable. php is started with no supplementary
//! groups, `no_new_privs` (a setuid program gives it nothing), in a session of its own, and in
//! a network namespace of its own with nothing in it: no TCP at all, loopback included. It
//! reaches the scratch database through a unix socket: the server's own, or the drill's
//! [`super::relay`] to a server reached over TCP. When the check ends, every process still
//! running as that uid (a daemon php forked, in any session) is killed ([`Sandbox::kill_all`]):
//! nothing else runs as it. None of this needs systemd, so the timer's unit and cron mode get
//! the same confinement.
//!
//! Not as root (a test run by hand), php runs as ourselves, with the network.

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
    /// `None`: not root, php runs as ourselves (with the network).
    pub uid: Option<u32>,
}

impl Sandbox {
    /// A fresh uid for one drill (as root).
    pub fn new() -> anyhow::Result<Sandbox> {
        if !rustix::process::geteuid().is_root() {
            return Ok(Sandbox { uid: None });
        }
        let busy = uids_running()?;
        let start = random_u32() % (LAST - FIRST + 1);
        for i in 0..=(LAST - FIRST) {
            let uid = FIRST + (start + i) % (LAST - FIRST + 1);
            if !busy.contains(&uid) && !known_user(uid) && !systemds(uid) {
                return Ok(Sandbox { uid: Some(uid) });
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

    /// Make `cmd` start as php's uid, confined: its own session, `no_new_privs`, no groups
    /// but its own, and a network namespace of its own. As root with `CAP_SYS_ADMIN` (cron,
    /// a shell) the namespace is made before the uid is taken; where that is refused (the
    /// drill's systemd unit keeps no `CAP_SYS_ADMIN`) php's uid makes it inside a user
    /// namespace of its own that maps only that uid. If neither can be made, `cmd` does not
    /// start: php never runs with the network.
    pub fn confine(&self, cmd: &mut Command) {
        self.confine_by(cmd, true);
    }

    /// [`Sandbox::confine`], the network namespace made as root first only when `as_root`
    /// (tests take the other way on purpose).
    fn confine_by(&self, cmd: &mut Command, as_root: bool) {
        let Some(uid) = self.uid else {
            return;
        };
        // Made before the fork: between fork and exec nothing may allocate.
        let map = format!("{uid} {uid} 1\n").into_bytes();
        let hook = move || -> std::io::Result<()> {
            // SAFETY: between fork and exec only async-signal-safe calls are made, on
            // buffers made before the fork.
            unsafe {
                if libc::setsid() < 0 || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let netns = as_root && libc::unshare(libc::CLONE_NEWNET) == 0;
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // php dies with the drill, even one killed outright (its forks are
                // killed by kill_all, or with the unit's cgroup).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if !netns {
                    // Taking the uid made us undumpable, so /proc/self is root's: made ours
                    // again to write the maps (only this uid could ptrace us anyway).
                    if libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) != 0
                        || libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    write_proc(c"/proc/self/setgroups", b"deny")?;
                    write_proc(c"/proc/self/uid_map", &map)?;
                    write_proc(c"/proc/self/gid_map", &map)?;
                }
            }
            Ok(())
        };
        // SAFETY: the hook only calls async-signal-safe functions.
        unsafe {
            cmd.pre_exec(hook);
        }
    }

    /// Check that php can be confined here, before anything is started: an error says what
    /// is missing.
    pub fn ensure_possible(&self) -> anyhow::Result<()> {
        let Some(uid) = self.uid else {
            return Ok(());
        };
        let mut cmd = Command::new("/bin/true");
        self.confine(&mut cmd);
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => bail!("/bin/true, confined as php would be, failed ({s})"),
            Err(e) => bail!(
                "cannot confine the drill's php (uid {uid}, a network namespace of its own): {e}; php never runs with the network: run the drill as root with CAP_SYS_ADMIN, or allow user namespaces (the drill's unit has RestrictNamespaces=user net; sysctl user.max_user_namespaces above 0)"
            ),
        }
    }

    /// Kill every process running as php's uid (php itself and whatever it started), until
    /// none is left.
    pub fn kill_all(&self) {
        let Some(uid) = self.uid else {
            return;
        };
        for round in 0..50 {
            // The first round kills whether or not /proc shows them (the drill's unit hides
            // other users' processes from root: ProtectProc=invisible).
            if round > 0 && !uids_running().map(|u| u.contains(&uid)).unwrap_or(false) {
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

/// Write all of `data` to the file `path` (`/proc/self/...`), between fork and exec.
///
/// # Safety
/// Async-signal-safe: open, write and close only.
unsafe fn write_proc(path: &std::ffi::CStr, data: &[u8]) -> std::io::Result<()> {
    // SAFETY: plain system calls on a valid path and buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        if n != data.len() as isize {
            return Err(e);
        }
    }
    Ok(())
}

/// The uids of the running processes (those /proc shows).
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

/// Whether systemd has registered `uid` for one of its dynamic users.
fn systemds(uid: u32) -> bool {
    std::fs::symlink_metadata(format!("/run/systemd/dynamic-uid/{uid}")).is_ok()
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
        let s = Sandbox::new().unwrap();
        let uid = s.uid.unwrap();
        assert!((FIRST..=LAST).contains(&uid));
        assert!(!known_user(uid));
        // As root with CAP_SYS_ADMIN, and as the drill's unit (without it) must: in a user
        // namespace of php's uid.
        for as_root in [true, false] {
            let mut cmd = Command::new("sh");
            cmd.args([
                "-c",
                "id -u; id -G; cat /proc/net/tcp /proc/net/tcp6 | wc -l; grep NoNewPrivs /proc/self/status",
            ]);
            s.confine_by(&mut cmd, as_root);
            let out = cmd.output().unwrap();
            let said = format!("{as_root}: {}", String::from_utf8_lossy(&out.stdout));
            let lines: Vec<&str> = said.lines().collect();
            assert!(lines[0].ends_with(&format!(" {uid}")), "{said}");
            assert_eq!(lines[1], uid.to_string(), "{said}");
            // A network namespace of its own: no sockets listed but the two headers.
            assert_eq!(lines[2].trim(), "2", "{said}");
            assert_eq!(lines[3].split_whitespace().nth(1), Some("1"), "{said}");
        }
        s.ensure_possible().unwrap();
    }
}

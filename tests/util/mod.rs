//! The test harness: real servers started on free loopback ports in temporary directories,
//! and always stopped (each server's guard kills its whole process group on drop, also when a
//! test panics).

pub mod browser;
pub mod d1;
pub mod dashboard;
pub mod mariadb;
pub mod minisign;
pub mod moto;
pub mod s3;
pub mod smtp;
pub mod wordpress;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The binary under test: the one cargo built, or `WPBACKUP_TEST_BIN` (to run the suite
/// against a release binary, e.g. the portable one `scripts/release.sh` makes).
pub fn bin() -> PathBuf {
    match std::env::var_os("WPBACKUP_TEST_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_wpbackup")),
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A server process in its own process group, killed (with its children) when dropped.
pub struct Server {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Server {
    /// Spawn `cmd` with stdout and stderr to `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> Server {
        let out = std::fs::File::create(log).expect("server log");
        let err = out.try_clone().expect("server log");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Server {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The last lines of the server's log, for panic messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Wait for the process to end by itself (its group is still killed on drop).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("server already killed");
        child.wait().expect("wait for the process")
    }

    /// Kill the process group now and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        // Logs are for panic messages while the server lives; none is left behind.
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Poll `ready` until it is true, or panic after `timeout` with `what` and `server`'s log.
pub fn wait_for(what: &str, timeout: Duration, server: &Server, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} not ready after {timeout:?}; log:\n{}",
        server.log_tail()
    );
}

/// True when something accepts TCP connections on 127.0.0.1:port.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .is_ok()
}

/// Run a command, panic with its output unless it succeeds, return stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server shared by the tests that run at the same time (each on a place of its own in it,
/// a prefix or a bucket): started by the first, stopped (dropped) when the last one holding
/// it ends, so none is left running after the tests, also when one fails.
pub struct Shared<T> {
    slot: Mutex<Weak<T>>,
}

impl<T> Shared<T> {
    pub const fn new() -> Shared<T> {
        Shared {
            slot: Mutex::new(Weak::new()),
        }
    }

    /// The running server, or a new one from `start`.
    pub fn get(&self, start: impl FnOnce() -> T) -> Arc<T> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(start());
        *slot = Arc::downgrade(&server);
        server
    }
}

/// Stop (SIGSTOP) a server's whole process group: it keeps its port and accepts connections
/// (the kernel does), but answers nothing, like a provider that hangs.
pub fn freeze(pid: u32) {
    let r = unsafe { libc::kill(-(pid as i32), libc::SIGSTOP) };
    assert_eq!(r, 0, "cannot stop process group {pid}");
}

/// No file of the process may grow past `limit` bytes: writes fail with EFBIG, as they fail
/// with ENOSPC on a full disk.
pub fn limit_file_size(cmd: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt as _;
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

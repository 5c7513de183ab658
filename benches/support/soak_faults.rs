//! The soak's faults (issue 15 item 3): a seeded pseudo-random choice among them, and how each
//! is put on the real servers during a run and taken off after it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::util::d1::D1Sim;
use crate::util::mariadb::MariaDb;
use crate::util::s3::S3Server;

/// splitmix64: a few lines, the same sequence for the same seed on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One run's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    None,
    PrimaryKilled,
    PrimaryStalled,
    Primary500,
    DbKilled,
    DbStalled,
    SigTerm,
    SigKill,
    DiskFull,
    D1Down,
}

pub const ALL: &[Fault] = &[
    Fault::None,
    Fault::PrimaryKilled,
    Fault::PrimaryStalled,
    Fault::Primary500,
    Fault::DbKilled,
    Fault::DbStalled,
    Fault::SigTerm,
    Fault::SigKill,
    Fault::DiskFull,
    Fault::D1Down,
];

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::PrimaryKilled => "primary S3 killed",
            Fault::PrimaryStalled => "primary S3 stalled (SIGSTOP)",
            Fault::Primary500 => "primary S3 answering 500",
            Fault::DbKilled => "MariaDB killed",
            Fault::DbStalled => "MariaDB stalled (SIGSTOP)",
            Fault::SigTerm => "SIGTERM to wpbackup",
            Fault::SigKill => "SIGKILL to wpbackup",
            Fault::DiskFull => "local storage full (RLIMIT_FSIZE)",
            Fault::D1Down => "D1 answering 500",
        }
    }

    /// Faults in place before the run starts.
    pub fn before_start(self) -> bool {
        matches!(self, Fault::Primary500 | Fault::D1Down | Fault::DiskFull)
    }

    /// Faults that may leave an upload open on the primary: it cannot be aborted on a server
    /// that is gone or answers nothing (the next runs remove it after 12 hours where the
    /// server lists uploads; s3s-fs cannot).
    pub fn may_leave_upload_on_primary(self) -> bool {
        matches!(
            self,
            Fault::PrimaryKilled | Fault::PrimaryStalled | Fault::Primary500 | Fault::SigKill
        )
    }
}

/// The servers a fault acts on.
pub struct Servers<'a> {
    pub primary: &'a mut S3Server,
    pub db: &'a mut MariaDb,
    pub d1: &'a D1Sim,
}

/// What is in place until `heal`.
#[derive(Default)]
pub struct Active {
    answering_500: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    primary_down: bool,
    primary_stopped: bool,
    db_down: bool,
    db_stopped: bool,
    d1_failing: bool,
}

/// Faults set before the run starts (the server is already broken when wpbackup comes).
pub fn before_run(fault: Fault, s: &mut Servers) -> Active {
    let mut active = Active::default();
    match fault {
        Fault::Primary500 => {
            s.primary.kill();
            active.primary_down = true;
            active.answering_500 = Some(answer_500(s.primary.port));
        }
        Fault::D1Down => {
            s.d1.faults(serde_json::json!({ "fail_after": 0 }));
            active.d1_failing = true;
        }
        _ => {}
    }
    active
}

/// Faults struck during the run, after its seeded delay (wpbackup's own signals are sent by
/// the caller, which holds the process).
pub fn during_run(fault: Fault, s: &mut Servers, active: &mut Active) {
    match fault {
        Fault::PrimaryKilled => {
            s.primary.kill();
            active.primary_down = true;
        }
        Fault::PrimaryStalled => {
            signal_group(s.primary.pid(), libc::SIGSTOP);
            active.primary_stopped = true;
        }
        Fault::DbKilled => {
            s.db.kill();
            active.db_down = true;
        }
        Fault::DbStalled => {
            signal_group(s.db.pid(), libc::SIGSTOP);
            active.db_stopped = true;
        }
        _ => {}
    }
}

/// Put every server back as it was.
pub fn heal(s: &mut Servers, active: Active) {
    if let Some((stop, handle)) = active.answering_500 {
        stop.store(true, Ordering::SeqCst);
        let _ = handle.join();
    }
    if active.primary_stopped {
        signal_group(s.primary.pid(), libc::SIGCONT);
    }
    if active.primary_down {
        s.primary.restart();
    }
    if active.db_stopped {
        signal_group(s.db.pid(), libc::SIGCONT);
    }
    if active.db_down {
        s.db.restart();
    }
    if active.d1_failing {
        s.d1.faults(serde_json::json!({}));
    }
}

fn signal_group(pid: Option<u32>, sig: i32) {
    if let Some(pid) = pid {
        unsafe {
            libc::kill(-(pid as i32), sig);
        }
    }
}

/// Listen on the primary's port and answer every request with S3's 500 InternalError.
fn answer_500(port: u16) -> (Arc<AtomicBool>, JoinHandle<()>) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the primary's port");
    listener.set_nonblocking(true).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                    let mut buf = [0u8; 8192];
                    let _ = conn.read(&mut buf);
                    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>soak fault</Message></Error>";
                    let _ = write!(
                        conn,
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (stop, handle)
}

//! The drill's php has no network (a network namespace of its own, with nothing in it): its
//! only way out is this relay, a unix socket in the scratch directory that the drill itself
//! forwards to the scratch database's server over TCP. php reaches that server and nothing
//! else: no other port, host or loopback service, whatever the site's code tries. (A scratch
//! database reached through a unix socket needs no relay: php connects to that socket.)
//!
//! The relay runs in threads of the drill and stops with it ([`Relay`] is a guard); a
//! connection lasts as long as php holds it, and ends when php (killed at the end of the boot
//! check) does.

use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// The socket's name in the scratch directory.
const NAME: &str = "wpbackup-drill-db.sock";

/// A relay from a unix socket to one TCP server; stopped when dropped.
pub struct Relay {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listen in `dir` and forward each connection to `host:port` (resolved now, by the drill).
    pub fn start(dir: &Path, host: &str, port: u16) -> anyhow::Result<Relay> {
        let to: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve the scratch database's host {host}"))?
            .collect();
        if to.is_empty() {
            bail!("the scratch database's host {host} has no address");
        }
        let path = dir.join(NAME);
        let listener = UnixListener::bind(&path).with_context(|| {
            format!(
                "cannot listen on {} (php's way to the scratch database; a unix socket's path is at most 107 bytes: point TMPDIR at a shorter directory)",
                path.display()
            )
        })?;
        listener
            .set_nonblocking(true)
            .context("cannot set up the drill's database relay")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || serve(listener, &to, &stopped));
        Ok(Relay {
            path,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket php connects to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Accept until told to stop; each connection forwarded in threads of its own.
fn serve(listener: UnixListener, to: &[SocketAddr], stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((php, _)) => {
                let to = to.to_vec();
                std::thread::spawn(move || forward(php, &to));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!("the drill's database relay stopped accepting: {e}");
                return;
            }
        }
    }
}

/// Copy both ways between php and the server until either side ends.
fn forward(php: UnixStream, to: &[SocketAddr]) {
    let server = to
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, Duration::from_secs(10)).ok());
    let (Some(server), Ok(())) = (server, php.set_nonblocking(false)) else {
        return;
    };
    let (Ok(mut php_in), Ok(mut server_out)) = (php.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut php_in, &mut server_out);
        let _ = server_out.shutdown(Shutdown::Write);
    });
    let (mut server_in, mut php_out) = (server, php);
    let _ = std::io::copy(&mut server_in, &mut php_out);
    let _ = php_out.shutdown(Shutdown::Both);
    let _ = server_in.shutdown(Shutdown::Both);
    let _ = up.join();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn the_relay_forwards_both_ways_and_stops_when_dropped() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let echo = std::thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            c.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::start(dir.path(), "127.0.0.1", port).unwrap();
        let mut php = UnixStream::connect(relay.path()).unwrap();
        php.write_all(b"hello").unwrap();
        let mut got = Vec::new();
        php.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"HELLO");
        echo.join().unwrap();
        let path = relay.path().to_path_buf();
        drop(relay);
        assert!(!path.exists(), "the socket is removed with the relay");
    }
}

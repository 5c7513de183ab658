//! The drill's child processes (the database client importing a dump, php booting WordPress),
//! run so that a signal stops them: the child is polled, and killed as soon as SIGTERM or
//! SIGINT has been received ([`crate::interrupt`]) or its time is up, so the drill can clean
//! up at once instead of waiting for an import of gigabytes to finish.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// What the child reads on stdin.
pub enum Input {
    None,
    /// Bytes written to the child's stdin from a thread as it reads them.
    Stream(Box<dyn Read + Send>),
}

/// Why a child was stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error("interrupted by {}", crate::interrupt::name(*.0))]
    Signal(i32),
    #[error("{what} did not finish within {secs} s and was stopped")]
    TimedOut { what: String, secs: u64 },
}

/// Run `cmd` (`what` names it in errors) with `input`, for at most `limit`; its output.
pub fn run(mut cmd: Command, what: &str, input: Input, limit: Duration) -> anyhow::Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(match &input {
        Input::None => Stdio::null(),
        Input::Stream(_) => Stdio::piped(),
    });
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    // A child that stops reading (it failed, or was killed) ends the copy with a broken pipe;
    // its exit status says what happened.
    let feed = match (input, child.stdin.take()) {
        (Input::Stream(mut from), Some(mut to)) => Some(std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
        })),
        _ => None,
    };
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = collect(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = collect(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("cannot wait for a child")? {
            break status;
        }
        let stop = match crate::interrupt::received() {
            Some(sig) => Some(Stopped::Signal(sig)),
            None if started.elapsed() >= limit => Some(Stopped::TimedOut {
                what: what.to_string(),
                secs: limit.as_secs(),
            }),
            None => None,
        };
        if let Some(stop) = stop {
            let _ = child.kill();
            let _ = child.wait();
            bail!(stop);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(feed) = feed {
        let _ = feed.join();
    }
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// The last bytes of a child's stderr, as one line.
pub fn tail(buf: &[u8]) -> String {
    let start = buf.len().saturating_sub(600);
    let s = String::from_utf8_lossy(&buf[start..])
        .trim()
        .replace('\n', " | ");
    if s.is_empty() { "no message".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_input_and_a_time_limit() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat; echo err >&2"]);
        let input = Input::Stream(Box::new(std::io::Cursor::new(b"in".to_vec())));
        let out = run(cmd, "sh", input, Duration::from_secs(60)).unwrap();
        assert_eq!(out.stdout, b"in");
        assert_eq!(tail(&out.stderr), "err");
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        let e = run(cmd, "sleep", Input::None, Duration::ZERO).unwrap_err();
        assert!(
            e.to_string().contains("sleep did not finish within 0 s"),
            "{e}"
        );
    }
}

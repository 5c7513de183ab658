//! What a person sees of a backup (issue 16 item 10): on a terminal, each site's bar goes
//! through the phases (files, dump, upload, completing) with the bytes read and uploaded and
//! the rate, and the summary ends with the run's total time; off a terminal (systemd, cron, a
//! pipe) no bar is drawn and `--json` carries the total time.

use std::process::Command;

use rexpect::process::WaitStatus;

use crate::fixture::Fixture;

/// `wpbackup backup` on a pseudo-terminal 200 columns wide (the bar is cut to the width).
fn backup_on_a_terminal(f: &Fixture) -> String {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("stty cols 200 rows 60; exec \"$@\"")
        .arg("sh")
        .arg(crate::util::bin())
        .args(["--home", &f.home().to_string_lossy(), "backup"])
        .env("TERM", "xterm")
        .env_remove("WPBACKUP_HOME")
        .env_remove("RUST_LOG")
        .env_remove("SERVER_ID");
    let mut p = rexpect::session::spawn_command(cmd, Some(180_000)).expect("spawn on a pty");
    // rexpect hands each byte over as one char: back to the UTF-8 the terminal got.
    let bytes: Vec<u8> = p
        .exp_eof()
        .expect("the backup ends")
        .chars()
        .map(|c| c as u8)
        .collect();
    let seen = String::from_utf8_lossy(&bytes).into_owned();
    match p.process().wait() {
        Ok(WaitStatus::Exited(_, 0)) => {}
        other => panic!("backup on a terminal ended with {other:?}\n{seen}"),
    }
    seen
}

#[test]
fn on_a_terminal_the_bar_shows_each_phase_and_off_one_nothing_is_drawn() {
    let f = Fixture::new("progress");
    let seen = backup_on_a_terminal(&f);
    let mut last = 0;
    for phase in ["files", "dump", "upload", "completing"] {
        let shown = format!("{phase} → primary: ");
        let at = seen
            .find(&shown)
            .unwrap_or_else(|| panic!("{shown:?} never shown on the terminal:\n{seen}"));
        assert!(at >= last, "{phase} shown out of order:\n{seen}");
        last = at;
    }
    assert!(
        seen.contains(" read, ") && seen.contains(" uploaded, ") && seen.contains("/s"),
        "{seen}"
    );
    assert!(
        seen.contains("total: 1 site(s), 0 failed, the run took "),
        "{seen}"
    );

    let out = f.run(&["--json", "backup"]);
    assert_eq!(out.status.code(), Some(0));
    for (name, bytes) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains('\u{1b}'), "escape codes on {name}:\n{text}");
        assert!(!text.contains("→ primary: "), "a bar on {name}:\n{text}");
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json");
    let total = doc["duration_secs"]
        .as_f64()
        .expect("the run's duration_secs");
    let site = doc["sites"][0]["duration_secs"]
        .as_f64()
        .expect("the site's");
    assert!(total >= site && site > 0.0, "{doc}");
}

//! `wpbackup configure` as a new user meets it: the wizard in a real pseudo-terminal, driven by
//! keystrokes, finds the harness's WordPress site, tests its database, catches a mistyped S3
//! secret at the storage step, writes private files, and the config it writes backs up into
//! the bucket. The non-interactive mode does the same from an answers file, keeps what is
//! configured when run again, refuses to write a storage that fails its test, and migrates the
//! original tool's sites.json.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use rexpect::process::WaitStatus;
use rexpect::session::PtySession;
use serde_json::{Value, json};

use crate::fixture::{self, BUCKET, Fixture, PRIMARY_KEY, PRIMARY_SECRET};

/// A fixture whose home directory is empty: configure starts from nothing.
fn fresh(name: &str) -> Fixture {
    let f = Fixture::new(name);
    std::fs::remove_file(f.home().join("config.json")).unwrap();
    std::fs::remove_file(f.home().join(".env")).unwrap();
    f
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// `configure` with the fixture's home, searching only `scan` for sites.
fn configure_cmd(f: &Fixture, args: &[&str]) -> Command {
    let mut cmd = f.cmd(&["configure"]);
    cmd.args(args)
        .env("WPBACKUP_SCAN_ROOTS", "")
        .env("NO_COLOR", "1");
    cmd
}

/// The wizard's output read so far, kept to check that no secret was ever shown.
struct Pty {
    p: PtySession,
    seen: String,
}

impl Pty {
    /// Wait for `s` (ASCII: the pty reader decodes bytes one by one, so `✓` arrives mangled).
    fn expect(&mut self, s: &str) {
        match self.p.exp_string(s) {
            Ok(before) => {
                self.seen.push_str(&before);
                self.seen.push_str(s);
            }
            Err(e) => panic!("waiting for {s:?}: {e}\n--- output so far:\n{}", self.seen),
        }
    }

    /// Type `text` and press Enter (a carriage return, as a terminal in raw mode sends it).
    fn answer(&mut self, text: &str) {
        self.p.send(text).unwrap();
        self.p.send("\r").unwrap();
        self.p.flush().unwrap();
    }

    fn prompt(&mut self, prompt: &str, text: &str) {
        self.expect(prompt);
        self.answer(text);
    }
}

#[test]
fn the_wizard_finds_the_site_catches_a_wrong_secret_and_writes_a_config_that_backs_up() {
    let f = fresh("wizard");
    let scan = f.site.path.parent().unwrap().to_string_lossy().into_owned();
    let mut t = Pty::spawn(&f, &scan);
    answer_a_first_run(&mut t, &f);
    let rest = t.p.exp_eof().unwrap();
    t.seen.push_str(&rest);
    match t.p.process().wait().unwrap() {
        WaitStatus::Exited(_, 0) => {}
        other => panic!("configure ended with {other:?}\n{}", t.seen),
    }
    for secret in [PRIMARY_SECRET, "not-the-secret", &f.site.db_password] {
        assert!(
            !t.seen.contains(secret),
            "a secret reached the terminal:\n{}",
            t.seen
        );
    }
    the_first_run_wrote_a_private_config_that_backs_up(&f);
    a_rerun_with_enter_everywhere_keeps_everything(&f, &scan);
    a_rerun_adding_d1_offers_the_dashboard_deploy_commands(&f, &scan);
}

impl Pty {
    fn spawn(f: &Fixture, scan: &str) -> Pty {
        let p = rexpect::session::spawn_command(wizard_cmd(f, scan), Some(90_000)).unwrap();
        Pty {
            p,
            seen: String::new(),
        }
    }
}

/// The wizard on an empty home: the site found is taken, the storage's secret is mistyped
/// once, then corrected; no D1, no email; written.
fn answer_a_first_run(t: &mut Pty, f: &Fixture) {
    t.prompt("Server ID", "wizard-host");
    t.expect("Found 1 WordPress site");
    t.prompt("Sites to back up", ""); // found sites come preselected
    t.prompt("Another WordPress folder", "");
    t.prompt("Name for", "");
    t.expect("site wizard: database");

    // First attempt: the secret is mistyped, and the storage step says so.
    t.prompt("Provider", "Other S3");
    t.prompt("Storage name", "primary");
    t.prompt("Region", "");
    t.prompt("Endpoint URL", &f.primary.endpoint);
    t.prompt("Bucket", BUCKET);
    t.prompt("Key prefix", "");
    t.prompt("Access key ID", PRIMARY_KEY);
    t.prompt("Secret access key", "not-the-secret");
    t.expect("storage primary: credentials: the access key or secret key was rejected");
    t.prompt("What now?", ""); // change the settings and test again
    // Second attempt: everything as typed before is the default; Enter keeps the access key.
    t.prompt("Provider", "");
    t.prompt("Storage name", "");
    t.prompt("Region", "");
    t.prompt("Endpoint URL", "");
    t.prompt("Bucket", "");
    t.prompt("Key prefix", "");
    t.prompt("Access key ID", "");
    t.prompt("Secret access key", PRIMARY_SECRET);
    t.expect("storage primary: wrote, read back and deleted a test object");
    t.prompt("Storage:", ""); // Continue
    t.prompt("Cloudflare D1", "n");
    t.prompt("Email backup reports", "n");
    t.expect("Summary:");
    t.expect("PRIMARY_SECRET_ACCESS_KEY (set)");
    t.prompt("Write config.json and .env?", "y");
    t.expect("Wrote ");
}

fn the_first_run_wrote_a_private_config_that_backs_up(f: &Fixture) {
    let config = f.home().join("config.json");
    let env = f.home().join(".env");
    assert_eq!(mode(&config), 0o600);
    assert_eq!(mode(&env), 0o600);
    let c = read_json(&config);
    assert_eq!(c["server_id"], "wizard-host");
    assert_eq!(c["sites"][0]["name"], "wizard");
    assert!(c["sites"][0].get("database").is_none(), "{c}");
    assert_eq!(c["storage"][0]["endpoint"], f.primary.endpoint.as_str());
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains(PRIMARY_SECRET), "{text}");
    // No test object was left in the bucket.
    assert!(fixture::stored(&f.primary).is_empty());

    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    let stored = fixture::stored(&f.primary);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        stored[0].0.starts_with("wizard-host/wizard/wizard_"),
        "{stored:?}"
    );
    let dir = fixture::extract(&stored[0].1);
    assert!(dir.path().join("files/wp-config.php").exists());
}

/// Run again and press Enter at every question: everything is kept as it was.
fn a_rerun_with_enter_everywhere_keeps_everything(f: &Fixture, scan: &str) {
    let config = f.home().join("config.json");
    let env = f.home().join(".env");
    let config_before = std::fs::read(&config).unwrap();
    let env_before = std::fs::read(&env).unwrap();
    let mut t = Pty::spawn(f, scan);
    t.prompt("Server ID", "");
    t.prompt("Sites to back up", "");
    t.prompt("Another WordPress folder", "");
    t.prompt("Name for", "");
    t.expect("site wizard: database");
    // The configured storage is tested again before anything is asked about it.
    t.expect("storage primary: wrote, read back and deleted a test object");
    t.prompt("Storage:", "");
    t.prompt("Cloudflare D1", "");
    t.prompt("Email backup reports", "");
    t.expect("wizard-host");
    t.prompt("Write config.json and .env?", "");
    t.expect("Wrote ");
    t.p.exp_eof().unwrap();
    assert_eq!(std::fs::read(&config).unwrap(), config_before);
    assert_eq!(std::fs::read(&env).unwrap(), env_before);
}

/// Run again, add D1 (the simulator): once it answered, the wizard offers the commands that
/// deploy the dashboard over that database, prints them with its id and without the token,
/// and takes the dashboard's address for the report's links.
fn a_rerun_adding_d1_offers_the_dashboard_deploy_commands(f: &Fixture, scan: &str) {
    use crate::util::d1::{ACCOUNT, D1Sim, DATABASE, TOKEN};
    let d1 = D1Sim::start();
    let mut t = Pty::spawn(f, scan);
    for prompt in [
        "Server ID",
        "Sites to back up",
        "Another WordPress folder",
        "Name for",
    ] {
        t.prompt(prompt, "");
    }
    t.expect("storage primary: wrote, read back and deleted a test object");
    t.prompt("Storage:", "");
    t.prompt("Cloudflare D1", "y");
    t.prompt("Cloudflare account id", ACCOUNT);
    t.prompt("D1 database id", DATABASE);
    t.prompt("API token", TOKEN);
    t.prompt("API address", &d1.api_base);
    t.expect("Cloudflare D1: a test query answered");
    t.prompt("Print the commands that deploy the fleet dashboard", "y");
    t.expect(&format!("database_id = \"{DATABASE}\"/' wrangler.toml"));
    t.expect("npx wrangler secret put DASHBOARD_TOKEN");
    t.prompt("Dashboard address", "https://dash.example.workers.dev/");
    t.prompt("Email backup reports", "n");
    t.prompt("Write config.json and .env?", "y");
    t.expect("Wrote ");
    t.seen.push_str(&t.p.exp_eof().unwrap());
    assert!(
        !t.seen.contains(TOKEN),
        "the API token was shown:\n{}",
        t.seen
    );
    let c = read_json(&f.home().join("config.json"));
    assert_eq!(
        c["dashboard_url"], "https://dash.example.workers.dev",
        "{c}"
    );
}

/// `configure` in a shell that gives the pty a size first (a fresh pty is 0x0).
fn wizard_cmd(f: &Fixture, scan: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("stty cols 200 rows 60; exec \"$@\"")
        .arg("sh")
        .arg(crate::util::bin())
        .args(["--home", &f.home().to_string_lossy()])
        .args(["configure", "--scan", scan])
        .env("WPBACKUP_SCAN_ROOTS", "")
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("WPBACKUP_HOME")
        .env_remove("SERVER_ID");
    cmd
}

fn answers(f: &Fixture, secret: &str) -> Value {
    json!({
        "server_id": "auto-host",
        "sites": [{"path": f.site.path, "exclude": ["*.log"]}],
        "storage": [
            {"name": "primary", "preset": "s3", "endpoint": f.primary.endpoint, "bucket": BUCKET,
             "access_key": PRIMARY_KEY, "secret_key": secret},
            {"name": "disk", "preset": "local", "path": f.home().join("archives")}
        ]
    })
}

fn write_answers(f: &Fixture, v: &Value) -> String {
    let p = f.home().join("answers.json");
    std::fs::write(&p, serde_json::to_string(v).unwrap()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn non_interactive_answers_write_a_working_config_and_a_rerun_keeps_it() {
    let f = fresh("answers");
    let a = write_answers(&f, &answers(&f, PRIMARY_SECRET));
    let out = configure_cmd(&f, &["--non-interactive", "--answers", &a])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("✓ site answers"), "{stdout}");
    assert!(stdout.contains("✓ storage primary"), "{stdout}");
    assert!(stdout.contains("✓ storage disk"), "{stdout}");
    assert!(!stdout.contains(PRIMARY_SECRET), "{stdout}");
    let config = f.home().join("config.json");
    assert_eq!(mode(&config), 0o600);
    assert_eq!(mode(&f.home().join(".env")), 0o600);

    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(fixture::stored(&f.primary).len(), 1);

    // Someone adds settings by hand; a rerun that changes only the server id keeps all of it.
    let mut c = read_json(&config);
    c["retention"] = json!({"keep_daily": 7});
    c["sites"][0]["enabled"] = json!(true);
    std::fs::write(&config, serde_json::to_string_pretty(&c).unwrap()).unwrap();
    let env_path = f.home().join(".env");
    let env_before = std::fs::read_to_string(&env_path).unwrap();
    std::fs::write(&env_path, format!("# my note\n{env_before}EXTRA='kept'\n")).unwrap();
    let a = write_answers(&f, &json!({"server_id": "renamed"}));
    let out = configure_cmd(&f, &["--non-interactive", "--answers", &a])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let after = read_json(&config);
    c["server_id"] = json!("renamed");
    assert_eq!(after, c, "only server_id may change");
    let env_after = std::fs::read_to_string(&env_path).unwrap();
    assert!(env_after.starts_with("# my note\n"), "{env_after}");
    assert!(env_after.contains("EXTRA='kept'"), "{env_after}");
    assert!(env_after.contains(PRIMARY_SECRET), "the secret is kept");
    assert_eq!(mode(&config), 0o600);
    assert_eq!(mode(&env_path), 0o600);
}

#[test]
fn a_failing_storage_is_named_by_what_failed_and_nothing_is_written() {
    let f = fresh("badstorage");
    let s3 = |name: &str, endpoint: &str, bucket: &str, secret: &str| {
        json!({"name": name, "preset": "s3", "endpoint": endpoint, "bucket": bucket,
               "access_key": PRIMARY_KEY, "secret_key": secret})
    };
    let refused = format!("http://127.0.0.1:{}", crate::util::free_port());
    let tls = format!("https://127.0.0.1:{}", f.primary.port);
    let a = json!({
        "sites": [{"path": f.site.path}],
        "storage": [
            s3("typo", &f.primary.endpoint, BUCKET, "mistyped-secret"),
            s3("nobucket", &f.primary.endpoint, "no-such-bucket", PRIMARY_SECRET),
            s3("refused", &refused, BUCKET, PRIMARY_SECRET),
            s3("tls", &tls, BUCKET, PRIMARY_SECRET),
            s3("good", &f.primary.endpoint, BUCKET, PRIMARY_SECRET),
        ]
    });
    let a = write_answers(&f, &a);
    let out = configure_cmd(&f, &["--non-interactive", "--answers", &a])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    for want in [
        "✗ storage typo: credentials: the access key or secret key was rejected",
        "✗ storage nobucket: bucket: it does not exist",
        "✗ storage refused: connection: nothing answers at the endpoint",
        "✗ storage tls: TLS: the secure connection failed",
        "✓ storage good: wrote, read back and deleted a test object",
        "✓ site badstorage: database",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert!(stderr.contains("4 check(s) failed"), "{stderr}");
    assert!(stderr.contains("nothing written"), "{stderr}");
    assert!(!stdout.contains("mistyped-secret") && !stderr.contains("mistyped-secret"));
    assert!(!stdout.contains(PRIMARY_SECRET) && !stderr.contains(PRIMARY_SECRET));
    assert!(!f.home().join("config.json").exists());
    assert!(!f.home().join(".env").exists());
}

#[test]
fn the_deprecated_sites_json_is_migrated() {
    let f = fresh("legacy");
    std::fs::write(
        f.home().join("sites.json"),
        serde_json::to_string(&json!([
            {"name": "legacy", "path": f.site.path, "db_name": f.site.db_name,
             "db_user": f.site.db_user, "db_password": f.site.db_password,
             "url": f.site.url, "schedule": "daily"},
            {"name": "elsewhere", "path": "/srv/www/other", "db_name": "wp_other",
             "db_user": "other", "db_password": "pw-other", "db_host": "db.internal"}
        ]))
        .unwrap(),
    )
    .unwrap();
    // Before the migration, backup points the way.
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("deprecated sites.json") && stderr.contains("wpbackup configure"),
        "{stderr}"
    );

    let out = configure_cmd(
        &f,
        &[
            "--non-interactive",
            "--no-test",
            "--local-storage",
            &f.home().join("archives").to_string_lossy(),
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("migrated 2 site(s)"), "{stdout}");
    assert!(stdout.contains("[0]: schedule: not mapped"), "{stdout}");
    assert!(stdout.contains("[0]: url: not needed"), "{stdout}");
    assert!(!stdout.contains("pw-other"), "{stdout}");
    let c = read_json(&f.home().join("config.json"));
    assert_eq!(c["sites"][0]["name"], "legacy");
    // Same credentials as wp-config.php: read from there, not copied.
    assert!(c["sites"][0].get("database").is_none(), "{c}");
    assert_eq!(c["sites"][1]["database"]["host"], "db.internal");
    assert_eq!(
        c["sites"][1]["database"]["password_env"],
        "ELSEWHERE_DB_PASSWORD"
    );
    let env = std::fs::read_to_string(f.home().join(".env")).unwrap();
    assert!(env.contains("ELSEWHERE_DB_PASSWORD=pw-other"), "{env}");

    // The migrated config backs the site up.
    let out = f.run(&["backup", "--site", "legacy"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        f.home()
            .join("archives")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
}

#[test]
fn without_a_terminal_configure_says_how_to_run_it() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(crate::util::bin())
        .args(["--home", &home.path().to_string_lossy(), "configure"])
        .env_remove("WPBACKUP_HOME")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--non-interactive"), "{stderr}");
    assert!(!home.path().join("config.json").exists());
}

/// `configure --non-interactive` in an empty home with `answers`: (exit code, all output).
fn configure_in(home: &Path, answers: &Value) -> (Option<i32>, String) {
    let a = home.join("answers.json");
    std::fs::write(&a, answers.to_string()).unwrap();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new(crate::util::bin())
        .args(["--home", &home.to_string_lossy()])
        .args(["configure", "--non-interactive", "--answers"])
        .arg(&a)
        .env_remove("WPBACKUP_HOME")
        .env("WPBACKUP_SCAN_ROOTS", "")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), all)
}

#[test]
fn d1_and_smtp_are_tested_before_writing() {
    // No D1 or SMTP server here (the harness for those is another module's): closed loopback
    // ports show that both are tried, that a failure blocks the write, and that the token and
    // password stay out of the output.
    let home = tempfile::tempdir().unwrap();
    let closed = crate::util::free_port();
    let answers = json!({
        "server_id": "probe-host",
        "storage": [{"name": "disk", "preset": "local", "path": home.path().join("archives")}],
        "d1": {"account_id": "acct", "database_id": "db-1", "api_token": "tok-SECRET-1",
               "api_base": format!("http://127.0.0.1:{closed}/client/v4")},
        "smtp": {"host": "127.0.0.1", "port": closed, "tls": "none", "username": "u",
                 "password": "pw-SECRET-2", "from": "wpbackup@example.com",
                 "to": ["ops@example.com"]}
    });
    let (code, all) = configure_in(home.path(), &answers);
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("✓ storage disk"), "{all}");
    assert!(all.contains("✗ d1: cannot reach"), "{all}");
    assert!(
        all.contains(&format!(
            "✗ smtp: cannot send mail through SMTP server 127.0.0.1:{closed}"
        )),
        "{all}"
    );
    assert!(all.contains("2 check(s) failed"), "{all}");
    assert!(!all.contains("SECRET"), "{all}");
    assert!(!home.path().join("config.json").exists());
}

#[test]
fn d1_and_smtp_pass_their_tests_against_the_simulators_and_the_mail_arrives() {
    // The same D1 simulator (miniflare) and SMTP server (aiosmtpd with AUTH) as the sync-d1 and
    // report tests: configure's checks go through the very code those commands use.
    let d1 = crate::util::d1::D1Sim::start();
    let smtp = crate::util::smtp::SmtpServer::start();
    let home = tempfile::tempdir().unwrap();
    let answers = json!({
        "server_id": "probe-host",
        "storage": [{"name": "disk", "preset": "local", "path": home.path().join("archives")}],
        "d1": {"account_id": crate::util::d1::ACCOUNT, "database_id": crate::util::d1::DATABASE,
               "api_token": crate::util::d1::TOKEN, "api_base": d1.api_base},
        "smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": "none",
                 "username": crate::util::smtp::USER, "password": crate::util::smtp::PASSWORD,
                 "from": "wpbackup@example.com", "to": ["ops@example.com"]}
    });
    let (code, all) = configure_in(home.path(), &answers);
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("✓ d1"), "{all}");
    assert!(all.contains("✓ smtp"), "{all}");
    assert!(!all.contains(crate::util::d1::TOKEN), "{all}");
    assert!(!all.contains(crate::util::smtp::PASSWORD), "{all}");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "one test mail");
    let parsed = crate::util::smtp::parse(&mails[0].raw);
    assert!(parsed.subject.contains("test mail"), "{}", parsed.subject);
    assert!(parsed.text.contains("probe-host"), "{}", parsed.text);
    // The settings it tested are the ones it wrote, in a private .env.
    let env = home.path().join(".env");
    assert_eq!(mode(&env), 0o600);
    let text = std::fs::read_to_string(&env).unwrap();
    for key in [
        "CF_ACCOUNT_ID",
        "CF_API_TOKEN",
        "D1_DATABASE_ID",
        "D1_API_BASE",
        "SMTP_HOST",
        "SMTP_PASSWORD",
    ] {
        assert!(text.contains(key), "{key} missing from .env:\n{text}");
    }
}

/// Asked for in the answers file, configure prints the commands that deploy the dashboard over
/// the D1 database, with its id filled in and no token, and its sed line edits wrangler.toml
/// as README says; without D1 there is nothing to deploy over: a usage error, nothing written.
#[test]
fn the_dashboard_deploy_commands_carry_the_database_id_and_no_token() {
    use crate::util::d1::{ACCOUNT, DATABASE, TOKEN};
    let d1 = crate::util::d1::D1Sim::start();
    let home = tempfile::tempdir().unwrap();
    let disk = json!([{"name": "disk", "preset": "local", "path": home.path().join("archives")}]);
    let answers = json!({
        "server_id": "probe-host",
        "storage": disk,
        "d1": {"account_id": ACCOUNT, "database_id": DATABASE, "api_token": TOKEN,
               "api_base": d1.api_base},
        "dashboard_url": "https://dash.example.workers.dev/",
        "print_dashboard_commands": true
    });
    let (code, all) = configure_in(home.path(), &answers);
    assert_eq!(code, Some(0), "{all}");
    assert!(!all.contains(TOKEN), "{all}");
    let source = crate::util::dashboard::project_dir();
    assert!(
        all.contains(&format!("\n  cd {}\n", source.display())),
        "{all}"
    );
    assert!(all.contains(&format!("\n  export CLOUDFLARE_ACCOUNT_ID={ACCOUNT}\n")));
    assert!(all.contains("\n  npx wrangler deploy "), "{all}");
    assert!(
        all.contains("\n  npx wrangler secret put DASHBOARD_TOKEN "),
        "{all}"
    );
    let c = read_json(&home.path().join("config.json"));
    assert_eq!(
        c["dashboard_url"], "https://dash.example.workers.dev",
        "{c}"
    );

    // The printed sed line, run on a copy of wrangler.toml, points it at the database.
    let sed = all
        .lines()
        .find(|l| l.contains("sed -i"))
        .expect("sed line");
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(
        source.join("wrangler.toml"),
        copy.path().join("wrangler.toml"),
    )
    .unwrap();
    crate::util::run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(sed)
            .current_dir(copy.path()),
    );
    let toml = std::fs::read_to_string(copy.path().join("wrangler.toml")).unwrap();
    assert!(
        toml.contains(&format!("\ndatabase_id = \"{DATABASE}\"\n")),
        "{toml}"
    );

    let bare = tempfile::tempdir().unwrap();
    let answers = json!({"storage": disk, "print_dashboard_commands": true});
    let (code, all) = configure_in(bare.path(), &answers);
    assert_eq!(code, Some(2), "{all}");
    assert!(
        all.contains("print_dashboard_commands: the dashboard reads the D1 database"),
        "{all}"
    );
    assert!(!bare.path().join("config.json").exists());
}

/// `configure --binlog` (point-in-time recovery): on a server without a binary log it says
/// what to add to the server's config and writes nothing; on one with a binary log in ROW
/// format it checks that root through the socket may ship it and writes `"binlog": {}`; a
/// `binlog.database` user without the shipping privileges is named with the GRANT to run, and
/// passes once granted (issue 27).
#[test]
fn binlog_is_checked_on_the_server_and_for_the_user_that_ships_it() {
    // A server without a binary log.
    let f = Fixture::new("nobinlog");
    std::fs::remove_file(f.home().join("config.json")).unwrap();
    f.write_env(&[("MYSQL_UNIX_PORT", &f.db.socket.to_string_lossy())]);
    let a = write_answers(&f, &answers(&f, PRIMARY_SECRET));
    let out = configure_cmd(&f, &["--non-interactive", "--answers", &a, "--binlog"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("✗ binlog: the database server writes no binary log (log_bin is off): add this to its config"),
        "{said}"
    );
    for line in [
        "[mysqld]",
        "log_bin          = /var/log/mysql/mariadb-bin",
        "binlog_format    = ROW",
        "server_id        = 1",
    ] {
        assert!(said.lines().any(|l| l == line), "no {line:?} in:\n{said}");
    }
    assert!(!f.home().join("config.json").exists(), "nothing is written");
    drop(f);

    // A server with one: root through the socket may ship it.
    let f = Fixture::with_binlog("binlog");
    std::fs::remove_file(f.home().join("config.json")).unwrap();
    f.write_env(&[("MYSQL_UNIX_PORT", &f.db.socket.to_string_lossy())]);
    let a = write_answers(&f, &answers(&f, PRIMARY_SECRET));
    let out = configure_cmd(&f, &["--non-interactive", "--answers", &a, "--binlog"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("✓ binlog: the server writes a binary log in ROW format"),
        "{said}"
    );
    let config = f.home().join("config.json");
    assert_eq!(read_json(&config)["binlog"], json!({}));

    // Shipping as a user of its own, without the privileges: named, with the GRANT.
    f.db.sql("CREATE USER 'shipper'@'%' IDENTIFIED BY 'ship-pass'");
    let mut c = read_json(&config);
    c["binlog"] = json!({ "database": {
        "host": format!("127.0.0.1:{}", f.db.port), "user": "shipper", "password_env": "SHIP_PASSWORD",
    }});
    std::fs::write(&config, serde_json::to_string_pretty(&c).unwrap()).unwrap();
    let env = std::fs::read_to_string(f.home().join(".env")).unwrap();
    std::fs::write(
        f.home().join(".env"),
        format!("{env}SHIP_PASSWORD=ship-pass\n"),
    )
    .unwrap();
    let a = write_answers(&f, &json!({"binlog": {"every_minutes": 7}}));
    let out = configure_cmd(&f, &["--non-interactive", "--answers", &a])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("✗ binlog: shipper@% may not ship the binary log: it lacks RELOAD, BINLOG MONITOR, REPLICATION SLAVE on *.*; run GRANT RELOAD, BINLOG MONITOR, REPLICATION SLAVE ON *.* TO 'shipper'@'%'"),
        "{said}"
    );
    assert_eq!(read_json(&config), c, "nothing is written");

    f.db.sql("GRANT RELOAD, BINLOG MONITOR, REPLICATION SLAVE ON *.* TO 'shipper'@'%'");
    let out = configure_cmd(&f, &["--non-interactive", "--answers", &a])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("✓ binlog: "), "{said}");
    assert!(
        said.contains("shipper@% may rotate, list and read it"),
        "{said}"
    );
    c["binlog"]["every_minutes"] = json!(7);
    assert_eq!(read_json(&config)["binlog"], c["binlog"]);
    // And what it wrote ships.
    let out = f.run(&["binlog"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

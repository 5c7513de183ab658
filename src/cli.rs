//! The command line, as clap structs and nothing else (every command's `--help`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Back up WordPress sites (files and database) to S3-compatible storage, with failover.
///
/// wpbackup reads `config.json` and `.env` from its home directory (default
/// /opt/wordpress-backup), dumps each site's database, packs the site's files and the dump into
/// one tar.zst archive per site (open it with plain `tar --zstd -xf`), and streams it to the
/// configured storages in priority order until one takes it. Every run is recorded in
/// `backups.db`.
///
/// Exit status: 0 all done (warnings included); 1 a site or archive failed; 2 bad usage or
/// config; 75 another run holds the lock; 130 stopped by SIGINT (Ctrl-C); 143 stopped by
/// SIGTERM (systemd stopping the unit).
#[derive(Debug, Parser)]
#[command(name = "wpbackup", version, about, long_about)]
pub struct Cli {
    /// Home directory holding config.json, .env, backups.db and the lock file.
    #[arg(long, global = true, env = "WPBACKUP_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// config.json to use instead of <home>/config.json.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// .env to use instead of <home>/.env.
    #[arg(long = "env-file", global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// More log output: -v wpbackup's debug (a line per phase), -vv adds the AWS SDK's and
    /// other libraries' debug, -vvv trace. RUST_LOG, when set, wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print one JSON document with the results instead of the human summary.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Back up sites: dump the database, archive files + dump, upload with failover.
    ///
    /// Without --site, every enabled site in config.json. With --path, one WordPress directory
    /// and no config at all: credentials come from its wp-config.php and the archive goes to
    /// <home>/archives (unless config.json names storage).
    Backup(BackupArgs),
    /// Show the last result of each site (with how long it took and its archive's size), from
    /// backups.db, and the copies restores kept of what they replaced.
    Status,
    /// Print the directories of config.json's local storages, one per line (deploy.sh puts
    /// them in the backup unit's ReadWritePaths=).
    #[command(hide = true)]
    StoragePaths,
    /// Print config.json's `binlog.every_minutes` when it has `binlog`, nothing otherwise
    /// (deploy.sh installs the binary log shipping's timer only then, at that interval).
    #[command(hide = true)]
    BinlogEvery,
    /// Restore a site's files and database from an archive (newest by default).
    ///
    /// The archive is downloaded and its sha256 checked against the one recorded with it (object
    /// metadata, or backups.db) before anything is touched, then unpacked beside the target and
    /// checked against its manifest. Only then is the live directory moved aside to
    /// `<path>.before-restore-<time>` (kept) and the restored one moved into place; a database
    /// that holds tables is first saved to `<home>/before-restore/`. Asks before replacing a live
    /// site unless --yes. Works from config.json and .env alone (no backups.db needed).
    ///
    /// A staging copy: --to DIR --db-name NAME --url http://staging.example.com
    ///
    /// Some files back (a deleted upload, a plugin's folder), not the site:
    /// --only wp-content/uploads/2026/01/photo.jpg --to /tmp/back
    Restore(RestoreArgs),
    /// List the archives on every storage, newest first, read from the buckets themselves.
    ///
    /// Works on a new server with only config.json and .env: backups.db, when present, only adds
    /// whether it knows each archive.
    List(ListArgs),
    /// List the files inside an archive (the newest of the site by default), streamed from the
    /// storage: nothing is downloaded to disk, and the sha256 is checked at the end.
    ///
    /// A differential archive is listed with its bases: every path of the restore point, as a
    /// restore makes it (deleted paths left out), FROM naming the archive each comes from
    /// (the time in its key); --changes lists only the differential's own changes.
    /// `wpbackup ls --site example.com wp-content/uploads/2026` shows what a restore of that
    /// folder would bring back. Works without backups.db. Control characters in names are
    /// shown escaped (`\x1b`); --json gives them exactly.
    Ls(LsArgs),
    /// Check archives end to end: download, sha256, every tar entry, manifest, complete dump.
    ///
    /// By default the newest archive of each site on each storage. Exit status 1 when any
    /// archive fails; each result is recorded in backups.db.
    Verify(VerifyArgs),
    /// Prove each site restorable: restore its newest archive into a scratch directory and a
    /// scratch database, check it and boot WordPress from it, then remove everything.
    ///
    /// Works from the buckets alone (no backups.db needed). For each site: free space checked,
    /// archive downloaded (sha256 and manifest checked), files compared with the manifest
    /// (count, bytes, sampled sha256), database.sql imported into `wpbdrill_<site>_<time>_<n>`
    /// on the site's database server (or config.json's drill.database) and each table's rows
    /// compared with those counted at backup time; when the archive records its binary log
    /// position and files were shipped after it (config.json's `binlog`), the site's events
    /// are replayed onto the scratch database to the newest shipped one (a file missing
    /// fails the drill) and its posts counted; then php loads the restored wp-load.php and
    /// must answer with the recorded `home` and count of published posts. The time it all
    /// took is the site's recovery time. Nothing live is touched; the scratch copies are
    /// removed on success, failure and SIGTERM/SIGINT. Results go to backups.db (drill_log),
    /// D1, `status` and `report`. Exit status 1 when a drill fails, 2 when an archive is refused
    /// (its signature, or a statement of its dump that touches users, grants, another database
    /// or the client).
    Drill(DrillArgs),
    /// Delete old archives by the retention policy in config.json ("retention"), and the
    /// copies restores kept once they are older than restore.keep_copies_days (default 7).
    ///
    /// Counts as restic's `forget` does (keep_last, keep_daily, keep_weekly, keep_monthly,
    /// keep_yearly), per site per storage; the newest good archive of a site is never deleted;
    /// without "retention" every archive is kept. `backup` prunes archives after each successful
    /// site when "retention" is set. Restore copies are the databases saved in
    /// <home>/before-restore/ and the `*.before-restore-<time>` directories and wp-config.php
    /// files beside each site; only `prune` removes them, each one printed and recorded.
    Prune(PruneArgs),
    /// Ship the database server's binary log: point-in-time recovery (config.json's `binlog`).
    ///
    /// Rotates the binary log (FLUSH BINARY LOGS) and stores every closed file not shipped
    /// yet under binlog/<server_id>/ on the storages, in priority order with failover, each
    /// zstd-compressed, encrypted when `encryption` is set, its sha256 recorded and signed as
    /// archives are; each is recorded in backups.db (binlog_files). Runs as binlog.database's
    /// user, else root through the local socket. `restore --at TIME` then replays the site's
    /// events up to TIME onto the restore point before it. wpbackup-binlog.timer (deploy.sh
    /// installs it when config.json has `binlog`) runs it every binlog.every_minutes. Exit
    /// status 2 when `binlog` is not configured, 75 when another
    /// run holds its lock.
    Binlog,
    /// Push every backups.db row that Cloudflare D1 does not have yet.
    ///
    /// Needs CF_ACCOUNT_ID, CF_API_TOKEN (D1 Edit permission) and D1_DATABASE_ID in .env.
    /// Creates the tables in D1 when missing. Every row reaches D1 exactly once, however often
    /// a push is retried, cut off or run twice at once. `backup` runs it at the end.
    #[command(name = "sync-d1")]
    SyncD1,
    /// Email a report of the last backups: per site the last result, archive size and
    /// storage, runs and failures; sites with no successful backup in the period are flagged
    /// stale.
    ///
    /// SMTP settings come from .env: SMTP_HOST, SMTP_PORT, SMTP_TLS (starttls, tls or none),
    /// SMTP_USERNAME and SMTP_PASSWORD (AUTH when a username is set), REPORT_FROM, REPORT_TO
    /// (comma separated). Without SMTP_HOST (and no --to) the report is printed instead,
    /// with a note on stderr that no mail was sent, and the exit status is 0.
    Report(ReportArgs),
    /// Set up wpbackup: find the WordPress sites, choose and test storage, D1 and email, and
    /// write config.json and .env (mode 0600).
    ///
    /// On a terminal it asks (Enter keeps what is configured; secrets are typed masked and never
    /// shown). Each site's database and each storage is tested on the spot: a storage gets a
    /// small object written, read back and deleted, and a failure says whether DNS, TLS, the
    /// credentials or the bucket is at fault. Sites are searched in /var/www, /srv/www,
    /// /home/*/public_html and /usr/share/nginx (WPBACKUP_SCAN_ROOTS=dir:dir replaces these)
    /// and in every --scan DIR. A deprecated sites.json in the home directory is migrated when
    /// there is no config.json yet.
    ///
    /// For scripts: --non-interactive applies --answers FILE (JSON, see README) and the flags
    /// to the existing config, tests everything, and writes only if every test passes.
    Configure(ConfigureArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The period covered, back from now: 30m, 24h, 7d, 2w.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub since: String,
    /// Send to ADDR instead of REPORT_TO (repeatable).
    #[arg(long = "to", value_name = "ADDR")]
    pub to: Vec<String>,
    /// Print the report (subject and plain text) instead of sending it.
    #[arg(long)]
    pub dry_run: bool,
    /// Send nothing when every site's last backup succeeded and none is stale.
    #[arg(long)]
    pub only_failures: bool,
    /// Report on every server of the fleet, read from Cloudflare D1 (needs D1 in .env).
    #[arg(long)]
    pub fleet: bool,
    /// Write the fleet page (the dashboard's, as one self-contained HTML file) to FILE instead
    /// of sending the report.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dry_run", "to", "only_failures"])]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Back up only this site (repeatable).
    #[arg(long = "site", value_name = "NAME")]
    pub sites: Vec<String>,
    /// Back up the WordPress directory DIR (the one holding wp-settings.php; a folder inside a
    /// site, such as wp-content, is refused), with no config.json needed.
    #[arg(long, value_name = "DIR", conflicts_with = "sites")]
    pub path: Option<PathBuf>,
    /// Use only this storage (by name) instead of the failover list.
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
    /// Check config, credentials and storages, and say what would be done; store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Make full archives, even where config.json `differential` would make differential ones.
    #[arg(long)]
    pub full: bool,
    /// Do not push the log to Cloudflare D1 at the end.
    #[arg(long)]
    pub no_sync: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The site to restore (its name in config.json; without config.json, as `list` shows it,
    /// and then a whole restore needs --to DIR).
    #[arg(long, value_name = "NAME", required_unless_present = "path")]
    pub site: Option<String>,
    /// The site to restore, by its directory: the site of config.json with that path, or
    /// without config.json the quick start's (`backup --path DIR` to <home>/archives).
    #[arg(long, value_name = "DIR", conflicts_with = "site")]
    pub path: Option<PathBuf>,
    /// Restore this archive (a key as `list` shows it, or just its file name).
    #[arg(long, value_name = "KEY", conflicts_with = "at")]
    pub archive: Option<String>,
    /// Restore the newest archive made at or before TIME (UTC unless it says otherwise):
    /// 2026-11-20 (end of that day), "2026-11-20 03:00", 2026-11-20T03:00:00+01:00. When
    /// that archive records its binary log position (config.json's `binlog`), the database
    /// is then brought to TIME by replaying the site's events from the shipped binary log
    /// (`wpbackup binlog`); the files stay the archive's. A binary log file missing in
    /// between: refused, exit status 2, nothing changed. With --dry-run, also the last event
    /// of the site's database before TIME (its time, table and kind).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Download from this storage only (default: the first, by priority, that has the archive).
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
    /// Restore the files into DIR instead of the site's path (a copy; its wp-config.php is
    /// rewritten to point at DIR and at --db-name). Alone, it still restores the database into
    /// the site's own database: add --db-name for a separate copy, or --files-only.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Import the database into NAME instead of the site's database; created if missing (as
    /// the site's user, else as root through the local socket, `MYSQL_UNIX_PORT` if set).
    #[arg(long, value_name = "NAME")]
    pub db_name: Option<String>,
    /// Move the restored site to a new address: its old siteurl/home are replaced everywhere in
    /// the database, inside PHP-serialized values too (lengths fixed, as `wp search-replace`).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// With --url, for a multisite network: move the site whose domain is OLD (a mapped
    /// domain, neither the network's host nor a subdomain of it) to NEW (a host, maybe with
    /// :PORT). Repeatable. Without it a mapped domain keeps its domain; the network's host and
    /// its subdomains follow --url.
    #[arg(long = "map", value_name = "OLD=NEW", requires = "url")]
    pub map: Vec<String>,
    /// The database user the clone's wp-config.php names (with --to and --db-name). Default: a
    /// new user named after --db-name (cut to 80 characters on MariaDB, 32 on MySQL; `_2`...
    /// when taken) with a random password, granted all privileges on that database only, at
    /// the hosts the site's own user has; made as root through the local socket (or as the
    /// site's user when it may create users). An existing user's password is read from
    /// WPBACKUP_CLONE_DB_PASSWORD (the environment or the home's .env), never from the command
    /// line; naming the site's own user shares its password, as asked. A password is never
    /// printed or logged.
    #[arg(long, value_name = "NAME", requires_all = ["to", "db_name"], conflicts_with_all = ["files_only", "db_only"])]
    pub db_user: Option<String>,
    /// Restore only the files.
    #[arg(long, conflicts_with = "db_only")]
    pub files_only: bool,
    /// Restore only the database.
    #[arg(long)]
    pub db_only: bool,
    /// Restore only these paths of the site (files or directories, as `wpbackup ls` shows
    /// them) into --to DIR, never the database. DIR may exist (it may be the site itself, to
    /// put one deleted file back): directories are merged, and an existing file is replaced
    /// only when you confirm (or --yes). Nothing is written before the archive's sha256 has
    /// matched and every path was found.
    #[arg(long, value_name = "PATH", num_args = 1.., conflicts_with_all = ["db_only", "db_name", "url"])]
    pub only: Vec<PathBuf>,
    /// Do not ask before replacing a live site, or with --only existing files of DIR (needed
    /// when not on a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// age identity file (from `age-keygen`) to decrypt an encrypted (.tar.zst.age) archive.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Whose archive signatures to trust.
    #[command(flatten)]
    pub trust: TrustFlags,
    /// Put back what a restore of --site that was killed outright moved aside in its database,
    /// as its plan in <home>/rollback/<site>.json lists it (the site's own database user, no
    /// client command run), then remove the plan. Exit status 1 when there is no plan.
    #[arg(long, requires = "site", conflicts_with_all = ["path", "archive", "at", "storage", "to", "db_name", "db_user", "url", "files_only", "db_only", "only", "identity", "dry_run"])]
    pub put_back: bool,
    /// Say what this restore (or clone) would do, and change nothing: the archives of the
    /// restore point, the files and bytes, the directory moved aside, the database replaced or
    /// created, the database user created, and with --url each (old, new) address pair and
    /// how many values per table it would change (counted in the archive's database.sql, no
    /// database needed). Downloads the archive (its sha256 checked); writes nothing but an
    /// unnamed temporary copy of database.sql, gone when it ends; no backups.db row.
    #[arg(long, conflicts_with = "only")]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this site's archives.
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Only this storage (by name).
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// The site whose archive to look into (its name in config.json; without config.json, as
    /// `list` shows it).
    #[arg(long, value_name = "NAME", required_unless_present = "path")]
    pub site: Option<String>,
    /// The site, by its directory (as `restore --path`; works with no config.json).
    #[arg(long, value_name = "DIR", conflicts_with = "site")]
    pub path: Option<PathBuf>,
    /// This archive (a key as `list` shows it, or its file name) instead of the newest.
    #[arg(long, value_name = "KEY", conflicts_with = "at")]
    pub archive: Option<String>,
    /// The newest archive made at or before TIME (as `restore --at`).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Read from this storage only (default: the first, by priority, that has the archive).
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
    /// age identity file, for an encrypted (.tar.zst.age) archive.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Whose archive signatures to trust.
    #[command(flatten)]
    pub trust: TrustFlags,
    /// A differential archive's own changes only: what it holds itself (new and changed
    /// files, every directory and symlink) and the paths deleted since its base, without
    /// reading its bases. Without it, a differential is listed with its bases: the whole
    /// restore point, as a restore makes it.
    #[arg(long)]
    pub changes: bool,
    /// Only what is under this path of the site (e.g. wp-content/uploads).
    #[arg(value_name = "PATH")]
    pub under: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this site's archives.
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Verify this archive (a key as `list` shows it, or its file name) on every storage that
    /// has it.
    #[arg(long, value_name = "KEY", conflicts_with = "all")]
    pub archive: Option<String>,
    /// Verify every archive, not only the newest of each site.
    #[arg(long)]
    pub all: bool,
    /// Only this storage (by name).
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
    /// age identity file (from `age-keygen`) to decrypt encrypted (.tar.zst.age) archives;
    /// without it their sha256 is checked but their contents cannot be.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Whose archive signatures to trust.
    #[command(flatten)]
    pub trust: TrustFlags,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Drill only this site (repeatable; default: every enabled site).
    #[arg(long = "site", value_name = "NAME")]
    pub sites: Vec<String>,
    /// Download from this storage only (default: the first, by priority, that has the archive).
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
    /// age identity file, for encrypted (.tar.zst.age) archives.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Whose archive signatures to trust.
    #[command(flatten)]
    pub trust: TrustFlags,
}

/// Whose signatures a reading command trusts (restore, ls, verify, drill). Every archive is
/// signed by the server that made it; config.json's `trusted_keys` and this server's own key
/// are trusted.
#[derive(Debug, Args, Clone, Default)]
pub struct TrustFlags {
    /// Also trust archives signed by this minisign public key (RWQ..., as `wpbackup status`
    /// prints it on the server that made them; repeatable): a restore on a new server with
    /// only the bucket.
    #[arg(long = "trusted-key", value_name = "KEY")]
    pub trusted_keys: Vec<String>,
    /// Read archives that have no signature (made before wpbackup signed them, 2026-12). Risky:
    /// anyone who can write to the bucket can put an unsigned archive there, and its files and
    /// SQL then land on this server; use it only for an archive you know is genuine.
    #[arg(long)]
    pub trust_unsigned: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only this site's archives and restore copies.
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Show what would be deleted and why the rest is kept; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// Ask nothing: apply --answers and the flags below to the existing config, test, write.
    #[arg(long)]
    pub non_interactive: bool,
    /// JSON file with the answers (sites, storage with keys, d1, smtp); keep it private.
    #[arg(long, value_name = "FILE", requires = "non_interactive")]
    pub answers: Option<PathBuf>,
    /// Also search DIR for WordPress sites (repeatable).
    #[arg(long = "scan", value_name = "DIR")]
    pub scan: Vec<PathBuf>,
    /// Add the WordPress site in DIR (repeatable; with --non-interactive).
    #[arg(long = "site", value_name = "DIR", requires = "non_interactive")]
    pub sites: Vec<PathBuf>,
    /// Set this server's name (with --non-interactive).
    #[arg(long, value_name = "ID", requires = "non_interactive")]
    pub server_id: Option<String>,
    /// Add a local-directory storage named "local" at DIR (with --non-interactive).
    #[arg(long, value_name = "DIR", requires = "non_interactive")]
    pub local_storage: Option<PathBuf>,
    /// Write without testing databases, storages, D1 and SMTP (with --non-interactive).
    #[arg(long, requires = "non_interactive")]
    pub no_test: bool,
    /// Turn point-in-time recovery on (config.json's "binlog"): checks that the database server
    /// writes a binary log in ROW format and that root (or binlog.database's user) may ship it,
    /// saying what to add to the server's config when not (with --non-interactive).
    #[arg(long, requires = "non_interactive")]
    pub binlog: bool,
}

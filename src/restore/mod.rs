//! The restore pipeline: bring a site back from an archive, or clone it elsewhere.
//!
//! The order is what makes it safe on the worst day: pick the archive from the buckets
//! themselves (a key, a time, or the newest) and the storages that have it; download it,
//! unpacking it beside the target as it arrives, and check its sha256 and its manifest
//! (`reader::stage::fetch_and_stage`); check everything that can be checked before anything changes
//! (`preflight`); only then ask (the caller's [`Confirm`]), save the live database's content to
//! `<home>/before-restore/`, move its tables aside and import (`rollback`), move the site to
//! the new address, move the live directory aside and the restored one into its place, and
//! last drop the database's previous tables. A restore that fails or is interrupted (SIGTERM,
//! SIGINT) at any point before that changes nothing: the database is put back as it was and
//! the live files were never moved. What was done goes into a [`Report`].
//!
//! The command (`commands/restore.rs`) reads the command line, holds the lock, asks on the
//! terminal and records the result; `verify` shares the download and unpacking.

pub mod copies;
pub mod database;
pub mod db_user;
pub mod definer;
pub mod dry_run;
pub mod dumpcheck;
pub mod importer;
pub mod only;
pub mod parent;
pub mod pitr;
pub mod pitr_verify;
pub mod preflight;
pub mod report;
pub mod rollback;
pub mod swap;
pub mod wp_config;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use chrono::Utc;

use crate::clone::{self, multisite, url_pairs};
use crate::config::{DatabaseConfig, DbHost, SiteConfig, Timeouts};
use crate::crypt::Identities;
use crate::logdb::LogDb;
use crate::manifest::Manifest;
use crate::reader::stage::{self, Staged};
use crate::site::hooks;
use crate::storage::Storage;
use crate::storage::catalog::{Choice, choose_archive};
use database::DbState;
pub use report::Report;

/// What to restore, and where: the checked command line, in plain values.
pub struct Request {
    pub site: SiteConfig,
    /// The server whose archives are looked for first.
    pub server_id: String,
    pub choice: Choice,
    /// Restore the files / the database.
    pub files: bool,
    pub database: bool,
    /// Move the site to this address (no trailing slash).
    pub url: Option<String>,
    /// `--map OLD=NEW`: a multisite network's mapped domains moved with it.
    pub maps: Vec<(String, String)>,
    /// Restore the files here instead of the site's path.
    pub to: Option<PathBuf>,
    /// Import into this database instead of the site's.
    pub db_name: Option<String>,
    /// `--db-user`: the user a clone's wp-config.php names (default: a new one, see
    /// [`db_user`]).
    pub db_user: Option<String>,
    /// [`db_user::PASSWORD_ENV`]: the password of an existing `--db-user`.
    pub db_password: Option<crate::secret::Secret>,
    /// The age identity file of an encrypted archive.
    pub identity: Option<PathBuf>,
    /// Whose archive signatures are accepted.
    pub trust: crate::sign::Trust,
    /// wpbackup's home: `before-restore/` is here, and `database.sql` when no files are restored.
    pub home: PathBuf,
    /// How long the database tools may wait (config.json `database`).
    pub timeouts: Timeouts,
    /// `MYSQL_UNIX_PORT`: root's socket when the database must be created.
    pub mysql_unix_port: Option<PathBuf>,
    /// The confirmation's answer is known without asking (no terminal): ask before downloading.
    pub confirm_early: bool,
}

/// Where the archives come from, and the backups.db that knows their sha256.
pub struct Sources<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub storages: &'a [Box<dyn Storage>],
    pub logdb: &'a LogDb,
}

/// Called with what the restore would replace (in words; maybe nothing) before anything is
/// replaced; an error stops the restore.
pub type Confirm<'a> = &'a dyn Fn(&[String]) -> anyhow::Result<()>;

/// Restore `req`, filling `report` as it goes (a failed restore's report says how far it got).
pub fn restore(
    src: &Sources,
    req: &Request,
    confirm: Confirm,
    report: &mut Report,
) -> anyhow::Result<()> {
    let stamp = stage::stamp(Utc::now());
    let files_target = match (req.files, &req.to) {
        (false, _) => None,
        (true, Some(to)) => Some(std::path::absolute(to).context("--to")?),
        (true, None) => Some(req.site.path.clone()),
    };

    // 1. The archive, and the storages that hold it, in priority order.
    let (key, holding) = choose_archive(
        src.rt,
        src.storages,
        &req.server_id,
        &req.site.name,
        &req.choice,
    )?;
    report.key = key.clone();
    tracing::info!("restoring {key}");
    let identities = match &req.identity {
        Some(path) => Some(Identities::load(path)?),
        None => None,
    };
    crate::crypt::ensure_identity(&key, identities.as_ref())?;

    // Not on a terminal and no --yes: refuse before downloading when the answer is known.
    if req.confirm_early {
        let early = wp_config::credentials(&req.site, None, req.timeouts)
            .ok()
            .map(|c| c.0);
        let target_db = req
            .db_name
            .clone()
            .or_else(|| early.as_ref().map(|c| c.name.clone()));
        confirm(&live_targets(
            files_target.as_deref(),
            early.as_ref().filter(|_| req.database),
            target_db.as_deref(),
        ))?;
    }

    // 2. Download and verify; 3. unpack beside the target and check against the manifest.
    let to = stage::StageTo {
        files_target: files_target.clone(),
        database: req.database,
        tmp_dir: tmp_dir(files_target.as_deref(), &req.home)?,
        stamp: stamp.clone(),
        identities,
        trust: req.trust.clone(),
    };
    let mut staged = fetch(src, &key, &holding, &to, report).map_err(stopped)?;
    // 4. Credentials and target database; 5. everything that can be checked beforehand.
    let mut job = Job::new(req, stamp, files_target, &staged).map_err(stopped)?;
    // `--at` past the point: the binary log files, all there, fetched before anything changes.
    job.replay = job.plan_replay(src, report).map_err(stopped)?;
    job.preflight(&staged).map_err(stopped)?;

    // 6. Ask before replacing anything live.
    confirm(&job.live()).map_err(stopped)?;

    // The site's before_restore hooks: one failing stops the restore, nothing changed.
    let mut vars = hooks::Vars {
        archive_key: Some(key.clone()),
        storage: Some(report.storage.clone()),
        restore_to: Some(
            job.files_target
                .as_ref()
                .map(|t| t.display().to_string())
                .unwrap_or_default(),
        ),
        ..hooks::Vars::default()
    };
    let result = match hooks::run(&req.site, hooks::Phase::BeforeRestore, &vars) {
        Err(e) => Err(anyhow!(
            "{e}; the restore was not started: nothing was changed"
        )),
        Ok(()) => job.replace(&mut staged, report),
    };
    // The after_restore hooks, whatever happened since the before_restore ones ran.
    if hooks::any(&req.site, hooks::Phase::AfterRestore) {
        vars.status = Some(if result.is_ok() { "success" } else { "error" }.into());
        if let Err(e) = hooks::run(&req.site, hooks::Phase::AfterRestore, &vars) {
            return match result {
                Ok(()) => {
                    report.hook_failure = Some(e);
                    Ok(())
                }
                Err(err) => Err(anyhow!("{err:#}; {e}")),
            };
        }
    }
    result
}

/// `err`, unless a SIGTERM or SIGINT explains it: then the interruption, before anything
/// was changed.
fn stopped(err: anyhow::Error) -> anyhow::Error {
    match crate::interrupt::check() {
        Err(stop) => anyhow!("{stop}: nothing was changed"),
        Ok(()) => err,
    }
}

/// How to undo the database side of a restore until the files are in place.
enum Undo {
    /// The database did not exist: it is dropped again.
    Created(database::Created),
    /// Its previous tables and views, kept aside.
    Aside(rollback::Aside),
}

/// Where `database.sql` is unpacked to: beside the files' target, else in the home.
fn tmp_dir(files_target: Option<&Path>, home: &Path) -> anyhow::Result<PathBuf> {
    Ok(match files_target {
        Some(t) => {
            let parent = t.parent().unwrap_or(Path::new("/")).to_path_buf();
            std::fs::create_dir_all(&parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            parent
        }
        None => home.to_path_buf(),
    })
}

/// Download `key` from the first of the storages `holding` it that has an intact copy and
/// stage it as `to` says.
fn fetch(
    src: &Sources,
    key: &str,
    holding: &[usize],
    to: &stage::StageTo,
    report: &mut Report,
) -> anyhow::Result<Staged> {
    let holders: Vec<&dyn Storage> = holding.iter().map(|i| src.storages[*i].as_ref()).collect();
    let fetched = stage::fetch_and_stage(src.rt, key, &holders, Some(src.logdb), to)?;
    report.storage = fetched.storage.clone();
    report.sha256_source = fetched.expected.source.clone();
    report.archive_bytes = fetched.size;
    if !fetched.bases.is_empty() {
        tracing::info!(
            "{key} is a differential archive: restored with its bases {}",
            fetched.bases.join(", ")
        );
    }
    Ok(fetched.staged)
}

/// A restore whose archive is staged: what it restores into.
struct Job<'a> {
    req: &'a Request,
    stamp: String,
    files_target: Option<PathBuf>,
    manifest: Manifest,
    /// The credentials that reach the database (when it is restored, or `--db-name` given).
    creds: Option<DatabaseConfig>,
    /// The database imported into.
    target_db: Option<String>,
    /// Where the archive's `parent/wp-config.php` goes, when it has one and files are restored.
    parent_config: Option<parent::Placement>,
    /// The user and password of the archive's `wp-config.php` (the site's own user).
    site_user: Option<(String, crate::secret::Secret)>,
    /// A clone's own database user, decided by the preflight.
    clone_user: Option<db_user::Plan>,
    /// The user the restore created for the clone, until it has succeeded.
    made_user: std::cell::RefCell<Option<db_user::Made>>,
    /// Where a multisite network's sites go, decided by the preflight.
    network: Option<multisite::Plan>,
    /// `--at` past the restore point: the binary log replayed after the import.
    replay: Option<Replaying>,
}

/// A replay to do, its files downloaded.
struct Replaying {
    plan: pitr::Plan,
    files: Vec<PathBuf>,
    /// Private (0700), removed with it.
    _dir: tempfile::TempDir,
}

impl<'a> Job<'a> {
    /// 4. Credentials, target database, and the old addresses; and a target that can be moved.
    fn new(
        req: &'a Request,
        stamp: String,
        files_target: Option<PathBuf>,
        staged: &Staged,
    ) -> anyhow::Result<Job<'a>> {
        let manifest = staged
            .contents
            .manifest
            .clone()
            .context("the archive has no manifest.json")?;
        // The site's wp-config.php, else the one from the directory above it.
        let archived = staged.contents.any_wp_config();
        let site_user = archived.and_then(|a| {
            crate::site::wpconfig::parse_named(&String::from_utf8_lossy(a), "wp-config.php")
                .ok()
                .map(|w| (w.db_user, w.db_password))
        });
        let creds = if req.database || req.db_name.is_some() {
            let (c, source) = wp_config::credentials(&req.site, archived, req.timeouts)?;
            tracing::info!("database credentials from {source}");
            if req.db_name.is_none() && source == wp_config::LIVE_WP_CONFIG {
                ensure_same_database(&c.name, &manifest.database_name)?;
            }
            Some(c)
        } else {
            None
        };
        let target_db = req
            .db_name
            .clone()
            .or_else(|| creds.as_ref().map(|c| c.name.clone()));
        let parent_config = match (&files_target, &staged.contents.parent_wp_config) {
            (Some(t), Some(p)) => Some(parent::check(t, *t != req.site.path, p)?),
            _ => None,
        };
        let job = Job {
            req,
            stamp,
            files_target,
            manifest,
            creds,
            target_db,
            parent_config,
            site_user,
            clone_user: None,
            made_user: std::cell::RefCell::new(None),
            network: None,
            replay: None,
        };
        if let (Some(u), false) = (&req.db_user, job.own_user()) {
            bail!(
                "--db-user {u}: only a clone with its own database (--to DIR --db-name NAME, not the site's database) gets its own user; nothing was changed"
            );
        }
        Ok(job)
    }

    /// `--at TIME` with the database restored and a point that records its binary log
    /// position: the files from it to TIME, checked complete and downloaded.
    fn plan_replay(&self, src: &Sources, report: &mut Report) -> anyhow::Result<Option<Replaying>> {
        let (Choice::At(at), true) = (&self.req.choice, self.req.database) else {
            return Ok(None);
        };
        let Some(plan) = pitr::plan(
            src.rt,
            src.storages,
            &self.req.server_id,
            &self.manifest,
            *at,
        )?
        else {
            return Ok(None);
        };
        if self.target_db.as_deref() != Some(self.manifest.database_name.as_str()) {
            return Err(crate::error::UsageError(format!(
                "--at replays the binary log's events of database {} into a database of that name: it cannot go with another database (--db-name, or a wp-config.php naming another); restore the point alone with --archive",
                self.manifest.database_name
            ))
            .into());
        }
        let dir = tempfile::Builder::new()
            .prefix("wpbackup-binlog-")
            .tempdir_in(&self.req.home)
            .with_context(|| format!("cannot make a directory in {}", self.req.home.display()))?;
        let identities = match &self.req.identity {
            Some(path) => Some(Identities::load(path)?),
            None => None,
        };
        let files = pitr::fetch_files(
            src.rt,
            src.storages,
            &plan,
            &self.req.trust,
            identities.as_ref(),
            dir.path(),
        )?;
        report.binlog_files = plan.names();
        Ok(Some(Replaying {
            plan,
            files,
            _dir: dir,
        }))
    }

    /// The binary log's events of the site's database replayed onto the imported point.
    fn replay(
        &self,
        creds: &DatabaseConfig,
        db_name: &str,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let Some(r) = &self.replay else {
            return Ok(());
        };
        let admin = crate::dbtools::client::admin(self.admin_socket(creds), self.req.timeouts);
        tracing::info!(
            "replaying {} from position {} of {} to {}",
            r.plan.names().join(", "),
            r.plan.start.position,
            r.plan.start.file,
            r.plan.at
        );
        let guarded = crate::binlog::replay::run(&crate::binlog::replay::Replay {
            admin: &admin,
            database: db_name,
            rewrite_to: None,
            files: &r.files,
            start_position: r.plan.start.position,
            stop: Some(r.plan.at),
        })
        .context("the point-in-time replay failed")?;
        report.replayed_to = Some(format!(
            "{}{}",
            r.plan.at.format("%Y-%m-%d %H:%M:%S UTC"),
            if r.plan.to_newest {
                " (or the end of the newest shipped binary log file, if earlier)"
            } else {
                ""
            }
        ));
        report.binlog_dropped = guarded.dropped;
        Ok(())
    }

    /// A clone with a database of its own: its wp-config.php names a user of its own.
    fn own_user(&self) -> bool {
        self.req.database
            && self.files_target.is_some()
            && self.files_target.as_ref() != Some(&self.req.site.path)
            && self.new_db_name().is_some()
    }

    /// Root's socket, when a database or user must be made.
    fn admin_socket(&self, creds: &DatabaseConfig) -> Option<PathBuf> {
        self.req.mysql_unix_port.clone().or(match &creds.host {
            DbHost::Socket(Some(p)) => Some(p.clone()),
            _ => None,
        })
    }

    /// Step 5, what can be checked before anything changes: the target can be moved aside, the
    /// restored wp-config.php rewritten, the database reached and used, and there is space.
    fn preflight(&mut self, staged: &Staged) -> anyhow::Result<()> {
        if let Some(t) = &self.files_target {
            preflight::movable(t)?;
        }
        self.network = self.network_plan(staged)?;
        if let Some(files) = staged
            .files_anchored()
            .filter(|_| self.rewrites_wp_config())
        {
            let wp = files.join("wp-config.php");
            if wp.is_file() {
                preflight::wp_config(&wp, self.new_db_name(), self.own_user())?;
            }
        }
        if let (true, Some(creds), Some(db)) = (self.req.database, &self.creds, &self.target_db) {
            let sql_size = staged
                .database_sql
                .as_ref()
                .and_then(|f| f.as_file().metadata().ok())
                .map_or(0, |m| m.len());
            let copy_dir = self.req.home.join("before-restore");
            let plan = rollback::plan_path(&self.req.home, &self.req.site.name);
            preflight::database(creds, db, sql_size, &copy_dir, &plan)?;
        }
        if let (true, Some(creds), Some(db)) = (self.own_user(), &self.creds, &self.target_db) {
            self.clone_user = Some(db_user::plan(&self.user_ask(creds, db))?);
        }
        Ok(())
    }

    /// A multisite network moved to `--url`: where its sites go, read from the staged dump
    /// and wp-config.php; refused before anything changes when it cannot be made right.
    fn network_plan(&self, staged: &Staged) -> anyhow::Result<Option<multisite::Plan>> {
        let Some(url) = &self.req.url else {
            return Ok(None);
        };
        let declared = staged
            .contents
            .any_wp_config()
            .map(|w| declared(&String::from_utf8_lossy(w)))
            .unwrap_or_default();
        let network = match (&staged.database_sql, self.req.database) {
            (Some(sql), true) => multisite::from_dump(
                || {
                    let f = std::fs::File::open(sql.path()).context("cannot open database.sql")?;
                    Ok(std::io::BufReader::new(f))
                },
                &self.manifest.table_prefix,
                &declared,
            )?,
            _ => multisite::Network::new(Vec::new(), Vec::new(), &declared),
        };
        match network {
            Some(n) => {
                let plan = n.plan(url, &self.req.maps)?;
                tracing::info!(
                    "a multisite network of {} sites ({}): moving it to {url}",
                    n.sites.len(),
                    if n.subdomain { "subdomains" } else { "subdirectories" }
                );
                Ok(Some(plan))
            }
            None if !self.req.maps.is_empty() => Err(crate::error::UsageError(
                "--map is for multisite networks, and this archive holds a single site; nothing was changed".into(),
            )
            .into()),
            None => Ok(None),
        }
    }

    /// The pairs of a move to `url`: the site's own, then each moved site's of a network.
    fn move_pairs(&self, old_urls: &[String], url: &str) -> Vec<(String, String)> {
        let mut pairs = url_pairs(old_urls, url);
        if let Some(plan) = &self.network {
            for pair in &plan.pairs {
                if !pairs.contains(pair) {
                    pairs.push(pair.clone());
                }
            }
        }
        pairs
    }

    /// What [`db_user::plan`] needs to know.
    fn user_ask<'b>(&'b self, creds: &'b DatabaseConfig, db: &'b str) -> db_user::Ask<'b> {
        db_user::Ask {
            user: self.req.db_user.as_deref(),
            password: self.req.db_password.clone(),
            creds,
            site_user: self.site_user.clone(),
            db,
            admin_socket: self.admin_socket(creds),
        }
    }

    /// The database the restored wp-config.php must name, when it is not the one it names.
    fn new_db_name(&self) -> Option<&str> {
        match (&self.creds, &self.target_db) {
            (Some(c), Some(t)) if c.name != *t => Some(t),
            _ => None,
        }
    }

    /// The restored wp-config.php must be rewritten: another database, directory or address.
    fn rewrites_wp_config(&self) -> bool {
        self.new_db_name().is_some()
            || self.req.url.is_some()
            || self.files_target.as_ref() != Some(&self.req.site.path)
    }

    /// Steps 7 to 10, what changes the live site: the database (its previous tables kept
    /// aside), the files, the old tables dropped, the wp-config.php of the directory above.
    fn replace(&self, staged: &mut Staged, report: &mut Report) -> anyhow::Result<()> {
        let (old_urls, undo) = self.database(staged, report)?;
        let files = self.files(staged, &old_urls, report);
        let parent_config = self.settle(undo, files, report)?;
        self.put_parent_config(parent_config, report)
    }

    /// What this restore replaces, in words.
    fn live(&self) -> Vec<String> {
        let mut live = live_targets(
            self.files_target.as_deref(),
            self.creds.as_ref().filter(|_| self.req.database),
            self.target_db.as_deref(),
        );
        live.extend(
            self.parent_config
                .as_ref()
                .and_then(|p| p.replaces(&self.stamp)),
        );
        live
    }

    /// Step 7, the database: its content saved, its tables moved aside (or it is created), the
    /// archive's imported and moved to the new address. Returns the site's old addresses and
    /// how to undo it, kept until the files are in place; a failure here is undone already.
    fn database(
        &self,
        staged: &Staged,
        report: &mut Report,
    ) -> anyhow::Result<(Vec<String>, Option<Undo>)> {
        let mut old_urls: Vec<String> = self.manifest.siteurl.iter().cloned().collect();
        let (true, Some(creds), Some(db_name)) = (self.req.database, &self.creds, &self.target_db)
        else {
            return Ok((old_urls, None));
        };
        let sql_file = staged
            .database_sql
            .as_ref()
            .context("database.sql was not extracted")?;
        // Its form is checked before the live database is touched (see dumpcheck), as the
        // client will read it: without its DEFINER clauses (see definer).
        let dump = std::fs::File::open(sql_file.path()).context("cannot open database.sql")?;
        dumpcheck::check(definer::Strip::new(std::io::BufReader::new(dump)))?;
        crate::interrupt::check().map_err(|s| stopped(anyhow::Error::from(s)))?;
        let undo = self.prepare(creds, db_name, report)?;
        // A clone's own user is made first: it imports (see importer).
        let imported = self
            .make_user(db_name, report)
            .and_then(|()| self.import(creds, db_name, sql_file.path(), &mut old_urls, report))
            .and_then(|()| self.replay(creds, db_name, report));
        match imported {
            Ok(()) => Ok((old_urls, Some(undo))),
            Err(e) => Err(self.revert(undo, e, report)),
        }
    }

    /// `database.sql` imported into `db_name`, then moved to the new address, as a user
    /// limited to that database (see importer).
    fn import(
        &self,
        creds: &DatabaseConfig,
        db_name: &str,
        sql_file: &Path,
        old_urls: &mut Vec<String>,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        crate::interrupt::check()?;
        let importer = importer::Importer::choose(creds, db_name, self.importers(creds), || {
            db_user::find_admin(creds, self.admin_socket(creds))
        })?;
        let moved = self.import_as(&importer.login, db_name, sql_file, old_urls, report);
        report.imported_as = Some(importer.who.clone());
        let orphans = importer.orphans(db_name);
        if !orphans.is_empty() {
            tracing::warn!(
                "database.sql defined {} as the restore's throwaway user, which is dropped now: they fail (\"the user specified as a definer does not exist\") until the site's own user creates them again; grant the site's user all privileges on `{db_name}`.* and run restore again to have them defined by it",
                orphans.join(", ")
            );
        }
        drop(importer);
        moved
    }

    /// The users that may import, in order (see importer): a clone's own, the site's own.
    fn importers(&self, creds: &DatabaseConfig) -> Vec<importer::Candidate> {
        use importer::Candidate;
        let mut all = Vec::new();
        if let Some(plan) = &self.clone_user {
            all.push(Candidate {
                user: plan.user.clone(),
                password: plan.password.clone(),
                whose: "the clone's own user",
            });
        }
        if self.req.site.database.is_none() {
            all.push(Candidate {
                user: creds.user.clone(),
                password: creds.password.clone(),
                whose: "the site's own user",
            });
        }
        if let Some((user, password)) = &self.site_user {
            all.push(Candidate {
                user: user.clone(),
                password: password.clone(),
                whose: "the site's own user",
            });
        }
        if let Ok(live) = crate::site::wpconfig::read(&self.req.site.path) {
            all.push(Candidate {
                user: live.db_user,
                password: live.db_password,
                whose: "the site's own user",
            });
        }
        all
    }

    /// [`Job::import`] as `creds`, the importer's login.
    fn import_as(
        &self,
        creds: &DatabaseConfig,
        db_name: &str,
        sql_file: &Path,
        old_urls: &mut Vec<String>,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        tracing::info!(
            "importing database.sql into {db_name} as user {}",
            creds.user
        );
        let started = Instant::now();
        database::import(creds, db_name, sql_file).map_err(
            |e| match crate::interrupt::received() {
                Some(_) => anyhow!("the import into {db_name} was stopped"),
                None => e.context(format!("the import into {db_name} failed")),
            },
        )?;
        tracing::info!(
            "imported database.sql into {db_name} in {:.3}s",
            started.elapsed().as_secs_f64()
        );
        report.database = Some(db_name.to_string());
        let Some(url) = &self.req.url else {
            return Ok(());
        };
        let prefix = &self.manifest.table_prefix;
        old_urls.extend(clone::site_urls(creds, db_name, prefix)?);
        let pairs = self.move_pairs(old_urls, url);
        let done = clone::search_replace(creds, db_name, prefix, &pairs)
            .with_context(|| format!("moving database {db_name} to {url} failed"))?;
        tracing::info!("rewrote {} values for {url}", done.values());
        if let Some(plan) = &self.network {
            let rows = multisite::apply_columns(creds, db_name, prefix, plan)
                .with_context(|| format!("moving database {db_name} to {url} failed"))?;
            tracing::info!("moved {rows} rows of {prefix}blogs and {prefix}site to {url}");
            report.network_sites = Some(plan.sites.len());
        }
        for what in &done.left_unchanged {
            tracing::warn!("not moved to {url}: {what}");
        }
        report.url = Some(url.clone());
        report.replaced_values = Some(done.values());
        report.left_unchanged = done.left_unchanged;
        Ok(())
    }

    /// The clone's own user made (when new) and let into `db_name`.
    fn make_user(&self, db_name: &str, report: &mut Report) -> anyhow::Result<()> {
        let Some(plan) = &self.clone_user else {
            return Ok(());
        };
        crate::interrupt::check()?;
        *self.made_user.borrow_mut() = plan.apply(db_name)?;
        tracing::info!("the clone connects as database user {}", plan.user);
        report.db_user = Some(plan.user.clone());
        report.db_user_note = Some(plan.note(db_name));
        Ok(())
    }

    /// The target database made ready for the import: created when missing; else its content
    /// saved (when it holds tables) and its tables moved aside.
    fn prepare(
        &self,
        creds: &DatabaseConfig,
        db_name: &str,
        report: &mut Report,
    ) -> anyhow::Result<Undo> {
        let tables = match database::state(creds, db_name).map_err(stopped)? {
            DbState::Missing => {
                let admin_socket = self.admin_socket(creds);
                let created = database::create(creds, db_name, admin_socket)
                    .map_err(|e| stopped(e.into()))?;
                report.database_note = Some(created.note.clone());
                return Ok(Undo::Created(created));
            }
            DbState::Tables(n) => n,
        };
        if tables > 0 {
            self.save_copy(creds, db_name, report).map_err(stopped)?;
        }
        let plan = rollback::plan_path(&self.req.home, &self.req.site.name);
        match rollback::move_aside(creds, db_name, &self.req.site.name, &self.stamp, &plan) {
            Ok(aside) => Ok(Undo::Aside(aside)),
            Err(e @ rollback::MoveError::Unchanged(..)) => {
                forget_saved_copy(report);
                Err(anyhow!("{e}; nothing was changed"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The live content of `db_name` saved in `<home>/before-restore/`.
    fn save_copy(
        &self,
        creds: &DatabaseConfig,
        db_name: &str,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let dir = self.req.home.join("before-restore");
        create_private_dir(&dir)?;
        let name = format!("{}_{db_name}_{}.sql.zst", self.req.site.name, self.stamp);
        let dest = dir.join(name);
        tracing::info!(
            "saving the current database {db_name} to {}",
            dest.display()
        );
        database::save_copy(creds, db_name, &dest).with_context(|| {
            format!(
                "cannot save the current content of database {db_name} before replacing it (nothing was changed; if it is beyond saving, drop it and run restore again)"
            )
        })?;
        report.previous_database = Some(dest);
        Ok(())
    }

    /// Step 8, the files: wp-config.php pointed at the new place, then moved into place.
    fn files(
        &self,
        staged: &mut Staged,
        old_urls: &[String],
        report: &mut Report,
    ) -> anyhow::Result<Option<parent::Prepared>> {
        let (Some(target), Some(files)) = (&self.files_target, staged.files_anchored()) else {
            return Ok(None);
        };
        let wp = files.join("wp-config.php");
        let mut replacements = Vec::new();
        if *target != self.req.site.path {
            replacements.push((
                self.req.site.path.display().to_string(),
                target.display().to_string(),
            ));
        }
        if let Some(url) = &self.req.url {
            replacements.extend(self.move_pairs(old_urls, url));
        }
        let network = self
            .network
            .as_ref()
            .map(|p| (p.domain.as_str(), p.path.as_str()));
        let rewrite = self.rewrites_wp_config();
        let db_name = self.new_db_name();
        let user = self
            .clone_user
            .as_ref()
            .map(|u| (u.user.as_str(), &u.password));
        if wp.is_file() && rewrite {
            let point = wp_config::Point {
                db_name,
                user,
                network,
            };
            report.wp_config_unlinked =
                wp_config::rewrite_wp_config_file(&wp, point, &replacements)?;
        }
        let parent_config = match &self.parent_config {
            Some(p) => p.prepare(rewrite.then_some(parent::Rewrite {
                db_name,
                user,
                pairs: &replacements,
                network,
            }))?,
            None => None,
        };
        crate::interrupt::check()?;
        let staging = staged.staging.take().context("no staged files")?;
        report.previous_files = swap::swap_into_place(staging, target, &self.stamp)?;
        report.files_to = Some(target.clone());
        Ok(parent_config)
    }

    /// Step 10: the archive's `parent/wp-config.php` put in the directory above the restored
    /// site. The rest is in place by then (and stays: the error says what to copy by hand).
    fn put_parent_config(
        &self,
        prepared: Option<parent::Prepared>,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let (Some(p), Some(target)) = (prepared, &self.files_target) else {
            return Ok(());
        };
        report.parent_wp_config = self.parent_config.as_ref().map(|p| p.dest.clone());
        report.previous_parent_wp_config = p.put(&self.stamp).with_context(|| {
            format!(
                "the files are restored in {}, but the site's wp-config.php is not: copy parent/wp-config.php from the archive (tar --zstd -xf) to {}",
                target.display(),
                target.parent().unwrap_or(Path::new("/")).display()
            )
        })?;
        Ok(())
    }

    /// Step 9, the files are in place (`files` is `Ok`): the database's previous tables go. A
    /// failure (or a signal) before that: the database is put back.
    fn settle<T>(
        &self,
        undo: Option<Undo>,
        files: anyhow::Result<T>,
        report: &mut Report,
    ) -> anyhow::Result<T> {
        match (files, undo) {
            (Ok(t), Some(Undo::Aside(mut aside))) => {
                if let Err(e) = aside.finish() {
                    tracing::warn!("the restore is complete, but {e:#}");
                }
                Ok(t)
            }
            (Ok(t), _) => Ok(t),
            (Err(e), Some(undo)) => Err(self.revert(undo, e, report)),
            (Err(e), None) => Err(stopped(e)),
        }
    }

    /// The database put back as it was after `err`: the error, saying what is left.
    fn revert(&self, undo: Undo, err: anyhow::Error, report: &mut Report) -> anyhow::Error {
        let db = self.target_db.as_deref().unwrap_or_default();
        report.database = None;
        if let Some(made) = self.made_user.borrow_mut().take() {
            report.db_user = None;
            report.db_user_note = None;
            if let Err(e) = made.drop_again() {
                tracing::warn!("{e:#}");
            }
        }
        let reverted = match (undo, &self.creds) {
            (Undo::Aside(mut aside), _) => aside.put_back(),
            (Undo::Created(created), Some(creds)) => created.drop_again(creds),
            (Undo::Created(_), None) => Ok(()),
        };
        match reverted {
            Ok(()) => {
                forget_saved_copy(report);
                anyhow!(
                    "{err:#}; database {db} was put back as it was and the files were not touched: nothing was changed"
                )
            }
            Err(e) => {
                let saved = match &report.previous_database {
                    Some(p) => format!(
                        "; its previous content is also in {} (zstd -dc FILE | mariadb --binary-mode {db})",
                        p.display()
                    ),
                    None => String::new(),
                };
                anyhow!(
                    "{err:#}; putting database {db} back failed too: {e:#}{saved}; the files were not touched"
                )
            }
        }
    }
}

/// What wp-config.php text declares of a multisite network.
pub fn declared(wp_config: &str) -> multisite::Declared {
    let d = crate::site::wpconfig::network_defines(wp_config);
    multisite::Declared {
        multisite: d.multisite,
        subdomain_install: d.subdomain_install,
        domain: d.domain_current_site,
        path: d.path_current_site,
    }
}

/// The copy of the database saved before the restore is removed: the database is as it was.
fn forget_saved_copy(report: &mut Report) {
    if let Some(p) = report.previous_database.take() {
        let _ = std::fs::remove_file(&p);
    }
}

/// The live `wp-config.php` is writable by the site, and a restore runs as root: it may not
/// pick, unasked, another database than the one the archive was made from (a compromised site
/// could point it at another tenant's). `--db-name` says which one to replace.
fn ensure_same_database(live: &str, archived: &str) -> anyhow::Result<()> {
    if live != archived {
        bail!(
            "the site's wp-config.php names database {live}, but the archive was made from database {archived}: check wp-config.php (it may have been changed), then say which one to replace with --db-name {archived} (or --db-name {live}); nothing was changed"
        );
    }
    Ok(())
}

/// What a restore to these targets would replace, in words.
fn live_targets(
    files: Option<&Path>,
    creds: Option<&DatabaseConfig>,
    db_name: Option<&str>,
) -> Vec<String> {
    let mut live = Vec::new();
    if let Some(dir) = files
        && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
    {
        live.push(format!(
            "the directory {} (moved aside, kept)",
            dir.display()
        ));
    }
    if let (Some(creds), Some(name)) = (creds, db_name) {
        match database::state(creds, name) {
            Ok(DbState::Tables(n)) if n > 0 => live.push(format!(
                "database {name} ({n} tables; its content is saved first, and put back if the restore fails)"
            )),
            Ok(_) => {}
            Err(e) => tracing::debug!("cannot look at database {name}: {e:#}"),
        }
    }
    live
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

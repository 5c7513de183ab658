//! `restore --dry-run`: what a restore or a clone would do, and nothing done. The archive is
//! chosen as a restore chooses it and streamed as `ls` streams it ([`browse::list`]: its
//! sha256 and manifest checked, a differential's bases read after it), so the restore point's
//! files and bytes are what a restore would write; `database.sql` is copied into an unnamed
//! temporary file (gone when the run ends) and read there: the site's old addresses, and how
//! many values of each table the rewrite to `--url` would change ([`dump_count`], counted in
//! the dump, no database needed). The database is only looked at (does it exist, how many
//! tables), and a clone's own user decided as the restore would ([`db_user::plan`], read-only
//! queries). No lock is taken, no backups.db row written, nothing created, moved or dropped.

use std::collections::BTreeMap;
use std::io::{BufReader, Seek as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use super::database::{self, DbState};
use super::{Request, db_user, wp_config};
use crate::clone::{dump_count, multisite, url_pairs};
use crate::config::{DatabaseConfig, DbHost};
use crate::crypt::Identities;
use crate::logdb::LogDb;
use crate::output;
use crate::reader::browse;
use crate::storage::Storage;
use crate::storage::catalog::choose_archive;

/// What a restore would do, as printed (and with `--json`, as written).
#[derive(Debug, Serialize)]
pub struct DryRun {
    pub site: String,
    pub key: String,
    pub storage: String,
    pub sha256_checked_against: String,
    /// The archives of the restore point: the one restored, then its bases, newest first.
    pub restore_point: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Files>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<Database>,
    /// The database users the restore would create (a clone's own).
    pub users_created: Vec<User>,
    /// The user a clone's wp-config.php would name, when it is an existing one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
    /// A multisite network's sites, each from its old address to its new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// `--at` past the restore point: the binary log replayed onto it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<Replay>,
}

#[derive(Debug, Serialize)]
pub struct Network {
    /// `subdirectory` or `subdomain`.
    pub kind: &'static str,
    /// `{prefix}blogs` rows: id, old domain and path, new domain and path.
    pub sites: Vec<Moved>,
    /// The clone's `DOMAIN_CURRENT_SITE` and `PATH_CURRENT_SITE`.
    pub domain_current_site: String,
    pub path_current_site: String,
}

#[derive(Debug, Serialize)]
pub struct Moved {
    pub id: u64,
    pub from: String,
    pub to: String,
}

/// The replay `--at` would add (see `super::pitr`).
#[derive(Debug, Serialize)]
pub struct Replay {
    /// The time the database would be brought to (UTC).
    pub to: String,
    /// `FILE:POSITION`: where the restore point's dump is in the binary log.
    pub from: String,
    /// The binary log files read, in order (all present: a gap is refused).
    pub files: Vec<String>,
    /// The file after the last is missing though a later one is stored: the restore refuses
    /// when the last file ended before the time (read once downloaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsure: Option<String>,
    /// The newest event of the site's database the replay would apply (read from the files,
    /// downloaded and checked as the restore would); `None`: none between the point and TIME.
    pub last_event: Option<crate::binlog::events::LastEvent>,
}

#[derive(Debug, Serialize)]
pub struct Files {
    pub to: PathBuf,
    /// Files and symlinks.
    pub count: u64,
    /// Bytes of the regular files.
    pub bytes: u64,
    /// The directory there now, moved aside (and kept) by the restore; `None`: nothing there.
    pub moved_aside: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Database {
    pub name: String,
    /// `replaced` (its tables kept aside until the import has succeeded, its content saved
    /// first when it holds tables) or `created`.
    pub action: &'static str,
    /// Tables it holds now.
    pub tables: u64,
    /// The user that imports.
    pub user: String,
}

#[derive(Debug, Serialize)]
pub struct User {
    pub name: String,
    pub hosts: Vec<String>,
    /// The only database it is granted.
    pub database: String,
}

#[derive(Debug, Serialize)]
pub struct Rewrite {
    pub url: String,
    pub pairs: Vec<Pair>,
    /// Values each table would have changed, counted in the archive's database.sql.
    pub values_per_table: BTreeMap<String, u64>,
    /// Values holding an old address it would leave unchanged (named in warnings by a
    /// restore), per table.
    pub left_unchanged_per_table: BTreeMap<String, u64>,
    pub counted_in: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Pair {
    pub from: String,
    pub to: String,
}

/// Say what `req` would do (see the module's documentation).
pub fn dry_run(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    logdb: Option<&LogDb>,
    req: &Request,
) -> anyhow::Result<DryRun> {
    let files_target = match (req.files, &req.to) {
        (false, _) => None,
        (true, Some(to)) => Some(std::path::absolute(to).context("--to")?),
        (true, None) => Some(req.site.path.clone()),
    };
    let (key, holding) = choose_archive(rt, storages, &req.server_id, &req.site.name, &req.choice)?;
    let identities = match &req.identity {
        Some(path) => Some(Identities::load(path)?),
        None => None,
    };
    crate::crypt::ensure_identity(&key, identities.as_ref())?;
    let st = storages[holding[0]].as_ref();
    let recorded = logdb.and_then(|db| db.archive_sha256(&key, st.name()).ok().flatten());
    // Unnamed: nothing is left of it, however the run ends.
    let mut dump = tempfile::tempfile().context("cannot create a temporary file")?;
    let listed = browse::list(
        rt,
        st,
        logdb,
        &browse::Request {
            key: &key,
            recorded: recorded.as_deref(),
            under: None,
            identities: identities.as_ref(),
            changes: false,
            database_to: req.database.then_some(&dump),
            trust: &req.trust,
        },
    )?;
    let manifest = listed
        .manifest
        .clone()
        .context("the archive has no manifest.json")?;
    let files = files_target.map(|to| {
        let count = listed.entries.iter().filter(|e| e.kind != 'd').count() as u64;
        let bytes = listed
            .entries
            .iter()
            .filter(|e| e.kind == 'f')
            .map(|e| e.size)
            .sum();
        let there = std::fs::read_dir(&to).is_ok_and(|mut d| d.next().is_some());
        Files {
            moved_aside: there.then(|| to.clone()),
            to,
            count,
            bytes,
        }
    });
    let mut plan = DryRun {
        site: req.site.name.clone(),
        key: key.clone(),
        storage: st.name().to_string(),
        sha256_checked_against: listed.source.clone(),
        restore_point: listed.archives.clone(),
        files,
        database: None,
        users_created: Vec::new(),
        existing_user: None,
        rewrite: None,
        network: None,
        replay: None,
    };
    if !req.database {
        return Ok(plan);
    }
    if let crate::storage::catalog::Choice::At(at) = &req.choice
        && let Some(p) = super::pitr::plan(rt, storages, &req.server_id, &manifest, *at)?
    {
        // The files, as the restore would fetch them (a gap after the last is judged here as
        // there), into a private directory removed at the end.
        let dir = tempfile::Builder::new()
            .prefix("wpbackup-binlog-")
            .tempdir()
            .context("cannot create a temporary directory for the binary log files")?;
        let files = super::pitr::fetch_files(
            rt,
            storages,
            &p,
            &req.trust,
            identities.as_ref(),
            dir.path(),
        )
        .context("the restore would refuse")?;
        let last_event = crate::binlog::events::last_before(
            &manifest.database_name,
            &files,
            p.start.position,
            *at,
        )?;
        plan.replay = Some(Replay {
            to: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            from: format!("{}:{}", p.start.file, p.start.position),
            files: p.names(),
            unsure: p.selection.next_missing.clone(),
            last_event,
        });
    }
    let (creds, source) =
        wp_config::credentials(&req.site, listed.wp_config.as_deref(), req.timeouts)?;
    tracing::info!("database credentials from {source}");
    let db = req.db_name.clone().unwrap_or_else(|| creds.name.clone());
    let state = database::state(&creds, &db).with_context(|| {
        format!(
            "the restore would refuse: cannot reach database {db} as user {}",
            creds.user
        )
    })?;
    plan.database = Some(Database {
        name: db.clone(),
        action: if state == DbState::Missing {
            "created"
        } else {
            "replaced"
        },
        tables: match state {
            DbState::Tables(n) => n,
            DbState::Missing => 0,
        },
        user: creds.user.clone(),
    });
    let clone = plan.files.as_ref().is_some_and(|f| f.to != req.site.path) && db != creds.name;
    if let (Some(u), false) = (&req.db_user, clone) {
        anyhow::bail!(
            "--db-user {u}: only a clone with its own database (--to DIR --db-name NAME, not the site's database) gets its own user"
        );
    }
    if clone {
        let site_user = listed.wp_config.as_deref().and_then(|a| {
            crate::site::wpconfig::parse_named(&String::from_utf8_lossy(a), "wp-config.php")
                .ok()
                .map(|w| (w.db_user, w.db_password))
        });
        let ask = db_user::Ask {
            user: req.db_user.as_deref(),
            password: req.db_password.clone(),
            creds: &creds,
            site_user,
            db: &db,
            admin_socket: admin_socket(req, &creds),
        };
        let user = db_user::plan(&ask).context("the restore would refuse")?;
        if user.create {
            plan.users_created.push(User {
                name: user.user.clone(),
                hosts: user.hosts.clone(),
                database: db.clone(),
            });
        } else {
            plan.existing_user = Some(user.user.clone());
        }
    }
    if let Some(url) = &req.url {
        let prefix = &manifest.table_prefix;
        dump.rewind().context("cannot read database.sql")?;
        let mut olds: Vec<String> = manifest.siteurl.iter().cloned().collect();
        olds.extend(dump_count::site_urls(BufReader::new(&dump), prefix)?);
        let mut pairs = url_pairs(&olds, url);
        let declared = listed
            .wp_config
            .as_deref()
            .map(|w| super::declared(&String::from_utf8_lossy(w)))
            .unwrap_or_default();
        let network = multisite::from_dump(
            || {
                (&dump).rewind().context("cannot read database.sql")?;
                Ok(BufReader::new(&dump))
            },
            prefix,
            &declared,
        )?;
        match network {
            Some(n) => {
                let moved = n.plan(url, &req.maps).context("the restore would refuse")?;
                for pair in &moved.pairs {
                    if !pairs.contains(pair) {
                        pairs.push(pair.clone());
                    }
                }
                plan.network = Some(Network {
                    kind: if n.subdomain {
                        "subdomain"
                    } else {
                        "subdirectory"
                    },
                    sites: moved
                        .sites
                        .iter()
                        .map(|(o, m)| Moved {
                            id: o.id,
                            from: format!("{}{}", o.domain, o.path),
                            to: format!("{}{}", m.domain, m.path),
                        })
                        .collect(),
                    domain_current_site: moved.domain.clone(),
                    path_current_site: moved.path.clone(),
                });
            }
            None if !req.maps.is_empty() => {
                return Err(crate::error::UsageError(
                    "--map is for multisite networks, and this archive holds a single site".into(),
                )
                .into());
            }
            None => {}
        }
        dump.rewind().context("cannot read database.sql")?;
        let counted = dump_count::count(BufReader::new(&dump), prefix, &pairs)?;
        plan.rewrite = Some(Rewrite {
            url: url.clone(),
            pairs: pairs
                .into_iter()
                .map(|(from, to)| Pair { from, to })
                .collect(),
            values_per_table: counted.per_table,
            left_unchanged_per_table: counted.left_unchanged,
            counted_in: "the archive's database.sql, without a database",
        });
    }
    Ok(plan)
}

/// Root's socket, as the restore would use it.
fn admin_socket(req: &Request, creds: &DatabaseConfig) -> Option<PathBuf> {
    req.mysql_unix_port.clone().or(match &creds.host {
        DbHost::Socket(Some(p)) => Some(p.clone()),
        _ => None,
    })
}

impl DryRun {
    /// In words, one thing a line.
    pub fn text(&self, home: &Path) -> String {
        let mut out = vec![format!(
            "restore --dry-run of site {}: nothing was changed; a restore would:",
            self.site
        )];
        let chain = match self.restore_point.as_slice() {
            [_] => String::new(),
            [_, bases @ ..] => format!(" with its bases {}", bases.join(", ")),
            [] => String::new(),
        };
        out.push(format!(
            "- restore {}{chain} from {} (sha256 checked against {})",
            self.key, self.storage, self.sha256_checked_against
        ));
        if let Some(r) = &self.replay {
            out.push(format!(
                "- then replay the site's events of the binary log from {} to {} (files {}); the files stay the restore point's",
                r.from,
                r.to,
                r.files.join(", ")
            ));
            if let Some(m) = &r.unsure {
                out.push(format!(
                    "- {m}, the file after them, is missing from every storage: the restore refuses if {} ended before that time",
                    r.files.last().map_or("", String::as_str)
                ));
            }
            out.push(match &r.last_event {
                Some(e) => format!(
                    "- the last event of the site's database it would apply: {} at {}",
                    match e.kind.as_str() {
                        "insert" => format!("rows inserted into {}", e.what),
                        "update" => format!("rows updated in {}", e.what),
                        "delete" => format!("rows deleted from {}", e.what),
                        _ => format!("the statement `{}`", e.what),
                    },
                    e.time
                ),
                None => "- no event of the site's database between the point and that time: the database would be the point's".into(),
            });
        }
        if let Some(f) = &self.files {
            let aside = match &f.moved_aside {
                Some(p) => format!(
                    "; the directory there now is moved aside to {}.before-restore-<time> and kept",
                    p.display()
                ),
                None => String::new(),
            };
            out.push(format!(
                "- write {} files ({}) to {}{aside}",
                f.count,
                output::human_bytes(f.bytes),
                f.to.display()
            ));
        }
        if let Some(d) = &self.database {
            out.push(match d.action {
                "created" => format!(
                    "- create database {} and import database.sql into it as user {}",
                    d.name, d.user
                ),
                _ => format!(
                    "- replace database {} ({} tables now{}) with database.sql, imported as user {}",
                    d.name,
                    d.tables,
                    if d.tables > 0 {
                        format!(
                            "; its content saved first in {}",
                            home.join("before-restore").display()
                        )
                    } else {
                        String::new()
                    },
                    d.user
                ),
            });
        }
        for u in &self.users_created {
            out.push(format!(
                "- create database user {} at {} with a random password, granted all privileges on database {} only, and name it in the clone's wp-config.php",
                u.name,
                u.hosts.join(", "),
                u.database
            ));
        }
        if let Some(u) = &self.existing_user {
            out.push(format!(
                "- name the existing database user {u} in the clone's wp-config.php"
            ));
        }
        if let Some(r) = &self.rewrite {
            out.push(format!(
                "- move the site to {} with {} address pairs:",
                r.url,
                r.pairs.len()
            ));
            for p in &r.pairs {
                out.push(format!("    {} -> {}", p.from, p.to));
            }
            let total: u64 = r.values_per_table.values().sum();
            let per: Vec<String> = r
                .values_per_table
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect();
            out.push(format!(
                "  changing {total} values ({}), counted in {}",
                if per.is_empty() {
                    "none".to_string()
                } else {
                    per.join(", ")
                },
                r.counted_in
            ));
            if let Some(n) = &self.network {
                out.push(format!(
                    "  a {} multisite network: wp-config.php's DOMAIN_CURRENT_SITE {} and PATH_CURRENT_SITE {}; its sites (wp_blogs, wp_site):",
                    n.kind, n.domain_current_site, n.path_current_site
                ));
                for m in &n.sites {
                    out.push(format!("    site {}: {} -> {}", m.id, m.from, m.to));
                }
            }
            let left: u64 = r.left_unchanged_per_table.values().sum();
            if left > 0 {
                out.push(format!(
                    "  and leaving {left} values that hold an old address unchanged (keys that would collide, or nested too deep)"
                ));
            }
        }
        // Names from the archive and the database, shown, never acted on by the terminal.
        out.iter()
            .map(|line| output::printable(line).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

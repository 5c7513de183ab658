//! The backup report: what happened in a period, per server and site, built from `backups.db`
//! (one server) or from D1 (the fleet), rendered as plain text and as HTML for a phone's mail
//! app, with a subject that says at a glance whether all is well.
//!
//! Per site: the last result, the last stored archive (size and storage), the runs and
//! failures in the period with their details, and a **stale** flag when the site has had no
//! successful backup (SUCCESS or WARNING) in the period: a site that silently stopped backing
//! up is the failure that hurts most. A site "needs attention" when its last run failed or it
//! is stale; the subject counts those as FAILED. So does a site whose last restore drill
//! failed, or whose last proven restore is older than `drill.max_age_days` ([`drills`]); a
//! site never drilled is counted apart, as NOT DRILLED, never as FAILED.
//!
//! Per server: what the backups uploaded in each of the last nights, full and differential
//! archives counted apart ([`uploads`]); per site, the kind of its last archive.
//!
//! Which sites are expected: for one server, the enabled sites of config.json (a site with runs
//! in the period that is no longer there is named once, never flagged); for the fleet, every site with a backup row in D1 in the last
//! [`FLEET_LOOKBACK_DAYS`] days (a site silent for longer is taken as retired).

mod data;
pub mod drills;
pub mod healthchecks;
mod html_page;
mod links;
pub mod mail;
pub mod overview;
mod render;
pub mod uploads;

pub use data::{Data, Run, enabled_sites, fleet_data_from, local_data, server_data};
pub use links::Dashboard;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::{Config, Env};
use crate::logdb::{LogDb, sql_time};
use mail::SmtpSettings;

/// How far back rows are read to find each site's last result and, for the fleet, its sites.
pub const FLEET_LOOKBACK_DAYS: i64 = 30;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server id, or "fleet".
    pub scope: String,
    pub since: String,
    pub until: String,
    pub period: String,
    /// When backups.db began, if that is inside the period (the log is new): sites without a
    /// run in it are then not flagged stale.
    pub log_began: Option<String>,
    pub servers: Vec<ServerReport>,
    /// Where the email links to (`dashboard_url` in config.json); not in the JSON.
    #[serde(skip)]
    pub dashboard: Option<Dashboard>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    pub server_id: String,
    /// The expected sites.
    pub sites: Vec<SiteReport>,
    /// The newest run stopped before any site (config.json or .env could not be read) and
    /// nothing ran since: shown once, not counted as a site.
    pub run_error: Option<Run>,
    /// Sites with runs in the period that are no longer expected (not in config.json).
    pub not_configured: Vec<String>,
    /// What was uploaded in each of the last [`uploads::NIGHTS`] UTC nights, newest first.
    pub nights: Vec<uploads::Night>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    pub site: String,
    /// The newest run (possibly before the period).
    pub last: Option<Run>,
    /// The newest stored archive: key, storage, size.
    pub last_archive: Option<(String, String, Option<u64>)>,
    /// That archive's kind: `full` or `differential`.
    pub last_archive_kind: Option<String>,
    /// When the site was last stored (possibly before the period).
    pub last_success: Option<String>,
    pub runs: usize,
    pub failures: Vec<Run>,
    pub warnings: usize,
    /// The last run failed.
    pub failed: bool,
    /// No successful backup in the period.
    pub stale: bool,
    /// No run recorded, and backups.db is younger than the period: unknown, not stale.
    pub not_in_log: bool,
    /// Its restore drills: the last proven restore, a failed or stale drill.
    pub drill: drills::DrillView,
    /// Its point-in-time window (`binlog` on), stale shipping flagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitr: Option<crate::binlog::window::Window>,
}

impl SiteReport {
    pub fn needs_attention(&self) -> bool {
        self.failed
            || self.stale
            || self.drill.failed()
            || self.drill.stale
            || self.shipping_stale()
    }

    /// Its binary log shipping is stale.
    pub fn shipping_stale(&self) -> bool {
        self.pitr.as_ref().is_some_and(|w| w.stale)
    }

    fn label(&self) -> &'static str {
        match (self.failed, self.stale) {
            (true, _) => "FAILED",
            (false, true) => "STALE",
            _ if self.shipping_stale() => "STALE SHIPPING",
            _ if self.drill.failed() => "DRILL FAILED",
            _ if self.drill.stale => "STALE DRILL",
            _ if self.not_in_log => "NOT IN LOG",
            _ if self.drill.never() => "NOT DRILLED",
            _ if self.last.as_ref().is_some_and(|r| r.status == "WARNING") => "WARNING",
            _ => "OK",
        }
    }
}

/// Why a `--since` period cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("{0:?} is not a duration: use a number and a unit, as 24h or 7d")]
    NotADuration(String),
    #[error("{text:?}: unknown unit {unit:?}: use s, m, h, d or w (as 24h or 7d)")]
    UnknownUnit { text: String, unit: String },
    #[error("{0:?}: the period must be longer than zero")]
    NotPositive(String),
}

/// `30m`, `24h`, `7d`, `2w`, `90s`.
pub fn parse_period(s: &str) -> Result<Duration, PeriodError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| PeriodError::NotADuration(s.to_string()))?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" | "min" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        "w" => Duration::weeks(n),
        _ => {
            return Err(PeriodError::UnknownUnit {
                text: s.to_string(),
                unit: unit.to_string(),
            });
        }
    };
    if n <= 0 {
        return Err(PeriodError::NotPositive(s.to_string()));
    }
    Ok(d)
}

/// The start of the rows to read for a period ending `now`.
pub fn lookback_start(now: DateTime<Utc>, period: Duration) -> DateTime<Utc> {
    now - period.max(Duration::days(FLEET_LOOKBACK_DAYS))
}

/// Build the report for the period `[now - period, now]`.
///
/// Only the expected sites are reported: a site that is no longer configured is listed once by
/// name, never as failing. A run-level error (`*`: the run stopped before any site) is shown
/// for its server while it is the newest run there and in the period, and is not a site.
pub fn build(
    scope: &str,
    data: &Data,
    now: DateTime<Utc>,
    period: Duration,
    period_text: &str,
) -> Report {
    let since = sql_time(now - period);
    let log_new = data
        .log_began
        .as_deref()
        .is_some_and(|b| b > since.as_str());
    let mut by_site: BTreeMap<(String, String), Vec<&Run>> = BTreeMap::new();
    for key in &data.expected {
        by_site.entry(key.clone()).or_default();
    }
    let mut servers: BTreeMap<String, ServerReport> = BTreeMap::new();
    let server = |id: &str| ServerReport {
        server_id: id.to_string(),
        sites: Vec::new(),
        run_error: None,
        not_configured: Vec::new(),
        nights: uploads::nights(&data.uploads, id, now),
    };
    for run in &data.runs {
        let key = (run.server_id.clone(), run.site_name.clone());
        match by_site.get_mut(&key) {
            Some(runs) => runs.push(run),
            None if run.site_name != "*" && run.timestamp >= since => {
                let s = servers
                    .entry(run.server_id.clone())
                    .or_insert_with(|| server(&run.server_id));
                if !s.not_configured.contains(&run.site_name) {
                    s.not_configured.push(run.site_name.clone());
                }
            }
            None => {}
        }
    }
    // The newest run of each server: a run-level error while nothing has happened since.
    let mut newest: BTreeMap<&str, &Run> = BTreeMap::new();
    for run in &data.runs {
        newest.insert(&run.server_id, run);
    }
    for (id, run) in newest {
        if run.site_name == "*" && run.timestamp >= since {
            servers
                .entry(id.to_string())
                .or_insert_with(|| server(id))
                .run_error = Some(run.clone());
        }
    }
    let max_age = data
        .drill_max_age_days
        .unwrap_or(crate::config::DrillSettings::default().max_age_days);
    for ((server_id, site), runs) in by_site {
        let mut report = site_report(data, &server_id, site, &runs, &since, log_new);
        let in_use = data.drills.keys().any(|(s, _)| *s == server_id);
        let key = (server_id.clone(), report.site.clone());
        report.drill = drills::view(data.drills.get(&key), in_use, max_age, now);
        report.pitr = data.pitr.get(&key).cloned();
        servers
            .entry(server_id.clone())
            .or_insert_with(|| server(&server_id))
            .sites
            .push(report);
    }
    Report {
        scope: scope.to_string(),
        since: format!("{since} UTC"),
        until: format!("{} UTC", sql_time(now)),
        period: period_text.to_string(),
        log_began: data.log_began.clone().filter(|_| log_new),
        servers: servers.into_values().collect(),
        dashboard: None,
    }
}

/// One expected site's runs (oldest first) summed up for the period starting `since`.
fn site_report(
    data: &Data,
    server: &str,
    site: String,
    runs: &[&Run],
    since: &str,
    log_new: bool,
) -> SiteReport {
    let in_period: Vec<&&Run> = runs
        .iter()
        .filter(|r| r.timestamp.as_str() >= since)
        .collect();
    let last = runs.last().map(|r| (*r).clone());
    let last_stored = runs.iter().rev().find(|r| r.stored());
    let last_archive = runs
        .iter()
        .rev()
        .find(|r| r.stored() && r.archive_key.is_some())
        .map(|r| {
            let key = r.archive_key.clone().unwrap_or_default();
            let storage = r.storage_name.clone().unwrap_or_default();
            let size = data
                .sizes
                .get(&(server.to_string(), key.clone(), storage.clone()))
                .copied();
            (key, storage, size)
        });
    // A log younger than the period cannot tell that a site without a run had no backup in it.
    let not_in_log = log_new && runs.is_empty();
    SiteReport {
        failed: last.as_ref().is_some_and(|r| r.status == "ERROR"),
        stale: !not_in_log && !in_period.iter().any(|r| r.stored()),
        not_in_log,
        site,
        last_success: last_stored.map(|r| r.timestamp.clone()),
        last_archive_kind: last_archive
            .as_ref()
            .map(|(key, storage, _)| uploads::kind_of_archive(&data.uploads, server, key, storage)),
        last_archive,
        runs: in_period.len(),
        failures: in_period
            .iter()
            .filter(|r| r.status == "ERROR")
            .map(|r| (**r).clone())
            .collect(),
        warnings: in_period.iter().filter(|r| r.status == "WARNING").count(),
        last,
        drill: drills::DrillView::default(),
        pitr: None,
    }
}

/// After a backup in which a site failed: email this server's report for the last 24 hours.
/// Never changes the backup's result: a failure to send is a WARNING with its cause.
pub fn after_failed_backup(env: &Env, config: &Config, db: &LogDb) {
    let result = (|| -> anyhow::Result<String> {
        let smtp = SmtpSettings::from_env(env, &[])?;
        let period = chrono::Duration::hours(24);
        let now = Utc::now();
        let expected = enabled_sites(config);
        let mut data = local_data(
            db,
            &config.server_id,
            &expected,
            lookback_start(now, period),
        )?;
        data.drill_max_age_days = Some(config.drill.max_age_days);
        data::add_windows(&mut data, db, config, now)?;
        let mut report = build(&config.server_id, &data, now, period, "24h");
        report.dashboard = config.dashboard_url.as_deref().map(Dashboard::new);
        mail::send(&smtp, &report.subject(), report.text(), report.html())?;
        Ok(report.subject())
    })();
    match result {
        Ok(subject) => tracing::info!("failure report sent: {subject}"),
        Err(e) => tracing::warn!("cannot send the failure report (report.on_failure): {e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(server: &str, site: &str, ts: &str, status: &str, details: &str) -> Run {
        Run {
            server_id: server.into(),
            site_name: site.into(),
            timestamp: ts.into(),
            status: status.into(),
            details: details.into(),
            storage_name: (status != "ERROR").then(|| "primary".into()),
            archive_key: (status != "ERROR")
                .then(|| format!("{server}/{site}/{site}_{ts}.tar.zst")),
            duration_secs: Some(4.0),
        }
    }

    #[test]
    fn periods() {
        assert_eq!(parse_period("24h").unwrap(), Duration::hours(24));
        assert_eq!(parse_period("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_period("30m").unwrap(), Duration::minutes(30));
        assert!(
            parse_period("24")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
        assert!(
            parse_period("h")
                .unwrap_err()
                .to_string()
                .contains("not a duration")
        );
        assert!(parse_period("0h").is_err());
    }

    /// Five expected sites of web-01 (ok, stale, broken, recovered, never) and one removed.
    fn sample() -> Report {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut data = Data {
            runs: vec![
                run("web-01", "ok", "2026-11-25 01:00:00", "SUCCESS", "stored"),
                run(
                    "web-01",
                    "stale",
                    "2026-11-20 01:00:00",
                    "SUCCESS",
                    "stored",
                ),
                run(
                    "web-01",
                    "broken",
                    "2026-11-25 01:00:00",
                    "SUCCESS",
                    "stored",
                ),
                run(
                    "web-01",
                    "broken",
                    "2026-11-25 02:00:00",
                    "ERROR",
                    "dump <failed>",
                ),
                run(
                    "web-01",
                    "recovered",
                    "2026-11-25 01:00:00",
                    "ERROR",
                    "s3 down",
                ),
                run(
                    "web-01",
                    "recovered",
                    "2026-11-25 02:00:00",
                    "WARNING",
                    "failover",
                ),
                run(
                    "web-01",
                    "removed",
                    "2026-11-10 01:00:00",
                    "SUCCESS",
                    "stored",
                ),
            ],
            ..Data::default()
        };
        data.expected = ["ok", "stale", "broken", "recovered", "never"]
            .iter()
            .map(|s| ("web-01".to_string(), s.to_string()))
            .collect();
        build("web-01", &data, now, Duration::hours(24), "24h")
    }

    #[test]
    fn failed_stale_and_ok_sites() {
        let r = sample();
        let site = |n: &str| r.servers[0].sites.iter().find(|s| s.site == n).cloned();
        assert!(
            site("removed").is_none(),
            "a site not expected and not recent"
        );
        let broken = site("broken").unwrap();
        assert!(broken.failed && !broken.stale);
        assert_eq!(broken.failures.len(), 1);
        let stale = site("stale").unwrap();
        assert!(stale.stale && !stale.failed);
        assert_eq!(stale.last_success.as_deref(), Some("2026-11-20 01:00:00"));
        assert!(site("never").unwrap().stale);
        let rec = site("recovered").unwrap();
        assert!(!rec.needs_attention());
        assert_eq!(rec.failures.len(), 1);
        assert_eq!(r.problems(), 3);
        // ok and recovered backed up, but no drill proves them restorable.
        assert_eq!(r.subject(), "[wpbackup] web-01: 3 FAILED, 2 NOT DRILLED");
    }

    #[test]
    fn failures_rendered_in_text_and_html() {
        let r = sample();
        let text = r.text();
        assert!(text.contains("[STALE] stale"), "{text}");
        assert!(text.contains("[FAILED] broken"), "{text}");
        assert!(text.contains("dump <failed>"), "{text}");
        // The last run's failure is shown once; an earlier one is listed.
        assert_eq!(text.matches("dump <failed>").count(), 1, "{text}");
        assert!(
            text.contains("- 2026-11-25 01:00:00 UTC: s3 down"),
            "{text}"
        );
        let html = r.html();
        assert!(html.contains("dump &lt;failed&gt;"), "{html}");
        assert!(!html.contains("dump <failed>"));
    }

    #[test]
    fn run_error_and_removed_site_are_not_failed_sites() {
        let now = Utc::now();
        let ts = |h: i64| sql_time(now - Duration::hours(h));
        let mut data = Data {
            runs: vec![
                run("web-01", "*", &ts(5), "ERROR", "config.json: broken"),
                run("web-01", "gone", &ts(4), "ERROR", "no such directory"),
                run("web-01", "a", &ts(3), "SUCCESS", "stored"),
            ],
            expected: vec![("web-01".into(), "a".into())],
            ..Data::default()
        };
        let r = build("web-01", &data, now, Duration::hours(24), "24h");
        assert_eq!(r.subject(), "[wpbackup] web-01: 1 NOT DRILLED");
        assert!(
            r.servers[0].run_error.is_none(),
            "superseded by a later run"
        );
        assert_eq!(r.servers[0].not_configured, vec!["gone".to_string()]);
        data.runs
            .push(run("web-01", "*", &ts(1), "ERROR", "config.json: broken"));
        let r = build("web-01", &data, now, Duration::hours(24), "24h");
        assert_eq!(r.servers[0].sites.len(), 1);
        assert_eq!(
            r.subject(),
            "[wpbackup] web-01: 1 NOT DRILLED; the last run failed"
        );
        assert_eq!(r.text().matches("config.json: broken").count(), 1);
        assert!(!r.all_well());
    }

    /// Differential archives (issue 13): the last archive's kind, and the uploads per night.
    #[test]
    fn last_archive_kind_and_uploads_per_night() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let full = "web-01/a/a_20261124T030000Z.tar.zst";
        let diff = "web-01/a/a_20261125T030000Z.diff-20261124T030000Z.tar.zst";
        let mut last = run("web-01", "a", "2026-11-25 03:00:00", "SUCCESS", "stored");
        last.archive_key = Some(diff.into());
        let upload = |key: &str, at: &str, size: u64, kind: &str| uploads::Upload {
            server_id: "web-01".into(),
            filename: key.into(),
            storage_name: "primary".into(),
            file_size: size,
            created_at: at.into(),
            kind: kind.into(),
        };
        let uploads = vec![
            upload(full, "2026-11-24 03:00:00", 3 * 1024 * 1024, "full"),
            upload(diff, "2026-11-25 03:00:00", 2048, "differential"),
        ];
        let data = Data {
            runs: vec![last],
            sizes: super::data::sizes_of(&uploads),
            uploads,
            expected: vec![("web-01".into(), "a".into())],
            ..Data::default()
        };
        let r = build("web-01", &data, now, Duration::hours(24), "24h");
        let site = &r.servers[0].sites[0];
        assert_eq!(site.last_archive_kind.as_deref(), Some("differential"));
        let nights = &r.servers[0].nights;
        assert_eq!(
            (nights[0].bytes, nights[0].full, nights[0].differential),
            (2048, 0, 1)
        );
        assert_eq!(
            (nights[1].bytes, nights[1].full, nights[1].differential),
            (3 << 20, 1, 0)
        );
        let text = r.text();
        assert!(
            text.contains(&format!(
                "Last archive: {diff} on primary, 2.0 KiB uploaded, differential"
            )),
            "{text}"
        );
        assert!(text.contains("Uploaded per night, last 7"), "{text}");
        let row = |date: &str, cells: &[&str]| {
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [&[date][..], cells].concat())
        };
        assert!(row("2026-11-25", &["2.0", "KiB", "0", "1"]), "{text}");
        assert!(row("2026-11-24", &["3.0", "MiB", "1", "0"]), "{text}");
        assert!(row("2026-11-19", &["0", "B", "0", "0"]), "{text}");
        let html = r.html();
        assert!(html.contains("<td style=\"padding:2px 8px;border-bottom:1px solid #ddd;text-align:right\">3.0 MiB</td>"), "{html}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["servers"][0]["nights"][0],
            serde_json::json!({"date": "2026-11-25", "bytes": 2048, "full": 0, "differential": 1})
        );
    }

    #[test]
    fn all_ok_subject() {
        let now = Utc::now();
        let ts = sql_time(now - Duration::hours(1));
        let mut data = Data {
            runs: vec![run("web-01", "a", &ts, "SUCCESS", "stored")],
            expected: vec![("web-01".into(), "a".into())],
            ..Data::default()
        };
        data.drills
            .insert(("web-01".into(), "a".into()), passed_drill("a", &ts));
        let r = build("web-01", &data, now, Duration::hours(24), "24h");
        assert!(r.all_well());
        assert_eq!(r.subject(), "[wpbackup] web-01: 1 OK");
    }

    fn passed_drill(site: &str, ts: &str) -> crate::logdb::Drills {
        let row = crate::logdb::DrillRow {
            timestamp: ts.into(),
            site_name: site.into(),
            archive_key: Some("k".into()),
            result: "SUCCESS".into(),
            failed: None,
            recovery_secs: Some(4.0),
        };
        crate::logdb::Drills {
            last: Some(row.clone()),
            last_passed: Some(row),
        }
    }

    /// Issue 26: every backup succeeded, and a site was never drilled. On day one (no drill
    /// anywhere) and after backups.db was lost (another site drilled since), the subject says
    /// NOT DRILLED, never FAILED.
    #[test]
    fn a_never_drilled_site_is_not_drilled_not_failed() {
        let now = Utc::now();
        let ts = sql_time(now - Duration::hours(1));
        let mut data = Data {
            runs: vec![
                run("web-01", "a", &ts, "SUCCESS", "stored"),
                run("web-01", "b", &ts, "SUCCESS", "stored"),
            ],
            expected: vec![("web-01".into(), "a".into()), ("web-01".into(), "b".into())],
            ..Data::default()
        };
        let day_one = build("web-01", &data, now, Duration::hours(24), "24h");
        assert_eq!(day_one.subject(), "[wpbackup] web-01: 2 NOT DRILLED");
        assert!(day_one.all_well());

        // backups.db lost, then a drilled since: b is still never drilled.
        data.log_began = Some(sql_time(now - Duration::hours(2)));
        data.drills
            .insert(("web-01".into(), "a".into()), passed_drill("a", &ts));
        let after_loss = build("web-01", &data, now, Duration::hours(24), "24h");
        let subject = after_loss.subject();
        assert!(!subject.contains("FAILED"), "{subject}");
        assert_eq!(subject, "[wpbackup] web-01: 1 NOT DRILLED, 1 OK");
        assert!(after_loss.all_well());
        let text = after_loss.text();
        assert!(text.contains("[NOT DRILLED] b"), "{text}");
    }
}

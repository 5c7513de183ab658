//! `report --html FILE`: the dashboard's fleet page (dashboard/src/pages.mjs) rendered from a
//! report, as one self-contained HTML file a person can open or serve anywhere: the same
//! table, the same order (sites needing attention first, with the report's stale rule), the
//! same stylesheet (dashboard/src/page.css, built in), no script.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{Report, SiteReport};
use crate::output::{escape_html as esc, human_bytes, human_duration};

/// The dashboard's stylesheet, shared so both pages look the same.
const CSS: &str = include_str!("../../dashboard/src/page.css");

/// A storage failed before the one that took the archive (the wording of backup/outcome.rs).
fn failed_over(s: &SiteReport) -> bool {
    s.last
        .as_ref()
        .is_some_and(|r| r.stored() && r.details.contains("failed first: "))
}

/// `3 h ago`, `2 d 4 h ago`, `never`: as the dashboard says it.
fn ago(ts: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(then) = ts.and_then(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok())
    else {
        return "never".into();
    };
    let mins = (now - then.and_utc()).num_minutes().max(0);
    match mins / 60 {
        0 => format!("{mins} min ago"),
        h if h < 48 => format!("{h} h ago"),
        h => format!("{} d {} h ago", h / 24, h % 24),
    }
}

/// One site's row, as pages.mjs's `fleetRow` writes it.
fn row(out: &mut String, server: &str, s: &SiteReport, now: DateTime<Utc>) {
    // pages.mjs knows no drills: a site only never drilled shows its backup's label.
    let label = match s.label() {
        "NOT DRILLED" if s.last.as_ref().is_some_and(|r| r.status == "WARNING") => "WARNING",
        "NOT DRILLED" => "OK",
        l => l,
    };
    let attention = s.needs_attention();
    let (storage, size) = match &s.last_archive {
        Some((_, storage, size)) => (storage.as_str(), size.map(human_bytes).unwrap_or_default()),
        None => ("", String::new()),
    };
    let detail = match &s.last {
        Some(r) if attention && r.status == "ERROR" => {
            format!("<div class=\"detail\">{}</div>", esc(&r.details))
        }
        _ => String::new(),
    };
    let failover = if failed_over(s) {
        format!(
            "<span class=\"failover\" title=\"a higher-priority storage failed; {0} took the archive\">failover</span>",
            esc(storage)
        )
    } else {
        String::new()
    };
    let last_run = s.last.as_ref().map(|r| r.timestamp.as_str());
    let _ = write!(
        out,
        "<tr class=\"{cls}\" data-server=\"{server}\" data-site=\"{site}\" data-label=\"{label}\">\n\
         <td><span class=\"badge {badge}\">{label}</span></td>\n<td class=\"nw\">{server}</td>\n\
         <td>{site}{detail}</td>\n<td class=\"nw {ago_cls}\" title=\"{success}\">{success_ago}</td>\n\
         <td class=\"nw\" title=\"{run} UTC\">{run_ago}</td>\n<td>{storage}{failover}</td>\n\
         <td class=\"num\">{size}</td>\n<td class=\"num\">{duration}</td>\n</tr>\n",
        cls = if attention { "attention" } else { "ok" },
        server = esc(server),
        site = esc(&s.site),
        badge = label.replace(' ', ""),
        ago_cls = if label == "STALE" { "ago late" } else { "ago" },
        success = esc(s.last_success.as_deref().unwrap_or_default()),
        success_ago = ago(s.last_success.as_deref(), now),
        run = esc(last_run.unwrap_or_default()),
        run_ago = ago(last_run, now),
        storage = esc(storage),
        size = esc(&size),
        duration = s
            .last
            .as_ref()
            .and_then(|r| r.duration_secs)
            .map(human_duration)
            .unwrap_or_default(),
    );
}

impl Report {
    /// The fleet page: every expected site, those needing attention first.
    pub fn fleet_page(&self, now: DateTime<Utc>) -> String {
        let mut sites: Vec<(&str, &SiteReport)> = self
            .servers
            .iter()
            .flat_map(|srv| srv.sites.iter().map(|s| (srv.server_id.as_str(), s)))
            .collect();
        sites.sort_by_key(|(server, s)| (!s.needs_attention(), *server, s.site.as_str()));
        let total = sites.len();
        let bad = self.problems();
        let banner = if bad == 0 {
            format!(
                "<p class=\"banner\">{} backed up in the last {}</p>",
                if total == 1 {
                    "The 1 site".to_string()
                } else {
                    format!("All {}", crate::output::plural(total, "site"))
                },
                esc(&self.period)
            )
        } else {
            format!(
                "<p class=\"banner bad\">{bad} of {} need{} attention</p>",
                crate::output::plural(total, "site"),
                if bad == 1 { "s" } else { "" }
            )
        };
        let mut rows = String::new();
        for (server, s) in &sites {
            row(&mut rows, server, s, now);
        }
        let notes: String = self
            .servers
            .iter()
            .filter_map(|s| s.run_error.as_ref().map(|r| (s, r)))
            .map(|(s, r)| {
                format!(
                    "<p class=\"refused\">{}: the last run stopped before any site ({} UTC): {}</p>",
                    esc(&s.server_id),
                    esc(&r.timestamp),
                    esc(&r.details)
                )
            })
            .collect();
        let title = if bad > 0 {
            format!("wpbackup: {bad} need attention")
        } else {
            "wpbackup: all well".into()
        };
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style>{CSS}</style></head>\n<body><main>\
             <h1>wpbackup {scope}</h1>\n<p class=\"sub\">{servers}, {sites}; stale: no stored backup in the last {period} (since {since}). Generated {until}.</p>\n\
             {banner}\n{notes}<table id=\"fleet\"><thead><tr><th>status</th><th>server</th><th>site</th><th>last success</th><th>last run</th><th>storage</th><th class=\"num\">archive</th><th class=\"num\">duration</th></tr></thead>\n<tbody>\n{rows}</tbody></table>\n\
             <footer>Written by <code>wpbackup report --html</code>, with the same rule as <code>wpbackup report</code>.</footer></main></body></html>\n",
            scope = esc(&self.scope),
            servers = crate::output::plural(self.servers.len(), "server"),
            sites = crate::output::plural(total, "site"),
            period = esc(&self.period),
            since = esc(&self.since),
            until = esc(&self.until),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_the_dashboard_says_them() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ago(Some("2026-11-25 11:30:00"), now), "30 min ago");
        assert_eq!(ago(Some("2026-11-24 12:00:00"), now), "24 h ago");
        assert_eq!(ago(Some("2026-11-22 08:00:00"), now), "3 d 4 h ago");
        assert_eq!(ago(None, now), "never");
    }
}

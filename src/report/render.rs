//! A report rendered for people: the subject that says at a glance whether all is well, a
//! plain-text body and an HTML body for a phone's mail app (sites needing attention first).

use std::fmt::Write as _;

use super::{Report, Run, ServerReport, SiteReport, uploads};
use crate::output::{self, escape_html as esc, human_bytes};

/// Failures listed per site at most (the rest are counted).
const MAX_FAILURES_LISTED: usize = 10;

impl Report {
    fn sites(&self) -> impl Iterator<Item = &SiteReport> {
        self.servers.iter().flat_map(|s| s.sites.iter())
    }

    /// Sites whose last run failed or that are stale.
    pub fn problems(&self) -> usize {
        self.sites().filter(|s| s.needs_attention()).count()
    }

    /// Servers whose newest run stopped before any site.
    pub fn run_errors(&self) -> usize {
        self.servers
            .iter()
            .filter(|s| s.run_error.is_some())
            .count()
    }

    pub fn all_well(&self) -> bool {
        self.problems() == 0 && self.run_errors() == 0
    }

    /// `[wpbackup] web-01: 12 OK` or `[wpbackup] web-01: 2 FAILED, 10 OK`.
    pub fn subject(&self) -> String {
        let scope = if self.scope == "fleet" {
            format!(
                "fleet of {} server{}",
                self.servers.len(),
                if self.servers.len() == 1 { "" } else { "s" }
            )
        } else {
            self.scope.clone()
        };
        let total = self.sites().count();
        let bad = self.problems();
        let run = match (self.run_errors(), self.scope == "fleet") {
            (0, _) => String::new(),
            (_, false) => "; the last run failed".into(),
            (1, true) => "; 1 server's last run failed".into(),
            (n, true) => format!("; {n} servers' last run failed"),
        };
        let labelled = |l: &str| {
            self.sites()
                .filter(|s| !s.needs_attention() && s.label() == l)
                .count()
        };
        let unknown = labelled("NOT IN LOG");
        let undrilled = labelled("NOT DRILLED");
        let counts: Vec<String> = [
            (bad, "FAILED"),
            (unknown, "NOT IN LOG"),
            (undrilled, "NOT DRILLED"),
            (total - bad - unknown - undrilled, "OK"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if total == 0 {
            format!("[wpbackup] {scope}: no sites{run}")
        } else {
            format!("[wpbackup] {scope}: {}{run}", counts.join(", "))
        }
    }

    /// What the report cannot judge, said once above the servers.
    fn log_note(&self) -> Option<String> {
        self.log_began.as_ref().map(|t| {
            format!(
                "backups.db is new (nothing recorded before {t} UTC): a site with no run since \
                 then is NOT IN LOG, not stale; `wpbackup list` shows the archives the storages hold."
            )
        })
    }

    /// A server's run-level error and its sites no longer configured, shared by text and HTML.
    fn server_notes(server: &ServerReport) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(r) = &server.run_error {
            lines.push(format!(
                "RUN FAILED: the last run ({} UTC) stopped before any site: {}",
                r.timestamp, r.details
            ));
        }
        if !server.not_configured.is_empty() {
            lines.push(format!(
                "No longer in config.json (not counted): {}",
                server.not_configured.join(", ")
            ));
        }
        lines
    }

    fn summary_line(&self) -> String {
        let total = self.sites().count();
        let failed = self.sites().filter(|s| s.failed).count();
        let stale = self.sites().filter(|s| s.stale).count();
        let mut parts = vec![format!("{total} site{}", if total == 1 { "" } else { "s" })];
        if failed > 0 {
            parts.push(format!("{failed} failed"));
        }
        if stale > 0 {
            parts.push(format!(
                "{stale} stale (no successful backup in the period)"
            ));
        }
        let unknown = self.sites().filter(|s| s.not_in_log).count();
        if unknown > 0 {
            parts.push(format!("{unknown} not in the new backups.db"));
        }
        if failed == 0 && stale == 0 && unknown == 0 {
            parts.push("all backed up".into());
        }
        parts.join(", ")
    }

    /// The lines shown for one site (besides its name and label), shared by text and HTML.
    fn site_lines(s: &SiteReport) -> Vec<String> {
        let mut lines = Vec::new();
        match &s.last {
            Some(r) => lines.push(format!(
                "Last run: {} at {} UTC: {}",
                r.status, r.timestamp, r.details
            )),
            None if s.not_in_log => {
                lines.push("No run recorded since backups.db began (it is new).".into())
            }
            None => lines.push("No backup recorded.".into()),
        }
        if s.stale {
            lines.push(match &s.last_success {
                Some(t) => format!("STALE: no successful backup in the period; last one {t} UTC."),
                None => "STALE: no successful backup recorded at all.".into(),
            });
        }
        if let Some((key, storage, size)) = &s.last_archive {
            lines.push(format!(
                "Last archive: {key} on {storage}{}{}",
                size.map(|b| format!(", {} uploaded", human_bytes(b)))
                    .unwrap_or_default(),
                s.last_archive_kind
                    .as_deref()
                    .map(|k| format!(", {k}"))
                    .unwrap_or_default()
            ));
        }
        lines.push(format!(
            "Runs in the period: {}, failures: {}, warnings: {}",
            s.runs,
            s.failures.len(),
            s.warnings
        ));
        lines.extend(super::drills::lines(&s.drill));
        if let Some(w) = &s.pitr {
            lines.push(format!("Point in time: {}.", w.text(chrono::Utc::now())));
            lines.extend(w.stale_text().map(|t| format!("{t}.")));
        }
        lines
    }

    /// The period's failures, newest first, without the last run (shown above them).
    fn failure_lines(s: &SiteReport) -> Vec<String> {
        let last = s.last.as_ref().map(|r| (&r.timestamp, &r.details));
        let earlier: Vec<&Run> = s
            .failures
            .iter()
            .rev()
            .filter(|f| Some((&f.timestamp, &f.details)) != last)
            .collect();
        let mut lines: Vec<String> = earlier
            .iter()
            .take(MAX_FAILURES_LISTED)
            .map(|f| format!("{} UTC: {}", f.timestamp, f.details))
            .collect();
        if earlier.len() > MAX_FAILURES_LISTED {
            lines.push(format!(
                "... and {} earlier failures",
                earlier.len() - MAX_FAILURES_LISTED
            ));
        }
        lines
    }

    /// Sites needing attention first, then by name.
    fn ordered(sites: &[SiteReport]) -> Vec<&SiteReport> {
        let mut v: Vec<&SiteReport> = sites.iter().collect();
        v.sort_by_key(|s| (!s.needs_attention(), s.site.clone()));
        v
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "wpbackup report: {}", self.scope);
        let _ = writeln!(
            out,
            "Period: {} to {} ({})",
            self.since, self.until, self.period
        );
        let _ = writeln!(out, "{}", self.summary_line());
        if let Some(d) = &self.dashboard {
            let _ = writeln!(out, "Dashboard: {}", d.fleet());
        }
        if let Some(note) = self.log_note() {
            let _ = writeln!(out, "{note}");
        }
        for server in &self.servers {
            let _ = writeln!(out, "\n== {}", server.server_id);
            for line in Self::server_notes(server) {
                let _ = writeln!(out, "{line}");
            }
            for s in Self::ordered(&server.sites) {
                Self::text_site(&mut out, self.site_link(&server.server_id, s), s);
            }
            let _ = writeln!(out, "\n{}", uploads::title());
            let table = output::table(&uploads::HEADER, &uploads::rows(&server.nights));
            for line in table.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        out
    }

    /// One site in the text body: its label and name, its lines, its link, its failures.
    fn text_site(out: &mut String, link: Option<String>, s: &SiteReport) {
        let _ = writeln!(out, "\n[{}] {}", s.label(), &s.site);
        for line in Self::site_lines(s) {
            let _ = writeln!(out, "  {line}");
        }
        if let Some(url) = link {
            let _ = writeln!(out, "  Dashboard: {url}");
        }
        let failures = Self::failure_lines(s);
        if !failures.is_empty() {
            let _ = writeln!(out, "  Earlier failures in the period:");
            for f in failures {
                let _ = writeln!(out, "    - {f}");
            }
        }
    }

    /// One column, inline styles only, readable on a phone.
    pub fn html(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{}</title></head>\
             <body style=\"margin:0;padding:12px;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.4;color:#222;background:#f6f6f6\">\
             <div style=\"max-width:640px;margin:0 auto\">",
            esc(&self.subject())
        );
        let banner = if self.all_well() {
            "#1a7f37"
        } else {
            "#cf222e"
        };
        let _ = write!(
            out,
            "<h1 style=\"font-size:20px;margin:0 0 4px\">wpbackup report: {}</h1>\
             <p style=\"margin:0 0 4px;color:#555\">{} to {} ({})</p>\
             <p style=\"margin:0 0 12px;padding:8px 10px;border-radius:6px;color:#fff;background:{banner}\"><b>{}</b></p>",
            esc(&self.scope),
            esc(&self.since),
            esc(&self.until),
            esc(&self.period),
            esc(&self.summary_line())
        );
        if let Some(d) = &self.dashboard {
            let _ = write!(
                out,
                "<p style=\"margin:0 0 12px\"><a href=\"{}\" style=\"color:#0969da\">Open the dashboard</a></p>",
                esc(&d.fleet())
            );
        }
        if let Some(note) = self.log_note() {
            let _ = write!(out, "<p style=\"margin:0 0 12px\">{}</p>", esc(&note));
        }
        for server in &self.servers {
            let _ = write!(
                out,
                "<h2 style=\"font-size:17px;margin:16px 0 8px\">{}</h2>",
                esc(&server.server_id)
            );
            for line in Self::server_notes(server) {
                let _ = write!(out, "<p style=\"margin:0 0 8px\"><b>{}</b></p>", esc(&line));
            }
            for s in Self::ordered(&server.sites) {
                self.html_site(&mut out, &server.server_id, s);
            }
            html_nights(&mut out, &server.nights);
        }
        out.push_str("</div></body></html>");
        out
    }

    /// The dashboard page of a site needing attention, when the dashboard is configured.
    fn site_link(&self, server_id: &str, s: &SiteReport) -> Option<String> {
        let d = self.dashboard.as_ref()?;
        s.needs_attention().then(|| d.site(server_id, &s.site))
    }

    /// One site's card: its label in its colour, its lines, its dashboard link, its failures.
    fn html_site(&self, out: &mut String, server_id: &str, s: &SiteReport) {
        let color = match s.label() {
            "FAILED" | "DRILL FAILED" => "#cf222e",
            "STALE" | "STALE DRILL" => "#bc4c00",
            "WARNING" => "#9a6700",
            "NOT IN LOG" | "NOT DRILLED" => "#57606a",
            _ => "#1a7f37",
        };
        let _ = write!(
            out,
            "<div style=\"background:#fff;border-left:5px solid {color};border-radius:4px;padding:8px 10px;margin:0 0 8px;word-wrap:break-word;overflow-wrap:anywhere\">\
             <div><span style=\"display:inline-block;padding:1px 6px;border-radius:3px;color:#fff;background:{color};font-size:12px;font-weight:bold\">{}</span> \
             <b>{}</b></div>",
            s.label(),
            esc(&s.site)
        );
        for line in Self::site_lines(s) {
            let _ = write!(out, "<div style=\"margin-top:4px\">{}</div>", esc(&line));
        }
        if let Some(url) = self.site_link(server_id, s) {
            let _ = write!(
                out,
                "<div style=\"margin-top:4px\"><a href=\"{}\" style=\"color:#0969da\">{} in the dashboard</a></div>",
                esc(&url),
                esc(&s.site)
            );
        }
        let failures = Self::failure_lines(s);
        if !failures.is_empty() {
            out.push_str("<div style=\"margin-top:4px\">Earlier failures in the period:</div><ul style=\"margin:2px 0 0;padding-left:20px\">");
            for f in failures {
                let _ = write!(out, "<li>{}</li>", esc(&f));
            }
            out.push_str("</ul>");
        }
        out.push_str("</div>");
    }
}

/// The nights table of one server, small enough for a phone.
fn html_nights(out: &mut String, nights: &[uploads::Night]) {
    let _ = write!(
        out,
        "<p style=\"margin:12px 0 4px\">{}</p>\
         <table style=\"border-collapse:collapse;background:#fff;font-size:14px\"><tr>",
        esc(&uploads::title())
    );
    let cell = "padding:2px 8px;border-bottom:1px solid #ddd";
    for h in uploads::HEADER {
        let _ = write!(out, "<th style=\"{cell};text-align:left\">{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for row in uploads::rows(nights) {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let align = if i == 0 { "left" } else { "right" };
            let _ = write!(
                out,
                "<td style=\"{cell};text-align:{align}\">{}</td>",
                esc(c)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

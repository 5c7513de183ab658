//! `wpbackup restore --only PATH... --to DIR`: some files of a site back from an archive (see
//! [`crate::restore::only`]), from the buckets alone.
//!
//! This file is the command: it checks the command line (`--to` is required: the files never
//! go over the live site unasked), loads the configuration, opens the storages, takes the run
//! lock when the files go into a site, asks on the terminal (unless `--yes`) before an
//! existing file of DIR is replaced, and prints what was restored. It writes nothing to
//! backups.db (which it only reads, when there is one, for the sha256 it recorded).
//!
//! The lock: writing into a site's directory while a backup reads it, a restore moves it
//! aside or another `--only` writes there would mix the two, so then it takes
//! `<home>/wpbackup.lock` as `restore` does (exit status 75 while another run holds it).
//! Into a directory of no site (`--to /tmp/back`) it changes nothing a backup, restore or
//! prune touches, and goes ahead while one runs: the file a person needs now does not wait
//! for the night's backup to finish.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::restore::{confirm, find_site};
use super::{Context, Outcome, UsageError};
use crate::app::{open_storages, runtime};
use crate::cli::RestoreArgs;
use crate::config::SiteConfig;
use crate::lock::RunLock;
use crate::restore::only::{OnlyRequest, restore_only, site_path};

pub fn run(ctx: &Context, args: &RestoreArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let Some(to) = &args.to else {
        return Err(UsageError(
            "--only needs --to DIR: the files go into a directory you choose (the site's own directory too, to put a deleted file back), never over the live site unasked".into(),
        )
        .into());
    };
    let paths = args
        .only
        .iter()
        .map(|p| site_path(p))
        .collect::<Result<Vec<_>, _>>()?;
    let choice = super::choice(args.archive.as_deref(), args.at.as_deref())?;
    let env = ctx.env()?;
    // Without config.json, --site names a site found in the quick start's archives.
    let config = ctx.config_for(args.path.as_deref(), &env, args.site.is_some())?;
    let site = match &args.site {
        Some(name) if !ctx.has_config() => super::quick_start_site(name, Some(to.as_path()))?,
        _ => find_site(&config, args.site.as_deref())?,
    };
    let storages = open_storages(&config, args.storage.as_deref())?;
    let rt = runtime()?;
    let logdb = ctx.existing_logdb();
    let to = crate::config::normalize(to);
    let request = OnlyRequest {
        site: site.name,
        server_id: config.server_id.clone(),
        choice,
        paths,
        to: std::path::absolute(&to)
            .map_err(|e| UsageError(format!("--to {}: {e}", to.display())))?,
        identity: args.identity.clone(),
        trust: ctx.trust(&config, &args.trust)?,
    };
    let _lock = writes_into_a_site(&request.to, &request.paths, &config.sites)
        .map(|_| RunLock::acquire(&ctx.paths.lock))
        .transpose()?;
    crate::interrupt::install(&rt, "stopping; nothing is moved into the directory")?;
    let confirm = |replaced: &[String]| confirm(replaced, args.yes);
    let result = restore_only(&rt, &storages, logdb.as_ref(), &request, &confirm);
    if let (Err(e), Some(sig)) = (&result, crate::interrupt::received()) {
        let message = format!("{e:#}");
        eprintln!(
            "wpbackup: restore --only {}: {}; nothing was written to {}",
            crate::interrupt::Interrupted(sig),
            crate::output::printable_message(&message),
            request.to.display()
        );
        rt.shutdown_background(); // a read blocked on a local storage must not hold the exit
        return Ok(Outcome::Interrupted(sig));
    }
    let mut report = result?;
    report.duration_secs = started.elapsed().as_secs_f64();
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !ctx.quiet {
        println!("{}", report.summary());
    }
    Ok(Outcome::Ok)
}

/// The site (of those the configuration names: the one restored, and with `--site` every site
/// of config.json) whose directory `to`, or one of the `paths` under it, is in or is. Both
/// sides are compared with their symlinks resolved, so `/srv/link-to-site` is seen too.
fn writes_into_a_site<'a>(
    to: &Path,
    paths: &[PathBuf],
    sites: &'a [SiteConfig],
) -> Option<&'a SiteConfig> {
    let targets: Vec<PathBuf> = std::iter::once(to.to_path_buf())
        .chain(paths.iter().map(|p| to.join(p)))
        .map(|t| resolved(&t))
        .collect();
    sites.iter().find(|site| {
        let dir = resolved(&site.path);
        targets.iter().any(|t| t.starts_with(&dir))
    })
}

/// `path` with its longest existing ancestor's symlinks resolved (the rest may not exist yet).
fn resolved(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = at.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(path: &Path) -> SiteConfig {
        SiteConfig {
            name: "blog".into(),
            path: path.to_path_buf(),
            exclude: Vec::new(),
            database: None,
            enabled: true,
            hooks: Default::default(),
            exclude_tables: Vec::new(),
        }
    }

    #[test]
    fn into_the_site_or_below_it_takes_the_lock_and_aside_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let www = tmp.path().join("www");
        let blog = www.join("blog");
        std::fs::create_dir_all(blog.join("wp-content")).unwrap();
        std::os::unix::fs::symlink(&blog, tmp.path().join("link")).unwrap();
        let sites = [site(&blog)];
        let photo = [PathBuf::from("wp-content/uploads/photo.jpg")];
        let into = |to: &Path| writes_into_a_site(to, &photo, &sites).is_some();
        assert!(into(&blog));
        assert!(into(&blog.join("wp-content")));
        assert!(into(&blog.join("not/there/yet")));
        assert!(into(&tmp.path().join("link")), "through a symlink");
        assert!(into(&tmp.path().join("link/new")), "below a symlink");
        assert!(!into(&tmp.path().join("back")));
        assert!(!into(&www), "beside the site, not in it");
        assert!(!into(&tmp.path().join("blog2")));
        // DIR above the site, with a path that lands inside it.
        let inside = [PathBuf::from("blog/wp-content/x")];
        assert!(writes_into_a_site(&www, &inside, &sites).is_some());
    }
}

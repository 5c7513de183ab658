//! A multisite network moved to another address. A restored database is a network when it
//! has `{prefix}site`/`{prefix}blogs` rows, or its wp-config.php defines `MULTISITE` true
//! ([`Network::new`], read from the archive's dump before anything changes: [`from_dump`]). [`Network::plan`] says where each site goes from the old
//! network address and the new `--url` (plus `--map OLD=NEW` for mapped domains), or refuses
//! when a clone cannot be made right; the plan holds:
//!
//! - the address pairs of each site whose address changes (every form, by
//!   [`super::url_pairs`], so a longer host that merely starts with the old one is never
//!   rewritten), given to the same search-replace as a single site's: `{prefix}sitemeta` and
//!   every `{prefix}N_*` table are tables with the prefix;
//! - the bare `domain` and `path` columns of `{prefix}blogs` and `{prefix}site`, which no
//!   `scheme://` pair reaches ([`apply_columns`]);
//! - `DOMAIN_CURRENT_SITE` and `PATH_CURRENT_SITE` for the clone's wp-config.php.
//!
//! A subdirectory network's sites keep their paths under the new one; a subdomain network's
//! `sub.old.example` becomes `sub.new.example`; a mapped domain (neither the network's host
//! nor a subdomain of it) stays unless `--map` moves it. Uploads of `wp-content/uploads/sites/N`
//! are named by the site's number, not its address: nothing there is renamed.

use std::collections::BTreeMap;
use std::io::BufRead;

use anyhow::Context as _;

use crate::config::DatabaseConfig;
use crate::dbtools::client::{ident, sql, sql_str};
use crate::error::UsageError;

/// What wp-config.php declares of a network (read by `site/wpconfig.rs`, handed over).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    pub multisite: bool,
    pub subdomain_install: Option<bool>,
    pub domain: Option<String>,
    pub path: Option<String>,
}

/// A row of `{prefix}blogs` (a site) or `{prefix}site` (a network): its id, domain and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub id: u64,
    pub domain: String,
    pub path: String,
}

/// A multisite network as its database and wp-config.php describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Sites are `sub.domain` (else `domain/sub/`).
    pub subdomain: bool,
    /// The network's host (with a port when it has one) and path (`/`, or `/a/b/`).
    pub domain: String,
    pub path: String,
    /// The rows of `{prefix}site`.
    pub networks: Vec<Place>,
    /// The rows of `{prefix}blogs`, the network's sites.
    pub sites: Vec<Place>,
}

/// Where a network goes: see the module's documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Address pairs for the search-replace, every form of each moved site's address.
    pub pairs: Vec<(String, String)>,
    /// `{prefix}blogs` rows with their new domain and path.
    pub sites: Vec<(Place, Place)>,
    /// `{prefix}site` rows with their new domain and path.
    pub networks: Vec<(Place, Place)>,
    /// The network's new `DOMAIN_CURRENT_SITE` and `PATH_CURRENT_SITE`.
    pub domain: String,
    pub path: String,
}

/// `/`, or `/a/b/`: a path with one slash at each end.
fn slashed(path: &str) -> String {
    let inner = path.trim_matches('/');
    if inner.is_empty() {
        "/".into()
    } else {
        format!("/{inner}/")
    }
}

/// `host` is `sub` of `domain` when it is `sub.domain` (ASCII case aside).
fn sub_of<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let (h, d) = (host.to_ascii_lowercase(), domain.to_ascii_lowercase());
    let cut = h.strip_suffix(&d)?.strip_suffix('.')?.len();
    (cut > 0).then(|| &host[..cut])
}

fn same_host(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A host[:port] WordPress can hold in a domain column: letters, digits, `-`, `.`, one `:port`.
fn valid_host(h: &str) -> bool {
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with(['.', '-'])
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The host has no subdomains anyone can reach: an IP address or `localhost`.
fn has_no_subdomains(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok()
        || !name.contains('.')
}

fn refuse(why: String) -> anyhow::Error {
    UsageError(format!("{why}; nothing was changed")).into()
}

impl Network {
    /// The network the rows and declarations describe; `None` for a single site.
    pub fn new(networks: Vec<Place>, sites: Vec<Place>, declared: &Declared) -> Option<Network> {
        if networks.is_empty() && sites.is_empty() && !declared.multisite {
            return None;
        }
        let main = networks.first().or(sites.first());
        let domain = declared
            .domain
            .clone()
            .or_else(|| main.map(|m| m.domain.clone()))
            .unwrap_or_default();
        let path = slashed(
            declared
                .path
                .as_deref()
                .or(main.map(|m| m.path.as_str()))
                .unwrap_or("/"),
        );
        let subdomain = declared
            .subdomain_install
            .unwrap_or_else(|| sites.iter().any(|s| sub_of(&s.domain, &domain).is_some()));
        Some(Network {
            subdomain,
            domain,
            path,
            networks,
            sites,
        })
    }

    /// Where each site goes when the network moves to `url` (`scheme://host[:port][/path]`),
    /// mapped domains moved as `maps` (OLD, NEW) say; refused (exit 2) where a clone cannot be
    /// made right.
    pub fn plan(&self, url: &str, maps: &[(String, String)]) -> anyhow::Result<Plan> {
        let (scheme, rest) = url
            .split_once("://")
            .with_context(|| format!("--url {url}: not an address (scheme://host/path)"))?;
        let (host, new_path) = match rest.find('/') {
            Some(i) => (&rest[..i], slashed(&rest[i..])),
            None => (rest, "/".to_string()),
        };
        if self.domain.is_empty() {
            return Err(refuse(
                "this is a multisite network (wp-config.php defines MULTISITE), but neither its wp_site table nor DOMAIN_CURRENT_SITE says at which address: a clone to another address cannot be made right".into(),
            ));
        }
        if self.subdomain && new_path != "/" {
            return Err(refuse(format!(
                "--url {url}: {} is a subdomain network (its sites are SITE.{}), which lives at the root of a domain: clone it to an address without a path",
                self.domain, self.domain
            )));
        }
        if self.subdomain && has_no_subdomains(host) {
            return Err(refuse(format!(
                "--url {url}: {} is a subdomain network, and {host} has no subdomains for its sites (an IP address, localhost or a name without a dot): clone it to a domain name",
                self.domain
            )));
        }
        let mut mapped: BTreeMap<String, String> = BTreeMap::new();
        for (old, new) in maps {
            if !self.sites.iter().any(|s| same_host(&s.domain, old)) {
                let mut domains: Vec<&str> = self.sites.iter().map(|s| s.domain.as_str()).collect();
                domains.sort();
                domains.dedup();
                return Err(refuse(format!(
                    "--map {old}={new}: {old} is not a domain of this network (its sites are at {})",
                    domains.join(", ")
                )));
            }
            if !valid_host(new) {
                return Err(refuse(format!(
                    "--map {old}={new}: {new} is not a host name (letters, digits, '-' and '.', maybe a :port)"
                )));
            }
            mapped.insert(old.to_ascii_lowercase(), new.clone());
        }
        let moved = |p: &Place| -> anyhow::Result<Place> {
            let under = |path: &str| -> anyhow::Result<String> {
                let path = slashed(path);
                match path.strip_prefix(&self.path) {
                    Some(rest) => Ok(slashed(&format!("{new_path}{rest}"))),
                    None => Err(refuse(format!(
                        "the site at {}{path} is not under the network's path {}: where it goes cannot be told",
                        p.domain, self.path
                    ))),
                }
            };
            let (domain, path) = if let Some(to) = mapped.get(&p.domain.to_ascii_lowercase()) {
                (to.clone(), p.path.clone())
            } else if same_host(&p.domain, &self.domain) {
                (host.to_string(), under(&p.path)?)
            } else if let Some(sub) = sub_of(&p.domain, &self.domain).filter(|_| self.subdomain) {
                (format!("{sub}.{host}"), under(&p.path)?)
            } else {
                (p.domain.clone(), p.path.clone())
            };
            Ok(Place {
                id: p.id,
                domain,
                path,
            })
        };
        let mut plan = Plan {
            domain: host.to_string(),
            path: new_path.clone(),
            ..Plan::default()
        };
        for s in &self.sites {
            plan.sites.push((s.clone(), moved(s)?));
        }
        for n in &self.networks {
            plan.networks.push((n.clone(), moved(n)?));
        }
        // Two sites at one address: WordPress would serve one of them.
        let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (old, new) in &plan.sites {
            let at = (new.domain.to_ascii_lowercase(), new.path.clone());
            if let Some(other) = seen.insert(at, old.id) {
                return Err(refuse(format!(
                    "sites {other} and {} would both be at {}{}: change --url or --map",
                    old.id, new.domain, new.path
                )));
            }
        }
        for (old, new) in plan.sites.iter().chain(&plan.networks) {
            if old.domain == new.domain && slashed(&old.path) == new.path {
                continue;
            }
            let from = format!("//{}{}", old.domain, slashed(&old.path));
            let to = format!("{scheme}://{}{}", new.domain, new.path);
            for pair in super::url_pairs(&[from], &to) {
                if !plan.pairs.contains(&pair) {
                    plan.pairs.push(pair);
                }
            }
        }
        Ok(plan)
    }
}

/// A place from a row read as (column, value) pairs.
fn place(row: &super::dump_count::Row, id: &str) -> Option<Place> {
    let get = |c: &str| {
        row.iter()
            .find(|(n, _)| n == c)
            .and_then(|(_, v)| v.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    Some(Place {
        id: get(id)?.parse().ok()?,
        domain: get("domain")?,
        path: get("path")?,
    })
}

/// The network in a dump (`{prefix}site` and `{prefix}blogs` rows) and wp-config.php's
/// declarations; `None` for a single site. `dump` is called for each table to read.
pub fn from_dump<R: BufRead>(
    mut dump: impl FnMut() -> anyhow::Result<R>,
    prefix: &str,
    declared: &Declared,
) -> anyhow::Result<Option<Network>> {
    let read = |rows: Vec<super::dump_count::Row>, id: &str| -> Vec<Place> {
        rows.iter().filter_map(|r| place(r, id)).collect()
    };
    let networks = read(
        super::dump_count::rows(dump()?, &format!("{prefix}site"))?,
        "id",
    );
    let sites = read(
        super::dump_count::rows(dump()?, &format!("{prefix}blogs"))?,
        "blog_id",
    );
    Ok(Network::new(networks, sites, declared))
}

/// The bare `domain` and `path` columns of `{prefix}blogs` and `{prefix}site` set as `plan`
/// says, in one transaction.
pub fn apply_columns(
    creds: &DatabaseConfig,
    name: &str,
    prefix: &str,
    plan: &Plan,
) -> anyhow::Result<u64> {
    let mut statements = String::from("START TRANSACTION;\n");
    let mut n = 0;
    for (rows, table, id) in [
        (&plan.sites, "blogs", "blog_id"),
        (&plan.networks, "site", "id"),
    ] {
        for (old, new) in rows {
            if old.domain == new.domain && old.path == new.path {
                continue;
            }
            statements.push_str(&format!(
                "UPDATE {} SET domain = {}, path = {} WHERE {} = {};\n",
                ident(&format!("{prefix}{table}")),
                sql_str(&new.domain),
                sql_str(&new.path),
                ident(id),
                old.id
            ));
            n += 1;
        }
    }
    if n == 0 {
        return Ok(0);
    }
    statements.push_str("COMMIT;\n");
    sql(creds, Some(name), &statements).with_context(|| {
        format!("cannot move the network's sites in {prefix}blogs and {prefix}site")
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u64, domain: &str, path: &str) -> Place {
        Place {
            id,
            domain: domain.into(),
            path: path.into(),
        }
    }

    fn moved(plan: &Plan) -> Vec<(u64, String)> {
        plan.sites
            .iter()
            .map(|(o, n)| (o.id, format!("{}{}", n.domain, n.path)))
            .collect()
    }

    fn apply(plan: &Plan, s: &str) -> String {
        let bytes: Vec<(&[u8], &[u8])> = plan
            .pairs
            .iter()
            .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
            .collect();
        String::from_utf8(crate::serialized::plain_replace(s.as_bytes(), &bytes)).unwrap()
    }

    #[test]
    fn a_subdirectory_network_keeps_its_paths_under_the_new_address() {
        let net = Network::new(
            vec![p(1, "old.example", "/")],
            vec![
                p(1, "old.example", "/"),
                p(2, "old.example", "/second/"),
                p(3, "shop.example", "/"),
            ],
            &Declared {
                multisite: true,
                subdomain_install: Some(false),
                domain: Some("old.example".into()),
                path: Some("/".into()),
            },
        )
        .unwrap();
        assert!(!net.subdomain);
        let plan = net.plan("https://new.example/stg", &[]).unwrap();
        assert_eq!(
            moved(&plan),
            [
                (1, "new.example/stg/".into()),
                (2, "new.example/stg/second/".into()),
                // A mapped domain stays...
                (3, "shop.example/".into()),
            ]
        );
        assert_eq!(
            (plan.domain.as_str(), plan.path.as_str()),
            ("new.example", "/stg/")
        );
        assert_eq!(plan.networks[0].1, p(1, "new.example", "/stg/"));
        for (old, new) in [
            (
                "http://old.example/second/?p=4",
                "https://new.example/stg/second/?p=4",
            ),
            ("//old.example/", "//new.example/stg/"),
            ("http://shop.example/", "http://shop.example/"),
            (
                "http://old.example.com.evil/second/",
                "http://old.example.com.evil/second/",
            ),
        ] {
            assert_eq!(apply(&plan, old), new, "{old}");
        }
        // ...unless --map moves it.
        let plan = net
            .plan(
                "https://new.example",
                &[("shop.example".into(), "shop.test".into())],
            )
            .unwrap();
        assert_eq!(moved(&plan)[2], (3, "shop.test/".into()));
        assert_eq!(apply(&plan, "http://shop.example/a"), "https://shop.test/a");
    }

    #[test]
    fn a_subdomain_network_moves_each_subdomain() {
        let net = Network::new(
            vec![p(1, "old.example:8080", "/")],
            vec![
                p(1, "old.example:8080", "/"),
                p(2, "blog.old.example:8080", "/"),
                p(3, "other.example", "/"),
            ],
            &Declared::default(),
        )
        .unwrap();
        assert!(net.subdomain, "inferred from its sites");
        let plan = net.plan("http://new.test:9090", &[]).unwrap();
        assert_eq!(
            moved(&plan),
            [
                (1, "new.test:9090/".into()),
                (2, "blog.new.test:9090/".into()),
                (3, "other.example/".into()),
            ]
        );
        assert_eq!(
            apply(&plan, "<a href=\"http://blog.old.example:8080/x\">"),
            "<a href=\"http://blog.new.test:9090/x\">"
        );
        assert_eq!(
            apply(&plan, "http://blog.old.example:80800/"),
            "http://blog.old.example:80800/"
        );
    }

    #[test]
    fn clones_that_cannot_be_made_right_are_refused() {
        let net = Network::new(
            vec![p(1, "old.example", "/")],
            vec![p(1, "old.example", "/"), p(2, "a.old.example", "/")],
            &Declared {
                subdomain_install: Some(true),
                ..Declared::default()
            },
        )
        .unwrap();
        let refused = |url: &str, maps: &[(String, String)]| {
            let e = net.plan(url, maps).unwrap_err();
            assert!(e.downcast_ref::<UsageError>().is_some(), "{e}");
            e.to_string()
        };
        assert!(refused("https://new.example/sub", &[]).contains("without a path"));
        assert!(refused("http://127.0.0.1:8080", &[]).contains("no subdomains"));
        assert!(refused("http://localhost", &[]).contains("no subdomains"));
        let e = refused(
            "https://new.example",
            &[("shop.example".into(), "x.test".into())],
        );
        assert!(
            e.contains("not a domain of this network") && e.contains("a.old.example"),
            "{e}"
        );
        assert!(
            refused(
                "https://new.example",
                &[("a.old.example".into(), "x/y".into())]
            )
            .contains("not a host name")
        );
        // Two sites at one address.
        let e = refused(
            "https://new.example",
            &[("a.old.example".into(), "new.example".into())],
        );
        assert!(e.contains("would both be at"), "{e}");
        assert!(net.plan("https://new.example", &[]).is_ok());
        assert_eq!(Network::new(vec![], vec![], &Declared::default()), None);
    }
}

//! The contract cannot drift: every key the config.json loader accepts (traced from the serde
//! structs themselves, so a new field is seen the day it is added) must appear in the first
//! column of the config.json table of `docs/formats.md`, and every key documented there must
//! be one the loader accepts.

use std::collections::BTreeSet;

use serde_reflection::{ContainerFormat, Format, Registry, Tracer, TracerConfig};

const FORMATS_MD: &str = include_str!("../../docs/formats.md");

/// Every JSON path the loader accepts: `storage[].bucket`, `retention.keep_daily`, ...
fn accepted_keys() -> BTreeSet<String> {
    let mut tracer = Tracer::new(TracerConfig::default());
    let (root, _) = tracer
        .trace_simple_type::<super::RawConfig>()
        .unwrap_or_else(|e| panic!("cannot trace the config structs: {e}"));
    let registry = tracer
        .registry()
        .unwrap_or_else(|e| panic!("incomplete trace of the config structs: {e}"));
    let mut keys = BTreeSet::new();
    walk(&registry, "", &root, &mut keys);
    keys
}

fn walk(registry: &Registry, prefix: &str, format: &Format, keys: &mut BTreeSet<String>) {
    match format {
        Format::Option(inner) => walk(registry, prefix, inner, keys),
        Format::Seq(inner) => walk(registry, &format!("{prefix}[]"), inner, keys),
        Format::TypeName(name) => {
            if let Some(ContainerFormat::Struct(fields)) = registry.get(name) {
                for field in fields {
                    let path = if prefix.is_empty() {
                        field.name.clone()
                    } else {
                        format!("{prefix}.{}", field.name)
                    };
                    keys.insert(path.clone());
                    walk(registry, &path, &field.value, keys);
                }
            }
        }
        _ => {}
    }
}

/// The first column of the table after the `config-keys` marker.
fn documented_keys() -> BTreeSet<String> {
    let table = FORMATS_MD
        .split("<!-- config-keys")
        .nth(1)
        .unwrap_or_else(|| panic!("docs/formats.md lost its config-keys marker"));
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .filter_map(|cell| {
            let cell = cell.trim();
            (cell.starts_with('`') && cell.ends_with('`')).then(|| cell.trim_matches('`').into())
        })
        .collect()
}

#[test]
fn every_accepted_key_is_documented_and_every_documented_key_is_accepted() {
    let accepted = accepted_keys();
    let documented = documented_keys();
    assert!(accepted.contains("storage[].bucket"), "{accepted:?}");
    let missing: Vec<_> = accepted.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "config keys the loader accepts but docs/formats.md does not document: {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        stale.is_empty(),
        "config keys docs/formats.md documents but the loader rejects: {stale:?}"
    );
}

//! Property tests of the config loader: arbitrary and half-valid config.json never panics,
//! and every error names a JSON path.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::Value;

use super::{Config, Env};

/// A bounded number of cases (the suite stays quick), shrinking bounded too; shared by every
/// property test of the crate.
pub(crate) fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        // Shrinking a failure is worth it, but not forever.
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// config.json

const CONFIG_KEYS: &[&str] = &[
    "server_id",
    "sites",
    "storage",
    "name",
    "path",
    "exclude",
    "database",
    "user",
    "password",
    "password_env",
    "host",
    "table_prefix",
    "enabled",
    "type",
    "priority",
    "endpoint",
    "region",
    "bucket",
    "prefix",
    "path_style",
    "access_key_env",
    "secret_key_env",
    "compression",
    "level",
    "threads",
    "upload",
    "part_size_mib",
    "parts_in_flight",
    "connect_timeout_secs",
    "timeout_secs",
    "max_attempts",
    "stall_timeout_secs",
    "retention",
    "keep_last",
    "keep_daily",
    "encryption",
    "recipients",
    "healthchecks",
    "url",
    "start",
    "success",
    "fail",
];

const CONFIG_STRINGS: &[&str] = &[
    "",
    "s3",
    "local",
    "/abs/path",
    "rel/path",
    "a/b",
    "..",
    "K",
    "S",
    "NOPE",
    "localhost",
    "127.0.0.1:3306",
    "[::1]:3306",
    "localhost:/run/x.sock",
    "http://127.0.0.1:9000/",
    "https://hc-ping.com/x",
    "ftp://x",
    "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
    "AGE-SECRET-KEY-1",
    "*.log",
    "a[",
    "\u{0}",
    "日本語",
];

pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-5i64..40).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(CONFIG_STRINGS).prop_map(|s| Value::String(s.to_string())),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        4 => proptest::sample::select(CONFIG_KEYS).prop_map(str::to_string),
                        1 => "[a-z_]{1,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn env() -> Env {
    Env::from_map(HashMap::from([
        ("K".to_string(), "key".to_string()),
        ("S".to_string(), "secret".to_string()),
        ("SERVER_ID".to_string(), "host".to_string()),
    ]))
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn config_loader_never_panics_and_errors_name_a_path(v in json_value()) {
        let text = serde_json::to_string(&v).unwrap();
        if let Err(e) = Config::parse(&text, "config.json", &env()) {
            prop_assert!(!e.path.is_empty(), "{e}");
            prop_assert!(e.to_string().starts_with("config.json: "), "{e}");
        }
    }

    #[test]
    fn config_loader_never_panics_on_any_text(text in "\\PC{0,200}") {
        let _ = Config::parse(&text, "config.json", &env());
    }
}

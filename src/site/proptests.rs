//! Property tests of the wp-config.php reader: PHP soup and arbitrary text never panic.

use proptest::prelude::*;

use crate::config::proptests::cases;

// ---------------------------------------------------------------------------------------------
// wp-config.php

const PHP_TOKENS: &[&str] = &[
    "<?php",
    "?>",
    "define(",
    "define (",
    "'DB_NAME'",
    "'DB_USER'",
    "'DB_PASSWORD'",
    "\"DB_HOST\"",
    "DB_NAME",
    "const ",
    "$table_prefix",
    "=",
    ",",
    ")",
    "(",
    ";",
    "'",
    "\"",
    "'x'",
    "\"y\"",
    "'a\\'b'",
    "\\",
    "/*",
    "*/",
    "//",
    "#",
    "\n",
    " ",
    ".",
    "getenv('X')",
    "<<<EOT\n",
    "EOT;",
    "'localhost:3307'",
    "'[::1]'",
    "true",
    "0",
];

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn wp_config_reader_never_panics_on_php_soup(
        parts in proptest::collection::vec(proptest::sample::select(PHP_TOKENS), 0..60)
    ) {
        let src: String = parts.concat();
        let _ = crate::site::wpconfig::parse(&src);
    }

    #[test]
    fn wp_config_reader_never_panics_on_any_text(src in "\\PC{0,300}") {
        let _ = crate::site::wpconfig::parse(&src);
    }
}

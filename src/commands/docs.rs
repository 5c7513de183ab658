//! The docs cannot drift from the command line (nor from deploy.sh's timers). Checked on
//! clap's own description of it ([`Cli`] through `CommandFactory`) and on README.md and
//! docs/formats.md as they are:
//!
//! - README's "Commands" synopsis has an entry for every subcommand `--help` shows, and each
//!   entry names every flag (long or short) and positional of that subcommand and no flag it
//!   does not have; its first line names the global flags. `--help` and `--version` are named.
//! - Every `wpbackup` command line of a shell block (```` ```sh ````) in README or formats.md
//!   parses with clap. An inline `` `wpbackup ...` `` in the prose names a command rather than
//!   always a whole line (`` `wpbackup ls` ``): it must parse except for a missing required
//!   argument, so its subcommand and flags exist and their values are accepted.
//! - README's deploy.sh paragraph names every timer deploy.sh enables.
//! - The exit statuses [`Outcome`] gives are exactly those of `--help`'s "Exit status:"
//!   paragraph, README's first "Exit status:" paragraph and formats.md's table; README's
//!   other "Exit status:" paragraphs (one command's) use only those.
//!
//! A command line is read as a shell reads it, as far as the docs need: `\` + newline
//! continues the line; `#` at the start of a word comments out the rest; `'...'`, `"..."` and
//! `\x` quote; `|`, `||`, `&&`, `;` and `&` end a command, whose own words are checked when
//! its first word (after `VAR=value` assignments) is `wpbackup`; a redirection (`>`, `>>`,
//! `<`, `2>&1`) and its target are left out. Two documentation conventions come first:
//! `<name>` is a placeholder (never a redirection), replaced by `name` itself, and
//! `<command>` alone by every subcommand in turn; a word `...` or `…` ("and so on") is
//! left out. With these rules every command line the docs show parses: there is no list of
//! exceptions.

use std::collections::BTreeSet;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use super::Outcome;
use crate::cli::Cli;

const README: &str = include_str!("../../README.md");
const FORMATS: &str = include_str!("../../docs/formats.md");

// ---------------------------------------------------------------------------------------------
// Markdown: fenced blocks and inline code spans.

/// A fenced block: its language (the word after the fence) and body, and its first line.
struct Block<'a> {
    lang: &'a str,
    line: usize,
    body: String,
}

fn fenced_blocks(md: &str) -> Vec<Block<'_>> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in md.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (fence, open.take()) {
            (Some(_), Some(block)) => blocks.push(block),
            (Some(lang), None) => {
                open = Some(Block {
                    lang: lang.trim(),
                    line: i + 2,
                    body: String::new(),
                })
            }
            (None, Some(mut block)) => {
                block.body.push_str(line);
                block.body.push('\n');
                open = Some(block);
            }
            (None, None) => {}
        }
    }
    blocks
}

/// The inline code spans outside fenced blocks, whitespace collapsed (a span may wrap), each
/// with the line it starts on.
fn inline_spans(md: &str) -> Vec<(usize, String)> {
    let mut prose = String::new();
    let mut in_block = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            prose.push('\n');
        } else if in_block {
            prose.push('\n');
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let mut spans = Vec::new();
    let mut rest = prose.as_str();
    let mut line = 1;
    while let Some(start) = rest.find('`') {
        line += rest[..start].matches('\n').count();
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + ticks..];
        let fence = "`".repeat(ticks);
        let Some(end) = after.find(&fence) else { break };
        let text = &after[..end];
        spans.push((line, text.split_whitespace().collect::<Vec<_>>().join(" ")));
        line += text.matches('\n').count();
        rest = &after[end + ticks..];
    }
    spans
}

// ---------------------------------------------------------------------------------------------
// Shell: the simple commands of a script.

/// `<name>` placeholders become `⟨name⟩`, so the reader does not take them for redirections.
fn mark_placeholders(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut rest = script;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name_len = after
            .char_indices()
            .take_while(|(i, c)| c.is_ascii_alphanumeric() || (*i > 0 && (*c == '_' || *c == '-')))
            .count();
        let name = &after[..name_len];
        if after[name_len..].starts_with('>') && name.starts_with(|c: char| c.is_ascii_alphabetic())
        {
            out.push('⟨');
            out.push_str(name);
            out.push('⟩');
            rest = &after[name_len + 1..];
        } else {
            out.push('<');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The words of the simple command being read.
#[derive(Default)]
struct Reader {
    commands: Vec<Vec<String>>,
    words: Vec<String>,
    word: String,
    /// A word is open (it may be empty: `''`).
    open: bool,
    /// The open word is a redirection's target, left out.
    target: bool,
}

impl Reader {
    fn push(&mut self, c: char) {
        self.open = true;
        self.word.push(c);
    }

    fn end_word(&mut self) {
        if self.open && !self.target {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.word.clear();
        self.open = false;
        self.target = false;
    }

    fn end_command(&mut self) {
        self.end_word();
        if !self.words.is_empty() {
            self.commands.push(std::mem::take(&mut self.words));
        }
    }
}

/// The simple commands of `script`, each as its words (quotes removed).
fn simple_commands(script: &str) -> Vec<Vec<String>> {
    let script = mark_placeholders(&script.replace("\\\n", " "));
    let mut r = Reader::default();
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' if !r.open => while chars.next_if(|c| *c != '\n').is_some() {},
            '\'' => {
                r.open = true;
                for q in chars.by_ref().take_while(|q| *q != '\'') {
                    r.push(q);
                }
            }
            '"' => {
                r.open = true;
                while let Some(q) = chars.next().filter(|q| *q != '"') {
                    match q {
                        '\\' if chars.peek().is_some_and(|n| "$`\"\\".contains(*n)) => {
                            r.word.extend(chars.next());
                        }
                        _ => r.push(q),
                    }
                }
            }
            '\\' => {
                r.open = true;
                r.word.extend(chars.next());
            }
            '>' | '<' => {
                if r.open && !r.target && r.word.chars().all(|d| d.is_ascii_digit()) {
                    r.word.clear(); // `2>`: the descriptor belongs to the redirection
                    r.open = false;
                }
                r.end_word();
                chars.next_if(|n| *n == '>' || *n == '&');
                r.target = true;
            }
            '|' | '&' | ';' | '\n' => r.end_command(),
            c if c.is_whitespace() => {
                if r.open {
                    r.end_word();
                }
            }
            c => r.push(c),
        }
    }
    r.end_command();
    r.commands
}

/// The `wpbackup` invocations among `script`'s commands, placeholders filled in: each is the
/// words from `wpbackup` on.
fn wpbackup_lines(script: &str, subcommands: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for words in simple_commands(script) {
        let first = words.iter().position(|w| !is_assignment(w));
        let Some(first) = first.filter(|&i| words[i] == "wpbackup") else {
            continue;
        };
        let words: Vec<String> = words[first..]
            .iter()
            .filter(|w| *w != "..." && *w != "…")
            .cloned()
            .collect();
        let mut variants = vec![Vec::new()];
        for w in &words {
            if w == "⟨command⟩" {
                variants = variants
                    .iter()
                    .flat_map(|v: &Vec<String>| {
                        subcommands.iter().map(move |s| {
                            let mut v = v.clone();
                            v.push(s.clone());
                            v
                        })
                    })
                    .collect();
            } else {
                let filled = w.replace(['⟨', '⟩'], "");
                for v in &mut variants {
                    v.push(filled.clone());
                }
            }
        }
        out.extend(variants);
    }
    out
}

/// `VAR=value`, a shell assignment before a command.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// What clap says of a command line: `Ok` when it runs (`--help` and `--version` included).
fn parse(words: &[String]) -> Result<(), clap::Error> {
    match Cli::try_parse_from(words) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => Ok(()),
        Err(e) => Err(e),
    }
}

/// clap's message, first line only (`error: unexpected argument '--x' found`).
fn first_line(e: &clap::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// The names of the subcommands `--help` shows.
fn visible_subcommands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect()
}

#[test]
fn the_shell_reader_reads_what_the_docs_write() {
    let subs = ["list".to_string(), "status".to_string()];
    let lines = |script: &str| -> Vec<String> {
        wpbackup_lines(script, &subs)
            .iter()
            .map(|w| w.join(" | "))
            .collect()
    };
    assert_eq!(
        lines("wpbackup list --site a   # newest first, # not a flag\n"),
        ["wpbackup | list | --site | a"]
    );
    assert_eq!(
        lines("wpbackup restore --site a \\\n    --to /tmp/b  # aside\n"),
        ["wpbackup | restore | --site | a | --to | /tmp/b"]
    );
    assert_eq!(
        lines("WPBACKUP_HOME=/h wpbackup --json list | jq . > out.json 2>&1 && wpbackup status"),
        ["wpbackup | --json | list", "wpbackup | status"]
    );
    assert_eq!(
        lines(r#"wpbackup restore --at "2026-11-20 03:00" --archive 'a b'"#),
        ["wpbackup | restore | --at | 2026-11-20 03:00 | --archive | a b"]
    );
    assert_eq!(
        lines("wpbackup ls --site <SITE> --at <time> ... <dir>/x"),
        ["wpbackup | ls | --site | SITE | --at | time | dir/x"]
    );
    assert_eq!(
        lines("wpbackup <command> --help"),
        ["wpbackup | list | --help", "wpbackup | status | --help"]
    );
    assert_eq!(
        lines("mariadb wp < database.sql\ncargo install --path . # wpbackup list\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        inline_spans("a `wpbackup\nstorage-paths` and ``x ` y``\n```sh\n`no`\n```\n`z`"),
        [
            (1, "wpbackup storage-paths".to_string()),
            (2, "x ` y".to_string()),
            (6, "z".to_string())
        ]
    );
}

#[test]
fn every_wpbackup_command_line_in_the_docs_parses() {
    let subcommands = visible_subcommands();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (file, md) in [("README.md", README), ("docs/formats.md", FORMATS)] {
        for block in fenced_blocks(md) {
            if !matches!(block.lang, "sh" | "bash" | "shell") {
                continue; // output, JSON, the synopsis: not command lines
            }
            for words in wpbackup_lines(&block.body, &subcommands) {
                checked += 1;
                if let Err(e) = parse(&words) {
                    wrong.push(format!(
                        "{file}, block at line {}: `{}`: {}",
                        block.line,
                        words.join(" "),
                        first_line(&e)
                    ));
                }
            }
        }
        for (line, span) in inline_spans(md) {
            if !span.starts_with("wpbackup ") {
                continue;
            }
            for words in wpbackup_lines(&span, &subcommands) {
                checked += 1;
                match parse(&words) {
                    Err(e) if e.kind() != ErrorKind::MissingRequiredArgument => wrong.push(
                        format!("{file}:{line}: `{}`: {}", words.join(" "), first_line(&e)),
                    ),
                    _ => {}
                }
            }
        }
    }
    assert!(
        checked > 30,
        "only {checked} command lines found: is the reader broken?"
    );
    assert!(
        wrong.is_empty(),
        "command lines in the docs that wpbackup does not accept:\n{}",
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// README's "Commands" synopsis against `--help`.

/// README's synopsis: its first line (the global flags) and one entry per subcommand line
/// with its continuation lines.
fn synopsis() -> (String, Vec<(String, String)>) {
    let section = README
        .split("\n## Commands\n")
        .nth(1)
        .unwrap_or_else(|| panic!("README.md lost its \"## Commands\" section"));
    let block = fenced_blocks(section)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("README.md's Commands section lost its synopsis block"));
    let mut lines = block.body.lines();
    let first = lines.next().unwrap_or_default().to_string();
    assert!(first.starts_with("wpbackup "), "{first}");
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        match entries.last_mut() {
            Some((_, text)) if indent > 2 => {
                text.push(' ');
                text.push_str(line.trim());
            }
            _ => {
                let name = line.split_whitespace().next().unwrap_or_default();
                entries.push((name.to_string(), line.trim().to_string()));
            }
        }
    }
    (first, entries)
}

/// The words of a synopsis line: `--site`, `-v`, `NAME`, `PATH`...
fn tokens(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether `text` names `arg`: `--long` or `-s` for a flag, its value name standing alone
/// (not after a flag) for a positional.
fn names(text: &str, arg: &clap::Arg) -> bool {
    let words = tokens(text);
    if arg.is_positional() {
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map_or_else(|| arg.get_id().as_str().to_uppercase(), |v| v.to_string());
        return words
            .iter()
            .enumerate()
            .any(|(i, w)| *w == value && (i == 0 || !words[i - 1].starts_with('-')));
    }
    let long = arg.get_long().map(|l| format!("--{l}"));
    let short = arg.get_short().map(|s| format!("-{s}"));
    words
        .iter()
        .any(|w| Some(w.to_string()) == long || Some(w.to_string()) == short)
}

/// The flags a synopsis line names: `--x` and `-x` words.
fn flags_in(text: &str) -> BTreeSet<&str> {
    tokens(text)
        .into_iter()
        .filter(|t| t.starts_with('-') && !t.trim_start_matches('-').is_empty())
        .collect()
}

fn flag_names(args: &[&clap::Arg]) -> BTreeSet<String> {
    args.iter()
        .flat_map(|a| {
            let long = a.get_long().map(|l| format!("--{l}"));
            let short = a.get_short().map(|s| format!("-{s}"));
            long.into_iter().chain(short)
        })
        .collect()
}

#[test]
fn the_readme_synopsis_names_every_command_and_flag_of_help_and_no_other() {
    let cli = Cli::command();
    let (first, entries) = synopsis();
    let mut wrong = Vec::new();

    let globals: Vec<&clap::Arg> = cli.get_arguments().filter(|a| !a.is_hide_set()).collect();
    for arg in &globals {
        if !names(&first, arg) {
            wrong.push(format!("the first line lacks the global {}", arg.get_id()));
        }
    }
    let global_flags = flag_names(&globals);
    for flag in flags_in(&first) {
        if !global_flags.contains(flag) {
            wrong.push(format!(
                "the first line names {flag}, which is no global flag"
            ));
        }
    }

    let visible: Vec<&clap::Command> = cli.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    for (name, _) in &entries {
        if !visible.iter().any(|s| s.get_name() == name) {
            wrong.push(format!(
                "an entry for `{name}`, which is no subcommand of --help"
            ));
        }
    }
    for sub in &visible {
        let text: Vec<&str> = entries
            .iter()
            .filter(|(n, _)| n == sub.get_name())
            .map(|(_, t)| t.as_str())
            .collect();
        if text.is_empty() {
            wrong.push(format!("no entry for `{}`", sub.get_name()));
            continue;
        }
        let text = text.join(" ");
        let args: Vec<&clap::Arg> = sub.get_arguments().filter(|a| !a.is_hide_set()).collect();
        for arg in &args {
            if !names(&text, arg) {
                let what = arg
                    .get_long()
                    .map_or_else(|| arg.get_id().to_string(), |l| format!("--{l}"));
                wrong.push(format!("`{}` lacks {what}", sub.get_name()));
            }
        }
        let own = flag_names(&args);
        for flag in flags_in(&text) {
            if !own.contains(flag) && !global_flags.contains(flag) {
                wrong.push(format!(
                    "`{}` names {flag}, which it does not have",
                    sub.get_name()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "README.md's Commands synopsis and `wpbackup --help` differ:\n{}",
        wrong.join("\n")
    );

    // clap's own flags, on every command.
    for flag in ["--help", "--version"] {
        assert!(
            tokens(README).contains(&flag),
            "README.md never names {flag}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Exit statuses.

/// Every outcome a command can end with (the signals are those `interrupt` listens for).
fn every_outcome() -> Vec<Outcome> {
    let all = vec![
        Outcome::Ok,
        Outcome::Failed,
        Outcome::Usage,
        Outcome::Locked,
        Outcome::Interrupted(libc::SIGINT),
        Outcome::Interrupted(libc::SIGTERM),
    ];
    for o in &all {
        // A new variant does not compile here until it is listed above.
        match o {
            Outcome::Ok
            | Outcome::Failed
            | Outcome::Usage
            | Outcome::Locked
            | Outcome::Interrupted(_) => {}
        }
    }
    all
}

/// The numbers in `text`.
fn numbers(text: &str) -> BTreeSet<u32> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The paragraphs of `text` that start with "Exit status:".
fn exit_status_paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| p.starts_with("Exit status:"))
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The first column of the table under formats.md's "## Exit status".
fn formats_exit_table() -> BTreeSet<u32> {
    let section = FORMATS
        .split("\n## Exit status\n")
        .nth(1)
        .unwrap_or_else(|| panic!("docs/formats.md lost its \"## Exit status\" section"));
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .filter_map(|cell| cell.trim().parse().ok())
        .collect()
}

#[test]
fn help_readme_and_formats_list_the_exit_statuses_wpbackup_uses() {
    let used: BTreeSet<u32> = every_outcome()
        .into_iter()
        .map(|o| u32::from(o.code()))
        .collect();
    assert_eq!(used, BTreeSet::from([0, 1, 2, 75, 130, 143]));

    let help = Cli::command().render_long_help().to_string();
    let in_help = exit_status_paragraphs(&help);
    assert_eq!(in_help.len(), 1, "--help's Exit status paragraph: {help}");
    assert_eq!(numbers(&in_help[0]), used, "--help: {}", in_help[0]);

    let in_readme = exit_status_paragraphs(README);
    assert!(
        !in_readme.is_empty(),
        "README.md has no \"Exit status:\" paragraph"
    );
    assert_eq!(numbers(&in_readme[0]), used, "README.md: {}", in_readme[0]);
    for p in &in_readme[1..] {
        assert!(
            numbers(p).is_subset(&used),
            "README.md names an exit status wpbackup does not use: {p}"
        );
    }

    assert_eq!(
        formats_exit_table(),
        used,
        "docs/formats.md's Exit status table"
    );
}

// ---------------------------------------------------------------------------------------------
// What deploy.sh installs.

#[test]
fn the_readme_deploy_paragraph_names_every_timer_deploy_sh_enables() {
    let deploy = include_str!("../../deploy.sh");
    let timers: Vec<&str> = deploy
        .lines()
        .find_map(|l| l.strip_prefix("TIMERS=("))
        .and_then(|l| l.strip_suffix(')'))
        .unwrap_or_else(|| panic!("deploy.sh lost its TIMERS=(...) line"))
        .split_whitespace()
        .collect();
    assert!(timers.len() >= 3, "{timers:?}");
    let paragraph = README
        .split("\n\n")
        .find(|p| p.starts_with("`deploy.sh` builds"))
        .unwrap_or_else(|| panic!("README.md lost its deploy.sh paragraph"));
    let paragraph = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    for timer in timers {
        let unit = timer.trim_end_matches(".timer");
        assert!(
            paragraph.contains(&format!("`{timer}`"))
                || paragraph.contains(&format!("{unit}.service` + `.timer`")),
            "README.md's deploy.sh paragraph does not name {timer}: {paragraph}"
        );
    }
}

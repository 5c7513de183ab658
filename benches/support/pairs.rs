//! Issue 25's paired ratios: each wpbackup way against its floor, run by run. The ways of a
//! pair run next to each other (and in the other order every other run), so a change of load
//! on the shared machine hits both; the ratio of each pair is taken before the median, which
//! keeps a slow minute from deciding the verdict the way a ratio of two medians can.

use std::collections::BTreeMap;

use crate::{BEFORE_LOCAL, FLOOR_DIR, LOCAL, Sample};

/// One pair: what is compared, the way, its floor, the figure and issue 25's bound.
struct Pair {
    what: &'static str,
    way: &'static str,
    floor: &'static str,
    cpu: bool,
    bound: f64,
}

const PAIRS: &[Pair] = &[
    Pair {
        what: "backup to a directory / the directory floor, wall",
        way: LOCAL,
        floor: FLOOR_DIR,
        cpu: false,
        bound: 1.0,
    },
    Pair {
        what: "backup to a directory / the directory floor, CPU",
        way: LOCAL,
        floor: FLOOR_DIR,
        cpu: true,
        bound: f64::NAN,
    },
    Pair {
        what: "backup to a directory before the change / the directory floor, wall",
        way: BEFORE_LOCAL,
        floor: FLOOR_DIR,
        cpu: false,
        bound: 1.0,
    },
    Pair {
        what: "backup to a directory before the change / the directory floor, CPU",
        way: BEFORE_LOCAL,
        floor: FLOOR_DIR,
        cpu: true,
        bound: f64::NAN,
    },
    Pair {
        what: "backup to S3 / the /dev/null floor, CPU (the S3 server's not counted)",
        way: "wpbackup backup",
        floor: "floor: dump & tar | zstd -T0 -3, to /dev/null",
        cpu: true,
        bound: 1.1,
    },
];

/// The markdown table of the pairs whose two ways ran ("" when none did).
pub fn table(names: &[&str], results: &BTreeMap<usize, Vec<Sample>>) -> String {
    let idx = |name: &str| names.iter().position(|n| *n == name);
    let mut rows = String::new();
    for p in PAIRS {
        let (Some(w), Some(f)) = (idx(p.way), idx(p.floor)) else {
            continue;
        };
        let (ways, floors) = (&results[&w], &results[&f]);
        let fig = |s: &Sample| if p.cpu { s.cpu } else { s.wall };
        let mut ratios = Vec::new();
        let mut cells = Vec::new();
        for (a, b) in ways.iter().zip(floors) {
            let failed = if a.ok && b.ok { "" } else { " FAILED" };
            let r = fig(a) / fig(b);
            cells.push(format!("{r:.2}x ({:.2} / {:.2}){failed}", fig(a), fig(b)));
            if failed.is_empty() {
                ratios.push(r);
            }
        }
        ratios.sort_by(|a, b| a.total_cmp(b));
        let med = match ratios.len() {
            0 => f64::NAN,
            n if n % 2 == 0 => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
            n => ratios[n / 2],
        };
        let verdict = if p.bound.is_nan() {
            "".to_string()
        } else if med <= p.bound {
            format!("at most {:.1}x: met", p.bound)
        } else {
            format!("at most {:.1}x: **not met**", p.bound)
        };
        rows += &format!(
            "| {} | {} | **{med:.2}x** | {verdict} |\n",
            p.what.replace('|', "\\|"),
            cells.join("; ")
        );
    }
    if rows.is_empty() {
        return rows;
    }
    format!(
        "\nPaired runs (issue 25): each run's ratio (way / floor, seconds), then their median.\n\n\
         | pair | runs in order | median ratio | target |\n|---|---|---|---|\n{rows}"
    )
}

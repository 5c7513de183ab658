//! A sample of the archived files whose content is hashed as it is archived, for `drill` to
//! prove the restored files are the archived ones ([`crate::manifest::FileSample`]).
//!
//! Which files: the [`SAMPLE_SIZE`] whose path has the smallest hash (bottom-k sampling). The
//! choice needs no second pass and no count known in advance, is spread over the whole tree,
//! and picks the same files from run to run while they exist. A file is hashed only when it
//! would be among the chosen so far, so about `k * ln(n / k)` files of `n` are hashed (some
//! 150 of 100,000), while the walk reads them anyway.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::manifest::FileSample;

/// Files sampled per archive at most.
pub const SAMPLE_SIZE: usize = 32;

/// The files chosen so far, by the hash of their path.
#[derive(Debug, Default)]
pub struct Sampler {
    chosen: BTreeMap<u64, FileSample>,
}

/// Where a path falls in the sample's order.
fn rank(path: &str) -> u64 {
    let digest = Sha256::digest(path.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

impl Sampler {
    /// The rank of `path` when its content should be hashed (it would be among the chosen);
    /// `None` otherwise.
    pub fn wants(&self, path: &str) -> Option<u64> {
        let r = rank(path);
        // Not when the sample is full and this would come last, nor twice.
        let full = self.chosen.len() >= SAMPLE_SIZE;
        let last = full && self.chosen.keys().next_back().is_some_and(|max| r >= *max);
        let taken = self.chosen.contains_key(&r);
        (!(taken || last)).then_some(r)
    }

    /// Add a file whose content hashed to `sha256`, dropping the one it pushes out.
    pub fn add(&mut self, rank: u64, sample: FileSample) {
        self.chosen.insert(rank, sample);
        while self.chosen.len() > SAMPLE_SIZE {
            self.chosen.pop_last();
        }
    }

    /// The sample, by path.
    pub fn finish(self) -> Vec<FileSample> {
        let mut v: Vec<FileSample> = self.chosen.into_values().collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(path: &str) -> FileSample {
        FileSample {
            path: path.into(),
            sha256: "00".into(),
            bytes: 1,
        }
    }

    #[test]
    fn the_same_files_are_chosen_whatever_the_order() {
        let paths: Vec<String> = (0..500).map(|i| format!("wp-content/f{i}.php")).collect();
        let run = |order: &mut dyn Iterator<Item = &String>| {
            let mut s = Sampler::default();
            let mut hashed = 0;
            for p in order {
                if let Some(r) = s.wants(p) {
                    hashed += 1;
                    s.add(r, sample(p));
                }
            }
            (s.finish(), hashed)
        };
        let (a, hashed) = run(&mut paths.iter());
        let (b, _) = run(&mut paths.iter().rev());
        assert_eq!(a.len(), SAMPLE_SIZE);
        assert_eq!(a, b);
        // Far fewer than all were hashed.
        assert!(hashed < 200, "{hashed}");
        let mut small = Sampler::default();
        for p in &paths[..3] {
            let r = small.wants(p).unwrap();
            small.add(r, sample(p));
        }
        assert_eq!(small.finish().len(), 3);
    }
}

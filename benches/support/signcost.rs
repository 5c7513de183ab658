//! The cost of signing and checking an archive (issue 23, "Done when"), measured on the last
//! archive the backup to a directory stored: the BLAKE2b-512 prehash that minisign's prehashed
//! mode signs, beside the sha256 the tool computes over the same bytes anyway, Ed25519's two
//! signatures (the object's and the trusted comment's global one) and their two checks, and the
//! signature file's own store (a small file written, fsynced and renamed, its directory
//! fsynced, as the local storage does). Each pass reads the archive from the page cache in the
//! pipeline's 1 MiB chunks; the fastest of three passes counts (the machine is shared).

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
use sha2::Digest as _;
use sha2::Sha256;

/// Seconds of the fastest of `n` runs of `f`.
fn fastest(n: usize, mut f: impl FnMut()) -> f64 {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Read `path` in 1 MiB chunks, giving each to `each`.
fn pass(path: &Path, mut each: impl FnMut(&[u8])) {
    let mut f = std::fs::File::open(path).expect("archive");
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = f.read(&mut buf).expect("read archive");
        if n == 0 {
            break;
        }
        each(&buf[..n]);
    }
}

/// The markdown section: each cost in seconds, and as a share of the backup's and restore's
/// median wall times.
pub fn table(archive: &Path, backup_wall: Option<f64>, restore_wall: Option<f64>) -> String {
    let size = std::fs::metadata(archive).map(|m| m.len()).unwrap_or(0);
    eprintln!("== the cost of signing, on {}", archive.display());
    let read = fastest(3, || pass(archive, |_| {}));
    let mut sha_hex = String::new();
    let sha = fastest(3, || {
        let mut h = Sha256::new();
        pass(archive, |c| h.update(c));
        sha_hex = hex::encode(h.finalize());
    }) - read;
    let mut prehash = [0u8; 64];
    let blake = fastest(3, || {
        // As `sign::Prehash` computes it (blake2b_simd).
        let mut h = blake2b_simd::Params::new().hash_length(64).to_state();
        pass(archive, |c| {
            h.update(c);
        });
        prehash.copy_from_slice(h.finalize().as_bytes());
    }) - read;

    // A fixed key: the cost does not depend on which.
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let public = key.verifying_key();
    let comment = format!("archive:bench.tar.zst site:bench server:bench-server sha256:{sha_hex}");
    const N: usize = 200;
    let mut global = Vec::new();
    let sign = fastest(3, || {
        for _ in 0..N {
            let sig = key.sign(&prehash).to_bytes();
            global = sig.to_vec();
            global.extend_from_slice(comment.as_bytes());
            let _ = key.sign(&global);
        }
    }) / N as f64;
    let object_sig = key.sign(&prehash);
    let global_sig = key.sign(&global);
    let verify = fastest(3, || {
        for _ in 0..N {
            let a = public.verify(&prehash, &object_sig).is_ok();
            let b = public.verify(&global, &global_sig).is_ok();
            assert!(a && b, "a genuine signature did not verify");
        }
    }) / N as f64;
    // The signature file stored beside the archive, as the local storage stores it.
    let dir = archive.parent().unwrap_or(Path::new("."));
    let text = vec![b'x'; 330];
    let store = fastest(3, || {
        use std::io::Write;
        let tmp = dir.join(".bench.minisig.partial");
        let dst = dir.join("bench-signcost.minisig");
        let mut f = std::fs::File::create(&tmp).expect("sig file");
        f.write_all(&text).expect("sig file");
        f.sync_all().expect("fsync");
        std::fs::rename(&tmp, &dst).expect("rename");
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .expect("fsync dir");
        let _ = std::fs::remove_file(&dst);
    });

    let share = |secs: f64, of: Option<f64>| match of {
        Some(w) if w > 0.0 => format!("{:.2}%", 100.0 * secs / w),
        _ => "-".into(),
    };
    let bw = backup_wall;
    let rw = restore_wall;
    let mib = size as f64 / 1024.0 / 1024.0;
    let mut md = format!(
        "\nThe cost of signing and checking (issue 23), on the last archive stored to the \
         directory ({mib:.0} MiB; reading it from the page cache alone: {read:.3} s). Backup: \
         median wall of the backup to a directory ({}); restore: median wall of `restore --to \
         --db-name` ({}). The hashes are the time beyond the read.\n\n\
         | step | seconds | of the backup | of the restore |\n|---|---|---|---|\n",
        bw.map_or("not run".into(), |w| format!("{w:.2} s")),
        rw.map_or("not run".into(), |w| format!("{w:.2} s"))
    );
    let mut row = |name: &str, secs: f64, b: bool, r: bool| {
        md += &format!(
            "| {name} | {secs:.4} | {} | {} |\n",
            if b { share(secs, bw) } else { "".into() },
            if r { share(secs, rw) } else { "".into() }
        );
    };
    row(
        "sha256 of the archive (computed anyway, for `.sha256`)",
        sha,
        true,
        true,
    );
    row(
        "BLAKE2b-512 prehash of the archive (what is signed)",
        blake,
        true,
        true,
    );
    row("Ed25519: the two signatures", sign, true, false);
    row("Ed25519: the two checks", verify, false, true);
    row(
        "the `.minisig` stored (write, fsync, rename, fsync of the directory)",
        store,
        true,
        false,
    );
    row(
        "signing, all (prehash + signatures + store)",
        blake + sign + store,
        true,
        false,
    );
    row(
        "checking, all (prehash + checks)",
        blake + verify,
        false,
        true,
    );
    md
}

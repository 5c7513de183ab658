//! The zstd stream under the archive's tar, written as a sequence of zstd frames whose level
//! follows the content: runs of large, already-compressed files (JPEG, PNG, WebP, MP4, ZIP,
//! ...) go into frames at level 1, everything else at the configured level. A zstd file may
//! hold any number of frames and `zstd -d` / `tar --zstd` read them as one stream, so the
//! archive format does not change.
//!
//! Why: most of a WordPress site's bytes are media that zstd cannot shrink, and level 3 spends
//! about twice the CPU of level 1 finding that out (measured with the zstd CLI on random
//! data: 0.35 s vs 0.18 s user per 300 MiB; the archive differed by less than 0.01%). See
//! BENCHMARKS.md for the effect on a whole backup.
//!
//! The same property lets the database dump, compressed once into its temporary file while the
//! files are walked, be spliced into the stream as it is ([`Frames::splice`]) instead of being
//! decompressed and compressed a second time.

use std::io::{self, Write};
use std::path::Path;

use crate::config::Compression;

/// zstd level for already-compressed content.
const FAST_LEVEL: i32 = 1;
/// Files at least this large decide the frame's level; smaller ones join the current frame,
/// so that thumbnails and small icons do not split runs of code into tiny frames.
const DECIDING_SIZE: u64 = 64 * 1024;
/// Bytes of input per zstd worker job in multi-threaded mode. zstd's default job is four
/// windows (8 MiB at level 3) and it keeps about three jobs' input and output per worker:
/// ~60 MiB on two cores. 2 MiB jobs cut that by ~45 MiB (peak RSS 140 -> 93 MiB on the small
/// benchmark) for an archive 0.2% larger.
const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// Extensions of formats that are compressed already.
const PRECOMPRESSED: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "avif", "heic", "mp4", "m4v", "mov", "webm", "mkv", "avi",
    "mp3", "m4a", "ogg", "oga", "ogv", "opus", "flac", "zip", "gz", "tgz", "bz2", "xz", "zst",
    "7z", "rar", "woff", "woff2", "jar", "docx", "xlsx", "pptx", "odt", "epub",
];

/// Whether `path` (of `size` bytes) is worth its own fast frame: `Some(true)` for large
/// already-compressed files, `Some(false)` for large others, `None` for small files.
pub fn precompressed(path: &Path, size: u64) -> Option<bool> {
    if size < DECIDING_SIZE {
        return None;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    Some(PRECOMPRESSED.contains(&ext.as_str()))
}

/// A zstd writer that can end its frame and go on at another level.
pub struct Frames<W: Write> {
    enc: Option<zstd::stream::write::Encoder<'static, W>>,
    level: i32,
    threads: u32,
    fast: bool,
}

impl<W: Write> Frames<W> {
    pub fn new(out: W, compression: Compression) -> io::Result<Frames<W>> {
        let threads = match compression.threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            n => n,
        };
        Ok(Frames {
            enc: Some(encoder(out, compression.level, threads)?),
            level: compression.level,
            threads,
            fast: false,
        })
    }

    /// End the current frame and start one at the fast level (`true`) or the configured one.
    /// A no-op when the level would not change.
    pub fn set_fast(&mut self, fast: bool) -> io::Result<()> {
        if fast == self.fast || self.level <= FAST_LEVEL {
            return Ok(());
        }
        let out = self.take()?.finish()?;
        let level = if fast { FAST_LEVEL } else { self.level };
        self.enc = Some(encoder(out, level, self.threads)?);
        self.fast = fast;
        Ok(())
    }

    /// Copy `frames` (a complete zstd stream, e.g. the compressed temporary dump) into the
    /// output as it is, between the current frame and a new one: its content joins the
    /// stream's without being decompressed and compressed again. Returns the bytes copied.
    pub fn splice(&mut self, frames: &mut impl io::Read) -> io::Result<u64> {
        let mut out = self.take()?.finish()?;
        let copied = io::copy(frames, &mut out)?;
        let level = if self.fast { FAST_LEVEL } else { self.level };
        self.enc = Some(encoder(out, level, self.threads)?);
        Ok(copied)
    }

    /// End the last frame and hand back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.take()?.finish()
    }

    fn take(&mut self) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
        self.enc
            .take()
            .ok_or_else(|| io::Error::other("the zstd stream failed earlier"))
    }

    fn enc(&mut self) -> io::Result<&mut zstd::stream::write::Encoder<'static, W>> {
        self.enc
            .as_mut()
            .ok_or_else(|| io::Error::other("the zstd stream failed earlier"))
    }
}

impl<W: Write> Write for Frames<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.enc()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.enc()?.flush()
    }
}

fn encoder<W: Write>(
    out: W,
    level: i32,
    threads: u32,
) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut enc = zstd::stream::write::Encoder::new(out, level)?;
    if threads > 1 {
        enc.multithread(threads)?;
        enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
    }
    Ok(enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_two_levels_decode_as_one_stream() {
        let c = Compression {
            level: 3,
            threads: 2,
        };
        let mut f = Frames::new(Vec::new(), c).unwrap();
        let text = b"function backup() { return true; }\n".repeat(5000);
        let noise: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        f.write_all(&text).unwrap();
        f.set_fast(true).unwrap();
        f.write_all(&noise).unwrap();
        f.set_fast(true).unwrap(); // no new frame
        f.set_fast(false).unwrap();
        f.write_all(&text).unwrap();
        let spliced = zstd::encode_all(&b"-- a dump\n"[..], 3).unwrap();
        f.splice(&mut spliced.as_slice()).unwrap();
        f.write_all(b"after").unwrap();
        let out = f.finish().unwrap();
        let back = zstd::decode_all(out.as_slice()).unwrap();
        let mut want = text.clone();
        want.extend_from_slice(&noise);
        want.extend_from_slice(&text);
        want.extend_from_slice(b"-- a dump\nafter");
        assert_eq!(back, want);
    }

    #[test]
    fn only_large_files_decide() {
        assert_eq!(precompressed(Path::new("a/photo.JPG"), 1 << 20), Some(true));
        assert_eq!(precompressed(Path::new("a/photo.jpg"), 1000), None);
        assert_eq!(
            precompressed(Path::new("a/class.php"), 1 << 20),
            Some(false)
        );
        assert_eq!(precompressed(Path::new("a/noext"), 1 << 20), Some(false));
    }
}

//! The zstd stream under the archive's tar, written as a sequence of zstd frames whose kind
//! follows the content. A zstd file may hold any number of frames and `zstd -d` / `tar --zstd`
//! read them as one stream, so the archive format does not change. Three kinds of frame:
//!
//! - **normal**: the configured level, for code, text and everything that shrinks;
//! - **fast** (level 1): large files of a compressed format whose first bytes still shrink a
//!   little (a PNG with text chunks, say);
//! - **stored**: large files that do not shrink (JPEG, MP4, ZIP, random data, detected by
//!   compressing a sample of the file's first bytes), written as zstd *raw blocks*
//!   (RFC 8878 3.1.1.2: a 3-byte block header, then the bytes as they are). No compression is
//!   tried on them at all; the archive grows by 3 bytes per 128 KiB.
//!
//! Why: most of a WordPress site's bytes are media that zstd cannot shrink, and compressing
//! them costs CPU for nothing (measured with the zstd CLI on 300 MiB of random data: 0.34 s
//! user at level 3, 0.24 s at level 1, 0.00 s for `cat`). See BENCHMARKS.md for the effect on
//! a whole backup.
//!
//! One compression context (with its worker threads) lives for the whole archive; ending a
//! frame resets its session, so switching kinds costs a frame end, not a new thread pool.
//!
//! The same property lets the database dump, compressed once into its temporary file while the
//! files are walked, be spliced into the stream as it is ([`Frames::splice`]) instead of being
//! decompressed and compressed a second time.

use std::io::{self, Write};
use std::path::Path;

use zstd::stream::raw::{CParameter, Encoder as RawEncoder, Operation as _};
use zstd::stream::zio;

use crate::config::Compression;

/// zstd level for compressed formats that still shrink a little.
const FAST_LEVEL: i32 = 1;
/// Files at least this large decide the frame's kind; smaller ones join the current frame,
/// so that thumbnails and small icons do not split runs of code into tiny frames.
pub const DECIDING_SIZE: u64 = 64 * 1024;
/// Bytes of a large file compressed (at level 1) to tell whether the file shrinks.
pub const SAMPLE_SIZE: usize = 64 * 1024;
/// A sample that does not lose at least this share of its size (in percent) is stored.
const STORE_BELOW_SAVING_PCT: usize = 2;
/// Bytes of input per zstd worker job in multi-threaded mode. zstd's default job is four
/// windows (8 MiB at level 3) and it keeps about three jobs' input and output per worker:
/// ~60 MiB on two cores. 2 MiB jobs cut that by ~45 MiB (peak RSS 140 -> 93 MiB on the small
/// benchmark) for an archive 0.2% larger.
const ZSTD_JOB_SIZE: u32 = 2 << 20;
/// The largest raw block: zstd's block size limit, and the window of a stored frame.
const RAW_BLOCK: usize = 128 * 1024;
/// Frame header of a stored frame: magic number, a descriptor with no content size, no
/// checksum and no dictionary, and a window of 2^(10+7) = 128 KiB (RFC 8878 3.1.1.1).
const STORED_FRAME_HEADER: [u8; 6] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 7 << 3];

/// Extensions of formats that are compressed already.
const PRECOMPRESSED: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "avif", "heic", "mp4", "m4v", "mov", "webm", "mkv", "avi",
    "mp3", "m4a", "ogg", "oga", "ogv", "opus", "flac", "zip", "gz", "tgz", "bz2", "xz", "zst",
    "7z", "rar", "woff", "woff2", "jar", "docx", "xlsx", "pptx", "odt", "epub",
];

/// The kind of frame the next bytes go into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The configured level.
    Normal,
    /// Level 1.
    Fast,
    /// Raw blocks: no compression.
    Stored,
}

fn has_compressed_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .is_some_and(|ext| PRECOMPRESSED.contains(&ext.as_str()))
}

/// The frame a file of `size` bytes at `path` should go into, given the first bytes of its
/// content (`sample`, up to [`SAMPLE_SIZE`]; only read for files of at least
/// [`DECIDING_SIZE`]). `current` is the frame being written. Small files join the current
/// frame, except that a small file of a format that shrinks ends a stored run.
pub fn choose(path: &Path, size: u64, sample: &[u8], current: Mode) -> Mode {
    if size < DECIDING_SIZE {
        return if current == Mode::Stored && !has_compressed_extension(path) {
            Mode::Normal
        } else {
            current
        };
    }
    if !shrinks(sample) {
        Mode::Stored
    } else if has_compressed_extension(path) {
        Mode::Fast
    } else {
        Mode::Normal
    }
}

/// Whether level-1 zstd saves at least [`STORE_BELOW_SAVING_PCT`] percent of `sample`.
fn shrinks(sample: &[u8]) -> bool {
    if sample.is_empty() {
        return true;
    }
    match zstd::bulk::compress(sample, FAST_LEVEL) {
        Ok(c) => c.len() * 100 < sample.len() * (100 - STORE_BELOW_SAVING_PCT),
        Err(_) => true,
    }
}

/// Where bytes go now.
enum Sink<W: Write> {
    Zstd(zio::Writer<W, RawEncoder<'static>>),
    Stored {
        out: W,
        buf: Vec<u8>,
        /// The compression context, kept for the next compressed frame.
        enc: RawEncoder<'static>,
    },
    /// A write failed; the stream is unusable.
    Broken,
}

/// A zstd writer that can end its frame and go on in another kind of frame.
pub struct Frames<W: Write> {
    sink: Sink<W>,
    level: i32,
    mode: Mode,
}

impl<W: Write> Frames<W> {
    pub fn new(out: W, compression: Compression) -> io::Result<Frames<W>> {
        let threads = match compression.threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            n => n,
        };
        let mut enc = RawEncoder::new(compression.level)?;
        if threads > 1 {
            enc.set_parameter(CParameter::NbWorkers(threads))?;
            enc.set_parameter(CParameter::JobSize(ZSTD_JOB_SIZE))?;
        }
        Ok(Frames {
            sink: Sink::Zstd(zio::Writer::new(out, enc)),
            level: compression.level,
            mode: Mode::Normal,
        })
    }

    /// The kind of frame being written.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// End the current frame and start one of kind `mode`. A no-op when the kind would not
    /// change (or, for `Fast`, when the configured level is no slower).
    pub fn set_mode(&mut self, mode: Mode) -> io::Result<()> {
        let mode = if mode == Mode::Fast && self.level <= FAST_LEVEL {
            Mode::Normal
        } else {
            mode
        };
        if mode == self.mode {
            return Ok(());
        }
        let (out, enc) = self.end_frame()?;
        self.mode = mode;
        self.start_frame(out, enc)
    }

    /// Copy `frames` (a complete zstd stream, e.g. the compressed temporary dump) into the
    /// output as it is, between the current frame and a new one: its content joins the
    /// stream's without being decompressed and compressed again. Returns the bytes copied.
    pub fn splice(&mut self, frames: &mut impl io::Read) -> io::Result<u64> {
        let (mut out, enc) = self.end_frame()?;
        let copied = io::copy(frames, &mut out)?;
        self.start_frame(out, enc)?;
        Ok(copied)
    }

    /// End the last frame and hand back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        Ok(self.end_frame()?.0)
    }

    fn end_frame(&mut self) -> io::Result<(W, RawEncoder<'static>)> {
        match std::mem::replace(&mut self.sink, Sink::Broken) {
            Sink::Zstd(mut w) => {
                w.finish()?;
                Ok(w.into_inner())
            }
            Sink::Stored { mut out, buf, enc } => {
                raw_block(&mut out, &buf, true)?;
                Ok((out, enc))
            }
            Sink::Broken => Err(broken()),
        }
    }

    fn start_frame(&mut self, mut out: W, mut enc: RawEncoder<'static>) -> io::Result<()> {
        self.sink = match self.mode {
            Mode::Stored => {
                out.write_all(&STORED_FRAME_HEADER)?;
                Sink::Stored {
                    out,
                    buf: Vec::with_capacity(RAW_BLOCK),
                    enc,
                }
            }
            Mode::Normal | Mode::Fast => {
                enc.reinit()?;
                let level = if self.mode == Mode::Fast {
                    FAST_LEVEL
                } else {
                    self.level
                };
                enc.set_parameter(CParameter::CompressionLevel(level))?;
                Sink::Zstd(zio::Writer::new(out, enc))
            }
        };
        Ok(())
    }
}

fn broken() -> io::Error {
    io::Error::other("the zstd stream failed earlier")
}

/// Write one raw block: its 3-byte header (last-block flag, type 0 = raw, size), then `data`.
fn raw_block(out: &mut impl Write, data: &[u8], last: bool) -> io::Result<()> {
    debug_assert!(data.len() <= RAW_BLOCK);
    let header = ((data.len() as u32) << 3) | u32::from(last);
    out.write_all(&header.to_le_bytes()[..3])?;
    out.write_all(data)
}

impl<W: Write> Write for Frames<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let r = match &mut self.sink {
            Sink::Zstd(w) => w.write(data),
            Sink::Stored { out, buf, .. } => {
                // Whole blocks straight from `data` when nothing is pending, else fill `buf`.
                if buf.is_empty() && data.len() >= RAW_BLOCK {
                    raw_block(out, &data[..RAW_BLOCK], false).map(|_| RAW_BLOCK)
                } else {
                    let n = data.len().min(RAW_BLOCK - buf.len());
                    buf.extend_from_slice(&data[..n]);
                    if buf.len() == RAW_BLOCK {
                        let r = raw_block(out, buf, false);
                        buf.clear();
                        r.map(|_| n)
                    } else {
                        Ok(n)
                    }
                }
            }
            Sink::Broken => Err(broken()),
        };
        if r.is_err() {
            self.sink = Sink::Broken;
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Zstd(w) => w.flush(),
            Sink::Stored { out, .. } => out.flush(),
            Sink::Broken => Err(broken()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Incompressible bytes (xorshift64).
    fn noise(n: u32) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    #[test]
    fn frames_of_every_kind_decode_as_one_stream() {
        let c = Compression {
            level: 3,
            threads: 2,
        };
        let mut f = Frames::new(Vec::new(), c).unwrap();
        let text = b"function backup() { return true; }\n".repeat(5000);
        let noise = noise(300_000);
        let mut want = Vec::new();
        fn put(f: &mut Frames<Vec<u8>>, want: &mut Vec<u8>, data: &[u8]) {
            f.write_all(data).unwrap();
            want.extend_from_slice(data);
        }
        put(&mut f, &mut want, &text);
        f.set_mode(Mode::Fast).unwrap();
        put(&mut f, &mut want, &noise);
        f.set_mode(Mode::Fast).unwrap(); // no new frame
        f.set_mode(Mode::Stored).unwrap();
        // Writes of every size: smaller than a block, straddling blocks, whole blocks.
        for size in [1usize, 7, 131_071, 131_072, 131_073, 300_000, 0, 5] {
            put(&mut f, &mut want, &noise[..size]);
        }
        f.set_mode(Mode::Normal).unwrap();
        put(&mut f, &mut want, &text);
        let spliced = zstd::encode_all(&b"-- a dump\n"[..], 3).unwrap();
        f.splice(&mut spliced.as_slice()).unwrap();
        want.extend_from_slice(b"-- a dump\n");
        f.set_mode(Mode::Stored).unwrap();
        f.set_mode(Mode::Normal).unwrap(); // an empty stored frame
        f.set_mode(Mode::Stored).unwrap();
        put(&mut f, &mut want, b"after");
        let out = f.finish().unwrap();
        assert_eq!(zstd::decode_all(out.as_slice()).unwrap(), want);
    }

    #[test]
    fn stored_frames_cost_three_bytes_per_block_and_zstd_cli_reads_them() {
        let data = noise(1_000_000);
        let mut f = Frames::new(Vec::new(), Compression::default()).unwrap();
        f.set_mode(Mode::Stored).unwrap();
        f.write_all(&data).unwrap();
        let out = f.finish().unwrap();
        // The empty first frame, then 6 bytes of header and 8 blocks of 3 bytes.
        let empty = zstd::encode_all(&b""[..], 3).unwrap().len();
        assert!(out.len() <= empty + data.len() + 6 + 8 * 3, "{}", out.len());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zst");
        std::fs::write(&path, &out).unwrap();
        let cli = std::process::Command::new("zstd")
            .args(["-d", "-c", "-q"])
            .arg(&path)
            .output();
        if let Ok(o) = cli {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(o.stdout, data);
        }
    }

    #[test]
    fn large_files_are_sampled_small_ones_join_the_frame() {
        let text = b"<?php echo 'hello'; ?>\n".repeat(3000);
        let random = noise(SAMPLE_SIZE as u32);
        let big = 1 << 20;
        let p = |s: &str| Path::new(s).to_path_buf();
        // Incompressible content is stored whatever its name.
        assert_eq!(
            choose(&p("a/photo.JPG"), big, &random, Mode::Normal),
            Mode::Stored
        );
        assert_eq!(
            choose(&p("a/blob.bin"), big, &random, Mode::Normal),
            Mode::Stored
        );
        // A compressed format that still shrinks gets the fast level; code the normal one.
        assert_eq!(
            choose(&p("a/photo.png"), big, &text, Mode::Stored),
            Mode::Fast
        );
        assert_eq!(
            choose(&p("a/class.php"), big, &text, Mode::Stored),
            Mode::Normal
        );
        // Small files: thumbnails stay in a stored run, code ends it.
        assert_eq!(choose(&p("a/t.jpg"), 1000, &[], Mode::Stored), Mode::Stored);
        assert_eq!(choose(&p("a/t.php"), 1000, &[], Mode::Stored), Mode::Normal);
        assert_eq!(choose(&p("a/t.php"), 1000, &[], Mode::Fast), Mode::Fast);
        assert_eq!(choose(&p("a/noext"), 1000, &[], Mode::Normal), Mode::Normal);
    }
}

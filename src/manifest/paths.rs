//! Lists of paths that grow with the site: a differential archive's `paths.nul` and
//! `deleted.nul`, and what a restore of a chain took from each archive. They are kept in the
//! walk's order ([`walk_order`]) and spooled through zstd-compressed anonymous temporary
//! files, so that a million paths cost a few MiB of disk, not hundreds of MiB of memory, and
//! two such lists (or a list and an archive, whose entries come in the same order) are joined
//! by reading both once.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufRead as _, BufReader, BufWriter, Read, Seek as _, Write as _};

use sha2::Digest as _;

/// The order the backup walks a site in: component by component, each compared by its bytes,
/// a directory right before what it holds (`a`, `a/x`, `a.txt`). Names hold no `/`, so it is
/// the byte order with `/` taken as lower than any other byte.
pub fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    let key = |c: &u8| if *c == b'/' { 0u16 } else { u16::from(*c) + 1 };
    a.iter().map(key).cmp(b.iter().map(key))
}

/// A NUL-separated list being written (each item ended by a NUL byte), compressed into an
/// anonymous temporary file; its bytes, items and sha256 are counted as written
/// uncompressed, as they go into an archive member.
pub struct ListWriter {
    enc: zstd::stream::write::Encoder<'static, BufWriter<File>>,
    prefix: &'static [u8],
    bytes: u64,
    count: u64,
    hasher: sha2::Sha256,
}

impl ListWriter {
    /// A new list; every item is written with `prefix` before it (`files/` for a member).
    pub fn new(prefix: &'static [u8]) -> io::Result<ListWriter> {
        let file = tempfile::tempfile()?;
        let enc = zstd::stream::write::Encoder::new(BufWriter::new(file), 1)?;
        Ok(ListWriter {
            enc,
            prefix,
            bytes: 0,
            count: 0,
            hasher: sha2::Sha256::new(),
        })
    }

    pub fn push(&mut self, item: &[u8]) -> io::Result<()> {
        for part in [self.prefix, item, b"\0"] {
            self.enc.write_all(part)?;
            self.hasher.update(part);
            self.bytes += part.len() as u64;
        }
        self.count += 1;
        Ok(())
    }

    pub fn finish(self) -> io::Result<List> {
        let mut file = self
            .enc
            .finish()?
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.flush()?;
        Ok(List {
            file,
            prefix: self.prefix,
            bytes: self.bytes,
            count: self.count,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

/// A finished list: read back as often as needed.
pub struct List {
    file: File,
    prefix: &'static [u8],
    /// Bytes of the list uncompressed (items, prefixes and NULs).
    pub bytes: u64,
    pub count: u64,
    /// sha256 of the list uncompressed.
    pub sha256: String,
}

impl List {
    /// The list as written (prefixes and NULs), from its start.
    pub fn reader(&self) -> io::Result<zstd::stream::read::Decoder<'static, BufReader<File>>> {
        let mut file = self.file.try_clone()?;
        file.rewind()?;
        zstd::stream::read::Decoder::new(file)
    }

    /// Its items from the start, without their prefix.
    pub fn items(&self) -> io::Result<Items> {
        Ok(Items {
            inner: BufReader::new(Box::new(self.reader()?)),
            prefix: self.prefix.len(),
            peeked: None,
        })
    }
}

/// The items of a NUL-separated list, one at a time, with a look ahead for joins.
pub struct Items {
    inner: BufReader<Box<dyn Read + Send>>,
    /// Bytes of prefix to drop from each item.
    prefix: usize,
    peeked: Option<Vec<u8>>,
}

impl Items {
    pub fn next_item(&mut self) -> io::Result<Option<Vec<u8>>> {
        if let Some(p) = self.peeked.take() {
            return Ok(Some(p));
        }
        let mut buf = Vec::new();
        if self.inner.read_until(0, &mut buf)? == 0 {
            return Ok(None);
        }
        if buf.pop() != Some(0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a list of paths ends without its NUL byte",
            ));
        }
        buf.drain(..self.prefix.min(buf.len()));
        Ok(Some(buf))
    }

    /// Walk past the items before `path` (in walk order), giving each to `passed`; true when
    /// the next item is `path` itself (then consumed).
    pub fn seek(
        &mut self,
        path: &[u8],
        passed: &mut dyn FnMut(Vec<u8>) -> io::Result<()>,
    ) -> io::Result<bool> {
        while let Some(item) = self.next_item()? {
            match walk_order(&item, path) {
                Ordering::Less => passed(item)?,
                Ordering::Equal => return Ok(true),
                Ordering::Greater => {
                    self.peeked = Some(item);
                    return Ok(false);
                }
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_order_puts_a_directory_before_its_contents_and_siblings_after() {
        let mut v: Vec<&[u8]> = vec![b"a.txt", b"a/x", b"b", b"a", b"a/x/y", b"a-b", b"ab"];
        v.sort_by(|a, b| walk_order(a, b));
        assert_eq!(
            v,
            [&b"a"[..], b"a/x", b"a/x/y", b"a-b", b"a.txt", b"ab", b"b"]
        );
    }

    #[test]
    fn a_list_is_read_back_and_joined() {
        let mut w = ListWriter::new(b"files/").unwrap();
        for p in ["a", "a/x", "b", "c/d"] {
            w.push(p.as_bytes()).unwrap();
        }
        let list = w.finish().unwrap();
        assert_eq!(list.count, 4);
        let mut raw = Vec::new();
        list.reader().unwrap().read_to_end(&mut raw).unwrap();
        assert_eq!(raw, b"files/a\0files/a/x\0files/b\0files/c/d\0");
        assert_eq!(list.bytes, raw.len() as u64);
        assert_eq!(list.sha256, hex::encode(sha2::Sha256::digest(&raw)));
        let mut items = list.items().unwrap();
        let mut passed = Vec::new();
        let mut note = |p: Vec<u8>| {
            passed.push(String::from_utf8(p).unwrap());
            Ok(())
        };
        assert!(items.seek(b"a/x", &mut note).unwrap());
        assert!(!items.seek(b"a/y", &mut note).unwrap());
        assert!(items.seek(b"c/d", &mut note).unwrap());
        assert!(!items.seek(b"z", &mut note).unwrap());
        assert_eq!(passed, ["a", "b"]);
    }
}

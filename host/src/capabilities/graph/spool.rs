//! The file a run's graph is written to as it is emitted: append-only records in an
//! unlinked temporary file (gone when the process ends, however it ends), read back by
//! offset. Memory holds only a write buffer and, when scanning, a read window.

use corral_core::canonical::ContentHash;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::OnceLock;

const WRITE_BUFFER: usize = 64 << 10;
const READ_WINDOW: usize = 256 << 10;

/// Where spools are created: `corral` points it at the data directory (a tmpfs `/tmp`
/// would put every run's graph back in memory); the system temp dir otherwise.
static SPOOL_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Sets the spool directory for this process (first call wins).
pub fn set_dir(dir: PathBuf) {
    let _ = SPOOL_DIR.set(dir);
}

pub fn dir() -> PathBuf {
    SPOOL_DIR.get().cloned().unwrap_or_else(std::env::temp_dir)
}

/// One stored object: its content hash, key and canonical JSON.
/// On disk: `hash (32) | key length (u32 LE) | key | json`.
pub struct Record<'a> {
    pub hash: &'a ContentHash,
    pub key: &'a str,
    pub json: &'a [u8],
}

/// Where a record lies in the spool.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub offset: u64,
    pub len: u32,
}

pub struct Spool {
    writer: BufWriter<File>,
    len: u64,
    flushed: u64,
    /// A write failed part-way: the file no longer matches the offsets, so nothing more
    /// is written or read (the run ends as the host's failure).
    broken: bool,
}

impl Spool {
    pub fn create() -> io::Result<Spool> {
        let dir = dir();
        std::fs::create_dir_all(&dir)?;
        let file = tempfile::tempfile_in(&dir)?;
        Ok(Spool {
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            len: 0,
            flushed: 0,
            broken: false,
        })
    }

    pub fn append(&mut self, hash: &ContentHash, key: &str, json: &[u8]) -> io::Result<Span> {
        self.usable()?;
        let key_len = u32::try_from(key.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
        let total = 36usize
            .checked_add(key.len())
            .and_then(|n| n.checked_add(json.len()))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(io::ErrorKind::InvalidInput)?;
        let written = [hash, &key_len.to_le_bytes()[..], key.as_bytes(), json]
            .iter()
            .try_for_each(|part| self.writer.write_all(part));
        if let Err(e) = written {
            self.broken = true;
            return Err(e);
        }
        let span = Span {
            offset: self.len,
            len: total,
        };
        self.len += u64::from(total);
        Ok(span)
    }

    /// Makes everything appended readable.
    pub fn flush(&mut self) -> io::Result<()> {
        self.usable()?;
        if self.flushed < self.len {
            if let Err(e) = self.writer.flush() {
                self.broken = true;
                return Err(e);
            }
            self.flushed = self.len;
        }
        Ok(())
    }

    fn usable(&self) -> io::Result<()> {
        match self.broken {
            true => Err(io::Error::other(
                "an earlier write to the run's spool failed",
            )),
            false => Ok(()),
        }
    }

    /// Reads one record's bytes (flushing first if it is still buffered).
    pub fn read(&mut self, span: Span) -> io::Result<Vec<u8>> {
        self.usable()?;
        if span.offset + u64::from(span.len) > self.flushed {
            self.flush()?;
        }
        let mut buf = vec![0; span.len as usize];
        self.writer.get_ref().read_exact_at(&mut buf, span.offset)?;
        Ok(buf)
    }

    /// A reader for many records in mostly ascending order; needs [`Spool::flush`] first.
    pub fn reader(&self) -> io::Result<Reader<'_>> {
        self.usable()?;
        if self.flushed < self.len {
            return Err(io::Error::other("the spool was read before it was flushed"));
        }
        Ok(Reader {
            file: self.writer.get_ref(),
            window: Vec::new(),
            start: 0,
        })
    }
}

/// Reads records through a window of the file, so a scan in ascending order costs one
/// system call per window rather than one per record.
pub struct Reader<'a> {
    file: &'a File,
    window: Vec<u8>,
    start: u64,
}

impl Reader<'_> {
    pub fn record(&mut self, span: Span) -> io::Result<Record<'_>> {
        let len = span.len as usize;
        let end = self.start + self.window.len() as u64;
        if span.offset < self.start || span.offset + len as u64 > end {
            self.window.resize(len.max(READ_WINDOW), 0);
            let got = read_up_to(self.file, &mut self.window, span.offset)?;
            if got < len {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.window.truncate(got);
            self.start = span.offset;
        }
        let at = (span.offset - self.start) as usize;
        parse(&self.window[at..at + len])
    }
}

fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Splits a record's bytes (written by [`Spool::append`], so well formed).
pub fn parse(bytes: &[u8]) -> io::Result<Record<'_>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "a malformed spool record");
    let hash: &ContentHash = bytes
        .get(..32)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(bad)?;
    let key_len = bytes
        .get(32..36)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(bad)? as usize;
    let key = bytes.get(36..36 + key_len).ok_or_else(bad)?;
    let key = std::str::from_utf8(key).map_err(|_| bad())?;
    Ok(Record {
        hash,
        key,
        json: &bytes[36 + key_len..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_in_any_order_before_and_after_flushing() {
        let mut spool = Spool::create().unwrap();
        let spans: Vec<Span> = (0..5000)
            .map(|i| {
                let json = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 300));
                spool
                    .append(&[i as u8; 32], &format!("key-{i}"), json.as_bytes())
                    .unwrap()
            })
            .collect();
        // Still buffered: a read flushes.
        let one = spool.read(spans[4999]).unwrap();
        assert_eq!(parse(&one).unwrap().key, "key-4999");
        spool.flush().unwrap();
        let mut reader = spool.reader().unwrap();
        for i in (0..5000).rev().step_by(7).chain(0..5000) {
            let r = reader.record(spans[i]).unwrap();
            assert_eq!(r.key, format!("key-{i}"));
            assert_eq!(r.hash, &[i as u8; 32]);
            assert!(r.json.starts_with(format!("{{\"n\":{i},").as_bytes()));
        }
    }

    #[test]
    fn a_record_larger_than_the_window_reads_whole() {
        let mut spool = Spool::create().unwrap();
        let big = vec![b'x'; READ_WINDOW * 3];
        let a = spool.append(&[1; 32], "small-key-1", b"{}").unwrap();
        let b = spool.append(&[2; 32], "big-key-001", &big).unwrap();
        spool.flush().unwrap();
        let mut reader = spool.reader().unwrap();
        assert_eq!(reader.record(a).unwrap().json, b"{}");
        assert_eq!(reader.record(b).unwrap().json.len(), big.len());
    }
}

//! Where the process's own log records go: stderr, one record per line. A record may
//! quote text a plugin or a provider chose (a `_key`, a file name, an error body); a
//! newline or carriage return inside it is written escaped, so it cannot forge a line
//! that looks like the host's own.

use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;

/// A `MakeWriter` for tracing-subscriber: each event is collected whole, then written as
/// one line.
pub struct OneLinePerRecord;

impl<'a> MakeWriter<'a> for OneLinePerRecord {
    type Writer = RecordWriter;

    fn make_writer(&'a self) -> RecordWriter {
        RecordWriter(Vec::new())
    }
}

/// One event's bytes, written to stderr when the event is done.
pub struct RecordWriter(Vec<u8>);

impl Write for RecordWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = std::io::stderr().lock().write_all(&one_line(&self.0));
        }
    }
}

/// `record` with every line break but the final one written as `\n` or `\r`.
pub fn one_line(record: &[u8]) -> Vec<u8> {
    let body = record.strip_suffix(b"\n").unwrap_or(record);
    let mut out = Vec::with_capacity(record.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b => out.push(b),
        }
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_record_is_one_line() {
        assert_eq!(one_line(b"ok\n"), b"ok\n");
        assert_eq!(
            one_line(b"WARN key x\n INFO corral serve ready\r\n"),
            b"WARN key x\\n INFO corral serve ready\\r\n"
        );
        assert_eq!(one_line(b"no newline"), b"no newline\n");
    }
}

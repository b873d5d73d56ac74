//! A CMS file read as a stream: the parsers see each record once, the
//! file's SHA-256 is taken on the way, and memory holds the reader's buffer
//! and the rows kept, never the whole file (a PTP part is tens of MB).
//!
//! CMS's text files are Latin-1 (the PTP rationale, the MUE notice); codes
//! and numbers are ASCII, so a cell is read byte for byte as Latin-1.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use sha2::{Digest, Sha256};

/// Where a row went wrong: its line, the column (1-based, with its
/// heading) where one is at fault, and what is wrong, never the row's
/// content beyond the code.
#[derive(Debug, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub column: Option<(usize, &'static str)>,
    pub problem: String,
}

impl RowError {
    pub fn at(line: u64, problem: impl Into<String>) -> RowError {
        RowError {
            line,
            column: None,
            problem: problem.into(),
        }
    }

    pub fn cell(
        line: u64,
        column: usize,
        heading: &'static str,
        problem: impl Into<String>,
    ) -> Self {
        RowError {
            line,
            column: Some((column + 1, heading)),
            problem: problem.into(),
        }
    }
}

/// The file's bytes as they pass, for its SHA-256 and, for CSV, the line
/// each record starts on.
pub struct Source<R> {
    inner: R,
    sha256: Rc<RefCell<Sha256>>,
    breaks: Option<Rc<RefCell<Breaks>>>,
    offset: u64,
}

impl<R: Read> Source<R> {
    pub fn new(inner: R) -> Source<R> {
        Source {
            inner,
            sha256: Rc::new(RefCell::new(Sha256::new())),
            breaks: None,
            offset: 0,
        }
    }

    /// The digest, read after the parser is done with the stream.
    pub fn digest(&self) -> Digest256 {
        Digest256(self.sha256.clone())
    }

    /// Records the line breaks read, for [`Lines::at`].
    pub fn lines(&mut self) -> Lines {
        let breaks = Rc::new(RefCell::new(Breaks::default()));
        self.breaks = Some(breaks.clone());
        Lines(breaks)
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = &buf[..n];
        self.sha256.borrow_mut().update(read);
        if let Some(breaks) = &self.breaks {
            let mut b = breaks.borrow_mut();
            for (i, &byte) in read.iter().enumerate() {
                if byte == b'\n' || byte == b'\r' {
                    b.ahead.push_back((self.offset + i as u64, byte));
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The SHA-256 of what the [`Source`] has passed on.
pub struct Digest256(Rc<RefCell<Sha256>>);

impl Digest256 {
    pub fn hex(self) -> String {
        let sha = self.0.borrow().clone().finalize();
        sha.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The line breaks read but not yet passed by a record, and how many were.
#[derive(Default)]
struct Breaks {
    ahead: VecDeque<(u64, u8)>,
    newlines: u64,
}

/// The 1-based line of a byte offset, asked in increasing order (as the csv
/// crate reports its records). The csv crate's own line count skips the
/// breaks inside quoted cells, which CMS's headers have; this one counts
/// every LF. Memory: the breaks between the last record and the reader's
/// buffer end.
pub struct Lines(Rc<RefCell<Breaks>>);

impl Lines {
    pub fn at(&self, byte: u64) -> u64 {
        let mut b = self.0.borrow_mut();
        // The csv crate starts a record where the one before stopped: at
        // the line end (or the run of blank lines) that precedes it. Those
        // breaks end the lines before.
        let mut next = byte;
        while let Some(&(at, ch)) = b.ahead.front() {
            if at > next {
                break;
            }
            if at == next {
                next += 1;
            }
            b.ahead.pop_front();
            if ch == b'\n' {
                b.newlines += 1;
            }
        }
        b.newlines + 1
    }
}

/// A cell's bytes as Latin-1 text.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// The lines of a tab-separated file, each as Latin-1 text without its line
/// end, with its 1-based number.
pub fn text_lines(
    mut reader: impl BufRead,
) -> impl Iterator<Item = Result<(u64, String), RowError>> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    std::iter::from_fn(move || {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                line += 1;
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                Some(Ok((line, latin1(&buf))))
            }
            Err(e) => Some(Err(RowError::at(line + 1, format!("cannot read it: {e}")))),
        }
    })
}

/// The records of a CSV file (rows of any width), each with the line it
/// starts on. Linear in the file.
pub fn csv_records<R: Read>(
    mut source: Source<R>,
) -> impl Iterator<Item = Result<(u64, csv::ByteRecord), RowError>> {
    let lines = source.lines();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(source);
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut record = csv::ByteRecord::new();
        match reader.read_byte_record(&mut record) {
            Ok(false) => None,
            Ok(true) => {
                let line = record.position().map_or(0, |p| lines.at(p.byte()));
                Some(Ok((line, record)))
            }
            Err(e) => {
                done = true;
                let line = e.position().map_or(0, |p| lines.at(p.byte()));
                let problem = match e.kind() {
                    csv::ErrorKind::Io(io) => format!("cannot read it: {io}"),
                    _ => "not a valid CSV record (an unclosed quote: is the file truncated?)"
                        .to_owned(),
                };
                Some(Err(RowError::at(line, problem)))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str) -> Vec<u64> {
        csv_records(Source::new(text.as_bytes()))
            .map(|r| r.unwrap().0)
            .collect()
    }

    #[test]
    fn records_are_numbered_by_the_line_they_start_on() {
        assert_eq!(lines_of("a,b\nc,d\n"), [1, 2]);
        assert_eq!(lines_of("a,b\r\nc,d\r\ne\r\n"), [1, 2, 3]);
        // A quoted cell over two lines; a blank line.
        assert_eq!(lines_of("\"x\ny\",1\n\nz,2\n"), [1, 4]);
        assert_eq!(lines_of("\"x\r\ny\",1\r\n\r\nz,2\r\n"), [1, 4]);
        // Far apart: the buffer refills in between.
        let long = format!("a\n{}b\n", "\n".repeat(100_000));
        assert_eq!(lines_of(&long), [1, 100_002]);
    }

    #[test]
    fn the_digest_is_the_files() {
        let text = "a\tb\r\nc\td\n";
        let source = Source::new(text.as_bytes());
        let digest = source.digest();
        let lines: Vec<_> = text_lines(io::BufReader::new(source))
            .map(|l| l.unwrap())
            .collect();
        assert_eq!(lines, [(1, "a\tb".to_owned()), (2, "c\td".to_owned())]);
        let want: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest.hex(), want);
    }
}

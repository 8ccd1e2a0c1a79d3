//! Where killmail records come from in batch: JSON Lines files (plain, gzip or bzip2, detected by
//! their magic bytes), directories of them (recursively, sorted by path, only `.jsonl`, `.json`,
//! `.gz` and `.bz2` files) and `-` for standard input. A file may also hold one pretty-printed
//! JSON object, several concatenated ones, or a JSON array of them (detected by the first
//! non-space byte and the first line): each top-level value is then one record.
//!
//! Reading streams with one reused buffer, so memory stays constant in the size of a file
//! (bounded by the longest record, itself capped at `max_record_bytes`). Each [`Record`] says
//! where it came from: file and line (1-based) and byte offset in the decompressed stream, so a
//! backfill can resume from a position and a rejection can point at its line. Blank lines are
//! skipped. [`SourcePosition`] also names Kafka positions for the stream path.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a record was read: a file line, a stdin line or a Kafka message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourcePosition {
    File {
        path: PathBuf,
        line: u64,
    },
    Stdin {
        line: u64,
    },
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

impl fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourcePosition::File { path, line } => write!(f, "{}:{line}", path.display()),
            SourcePosition::Stdin { line } => write!(f, "<stdin>:{line}"),
            SourcePosition::Kafka {
                topic,
                partition,
                offset,
            } => write!(f, "{topic}/{partition}/{offset}"),
        }
    }
}

/// One input: a file or standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Stdin,
}

impl Origin {
    /// The position of `line` in this input.
    pub fn at_line(&self, line: u64) -> SourcePosition {
        match self {
            Origin::File(path) => SourcePosition::File {
                path: path.clone(),
                line,
            },
            Origin::Stdin => SourcePosition::Stdin { line },
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Stdin => f.write_str("<stdin>"),
        }
    }
}

/// One record's bytes (without its line end) and where it starts. Borrowed from the reader's
/// buffer until the next call of [`Sources::next_record`].
#[derive(Debug)]
pub struct Record<'a> {
    pub origin: &'a Origin,
    /// 1-based line where the record starts.
    pub line: u64,
    /// Byte offset of the record's start in the (decompressed) input.
    pub byte_offset: u64,
    pub bytes: &'a [u8],
    /// True when the record was longer than the maximum and `bytes` holds only its beginning.
    pub oversized: bool,
}

impl Record<'_> {
    pub fn position(&self) -> SourcePosition {
        self.origin.at_line(self.line)
    }
}

/// Failures of the inputs themselves (not of records, which are rejected one by one).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{origin}: read error after line {line}: {source}")]
    Read {
        origin: String,
        line: u64,
        source: io::Error,
    },
}

/// Default cap on one record's size: 16 MiB (real killmails are below 100 KiB).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 << 20;

/// File name endings picked up when walking a directory.
const DIRECTORY_EXTENSIONS: [&str; 4] = ["jsonl", "json", "gz", "bz2"];

/// Expands `paths` (files, directories, `-`) into inputs; fails on a path that does not exist.
pub fn open_sources<P: AsRef<Path>>(paths: &[P]) -> Result<Sources, SourceError> {
    let mut inputs = VecDeque::new();
    for p in paths {
        let p = p.as_ref();
        if p == Path::new("-") {
            inputs.push_back(Origin::Stdin);
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|source| SourceError::Open {
            path: p.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files)?;
            files.sort();
            inputs.extend(files.into_iter().map(Origin::File));
        } else {
            inputs.push_back(Origin::File(p.to_path_buf()));
        }
    }
    Ok(Sources {
        total_inputs: inputs.len(),
        inputs,
        current: None,
        buf: Vec::with_capacity(64 << 10),
        max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        bytes_read: 0,
    })
}

/// Files under `dir` with an accepted ending; symlinked directories are not followed.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let open_err = |source| SourceError::Open {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(open_err)? {
        let entry = entry.map_err(open_err)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(open_err)?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| DIRECTORY_EXTENSIONS.contains(&e))
            && std::fs::metadata(&path).is_ok_and(|m| m.is_file())
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The records of a list of inputs, one after the other.
pub struct Sources {
    inputs: VecDeque<Origin>,
    total_inputs: usize,
    current: Option<Reader>,
    buf: Vec<u8>,
    max_record_bytes: usize,
    bytes_read: u64,
}

impl Sources {
    /// Caps the size of one record (longer ones come out cut, marked `oversized`).
    pub fn with_max_record_bytes(mut self, max: usize) -> Sources {
        self.max_record_bytes = max.max(1);
        self
    }

    /// Number of inputs (files and stdin) after directory expansion.
    pub fn input_count(&self) -> usize {
        self.total_inputs
    }

    /// Decompressed bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read + self.current.as_ref().map_or(0, |r| r.offset)
    }

    /// The next record, `None` at the end of the last input. After an error the failing input
    /// is abandoned and the next call continues with the following one.
    pub fn next_record(&mut self) -> Option<Result<Record<'_>, SourceError>> {
        loop {
            if self.current.is_none() {
                let origin = self.inputs.pop_front()?;
                match Reader::open(origin) {
                    Ok(reader) => self.current = Some(reader),
                    Err(e) => return Some(Err(e)),
                }
            }
            let reader = self.current.as_mut().expect("set above");
            match reader.next(&mut self.buf, self.max_record_bytes) {
                Ok(Some(meta)) => {
                    let reader = self.current.as_ref().expect("set above");
                    return Some(Ok(Record {
                        origin: &reader.origin,
                        line: meta.line,
                        byte_offset: meta.offset,
                        bytes: &self.buf,
                        oversized: meta.oversized,
                    }));
                }
                Ok(None) => {
                    self.bytes_read += reader.offset;
                    self.current = None;
                }
                Err(source) => {
                    self.bytes_read += reader.offset;
                    let reader = self.current.take().expect("set above");
                    return Some(Err(SourceError::Read {
                        origin: reader.origin.to_string(),
                        line: reader.line,
                        source,
                    }));
                }
            }
        }
    }
}

/// Where a record starts.
struct Meta {
    line: u64,
    offset: u64,
    oversized: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Nothing read yet.
    Start,
    /// One record per line.
    Lines,
    /// Top-level JSON values, possibly inside an array.
    Values { in_array: bool },
}

/// One open input.
struct Reader {
    origin: Origin,
    input: Box<dyn BufRead + Send>,
    mode: Mode,
    /// 1-based line of the next unread byte.
    line: u64,
    /// Offset of the next unread byte.
    offset: u64,
}

const READ_BUFFER: usize = 64 << 10;

impl Reader {
    fn open(origin: Origin) -> Result<Reader, SourceError> {
        let input: Box<dyn BufRead + Send> = match &origin {
            Origin::File(path) => {
                let file = File::open(path).map_err(|source| SourceError::Open {
                    path: path.clone(),
                    source,
                })?;
                decompressed(BufReader::with_capacity(READ_BUFFER, file)).map_err(|source| {
                    SourceError::Open {
                        path: path.clone(),
                        source,
                    }
                })?
            }
            Origin::Stdin => decompressed(BufReader::with_capacity(READ_BUFFER, io::stdin()))
                .map_err(|source| SourceError::Open {
                    path: PathBuf::from("-"),
                    source,
                })?,
        };
        Ok(Reader {
            origin,
            input,
            mode: Mode::Start,
            line: 1,
            offset: 0,
        })
    }

    fn next(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<Meta>> {
        if self.mode == Mode::Start {
            self.skip_while(|b| b.is_ascii_whitespace() || matches!(b, 0xEF | 0xBB | 0xBF))?;
            let first = self.input.fill_buf()?.first().copied();
            self.mode = match first {
                None => return Ok(None),
                Some(b'[') => {
                    self.consume(1);
                    Mode::Values { in_array: true }
                }
                Some(b'{') => return self.first_object(buf, max),
                Some(_) => Mode::Lines,
            };
        }
        match self.mode {
            Mode::Lines => self.next_line(buf, max),
            Mode::Values { .. } => self.next_value(buf, max),
            Mode::Start => unreachable!("mode chosen above"),
        }
    }

    /// The first record of an input starting with `{`: if its first line is a complete value the
    /// input is JSON Lines, otherwise it is pretty-printed and read value by value.
    fn first_object(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<Meta>> {
        self.mode = Mode::Lines;
        let Some(meta) = self.next_line(buf, max)? else {
            return Ok(None);
        };
        let mut scanner = Scanner::default();
        let complete = buf.iter().any(|&b| scanner.feed(b) != Feed::More);
        if complete || meta.oversized {
            return Ok(Some(meta));
        }
        self.mode = Mode::Values { in_array: false };
        buf.push(b'\n');
        let oversized = self.read_value_rest(buf, max, &mut scanner)?;
        Ok(Some(Meta { oversized, ..meta }))
    }

    fn consume(&mut self, n: usize) {
        self.input.consume(n);
        self.offset += n as u64;
    }

    /// Consumes bytes while `keep` holds, counting lines.
    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) -> io::Result<()> {
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                return Ok(());
            }
            let n = chunk.iter().position(|&b| !keep(b)).unwrap_or(chunk.len());
            self.line += count_newlines(&chunk[..n]);
            let done = n < chunk.len();
            self.consume(n);
            if done {
                return Ok(());
            }
        }
    }

    /// The next non-blank line.
    fn next_line(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<Meta>> {
        loop {
            buf.clear();
            let line = self.line;
            let offset = self.offset;
            let n = (&mut self.input)
                .take(max as u64 + 1)
                .read_until(b'\n', buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.offset += n as u64;
            let mut oversized = false;
            if buf.last() == Some(&b'\n') {
                buf.pop();
                self.line += 1;
            } else if buf.len() > max {
                oversized = true;
                buf.truncate(max);
                let skipped = self.input.skip_until(b'\n')?;
                self.offset += skipped as u64;
                self.line += 1;
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            if oversized || !buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(Meta {
                    line,
                    offset,
                    oversized,
                }));
            }
        }
    }

    /// The next top-level value of a pretty-printed input or array.
    fn next_value(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<Meta>> {
        buf.clear();
        let Mode::Values { mut in_array } = self.mode else {
            unreachable!("called in value mode")
        };
        // Separators between values: whitespace, commas, array brackets.
        let first = loop {
            self.skip_while(|b| b.is_ascii_whitespace() || b == b',')?;
            match self.input.fill_buf()?.first().copied() {
                None => return Ok(None),
                Some(b']') if in_array => {
                    in_array = false;
                    self.consume(1);
                }
                Some(b'[') if !in_array => {
                    in_array = true;
                    self.consume(1);
                }
                Some(b) => break b,
            }
        };
        self.mode = Mode::Values { in_array };
        let meta = Meta {
            line: self.line,
            offset: self.offset,
            oversized: false,
        };
        let mut scanner = Scanner::default();
        buf.push(first);
        self.consume(1);
        if scanner.feed(first) != Feed::More {
            return Ok(Some(meta));
        }
        let oversized = self.read_value_rest(buf, max, &mut scanner)?;
        Ok(Some(Meta { oversized, ..meta }))
    }

    /// Appends bytes to `buf` until `scanner` sees the value end (or the input ends: the partial
    /// value is then the record, and parsing will reject it). True if the value was cut at `max`.
    fn read_value_rest(
        &mut self,
        buf: &mut Vec<u8>,
        max: usize,
        scanner: &mut Scanner,
    ) -> io::Result<bool> {
        let mut oversized = buf.len() > max;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            let mut end = chunk.len();
            let mut done = false;
            for (i, &b) in chunk.iter().enumerate() {
                match scanner.feed(b) {
                    Feed::More => {}
                    Feed::DoneWith => {
                        end = i + 1;
                        done = true;
                        break;
                    }
                    Feed::DoneBefore => {
                        end = i;
                        done = true;
                        break;
                    }
                }
            }
            let room = max.saturating_sub(buf.len());
            if end > room {
                oversized = true;
            }
            buf.extend_from_slice(&chunk[..end.min(room)]);
            self.line += count_newlines(&chunk[..end]);
            self.consume(end);
            if done {
                break;
            }
        }
        if oversized {
            buf.truncate(max);
        }
        Ok(oversized)
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Wraps `input` in a gzip or bzip2 decoder when its first bytes say so.
fn decompressed<R: BufRead + Send + 'static>(mut input: R) -> io::Result<Box<dyn BufRead + Send>> {
    let head = input.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::bufread::MultiGzDecoder::new(input);
        Ok(Box::new(BufReader::with_capacity(READ_BUFFER, decoder)))
    } else if head.starts_with(b"BZh") {
        let decoder = bzip2::bufread::MultiBzDecoder::new(input);
        Ok(Box::new(BufReader::with_capacity(READ_BUFFER, decoder)))
    } else {
        Ok(Box::new(input))
    }
}

/// Result of feeding one byte to a [`Scanner`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Feed {
    More,
    /// The value ends with this byte.
    DoneWith,
    /// The value ended just before this byte (scalars end at a delimiter).
    DoneBefore,
}

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
enum Kind {
    #[default]
    Unknown,
    Container,
    String,
    Scalar,
}

/// Finds where one JSON value ends, byte by byte, without parsing it: brackets outside strings
/// for objects and arrays, the closing quote for strings, a delimiter for anything else.
#[derive(Default)]
struct Scanner {
    kind: Kind,
    depth: u32,
    in_string: bool,
    escape: bool,
}

impl Scanner {
    fn feed(&mut self, b: u8) -> Feed {
        if self.kind == Kind::Unknown {
            self.kind = match b {
                b'{' | b'[' => {
                    self.depth = 1;
                    Kind::Container
                }
                b'"' => {
                    self.in_string = true;
                    Kind::String
                }
                _ => Kind::Scalar,
            };
            return Feed::More;
        }
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.kind == Kind::String {
                    return Feed::DoneWith;
                }
            }
            return Feed::More;
        }
        match self.kind {
            Kind::Scalar => {
                if b.is_ascii_whitespace() || matches!(b, b',' | b'[' | b']' | b'{' | b'}') {
                    Feed::DoneBefore
                } else {
                    Feed::More
                }
            }
            Kind::Container => {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            return Feed::DoneWith;
                        }
                    }
                    _ => {}
                }
                Feed::More
            }
            Kind::String | Kind::Unknown => unreachable!("strings handled above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// (line, offset, text, oversized) of every record of `paths`.
    fn records(paths: &[PathBuf], max: usize) -> Vec<(u64, u64, String, bool)> {
        let mut s = open_sources(paths).unwrap().with_max_record_bytes(max);
        let mut out = Vec::new();
        while let Some(r) = s.next_record() {
            let r = r.unwrap();
            out.push((
                r.line,
                r.byte_offset,
                String::from_utf8_lossy(r.bytes).into_owned(),
                r.oversized,
            ));
        }
        out
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn json_lines_skip_blank_lines_and_keep_positions() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.jsonl",
            b"{\"a\":1}\n\n  \r\n{\"b\":2}\r\nnot json\n{\"c\":3}",
        );
        let r = records(&[p], 1024);
        assert_eq!(
            r,
            vec![
                (1, 0, "{\"a\":1}".into(), false),
                (4, 13, "{\"b\":2}".into(), false),
                (5, 22, "not json".into(), false),
                (6, 31, "{\"c\":3}".into(), false),
            ]
        );
    }

    #[test]
    fn pretty_objects_and_arrays_are_split_into_values() {
        let dir = tempfile::tempdir().unwrap();
        let pretty = write(
            dir.path(),
            "p.json",
            b"\n{\n  \"a\": \"}{\\\"\",\n  \"b\": [1, {}]\n}\n{\"c\": 1}\n",
        );
        let r = records(&[pretty], 1024);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, 2);
        assert_eq!(r[0].2, "{\n  \"a\": \"}{\\\"\",\n  \"b\": [1, {}]\n}");
        assert_eq!((r[1].0, r[1].2.as_str()), (6, "{\"c\": 1}"));

        let array = write(
            dir.path(),
            "a.json",
            b" [{\"a\":1},\n {\"b\":[2]} , 3, \"x\"]\n",
        );
        let r = records(&[array], 1024);
        let texts: Vec<&str> = r.iter().map(|x| x.2.as_str()).collect();
        assert_eq!(texts, ["{\"a\":1}", "{\"b\":[2]}", "3", "\"x\""]);
        assert_eq!(r[1].0, 2);
    }

    #[test]
    fn truncated_pretty_value_is_still_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "t.json", b"[{\"a\": [1, 2");
        let r = records(&[p], 1024);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].2, "{\"a\": [1, 2");
    }

    #[test]
    fn oversized_records_are_cut_and_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "big.jsonl", b"{\"a\":\"0123456789\"}\n{}\n");
        let r = records(&[p], 8);
        assert_eq!(r[0], (1, 0, "{\"a\":\"01".into(), true));
        assert_eq!(r[1], (2, 19, "{}".into(), false));
        let pretty = write(dir.path(), "big.json", b"[{\"a\":\"0123456789\"}, {}]");
        let r = records(&[pretty], 8);
        assert_eq!((r[0].2.as_str(), r[0].3), ("{\"a\":\"01", true));
        assert_eq!((r[1].2.as_str(), r[1].3), ("{}", false));
    }

    #[test]
    fn compressed_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"gz\":1}\n").unwrap();
        let mut gz_bytes = gz.finish().unwrap();
        // A second gzip member (concatenated files) must be read too.
        let mut gz2 = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz2.write_all(b"{\"gz\":2}\n").unwrap();
        gz_bytes.extend(gz2.finish().unwrap());
        write(&sub, "b.jsonl.gz", &gz_bytes);
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(b"{\"bz\":1}\n").unwrap();
        write(dir.path(), "a.bz2", &bz.finish().unwrap());
        write(dir.path(), "c.json", b"{\"plain\":1}");
        write(dir.path(), "notes.txt", b"not a killmail file");
        let r = records(&[dir.path().to_path_buf()], 1024);
        let texts: Vec<&str> = r.iter().map(|x| x.2.as_str()).collect();
        assert_eq!(
            texts,
            ["{\"bz\":1}", "{\"plain\":1}", "{\"gz\":1}", "{\"gz\":2}"]
        );
    }

    #[test]
    fn missing_path_fails_to_open_and_corrupt_input_is_an_error() {
        assert!(matches!(
            open_sources(&["/nonexistent/killmails.jsonl"]),
            Err(SourceError::Open { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let bad = write(
            dir.path(),
            "bad.gz",
            &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3],
        );
        let good = write(dir.path(), "good.jsonl", b"{}\n");
        let mut s = open_sources(&[bad, good]).unwrap();
        assert!(matches!(
            s.next_record(),
            Some(Err(SourceError::Read { .. }))
        ));
        assert_eq!(s.next_record().unwrap().unwrap().bytes, b"{}");
        assert!(s.next_record().is_none());
    }

    #[test]
    fn positions_display() {
        let f = SourcePosition::File {
            path: "x/y.jsonl".into(),
            line: 3,
        };
        assert_eq!(f.to_string(), "x/y.jsonl:3");
        let k = SourcePosition::Kafka {
            topic: "killmail.enriched".into(),
            partition: 2,
            offset: 991,
        };
        assert_eq!(k.to_string(), "killmail.enriched/2/991");
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<SourcePosition>(&json).unwrap(), k);
    }
}

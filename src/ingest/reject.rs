//! Why a record was not accepted ([`RejectReason`]), the kept dead letter ([`Rejection`]: reason,
//! source position, raw payload, time) and [`RejectsFile`], which appends rejections as JSON lines.
//!
//! The serde form of a reason is `{"code": "<code()>", "detail": ...}`, so a stored rejection can
//! be counted by its stable code and read back into the same type.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sources::SourcePosition;

/// Why a record was rejected. Field names are given as the input spelled them (for example
/// `victim.ship_type_id` in ESI records, `victim.shipTypeId` in enriched ones).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum RejectReason {
    /// Not parseable as JSON (the parser's message, with line and column inside the record).
    #[error("not valid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON, but none of the three accepted shapes.
    #[error("not a killmail in any accepted shape: {0}")]
    UnknownShape(String),
    /// A zKillboard block (values, hash) without the killmail itself, as zKillboard's `zkbOnly`
    /// API and RedisQ's reference-only packages send it: the killmail must be fetched from ESI.
    #[error("killmail {killmail_id}: only a zKillboard value block, not the killmail itself (fetch it from ESI by id and hash)")]
    ZkbOnly { killmail_id: i64 },
    /// A RedisQ poll answer with `"package": null` (no killmail was waiting).
    #[error("RedisQ package is null: the poll returned no killmail")]
    EmptyPackage,
    /// A required field is absent or null.
    #[error("required field `{0}` is missing or null")]
    MissingField(String),
    /// A field has the wrong JSON type or an out-of-range number.
    #[error("field `{0}` has the wrong type")]
    WrongType(String),
    /// The same key twice in one object.
    #[error("field `{0}` appears twice")]
    DuplicateField(String),
    /// The killmail time is not an RFC 3339 timestamp.
    #[error("killmail time `{0}` is not an RFC 3339 timestamp")]
    InvalidTimestamp(String),
    /// An id that must be positive is zero or negative.
    #[error("field `{0}` must be a positive id")]
    NonPositiveId(String),
    /// A damage, quantity or ISK value is negative.
    #[error("field `{0}` is negative")]
    NegativeValue(String),
    /// An ISK value or damage above the documented maximum
    /// (`battles_dataflow::killmail::MAX_ISK`, `MAX_DAMAGE`), so that no sum over a battle can
    /// wrap.
    #[error("field `{field}` is larger than the maximum of {max}")]
    ValueTooLarge { field: String, max: i64 },
    /// The killmail time is before EVE Online's launch (2003-05-06) or too far in the future.
    #[error("killmail time {time} is out of range (before 2003-05-06 or more than {max_skew_secs} s in the future)")]
    TimeOutOfRange {
        time: DateTime<Utc>,
        max_skew_secs: i64,
    },
    /// The solar system is not in the embedded SDE and the record gives no region.
    #[error("solar system {0} is unknown and the record gives no regionId")]
    UnknownSystem(i64),
    /// The attacker list is empty.
    #[error("the killmail has no attackers")]
    NoAttackers,
    /// A killmail with this id was already seen with different content.
    #[error("killmail {0} was already seen with different content")]
    ConflictingDuplicate(i64),
    /// The record is longer than the configured maximum (it was cut to that length).
    #[error("record longer than the maximum of {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
}

impl RejectReason {
    /// A stable short code for counting and storage (`missing_field`, `invalid_json`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::InvalidJson(_) => "invalid_json",
            RejectReason::UnknownShape(_) => "unknown_shape",
            RejectReason::ZkbOnly { .. } => "zkb_only",
            RejectReason::EmptyPackage => "empty_package",
            RejectReason::MissingField(_) => "missing_field",
            RejectReason::WrongType(_) => "wrong_type",
            RejectReason::DuplicateField(_) => "duplicate_field",
            RejectReason::InvalidTimestamp(_) => "invalid_timestamp",
            RejectReason::NonPositiveId(_) => "non_positive_id",
            RejectReason::NegativeValue(_) => "negative_value",
            RejectReason::ValueTooLarge { .. } => "value_too_large",
            RejectReason::TimeOutOfRange { .. } => "time_out_of_range",
            RejectReason::UnknownSystem(_) => "unknown_system",
            RejectReason::NoAttackers => "no_attackers",
            RejectReason::ConflictingDuplicate(_) => "conflicting_duplicate",
            RejectReason::TooLarge { .. } => "too_large",
        }
    }
}

/// A rejected record, kept so that nothing is lost and it can be replayed once fixed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub reason: RejectReason,
    pub position: SourcePosition,
    /// The raw record (invalid UTF-8 replaced by U+FFFD).
    pub raw: String,
    /// When it was rejected.
    pub at: DateTime<Utc>,
}

impl Rejection {
    /// A rejection of `raw`, stamped now.
    pub fn new(reason: RejectReason, position: SourcePosition, raw: &[u8]) -> Rejection {
        Rejection {
            reason,
            position,
            raw: String::from_utf8_lossy(raw).into_owned(),
            at: Utc::now(),
        }
    }
}

/// One line of a rejects file: the rejection plus its human message, for people reading it.
#[derive(Serialize)]
struct RejectsLine<'a> {
    message: String,
    #[serde(flatten)]
    rejection: &'a Rejection,
}

/// Appends rejections to a JSON Lines file (created if absent). Each line deserializes back
/// into a [`Rejection`] (the extra `message` field is ignored).
pub struct RejectsFile {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
}

impl RejectsFile {
    /// Opens `path` for appending.
    pub fn append(path: &Path) -> io::Result<RejectsFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RejectsFile {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            written: 0,
        })
    }

    /// The default rejects path beside an output file: `<out>.rejects.jsonl`.
    pub fn beside(output: &Path) -> PathBuf {
        let mut name = output.as_os_str().to_owned();
        name.push(".rejects.jsonl");
        PathBuf::from(name)
    }

    pub fn write(&mut self, rejection: &Rejection) -> io::Result<()> {
        let line = RejectsLine {
            message: rejection.reason.to_string(),
            rejection,
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Rejections written through this writer.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    #[test]
    fn reasons_serialize_with_their_code() {
        let r = RejectReason::MissingField("victim".into());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["code"], "missing_field");
        assert_eq!(json["detail"], "victim");
        assert_eq!(r.to_string(), "required field `victim` is missing or null");
        let back: RejectReason = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let unit = serde_json::to_value(RejectReason::NoAttackers).unwrap();
        assert_eq!(unit["code"], RejectReason::NoAttackers.code());
    }

    #[test]
    fn rejects_file_lines_read_back_as_rejections() {
        let dir = tempfile::tempdir().unwrap();
        let path = RejectsFile::beside(&dir.path().join("out.jsonl"));
        assert!(path.ends_with("out.jsonl.rejects.jsonl"));
        let rejection = Rejection::new(
            RejectReason::UnknownSystem(31999999),
            SourcePosition::File {
                path: "a/b.jsonl".into(),
                line: 7,
            },
            b"{\"x\":\xff}",
        );
        let mut file = RejectsFile::append(&path).unwrap();
        file.write(&rejection).unwrap();
        file.write(&rejection).unwrap();
        file.flush().unwrap();
        assert_eq!(file.written(), 2);
        let lines: Vec<String> = std::io::BufReader::new(File::open(&path).unwrap())
            .lines()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines.len(), 2);
        let back: Rejection = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(back, rejection);
        assert!(back.raw.contains('\u{fffd}'));
        assert!(lines[0].contains("\"message\":\"solar system 31999999 is unknown"));
    }
}

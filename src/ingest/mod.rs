//! Killmail ingest: one record's bytes (a file line, a Kafka message) in, a validated and
//! enriched [`Killmail`] or a typed [`RejectReason`] out. The three input shapes of
//! `killmail-input.md` (enriched camelCase, ESI snake_case with optional `zkb`, zKillboard RedisQ
//! package) are detected per record and read in a single borrowed serde pass.
//!
//! Call [`parse_record`] with an [`IngestContext`]; run accepted killmails through a
//! [`Deduplicator`]; keep every refusal as a [`Rejection`] (for files, in a [`RejectsFile`]).

mod convert;
pub mod dedup;
mod diagnose;
mod raw;
pub mod reject;
pub mod time;
pub mod value;

use std::fmt;

use battles_dataflow::{Killmail, Universe};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub use dedup::{Deduplicator, Seen};
pub use reject::{RejectReason, Rejection, RejectsFile};

/// The input shape a record was read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// camelCase, as the Enrichment domain publishes on `killmail.enriched`.
    Enriched,
    /// CCP's ESI killmail (snake_case), optionally with a zKillboard `zkb` block beside it.
    Esi,
    /// zKillboard RedisQ package `{"package": {"killID", "killmail", "zkb"}}`.
    RedisQ,
}

impl Shape {
    pub const ALL: [Shape; 3] = [Shape::Enriched, Shape::Esi, Shape::RedisQ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Enriched => "enriched",
            Shape::Esi => "esi",
            Shape::RedisQ => "redisq",
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What parsing needs besides the bytes: reference data and the accepted time range.
#[derive(Clone, Debug)]
pub struct IngestContext {
    pub universe: &'static Universe,
    /// How far in the future a killmail time may be (clock skew between us and the source).
    pub max_future_skew: Duration,
    /// A fixed "now" (tests, replays of old captures); `None` reads the clock per record.
    pub fixed_now: Option<DateTime<Utc>>,
}

/// Default allowed future skew of killmail times: one hour.
pub const DEFAULT_TIME_SKEW_SECS: u64 = 3600;

impl Default for IngestContext {
    fn default() -> Self {
        IngestContext::new(DEFAULT_TIME_SKEW_SECS)
    }
}

impl IngestContext {
    /// The embedded universe and a future skew of `max_future_skew_secs` seconds.
    pub fn new(max_future_skew_secs: u64) -> IngestContext {
        IngestContext {
            universe: Universe::embedded(),
            max_future_skew: Duration::seconds(
                max_future_skew_secs.min(i64::MAX as u64 / 1000) as i64
            ),
            fixed_now: None,
        }
    }

    /// The current time as this context sees it.
    pub fn now(&self) -> DateTime<Utc> {
        self.fixed_now.unwrap_or_else(Utc::now)
    }
}

/// An accepted record.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub killmail: Killmail,
    pub shape: Shape,
}

/// Parses, validates and enriches one record (one JSON object, surrounding whitespace allowed).
pub fn parse_record(bytes: &[u8], ctx: &IngestContext) -> Result<Parsed, RejectReason> {
    // Validating UTF-8 once for the whole record is much cheaper than serde_json's check of
    // every string; records that are not UTF-8 take the byte path (which rejects bad strings).
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str::<raw::RawRecord>(text),
        Err(_) => serde_json::from_slice::<raw::RawRecord>(bytes),
    };
    let raw = match parsed {
        Ok(raw) => raw,
        Err(e) => return Err(diagnose::diagnose(bytes, e)),
    };
    let (killmail, shape) = convert::convert(raw, ctx)?;
    Ok(Parsed { killmail, shape })
}

//! What the sink is asked to write for one completed engine step: the consolidated battle report
//! changes, the killmails consumed or retracted, the rejected records, the source positions
//! reached and how to set each battle's status. One `StepChanges` is one transaction.

use std::sync::Arc;

use battles_dataflow::killmail::{Killmail, KillmailId};
use battles_dataflow::BattleChange;

use crate::jobs::JobStep;
use chrono::{DateTime, Duration, Utc};

/// The changes of one completed step.
#[derive(Clone, Debug, Default)]
pub struct StepChanges {
    /// The engine's changes of this step: created, updated and ended battles, each ended one
    /// with the battle that continues it (which the sink stores as an alias).
    pub battles: Vec<BattleChange>,
    /// Killmails consumed in this step (stored for restarts; duplicates are ignored). Shared
    /// with the engine, which holds the same killmails.
    pub killmails_inserted: Vec<Arc<Killmail>>,
    /// Killmails withdrawn upstream in this step (removed from the store before inserts, so a
    /// retraction plus an insert of the same id replaces the record).
    pub killmails_retracted: Vec<KillmailId>,
    /// Records that could not become a killmail.
    pub rejections: Vec<RejectionRow>,
    /// Source key (`file:/path`, `kafka:topic:partition`) -> position reached.
    pub offsets: Vec<(String, i64)>,
    /// How written battles get their `status`.
    pub status: StatusRule,
    /// Write no `battle_events_outbox` rows for this step. Backfills of history set it: a year
    /// of historical battles is not news for `battle.events` consumers, and the outbox would
    /// hold millions of rows nobody publishes.
    pub suppress_events: bool,
    /// The re-clustering job this step is a slice of: its progress is recorded in the same
    /// transaction.
    pub job: Option<JobStep>,
    /// The caller's promise that the created battles and the inserted killmails are not
    /// stored yet (a backfill writing each battle once, a live step whose killmails were
    /// checked against the store): the sink `COPY`s them and upserts only the rest. A broken
    /// promise costs a second try through the upserts, nothing else.
    pub rows_are_new: bool,
}

/// The `battles.status` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BattleStatus {
    Open,
    Closed,
    Historical,
}

impl BattleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BattleStatus::Open => "open",
            BattleStatus::Closed => "closed",
            BattleStatus::Historical => "historical",
        }
    }

    pub fn parse(s: &str) -> Option<BattleStatus> {
        match s {
            "open" => Some(BattleStatus::Open),
            "closed" => Some(BattleStatus::Closed),
            "historical" => Some(BattleStatus::Historical),
            _ => None,
        }
    }
}

/// How the sink sets `battles.status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusRule {
    /// Backfill: every written battle is `historical`.
    #[default]
    Historical,
    /// Live: a battle is `closed` once its last killmail is `close_after` or more older than the
    /// event-time `watermark`, else `open`. Battles already stored as `open` that the watermark
    /// now closes are closed in the same transaction (and a `battle.updated` event says so).
    Watermark {
        watermark: DateTime<Utc>,
        close_after: Duration,
        /// Close the stored `open` battles the watermark passed, in this transaction (false
        /// for the parts a step splits off: their rest does it, alone).
        close_stored: bool,
    },
}

impl StatusRule {
    /// The live rule of `watermark`, closing stored battles too.
    pub fn watermark(watermark: DateTime<Utc>, close_after: Duration) -> StatusRule {
        StatusRule::Watermark {
            watermark,
            close_after,
            close_stored: true,
        }
    }

    /// The same statuses for the battles written, leaving other stored battles alone.
    pub fn without_closing(self) -> StatusRule {
        match self {
            StatusRule::Watermark {
                watermark,
                close_after,
                ..
            } => StatusRule::Watermark {
                watermark,
                close_after,
                close_stored: false,
            },
            other => other,
        }
    }

    /// The status of a battle whose last killmail happened at `last_killmail_at`.
    pub fn status_of(&self, last_killmail_at: DateTime<Utc>) -> BattleStatus {
        match *self {
            StatusRule::Historical => BattleStatus::Historical,
            StatusRule::Watermark {
                watermark,
                close_after,
                ..
            } => {
                if last_killmail_at + close_after <= watermark {
                    BattleStatus::Closed
                } else {
                    BattleStatus::Open
                }
            }
        }
    }
}

/// A record that could not become a killmail (a `rejected_killmails` row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectionRow {
    /// The record as received (lossy UTF-8 when it was not text).
    pub raw_payload: String,
    /// A stable machine-readable reason (`invalid_json`, `missing_field`, ...).
    pub reason_code: String,
    pub reason_message: String,
    pub source: SourcePosition,
    pub received_at: DateTime<Utc>,
}

/// Where a record came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourcePosition {
    /// A line (1-based) of a file.
    File { path: String, line: u64 },
    /// A Kafka message.
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// Anything else (stdin, an HTTP request, ...), described in words.
    Other(String),
}

impl SourcePosition {
    /// `file`, `kafka` or `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourcePosition::File { .. } => "file",
            SourcePosition::Kafka { .. } => "kafka",
            SourcePosition::Other(_) => "other",
        }
    }
}

impl std::fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourcePosition::File { path, line } => write!(f, "file:{path}:{line}"),
            SourcePosition::Kafka {
                topic,
                partition,
                offset,
            } => write!(f, "kafka:{topic}:{partition}:{offset}"),
            SourcePosition::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_closes_battles_quiet_long_enough() {
        let t = DateTime::parse_from_rfc3339("2025-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let rule = StatusRule::watermark(t, Duration::minutes(30));
        assert_eq!(
            rule.status_of(t - Duration::minutes(30)),
            BattleStatus::Closed
        );
        assert_eq!(
            rule.status_of(t - Duration::minutes(29)),
            BattleStatus::Open
        );
        assert_eq!(
            StatusRule::Historical.status_of(t),
            BattleStatus::Historical
        );
    }

    #[test]
    fn source_positions_print_as_keys() {
        let f = SourcePosition::File {
            path: "/d/x.jsonl.gz".into(),
            line: 12,
        };
        assert_eq!(f.to_string(), "file:/d/x.jsonl.gz:12");
        assert_eq!(f.kind(), "file");
        let k = SourcePosition::Kafka {
            topic: "killmail.enriched".into(),
            partition: 3,
            offset: 99,
        };
        assert_eq!(k.to_string(), "kafka:killmail.enriched:3:99");
    }
}

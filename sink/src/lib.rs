//! PostgreSQL writes of battle changes, migrations, offsets and the battle event outbox.
//!
//! - [`migrate()`]: the embedded, versioned schema (`migrations/`), applied idempotently.
//! - [`Sink`]: a pooled writer whose [`Sink::apply`] writes one engine step
//!   ([`StepChanges`]) in one transaction, retrying while PostgreSQL is away.
//! - [`server`]: finds a PostgreSQL server or starts a private one.
//! - [`bulk`]: bulk-load mode, indexes and keys dropped while a backfill fills an empty
//!   database ([`Sink::begin_bulk_load`], [`BulkLoad::finish`]) and repaired after a crash.
//! - [`derived`]: the statistics of one-killmail battles, rebuilt from their rows, not stored.
//! - [`record`]: the stored form of a killmail (bincode, older rows JSON).
//! - [`split`]: a step cut into transactions that commit on connections of their own.
//! - [`TestDatabase`]: a throwaway, migrated database for tests.

pub mod bulk;
pub mod changes;
mod copy;
pub mod derived;
pub mod error;
pub mod events;
pub mod jobs;
mod load;
pub mod migrate;
mod outbox;
mod plan;
pub mod record;
pub mod retention;
pub mod row_ids;
pub mod server;
mod sink;
pub mod split;
pub mod testdb;
pub mod text;
mod write;

pub use bulk::{
    repair_interrupted_bulk_load, schema_fingerprint, BulkLoad, BulkLoadOptions, BulkReport,
    DroppedKind, DroppedObject, RebuiltObject, RepairOutcome, BULK_TABLES,
};
pub use changes::{BattleStatus, RejectionRow, SourcePosition, StatusRule, StepChanges};
pub use error::SinkError;
pub use jobs::{Job, JobKind, JobQueue, JobStep, Priority};
pub use migrate::{ensure_database, migrate, migrate_to, prepare_database};
pub use outbox::{PendingEvent, PendingEvents};
pub use retention::{Purged, SoftDeleted, RETENTION_REASON};
pub use sink::{RetryPolicy, Sink, SinkConfig, WriterLock};
pub use split::{balance_created, Group, SplitStep, MIN_PART_KILLMAILS};
pub use testdb::TestDatabase;
pub use write::{AppliedStats, ReferenceChecks};

/// The PostgreSQL client the sink uses, for callers that query the database directly.
pub use tokio_postgres;

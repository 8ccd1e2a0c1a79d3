//! Data retention: battles that ended before a cutoff are soft-deleted (`deleted_at`,
//! `deletion_reason`) with a `battle.deleted` event each; their participants, killmails and
//! statistics go with them, hidden from every API answer (which reads live battles only) until
//! a purge removes the soft-deleted rows and their stored killmails for good.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::SinkError;
use crate::events::removed_event;
use crate::jobs::RECORD_JOB_STEP;
use crate::sink::{with_retry, Sink};
use crate::write::insert_events;

/// The `deletion_reason` of battles removed by retention.
pub const RETENTION_REASON: &str = "retention";

/// What one retention transaction soft-deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SoftDeleted {
    pub battles: Vec<Uuid>,
    /// The killmails those battles hold.
    pub killmails: HashSet<i64>,
}

/// What a purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub battles: u64,
    pub killmails: u64,
}

const SOFT_DELETE: &str = "
WITH gone AS (
  SELECT id FROM battles WHERE deleted_at IS NULL AND ended_at < $1
  ORDER BY ended_at, id LIMIT $2 FOR UPDATE)
UPDATE battles b SET deleted_at = now(), deletion_reason = $3, updated_at = now()
FROM gone WHERE b.id = gone.id
RETURNING b.id";

const PURGE: &str = "
WITH gone AS (
  SELECT id FROM battles WHERE deleted_at IS NOT NULL AND deleted_at < $1
  ORDER BY deleted_at, id LIMIT $2 FOR UPDATE),
stored AS (
  DELETE FROM killmails WHERE killmail_id IN (
    SELECT bk.killmail_id FROM battle_killmails bk JOIN gone ON gone.id = bk.battle_id)
  RETURNING 1),
removed AS (DELETE FROM battles WHERE id IN (SELECT id FROM gone) RETURNING 1)
SELECT (SELECT count(*) FROM removed), (SELECT count(*) FROM stored)";

impl Sink {
    /// Soft-deletes at most `limit` live battles that ended before `cutoff`, oldest first, in
    /// one transaction with their `battle.deleted` events (unless `suppress_events`) and, with
    /// `job`, the job's `battles_deleted` count. Call again until it deletes none.
    pub async fn soft_delete_battles_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
        job: Option<Uuid>,
        suppress_events: bool,
    ) -> Result<SoftDeleted, SinkError> {
        with_retry(self.config().retry, "retention", || async {
            let mut client = self.pool().get().await?;
            let tx = client.transaction().await?;
            let ids: Vec<Uuid> = tx
                .query(SOFT_DELETE, &[&cutoff, &limit, &RETENTION_REASON])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if !suppress_events {
                let now = Utc::now();
                let events = ids
                    .iter()
                    .map(|id| removed_event(*id, RETENTION_REASON, now))
                    .collect();
                insert_events(&tx, events).await?;
            }
            if let Some(job) = job {
                let deleted = ids.len() as i64;
                tx.execute(RECORD_JOB_STEP, &[&job, &0i64, &0i64, &0i64, &deleted])
                    .await?;
            }
            let killmails: HashSet<i64> = tx
                .query(
                    "SELECT killmail_id FROM battle_killmails WHERE battle_id = ANY($1)",
                    &[&ids],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.commit().await?;
            Ok(SoftDeleted {
                battles: ids,
                killmails,
            })
        })
        .await
    }

    /// Removes for good at most `limit` battles soft-deleted before `before`, with their child
    /// rows and their stored killmails, in one transaction. Call again until it removes none.
    pub async fn purge_deleted_battles(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Purged, SinkError> {
        with_retry(self.config().retry, "purge", || async {
            let client = self.pool().get().await?;
            let row = client.query_one(PURGE, &[&before, &limit]).await?;
            Ok(Purged {
                battles: row.get::<_, i64>(0) as u64,
                killmails: row.get::<_, i64>(1) as u64,
            })
        })
        .await
    }
}

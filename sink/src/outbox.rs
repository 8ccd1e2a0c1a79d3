//! Reading the event outbox for publishing: the oldest unpublished events, coalesced so that a
//! storm of updates to one big battle becomes one event, and marking them published once the
//! broker has them (at-least-once: a crash between the two re-sends, and consumers deduplicate
//! by `eventId`).

use serde_json::Value;
use uuid::Uuid;

use crate::error::SinkError;
use crate::sink::{with_retry, Sink};

/// One event to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub battle_id: Uuid,
    pub payload: Value,
}

/// Unpublished events, oldest first, and the outbox rows they stand for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PendingEvents {
    /// What to send, in outbox order.
    pub events: Vec<PendingEvent>,
    /// Every row read, sent or coalesced away: all of them are published once `events` are.
    pub row_ids: Vec<i64>,
}

impl PendingEvents {
    /// Keeps, of each battle's `battle.updated` events, only the newest: it says everything the
    /// older ones said. `battle.created` and `battle.deleted` are always kept.
    fn coalesce(rows: Vec<(i64, PendingEvent)>) -> PendingEvents {
        let mut newest_update = std::collections::HashMap::new();
        for (i, (_, e)) in rows.iter().enumerate() {
            if e.event_type == "battle.updated" {
                newest_update.insert(e.battle_id, i);
            }
        }
        let mut out = PendingEvents::default();
        for (i, (id, e)) in rows.into_iter().enumerate() {
            out.row_ids.push(id);
            let superseded = e.event_type == "battle.updated" && newest_update[&e.battle_id] != i;
            if !superseded {
                out.events.push(e);
            }
        }
        out
    }
}

impl Sink {
    /// Up to `limit` of the oldest unpublished outbox rows, coalesced.
    pub async fn pending_events(&self, limit: i64) -> Result<PendingEvents, SinkError> {
        with_retry(self.config().retry, "read the event outbox", || async {
            let client = self.pool().get().await?;
            let rows = client
                .query(
                    "SELECT id, event_id, event_type, battle_id, payload FROM battle_events_outbox
                     WHERE published_at IS NULL ORDER BY id LIMIT $1",
                    &[&limit],
                )
                .await?;
            let rows = rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, i64>(0),
                        PendingEvent {
                            event_id: r.get(1),
                            event_type: r.get(2),
                            battle_id: r.get(3),
                            payload: r.get(4),
                        },
                    )
                })
                .collect();
            Ok(PendingEvents::coalesce(rows))
        })
        .await
    }

    /// Marks outbox rows published.
    pub async fn mark_published(&self, row_ids: &[i64]) -> Result<u64, SinkError> {
        with_retry(self.config().retry, "mark events published", || async {
            let client = self.pool().get().await?;
            Ok(client
                .execute(
                    "UPDATE battle_events_outbox SET published_at = now()
                     WHERE id = ANY($1) AND published_at IS NULL",
                    &[&row_ids],
                )
                .await?)
        })
        .await
    }

    /// Unpublished outbox rows (the relay's backlog).
    pub async fn outbox_backlog(&self) -> Result<i64, SinkError> {
        let client = self.pool().get().await?;
        Ok(client
            .query_one(
                "SELECT count(*) FROM battle_events_outbox WHERE published_at IS NULL",
                &[],
            )
            .await?
            .get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u128, kind: &str, battle: u128) -> PendingEvent {
        PendingEvent {
            event_id: Uuid::from_u128(n),
            event_type: kind.into(),
            battle_id: Uuid::from_u128(battle),
            payload: Value::Null,
        }
    }

    #[test]
    fn updates_to_one_battle_coalesce_to_the_newest() {
        let rows = vec![
            (1, event(1, "battle.created", 7)),
            (2, event(2, "battle.updated", 7)),
            (3, event(3, "battle.updated", 8)),
            (4, event(4, "battle.updated", 7)),
            (5, event(5, "battle.deleted", 8)),
        ];
        let out = PendingEvents::coalesce(rows);
        assert_eq!(out.row_ids, [1, 2, 3, 4, 5]);
        let sent: Vec<u128> = out.events.iter().map(|e| e.event_id.as_u128()).collect();
        assert_eq!(sent, [1, 3, 4, 5]);
    }
}

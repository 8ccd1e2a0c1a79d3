//! The battle events written to the outbox, in the spec's shape ("Event Publishing"):
//! `{eventId, eventType, timestamp, source: "battle-service", data: {...}}`. `battle.created`
//! and `battle.updated` carry the spec's data fields (system and region ids as strings, as the
//! spec writes them). `battle.deleted` (the spec asks for deletion events for downstream
//! services without fixing a shape) carries `battleId` and `continuingBattleId`: the battle it
//! merged into, or null when all its killmails were retracted.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::plan::EventData;

/// The service name events carry in `source`.
pub const EVENT_SOURCE: &str = "battle-service";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "battle.created",
            EventKind::Updated => "battle.updated",
            EventKind::Deleted => "battle.deleted",
        }
    }
}

/// One outbox row.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEvent {
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub battle_id: Uuid,
    pub payload: Value,
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn envelope(kind: EventKind, now: DateTime<Utc>, data: Value) -> (Uuid, Value) {
    let id = Uuid::new_v4();
    let payload = json!({
        "eventId": id,
        "eventType": kind.as_str(),
        "timestamp": timestamp(now),
        "source": EVENT_SOURCE,
        "data": data,
    });
    (id, payload)
}

/// A `battle.created` or `battle.updated` event.
pub(crate) fn battle_event(kind: EventKind, d: &EventData, now: DateTime<Utc>) -> OutboxEvent {
    let data = json!({
        "battleId": d.battle_id,
        "startedAt": timestamp(d.started_at),
        "endedAt": timestamp(d.ended_at),
        "primarySystemId": d.primary_system_id.to_string(),
        "primarySystemName": d.primary_system_name,
        "primaryRegionId": d.primary_region_id.to_string(),
        "primaryRegionName": d.primary_region_name,
        "totalKillmails": d.total_killmails,
        "totalPilots": d.total_pilots,
        "totalIskDestroyed": d.total_isk_destroyed,
        "status": d.status,
    });
    let (event_id, payload) = envelope(kind, now, data);
    OutboxEvent {
        event_id,
        event_type: kind.as_str(),
        battle_id: d.battle_id,
        payload,
    }
}

/// A `battle.deleted` event for a battle that ended.
pub(crate) fn ended_event(
    battle_id: Uuid,
    continuing: Option<Uuid>,
    now: DateTime<Utc>,
) -> OutboxEvent {
    deleted_event(
        battle_id,
        json!({
            "battleId": battle_id,
            "continuingBattleId": continuing,
        }),
        now,
    )
}

/// A `battle.deleted` event for a battle that retention soft-deleted: `continuingBattleId` is
/// null and `reason` says why.
pub(crate) fn removed_event(battle_id: Uuid, reason: &str, now: DateTime<Utc>) -> OutboxEvent {
    deleted_event(
        battle_id,
        json!({
            "battleId": battle_id,
            "continuingBattleId": null,
            "reason": reason,
        }),
        now,
    )
}

fn deleted_event(battle_id: Uuid, data: Value, now: DateTime<Utc>) -> OutboxEvent {
    let (event_id, payload) = envelope(EventKind::Deleted, now, data);
    OutboxEvent {
        event_id,
        event_type: EventKind::Deleted.as_str(),
        battle_id,
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_event_has_the_spec_shape() {
        let t = DateTime::parse_from_rfc3339("2025-11-25T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let d = EventData {
            battle_id: Uuid::nil(),
            started_at: t,
            ended_at: t + chrono::Duration::minutes(90),
            primary_system_id: 30000142,
            primary_system_name: "Jita".into(),
            primary_region_id: 10000002,
            primary_region_name: "The Forge".into(),
            total_killmails: 125,
            total_pilots: 456,
            total_isk_destroyed: 150_000_000_000,
            status: "closed".into(),
        };
        let e = battle_event(EventKind::Created, &d, t + chrono::Duration::hours(1));
        let p = &e.payload;
        assert_eq!(p["eventId"], json!(e.event_id));
        assert_eq!(e.event_id.get_version_num(), 4);
        assert_eq!(p["eventType"], "battle.created");
        assert_eq!(p["timestamp"], "2025-11-25T10:00:00Z");
        assert_eq!(p["source"], "battle-service");
        assert_eq!(
            p["data"],
            json!({
                "battleId": "00000000-0000-0000-0000-000000000000",
                "startedAt": "2025-11-25T09:00:00Z",
                "endedAt": "2025-11-25T10:30:00Z",
                "primarySystemId": "30000142",
                "primarySystemName": "Jita",
                "primaryRegionId": "10000002",
                "primaryRegionName": "The Forge",
                "totalKillmails": 125,
                "totalPilots": 456,
                "totalIskDestroyed": 150000000000i64,
                "status": "closed"
            })
        );
    }
}

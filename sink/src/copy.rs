//! Binary `COPY` of rows that are new: the rows of created battles and unstored killmails, when
//! the step promises they are new (a backfill writing each battle once, when final; a live step,
//! whose killmails were checked against the store). A step that also updates or ends stored
//! battles copies its new rows and upserts the rest in the same transaction ([`Writes`]). The
//! outbox's events, always new, are always copied ([`copy_events`]).
//!
//! `COPY .. FROM STDIN BINARY` skips the per-row conflict checks, `RETURNING` and array
//! parameters of the upserts. Whether rows are new is the caller's promise
//! ([`crate::StepChanges::rows_are_new`]); if the promise is broken, PostgreSQL says so with a
//! unique violation, the transaction rolls back, and the sink writes the step again through
//! the upserts ([`is_broken_promise`]).

use std::pin::pin;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;

use battles_dataflow::BattleChange;

use crate::changes::StepChanges;
use crate::error::SinkError;
use crate::plan::{Part, WritePlan};

/// How a step is written: the one place that decides between `COPY` and upserts. Its rows
/// that are new go in with `COPY` first, then the rest through the upserts, in one transaction.
pub(crate) struct Writes {
    /// New rows: the created battles' rows and the new killmails, when the step promises them
    /// new.
    pub copied: Option<WritePlan>,
    /// Everything else (all of the step when it promises nothing): updated and ended battles,
    /// positions, rejections.
    pub upserted: Option<WritePlan>,
}

impl Writes {
    /// The writes of `changes`: `COPY` only where the step promises new rows
    /// ([`crate::StepChanges::rows_are_new`]).
    pub(crate) fn of(changes: &StepChanges) -> Result<Writes, SinkError> {
        // A job's progress counts what its step did in the part that records it, and a
        // retraction must go before the re-insert of the same id: such steps stay whole.
        if !changes.rows_are_new || changes.job.is_some() || !changes.killmails_retracted.is_empty()
        {
            return Writes::upserting(changes);
        }
        let created = changes
            .battles
            .iter()
            .filter(|c| matches!(c, BattleChange::Created(_)))
            .count();
        if created == changes.battles.len() {
            let plan = WritePlan::build(changes)?;
            // Only created battles and no retractions: nothing in the plan updates a row.
            debug_assert!(can_copy(&plan));
            return Ok(Writes {
                copied: Some(plan),
                upserted: None,
            });
        }
        if created == 0 && changes.killmails_inserted.is_empty() {
            return Writes::upserting(changes);
        }
        Ok(Writes {
            copied: Some(WritePlan::build_part(changes, Part::New)?),
            upserted: Some(WritePlan::build_part(changes, Part::Rest)?),
        })
    }

    /// Every row of `changes` through the upserts (also the way back when a promise of new rows
    /// was broken).
    pub(crate) fn upserting(changes: &StepChanges) -> Result<Writes, SinkError> {
        Ok(Writes {
            copied: None,
            upserted: Some(WritePlan::build(changes)?),
        })
    }

    /// True when some rows go in with `COPY` (a broken promise shows as a unique violation).
    pub(crate) fn copies(&self) -> bool {
        self.copied.is_some()
    }
}

/// True when `plan` can be written with `COPY`: every battle in it is created, none ends, and
/// nothing is retracted.
pub(crate) fn can_copy(plan: &WritePlan) -> bool {
    plan.rows_are_new
        && plan.created_ids.len() == plan.battles.id.len()
        && plan.ended_ids.is_empty()
        && plan.aliases.is_empty()
        && plan.killmails_retracted.is_empty()
        && plan.participant_deletes.is_empty()
        && plan.battle_killmail_deletes.is_empty()
        && plan.third_party_deletes.is_empty()
}

/// True when `e` is the unique violation of rows that were not new after all.
pub(crate) fn is_broken_promise(e: &SinkError) -> bool {
    match e {
        SinkError::Database(e) => e.code() == Some(&SqlState::UNIQUE_VIOLATION),
        _ => false,
    }
}

/// Copies `rows` (each a row of `types.len()` values) into `target` (`table (columns)`).
async fn copy_rows<'a, I>(
    tx: &Transaction<'_>,
    target: &str,
    types: &[Type],
    rows: I,
) -> Result<u64, SinkError>
where
    I: IntoIterator<Item = Vec<&'a (dyn ToSql + Sync)>>,
{
    let sink = tx
        .copy_in(&format!("COPY {target} FROM STDIN BINARY"))
        .await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, types));
    for row in rows {
        writer.as_mut().write(&row).await?;
    }
    Ok(writer.finish().await?)
}

/// Copies `events` into the outbox (its `id`, `created_at` and `published_at` as their
/// defaults give them).
pub(crate) async fn copy_events(
    tx: &Transaction<'_>,
    events: &[crate::events::OutboxEvent],
) -> Result<u64, SinkError> {
    copy_rows(
        tx,
        "battle_events_outbox (event_id, event_type, battle_id, payload)",
        &[Type::UUID, Type::TEXT, Type::UUID, Type::JSONB],
        (0..events.len()).map(|i| -> Vec<&(dyn ToSql + Sync)> {
            let e = &events[i];
            vec![&e.event_id, &e.event_type, &e.battle_id, &e.payload]
        }),
    )
    .await
}

/// Copies the killmail store rows of `plan`.
pub(crate) async fn copy_killmails(
    tx: &Transaction<'_>,
    plan: &WritePlan,
) -> Result<u64, SinkError> {
    let k = &plan.killmail_store;
    copy_rows(
        tx,
        "killmails (killmail_id, killmail_hash, killmail_time, solar_system_id, region_id, record, \
         isk_estimated)",
        &[
            Type::INT8,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::INT8,
            Type::INT8,
            Type::BYTEA,
            Type::BOOL,
        ],
        (0..k.killmail_id.len()).map(|i| -> Vec<&(dyn ToSql + Sync)> {
            vec![
                &k.killmail_id[i],
                &k.killmail_hash[i],
                &k.killmail_time[i],
                &k.solar_system_id[i],
                &k.region_id[i],
                &k.record[i],
                &k.isk_estimated[i],
            ]
        }),
    )
    .await
}

/// Copies the battle rows of `plan`.
pub(crate) async fn copy_battles(tx: &Transaction<'_>, plan: &WritePlan) -> Result<u64, SinkError> {
    let b = &plan.battles;
    copy_rows(
        tx,
        "battles (id, started_at, ended_at, primary_system_id, primary_system_name, \
         primary_region_id, primary_region_name, total_killmails, total_pilots, \
         total_isk_destroyed, team_a_pilots, team_a_isk_destroyed, team_a_isk_lost, \
         team_a_ships_destroyed, team_a_ships_lost, team_b_pilots, team_b_isk_destroyed, \
         team_b_isk_lost, team_b_ships_destroyed, team_b_ships_lost, is_decisive, winning_team, \
         status, last_killmail_at)",
        &[
            Type::UUID,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::INT4,
            Type::INT4,
            Type::INT8,
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT4,
            Type::INT4,
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT4,
            Type::INT4,
            Type::BOOL,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMPTZ,
        ],
        (0..b.id.len()).map(|i| -> Vec<&(dyn ToSql + Sync)> {
            vec![
                &b.id[i],
                &b.started_at[i],
                &b.ended_at[i],
                &b.primary_system_id[i],
                &b.primary_system_name[i],
                &b.primary_region_id[i],
                &b.primary_region_name[i],
                &b.total_killmails[i],
                &b.total_pilots[i],
                &b.total_isk_destroyed[i],
                &b.team_a_pilots[i],
                &b.team_a_isk_destroyed[i],
                &b.team_a_isk_lost[i],
                &b.team_a_ships_destroyed[i],
                &b.team_a_ships_lost[i],
                &b.team_b_pilots[i],
                &b.team_b_isk_destroyed[i],
                &b.team_b_isk_lost[i],
                &b.team_b_ships_destroyed[i],
                &b.team_b_ships_lost[i],
                &b.is_decisive[i],
                &b.winning_team[i],
                &b.status[i],
                &b.last_killmail_at[i],
            ]
        }),
    )
    .await
}

/// Copies the statistics rows of `plan`.
pub(crate) async fn copy_statistics(
    tx: &Transaction<'_>,
    plan: &WritePlan,
) -> Result<u64, SinkError> {
    let s = &plan.statistics;
    copy_rows(
        tx,
        "battle_statistics (battle_id, top_killers, top_losers, team_a_ship_types, \
         team_b_ship_types, team_a_alliances, team_b_alliances, killmail_timeline, \
         systems_involved)",
        &[
            Type::UUID,
            Type::JSONB,
            Type::JSONB,
            Type::JSONB,
            Type::JSONB,
            Type::JSONB,
            Type::JSONB,
            Type::JSONB,
            Type::JSONB,
        ],
        (0..s.battle_id.len()).map(|i| -> Vec<&(dyn ToSql + Sync)> {
            vec![
                &s.battle_id[i],
                &s.top_killers[i],
                &s.top_losers[i],
                &s.team_a_ship_types[i],
                &s.team_b_ship_types[i],
                &s.team_a_alliances[i],
                &s.team_b_alliances[i],
                &s.killmail_timeline[i],
                &s.systems_involved[i],
            ]
        }),
    )
    .await
}

/// Copies the participant rows of `plan`.
pub(crate) async fn copy_participants(
    tx: &Transaction<'_>,
    plan: &WritePlan,
) -> Result<u64, SinkError> {
    let p = &plan.participants;
    copy_rows(
        tx,
        "battle_participants (id, battle_id, character_id, character_name, corporation_id, \
         corporation_name, alliance_id, alliance_name, team, ships_flown, kills, deaths, \
         damage_done, damage_received, isk_destroyed, isk_lost, first_seen_at, last_seen_at)",
        &[
            Type::UUID,
            Type::UUID,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::JSONB,
            Type::INT4,
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
        ],
        (0..p.battle_id.len()).map(|i| -> Vec<&(dyn ToSql + Sync)> {
            vec![
                &p.id[i],
                &p.battle_id[i],
                &p.character_id[i],
                &p.character_name[i],
                &p.corporation_id[i],
                &p.corporation_name[i],
                &p.alliance_id[i],
                &p.alliance_name[i],
                &p.team[i],
                &p.ships_flown[i],
                &p.kills[i],
                &p.deaths[i],
                &p.damage_done[i],
                &p.damage_received[i],
                &p.isk_destroyed[i],
                &p.isk_lost[i],
                &p.first_seen_at[i],
                &p.last_seen_at[i],
            ]
        }),
    )
    .await
}

/// Copies the battle killmail rows of `plan`.
pub(crate) async fn copy_battle_killmails(
    tx: &Transaction<'_>,
    plan: &WritePlan,
) -> Result<u64, SinkError> {
    let k = &plan.battle_killmails;
    copy_rows(
        tx,
        "battle_killmails (id, battle_id, killmail_id, killmail_time, system_id, \
         victim_character_id, victim_alliance_id, victim_ship_type_id, victim_team, \
         isk_destroyed)",
        &[
            Type::UUID,
            Type::UUID,
            Type::INT8,
            Type::TIMESTAMPTZ,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
        ],
        (0..k.battle_id.len()).map(|i| -> Vec<&(dyn ToSql + Sync)> {
            vec![
                &k.id[i],
                &k.battle_id[i],
                &k.killmail_id[i],
                &k.killmail_time[i],
                &k.system_id[i],
                &k.victim_character_id[i],
                &k.victim_alliance_id[i],
                &k.victim_ship_type_id[i],
                &k.victim_team[i],
                &k.isk_destroyed[i],
            ]
        }),
    )
    .await
}

/// Copies the third-party rows of `plan`.
pub(crate) async fn copy_third_parties(
    tx: &Transaction<'_>,
    plan: &WritePlan,
) -> Result<u64, SinkError> {
    let t = &plan.third_party_inserts;
    copy_rows(
        tx,
        "battle_third_parties (battle_id, character_id)",
        &[Type::UUID, Type::INT8],
        (0..t.ids.len()).map(|i| -> Vec<&(dyn ToSql + Sync)> { vec![&t.battle_ids[i], &t.ids[i]] }),
    )
    .await
}

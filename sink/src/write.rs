//! Executes a `WritePlan` inside one transaction: a fixed handful of set-based statements
//! (`UNNEST` of column arrays, `INSERT .. ON CONFLICT .. DO UPDATE .. WHERE IS DISTINCT FROM`),
//! so a step costs the same number of round trips whether it touches one battle or ten
//! thousand, and a row is rewritten (and its `updated_at` moved) only when it really changed.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::copy;
use crate::error::SinkError;
use crate::events::{battle_event, EventKind, OutboxEvent};
use crate::plan::{EventData, Keys, WritePlan};

/// Whether the child rows a step copies for the battles it creates in the same transaction
/// (statistics, participants, battle killmails, third parties) skip their foreign-key checks.
///
/// PostgreSQL checks every copied child row's `battle_id` against `battles` with a query of
/// its own and a `FOR KEY SHARE` lock on the battle's row: in the stream bench that was a
/// sixth of the server's time. A copied plan holds only created battles and their rows
/// (`copy::can_copy`, `plan::Part::New`), written battles first, so every reference
/// holds by construction, and the one writer lock keeps other writers out. Skipping takes
/// `session_replication_role = replica` (PostgreSQL's own way for replication and
/// `pg_restore --disable-triggers`), which only superusers and roles granted `SET` on it may
/// take ([`ReferenceChecks::allowed`]); it is set for those statements alone, so the
/// `battles` triggers and the cascades of deletes run as always.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferenceChecks {
    /// Every row is checked (the role may not skip).
    Always,
    SkipForCopies,
}

const SKIP_REFERENCE_CHECKS: &str = "SET LOCAL session_replication_role = replica";
const CHECK_REFERENCES: &str = "SET LOCAL session_replication_role = origin";

impl ReferenceChecks {
    /// What the role of `client` (a connection of its own, not in a transaction) may do: it
    /// tries the setting and puts it back.
    pub async fn allowed(client: &tokio_postgres::Client) -> ReferenceChecks {
        let tried = client
            .batch_execute("SET session_replication_role = replica; RESET session_replication_role")
            .await;
        match tried {
            Ok(()) => ReferenceChecks::SkipForCopies,
            Err(e) => {
                tracing::debug!("copied rows keep their foreign-key checks: {e}");
                ReferenceChecks::Always
            }
        }
    }
}

/// What one applied step changed in the database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppliedStats {
    pub battles_created: usize,
    pub battles_updated: usize,
    pub battles_ended: usize,
    /// Stored `open` battles the watermark closed.
    pub battles_closed: usize,
    pub participants_written: usize,
    pub participants_deleted: usize,
    pub battle_killmails_written: usize,
    pub battle_killmails_deleted: usize,
    pub aliases_written: usize,
    pub killmails_stored: usize,
    /// Killmails already stored (a re-delivery): not written again.
    pub killmails_duplicate: usize,
    pub killmails_removed: usize,
    pub rejections_stored: usize,
    pub offsets_written: usize,
    pub events_written: usize,
    /// Transactions tried; more than one when PostgreSQL went away and the sink retried.
    pub attempts: u32,
}

impl AppliedStats {
    /// Adds what another part of the same transaction did.
    pub(crate) fn add(&mut self, other: &AppliedStats) {
        self.battles_created += other.battles_created;
        self.battles_updated += other.battles_updated;
        self.battles_ended += other.battles_ended;
        self.battles_closed += other.battles_closed;
        self.participants_written += other.participants_written;
        self.participants_deleted += other.participants_deleted;
        self.battle_killmails_written += other.battle_killmails_written;
        self.battle_killmails_deleted += other.battle_killmails_deleted;
        self.aliases_written += other.aliases_written;
        self.killmails_stored += other.killmails_stored;
        self.killmails_duplicate += other.killmails_duplicate;
        self.killmails_removed += other.killmails_removed;
        self.rejections_stored += other.rejections_stored;
        self.offsets_written += other.offsets_written;
        self.events_written += other.events_written;
    }
}

const UPSERT_BATTLES: &str = "
INSERT INTO battles AS b (id, started_at, ended_at, primary_system_id, primary_system_name,
  primary_region_id, primary_region_name, total_killmails, total_pilots, total_isk_destroyed,
  team_a_pilots, team_a_isk_destroyed, team_a_isk_lost, team_a_ships_destroyed, team_a_ships_lost,
  team_b_pilots, team_b_isk_destroyed, team_b_isk_lost, team_b_ships_destroyed, team_b_ships_lost,
  is_decisive, winning_team, status, last_killmail_at)
SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::int8[], $5::text[],
  $6::int8[], $7::text[], $8::int4[], $9::int4[], $10::int8[],
  $11::int4[], $12::int8[], $13::int8[], $14::int4[], $15::int4[],
  $16::int4[], $17::int8[], $18::int8[], $19::int4[], $20::int4[],
  $21::bool[], $22::text[], $23::text[], $24::timestamptz[])
ON CONFLICT (id) DO UPDATE SET
  started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at,
  primary_system_id = EXCLUDED.primary_system_id, primary_system_name = EXCLUDED.primary_system_name,
  primary_region_id = EXCLUDED.primary_region_id, primary_region_name = EXCLUDED.primary_region_name,
  total_killmails = EXCLUDED.total_killmails, total_pilots = EXCLUDED.total_pilots,
  total_isk_destroyed = EXCLUDED.total_isk_destroyed,
  team_a_pilots = EXCLUDED.team_a_pilots, team_a_isk_destroyed = EXCLUDED.team_a_isk_destroyed,
  team_a_isk_lost = EXCLUDED.team_a_isk_lost, team_a_ships_destroyed = EXCLUDED.team_a_ships_destroyed,
  team_a_ships_lost = EXCLUDED.team_a_ships_lost,
  team_b_pilots = EXCLUDED.team_b_pilots, team_b_isk_destroyed = EXCLUDED.team_b_isk_destroyed,
  team_b_isk_lost = EXCLUDED.team_b_isk_lost, team_b_ships_destroyed = EXCLUDED.team_b_ships_destroyed,
  team_b_ships_lost = EXCLUDED.team_b_ships_lost,
  is_decisive = EXCLUDED.is_decisive, winning_team = EXCLUDED.winning_team,
  status = EXCLUDED.status, last_killmail_at = EXCLUDED.last_killmail_at,
  updated_at = NOW()
WHERE (b.started_at, b.ended_at, b.primary_system_id, b.primary_system_name, b.primary_region_id,
  b.primary_region_name, b.total_killmails, b.total_pilots, b.total_isk_destroyed,
  b.team_a_pilots, b.team_a_isk_destroyed, b.team_a_isk_lost, b.team_a_ships_destroyed,
  b.team_a_ships_lost, b.team_b_pilots, b.team_b_isk_destroyed, b.team_b_isk_lost,
  b.team_b_ships_destroyed, b.team_b_ships_lost, b.is_decisive, b.winning_team, b.status,
  b.last_killmail_at)
  IS DISTINCT FROM
  (EXCLUDED.started_at, EXCLUDED.ended_at, EXCLUDED.primary_system_id, EXCLUDED.primary_system_name,
  EXCLUDED.primary_region_id, EXCLUDED.primary_region_name, EXCLUDED.total_killmails,
  EXCLUDED.total_pilots, EXCLUDED.total_isk_destroyed, EXCLUDED.team_a_pilots,
  EXCLUDED.team_a_isk_destroyed, EXCLUDED.team_a_isk_lost, EXCLUDED.team_a_ships_destroyed,
  EXCLUDED.team_a_ships_lost, EXCLUDED.team_b_pilots, EXCLUDED.team_b_isk_destroyed,
  EXCLUDED.team_b_isk_lost, EXCLUDED.team_b_ships_destroyed, EXCLUDED.team_b_ships_lost,
  EXCLUDED.is_decisive, EXCLUDED.winning_team, EXCLUDED.status, EXCLUDED.last_killmail_at)
RETURNING b.id, (b.xmax = 0) AS inserted";

const DELETE_STATISTICS: &str = "DELETE FROM battle_statistics WHERE battle_id = ANY($1::uuid[])";

const UPSERT_STATISTICS: &str = "
INSERT INTO battle_statistics AS s (battle_id, top_killers, top_losers, team_a_ship_types,
  team_b_ship_types, team_a_alliances, team_b_alliances, killmail_timeline, systems_involved)
SELECT * FROM UNNEST($1::uuid[], $2::jsonb[], $3::jsonb[], $4::jsonb[], $5::jsonb[], $6::jsonb[],
  $7::jsonb[], $8::jsonb[], $9::jsonb[])
ON CONFLICT (battle_id) DO UPDATE SET
  top_killers = EXCLUDED.top_killers, top_losers = EXCLUDED.top_losers,
  team_a_ship_types = EXCLUDED.team_a_ship_types, team_b_ship_types = EXCLUDED.team_b_ship_types,
  team_a_alliances = EXCLUDED.team_a_alliances, team_b_alliances = EXCLUDED.team_b_alliances,
  killmail_timeline = EXCLUDED.killmail_timeline, systems_involved = EXCLUDED.systems_involved,
  updated_at = NOW()
WHERE (s.top_killers, s.top_losers, s.team_a_ship_types, s.team_b_ship_types, s.team_a_alliances,
  s.team_b_alliances, s.killmail_timeline, s.systems_involved)
  IS DISTINCT FROM
  (EXCLUDED.top_killers, EXCLUDED.top_losers, EXCLUDED.team_a_ship_types,
  EXCLUDED.team_b_ship_types, EXCLUDED.team_a_alliances, EXCLUDED.team_b_alliances,
  EXCLUDED.killmail_timeline, EXCLUDED.systems_involved)
RETURNING s.battle_id";

const UPSERT_PARTICIPANTS: &str = "
INSERT INTO battle_participants AS p (id, battle_id, character_id, character_name,
  corporation_id, corporation_name, alliance_id, alliance_name, team, ships_flown, kills, deaths,
  damage_done, damage_received, isk_destroyed, isk_lost, first_seen_at, last_seen_at)
SELECT * FROM UNNEST($18::uuid[], $1::uuid[], $2::int8[], $3::text[], $4::int8[], $5::text[],
  $6::int8[], $7::text[], $8::text[], $9::jsonb[], $10::int4[], $11::int4[], $12::int8[],
  $13::int8[], $14::int8[], $15::int8[], $16::timestamptz[], $17::timestamptz[])
ON CONFLICT (battle_id, character_id) DO UPDATE SET
  character_name = EXCLUDED.character_name, corporation_id = EXCLUDED.corporation_id,
  corporation_name = EXCLUDED.corporation_name, alliance_id = EXCLUDED.alliance_id,
  alliance_name = EXCLUDED.alliance_name, team = EXCLUDED.team, ships_flown = EXCLUDED.ships_flown,
  kills = EXCLUDED.kills, deaths = EXCLUDED.deaths, damage_done = EXCLUDED.damage_done,
  damage_received = EXCLUDED.damage_received, isk_destroyed = EXCLUDED.isk_destroyed,
  isk_lost = EXCLUDED.isk_lost, first_seen_at = EXCLUDED.first_seen_at,
  last_seen_at = EXCLUDED.last_seen_at, updated_at = NOW()
WHERE (p.character_name, p.corporation_id, p.corporation_name, p.alliance_id, p.alliance_name,
  p.team, p.ships_flown, p.kills, p.deaths, p.damage_done, p.damage_received, p.isk_destroyed,
  p.isk_lost, p.first_seen_at, p.last_seen_at)
  IS DISTINCT FROM
  (EXCLUDED.character_name, EXCLUDED.corporation_id, EXCLUDED.corporation_name,
  EXCLUDED.alliance_id, EXCLUDED.alliance_name, EXCLUDED.team, EXCLUDED.ships_flown,
  EXCLUDED.kills, EXCLUDED.deaths, EXCLUDED.damage_done, EXCLUDED.damage_received,
  EXCLUDED.isk_destroyed, EXCLUDED.isk_lost, EXCLUDED.first_seen_at, EXCLUDED.last_seen_at)
RETURNING p.battle_id";

const UPSERT_BATTLE_KILLMAILS: &str = "
INSERT INTO battle_killmails AS k (id, battle_id, killmail_id, killmail_time, system_id,
  victim_character_id, victim_alliance_id, victim_ship_type_id, victim_team, isk_destroyed)
SELECT * FROM UNNEST($10::uuid[], $1::uuid[], $2::int8[], $3::timestamptz[], $4::int8[],
  $5::int8[], $6::int8[], $7::int8[], $8::text[], $9::int8[])
ON CONFLICT (battle_id, killmail_id) DO UPDATE SET
  killmail_time = EXCLUDED.killmail_time, system_id = EXCLUDED.system_id,
  victim_character_id = EXCLUDED.victim_character_id,
  victim_alliance_id = EXCLUDED.victim_alliance_id,
  victim_ship_type_id = EXCLUDED.victim_ship_type_id, victim_team = EXCLUDED.victim_team,
  isk_destroyed = EXCLUDED.isk_destroyed
WHERE (k.killmail_time, k.system_id, k.victim_character_id, k.victim_alliance_id,
  k.victim_ship_type_id, k.victim_team, k.isk_destroyed)
  IS DISTINCT FROM
  (EXCLUDED.killmail_time, EXCLUDED.system_id, EXCLUDED.victim_character_id,
  EXCLUDED.victim_alliance_id, EXCLUDED.victim_ship_type_id, EXCLUDED.victim_team,
  EXCLUDED.isk_destroyed)
RETURNING k.battle_id";

/// Deletes the listed (battle, id) rows of `table` keyed by `column`.
fn delete_keys_sql(table: &str, column: &str) -> String {
    format!(
        "DELETE FROM {table} t USING UNNEST($1::uuid[], $2::int8[]) AS d(battle_id, id)
         WHERE t.battle_id = d.battle_id AND t.{column} = d.id RETURNING t.battle_id"
    )
}

/// Deletes rows of the given battles that are not among the listed (battle, id) pairs: stale
/// rows of a battle the engine (re)created, e.g. after a restart.
fn delete_stale_sql(table: &str, column: &str) -> String {
    format!(
        "DELETE FROM {table} t WHERE t.battle_id = ANY($3::uuid[]) AND NOT EXISTS (
           SELECT 1 FROM UNNEST($1::uuid[], $2::int8[]) AS k(battle_id, id)
           WHERE k.battle_id = t.battle_id AND k.id = t.{column})
         RETURNING t.battle_id"
    )
}

const INSERT_THIRD_PARTIES: &str = "
INSERT INTO battle_third_parties (battle_id, character_id)
SELECT * FROM UNNEST($1::uuid[], $2::int8[])
ON CONFLICT DO NOTHING
RETURNING battle_id";

const REPOINT_ALIASES: &str = "
UPDATE battle_aliases a SET battle_id = n.target
FROM UNNEST($1::uuid[], $2::uuid[]) AS n(ended, target)
WHERE a.battle_id = n.ended";

const UPSERT_ALIASES: &str = "
INSERT INTO battle_aliases (ended_battle_id, battle_id)
SELECT * FROM UNNEST($1::uuid[], $2::uuid[])
ON CONFLICT (ended_battle_id) DO UPDATE SET battle_id = EXCLUDED.battle_id
WHERE battle_aliases.battle_id IS DISTINCT FROM EXCLUDED.battle_id";

/// A battle that exists again is nobody's alias (also drops self-aliases a repoint made).
const DELETE_LIVE_ALIASES: &str = "
DELETE FROM battle_aliases WHERE ended_battle_id = ANY($1::uuid[])";

const DELETE_BATTLES: &str = "DELETE FROM battles WHERE id = ANY($1::uuid[]) RETURNING id";

const CLOSE_BATTLES: &str = "
UPDATE battles SET status = 'closed', updated_at = NOW()
WHERE status = 'open' AND last_killmail_at <= $1
RETURNING id, started_at, ended_at, primary_system_id, primary_system_name, primary_region_id,
  primary_region_name, total_killmails, total_pilots, total_isk_destroyed, status";

const DELETE_KILLMAILS: &str = "DELETE FROM killmails WHERE killmail_id = ANY($1::int8[])";

const INSERT_KILLMAILS: &str = "
INSERT INTO killmails (killmail_id, killmail_hash, killmail_time, solar_system_id, region_id, record,
  isk_estimated)
SELECT * FROM UNNEST($1::int8[], $2::text[], $3::timestamptz[], $4::int8[], $5::int8[], $6::bytea[],
  $7::bool[])
ON CONFLICT (killmail_id) DO NOTHING";

const INSERT_REJECTIONS: &str = "
INSERT INTO rejected_killmails (raw_payload, reason_code, reason_message, source_position,
  source_kind, source_file, source_line, source_topic, source_partition, source_offset, received_at)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
  $7::int8[], $8::text[], $9::int4[], $10::int8[], $11::timestamptz[])
ON CONFLICT (source_position, md5(raw_payload)) DO NOTHING";

const UPSERT_OFFSETS: &str = "
INSERT INTO source_offsets (source_key, position)
SELECT * FROM UNNEST($1::text[], $2::int8[])
ON CONFLICT (source_key) DO UPDATE SET position = EXCLUDED.position, updated_at = NOW()
WHERE source_offsets.position IS DISTINCT FROM EXCLUDED.position";

/// Writes `events` to the outbox in `tx`; returns how many. With binary `COPY`: PostgreSQL
/// logs the table's new rows a heap page at a time, where `INSERT ... SELECT FROM UNNEST`
/// logged each row (its indexes still log an entry per row; a step of 20,000 killmails has
/// about 7,000 events).
pub(crate) async fn insert_events(
    tx: &Transaction<'_>,
    events: Vec<OutboxEvent>,
) -> Result<usize, SinkError> {
    if events.is_empty() {
        return Ok(0);
    }
    Ok(crate::copy::copy_events(tx, &events).await? as usize)
}

/// Writes `plan` in `tx` (the caller commits). `now` stamps the events. With `copy` (see
/// [`copy::can_copy`]), new rows go in with binary `COPY` instead of upserts, and with
/// [`ReferenceChecks::SkipForCopies`] the copied child rows skip their foreign-key checks.
pub(crate) async fn write(
    tx: &Transaction<'_>,
    plan: &WritePlan,
    now: DateTime<Utc>,
    copy: bool,
    checks: ReferenceChecks,
) -> Result<AppliedStats, SinkError> {
    // Only the child rows of battles copied just before, in this transaction, go in unchecked.
    let unchecked = copy && checks == ReferenceChecks::SkipForCopies;
    let mut stats = AppliedStats::default();
    let mut laps = Laps::new();
    // Battles some child row of which changed: they get a battle.updated event.
    let mut touched: BTreeSet<Uuid> = BTreeSet::new();

    // The killmail store first: retractions, then inserts (a retraction plus an insert of the
    // same id replaces the record).
    if !plan.killmails_retracted.is_empty() {
        stats.killmails_removed = tx
            .execute(DELETE_KILLMAILS, &[&plan.killmails_retracted])
            .await? as usize;
    }
    let k = &plan.killmail_store;
    if copy && !k.killmail_id.is_empty() {
        stats.killmails_stored = copy::copy_killmails(tx, plan).await? as usize;
    } else if !k.killmail_id.is_empty() {
        stats.killmails_stored = tx
            .execute(
                INSERT_KILLMAILS,
                &[
                    &k.killmail_id,
                    &k.killmail_hash,
                    &k.killmail_time,
                    &k.solar_system_id,
                    &k.region_id,
                    &k.record,
                    &k.isk_estimated,
                ],
            )
            .await? as usize;
        stats.killmails_duplicate = k.killmail_id.len() - stats.killmails_stored;
    }

    laps.lap("killmail store");
    // Battles.
    let mut created: BTreeSet<Uuid> = BTreeSet::new();
    let mut updated: BTreeSet<Uuid> = BTreeSet::new();
    let b = &plan.battles;
    if copy && !b.id.is_empty() {
        copy::copy_battles(tx, plan).await?;
        created.extend(b.id.iter().copied());
    } else if !b.id.is_empty() {
        let rows = tx
            .query(
                UPSERT_BATTLES,
                &[
                    &b.id,
                    &b.started_at,
                    &b.ended_at,
                    &b.primary_system_id,
                    &b.primary_system_name,
                    &b.primary_region_id,
                    &b.primary_region_name,
                    &b.total_killmails,
                    &b.total_pilots,
                    &b.total_isk_destroyed,
                    &b.team_a_pilots,
                    &b.team_a_isk_destroyed,
                    &b.team_a_isk_lost,
                    &b.team_a_ships_destroyed,
                    &b.team_a_ships_lost,
                    &b.team_b_pilots,
                    &b.team_b_isk_destroyed,
                    &b.team_b_isk_lost,
                    &b.team_b_ships_destroyed,
                    &b.team_b_ships_lost,
                    &b.is_decisive,
                    &b.winning_team,
                    &b.status,
                    &b.last_killmail_at,
                ],
            )
            .await?;
        for row in rows {
            let id: Uuid = row.get(0);
            if row.get::<_, bool>(1) {
                created.insert(id);
            } else {
                updated.insert(id);
            }
        }
    }

    laps.lap("battles");
    if unchecked {
        tx.batch_execute(SKIP_REFERENCE_CHECKS).await?;
    }
    let s = &plan.statistics;
    if copy && !s.battle_id.is_empty() {
        copy::copy_statistics(tx, plan).await?;
        touched.extend(s.battle_id.iter().copied());
    } else if !s.battle_id.is_empty() {
        let rows = tx
            .query(
                UPSERT_STATISTICS,
                &[
                    &s.battle_id,
                    &s.top_killers,
                    &s.top_losers,
                    &s.team_a_ship_types,
                    &s.team_b_ship_types,
                    &s.team_a_alliances,
                    &s.team_b_alliances,
                    &s.killmail_timeline,
                    &s.systems_involved,
                ],
            )
            .await?;
        touched.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
    }

    // Statistics derived from the battles' rows are not stored; rows of a bulk load are new.
    if !copy && !plan.statistics_derived.is_empty() {
        tx.execute(DELETE_STATISTICS, &[&plan.statistics_derived])
            .await?;
    }

    laps.lap("statistics");
    // Battles written with only a `+1` may have stale child rows from an earlier state, but not
    // those the upsert just inserted: child rows cannot outlive their battle row. Only the
    // others are checked (in a backfill, almost none).
    let preexisting: Vec<Uuid> = plan
        .created_ids
        .iter()
        .filter(|id| !created.contains(id))
        .copied()
        .collect();
    let pre: HashSet<Uuid> = preexisting.iter().copied().collect();
    // Participants.
    stats.participants_deleted += delete_stale(
        tx,
        "battle_participants",
        "character_id",
        &plan.created_participant_keys.restricted_to(&pre),
        &preexisting,
        &mut touched,
    )
    .await?;
    let p = &plan.participants;
    if copy && p.len() > 0 {
        stats.participants_written = copy::copy_participants(tx, plan).await? as usize;
        touched.extend(p.battle_id.iter().copied());
    } else if p.len() > 0 {
        let rows = tx
            .query(
                UPSERT_PARTICIPANTS,
                &[
                    &p.battle_id,
                    &p.character_id,
                    &p.character_name,
                    &p.corporation_id,
                    &p.corporation_name,
                    &p.alliance_id,
                    &p.alliance_name,
                    &p.team,
                    &p.ships_flown,
                    &p.kills,
                    &p.deaths,
                    &p.damage_done,
                    &p.damage_received,
                    &p.isk_destroyed,
                    &p.isk_lost,
                    &p.first_seen_at,
                    &p.last_seen_at,
                    &p.id,
                ],
            )
            .await?;
        stats.participants_written = rows.len();
        touched.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
    }
    stats.participants_deleted += delete_keys(
        tx,
        "battle_participants",
        "character_id",
        &plan.participant_deletes,
        &mut touched,
    )
    .await?;

    laps.lap("participants");
    // Battle killmails.
    stats.battle_killmails_deleted += delete_stale(
        tx,
        "battle_killmails",
        "killmail_id",
        &plan.created_killmail_keys.restricted_to(&pre),
        &preexisting,
        &mut touched,
    )
    .await?;
    let bk = &plan.battle_killmails;
    if copy && bk.len() > 0 {
        stats.battle_killmails_written = copy::copy_battle_killmails(tx, plan).await? as usize;
        touched.extend(bk.battle_id.iter().copied());
    } else if bk.len() > 0 {
        let rows = tx
            .query(
                UPSERT_BATTLE_KILLMAILS,
                &[
                    &bk.battle_id,
                    &bk.killmail_id,
                    &bk.killmail_time,
                    &bk.system_id,
                    &bk.victim_character_id,
                    &bk.victim_alliance_id,
                    &bk.victim_ship_type_id,
                    &bk.victim_team,
                    &bk.isk_destroyed,
                    &bk.id,
                ],
            )
            .await?;
        stats.battle_killmails_written = rows.len();
        touched.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
    }
    stats.battle_killmails_deleted += delete_keys(
        tx,
        "battle_killmails",
        "killmail_id",
        &plan.battle_killmail_deletes,
        &mut touched,
    )
    .await?;

    laps.lap("battle killmails");
    // Third-party flags.
    delete_stale(
        tx,
        "battle_third_parties",
        "character_id",
        &plan.created_third_party_keys.restricted_to(&pre),
        &preexisting,
        &mut touched,
    )
    .await?;
    let tp = &plan.third_party_inserts;
    if copy && !tp.is_empty() {
        copy::copy_third_parties(tx, plan).await?;
        touched.extend(tp.battle_ids.iter().copied());
    } else if !tp.is_empty() {
        let rows = tx
            .query(INSERT_THIRD_PARTIES, &[&tp.battle_ids, &tp.ids])
            .await?;
        touched.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
    }
    delete_keys(
        tx,
        "battle_third_parties",
        "character_id",
        &plan.third_party_deletes,
        &mut touched,
    )
    .await?;

    if unchecked {
        tx.batch_execute(CHECK_REFERENCES).await?;
    }
    laps.lap("third parties");
    // Aliases, before the ended battles go (their cascade would drop aliases still to repoint).
    if !plan.aliases.is_empty() {
        let (ended, target): (Vec<Uuid>, Vec<Uuid>) = plan.aliases.iter().copied().unzip();
        tx.execute(REPOINT_ALIASES, &[&ended, &target]).await?;
        stats.aliases_written = tx.execute(UPSERT_ALIASES, &[&ended, &target]).await? as usize;
    }
    if !plan.created_ids.is_empty() || !plan.aliases.is_empty() {
        let live: Vec<Uuid> = plan
            .created_ids
            .iter()
            .chain(plan.aliases.iter().map(|(_, t)| t))
            .copied()
            .collect();
        tx.execute(DELETE_LIVE_ALIASES, &[&live]).await?;
    }

    laps.lap("aliases");
    let mut ended: Vec<Uuid> = Vec::new();
    if !plan.ended_ids.is_empty() {
        let rows = tx.query(DELETE_BATTLES, &[&plan.ended_ids]).await?;
        ended = rows.iter().map(|r| r.get(0)).collect();
        ended.sort();
    }
    stats.battles_ended = ended.len();

    let mut closed: Vec<EventData> = Vec::new();
    if let Some(before) = plan.close_before {
        for row in tx.query(CLOSE_BATTLES, &[&before]).await? {
            closed.push(EventData {
                battle_id: row.get(0),
                started_at: row.get(1),
                ended_at: row.get(2),
                primary_system_id: row.get(3),
                primary_system_name: row.get(4),
                primary_region_id: row.get(5),
                primary_region_name: row.get(6),
                total_killmails: row.get::<_, Option<i32>>(7).unwrap_or(0),
                total_pilots: row.get::<_, Option<i32>>(8).unwrap_or(0),
                total_isk_destroyed: row.get::<_, Option<i64>>(9).unwrap_or(0),
                status: row.get(10),
            });
        }
        stats.battles_closed = closed.len();
    }

    laps.lap("ended + closed");
    let r = &plan.rejections;
    if !r.raw_payload.is_empty() {
        stats.rejections_stored = tx
            .execute(
                INSERT_REJECTIONS,
                &[
                    &r.raw_payload,
                    &r.reason_code,
                    &r.reason_message,
                    &r.source_position,
                    &r.source_kind,
                    &r.source_file,
                    &r.source_line,
                    &r.source_topic,
                    &r.source_partition,
                    &r.source_offset,
                    &r.received_at,
                ],
            )
            .await? as usize;
    }

    if !plan.offsets.0.is_empty() {
        tx.execute(UPSERT_OFFSETS, &[&plan.offsets.0, &plan.offsets.1])
            .await?;
        stats.offsets_written = plan.offsets.0.len();
    }

    laps.lap("rejections + offsets");
    // Events: created, then updated (a row of the battle or of its children changed), then
    // closed by the watermark, then ended.
    let alias_of: HashMap<Uuid, Uuid> = plan.aliases.iter().copied().collect();
    let mut events = Vec::new();
    for id in &created {
        events.push(battle_event(EventKind::Created, &plan.event_data[id], now));
    }
    let mut updated_all: BTreeSet<Uuid> = updated;
    updated_all.extend(
        touched
            .into_iter()
            .filter(|id| !created.contains(id) && plan.event_data.contains_key(id)),
    );
    for id in &updated_all {
        events.push(battle_event(EventKind::Updated, &plan.event_data[id], now));
    }
    for data in &closed {
        if !updated_all.contains(&data.battle_id) && !created.contains(&data.battle_id) {
            events.push(battle_event(EventKind::Updated, data, now));
        }
    }
    for id in &ended {
        events.push(crate::events::ended_event(
            *id,
            alias_of.get(id).copied(),
            now,
        ));
    }
    stats.battles_created = created.len();
    stats.battles_updated = updated_all.len();
    if !plan.suppress_events {
        stats.events_written = insert_events(tx, events).await?;
    }
    laps.lap("events");
    if let Some(job) = &plan.job {
        let counts = [
            job.killmails_processed,
            stats.battles_created as i64,
            stats.battles_updated as i64,
            stats.battles_ended as i64,
        ];
        tx.execute(
            crate::jobs::RECORD_JOB_STEP,
            &[&job.job_id, &counts[0], &counts[1], &counts[2], &counts[3]],
        )
        .await?;
        tx.execute(
            UPSERT_OFFSETS,
            &[
                &vec![crate::jobs::cursor_key(job.job_id)],
                &vec![job.slices_done],
            ],
        )
        .await?;
    }
    tracing::debug!(laps = %laps, "step statements");
    Ok(stats)
}

/// Time spent per group of statements, for the debug log.
struct Laps {
    last: std::time::Instant,
    laps: Vec<(&'static str, std::time::Duration)>,
}

impl Laps {
    fn new() -> Laps {
        Laps {
            last: std::time::Instant::now(),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.laps.push((name, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for Laps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, d)) in self.laps.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name} {:.1}ms", d.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }
}

async fn delete_keys(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    keys: &Keys,
    touched: &mut BTreeSet<Uuid>,
) -> Result<usize, SinkError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let rows = tx
        .query(
            &delete_keys_sql(table, column),
            &[&keys.battle_ids, &keys.ids],
        )
        .await?;
    touched.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
    Ok(rows.len())
}

async fn delete_stale(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    keys: &Keys,
    battles: &[Uuid],
    touched: &mut BTreeSet<Uuid>,
) -> Result<usize, SinkError> {
    if battles.is_empty() {
        return Ok(0);
    }
    let rows = tx
        .query(
            &delete_stale_sql(table, column),
            &[&keys.battle_ids, &keys.ids, &battles],
        )
        .await?;
    touched.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
    Ok(rows.len())
}

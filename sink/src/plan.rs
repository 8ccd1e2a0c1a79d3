//! Turns one step's changes into column arrays ready for bulk statements: validates the
//! consolidated diffs, classifies battles as created / updated / ended, diffs old and new
//! reports in memory so unchanged participant and killmail rows are not sent at all, finds the
//! battle that continues each ended one, and lays every row out column by column (the sink binds
//! each column as one array parameter and `UNNEST`s them).

use std::collections::{BTreeMap, HashMap, HashSet};

use battles_dataflow::killmail::KillmailId;
use battles_dataflow::report::{BattleKillmail, BattleReport, Participant};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::changes::{BattleStatus, StatusRule, StepChanges};
use crate::derived::statistics_are_derived;
use crate::error::SinkError;
use crate::text::{pg_string, PgJson};
use battles_dataflow::BattleChange;

/// Everything one step writes, column by column.
#[derive(Debug, Default)]
pub(crate) struct WritePlan {
    pub battles: BattleColumns,
    /// Battles written with only a `+1`: their stored child rows not in the new report are stale.
    pub created_ids: Vec<Uuid>,
    pub statistics: StatisticsColumns,
    /// Battles whose statistics are derived from their rows ([`crate::derived`]): they have no
    /// statistics row, and a stored one is deleted.
    pub statistics_derived: Vec<Uuid>,
    pub participants: ParticipantColumns,
    /// Participants of created battles, all of them (to delete stale stored ones).
    pub created_participant_keys: Keys,
    pub participant_deletes: Keys,
    pub battle_killmails: BattleKillmailColumns,
    pub created_killmail_keys: Keys,
    pub battle_killmail_deletes: Keys,
    pub third_party_inserts: Keys,
    pub third_party_deletes: Keys,
    pub created_third_party_keys: Keys,
    /// (ended battle, continuing battle)
    pub aliases: Vec<(Uuid, Uuid)>,
    pub ended_ids: Vec<Uuid>,
    pub killmail_store: KillmailColumns,
    pub killmails_retracted: Vec<KillmailId>,
    pub rejections: RejectionColumns,
    pub offsets: (Vec<String>, Vec<i64>),
    /// With a watermark rule: stored `open` battles whose last killmail is at or before this
    /// instant are closed.
    pub close_before: Option<DateTime<Utc>>,
    /// The event data of each created or updated battle, by id.
    pub event_data: HashMap<Uuid, EventData>,
    /// No outbox rows for this step.
    pub suppress_events: bool,
    pub job: Option<crate::jobs::JobStep>,
    /// See [`StepChanges::rows_are_new`].
    pub rows_are_new: bool,
}

/// (battle id, character or killmail id) pairs.
#[derive(Debug, Default, Clone)]
pub(crate) struct Keys {
    pub battle_ids: Vec<Uuid>,
    pub ids: Vec<i64>,
}

impl Keys {
    fn push(&mut self, battle_id: Uuid, id: i64) {
        self.battle_ids.push(battle_id);
        self.ids.push(id);
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The pairs whose battle is in `battles`.
    pub fn restricted_to(&self, battles: &HashSet<Uuid>) -> Keys {
        let mut out = Keys::default();
        for (b, id) in self.battle_ids.iter().zip(&self.ids) {
            if battles.contains(b) {
                out.push(*b, *id);
            }
        }
        out
    }
}

/// The battle-level fields an event carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EventData {
    pub battle_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub primary_system_id: i64,
    pub primary_system_name: String,
    pub primary_region_id: i64,
    pub primary_region_name: String,
    pub total_killmails: i32,
    pub total_pilots: i32,
    pub total_isk_destroyed: i64,
    pub status: String,
}

#[derive(Debug, Default)]
pub(crate) struct BattleColumns {
    pub id: Vec<Uuid>,
    pub started_at: Vec<DateTime<Utc>>,
    pub ended_at: Vec<DateTime<Utc>>,
    pub primary_system_id: Vec<i64>,
    pub primary_system_name: Vec<String>,
    pub primary_region_id: Vec<i64>,
    pub primary_region_name: Vec<String>,
    pub total_killmails: Vec<i32>,
    pub total_pilots: Vec<i32>,
    pub total_isk_destroyed: Vec<i64>,
    pub team_a_pilots: Vec<i32>,
    pub team_a_isk_destroyed: Vec<i64>,
    pub team_a_isk_lost: Vec<i64>,
    pub team_a_ships_destroyed: Vec<i32>,
    pub team_a_ships_lost: Vec<i32>,
    pub team_b_pilots: Vec<i32>,
    pub team_b_isk_destroyed: Vec<i64>,
    pub team_b_isk_lost: Vec<i64>,
    pub team_b_ships_destroyed: Vec<i32>,
    pub team_b_ships_lost: Vec<i32>,
    pub is_decisive: Vec<bool>,
    pub winning_team: Vec<Option<String>>,
    pub status: Vec<String>,
    pub last_killmail_at: Vec<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub(crate) struct StatisticsColumns {
    pub battle_id: Vec<Uuid>,
    pub top_killers: Vec<PgJson>,
    pub top_losers: Vec<PgJson>,
    pub team_a_ship_types: Vec<PgJson>,
    pub team_b_ship_types: Vec<PgJson>,
    pub team_a_alliances: Vec<PgJson>,
    pub team_b_alliances: Vec<PgJson>,
    pub killmail_timeline: Vec<PgJson>,
    pub systems_involved: Vec<PgJson>,
}

#[derive(Debug, Default)]
pub(crate) struct ParticipantColumns {
    /// [`crate::row_ids::participant_row_id`].
    pub id: Vec<Uuid>,
    pub battle_id: Vec<Uuid>,
    pub character_id: Vec<i64>,
    pub character_name: Vec<String>,
    pub corporation_id: Vec<Option<i64>>,
    pub corporation_name: Vec<Option<String>>,
    pub alliance_id: Vec<Option<i64>>,
    pub alliance_name: Vec<Option<String>>,
    pub team: Vec<String>,
    pub ships_flown: Vec<PgJson>,
    pub kills: Vec<i32>,
    pub deaths: Vec<i32>,
    pub damage_done: Vec<i64>,
    pub damage_received: Vec<i64>,
    pub isk_destroyed: Vec<i64>,
    pub isk_lost: Vec<i64>,
    pub first_seen_at: Vec<DateTime<Utc>>,
    pub last_seen_at: Vec<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub(crate) struct BattleKillmailColumns {
    /// [`crate::row_ids::battle_killmail_row_id`].
    pub id: Vec<Uuid>,
    pub battle_id: Vec<Uuid>,
    pub killmail_id: Vec<i64>,
    pub killmail_time: Vec<DateTime<Utc>>,
    pub system_id: Vec<i64>,
    pub victim_character_id: Vec<Option<i64>>,
    pub victim_alliance_id: Vec<Option<i64>>,
    pub victim_ship_type_id: Vec<Option<i64>>,
    pub victim_team: Vec<String>,
    pub isk_destroyed: Vec<i64>,
}

#[derive(Debug, Default)]
pub(crate) struct KillmailColumns {
    pub killmail_id: Vec<i64>,
    pub killmail_hash: Vec<Option<String>>,
    pub killmail_time: Vec<DateTime<Utc>>,
    pub solar_system_id: Vec<i64>,
    pub region_id: Vec<i64>,
    /// The killmail's stored form ([`crate::record::encode`]).
    pub record: Vec<Vec<u8>>,
    pub isk_estimated: Vec<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct RejectionColumns {
    pub raw_payload: Vec<String>,
    pub reason_code: Vec<String>,
    pub reason_message: Vec<String>,
    pub source_position: Vec<String>,
    pub source_kind: Vec<String>,
    pub source_file: Vec<Option<String>>,
    pub source_line: Vec<Option<i64>>,
    pub source_topic: Vec<Option<String>>,
    pub source_partition: Vec<Option<i32>>,
    pub source_offset: Vec<Option<i64>>,
    pub received_at: Vec<DateTime<Utc>>,
}

/// Which rows of a step a [`WritePlan`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// All of them.
    Whole,
    /// The created battles' rows and the inserted killmails: new rows, when the step promises
    /// so ([`StepChanges::rows_are_new`]), which `COPY` can write.
    New,
    /// Everything else: updated and ended battles, retractions, rejections, positions, the
    /// job's progress and the watermark's closing of stored battles.
    Rest,
}

impl WritePlan {
    pub fn build(changes: &StepChanges) -> Result<WritePlan, SinkError> {
        WritePlan::build_part(changes, Part::Whole)
    }

    /// The plan of `part` of a step: with [`Part::New`] and [`Part::Rest`] a step is written as
    /// two plans, in that order, in one transaction.
    pub fn build_part(changes: &StepChanges, part: Part) -> Result<WritePlan, SinkError> {
        let (new_rows, rest) = match part {
            Part::Whole => (true, true),
            Part::New => (true, false),
            Part::Rest => (false, true),
        };
        let mut plan = WritePlan {
            suppress_events: changes.suppress_events,
            job: changes.job.clone().filter(|_| rest),
            rows_are_new: changes.rows_are_new,
            ..WritePlan::default()
        };
        let rule = changes.status;
        if let StatusRule::Watermark {
            watermark,
            close_after,
            close_stored,
        } = rule
        {
            if rest && close_stored {
                plan.close_before = Some(watermark - close_after);
            }
        }

        let battles = changes.battles.iter().filter(|c| {
            let created = matches!(c, BattleChange::Created(_));
            (created && new_rows) || (!created && rest)
        });
        for change in battles {
            if let Some(new) = change.new_report() {
                check_unique(new)?;
            }
            let id = change.battle_id();
            match change {
                BattleChange::Created(new) => {
                    let status = rule.status_of(new.last_killmail_at);
                    plan.push_battle(new, status);
                    plan.created_ids.push(id);
                    if statistics_are_derived(new) {
                        plan.statistics_derived.push(id);
                    } else {
                        plan.push_statistics(new);
                    }
                    for p in &new.participants {
                        plan.participants.push(id, p);
                        plan.created_participant_keys.push(id, p.character_id);
                        if p.third_party {
                            plan.third_party_inserts.push(id, p.character_id);
                            plan.created_third_party_keys.push(id, p.character_id);
                        }
                    }
                    for k in &new.killmails {
                        plan.battle_killmails.push(id, k);
                        plan.created_killmail_keys.push(id, k.killmail_id);
                    }
                }
                BattleChange::Updated { old, new } => {
                    let status = rule.status_of(new.last_killmail_at);
                    plan.push_battle(new, status);
                    plan.update_statistics(old, new);
                    plan.diff_participants(id, &old.participants, &new.participants);
                    plan.diff_killmails(id, &old.killmails, &new.killmails);
                }
                BattleChange::Ended { continued_by, .. } => {
                    plan.ended_ids.push(id);
                    if let Some(target) = continued_by {
                        plan.aliases.push((id, *target));
                    }
                }
            }
        }

        let inserted = match new_rows {
            true => &changes.killmails_inserted[..],
            false => &[],
        };
        for k in inserted {
            let c = &mut plan.killmail_store;
            c.killmail_id.push(k.killmail_id);
            c.killmail_hash
                .push(k.killmail_hash.as_deref().map(pg_string));
            c.killmail_time.push(k.killmail_time);
            c.solar_system_id.push(k.solar_system_id);
            c.region_id.push(k.region_id);
            c.record.push(crate::record::encode(k));
            c.isk_estimated.push(k.isk_estimated);
        }
        if !rest {
            return Ok(plan);
        }
        plan.killmails_retracted = changes.killmails_retracted.clone();

        for r in &changes.rejections {
            use crate::changes::SourcePosition;
            let c = &mut plan.rejections;
            c.raw_payload.push(pg_string(&r.raw_payload));
            c.reason_code.push(pg_string(&r.reason_code));
            c.reason_message.push(pg_string(&r.reason_message));
            c.source_position.push(pg_string(&r.source.to_string()));
            c.source_kind.push(r.source.kind().to_owned());
            let (file, line, topic, partition, offset) = match &r.source {
                SourcePosition::File { path, line } => (
                    Some(pg_string(path)),
                    Some(i64::try_from(*line).unwrap_or(i64::MAX)),
                    None,
                    None,
                    None,
                ),
                SourcePosition::Kafka {
                    topic,
                    partition,
                    offset,
                } => (
                    None,
                    None,
                    Some(pg_string(topic)),
                    Some(*partition),
                    Some(*offset),
                ),
                SourcePosition::Other(_) => (None, None, None, None, None),
            };
            c.source_file.push(file);
            c.source_line.push(line);
            c.source_topic.push(topic);
            c.source_partition.push(partition);
            c.source_offset.push(offset);
            c.received_at.push(r.received_at);
        }

        // One row per key; the last position given for a key wins.
        let mut offsets: BTreeMap<String, i64> = BTreeMap::new();
        for (key, pos) in &changes.offsets {
            offsets.insert(pg_string(key), *pos);
        }
        plan.offsets = offsets.into_iter().unzip();
        Ok(plan)
    }

    fn push_battle(&mut self, r: &BattleReport, status: BattleStatus) {
        let c = &mut self.battles;
        c.id.push(r.battle_id);
        c.started_at.push(r.started_at);
        c.ended_at.push(r.ended_at);
        c.primary_system_id.push(r.primary_system_id);
        c.primary_system_name
            .push(pg_string(&r.primary_system_name));
        c.primary_region_id.push(r.primary_region_id);
        c.primary_region_name
            .push(pg_string(&r.primary_region_name));
        c.total_killmails.push(r.total_killmails);
        c.total_pilots.push(r.total_pilots);
        c.total_isk_destroyed.push(r.total_isk_destroyed);
        c.team_a_pilots.push(r.team_a.pilots);
        c.team_a_isk_destroyed.push(r.team_a.isk_destroyed);
        c.team_a_isk_lost.push(r.team_a.isk_lost);
        c.team_a_ships_destroyed.push(r.team_a.ships_destroyed);
        c.team_a_ships_lost.push(r.team_a.ships_lost);
        c.team_b_pilots.push(r.team_b.pilots);
        c.team_b_isk_destroyed.push(r.team_b.isk_destroyed);
        c.team_b_isk_lost.push(r.team_b.isk_lost);
        c.team_b_ships_destroyed.push(r.team_b.ships_destroyed);
        c.team_b_ships_lost.push(r.team_b.ships_lost);
        c.is_decisive.push(r.is_decisive);
        c.winning_team
            .push(r.winning_team.map(|t| t.as_str().to_owned()));
        c.status.push(status.as_str().to_owned());
        c.last_killmail_at.push(r.last_killmail_at);
        self.event_data.insert(
            r.battle_id,
            EventData {
                battle_id: r.battle_id,
                started_at: r.started_at,
                ended_at: r.ended_at,
                primary_system_id: r.primary_system_id,
                primary_system_name: pg_string(&r.primary_system_name),
                primary_region_id: r.primary_region_id,
                primary_region_name: pg_string(&r.primary_region_name),
                total_killmails: r.total_killmails,
                total_pilots: r.total_pilots,
                total_isk_destroyed: r.total_isk_destroyed,
                status: status.as_str().to_owned(),
            },
        );
    }

    /// The statistics write of a battle that was `old` and is `new`: none when neither they
    /// nor where they come from (a row, or the battle's rows) changed.
    fn update_statistics(&mut self, old: &BattleReport, new: &BattleReport) {
        let was_derived = statistics_are_derived(old);
        if statistics_are_derived(new) {
            if !was_derived || old.statistics != new.statistics {
                self.statistics_derived.push(new.battle_id);
            }
        } else if was_derived || old.statistics != new.statistics {
            self.push_statistics(new);
        }
    }

    fn push_statistics(&mut self, r: &BattleReport) {
        let s = &r.statistics;
        let c = &mut self.statistics;
        c.battle_id.push(r.battle_id);
        c.top_killers.push(PgJson::of(&s.top_killers));
        c.top_losers.push(PgJson::of(&s.top_losers));
        c.team_a_ship_types.push(PgJson::of(&s.team_a_ship_types));
        c.team_b_ship_types.push(PgJson::of(&s.team_b_ship_types));
        c.team_a_alliances.push(PgJson::of(&s.team_a_alliances));
        c.team_b_alliances.push(PgJson::of(&s.team_b_alliances));
        c.killmail_timeline.push(PgJson::of(&s.killmail_timeline));
        c.systems_involved.push(PgJson::of(&s.systems_involved));
    }

    fn diff_participants(&mut self, id: Uuid, old: &[Participant], new: &[Participant]) {
        let old_by: HashMap<i64, &Participant> = old.iter().map(|p| (p.character_id, p)).collect();
        let new_ids: HashSet<i64> = new.iter().map(|p| p.character_id).collect();
        for p in new {
            let before = old_by.get(&p.character_id);
            if before != Some(&p) {
                self.participants.push(id, p);
            }
            let was_third = before.is_some_and(|b| b.third_party);
            if p.third_party && !was_third {
                self.third_party_inserts.push(id, p.character_id);
            } else if !p.third_party && was_third {
                self.third_party_deletes.push(id, p.character_id);
            }
        }
        for p in old {
            if !new_ids.contains(&p.character_id) {
                self.participant_deletes.push(id, p.character_id);
                if p.third_party {
                    self.third_party_deletes.push(id, p.character_id);
                }
            }
        }
    }

    fn diff_killmails(&mut self, id: Uuid, old: &[BattleKillmail], new: &[BattleKillmail]) {
        let old_by: HashMap<i64, &BattleKillmail> =
            old.iter().map(|k| (k.killmail_id, k)).collect();
        let new_ids: HashSet<i64> = new.iter().map(|k| k.killmail_id).collect();
        for k in new {
            if old_by.get(&k.killmail_id) != Some(&k) {
                self.battle_killmails.push(id, k);
            }
        }
        for k in old {
            if !new_ids.contains(&k.killmail_id) {
                self.battle_killmail_deletes.push(id, k.killmail_id);
            }
        }
    }
}

impl ParticipantColumns {
    fn push(&mut self, battle_id: Uuid, p: &Participant) {
        self.id.push(crate::row_ids::participant_row_id(
            battle_id,
            p.character_id,
        ));
        self.battle_id.push(battle_id);
        self.character_id.push(p.character_id);
        self.character_name.push(pg_string(&p.character_name));
        self.corporation_id.push(p.corporation_id);
        self.corporation_name
            .push(p.corporation_name.as_deref().map(pg_string));
        self.alliance_id.push(p.alliance_id);
        self.alliance_name
            .push(p.alliance_name.as_deref().map(pg_string));
        self.team.push(p.team.as_str().to_owned());
        self.ships_flown.push(PgJson::of(&p.ships_flown));
        self.kills.push(p.kills);
        self.deaths.push(p.deaths);
        self.damage_done.push(p.damage_done);
        self.damage_received.push(p.damage_received);
        self.isk_destroyed.push(p.isk_destroyed);
        self.isk_lost.push(p.isk_lost);
        self.first_seen_at.push(p.first_seen_at);
        self.last_seen_at.push(p.last_seen_at);
    }

    pub fn len(&self) -> usize {
        self.battle_id.len()
    }
}

impl BattleKillmailColumns {
    fn push(&mut self, battle_id: Uuid, k: &BattleKillmail) {
        self.id.push(crate::row_ids::battle_killmail_row_id(
            battle_id,
            k.killmail_id,
        ));
        self.battle_id.push(battle_id);
        self.killmail_id.push(k.killmail_id);
        self.killmail_time.push(k.killmail_time);
        self.system_id.push(k.system_id);
        self.victim_character_id.push(k.victim_character_id);
        self.victim_alliance_id.push(k.victim_alliance_id);
        self.victim_ship_type_id.push(k.victim_ship_type_id);
        self.victim_team.push(k.victim_team.as_str().to_owned());
        self.isk_destroyed.push(k.isk_destroyed);
    }

    pub fn len(&self) -> usize {
        self.battle_id.len()
    }
}

/// A report whose participants or killmails repeat an id cannot be written row by row.
fn check_unique(r: &BattleReport) -> Result<(), SinkError> {
    let mut seen = HashSet::with_capacity(r.participants.len());
    for p in &r.participants {
        if !seen.insert(p.character_id) {
            return Err(SinkError::InconsistentChanges(format!(
                "battle {} lists character {} twice",
                r.battle_id, p.character_id
            )));
        }
    }
    seen.clear();
    for k in &r.killmails {
        if !seen.insert(k.killmail_id) {
            return Err(SinkError::InconsistentChanges(format!(
                "battle {} lists killmail {} twice",
                r.battle_id, k.killmail_id
            )));
        }
    }
    Ok(())
}

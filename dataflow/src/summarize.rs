//! Building a battle's [`BattleReport`] from its killmails: sides, per-side totals, participants,
//! top killers and losers, alliances, ship types, timeline, systems and the outcome.
//!
//! Outcome rule: a battle is *decisive* when it has at least [`DECISIVE_MIN_KILLMAILS`]
//! killmails and one side destroyed at least [`DECISIVE_EFFICIENCY`] of all ISK destroyed (of all
//! ships when no killmail carries a value); that side wins.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::killmail::Killmail;
use crate::report::{
    battle_id, AllianceStats, BattleKillmail, BattleReport, Participant, Statistics, SystemStats,
    Team, TeamTotals, TimelineEntry, TopKiller, TopLoser,
};
use crate::sides::{self, Entity};

/// Fewest killmails for a decisive outcome.
pub const DECISIVE_MIN_KILLMAILS: i32 = 5;
/// Share of the ISK destroyed a side must have destroyed to win decisively.
pub const DECISIVE_EFFICIENCY: f64 = 0.7;
/// Entries in the top killers and top losers lists.
pub const TOP_N: usize = 10;

#[derive(Default)]
struct Pilot {
    name: Option<String>,
    corporation: Option<(i64, Option<String>)>,
    alliance: Option<(i64, Option<String>)>,
    entity: Option<Entity>,
    ships: Vec<i64>,
    kills: i32,
    deaths: i32,
    damage_done: i64,
    damage_received: i64,
    isk_destroyed: i64,
    isk_lost: i64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

impl Pilot {
    fn seen(
        &mut self,
        at: DateTime<Utc>,
        name: &Option<String>,
        corp: (Option<i64>, &Option<String>),
        alliance: (Option<i64>, &Option<String>),
        entity: Option<Entity>,
    ) {
        // Killmails arrive in (time, id) order: the first appearance fixes the affiliation.
        if self.first.is_none() {
            self.corporation = corp.0.map(|c| (c, corp.1.clone()));
            self.alliance = alliance.0.map(|a| (a, alliance.1.clone()));
            self.entity = entity;
        }
        if self.name.is_none() {
            self.name = name.clone().filter(|n| !n.is_empty());
        }
        if let (Some((c, n @ None)), Some(name)) = (self.corporation.as_mut(), corp.1) {
            if Some(*c) == corp.0 {
                *n = Some(name.clone());
            }
        }
        if let (Some((a, n @ None)), Some(name)) = (self.alliance.as_mut(), alliance.1) {
            if Some(*a) == alliance.0 {
                *n = Some(name.clone());
            }
        }
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }
}

/// Summarizes a battle. `killmails` must be non-empty; any order.
pub fn summarize(killmails: &[&Killmail]) -> BattleReport {
    let mut kms: Vec<&Killmail> = killmails.to_vec();
    kms.sort_by_key(|k| (k.killmail_time, k.killmail_id));
    let sides = sides::solve(&kms);
    let side_of = |e: Option<Entity>| e.and_then(|e| sides.side.get(&e).copied());

    // Per pilot.
    let mut pilots: BTreeMap<i64, Pilot> = BTreeMap::new();
    for km in &kms {
        let at = km.killmail_time;
        let v = &km.victim;
        if let Some(ch) = v.character_id {
            let p = pilots.entry(ch).or_default();
            p.seen(
                at,
                &v.character_name,
                (v.corporation_id, &v.corporation_name),
                (v.alliance_id, &v.alliance_name),
                Entity::of(v.character_id, v.corporation_id, v.alliance_id),
            );
            p.deaths += 1;
            p.damage_received += v.damage_taken;
            p.isk_lost += km.isk_value;
            p.ships.push(v.ship_type_id);
        }
        for a in km.player_attackers() {
            let ch = a.character_id.expect("player attacker");
            let p = pilots.entry(ch).or_default();
            p.seen(
                at,
                &a.character_name,
                (a.corporation_id, &a.corporation_name),
                (a.alliance_id, &a.alliance_name),
                Entity::of(a.character_id, a.corporation_id, a.alliance_id),
            );
            p.damage_done += a.damage_done;
            if a.final_blow {
                p.kills += 1;
                p.isk_destroyed += km.isk_value;
            }
            if let Some(s) = a.ship_type_id {
                p.ships.push(s);
            }
        }
    }

    // Name the sides: team A is the side with more pilots (ties: the side of the smallest
    // character id, then of the smallest entity).
    let mut count = [0i32; 2];
    for p in pilots.values() {
        if let Some(s) = side_of(p.entity) {
            count[s as usize] += 1;
        }
    }
    let first_side = pilots
        .values()
        .find_map(|p| side_of(p.entity))
        .or_else(|| sides.side.values().next().copied())
        .unwrap_or(false);
    let a_side = if count[0] != count[1] {
        count[1] > count[0]
    } else {
        first_side
    };
    let team = |s: Option<bool>| match s {
        Some(s) if s == a_side => Team::A,
        Some(_) => Team::B,
        None => Team::B,
    };

    // Per killmail.
    let mut totals = [TeamTotals::default(), TeamTotals::default()];
    let idx = |t: Team| (t == Team::B) as usize;
    let mut battle_kms = Vec::with_capacity(kms.len());
    let mut timeline = Vec::with_capacity(kms.len());
    let mut systems: BTreeMap<i64, (i32, String, i64, String)> = BTreeMap::new();
    let mut alliances: [BTreeMap<i64, AllianceStats>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut isk_estimated = false;
    let mut total_isk = 0i64;
    for km in &kms {
        let v = &km.victim;
        let victim_team = team(side_of(Entity::of(
            v.character_id,
            v.corporation_id,
            v.alliance_id,
        )));
        let lost = &mut totals[idx(victim_team)];
        lost.isk_lost += km.isk_value;
        lost.ships_lost += 1;
        let won = &mut totals[idx(victim_team.other())];
        won.isk_destroyed += km.isk_value;
        won.ships_destroyed += 1;
        total_isk += km.isk_value;
        isk_estimated |= km.isk_estimated;
        battle_kms.push(BattleKillmail {
            killmail_id: km.killmail_id,
            killmail_time: km.killmail_time,
            system_id: km.solar_system_id,
            victim_character_id: v.character_id,
            victim_alliance_id: v.alliance_id,
            victim_ship_type_id: Some(v.ship_type_id),
            victim_team,
            isk_destroyed: km.isk_value,
        });
        timeline.push(TimelineEntry {
            timestamp: km.killmail_time,
            killmail_id: km.killmail_id,
            victim_team,
            isk_destroyed: km.isk_value,
        });
        let sys = systems.entry(km.solar_system_id).or_insert_with(|| {
            (
                0,
                km.solar_system_name.clone(),
                km.region_id,
                km.region_name.clone(),
            )
        });
        sys.0 += 1;
        if let Some(a) = v.alliance_id {
            let entry = alliance_entry(&mut alliances[idx(victim_team)], a, &v.alliance_name);
            entry.isk_lost += km.isk_value;
        }
    }

    let mut participants = Vec::with_capacity(pilots.len());
    let mut ship_types: [BTreeMap<i64, i32>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for (&character_id, p) in &mut pilots {
        let t = team(side_of(p.entity));
        p.ships.sort_unstable();
        p.ships.dedup();
        for s in &p.ships {
            *ship_types[idx(t)].entry(*s).or_insert(0) += 1;
        }
        if let Some((a, name)) = &p.alliance {
            let entry = alliance_entry(&mut alliances[idx(t)], *a, name);
            entry.pilots += 1;
            entry.isk_destroyed += p.isk_destroyed;
        }
        totals[idx(t)].pilots += 1;
        participants.push(Participant {
            character_id,
            character_name: p.name.clone().unwrap_or_default(),
            corporation_id: p.corporation.as_ref().map(|c| c.0),
            corporation_name: p.corporation.as_ref().and_then(|c| c.1.clone()),
            alliance_id: p.alliance.as_ref().map(|a| a.0),
            alliance_name: p.alliance.as_ref().and_then(|a| a.1.clone()),
            team: t,
            third_party: p
                .entity
                .and_then(|e| sides.third_parties.get(&e).copied())
                .unwrap_or(false),
            ships_flown: p.ships.clone(),
            kills: p.kills,
            deaths: p.deaths,
            damage_done: p.damage_done,
            damage_received: p.damage_received,
            isk_destroyed: p.isk_destroyed,
            isk_lost: p.isk_lost,
            first_seen_at: p.first.expect("seen"),
            last_seen_at: p.last.expect("seen"),
        });
    }

    let mut top_killers: Vec<TopKiller> = participants
        .iter()
        .filter(|p| p.kills > 0)
        .map(|p| TopKiller {
            character_id: p.character_id,
            name: p.character_name.clone(),
            team: p.team,
            kills: p.kills,
            isk_destroyed: p.isk_destroyed,
        })
        .collect();
    top_killers.sort_by(|a, b| {
        (b.kills, b.isk_destroyed, a.character_id).cmp(&(a.kills, a.isk_destroyed, b.character_id))
    });
    top_killers.truncate(TOP_N);
    let mut top_losers: Vec<TopLoser> = participants
        .iter()
        .filter(|p| p.deaths > 0)
        .map(|p| TopLoser {
            character_id: p.character_id,
            name: p.character_name.clone(),
            team: p.team,
            deaths: p.deaths,
            isk_lost: p.isk_lost,
        })
        .collect();
    top_losers.sort_by(|a, b| {
        (b.isk_lost, b.deaths, a.character_id).cmp(&(a.isk_lost, a.deaths, b.character_id))
    });
    top_losers.truncate(TOP_N);

    let sorted_alliances = |m: &BTreeMap<i64, AllianceStats>| {
        let mut v: Vec<AllianceStats> = m.values().cloned().collect();
        v.sort_by(|a, b| {
            (b.pilots, b.isk_destroyed, a.alliance_id).cmp(&(
                a.pilots,
                a.isk_destroyed,
                b.alliance_id,
            ))
        });
        v
    };
    let mut systems_involved: Vec<SystemStats> = systems
        .iter()
        .map(|(&id, (n, name, _, _))| SystemStats {
            system_id: id,
            name: name.clone(),
            killmails: *n,
        })
        .collect();
    systems_involved.sort_by(|a, b| (b.killmails, a.system_id).cmp(&(a.killmails, b.system_id)));
    let primary = &systems_involved[0];
    let (_, _, region_id, region_name) = systems[&primary.system_id].clone();

    let total_killmails = kms.len() as i32;
    let share = |t: &TeamTotals| {
        let all_isk = totals[0].isk_destroyed + totals[1].isk_destroyed;
        if all_isk > 0 {
            t.isk_destroyed as f64 / all_isk as f64
        } else {
            t.ships_destroyed as f64 / total_killmails.max(1) as f64
        }
    };
    let winning_team = if total_killmails < DECISIVE_MIN_KILLMAILS {
        None
    } else if share(&totals[0]) >= DECISIVE_EFFICIENCY {
        Some(Team::A)
    } else if share(&totals[1]) >= DECISIVE_EFFICIENCY {
        Some(Team::B)
    } else {
        None
    };

    let first = kms[0];
    let last = kms[kms.len() - 1];
    let [team_a, team_b] = totals;
    BattleReport {
        battle_id: battle_id(first.killmail_id),
        first_killmail_id: first.killmail_id,
        started_at: first.killmail_time,
        ended_at: last.killmail_time,
        primary_system_id: primary.system_id,
        primary_system_name: primary.name.clone(),
        primary_region_id: region_id,
        primary_region_name: region_name,
        total_killmails,
        total_pilots: participants.len() as i32,
        total_isk_destroyed: total_isk,
        team_a,
        team_b,
        is_decisive: winning_team.is_some(),
        winning_team,
        last_killmail_at: last.killmail_time,
        isk_estimated,
        participants,
        killmails: battle_kms,
        statistics: Statistics {
            top_killers,
            top_losers,
            team_a_ship_types: std::mem::take(&mut ship_types[0]),
            team_b_ship_types: std::mem::take(&mut ship_types[1]),
            team_a_alliances: sorted_alliances(&alliances[0]),
            team_b_alliances: sorted_alliances(&alliances[1]),
            killmail_timeline: timeline,
            systems_involved,
        },
    }
}

fn alliance_entry<'a>(
    map: &'a mut BTreeMap<i64, AllianceStats>,
    id: i64,
    name: &Option<String>,
) -> &'a mut AllianceStats {
    let e = map.entry(id).or_insert_with(|| AllianceStats {
        alliance_id: id,
        name: String::new(),
        pilots: 0,
        isk_destroyed: 0,
        isk_lost: 0,
    });
    if e.name.is_empty() {
        if let Some(n) = name {
            e.name = n.clone();
        }
    }
    e
}

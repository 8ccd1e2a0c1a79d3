//! Test support for the sink's integration tests: hand-built killmails and small, internally
//! consistent `BattleReport`s made from them (the engine is not involved), and a fresh
//! `TestDatabase` with a `Sink` on it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use battles_dataflow::killmail::{Attacker, Killmail, Victim};
use battles_dataflow::report::{
    battle_id, BattleKillmail, BattleReport, Participant, Statistics, SystemStats, Team,
    TeamTotals, TimelineEntry, TopKiller, TopLoser,
};
use battles_dataflow::BattleChange;
use battles_sink::{Sink, StepChanges, TestDatabase};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// A killmail in few words: who died, who shot (the first attacker lands the final blow).
#[derive(Clone, Debug)]
pub struct Km {
    pub id: i64,
    pub minute: i64,
    pub victim: i64,
    pub attackers: Vec<i64>,
    pub isk: i64,
}

pub fn km(id: i64, minute: i64, victim: i64, attackers: &[i64], isk: i64) -> Km {
    Km {
        id,
        minute,
        victim,
        attackers: attackers.to_vec(),
        isk,
    }
}

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-11-25T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Even characters fight for team A, odd ones for team B.
pub fn team_of(character: i64) -> Team {
    if character % 2 == 0 {
        Team::A
    } else {
        Team::B
    }
}

pub fn name_of(character: i64) -> String {
    format!("Pilot {character}")
}

/// The full typed killmail of `k` (Jita, a Rifter lost to Rifters).
pub fn killmail(k: &Km) -> Killmail {
    Killmail {
        killmail_id: k.id,
        killmail_hash: Some(format!("hash{}", k.id)),
        killmail_time: t0() + Duration::minutes(k.minute),
        solar_system_id: 30000142,
        solar_system_name: "Jita".into(),
        constellation_id: 20000020,
        region_id: 10000002,
        region_name: "The Forge".into(),
        victim: Victim {
            character_id: Some(k.victim),
            character_name: Some(name_of(k.victim)),
            corporation_id: Some(98000000 + k.victim),
            corporation_name: Some(format!("Corp {}", k.victim)),
            alliance_id: None,
            alliance_name: None,
            faction_id: None,
            ship_type_id: 587,
            ship_type_name: Some("Rifter".into()),
            ship_group_id: Some(25),
            ship_category_id: Some(6),
            damage_taken: 100 * k.attackers.len() as i64,
        },
        attackers: k
            .attackers
            .iter()
            .enumerate()
            .map(|(i, a)| Attacker {
                character_id: Some(*a),
                character_name: Some(name_of(*a)),
                corporation_id: Some(98000000 + a),
                corporation_name: Some(format!("Corp {a}")),
                alliance_id: None,
                alliance_name: None,
                faction_id: None,
                ship_type_id: Some(587),
                ship_type_name: Some("Rifter".into()),
                weapon_type_id: None,
                damage_done: 100,
                final_blow: i == 0,
            })
            .collect(),
        isk_value: k.isk,
        isk_estimated: false,
        dropped_value: None,
        destroyed_value: None,
        fitted_value: None,
        npc: Some(false),
        solo: Some(k.attackers.len() == 1),
        awox: Some(false),
    }
}

/// A consistent report of the battle made of `kms`.
/// The id of the battle whose earliest killmail is `k`.
pub fn battle_of(k: &Km) -> Uuid {
    battle_id(t0() + Duration::minutes(k.minute), k.id)
}

pub fn report(kms: &[Km]) -> Arc<BattleReport> {
    let mut kms = kms.to_vec();
    kms.sort_by_key(|k| (k.minute, k.id));
    let time = |k: &Km| t0() + Duration::minutes(k.minute);
    let mut people: BTreeMap<i64, Participant> = BTreeMap::new();
    fn touch(
        people: &mut BTreeMap<i64, Participant>,
        c: i64,
        at: DateTime<Utc>,
    ) -> &mut Participant {
        let p = people.entry(c).or_insert_with(|| Participant {
            character_id: c,
            character_name: name_of(c),
            corporation_id: Some(98000000 + c),
            corporation_name: Some(format!("Corp {c}")),
            alliance_id: None,
            alliance_name: None,
            team: team_of(c),
            third_party: false,
            ships_flown: vec![587],
            kills: 0,
            deaths: 0,
            damage_done: 0,
            damage_received: 0,
            isk_destroyed: 0,
            isk_lost: 0,
            first_seen_at: at,
            last_seen_at: at,
        });
        p.first_seen_at = p.first_seen_at.min(at);
        p.last_seen_at = p.last_seen_at.max(at);
        p
    }
    let mut killmails = Vec::new();
    let (mut a, mut b) = (TeamTotals::default(), TeamTotals::default());
    for k in &kms {
        let at = time(k);
        let v = touch(&mut people, k.victim, at);
        v.deaths += 1;
        v.isk_lost += k.isk;
        v.damage_received += 100 * k.attackers.len() as i64;
        for (i, c) in k.attackers.iter().enumerate() {
            let p = touch(&mut people, *c, at);
            p.damage_done += 100;
            if i == 0 {
                p.kills += 1;
                p.isk_destroyed += k.isk;
            }
        }
        let victim_team = team_of(k.victim);
        let (lost, won) = match victim_team {
            Team::A => (&mut a, &mut b),
            Team::B => (&mut b, &mut a),
        };
        lost.isk_lost += k.isk;
        lost.ships_lost += 1;
        won.isk_destroyed += k.isk;
        won.ships_destroyed += 1;
        killmails.push(BattleKillmail {
            killmail_id: k.id,
            killmail_time: at,
            system_id: 30000142,
            victim_character_id: Some(k.victim),
            victim_alliance_id: None,
            victim_ship_type_id: Some(587),
            victim_team,
            isk_destroyed: k.isk,
        });
    }
    let participants: Vec<Participant> = people.into_values().collect();
    a.pilots = participants.iter().filter(|p| p.team == Team::A).count() as i32;
    b.pilots = participants.iter().filter(|p| p.team == Team::B).count() as i32;
    let ship_types = |team: Team| {
        let n = participants.iter().filter(|p| p.team == team).count() as i32;
        if n == 0 {
            BTreeMap::new()
        } else {
            BTreeMap::from([(587, n)])
        }
    };
    let statistics = Statistics {
        top_killers: participants
            .iter()
            .filter(|p| p.kills > 0)
            .map(|p| TopKiller {
                character_id: p.character_id,
                name: p.character_name.clone(),
                team: p.team,
                kills: p.kills,
                isk_destroyed: p.isk_destroyed,
            })
            .collect(),
        top_losers: participants
            .iter()
            .filter(|p| p.deaths > 0)
            .map(|p| TopLoser {
                character_id: p.character_id,
                name: p.character_name.clone(),
                team: p.team,
                deaths: p.deaths,
                isk_lost: p.isk_lost,
            })
            .collect(),
        team_a_ship_types: ship_types(Team::A),
        team_b_ship_types: ship_types(Team::B),
        team_a_alliances: vec![],
        team_b_alliances: vec![],
        killmail_timeline: killmails
            .iter()
            .map(|k| TimelineEntry {
                timestamp: k.killmail_time,
                killmail_id: k.killmail_id,
                victim_team: k.victim_team,
                isk_destroyed: k.isk_destroyed,
            })
            .collect(),
        systems_involved: vec![SystemStats {
            system_id: 30000142,
            name: "Jita".into(),
            killmails: killmails.len() as i32,
        }],
    };
    let total = a.isk_destroyed + b.isk_destroyed;
    let winning_team = if a.isk_destroyed > 2 * b.isk_destroyed {
        Some(Team::A)
    } else if b.isk_destroyed > 2 * a.isk_destroyed {
        Some(Team::B)
    } else {
        None
    };
    let first = &kms[0];
    Arc::new(BattleReport {
        battle_id: battle_of(first),
        first_killmail_id: first.id,
        started_at: time(first),
        ended_at: time(kms.last().unwrap()),
        primary_system_id: 30000142,
        primary_system_name: "Jita".into(),
        primary_region_id: 10000002,
        primary_region_name: "The Forge".into(),
        total_killmails: kms.len() as i32,
        total_pilots: participants.len() as i32,
        total_isk_destroyed: total,
        team_a: a,
        team_b: b,
        is_decisive: winning_team.is_some(),
        winning_team,
        last_killmail_at: time(kms.last().unwrap()),
        isk_estimated: false,
        participants,
        killmails,
        statistics,
    })
}

/// A step that creates the battles of `battles` and stores their killmails.
pub fn create_step(battles: &[Vec<Km>]) -> StepChanges {
    StepChanges {
        battles: battles
            .iter()
            .map(|kms| BattleChange::Created(report(kms)))
            .collect(),
        killmails_inserted: battles
            .iter()
            .flatten()
            .map(killmail)
            .map(Into::into)
            .collect(),
        ..StepChanges::default()
    }
}

/// A fresh database and a sink on it.
pub async fn fresh() -> (TestDatabase, Sink) {
    let db = TestDatabase::create().await.expect("test database");
    let sink = db.sink().await.expect("sink");
    (db, sink)
}

//! The sequential reference: the battles of a set of killmails, computed the slow and plain way
//! from `docs/clustering.md`, the spec and the killmail fields alone. Tests check the engine
//! against it on random histories, so it shares **no rule code** with the engine: it does not
//! call `cell`, `link`, `graph`, `engine`, `resident`, `summarize` or `sides`, nor any method of
//! [`LinkRule`], [`EngineConfig`] or [`Killmail`]. It reads only plain data: killmail fields,
//! the fields (windows, jumps, character counts) of the configuration, [`Universe`] data
//! (stargate adjacency), and it builds [`BattleReport`]s; [`battle_id`] is the id's definition.
//!
//! How it works, all in O(n²):
//!
//! 1. Every pair of linker killmails is tested by the local rule (same system within 20 minutes
//!    sharing anyone; up to two jumps apart within 7.5 minutes sharing anyone or 8 minutes
//!    sharing two characters; with the configured values) and linked pairs are joined into
//!    components.
//! 2. Each satellite joins the nearest linker of its system within the satellite window that
//!    shares someone with it, preferring a linker where the satellite's victim appears.
//! 3. Satellites that joined nothing form runs (same system, within the window, a shared
//!    character, attached in the same cell: same region and satellite bucket).
//! 4. Each battle is summarized: pilots, names, sides (the signed-graph two-colouring written
//!    again here as a plain linear scan, giving the engine's sides), totals, statistics and
//!    the outcome. Sums are accumulated in `i128` and saturated into the report's `i64` fields.
//!
//! The satellite window and the bucket width (where satellite runs are cut) are read from the
//! configuration's fields and bounded here again.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::killmail::{Killmail, KillmailId};
use crate::link::LinkRule;
use crate::report::{
    battle_id, AllianceStats, BattleKillmail, BattleReport, Participant, Statistics, SystemStats,
    Team, TeamTotals, TimelineEntry, TopKiller, TopLoser,
};
use crate::universe::Universe;
use crate::EngineConfig;

/// The battles of a set of killmails (each id once), sorted by battle id.
pub fn battles(killmails: &[Killmail], config: &EngineConfig) -> Vec<BattleReport> {
    let mut ordered: Vec<&Killmail> = killmails.iter().collect();
    ordered.sort_by_key(|k| (k.killmail_time, k.killmail_id));
    let who: Vec<Who> = ordered.iter().map(|k| Who::of(k)).collect();
    let groups = battle_groups(&who, &config.rule, Universe::embedded());
    let mut reports: Vec<BattleReport> = groups
        .into_iter()
        .filter(|members| {
            let linkers = members.iter().filter(|&&i| !who[i].satellite).count();
            linkers >= config.min_linked_killmails
        })
        .map(|mut members| {
            members.sort_unstable();
            summarize(&members.iter().map(|&i| ordered[i]).collect::<Vec<_>>())
        })
        .collect();
    reports.sort_by_key(|r| r.battle_id);
    reports
}

// ---------------------------------------------------------------------------------------------
// Who and where: what the link rule reads of a killmail.
// ---------------------------------------------------------------------------------------------

/// NPC corporation ids: pilots in them share no allegiance.
const NPC_CORPORATION_IDS: std::ops::Range<i64> = 1_000_000..2_000_000;
/// SDE group of capsules.
const CAPSULE_GROUP: i64 = 29;
/// SDE category of ships.
const SHIP_CATEGORY: i64 = 6;

/// One killmail as the link rule sees it.
struct Who {
    time: i64,
    id: KillmailId,
    system: i64,
    region: i64,
    /// Not a fight between players: no player attacker, a pod, or a loss that is not a ship.
    satellite: bool,
    victim_character: Option<i64>,
    /// Characters of the victim and the attackers.
    characters: BTreeSet<i64>,
    /// Player (non-NPC) corporations of those characters.
    corporations: BTreeSet<i64>,
    /// Alliances of those characters.
    alliances: BTreeSet<i64>,
}

impl Who {
    fn of(km: &Killmail) -> Who {
        let mut who = Who {
            time: km.killmail_time.timestamp(),
            id: km.killmail_id,
            system: km.solar_system_id,
            region: km.region_id,
            satellite: is_satellite(km),
            victim_character: km.victim.character_id,
            characters: BTreeSet::new(),
            corporations: BTreeSet::new(),
            alliances: BTreeSet::new(),
        };
        let v = &km.victim;
        who.add_person(v.character_id, v.corporation_id, v.alliance_id);
        for a in &km.attackers {
            who.add_person(a.character_id, a.corporation_id, a.alliance_id);
        }
        who
    }

    /// A person counts only with a character: corporations and alliances of NPCs and of
    /// structures are no one.
    fn add_person(&mut self, character: Option<i64>, corp: Option<i64>, alliance: Option<i64>) {
        let Some(character) = character else { return };
        self.characters.insert(character);
        if let Some(corp) = corp.filter(|c| !NPC_CORPORATION_IDS.contains(c)) {
            self.corporations.insert(corp);
        }
        if let Some(alliance) = alliance {
            self.alliances.insert(alliance);
        }
    }
}

/// No attacker with a character, a capsule, or a loss whose category is known and not a ship.
fn is_satellite(km: &Killmail) -> bool {
    let no_player_attacker = km.attackers.iter().all(|a| a.character_id.is_none());
    let pod = km.victim.ship_group_id == Some(CAPSULE_GROUP);
    let not_a_ship = km
        .victim
        .ship_category_id
        .is_some_and(|c| c != SHIP_CATEGORY);
    no_player_attacker || pod || not_a_ship
}

fn share(a: &BTreeSet<i64>, b: &BTreeSet<i64>) -> bool {
    a.intersection(b).next().is_some()
}

// ---------------------------------------------------------------------------------------------
// The link score.
// ---------------------------------------------------------------------------------------------

/// Someone (a character, a player corporation or an alliance) is on both killmails.
fn share_anyone(a: &Who, b: &Who) -> bool {
    share(&a.characters, &b.characters)
        || share(&a.corporations, &b.corporations)
        || share(&a.alliances, &b.alliances)
}

/// Characters on both killmails.
fn characters_in_common(a: &Who, b: &Who) -> usize {
    a.characters.intersection(&b.characters).count()
}

/// Stargate jumps between two systems by breadth-first search, if at most `limit`.
fn jumps_apart(universe: &Universe, from: i64, to: i64, limit: usize) -> Option<usize> {
    let mut seen = BTreeSet::from([from]);
    let mut frontier = vec![from];
    for distance in 0..=limit {
        if frontier.contains(&to) {
            return Some(distance);
        }
        let mut next = Vec::new();
        for system in frontier {
            for &n in universe.neighbours(system) {
                if seen.insert(n) {
                    next.push(n);
                }
            }
        }
        frontier = next;
    }
    None
}

/// The rule written out from its fields: the same system within `same_system_secs` sharing
/// anyone; systems 1 to `gate_jumps` jumps apart within `adjacent_anyone_secs` sharing anyone,
/// or within `adjacent_secs` sharing at least `adjacent_min_characters` characters; nothing
/// else (no constellation or region links).
fn linked(rule: &LinkRule, a: &Who, b: &Who, universe: &Universe) -> bool {
    let apart = (a.time - b.time).abs();
    if a.system == b.system {
        return apart <= rule.same_system_secs && share_anyone(a, b);
    }
    match jumps_apart(universe, a.system, b.system, rule.gate_jumps) {
        Some(jumps) if jumps >= 1 => {}
        _ => return false,
    }
    (apart <= rule.adjacent_anyone_secs && share_anyone(a, b))
        || (apart <= rule.adjacent_secs
            && characters_in_common(a, b) >= rule.adjacent_min_characters)
}

/// How far in time a satellite looks for a fight in its system: `satellite_secs`, within one
/// second and the window.
fn satellite_window_secs(rule: &LinkRule) -> i64 {
    rule.satellite_secs.clamp(1, rule.window_secs.max(1))
}

/// The width of the engine's buckets, which satellite runs do not cross: `bucket_secs`, at
/// least the longest gap at which two killmails can link.
fn bucket_secs(rule: &LinkRule) -> i64 {
    let longest = rule
        .same_system_secs
        .max(rule.adjacent_secs)
        .max(rule.adjacent_anyone_secs)
        .clamp(1, rule.window_secs.max(1));
    rule.bucket_secs.max(longest)
}

// ---------------------------------------------------------------------------------------------
// Battles: components of linkers, satellites attached, runs of the satellites left.
// ---------------------------------------------------------------------------------------------

/// Connected components of `0..n` under `edges`, each a list of members in index order.
fn components(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut neighbours = vec![Vec::new(); n];
    for &(a, b) in edges {
        neighbours[a].push(b);
        neighbours[b].push(a);
    }
    let mut seen = vec![false; n];
    let mut out = Vec::new();
    for start in 0..n {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut members = vec![start];
        let mut stack = vec![start];
        while let Some(x) = stack.pop() {
            for &y in &neighbours[x] {
                if !seen[y] {
                    seen[y] = true;
                    members.push(y);
                    stack.push(y);
                }
            }
        }
        members.sort_unstable();
        out.push(members);
    }
    out
}

/// Every battle as indices into `who` (killmails in (time, id) order).
fn battle_groups(who: &[Who], rule: &LinkRule, universe: &Universe) -> Vec<Vec<usize>> {
    let linkers: Vec<usize> = (0..who.len()).filter(|&i| !who[i].satellite).collect();
    let mut links = Vec::new();
    for (x, &i) in linkers.iter().enumerate() {
        for (y, &j) in linkers.iter().enumerate().skip(x + 1) {
            if linked(rule, &who[i], &who[j], universe) {
                links.push((x, y));
            }
        }
    }
    let mut fights: Vec<Vec<usize>> = components(linkers.len(), &links)
        .into_iter()
        .map(|c| c.into_iter().map(|x| linkers[x]).collect())
        .collect();
    let fight_of: BTreeMap<usize, usize> = fights
        .iter()
        .enumerate()
        .flat_map(|(f, members)| members.iter().map(move |&i| (i, f)))
        .collect();

    let window = satellite_window_secs(rule);
    let mut loose = Vec::new();
    for s in (0..who.len()).filter(|&i| who[i].satellite) {
        match nearest_fight_killmail(who, &linkers, s, window) {
            Some(linker) => fights[fight_of[&linker]].push(s),
            None => loose.push(s),
        }
    }
    fights.extend(satellite_runs(who, &loose, window, bucket_secs(rule)));
    fights
}

/// The linker a satellite joins: same system, within the window, sharing someone; one with the
/// satellite's victim in it first, then the nearest in time, then the earliest (time, id).
fn nearest_fight_killmail(
    who: &[Who],
    linkers: &[usize],
    satellite: usize,
    window: i64,
) -> Option<usize> {
    let sat = &who[satellite];
    linkers
        .iter()
        .copied()
        .filter(|&l| {
            let linker = &who[l];
            linker.system == sat.system
                && (linker.time - sat.time).abs() <= window
                && share_anyone(linker, sat)
        })
        .min_by_key(|&l| {
            let linker = &who[l];
            let has_victim = sat
                .victim_character
                .is_some_and(|c| linker.characters.contains(&c));
            (
                !has_victim,
                (linker.time - sat.time).abs(),
                linker.time,
                linker.id,
            )
        })
}

/// The cell bucket in which a satellite is attached: buckets shifted by the satellite window.
fn satellite_cell_bucket(time: i64, bucket_secs: i64, window: i64) -> i64 {
    (time - window).div_euclid(bucket_secs) + 1
}

/// Runs of satellites that joined no fight: same system, within the window of each other,
/// sharing a character, and attached in the same (region, bucket) cell.
fn satellite_runs(who: &[Who], loose: &[usize], window: i64, bucket_secs: i64) -> Vec<Vec<usize>> {
    let mut pairs = Vec::new();
    for (x, &i) in loose.iter().enumerate() {
        for (y, &j) in loose.iter().enumerate().skip(x + 1) {
            let (a, b) = (&who[i], &who[j]);
            let same_cell = a.region == b.region
                && satellite_cell_bucket(a.time, bucket_secs, window)
                    == satellite_cell_bucket(b.time, bucket_secs, window);
            if same_cell
                && a.system == b.system
                && (a.time - b.time).abs() <= window
                && share(&a.characters, &b.characters)
            {
                pairs.push((x, y));
            }
        }
    }
    components(loose.len(), &pairs)
        .into_iter()
        .map(|c| c.into_iter().map(|x| loose[x]).collect())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The battle report.
// ---------------------------------------------------------------------------------------------

/// Fewest killmails for a decisive outcome.
const DECISIVE_KILLMAILS: i32 = 5;
/// Share of what was destroyed a side must have destroyed to win.
const DECISIVE_SHARE: f64 = 0.7;
/// Length of the top killers and top losers lists.
const TOP_LIST: usize = 10;

/// An `i128` sum stored in an `i64` field.
fn saturate(sum: i128) -> i64 {
    i64::try_from(sum).unwrap_or(if sum > 0 { i64::MAX } else { i64::MIN })
}

/// One character over the battle.
struct Pilot {
    /// First non-empty name.
    name: Option<String>,
    /// Affiliation at the first appearance (victim before attackers on one killmail).
    corporation: Option<i64>,
    alliance: Option<i64>,
    allegiance: Allegiance,
    ships: BTreeSet<i64>,
    kills: i32,
    deaths: i32,
    damage_done: i128,
    damage_received: i128,
    isk_destroyed: i128,
    isk_lost: i128,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

/// Pilots, names and systems gathered over a battle's killmails in (time, id) order.
#[derive(Default)]
struct Tally {
    pilots: BTreeMap<i64, Pilot>,
    corporation_names: BTreeMap<i64, String>,
    alliance_names: BTreeMap<i64, String>,
    /// System id -> (killmails, name, region id, region name), names from its first killmail.
    systems: BTreeMap<i64, (i32, String, i64, String)>,
}

/// Keeps the first non-empty name of an id.
fn note_name(names: &mut BTreeMap<i64, String>, id: Option<i64>, name: &Option<String>) {
    if let (Some(id), Some(name)) = (id, name.as_ref().filter(|n| !n.is_empty())) {
        names.entry(id).or_insert_with(|| name.clone());
    }
}

impl Tally {
    /// The pilot behind an appearance, created with this appearance's affiliation.
    fn appearance(
        &mut self,
        character: i64,
        corp: Option<i64>,
        alliance: Option<i64>,
        name: &Option<String>,
        at: DateTime<Utc>,
    ) -> &mut Pilot {
        let pilot = self.pilots.entry(character).or_insert_with(|| Pilot {
            name: None,
            corporation: corp,
            alliance,
            allegiance: Allegiance::of(Some(character), corp, alliance)
                .expect("a character has an allegiance"),
            ships: BTreeSet::new(),
            kills: 0,
            deaths: 0,
            damage_done: 0,
            damage_received: 0,
            isk_destroyed: 0,
            isk_lost: 0,
            first: at,
            last: at,
        });
        if pilot.name.is_none() {
            pilot.name = name.clone().filter(|n| !n.is_empty());
        }
        pilot.first = pilot.first.min(at);
        pilot.last = pilot.last.max(at);
        pilot
    }

    fn add(&mut self, km: &Killmail) {
        let at = km.killmail_time;
        let isk = i128::from(km.isk_value);
        let v = &km.victim;
        note_name(
            &mut self.corporation_names,
            v.corporation_id,
            &v.corporation_name,
        );
        note_name(&mut self.alliance_names, v.alliance_id, &v.alliance_name);
        if let Some(character) = v.character_id {
            let p = self.appearance(
                character,
                v.corporation_id,
                v.alliance_id,
                &v.character_name,
                at,
            );
            p.deaths += 1;
            p.damage_received += i128::from(v.damage_taken);
            p.isk_lost += isk;
            p.ships.insert(v.ship_type_id);
        }
        for a in &km.attackers {
            let Some(character) = a.character_id else {
                continue;
            };
            note_name(
                &mut self.corporation_names,
                a.corporation_id,
                &a.corporation_name,
            );
            note_name(&mut self.alliance_names, a.alliance_id, &a.alliance_name);
            let p = self.appearance(
                character,
                a.corporation_id,
                a.alliance_id,
                &a.character_name,
                at,
            );
            p.damage_done += i128::from(a.damage_done);
            if a.final_blow {
                p.kills += 1;
                p.isk_destroyed += isk;
            }
            p.ships.extend(a.ship_type_id);
        }
        let system = self.systems.entry(km.solar_system_id).or_insert_with(|| {
            let name = km.solar_system_name.clone();
            (0, name, km.region_id, km.region_name.clone())
        });
        system.0 += 1;
    }
}

/// Per-team sums before they are stored.
#[derive(Default)]
struct TeamSums {
    pilots: i32,
    isk_destroyed: i128,
    isk_lost: i128,
    ships_destroyed: i32,
    ships_lost: i32,
}

impl TeamSums {
    fn totals(&self) -> TeamTotals {
        TeamTotals {
            pilots: self.pilots,
            isk_destroyed: saturate(self.isk_destroyed),
            isk_lost: saturate(self.isk_lost),
            ships_destroyed: self.ships_destroyed,
            ships_lost: self.ships_lost,
        }
    }
}

/// One alliance on one team before it is stored.
#[derive(Default)]
struct AllianceSums {
    pilots: i32,
    isk_destroyed: i128,
    isk_lost: i128,
}

fn team_index(team: Team) -> usize {
    match team {
        Team::A => 0,
        Team::B => 1,
    }
}

/// The report of one battle; `killmails` non-empty, in (time, id) order.
fn summarize(killmails: &[&Killmail]) -> BattleReport {
    let mut tally = Tally::default();
    for km in killmails {
        tally.add(km);
    }
    let sides = Sides::solve(killmails);
    let team_a_side = team_a_side(&tally, &sides);
    let team_of = |allegiance: Option<Allegiance>| match allegiance.and_then(|e| sides.side_of(e)) {
        Some(side) if side == team_a_side => Team::A,
        _ => Team::B,
    };

    let mut teams = [TeamSums::default(), TeamSums::default()];
    let mut alliances: [BTreeMap<i64, AllianceSums>; 2] = Default::default();
    let mut battle_killmails = Vec::with_capacity(killmails.len());
    let mut total_isk: i128 = 0;
    for km in killmails {
        let v = &km.victim;
        let victim_team = team_of(Allegiance::of(
            v.character_id,
            v.corporation_id,
            v.alliance_id,
        ));
        let isk = i128::from(km.isk_value);
        let losers = &mut teams[team_index(victim_team)];
        losers.isk_lost += isk;
        losers.ships_lost += 1;
        let winners = &mut teams[team_index(victim_team.other())];
        winners.isk_destroyed += isk;
        winners.ships_destroyed += 1;
        total_isk += isk;
        if let Some(alliance) = v.alliance_id {
            let entry = alliances[team_index(victim_team)].entry(alliance);
            entry.or_default().isk_lost += isk;
        }
        battle_killmails.push(BattleKillmail {
            killmail_id: km.killmail_id,
            killmail_time: km.killmail_time,
            system_id: km.solar_system_id,
            victim_character_id: v.character_id,
            victim_alliance_id: v.alliance_id,
            victim_ship_type_id: Some(v.ship_type_id),
            victim_team,
            isk_destroyed: km.isk_value,
        });
    }

    let mut ship_types: [BTreeMap<i64, i32>; 2] = Default::default();
    let mut participants = Vec::with_capacity(tally.pilots.len());
    for (&character_id, p) in &tally.pilots {
        let team = team_of(Some(p.allegiance));
        let t = team_index(team);
        teams[t].pilots += 1;
        for &ship in &p.ships {
            *ship_types[t].entry(ship).or_insert(0) += 1;
        }
        if let Some(alliance) = p.alliance {
            let entry = alliances[t].entry(alliance).or_default();
            entry.pilots += 1;
            entry.isk_destroyed += p.isk_destroyed;
        }
        participants.push(participant(character_id, p, team, &tally, &sides));
    }

    let winning_team = outcome(&teams, killmails.len() as i32);
    let timeline = battle_killmails
        .iter()
        .map(|k| TimelineEntry {
            timestamp: k.killmail_time,
            killmail_id: k.killmail_id,
            victim_team: k.victim_team,
            isk_destroyed: k.isk_destroyed,
        })
        .collect();
    let systems_involved = systems_involved(&tally);
    let primary = &systems_involved[0];
    let (_, _, primary_region_id, primary_region_name) = &tally.systems[&primary.system_id];
    let alliance_list = |t: usize| alliance_stats(&alliances[t], &tally.alliance_names);
    let first = killmails[0];
    let last = killmails[killmails.len() - 1];
    BattleReport {
        battle_id: battle_id(first.killmail_time, first.killmail_id),
        first_killmail_id: first.killmail_id,
        started_at: first.killmail_time,
        ended_at: last.killmail_time,
        primary_system_id: primary.system_id,
        primary_system_name: primary.name.clone(),
        primary_region_id: *primary_region_id,
        primary_region_name: primary_region_name.clone(),
        total_killmails: killmails.len() as i32,
        total_pilots: participants.len() as i32,
        total_isk_destroyed: saturate(total_isk),
        team_a: teams[0].totals(),
        team_b: teams[1].totals(),
        is_decisive: winning_team.is_some(),
        winning_team,
        last_killmail_at: last.killmail_time,
        isk_estimated: killmails.iter().any(|k| k.isk_estimated),
        statistics: Statistics {
            top_killers: top_killers(&participants),
            top_losers: top_losers(&participants),
            team_a_ship_types: std::mem::take(&mut ship_types[0]),
            team_b_ship_types: std::mem::take(&mut ship_types[1]),
            team_a_alliances: alliance_list(0),
            team_b_alliances: alliance_list(1),
            killmail_timeline: timeline,
            systems_involved,
        },
        participants,
        killmails: battle_killmails,
    }
}

/// The side named team A: the side with more pilots; on a tie the side of the pilot with the
/// smallest character id; with no pilots the side of the smallest allegiance; else `false`.
fn team_a_side(tally: &Tally, sides: &Sides) -> bool {
    let pilot_sides: Vec<bool> = tally
        .pilots
        .values()
        .filter_map(|p| sides.side_of(p.allegiance))
        .collect();
    let on_true = pilot_sides.iter().filter(|&&s| s).count();
    let on_false = pilot_sides.len() - on_true;
    if on_true != on_false {
        return on_true > on_false;
    }
    pilot_sides
        .first()
        .copied()
        .or_else(|| sides.side.values().next().copied())
        .unwrap_or(false)
}

fn participant(
    character_id: i64,
    p: &Pilot,
    team: Team,
    tally: &Tally,
    sides: &Sides,
) -> Participant {
    Participant {
        character_id,
        character_name: p.name.clone().unwrap_or_default(),
        corporation_id: p.corporation,
        corporation_name: p
            .corporation
            .and_then(|c| tally.corporation_names.get(&c).cloned()),
        alliance_id: p.alliance,
        alliance_name: p
            .alliance
            .and_then(|a| tally.alliance_names.get(&a).cloned()),
        team,
        third_party: sides
            .third_party
            .get(&p.allegiance)
            .copied()
            .unwrap_or(false),
        ships_flown: p.ships.iter().copied().collect(),
        kills: p.kills,
        deaths: p.deaths,
        damage_done: saturate(p.damage_done),
        damage_received: saturate(p.damage_received),
        isk_destroyed: saturate(p.isk_destroyed),
        isk_lost: saturate(p.isk_lost),
        first_seen_at: p.first,
        last_seen_at: p.last,
    }
}

/// Decisive with enough killmails when one team destroyed at least the decisive share of all
/// ISK destroyed (of all ships when nothing carried a value); team A is looked at first.
fn outcome(teams: &[TeamSums; 2], total_killmails: i32) -> Option<Team> {
    if total_killmails < DECISIVE_KILLMAILS {
        return None;
    }
    let all_isk = teams[0].isk_destroyed + teams[1].isk_destroyed;
    let share = |t: &TeamSums| {
        if all_isk > 0 {
            t.isk_destroyed as f64 / all_isk as f64
        } else {
            t.ships_destroyed as f64 / total_killmails as f64
        }
    };
    [Team::A, Team::B]
        .into_iter()
        .find(|&team| share(&teams[team_index(team)]) >= DECISIVE_SHARE)
}

/// Most kills first, then most ISK destroyed, then the smaller character id.
fn top_killers(participants: &[Participant]) -> Vec<TopKiller> {
    let mut killers: Vec<&Participant> = participants.iter().filter(|p| p.kills > 0).collect();
    killers.sort_by_key(|p| (Reverse(p.kills), Reverse(p.isk_destroyed), p.character_id));
    killers
        .into_iter()
        .take(TOP_LIST)
        .map(|p| TopKiller {
            character_id: p.character_id,
            name: p.character_name.clone(),
            team: p.team,
            kills: p.kills,
            isk_destroyed: p.isk_destroyed,
        })
        .collect()
}

/// Most ISK lost first, then most deaths, then the smaller character id.
fn top_losers(participants: &[Participant]) -> Vec<TopLoser> {
    let mut losers: Vec<&Participant> = participants.iter().filter(|p| p.deaths > 0).collect();
    losers.sort_by_key(|p| (Reverse(p.isk_lost), Reverse(p.deaths), p.character_id));
    losers
        .into_iter()
        .take(TOP_LIST)
        .map(|p| TopLoser {
            character_id: p.character_id,
            name: p.character_name.clone(),
            team: p.team,
            deaths: p.deaths,
            isk_lost: p.isk_lost,
        })
        .collect()
}

/// Most pilots first, then most ISK destroyed, then the smaller alliance id.
fn alliance_stats(
    sums: &BTreeMap<i64, AllianceSums>,
    names: &BTreeMap<i64, String>,
) -> Vec<AllianceStats> {
    let mut out: Vec<AllianceStats> = sums
        .iter()
        .map(|(&alliance_id, s)| AllianceStats {
            alliance_id,
            name: names.get(&alliance_id).cloned().unwrap_or_default(),
            pilots: s.pilots,
            isk_destroyed: saturate(s.isk_destroyed),
            isk_lost: saturate(s.isk_lost),
        })
        .collect();
    out.sort_by_key(|a| (Reverse(a.pilots), Reverse(a.isk_destroyed), a.alliance_id));
    out
}

/// Most killmails first, then the smaller system id.
fn systems_involved(tally: &Tally) -> Vec<SystemStats> {
    let mut out: Vec<SystemStats> = tally
        .systems
        .iter()
        .map(|(&system_id, (killmails, name, _, _))| SystemStats {
            system_id,
            name: name.clone(),
            killmails: *killmails,
        })
        .collect();
    out.sort_by_key(|s| (Reverse(s.killmails), s.system_id));
    out
}

// ---------------------------------------------------------------------------------------------
// Sides: allegiances, hostility and friendship weights, the two-colouring.
// ---------------------------------------------------------------------------------------------

/// What sides are solved for: the alliance, else the player corporation, else the character,
/// else (no character) whatever corporation there is. Ordered alliances first, then
/// corporations, then characters, each by id: the solver's tie-breaks follow this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Allegiance {
    Alliance(i64),
    Corporation(i64),
    Character(i64),
}

impl Allegiance {
    fn of(character: Option<i64>, corp: Option<i64>, alliance: Option<i64>) -> Option<Allegiance> {
        let player_corp = corp.filter(|c| !NPC_CORPORATION_IDS.contains(c));
        alliance
            .map(Allegiance::Alliance)
            .or(player_corp.map(Allegiance::Corporation))
            .or(character.map(Allegiance::Character))
            .or(corp.map(Allegiance::Corporation))
    }
}

/// Fixed-point units of one killmail's worth of hostility.
const WEIGHT_UNITS: f64 = 1_000_000.0;
/// Friendship weight of one killmail (shared among the co-attackers).
const FRIENDSHIP_WEIGHT: f64 = 0.5;
/// Hostility towards one's own side, as a share of that towards the other, that makes a third
/// party.
const THIRD_PARTY_SHARE: f64 = 0.25;
/// Rounds of flipping after the greedy placement.
const FLIP_ROUNDS: usize = 20;
/// A flip must gain more than this.
const FLIP_GAIN: f64 = 1e-9;

/// Summed signed weights by allegiance pair (smaller first): positive hostile, negative
/// friendly; and every allegiance seen.
#[derive(Default)]
struct Ties {
    weights: BTreeMap<(Allegiance, Allegiance), i64>,
    allegiances: BTreeSet<Allegiance>,
}

impl Ties {
    fn add(&mut self, a: Allegiance, b: Allegiance, weight: f64) {
        if a == b {
            return;
        }
        let pair = (a.min(b), a.max(b));
        *self.weights.entry(pair).or_insert(0) += (weight * WEIGHT_UNITS).round() as i64;
    }

    /// Hostility from the victim to each player attacker (half evenly, half by damage share)
    /// and friendship from the top-damage attacker to each other attacker allegiance.
    fn add_killmail(&mut self, km: &Killmail) {
        let v = &km.victim;
        let victim = Allegiance::of(v.character_id, v.corporation_id, v.alliance_id);
        self.allegiances.extend(victim);
        let shooters: Vec<(Allegiance, i64)> = km
            .attackers
            .iter()
            .filter_map(|a| {
                a.character_id?;
                let allegiance = Allegiance::of(a.character_id, a.corporation_id, a.alliance_id)?;
                Some((allegiance, a.damage_done.max(0)))
            })
            .collect();
        if shooters.is_empty() {
            return;
        }
        let damage: i64 = shooters.iter().map(|s| s.1).sum();
        let count = shooters.len() as f64;
        if let Some(victim) = victim {
            for &(shooter, dealt) in &shooters {
                let by_damage = if damage > 0 {
                    dealt as f64 / damage as f64
                } else {
                    1.0 / count
                };
                self.add(victim, shooter, 0.5 / count + 0.5 * by_damage);
            }
        }
        let mut top = shooters[0];
        for &s in &shooters[1..] {
            if s.1 > top.1 || (s.1 == top.1 && s.0 < top.0) {
                top = s;
            }
        }
        let others: BTreeSet<Allegiance> = shooters
            .iter()
            .map(|s| s.0)
            .filter(|&a| a != top.0)
            .collect();
        let each = FRIENDSHIP_WEIGHT / others.len().max(1) as f64;
        for &other in &others {
            self.add(top.0, other, -each);
        }
        self.allegiances.extend(shooters.iter().map(|s| s.0));
    }
}

/// The two sides (`false`, `true`: not yet named) and the third parties.
struct Sides {
    side: BTreeMap<Allegiance, bool>,
    third_party: BTreeMap<Allegiance, bool>,
}

impl Sides {
    fn solve(killmails: &[&Killmail]) -> Sides {
        let mut ties = Ties::default();
        for km in killmails {
            ties.add_killmail(km);
        }
        two_colour(&ties)
    }

    fn side_of(&self, allegiance: Allegiance) -> Option<bool> {
        self.side.get(&allegiance).copied()
    }
}

/// The signed-graph two-colouring, written plainly. Allegiances are numbered in order and the
/// edges (non-zero summed weights) kept in pair order, so every float sum is added in the same
/// order as the engine's solver adds it and the result is identical.
///
/// Greedy: repeatedly place the unplaced allegiance with the greatest tie (absolute weight) to
/// placed ones, ties to the greater total strength, then the smaller allegiance; when none is
/// tied to anything placed, the unplaced one of greatest strength (ties: smaller). It goes on
/// the side its pull prefers (hostile to a side pushes away from it, friendly towards it),
/// `false` when untied or undecided. Then up to [`FLIP_ROUNDS`] rounds, in strength order, flip
/// any allegiance whose flip gains more than [`FLIP_GAIN`] satisfied weight.
fn two_colour(ties: &Ties) -> Sides {
    let names: Vec<Allegiance> = ties.allegiances.iter().copied().collect();
    let number: BTreeMap<Allegiance, usize> =
        names.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let n = names.len();
    let mut edges_of: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    let mut strength = vec![0.0f64; n];
    for (&(a, b), &w) in &ties.weights {
        if w == 0 {
            continue;
        }
        let w = w as f64 / WEIGHT_UNITS;
        let (i, j) = (number[&a], number[&b]);
        edges_of[i].push((j, w));
        edges_of[j].push((i, w));
        strength[i] += w.abs();
        strength[j] += w.abs();
    }
    let mut by_strength: Vec<usize> = (0..n).collect();
    by_strength.sort_by(|&a, &b| strength[b].total_cmp(&strength[a]).then(a.cmp(&b)));

    let mut side: Vec<Option<bool>> = vec![None; n];
    let mut towards_false = vec![0.0f64; n];
    let mut tied = vec![0.0f64; n];
    for _ in 0..n {
        let tied_best = (0..n)
            .filter(|&i| side[i].is_none() && tied[i] > 0.0)
            .max_by(|&a, &b| {
                tied[a]
                    .total_cmp(&tied[b])
                    .then(strength[a].total_cmp(&strength[b]))
                    .then(b.cmp(&a))
            });
        let pick = tied_best.unwrap_or_else(|| {
            *by_strength
                .iter()
                .find(|&&i| side[i].is_none())
                .expect("an unplaced allegiance is left")
        });
        let s = tied[pick] != 0.0 && towards_false[pick] < 0.0;
        side[pick] = Some(s);
        for &(j, w) in &edges_of[pick] {
            if side[j].is_none() {
                towards_false[j] += if s { w } else { -w };
                tied[j] += w.abs();
            }
        }
    }
    let mut side: Vec<bool> = side.into_iter().map(|s| s.expect("all placed")).collect();

    for _ in 0..FLIP_ROUNDS {
        let mut flipped = false;
        for &i in &by_strength {
            let gain: f64 = edges_of[i]
                .iter()
                .map(|&(j, w)| if side[i] == side[j] { w } else { -w })
                .sum();
            if gain > FLIP_GAIN {
                side[i] = !side[i];
                flipped = true;
            }
        }
        if !flipped {
            break;
        }
    }

    let mut out = Sides {
        side: BTreeMap::new(),
        third_party: BTreeMap::new(),
    };
    for i in 0..n {
        let hostile = edges_of[i].iter().filter(|e| e.1 > 0.0);
        let (mut own, mut other) = (0.0, 0.0);
        for &(j, w) in hostile {
            if side[i] == side[j] {
                own += w;
            } else {
                other += w;
            }
        }
        out.side.insert(names[i], side[i]);
        out.third_party
            .insert(names[i], own > 0.0 && own >= THIRD_PARTY_SHARE * other);
    }
    out
}

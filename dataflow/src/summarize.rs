//! Building a battle's [`BattleReport`] from its killmails: sides, per-side totals, participants,
//! top killers and losers, alliances, ship types, timeline, systems and the outcome.
//!
//! In two stages, so the dataflow can keep a big battle's report current without re-reading all
//! of it: a battle's killmails are summarized per [`Piece`] (its killmails in one
//! [`PIECE_SECS`] slice of time), and the report is finished from the pieces
//! ([`summarize_pieces`]). A step that adds killmails to a running fight re-reads only the
//! pieces they fall in. Pieces hold exact sums only (side weights are fixed-point integers) and
//! are finished in time order, so the report does not depend on how the work was split;
//! [`summarize`] cuts killmails into the same pieces.
//!
//! Outcome rule: a battle is *decisive* when it has at least [`DECISIVE_MIN_KILLMAILS`]
//! killmails and one side destroyed at least [`DECISIVE_EFFICIENCY`] of all ISK destroyed (of all
//! ships when no killmail carries a value); that side wins.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id_hash::{id_map_with_capacity, IdMap};
use crate::killmail::{Killmail, KillmailId};
use crate::report::{
    battle_id, AllianceStats, BattleKillmail, BattleReport, Participant, Statistics, SystemStats,
    Team, TeamTotals, TimelineEntry, TopKiller, TopLoser,
};
use crate::sides::{self, Entity, Ties};

/// Fewest killmails for a decisive outcome.
pub const DECISIVE_MIN_KILLMAILS: i32 = 5;
/// Share of the ISK destroyed a side must have destroyed to win decisively.
pub const DECISIVE_EFFICIENCY: f64 = 0.7;
/// Entries in the top killers and top losers lists.
pub const TOP_N: usize = 10;
/// Length of the slices of time a battle is summarized in. A pilot is kept once per piece it
/// appears in, and a battle's report re-reads all its pieces: half an hour keeps a long fight's
/// pilots a few times instead of dozens, while a step still recomputes only the half hours it
/// touched (a few hundred killmails at most in the biggest real fights). Against 5 minutes,
/// measured in `benches/engine` (docs/benchmarks.md): less memory, faster bulk and stream steps.
pub const PIECE_SECS: i64 = 1800;

/// The piece (slice of time) a killmail is summarized in.
pub fn piece_of(km: &Killmail) -> i64 {
    km.timestamp().div_euclid(PIECE_SECS)
}

/// What a battle's report needs of one killmail.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KillmailFacts {
    pub time: DateTime<Utc>,
    pub killmail_id: KillmailId,
    pub system_id: i64,
    pub victim_character_id: Option<i64>,
    pub victim_alliance_id: Option<i64>,
    pub victim_ship_type_id: i64,
    pub victim_entity: Option<Entity>,
    pub isk: i64,
}

/// One pilot's part in a piece. Plain numbers: its name and its ships are kept by the piece
/// ([`Piece::name_of`], [`Piece::ships_of`]), so a piece holds a few allocations whatever its
/// number of pilots, where a name and a ship list of each pilot's own made most of the
/// engine's memory (and a bulk step's time went into allocating it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pilot {
    pub character: i64,
    /// Affiliation at the pilot's first appearance.
    pub corporation: Option<i64>,
    pub alliance: Option<i64>,
    /// Where its name is in the piece's `names` (length 0: no name).
    name: (u32, u32),
    /// Where its ships are in the piece's `ships`.
    ships: (u32, u32),
    pub kills: i32,
    pub deaths: i32,
    pub damage_done: i64,
    pub damage_received: i64,
    pub isk_destroyed: i64,
    pub isk_lost: i64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

impl Pilot {
    /// A pilot first seen at `at` with this affiliation.
    fn new(
        character: i64,
        at: DateTime<Utc>,
        corporation: Option<i64>,
        alliance: Option<i64>,
    ) -> Pilot {
        Pilot {
            character,
            corporation,
            alliance,
            name: (0, 0),
            ships: (0, 0),
            kills: 0,
            deaths: 0,
            damage_done: 0,
            damage_received: 0,
            isk_destroyed: 0,
            isk_lost: 0,
            first: at,
            last: at,
        }
    }

    /// The side-finding entity of its first appearance's affiliation.
    pub fn entity(&self) -> Option<Entity> {
        Entity::of(Some(self.character), self.corporation, self.alliance)
    }
}

/// One character's pilots of all pieces (in time order) added up, borrowing from the pieces:
/// the name and the ships are copied once, into the participant.
struct PilotTotal<'a> {
    name: Option<&'a str>,
    /// Affiliation at the first appearance (the earliest piece's).
    corporation: Option<i64>,
    alliance: Option<i64>,
    entity: Option<Entity>,
    /// Sorted, each once.
    ships: Cow<'a, [i64]>,
    kills: i32,
    deaths: i32,
    damage_done: i64,
    damage_received: i64,
    isk_destroyed: i64,
    isk_lost: i64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

impl<'a> PilotTotal<'a> {
    /// The earliest piece's part of a pilot.
    fn of(piece: &'a Piece, first: &Pilot) -> PilotTotal<'a> {
        PilotTotal {
            name: piece.name_of(first),
            corporation: first.corporation,
            alliance: first.alliance,
            entity: first.entity(),
            ships: Cow::Borrowed(piece.ships_of(first)),
            kills: first.kills,
            deaths: first.deaths,
            damage_done: first.damage_done,
            damage_received: first.damage_received,
            isk_destroyed: first.isk_destroyed,
            isk_lost: first.isk_lost,
            first: first.first,
            last: first.last,
        }
    }

    /// Adds a later piece's part of the same pilot.
    fn absorb(&mut self, piece: &'a Piece, later: &Pilot) {
        if self.name.is_none() {
            self.name = piece.name_of(later);
        }
        for s in piece.ships_of(later) {
            if let Err(at) = self.ships.binary_search(s) {
                self.ships.to_mut().insert(at, *s);
            }
        }
        self.kills = self.kills.saturating_add(later.kills);
        self.deaths = self.deaths.saturating_add(later.deaths);
        add(&mut self.damage_done, later.damage_done);
        add(&mut self.damage_received, later.damage_received);
        add(&mut self.isk_destroyed, later.isk_destroyed);
        add(&mut self.isk_lost, later.isk_lost);
        self.first = self.first.min(later.first);
        self.last = self.last.max(later.last);
    }
}

/// The pilots of `pieces` (in time order) added up by character, sorted by character.
fn pilot_totals<'a>(pieces: &[&'a Piece]) -> Vec<(i64, PilotTotal<'a>)> {
    if let [only] = pieces {
        return only
            .pilots
            .iter()
            .map(|p| (p.character, PilotTotal::of(only, p)))
            .collect();
    }
    let mut all: Vec<(i64, usize, &Pilot)> = pieces
        .iter()
        .enumerate()
        .flat_map(|(i, piece)| piece.pilots.iter().map(move |p| (p.character, i, p)))
        .collect();
    // Runs sorted by character, one per piece in piece order: a stable sort by character merges
    // the runs (it finds them) and keeps each character's pieces in order.
    all.sort_by_key(|(ch, _, _)| *ch);
    let mut out: Vec<(i64, PilotTotal<'a>)> = Vec::with_capacity(all.len());
    for (ch, i, p) in all {
        match out.last_mut() {
            Some((last, total)) if *last == ch => total.absorb(pieces[i], p),
            _ => out.push((ch, PilotTotal::of(pieces[i], p))),
        }
    }
    out
}

/// A system's count and names in a piece.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SystemPart {
    pub killmails: i32,
    pub name: String,
    pub region_id: i64,
    pub region_name: String,
}

/// The summary of a battle's killmails in one slice of time: everything the report needs, as
/// sums and first-seen values that combine across pieces in time order. Maps are sorted vectors:
/// most pieces are small, and the graph keeps every piece.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Piece {
    /// (time, id) of its first killmail: pieces are finished in this order.
    pub first: (i64, KillmailId),
    /// In (time, id) order.
    pub killmails: Vec<KillmailFacts>,
    /// Killmails that are not satellites (see `link.rs`).
    pub linkers: usize,
    /// By character id.
    pub pilots: Vec<Pilot>,
    /// The pilots' names, one after another ([`Piece::name_of`]).
    names: String,
    /// The pilots' ships, each pilot's sorted and each once ([`Piece::ships_of`]).
    ships: Vec<i64>,
    /// First non-empty name of each corporation and alliance, by id.
    pub corporation_names: Vec<(i64, String)>,
    pub alliance_names: Vec<(i64, String)>,
    /// By system id.
    pub systems: Vec<(i64, SystemPart)>,
    /// By entity pair.
    pub weights: Vec<((Entity, Entity), i64)>,
    /// Sorted, each once.
    pub entities: Vec<Entity>,
    pub isk_estimated: bool,
}

/// Adds an ISK or damage amount, saturating at `i64::MAX`. Amounts are never negative (see
/// [`crate::killmail::MAX_ISK`]), so a saturated sum is the same in any order and grouping:
/// `min(i64::MAX, exact sum)`.
fn add(sum: &mut i64, amount: i64) {
    *sum = sum.saturating_add(amount);
}

/// Remembers the first non-empty name seen for `id` (borrowed: only the names a piece keeps
/// are copied, once each).
fn remember_name<'a>(names: &mut IdMap<i64, &'a str>, id: Option<i64>, name: &'a Option<String>) {
    if let (Some(id), Some(name)) = (id, name) {
        if !name.is_empty() {
            names.entry(id).or_insert(name);
        }
    }
}

/// The remembered names as a sorted map of owned names.
fn sorted_names(names: IdMap<i64, &str>) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = names
        .into_iter()
        .map(|(id, name)| (id, name.to_owned()))
        .collect();
    out.sort_unstable_by_key(|(id, _)| *id);
    out
}

/// A piece while it is being built (borrowing names from its killmails).
#[derive(Default)]
struct PieceBuilder<'a> {
    killmails: Vec<KillmailFacts>,
    linkers: usize,
    /// Pilots in order of appearance with their first non-empty name, and where each
    /// character is in it.
    pilots: Vec<(Pilot, Option<&'a str>)>,
    pilot_index: IdMap<i64, usize>,
    /// (index in `pilots`, ship) of appearances, each pilot's ship kept again only when it
    /// changed since the pilot's last one kept.
    ships: Vec<(u32, i64)>,
    /// The last ship kept of each pilot, by index in `pilots`.
    last_ship: Vec<Option<i64>>,
    corporation_names: IdMap<i64, &'a str>,
    alliance_names: IdMap<i64, &'a str>,
    systems: BTreeMap<i64, SystemPart>,
    ties: Ties,
    isk_estimated: bool,
}

impl<'a> PieceBuilder<'a> {
    /// The pilot of `character`, seen (again) at `at`, flying `ship` when known.
    fn pilot(
        &mut self,
        character: i64,
        at: DateTime<Utc>,
        name: &'a Option<String>,
        corporation: Option<i64>,
        alliance: Option<i64>,
        ship: Option<i64>,
    ) -> &mut Pilot {
        let next = self.pilots.len();
        let i = *self.pilot_index.entry(character).or_insert(next);
        if i == next {
            let pilot = Pilot::new(character, at, corporation, alliance);
            self.pilots.push((pilot, None));
            self.last_ship.push(None);
        }
        // A pilot flies the same ship in most of its killmails: an appearance is kept only
        // when the ship differs from its last one kept (`by_character` sorts and dedups).
        if let Some(ship) = ship {
            if self.last_ship[i] != Some(ship) {
                self.ships.push((i as u32, ship));
                self.last_ship[i] = Some(ship);
            }
        }
        let (p, known) = &mut self.pilots[i];
        if known.is_none() {
            *known = name.as_deref().filter(|n| !n.is_empty());
        }
        p.last = p.last.max(at);
        p
    }

    fn add(&mut self, km: &'a Killmail) {
        let at = km.killmail_time;
        let v = &km.victim;
        remember_name(
            &mut self.corporation_names,
            v.corporation_id,
            &v.corporation_name,
        );
        remember_name(&mut self.alliance_names, v.alliance_id, &v.alliance_name);
        if let Some(ch) = v.character_id {
            let ship = Some(v.ship_type_id);
            let p = self.pilot(
                ch,
                at,
                &v.character_name,
                v.corporation_id,
                v.alliance_id,
                ship,
            );
            p.deaths = p.deaths.saturating_add(1);
            add(&mut p.damage_received, v.damage_taken);
            add(&mut p.isk_lost, km.isk_value);
        }
        for a in km.player_attackers() {
            let ch = a.character_id.expect("player attacker");
            remember_name(
                &mut self.corporation_names,
                a.corporation_id,
                &a.corporation_name,
            );
            remember_name(&mut self.alliance_names, a.alliance_id, &a.alliance_name);
            let (corporation, alliance, ship) = (a.corporation_id, a.alliance_id, a.ship_type_id);
            let p = self.pilot(ch, at, &a.character_name, corporation, alliance, ship);
            add(&mut p.damage_done, a.damage_done);
            if a.final_blow {
                p.kills = p.kills.saturating_add(1);
                add(&mut p.isk_destroyed, km.isk_value);
            }
        }
        self.ties.add_killmail(km);
        let sys = self
            .systems
            .entry(km.solar_system_id)
            .or_insert_with(|| SystemPart {
                killmails: 0,
                name: km.solar_system_name.clone(),
                region_id: km.region_id,
                region_name: km.region_name.clone(),
            });
        sys.killmails += 1;
        self.isk_estimated |= km.isk_estimated;
        self.linkers += usize::from(!km.is_satellite());
        self.killmails.push(KillmailFacts {
            time: at,
            killmail_id: km.killmail_id,
            system_id: km.solar_system_id,
            victim_character_id: v.character_id,
            victim_alliance_id: v.alliance_id,
            victim_ship_type_id: v.ship_type_id,
            victim_entity: Entity::of(v.character_id, v.corporation_id, v.alliance_id),
            isk: km.isk_value,
        });
    }
}

impl Piece {
    /// Summarizes killmails (non-empty, any order) as one piece.
    pub fn of(killmails: &[&Killmail]) -> Piece {
        let mut kms: Vec<&Killmail> = killmails.to_vec();
        kms.sort_by_key(|k| (k.killmail_time, k.killmail_id));
        let first = kms.first().expect("a piece has killmails");
        let first = (first.timestamp(), first.killmail_id);
        // Room for every appearance of a pilot, up to what a big fight's piece holds in pilots.
        let appearances: usize = kms.iter().map(|k| 1 + k.attackers.len()).sum();
        let pilots = appearances.min(4096);
        let mut b = PieceBuilder {
            killmails: Vec::with_capacity(kms.len()),
            pilots: Vec::with_capacity(pilots),
            pilot_index: id_map_with_capacity(pilots),
            last_ship: Vec::with_capacity(pilots),
            ships: Vec::with_capacity(pilots),
            ..PieceBuilder::default()
        };
        for km in kms {
            b.add(km);
        }
        let (weights, entities) = b.ties.into_sorted();
        let (pilots, names, ships) = by_character(b.pilots, b.ships);
        Piece {
            first,
            killmails: b.killmails,
            linkers: b.linkers,
            pilots,
            names,
            ships,
            corporation_names: sorted_names(b.corporation_names),
            alliance_names: sorted_names(b.alliance_names),
            systems: b.systems.into_iter().collect(),
            weights,
            entities,
            isk_estimated: b.isk_estimated,
        }
    }

    /// The name of one of its pilots, when a killmail named the character.
    pub fn name_of(&self, pilot: &Pilot) -> Option<&str> {
        let (at, len) = (pilot.name.0 as usize, pilot.name.1 as usize);
        (len > 0).then(|| &self.names[at..at + len])
    }

    /// The ships one of its pilots flew, sorted, each once.
    pub fn ships_of(&self, pilot: &Pilot) -> &[i64] {
        let (at, len) = (pilot.ships.0 as usize, pilot.ships.1 as usize);
        &self.ships[at..at + len]
    }
}

/// Pilots (in order of appearance, each character once, with their names) and the ships of
/// their appearances (by index in `pilots`) as a piece keeps them: pilots sorted by character,
/// their names in one string and their ships (sorted, each once) in one vector, each sized
/// exactly.
fn by_character(
    pilots: Vec<(Pilot, Option<&str>)>,
    mut appearances: Vec<(u32, i64)>,
) -> (Vec<Pilot>, String, Vec<i64>) {
    let mut order: Vec<(i64, usize)> = pilots
        .iter()
        .enumerate()
        .map(|(i, (p, _))| (p.character, i))
        .collect();
    order.sort_unstable();
    // Each pilot's place in character order: its ships are laid out in that order too.
    let mut rank = vec![0u32; pilots.len()];
    for (r, &(_, i)) in order.iter().enumerate() {
        rank[i] = r as u32;
    }
    for a in appearances.iter_mut() {
        a.0 = rank[a.0 as usize];
    }
    appearances.sort_unstable();
    appearances.dedup();
    let mut ships = Vec::with_capacity(appearances.len());
    let name_bytes = pilots.iter().map(|(_, n)| n.map_or(0, str::len)).sum();
    let mut names = String::with_capacity(name_bytes);
    let mut out = Vec::with_capacity(order.len());
    let mut next_ship = appearances.iter().peekable();
    for (r, &(_, i)) in order.iter().enumerate() {
        let (mut p, name) = pilots[i];
        if let Some(name) = name {
            p.name = (names.len() as u32, name.len() as u32);
            names.push_str(name);
        }
        let from = ships.len();
        while let Some(&&(_, ship)) = next_ship.peek().filter(|(owner, _)| *owner == r as u32) {
            ships.push(ship);
            next_ship.next();
        }
        p.ships = (from as u32, (ships.len() - from) as u32);
        out.push(p);
    }
    (out, names, ships)
}

/// Summarizes a battle. `killmails` must be non-empty; any order.
pub fn summarize(killmails: &[&Killmail]) -> BattleReport {
    let mut by_piece: BTreeMap<i64, Vec<&Killmail>> = BTreeMap::new();
    for km in killmails {
        by_piece.entry(piece_of(km)).or_default().push(km);
    }
    let pieces: Vec<Piece> = by_piece.values().map(|kms| Piece::of(kms)).collect();
    summarize_pieces(&pieces.iter().collect::<Vec<_>>())
}

/// The entries of sorted maps (one per piece, pieces in time order) combined by key:
/// `fold` folds a later entry into the earlier. One piece's map is borrowed as it is.
fn combine<'a, K: Ord + Copy + 'a, V: Clone + 'a>(
    maps: impl Iterator<Item = &'a [(K, V)]>,
    fold: impl Fn(&mut V, &V),
) -> Cow<'a, [(K, V)]> {
    let maps: Vec<&[(K, V)]> = maps.collect();
    if maps.len() == 1 {
        return Cow::Borrowed(maps[0]);
    }
    let mut all: Vec<(K, usize, &V)> = maps
        .iter()
        .enumerate()
        .flat_map(|(i, m)| m.iter().map(move |(k, v)| (*k, i, v)))
        .collect();
    // One sorted run per map, in map order: a stable sort by key merges them and keeps each
    // key's entries in map order.
    all.sort_by_key(|(k, _, _)| *k);
    let mut out: Vec<(K, V)> = Vec::with_capacity(all.len());
    for (k, _, v) in all {
        match out.last_mut() {
            Some((last, acc)) if *last == k => fold(acc, v),
            _ => out.push((k, v.clone())),
        }
    }
    Cow::Owned(out)
}

/// The value of `key` in a sorted map.
/// The first [`TOP_N`] of the `included` participants by `rank`, highest first, ties to the
/// smallest character id.
/// The battle's top killers: participants with kills, most kills then most ISK destroyed
/// first (ties: smaller character id), at most [`TOP_N`]. The sink asks this too when it
/// rebuilds the statistics it does not store.
pub fn top_killers(participants: &[Participant]) -> Vec<TopKiller> {
    top(
        participants,
        |p| p.kills > 0,
        |p| (i64::from(p.kills), p.isk_destroyed),
        |p| TopKiller {
            character_id: p.character_id,
            name: p.character_name.clone(),
            team: p.team,
            kills: p.kills,
            isk_destroyed: p.isk_destroyed,
        },
    )
}

/// The battle's top losers: participants with deaths, most ISK lost then most deaths first
/// (ties: smaller character id), at most [`TOP_N`].
pub fn top_losers(participants: &[Participant]) -> Vec<TopLoser> {
    top(
        participants,
        |p| p.deaths > 0,
        |p| (p.isk_lost, i64::from(p.deaths)),
        |p| TopLoser {
            character_id: p.character_id,
            name: p.character_name.clone(),
            team: p.team,
            deaths: p.deaths,
            isk_lost: p.isk_lost,
        },
    )
}

fn top<T>(
    participants: &[Participant],
    included: impl Fn(&Participant) -> bool,
    rank: impl Fn(&Participant) -> (i64, i64),
    row: impl Fn(&Participant) -> T,
) -> Vec<T> {
    let mut chosen: Vec<&Participant> = participants.iter().filter(|p| included(p)).collect();
    chosen.sort_by(|a, b| {
        rank(b)
            .cmp(&rank(a))
            .then(a.character_id.cmp(&b.character_id))
    });
    chosen.truncate(TOP_N);
    chosen.into_iter().map(row).collect()
}

fn lookup<'a, K: Ord, V>(map: &'a [(K, V)], key: &K) -> Option<&'a V> {
    map.binary_search_by(|(k, _)| k.cmp(key))
        .ok()
        .map(|i| &map[i].1)
}

/// Finishes a battle's report from its pieces (non-empty, any order).
pub fn summarize_pieces(pieces: &[&Piece]) -> BattleReport {
    let mut pieces: Vec<&Piece> = pieces.to_vec();
    pieces.sort_by_key(|p| p.first);

    // Combine the pieces in time order.
    let kms: Vec<&KillmailFacts> = pieces.iter().flat_map(|p| &p.killmails).collect();
    let pilots = pilot_totals(&pieces);
    let keep_first = |_: &mut String, _: &String| {};
    let corporation_names = combine(pieces.iter().map(|p| &p.corporation_names[..]), keep_first);
    let alliance_names = combine(pieces.iter().map(|p| &p.alliance_names[..]), keep_first);
    let systems = combine(pieces.iter().map(|p| &p.systems[..]), |a, b| {
        a.killmails += b.killmails
    });
    let weights = combine(pieces.iter().map(|p| &p.weights[..]), |a, b| *a += b);
    let entities: Vec<Entity> = if pieces.len() == 1 {
        pieces[0].entities.clone()
    } else {
        let set: BTreeSet<Entity> = pieces
            .iter()
            .flat_map(|p| p.entities.iter().copied())
            .collect();
        set.into_iter().collect()
    };
    let isk_estimated = pieces.iter().any(|p| p.isk_estimated);
    let sides = sides::solve(&entities, &weights);
    let side_of = |e: Option<Entity>| e.and_then(|e| sides.side.get(&e).copied());
    let alliance_name = |id: i64| lookup(&alliance_names, &id).cloned();

    // Name the sides: team A is the side with more pilots (ties: the side of the smallest
    // character id, then of the smallest entity).
    let mut count = [0i32; 2];
    for (_, p) in pilots.iter() {
        if let Some(s) = side_of(p.entity) {
            count[s as usize] += 1;
        }
    }
    let first_side = pilots
        .iter()
        .find_map(|(_, p)| side_of(p.entity))
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
    let mut alliances: [BTreeMap<i64, AllianceStats>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut total_isk = 0i64;
    for km in &kms {
        let victim_team = team(side_of(km.victim_entity));
        let lost = &mut totals[idx(victim_team)];
        add(&mut lost.isk_lost, km.isk);
        lost.ships_lost += 1;
        let won = &mut totals[idx(victim_team.other())];
        add(&mut won.isk_destroyed, km.isk);
        won.ships_destroyed += 1;
        add(&mut total_isk, km.isk);
        battle_kms.push(BattleKillmail {
            killmail_id: km.killmail_id,
            killmail_time: km.time,
            system_id: km.system_id,
            victim_character_id: km.victim_character_id,
            victim_alliance_id: km.victim_alliance_id,
            victim_ship_type_id: Some(km.victim_ship_type_id),
            victim_team,
            isk_destroyed: km.isk,
        });
        timeline.push(TimelineEntry {
            timestamp: km.time,
            killmail_id: km.killmail_id,
            victim_team,
            isk_destroyed: km.isk,
        });
        if let Some(a) = km.victim_alliance_id {
            let entry = alliance_entry(&mut alliances[idx(victim_team)], a, alliance_name(a));
            add(&mut entry.isk_lost, km.isk);
        }
    }

    let mut participants = Vec::with_capacity(pilots.len());
    let mut ship_types: [BTreeMap<i64, i32>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for &(character_id, ref p) in pilots.iter() {
        let t = team(side_of(p.entity));
        for s in p.ships.iter() {
            *ship_types[idx(t)].entry(*s).or_insert(0) += 1;
        }
        if let Some(a) = p.alliance {
            let entry = alliance_entry(&mut alliances[idx(t)], a, alliance_name(a));
            entry.pilots += 1;
            add(&mut entry.isk_destroyed, p.isk_destroyed);
        }
        totals[idx(t)].pilots += 1;
        participants.push(Participant {
            character_id,
            character_name: p.name.map(str::to_owned).unwrap_or_default(),
            corporation_id: p.corporation,
            corporation_name: p
                .corporation
                .and_then(|c| lookup(&corporation_names, &c).cloned()),
            alliance_id: p.alliance,
            alliance_name: p.alliance.and_then(alliance_name),
            team: t,
            third_party: p
                .entity
                .and_then(|e| sides.third_parties.get(&e).copied())
                .unwrap_or(false),
            ships_flown: p.ships.to_vec(),
            kills: p.kills,
            deaths: p.deaths,
            damage_done: p.damage_done,
            damage_received: p.damage_received,
            isk_destroyed: p.isk_destroyed,
            isk_lost: p.isk_lost,
            first_seen_at: p.first,
            last_seen_at: p.last,
        });
    }

    let top_killers = top_killers(&participants);
    let top_losers = top_losers(&participants);

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
        .map(|(id, sys)| SystemStats {
            system_id: *id,
            name: sys.name.clone(),
            killmails: sys.killmails,
        })
        .collect();
    systems_involved.sort_by(|a, b| (b.killmails, a.system_id).cmp(&(a.killmails, b.system_id)));
    let primary = &systems_involved[0];
    let primary_region = lookup(&systems, &primary.system_id).expect("primary system");

    let total_killmails = kms.len() as i32;
    let share = |t: &TeamTotals| {
        let all_isk = totals[0]
            .isk_destroyed
            .saturating_add(totals[1].isk_destroyed);
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
        battle_id: battle_id(first.time, first.killmail_id),
        first_killmail_id: first.killmail_id,
        started_at: first.time,
        ended_at: last.time,
        primary_system_id: primary.system_id,
        primary_system_name: primary.name.clone(),
        primary_region_id: primary_region.region_id,
        primary_region_name: primary_region.region_name.clone(),
        total_killmails,
        total_pilots: participants.len() as i32,
        total_isk_destroyed: total_isk,
        team_a,
        team_b,
        is_decisive: winning_team.is_some(),
        winning_team,
        last_killmail_at: last.time,
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

fn alliance_entry(
    map: &mut BTreeMap<i64, AllianceStats>,
    id: i64,
    name: Option<String>,
) -> &mut AllianceStats {
    map.entry(id).or_insert_with(|| AllianceStats {
        alliance_id: id,
        name: name.unwrap_or_default(),
        pilots: 0,
        isk_destroyed: 0,
        isk_lost: 0,
    })
}

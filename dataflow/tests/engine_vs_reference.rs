//! The engine against the sequential reference on random histories: any arrival order, any
//! batching, any worker count gives the reference's battles, ids, sides and statistics.

mod common;

use battles_dataflow::{reference, BattleReport, Engine, EngineConfig, Team};
use common::{random_history, Replica};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn config(workers: usize) -> EngineConfig {
    EngineConfig {
        workers,
        ..EngineConfig::default()
    }
}

fn run_in_batches(
    kms: &[battles_dataflow::Killmail],
    workers: usize,
    seed: u64,
) -> Vec<BattleReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order = kms.to_vec();
    order.shuffle(&mut rng);
    let mut engine = Engine::start(config(workers)).unwrap();
    let mut replica = Replica::default();
    let mut rest = &order[..];
    while !rest.is_empty() {
        let take = rng.random_range(1..=rest.len().min(60));
        let (batch, tail) = rest.split_at(take);
        replica.apply(&engine.insert(batch.iter().cloned()).unwrap());
        rest = tail;
    }
    replica.sorted()
}

fn check_invariants(reports: &[BattleReport]) {
    for r in reports {
        assert_eq!(r.team_a.isk_destroyed, r.team_b.isk_lost);
        assert_eq!(r.team_b.isk_destroyed, r.team_a.isk_lost);
        assert_eq!(r.team_a.ships_destroyed, r.team_b.ships_lost);
        assert_eq!(r.team_a.pilots + r.team_b.pilots, r.total_pilots);
        assert_eq!(r.killmails.len() as i32, r.total_killmails);
        assert_eq!(r.team_a.isk_lost + r.team_b.isk_lost, r.total_isk_destroyed);
        assert!(r.team_a.pilots >= r.team_b.pilots);
        assert!(r.started_at <= r.ended_at);
        assert_eq!(
            battles_dataflow::battle_id(r.started_at, r.first_killmail_id),
            r.battle_id
        );
        let a = r.participants.iter().filter(|p| p.team == Team::A).count() as i32;
        assert_eq!(a, r.team_a.pilots);
    }
}

#[test]
fn engine_equals_reference_on_random_histories() {
    for seed in 0..12u64 {
        let kms = random_history(seed, 40 + 15 * seed as usize);
        let expected = reference::battles(&kms, &EngineConfig::default());
        check_invariants(&expected);
        let got = run_in_batches(&kms, 1, seed + 100);
        assert_eq!(got.len(), expected.len(), "seed {seed}: battle count");
        assert_eq!(got, expected, "seed {seed}");
    }
}

#[test]
fn order_batching_and_workers_do_not_change_the_result() {
    let kms = random_history(77, 300);
    let expected = reference::battles(&kms, &EngineConfig::default());
    assert!(expected.len() > 3, "the history has battles");
    for (workers, seed) in [(1, 1), (2, 2), (4, 3), (2, 4)] {
        assert_eq!(
            run_in_batches(&kms, workers, seed),
            expected,
            "{workers} workers"
        );
    }
}

#[test]
fn retracting_everything_leaves_nothing_and_partial_retraction_matches_reference() {
    let kms = random_history(5, 200);
    let mut engine = Engine::start(config(2)).unwrap();
    let mut replica = Replica::default();
    replica.apply(&engine.insert(kms.iter().cloned()).unwrap());
    assert!(!replica.battles.is_empty());
    // Retract every third killmail: the rest must be what the reference makes of it.
    let (gone, kept): (Vec<_>, Vec<_>) = kms
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 3 == 0);
    let gone: Vec<_> = gone.into_iter().map(|(_, k)| k).collect();
    let kept: Vec<_> = kept.into_iter().map(|(_, k)| k).collect();
    replica.apply(&engine.retract(gone.clone()).unwrap());
    assert_eq!(
        replica.sorted(),
        reference::battles(&kept, &EngineConfig::default())
    );
    replica.apply(&engine.retract(kept).unwrap());
    assert!(
        replica.battles.is_empty(),
        "nothing left after retracting all"
    );
}

#[test]
fn merges_report_the_continuing_battle() {
    // Two groups that a bridging killmail later joins.
    let kms = random_history(9, 400);
    let mut engine = Engine::start(config(1)).unwrap();
    let mut replica = Replica::default();
    let mut ended_any = false;
    for chunk in kms.chunks(25) {
        let out = engine.insert(chunk.iter().cloned()).unwrap();
        for (_, continued_by) in out.ended() {
            ended_any = true;
            let cont = continued_by.expect("a merge keeps the killmails somewhere");
            assert!(out.upserts().any(|r| r.battle_id == cont));
        }
        replica.apply(&out);
    }
    assert!(ended_any, "this history merges battles as it grows");
}

/// A spam run (one pilot killing 25 deployables a minute apart in one system) is one battle,
/// and two unrelated fights at its start and end stay apart from it and from each other.
#[test]
fn a_spam_run_is_one_battle_and_glues_no_fights() {
    let template = random_history(3, 1)[0].clone();
    let u = battles_dataflow::Universe::embedded();
    let jita = u.system(30000142).unwrap();
    let rule = battles_dataflow::LinkRule::default();
    let width = rule.bucket_width();
    // Start just after a satellite-bucket boundary so the 25 minutes fall in one bucket.
    let base = 1_740_787_200i64;
    let start = (base / width + 1) * width + rule.satellite_window() + 60;
    let kill = |id: i64, t: i64, victim: Option<i64>, ship: (i64, i64, i64), attackers: &[i64]| {
        let mut k = template.clone();
        k.killmail_id = id;
        k.killmail_time = chrono::DateTime::from_timestamp(t, 0).unwrap();
        k.solar_system_id = jita.id;
        k.constellation_id = jita.constellation_id;
        k.region_id = jita.region_id;
        k.victim.character_id = victim;
        k.victim.corporation_id = Some(98_500_000 + id);
        k.victim.alliance_id = None;
        (
            k.victim.ship_type_id,
            k.victim.ship_group_id,
            k.victim.ship_category_id,
        ) = (ship.0, Some(ship.1), Some(ship.2));
        let mut a = k.attackers[0].clone();
        k.attackers = attackers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                a.character_id = Some(*c);
                a.corporation_id = Some(97_000_000 + c);
                a.alliance_id = None;
                a.final_blow = i == 0;
                a.clone()
            })
            .collect();
        k
    };
    let depot = (33474, 1246, 22);
    let frigate = (587, 25, 6);
    let mut kms = Vec::new();
    for i in 0..25 {
        kms.push(kill(1_000 + i, start + 60 * i, None, depot, &[7_000_001]));
    }
    // Fight A at the run's start, fight B at its end: different pilots, nobody shared.
    for i in 0..4 {
        kms.push(kill(
            2_000 + i,
            start + 30 * i,
            Some(8_000_000 + i),
            frigate,
            &[8_100_000, 8_100_001],
        ));
        kms.push(kill(
            3_000 + i,
            start + 1_440 + 30 * i,
            Some(9_000_000 + i),
            frigate,
            &[9_100_000, 9_100_001],
        ));
    }
    let expected = reference::battles(&kms, &EngineConfig::default());
    for workers in [1, 2] {
        let mut engine = Engine::start(config(workers)).unwrap();
        let mut replica = Replica::default();
        replica.apply(&engine.insert(kms.iter().cloned()).unwrap());
        assert_eq!(replica.sorted(), expected, "{workers} worker(s)");
    }
    let sizes: Vec<i32> = {
        let mut v: Vec<i32> = expected.iter().map(|r| r.total_killmails).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(sizes, vec![4, 4, 25], "the run, fight A and fight B");
}

/// A battle summarized in slices of time (as the graph does) gives exactly the report of one
/// pass over all its killmails: names, affiliations, sums and sides.
#[test]
fn pieces_give_the_report_of_one_pass() {
    use battles_dataflow::summarize::{summarize, summarize_pieces, Piece};
    for seed in 0..6u64 {
        let mut kms = random_history(500 + seed, 400);
        // Names on some appearances only, some empty, so first-seen names matter.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for km in &mut kms {
            let mut name = |id: Option<i64>, prefix: &str| match rng.random_range(0..3) {
                0 => None,
                1 => Some(String::new()),
                _ => id.map(|i| format!("{prefix} {i} {}", rng.random_range(0..2))),
            };
            km.victim.character_name = name(km.victim.character_id, "pilot");
            km.victim.corporation_name = name(km.victim.corporation_id, "corp");
            km.victim.alliance_name = name(km.victim.alliance_id, "alliance");
            for a in &mut km.attackers {
                a.character_name = name(a.character_id, "pilot");
                a.corporation_name = name(a.corporation_id, "corp");
                a.alliance_name = name(a.alliance_id, "alliance");
            }
        }
        let battles = reference::battles(&kms, &EngineConfig::default());
        let mut multi_piece = 0;
        for battle in battles {
            let ids: std::collections::BTreeSet<i64> =
                battle.killmails.iter().map(|k| k.killmail_id).collect();
            let members: Vec<&battles_dataflow::Killmail> = kms
                .iter()
                .filter(|k| ids.contains(&k.killmail_id))
                .collect();
            let one_pass = summarize_pieces(&[&Piece::of(&members)]);
            assert_eq!(summarize(&members), one_pass, "seed {seed}");
            assert_eq!(battle, one_pass, "seed {seed}");
            let slices: std::collections::BTreeSet<i64> = members
                .iter()
                .map(|k| battles_dataflow::summarize::piece_of(k))
                .collect();
            multi_piece += usize::from(slices.len() > 2);
        }
        assert!(
            multi_piece > 0,
            "seed {seed}: some battles span several pieces"
        );
    }
}

/// The random histories the equality tests use reach the rules' corners: satellite runs,
/// satellites in fights, battles across a region border, third parties, exact ties in the top
/// killers, and decisive outcomes.
#[test]
fn random_histories_exercise_every_rule() {
    let satellite = |k: &battles_dataflow::Killmail| {
        k.attackers.iter().all(|a| a.character_id.is_none())
            || k.victim.ship_group_id == Some(29)
            || k.victim.ship_category_id.is_some_and(|c| c != 6)
    };
    let (mut runs, mut attached, mut cross_region, mut third, mut ties, mut decisive) =
        (0, 0, 0, 0, 0, 0);
    for seed in 0..12u64 {
        let kms = random_history(seed, 40 + 15 * seed as usize);
        let by_id: std::collections::BTreeMap<i64, &battles_dataflow::Killmail> =
            kms.iter().map(|k| (k.killmail_id, k)).collect();
        for r in reference::battles(&kms, &EngineConfig::default()) {
            let members: Vec<_> = r.killmails.iter().map(|k| by_id[&k.killmail_id]).collect();
            let satellites = members.iter().filter(|k| satellite(k)).count();
            runs += usize::from(members.len() > 1 && satellites == members.len());
            attached += usize::from(satellites > 0 && satellites < members.len());
            let regions: std::collections::BTreeSet<i64> =
                members.iter().map(|k| k.region_id).collect();
            cross_region += usize::from(regions.len() > 1);
            third += usize::from(r.participants.iter().any(|p| p.third_party));
            let killers = &r.statistics.top_killers;
            ties += killers
                .windows(2)
                .filter(|w| (w[0].kills, w[0].isk_destroyed) == (w[1].kills, w[1].isk_destroyed))
                .count();
            decisive += usize::from(r.is_decisive);
        }
    }
    for (what, count) in [
        ("satellite runs", runs),
        ("fights with satellites", attached),
        ("battles across a region border", cross_region),
        ("battles with third parties", third),
        ("exact top-killer ties", ties),
        ("decisive battles", decisive),
    ] {
        assert!(count > 0, "no {what} in the random histories");
        println!("{what}: {count}");
    }
}

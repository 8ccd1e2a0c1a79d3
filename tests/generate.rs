//! End-to-end checks of the synthetic killmail generator: determinism, realism (volumes, heavy
//! tail, real geography and gates, well-formed killmails), the written files, and the accuracy
//! metrics fed with the truth itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;

use battles::accuracy::{evaluate, Prediction};
use battles::generate::output::{write_to_dir, KILLMAILS_FILE, KILLMAILS_GZ_FILE, TRUTH_FILE};
use battles::generate::truth::{BattleKind, KillKind, Side, Truth};
use battles::generate::{generate, generate_all, GeneratorConfig, KILLMAILS_PER_DAY};
use battles_dataflow::{Killmail, Team, Universe};

fn config(seed: u64, days: u32, scale: f64) -> GeneratorConfig {
    GeneratorConfig {
        seed,
        days,
        scale,
        ..GeneratorConfig::default()
    }
}

fn lines(path: &std::path::Path) -> Vec<String> {
    let f = std::fs::File::open(path).unwrap();
    std::io::BufReader::new(f)
        .lines()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    write_to_dir(config(5, 1, 0.3), &a, false).unwrap();
    write_to_dir(config(5, 1, 0.3), &b, false).unwrap();
    write_to_dir(config(6, 1, 0.3), &c, false).unwrap();
    for file in [KILLMAILS_FILE, TRUTH_FILE] {
        let (x, y, z) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            std::fs::read(c.join(file)).unwrap(),
        );
        assert!(!x.is_empty());
        assert_eq!(x, y, "{file} differs between runs of one seed");
        assert_ne!(x, z, "{file} is the same for two seeds");
    }
}

#[test]
fn writes_both_files_that_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_to_dir(config(1, 1, 1.0), dir.path(), false).unwrap();
    let kms = lines(&dir.path().join(KILLMAILS_FILE));
    let truth_lines = lines(&dir.path().join(TRUTH_FILE));
    assert_eq!(kms.len() as u64, summary.killmails);
    assert_eq!(kms.len(), truth_lines.len());
    let truth = Truth::read_jsonl(std::io::BufReader::new(
        std::fs::File::open(dir.path().join(TRUTH_FILE)).unwrap(),
    ))
    .unwrap();
    assert_eq!(truth.killmail_count(), kms.len());
    // Every line parses into a Killmail that serializes back to the same line.
    let in_memory = generate_all(config(1, 1, 1.0));
    for (line, expected) in kms.iter().zip(&in_memory.killmails) {
        let k: Killmail = serde_json::from_str(line).unwrap();
        assert_eq!(&k, expected);
        assert_eq!(&serde_json::to_string(&k).unwrap(), line);
        assert!(truth.battle_of.contains_key(&k.killmail_id));
    }
    assert!(summary.by_battle_kind.contains_key("fight"));
    assert!(summary.by_battle_kind.contains_key("background"));

    let gz = tempfile::tempdir().unwrap();
    write_to_dir(config(1, 1, 0.1), gz.path(), true).unwrap();
    let f = std::fs::File::open(gz.path().join(KILLMAILS_GZ_FILE)).unwrap();
    let parsed: Vec<Killmail> = std::io::BufReader::new(flate2::read::GzDecoder::new(f))
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let n = parsed.len();
    assert!(parsed.iter().all(|k| !k.attackers.is_empty()));
    assert_eq!(n, lines(&gz.path().join(TRUTH_FILE)).len());
}

#[test]
fn a_small_run_is_about_a_hundred_killmails() {
    let n = generate(config(2, 1, 0.1)).count();
    assert!((100..=300).contains(&n), "{n} killmails at scale 0.1");
}

/// Realism of a week at scale 1.
#[test]
fn a_week_looks_like_new_eden() {
    let cfg = config(1, 7, 1.0);
    let start = cfg.start.timestamp();
    let universe = Universe::embedded();
    let mut per_day = [0usize; 8];
    let mut battles: BTreeMap<u64, Vec<Killmail>> = BTreeMap::new();
    let mut kinds: BTreeMap<KillKind, usize> = BTreeMap::new();
    let mut battle_kind: BTreeMap<u64, BattleKind> = BTreeMap::new();
    let mut sides: HashMap<(u64, i64), Side> = HashMap::new();
    let mut last_arrival = None;
    let mut late = 0usize;
    let mut total = 0usize;
    let mut max_attackers = 0usize;
    for g in generate(cfg) {
        let k = &g.killmail;
        total += 1;
        assert!(g.arrival >= k.killmail_time);
        if (g.arrival - k.killmail_time).num_minutes() >= 10 {
            late += 1;
        }
        assert!(last_arrival <= Some(g.arrival), "arrival order");
        last_arrival = Some(g.arrival);
        let day = ((k.timestamp() - start) / 86_400) as usize;
        per_day[day.min(7)] += 1;
        // Real geography, complete killmails.
        let system = universe.system(k.solar_system_id).expect("a real system");
        assert_eq!(system.region_id, k.region_id);
        assert_eq!(system.name, k.solar_system_name);
        assert!(!k.attackers.is_empty());
        assert_eq!(k.attackers.iter().filter(|a| a.final_blow).count(), 1);
        let damage: i64 = k.attackers.iter().map(|a| a.damage_done).sum();
        assert_eq!(damage, k.victim.damage_taken);
        assert!(k.isk_value > 0);
        let victim_type = universe
            .item_type(k.victim.ship_type_id)
            .expect("real type");
        assert!([6, 22, 65].contains(&victim_type.category_id));
        assert_eq!(
            k.victim.character_id.is_some(),
            victim_type.category_id == 6
        );
        for a in &k.attackers {
            let t = universe
                .item_type(a.ship_type_id.unwrap())
                .expect("real type");
            assert_eq!(t.category_id == 6, a.character_id.is_some());
        }
        max_attackers = max_attackers.max(k.attackers.len());
        *kinds.entry(g.truth.kind).or_default() += 1;
        battle_kind.insert(g.truth.battle, g.truth.battle_kind);
        for (&c, &s) in &g.truth.sides {
            let old = sides.insert((g.truth.battle, c), s);
            assert!(old.is_none_or(|o| o == s), "a pilot on two sides");
        }
        battles.entry(g.truth.battle).or_default().push(k.clone());
    }

    let target = 7.0 * KILLMAILS_PER_DAY;
    assert!(
        (total as f64) > 0.85 * target && (total as f64) < 1.25 * target,
        "{total} killmails in a week, target {target}"
    );
    for (d, &n) in per_day.iter().take(7).enumerate() {
        assert!(
            n > 300 && n < 4 * KILLMAILS_PER_DAY as usize,
            "day {d}: {n}"
        );
    }
    let share_late = late as f64 / total as f64;
    assert!((0.03..0.2).contains(&share_late), "late share {share_late}");
    assert!(max_attackers >= 100, "blobs: max attackers {max_attackers}");

    let fights: Vec<&Vec<Killmail>> = battles
        .iter()
        .filter(|(b, _)| battle_kind[b] == BattleKind::Fight)
        .map(|(_, v)| v)
        .collect();
    let biggest = fights.iter().map(|v| v.len()).max().unwrap();
    assert!(biggest >= 100, "heavy tail: biggest fight {biggest}");
    let small = fights.iter().filter(|v| v.len() <= 10).count();
    assert!(small * 2 > fights.len(), "most fights are small");
    let background: usize = battles
        .iter()
        .filter(|(b, _)| battle_kind[b] == BattleKind::Background)
        .map(|(_, v)| v.len())
        .sum();
    let share = background as f64 / total as f64;
    assert!((0.3..0.5).contains(&share), "background share {share}");
    for kind in [
        KillKind::Ship,
        KillKind::Pod,
        KillKind::Npc,
        KillKind::Structure,
        KillKind::Deployable,
        KillKind::Gank,
        KillKind::Awox,
    ] {
        assert!(kinds.contains_key(&kind), "no {kind:?} kills: {kinds:?}");
    }

    // Fights move only along real stargates, and big fights last long.
    let mut moved = 0;
    for f in &fights {
        let systems: BTreeSet<i64> = f.iter().map(|k| k.solar_system_id).collect();
        if systems.len() > 1 {
            moved += 1;
            // Every system of a fight is a few real gate jumps from another one (a fleet can
            // jump through a system without losing anything there).
            for &s in &systems {
                let near = within_jumps(universe, s, 3);
                assert!(
                    systems.iter().any(|&o| o != s && near.contains(&o)),
                    "system {s} of a fight is not near the others: {systems:?}"
                );
            }
        }
        if f.len() >= 100 {
            let t0 = f.iter().map(|k| k.timestamp()).min().unwrap();
            let t1 = f.iter().map(|k| k.timestamp()).max().unwrap();
            assert!(
                t1 - t0 >= 1800,
                "a {}-kill fight lasting {} s",
                f.len(),
                t1 - t0
            );
        }
    }
    assert!(moved > 0, "no fight moved through a gate");

    // Pods follow ship kills of the same pilot, seconds later, in the same system.
    for f in battles.values() {
        for pod in f.iter().filter(|k| k.is_pod()) {
            let ship = f.iter().find(|k| {
                !k.is_pod()
                    && k.victim.character_id == pod.victim.character_id
                    && k.solar_system_id == pod.solar_system_id
                    && (0..60).contains(&(pod.timestamp() - k.timestamp()))
            });
            assert!(
                ship.is_some(),
                "pod {} follows no ship kill",
                pod.killmail_id
            );
        }
    }
}

/// Systems at most `jumps` stargate jumps from `from`.
fn within_jumps(universe: &Universe, from: i64, jumps: usize) -> BTreeSet<i64> {
    let mut seen = BTreeSet::from([from]);
    let mut frontier = vec![from];
    for _ in 0..jumps {
        let next: Vec<i64> = frontier
            .iter()
            .flat_map(|&s| universe.neighbours(s).iter().copied())
            .filter(|n| seen.insert(*n))
            .collect();
        frontier = next;
    }
    seen
}

#[test]
fn the_truth_scores_perfectly_against_itself() {
    let run = generate_all(config(3, 1, 0.5));
    let mut prediction = Prediction::default();
    for (&battle, b) in &run.truth.battles {
        for &k in &b.killmails {
            prediction.battle_of.insert(k, battle);
        }
        for (&c, &s) in &b.sides {
            // Swap the labels: the metric must not care.
            let team = if s == Side::A { Team::B } else { Team::A };
            prediction.sides.insert((battle, c), team);
        }
    }
    let a = evaluate(&run.truth, &prediction);
    assert_eq!(a.bcubed_f1, 1.0);
    assert_eq!(a.big_battle_recovery(), 1.0);
    assert_eq!(a.side_accuracy(), 1.0);
    assert_eq!(a.pilots_missing, 0);
    // Everything in one battle: recall 1, precision low.
    let lump = Prediction {
        battle_of: run.truth.battle_of.keys().map(|&k| (k, 1)).collect(),
        sides: HashMap::new(),
    };
    let a = evaluate(&run.truth, &lump);
    assert_eq!(a.bcubed_recall, 1.0);
    assert!(a.bcubed_precision < 0.2, "{a}");
}

/// A day at real density: about 15,000 killmails, at least half of them background, and
/// concurrent 10+-kill fights in one region that share pilots yet are three or more jumps apart.
#[test]
fn a_day_at_real_density_has_concurrent_fights_sharing_pilots() {
    let run = generate_all(GeneratorConfig {
        density: battles::generate::Density::Real,
        ..config(4, 1, 1.0)
    });
    let n = run.killmails.len();
    assert!((12_000..=19_000).contains(&n), "{n} killmails");
    let background = run
        .truth
        .battles
        .values()
        .filter(|b| b.kind == Some(BattleKind::Background))
        .map(|b| b.killmails.len())
        .sum::<usize>();
    assert!(2 * background >= n, "{background} of {n} are background");

    // Per big fight: region, time span, systems and characters.
    let by_id: HashMap<i64, &Killmail> = run.killmails.iter().map(|k| (k.killmail_id, k)).collect();
    struct Span {
        region: i64,
        start: i64,
        end: i64,
        systems: BTreeSet<i64>,
        characters: BTreeSet<i64>,
    }
    let spans: Vec<Span> = run
        .truth
        .battles
        .values()
        .filter(|b| b.kind == Some(BattleKind::Fight) && b.killmails.len() >= 10)
        .map(|b| {
            let kms: Vec<&Killmail> = b.killmails.iter().map(|k| by_id[k]).collect();
            Span {
                region: kms[0].region_id,
                start: kms.iter().map(|k| k.timestamp()).min().unwrap(),
                end: kms.iter().map(|k| k.timestamp()).max().unwrap(),
                systems: kms.iter().map(|k| k.solar_system_id).collect(),
                characters: b.sides.keys().copied().collect(),
            }
        })
        .collect();
    let universe = Universe::embedded();
    let mut concurrent_sharing = 0;
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            let overlap = a.start <= b.end && b.start <= a.end;
            if !overlap || a.region != b.region || a.characters.is_disjoint(&b.characters) {
                continue;
            }
            concurrent_sharing += 1;
            let near: BTreeSet<i64> = a
                .systems
                .iter()
                .flat_map(|&s| within_jumps(universe, s, 1))
                .collect();
            assert!(
                near.is_disjoint(&b.systems),
                "concurrent fights sharing pilots are not next to each other"
            );
        }
    }
    assert!(
        concurrent_sharing >= 5,
        "{concurrent_sharing} concurrent pairs share pilots"
    );
}

//! The generated pilots and their organisations: coalitions of alliances of corporations of
//! characters, independent alliances that belong to no coalition, and characters in NPC
//! corporations (no alliance). Built once per run from the seed and kept for the whole period,
//! so the same pilots fight again on other days.

use rand::seq::SliceRandom;
use rand::Rng;

use super::catalog::NPC_CORPORATIONS;
use super::names;

/// Index of a pilot in [`Population::pilots`].
pub type PilotIx = usize;

/// A character.
#[derive(Clone, Debug)]
pub struct Pilot {
    pub character_id: i64,
    pub name: String,
    /// Index in [`Population::corporations`].
    pub corporation: usize,
}

/// A player or NPC corporation.
#[derive(Clone, Debug)]
pub struct Corporation {
    pub id: i64,
    pub name: String,
    /// Index in [`Population::alliances`]; `None` for NPC corporations and unaligned corps.
    pub alliance: Option<usize>,
}

/// A player alliance.
#[derive(Clone, Debug)]
pub struct Alliance {
    pub id: i64,
    pub name: String,
    /// Index in [`Population::coalitions`]; `None` for independent alliances.
    pub coalition: Option<usize>,
    pub corporations: Vec<usize>,
    pub pilots: Vec<PilotIx>,
}

/// A bloc of allied alliances living in its home regions.
#[derive(Clone, Debug)]
pub struct Coalition {
    pub alliances: Vec<usize>,
    /// Null-sec regions it holds (region ids).
    pub home_regions: Vec<i64>,
}

/// Everybody who can appear on a killmail.
#[derive(Clone, Debug)]
pub struct Population {
    pub pilots: Vec<Pilot>,
    pub corporations: Vec<Corporation>,
    pub alliances: Vec<Alliance>,
    pub coalitions: Vec<Coalition>,
    /// Alliances outside every coalition (small gangs, gankers, wormholers).
    pub independent_alliances: Vec<usize>,
    /// Pilots in NPC corporations.
    pub npc_corp_pilots: Vec<PilotIx>,
}

/// Lowest character id handed out; real ids run from 90,000,000 to about 2,130,000,000.
const FIRST_CHARACTER_ID: i64 = 90_000_000;
const LAST_CHARACTER_ID: i64 = 2_130_000_000;
const FIRST_CORPORATION_ID: i64 = 98_000_000;
const FIRST_ALLIANCE_ID: i64 = 99_000_000;

/// Sizes of the population at a given volume scale.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    coalitions: usize,
    independent_alliances: usize,
    npc_corp_pilots: usize,
    /// Multiplier of alliance sizes.
    growth: f64,
}

impl Sizes {
    fn for_scale(scale: f64) -> Sizes {
        let s = scale.max(0.01);
        Sizes {
            coalitions: (6.0 + 2.0 * s.sqrt()).round().min(16.0) as usize,
            independent_alliances: (30.0 * s.sqrt()).round().clamp(8.0, 150.0) as usize,
            npc_corp_pilots: (3000.0 * s.sqrt()).round().max(300.0) as usize,
            growth: s.sqrt().clamp(0.5, 4.0),
        }
    }
}

/// Draft of a pilot before character ids are handed out.
struct Draft {
    name: String,
    corporation: usize,
}

impl Population {
    /// Builds the population for a volume scale; `home_regions` are the candidate null-sec
    /// regions (sorted) that coalitions are given homes in.
    pub fn generate(rng: &mut impl Rng, scale: f64, home_regions: &[i64]) -> Population {
        let sizes = Sizes::for_scale(scale);
        let mut corporations = Vec::new();
        let mut alliances: Vec<Alliance> = Vec::new();
        let mut drafts: Vec<Draft> = Vec::new();

        for &(id, name) in NPC_CORPORATIONS {
            corporations.push(Corporation {
                id,
                name: name.to_string(),
                alliance: None,
            });
        }
        for _ in 0..sizes.npc_corp_pilots {
            let corporation = rng.random_range(0..NPC_CORPORATIONS.len());
            drafts.push(Draft {
                name: names::character(rng),
                corporation,
            });
        }
        let npc_draft_count = drafts.len();

        let mut regions = home_regions.to_vec();
        regions.shuffle(rng);
        let mut coalitions = Vec::new();
        for c in 0..sizes.coalitions {
            let mut home = Vec::new();
            if !regions.is_empty() {
                home.push(regions[(2 * c) % regions.len()]);
                if rng.random_bool(0.5) {
                    home.push(regions[(2 * c + 1) % regions.len()]);
                }
            }
            home.dedup();
            let count = rng.random_range(3..=8);
            let mut members = Vec::new();
            for _ in 0..count {
                let pilots = (lognormal(rng, 350.0, 0.7) * sizes.growth).clamp(30.0, 6000.0);
                members.push(add_alliance(
                    rng,
                    &mut alliances,
                    &mut corporations,
                    &mut drafts,
                    Some(c),
                    pilots as usize,
                ));
            }
            coalitions.push(Coalition {
                alliances: members,
                home_regions: home,
            });
        }
        let mut independent_alliances = Vec::new();
        for _ in 0..sizes.independent_alliances {
            let pilots = lognormal(rng, 60.0, 0.8).clamp(5.0, 800.0);
            independent_alliances.push(add_alliance(
                rng,
                &mut alliances,
                &mut corporations,
                &mut drafts,
                None,
                pilots as usize,
            ));
        }

        // Character ids spread over the real range, increasing with creation order.
        let stride = (LAST_CHARACTER_ID - FIRST_CHARACTER_ID) / drafts.len().max(1) as i64;
        let mut order: Vec<usize> = (0..drafts.len()).collect();
        order.shuffle(rng);
        let mut ids = vec![0i64; drafts.len()];
        for (rank, &d) in order.iter().enumerate() {
            ids[d] = FIRST_CHARACTER_ID + rank as i64 * stride + rng.random_range(0..stride.max(1));
        }
        let pilots: Vec<Pilot> = drafts
            .into_iter()
            .zip(ids)
            .map(|(d, character_id)| Pilot {
                character_id,
                name: d.name,
                corporation: d.corporation,
            })
            .collect();
        for (ix, p) in pilots.iter().enumerate() {
            if let Some(a) = corporations[p.corporation].alliance {
                alliances[a].pilots.push(ix);
            }
        }
        Population {
            pilots,
            corporations,
            alliances,
            coalitions,
            independent_alliances,
            npc_corp_pilots: (0..npc_draft_count).collect(),
        }
    }

    /// The alliance index of a pilot, if any.
    pub fn alliance_of(&self, pilot: PilotIx) -> Option<usize> {
        self.corporations[self.pilots[pilot].corporation].alliance
    }
}

/// Adds an alliance of several corporations with `pilots` characters in all; returns its index.
fn add_alliance(
    rng: &mut impl Rng,
    alliances: &mut Vec<Alliance>,
    corporations: &mut Vec<Corporation>,
    drafts: &mut Vec<Draft>,
    coalition: Option<usize>,
    pilots: usize,
) -> usize {
    let ix = alliances.len();
    let id = FIRST_ALLIANCE_ID + ix as i64 * 7_919 + rng.random_range(0..7_000);
    let corp_count = (pilots / 40).clamp(1, 40) + rng.random_range(0..3);
    let mut corps = Vec::with_capacity(corp_count);
    for _ in 0..corp_count {
        let cix = corporations.len();
        corporations.push(Corporation {
            id: FIRST_CORPORATION_ID + cix as i64 * 97 + rng.random_range(0..90),
            name: names::corporation(rng),
            alliance: Some(ix),
        });
        corps.push(cix);
    }
    for _ in 0..pilots.max(corp_count) {
        // Corporation sizes are skewed: the first corporations are the big ones.
        let r: f64 = rng.random();
        let corporation = corps[((r * r) * corps.len() as f64) as usize];
        drafts.push(Draft {
            name: names::character(rng),
            corporation,
        });
    }
    alliances.push(Alliance {
        id,
        name: names::alliance(rng),
        coalition,
        corporations: corps,
        pilots: Vec::new(),
    });
    ix
}

/// A standard normal deviate (Box-Muller).
pub fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A log-normal deviate with the given median and log-space standard deviation.
pub fn lognormal(rng: &mut impl Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_in_realistic_ranges() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let p = Population::generate(&mut rng, 1.0, &[10000060, 10000035, 10000023]);
        let chars: HashSet<i64> = p.pilots.iter().map(|x| x.character_id).collect();
        assert_eq!(chars.len(), p.pilots.len());
        assert!(p.pilots.len() > 5_000, "{}", p.pilots.len());
        for pilot in &p.pilots {
            assert!((FIRST_CHARACTER_ID..LAST_CHARACTER_ID).contains(&pilot.character_id));
        }
        let corps: HashSet<i64> = p.corporations.iter().map(|c| c.id).collect();
        assert_eq!(corps.len(), p.corporations.len());
        for c in &p.corporations {
            match c.alliance {
                None => assert!((1_000_000..2_000_000).contains(&c.id)),
                Some(_) => assert!((98_000_000..99_000_000).contains(&c.id), "{}", c.id),
            }
        }
        for a in &p.alliances {
            assert!((99_000_000..100_000_000).contains(&a.id));
            assert!(!a.pilots.is_empty());
        }
        for &n in &p.npc_corp_pilots {
            assert_eq!(p.alliance_of(n), None);
        }
        assert!(p.coalitions.iter().all(|c| !c.home_regions.is_empty()));
    }
}

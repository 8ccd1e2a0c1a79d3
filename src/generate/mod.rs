//! Realistic synthetic killmails with ground truth, for tests, benchmarks and accuracy
//! measurements of the clustering engine.
//!
//! [`generate`] streams [`GeneratedKillmail`]s in arrival order, one simulated day at a time
//! (memory does not grow with the length of the run); [`generate_all`] collects a run in memory;
//! [`output::write_to_dir`] writes `killmails.jsonl[.gz]` and `truth.jsonl`. Everything is
//! deterministic for a seed: one ChaCha8 stream drives every choice and no hash-map order
//! reaches the output.
//!
//! Module map: [`catalog`] (ship classes and type ids), [`geography`] (real systems and gates),
//! [`population`] (coalitions, alliances, corporations, pilots), [`fight`] (battles),
//! [`background`] (kills that belong to no battle), [`theatre`] (concurrent fights of the same
//! coalitions in one region, at [`Density::Real`]), [`loss`] (one loss -> one killmail),
//! [`schedule`] (kill times -> ids -> arrival order), [`truth`] (the ground truth).

pub mod background;
pub mod catalog;
pub mod fight;
pub mod geography;
pub mod loss;
mod names;
pub mod output;
pub mod population;
pub mod schedule;
pub mod theatre;
pub mod truth;

use battles_dataflow::{Killmail, Universe};
use chrono::{DateTime, TimeZone, Utc};
use rand::Rng;

use self::geography::Geography;
use self::loss::{Loss, Shooter};
use self::population::{PilotIx, Population};
pub use self::schedule::Generator;
use self::truth::{BattleKind, KillKind, KillmailTruth, Side, TrueBattleId};
pub use self::truth::{Truth, TruthError};

/// Killmails a day at scale 1 (real EVE is about ten times that).
pub const KILLMAILS_PER_DAY: f64 = 1_500.0;

/// How busy the generated universe is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Density {
    /// Fights scattered over New Eden, each far from the others, few background kills beside
    /// them: about [`KILLMAILS_PER_DAY`] killmails a day at scale 1.
    #[default]
    Sparse,
    /// Real EVE at war: ten times the volume (about 15,000 killmails a day at scale 1), at least
    /// half of them background; most fights are concurrent engagements of the same coalitions
    /// in one region with pilots reshipping between them; roaming gangs, ganks and solo kills
    /// beside the fights.
    Real,
}

impl Density {
    /// Volume multiplier of this density on top of the configured scale.
    pub fn volume(self) -> f64 {
        match self {
            Density::Sparse => 1.0,
            Density::Real => 10.0,
        }
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    pub seed: u64,
    pub days: u32,
    /// Start of the first day.
    pub start: DateTime<Utc>,
    /// Volume multiplier: 1.0 is about [`KILLMAILS_PER_DAY`] killmails a day (times the
    /// density's [`Density::volume`]).
    pub scale: f64,
    pub density: Density,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 1,
            days: 1,
            start: Utc
                .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
                .single()
                .expect("valid date"),
            scale: 1.0,
            density: Density::Sparse,
        }
    }
}

impl GeneratorConfig {
    /// The volume multiplier the run is generated at: scale times the density's volume.
    pub fn volume(&self) -> f64 {
        self.scale * self.density.volume()
    }
}

/// One generated killmail with its truth, in arrival order.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedKillmail {
    pub killmail: Killmail,
    pub truth: KillmailTruth,
    /// When it reached the service (at or after its `killmail_time`).
    pub arrival: DateTime<Utc>,
}

/// A whole run in memory.
#[derive(Clone, Debug)]
pub struct Generated {
    /// In arrival order.
    pub killmails: Vec<Killmail>,
    pub truth: Truth,
}

/// Streams a run in arrival order.
pub fn generate(config: GeneratorConfig) -> Generator {
    Generator::new(config)
}

/// Generates a whole run in memory (for tests and small benchmarks).
pub fn generate_all(config: GeneratorConfig) -> Generated {
    let mut killmails = Vec::new();
    let mut truth = Truth::default();
    for g in generate(config) {
        truth
            .add(&g.truth)
            .expect("the generator's truth is consistent");
        killmails.push(g.killmail);
    }
    Generated { killmails, truth }
}

/// The map and the population a run draws from.
#[derive(Debug)]
pub struct World {
    pub geo: Geography,
    pub pop: Population,
}

impl World {
    /// Builds the world for a run from the embedded universe.
    pub fn new(rng: &mut impl Rng, scale: f64) -> World {
        let geo = Geography::new(Universe::embedded());
        let pop = Population::generate(rng, scale, &geo.home_regions());
        World { geo, pop }
    }
}

/// A killmail and its truth before its id (and hash) are handed out.
#[derive(Clone, Debug)]
pub struct Draft {
    pub killmail: Killmail,
    pub truth: KillmailTruth,
}

impl Draft {
    /// Builds the killmail of `loss`; `side` gives the true side of each pilot on it.
    pub fn new(
        world: &World,
        rng: &mut impl Rng,
        loss: &Loss,
        battle: TrueBattleId,
        battle_kind: BattleKind,
        kind: KillKind,
        side: impl Fn(PilotIx) -> Side,
    ) -> Draft {
        let killmail = loss::build(world, rng, loss);
        let mut sides = std::collections::BTreeMap::new();
        if let loss::Loser::Pilot { pilot, .. } = loss.victim {
            sides.insert(world.pop.pilots[pilot].character_id, side(pilot));
        }
        for p in loss.attackers.iter().filter_map(Shooter::pilot) {
            sides.insert(world.pop.pilots[p].character_id, side(p));
        }
        Draft {
            killmail,
            truth: KillmailTruth {
                killmail_id: 0,
                battle,
                battle_kind,
                kind,
                sides,
            },
        }
    }
}

//! The run as a stream: generates one day at a time (fights, spam runs, background kills),
//! hands out killmail ids in kill-time order, delays each killmail's arrival (most by seconds, a
//! few per cent by minutes to hours, a few by about a day) and releases killmails in arrival
//! order as soon as nothing generated later can arrive before them. Memory holds about one day.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, VecDeque};

use chrono::DateTime;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::background::{self, Placement};
use super::fight::{self, FightPlan, FightWindow};
use super::population::lognormal;
use super::{Draft, GeneratedKillmail, GeneratorConfig, World, KILLMAILS_PER_DAY};

/// Share of killmails from fights; spam runs add about 1%, background the rest.
const FIGHT_SHARE: f64 = 0.58;
const BACKGROUND_SHARE: f64 = 0.41;
/// Share of background events placed next to a running fight.
const NEAR_FIGHT: f64 = 0.12;
/// Of those, the share in the fight's own system (genuinely ambiguous, so rare).
const SAME_SYSTEM: f64 = 0.03;
const DAY: i64 = 86_400;
/// First killmail id handed out.
const FIRST_KILLMAIL_ID: i64 = 125_000_000;

/// Relative activity per UTC hour (EU and US prime time, quiet downtime morning).
const HOURLY: [f64; 24] = [
    6.0, 6.0, 5.0, 5.0, 4.0, 3.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 7.0, 8.0,
    9.0, 9.0, 8.0, 7.0, 6.0,
];

/// A draft waiting for its id, ordered by kill time then generation order.
struct ByTime {
    time: i64,
    seq: u64,
    draft: Box<Draft>,
}

/// A finished killmail waiting for its arrival, ordered by arrival time then id.
struct ByArrival {
    arrival: i64,
    id: i64,
    item: Box<GeneratedKillmail>,
}

macro_rules! order_by {
    ($t:ty, $a:ident, $b:ident) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == Ordering::Equal
            }
        }
        impl Eq for $t {}
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $t {
            fn cmp(&self, other: &Self) -> Ordering {
                (self.$a, self.$b).cmp(&(other.$a, other.$b))
            }
        }
    };
}
order_by!(ByTime, time, seq);
order_by!(ByArrival, arrival, id);

/// The streaming generator: an iterator of killmails in arrival order.
pub struct Generator {
    config: GeneratorConfig,
    world: World,
    rng: ChaCha8Rng,
    day: u32,
    next_battle: u64,
    next_id: i64,
    seq: u64,
    /// Fight killmails generated so far, against a running budget (a huge fight one day means
    /// fewer fights the next days, as after real wars).
    fight_killmails: f64,
    by_time: BinaryHeap<Reverse<ByTime>>,
    by_arrival: BinaryHeap<Reverse<ByArrival>>,
    ready: VecDeque<GeneratedKillmail>,
}

impl Generator {
    pub fn new(config: GeneratorConfig) -> Generator {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let world = World::new(&mut rng, config.scale);
        Generator {
            config,
            world,
            rng,
            day: 0,
            next_battle: 1,
            next_id: FIRST_KILLMAIL_ID,
            seq: 0,
            fight_killmails: 0.0,
            by_time: BinaryHeap::new(),
            by_arrival: BinaryHeap::new(),
            ready: VecDeque::new(),
        }
    }

    /// The world (map and population) of this run.
    pub fn world(&self) -> &World {
        &self.world
    }

    fn battle(&mut self) -> u64 {
        self.next_battle += 1;
        self.next_battle - 1
    }

    fn push(&mut self, drafts: Vec<Draft>) {
        for d in drafts {
            self.seq += 1;
            self.by_time.push(Reverse(ByTime {
                time: d.killmail.timestamp(),
                seq: self.seq,
                draft: Box::new(d),
            }));
        }
    }

    /// A time of day in seconds, following the hourly activity curve.
    fn time_of_day(&mut self) -> i64 {
        let hours: Vec<usize> = (0..24).collect();
        let h = *hours
            .choose_weighted(&mut self.rng, |&h| HOURLY[h])
            .expect("weights are positive");
        h as i64 * 3600 + self.rng.random_range(0..3600)
    }

    /// Generates every event that starts on the current day.
    fn generate_day(&mut self) {
        let day_start = self.config.start.timestamp() + self.day as i64 * DAY;
        let scale = self.config.scale.max(0.0);
        let target = KILLMAILS_PER_DAY * scale;
        let fight_budget = (self.day as f64 + 1.0) * target * FIGHT_SHARE;
        // Pods come on top of ship kills: about 1.45 killmails per ship kill.
        let cap = ((target * FIGHT_SHARE * 1.2 / 1.45) as usize).clamp(30, 3000);
        let mut windows: Vec<FightWindow> = Vec::new();
        while self.fight_killmails < fight_budget {
            let plan = FightPlan {
                battle: self.battle(),
                start: day_start + self.time_of_day(),
                kills: fight::ship_kills(&mut self.rng, cap),
            };
            let (drafts, window) = fight::fight(&self.world, &mut self.rng, &plan);
            self.fight_killmails += drafts.len() as f64;
            windows.push(window);
            self.push(drafts);
        }

        let none = BTreeSet::new();
        let spam_runs = (0.3 * scale + self.rng.random::<f64>()).floor() as usize;
        for _ in 0..spam_runs {
            let at = Placement {
                battle: self.battle(),
                time: day_start + self.time_of_day(),
                system: None,
                excluded_alliances: &none,
            };
            let drafts = background::spam_run(&self.world, &mut self.rng, &at);
            self.push(drafts);
        }

        let background_target = target * BACKGROUND_SHARE;
        let mut background = 0.0;
        while background < background_target {
            let battle = self.battle();
            let near = if !windows.is_empty() && self.rng.random_bool(NEAR_FIGHT) {
                windows.choose(&mut self.rng)
            } else {
                None
            };
            let (time, system) = match near {
                Some(w) => {
                    let time = self.rng.random_range(w.start..=w.end);
                    let fight_system = *w.systems.choose(&mut self.rng).expect("non-empty");
                    let system = if self.rng.random_bool(SAME_SYSTEM) {
                        fight_system
                    } else {
                        self.world.geo.nearby(fight_system, &mut self.rng)
                    };
                    (time, Some(system))
                }
                None => (day_start + self.time_of_day(), None),
            };
            // Nobody from a fight running around that time (two hours either side).
            let excluded: BTreeSet<usize> = windows
                .iter()
                .filter(|w| w.start - 7200 <= time && time <= w.end + 7200)
                .flat_map(|w| w.alliances.iter().copied())
                .collect();
            let at = Placement {
                battle,
                time,
                system,
                excluded_alliances: &excluded,
            };
            let drafts = background::event(&self.world, &mut self.rng, &at);
            background += drafts.len() as f64;
            self.push(drafts);
        }
    }

    /// Hands out ids to drafts that happened before `horizon` and queues them by arrival;
    /// releases every killmail that arrives before `horizon`.
    fn release_until(&mut self, horizon: i64) {
        while self.by_time.peek().is_some_and(|d| d.0.time < horizon) {
            let Reverse(ByTime { draft, .. }) = self.by_time.pop().expect("peeked");
            let Draft {
                mut killmail,
                mut truth,
            } = *draft;
            killmail.killmail_id = self.next_id;
            self.next_id += self.rng.random_range(1..=3);
            killmail.killmail_hash = Some(format!(
                "{:016x}{:016x}{:08x}",
                self.rng.random::<u64>(),
                self.rng.random::<u64>(),
                self.rng.random::<u32>()
            ));
            truth.killmail_id = killmail.killmail_id;
            let arrival = killmail.timestamp() + self.delay();
            self.by_arrival.push(Reverse(ByArrival {
                arrival,
                id: killmail.killmail_id,
                item: Box::new(GeneratedKillmail {
                    killmail,
                    truth,
                    arrival: DateTime::from_timestamp(arrival, 0).expect("valid time"),
                }),
            }));
        }
        while self
            .by_arrival
            .peek()
            .is_some_and(|a| a.0.arrival < horizon)
        {
            let Reverse(a) = self.by_arrival.pop().expect("peeked");
            self.ready.push_back(*a.item);
        }
    }

    /// Seconds between a kill and its arrival at the service.
    fn delay(&mut self) -> i64 {
        let r: f64 = self.rng.random();
        if r < 0.90 {
            self.rng.random_range(5..180)
        } else if r < 0.97 {
            lognormal(&mut self.rng, 1200.0, 1.2).clamp(180.0, 12.0 * 3600.0) as i64
        } else {
            self.rng.random_range(20 * 3600..30 * 3600)
        }
    }
}

impl Iterator for Generator {
    type Item = GeneratedKillmail;

    fn next(&mut self) -> Option<GeneratedKillmail> {
        loop {
            if let Some(k) = self.ready.pop_front() {
                return Some(k);
            }
            if self.day < self.config.days {
                self.generate_day();
                self.day += 1;
                let horizon = self.config.start.timestamp() + self.day as i64 * DAY;
                self.release_until(horizon);
            } else if !self.by_time.is_empty() || !self.by_arrival.is_empty() {
                self.release_until(i64::MAX);
            } else {
                return None;
            }
        }
    }
}

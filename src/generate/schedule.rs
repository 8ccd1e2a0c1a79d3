//! The run as a stream: generates one day at a time (fights, theatres of concurrent fights at
//! real density, spam runs, background kills and roaming gangs),
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
use super::theatre::{self, Engagement};
use super::{Density, Draft, GeneratedKillmail, GeneratorConfig, World, KILLMAILS_PER_DAY};

/// The make-up of a day at one density.
#[derive(Clone, Copy, Debug)]
struct DayMix {
    /// Share of killmails from fights; spam runs add about 1%, background the rest.
    fight_share: f64,
    background_share: f64,
    /// Share of background events placed next to a running fight.
    near_fight: f64,
    /// Of those, the share in the fight's own system.
    same_system: f64,
    /// Share of fight killmails fought in theatres (concurrent fights in one region).
    theatre_share: f64,
    /// Share of background events that are roaming gangs (several kills each).
    roaming_share: f64,
}

impl DayMix {
    fn of(density: Density) -> DayMix {
        match density {
            Density::Sparse => DayMix {
                fight_share: 0.58,
                background_share: 0.41,
                near_fight: 0.12,
                same_system: 0.03,
                theatre_share: 0.0,
                roaming_share: 0.0,
            },
            Density::Real => DayMix {
                fight_share: 0.45,
                background_share: 0.54,
                near_fight: 0.25,
                same_system: 0.15,
                theatre_share: 0.7,
                roaming_share: 0.08,
            },
        }
    }
}
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
        let world = World::new(&mut rng, config.volume());
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
        let mix = DayMix::of(self.config.density);
        let day_start = self.config.start.timestamp() + self.day as i64 * DAY;
        let volume = self.config.volume().max(0.0);
        let target = KILLMAILS_PER_DAY * volume;
        let windows = self.generate_fights(&mix, day_start, target);
        self.generate_spam_runs(day_start, volume);
        self.generate_background(&mix, day_start, target, &windows);
    }

    /// The day's fights, lone or in theatres, up to the running fight budget.
    fn generate_fights(&mut self, mix: &DayMix, day_start: i64, target: f64) -> Vec<FightWindow> {
        let fight_budget = (self.day as f64 + 1.0) * target * mix.fight_share;
        // Pods come on top of ship kills: about 1.45 killmails per ship kill.
        let cap = ((target * mix.fight_share * 1.2 / 1.45) as usize).clamp(30, 3000);
        let mut windows: Vec<FightWindow> = Vec::new();
        while self.fight_killmails < fight_budget {
            let start = day_start + self.time_of_day();
            let keep_out = self.near_fights_around(&windows, start);
            let in_theatre = mix.theatre_share > 0.0 && self.rng.random_bool(mix.theatre_share);
            let (drafts, mut new_windows) = if in_theatre {
                let count = self.rng.random_range(2..=4);
                let engagements: Vec<Engagement> = (0..count)
                    .map(|_| Engagement {
                        battle: self.battle(),
                        kills: fight::ship_kills(&mut self.rng, cap),
                    })
                    .collect();
                theatre::theatre(&self.world, &mut self.rng, start, &engagements, &keep_out)
            } else {
                let plan = FightPlan {
                    battle: self.battle(),
                    start,
                    kills: fight::ship_kills(&mut self.rng, cap),
                    staging: None,
                    keep_out,
                };
                let (drafts, window) = fight::fight(&self.world, &mut self.rng, &plan);
                (drafts, vec![window])
            };
            self.fight_killmails += drafts.len() as f64;
            windows.append(&mut new_windows);
            self.push(drafts);
        }
        windows
    }

    /// Systems within three jumps of the fights of `windows` that run from an hour before
    /// `start` to four hours after it: a new fight starting then stays out of them.
    fn near_fights_around(&self, windows: &[FightWindow], start: i64) -> BTreeSet<i64> {
        let systems: Vec<i64> = windows
            .iter()
            .filter(|w| w.end >= start - 3600 && w.start <= start + 4 * 3600)
            .flat_map(|w| w.systems.iter().copied())
            .collect();
        self.world.geo.within_jumps(&systems, 3)
    }

    /// The day's spam runs (about 0.3 a day at scale 1).
    fn generate_spam_runs(&mut self, day_start: i64, volume: f64) {
        let none = BTreeSet::new();
        let spam_runs = (0.3 * volume + self.rng.random::<f64>()).floor() as usize;
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
    }

    /// The day's background kills and roaming gangs, some beside running fights.
    fn generate_background(
        &mut self,
        mix: &DayMix,
        day_start: i64,
        target: f64,
        windows: &[FightWindow],
    ) {
        let background_target = target * mix.background_share;
        let mut background = 0.0;
        while background < background_target {
            let near = if !windows.is_empty() && self.rng.random_bool(mix.near_fight) {
                windows.choose(&mut self.rng)
            } else {
                None
            };
            let (time, system) = match near {
                Some(w) => {
                    let time = self.rng.random_range(w.start..=w.end);
                    let fight_system = *w.systems.choose(&mut self.rng).expect("non-empty");
                    let system = if self.rng.random_bool(mix.same_system) {
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
            let roaming = mix.roaming_share > 0.0 && self.rng.random_bool(mix.roaming_share);
            let drafts = if roaming {
                let kills = self.rng.random_range(3..=6);
                let battles: Vec<u64> = (0..kills).map(|_| self.battle()).collect();
                let at = Placement {
                    battle: battles[0],
                    time,
                    system,
                    excluded_alliances: &excluded,
                };
                background::roaming_gang(&self.world, &mut self.rng, &at, &battles)
            } else {
                let at = Placement {
                    battle: self.battle(),
                    time,
                    system,
                    excluded_alliances: &excluded,
                };
                background::event(&self.world, &mut self.rng, &at)
            };
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

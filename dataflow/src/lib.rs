//! The battle clustering engine: a timely + differential-dataflow graph that takes killmail
//! insertions and retractions and keeps every battle, with its sides and statistics, up to date.
//! Pure: no I/O. The stream service, backfill, re-clustering, tests and benches all drive it
//! through [`Engine`]; [`reference`](mod@reference) computes the same battles sequentially for checking.

pub mod cell;
pub mod changes;
pub mod engine;
pub mod graph;
pub mod handshake;
pub mod id_hash;
pub mod killmail;
pub mod link;
pub mod reference;
pub mod report;
pub mod resident;
pub mod shared;
pub mod sides;
pub mod summarize;
pub mod universe;

pub use changes::BattleChange;
pub use engine::{run_cluster_peer, Engine, EngineError, Eviction, StepOutput};
pub use killmail::{Attacker, Killmail, KillmailId, Victim};
pub use link::LinkRule;
pub use report::{battle_id, BattleReport, Team};
pub use universe::Universe;

use serde::{Deserialize, Serialize};

/// How the engine clusters and how many workers it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    pub rule: LinkRule,
    /// A component needs at least this many linked (non-satellite) killmails to be a battle. The
    /// default 0 makes every killmail part of a battle, as the spec has it (a lone kill is a
    /// battle of one); raise it to keep only fights.
    pub min_linked_killmails: usize,
    /// Timely worker threads (per process).
    pub workers: usize,
    /// Several processes: this process's place in a timely cluster. `None` runs in this
    /// process only.
    #[serde(default)]
    pub cluster: Option<Cluster>,
    /// How long the processes of a cluster wait for each other to connect, in seconds.
    #[serde(default = "default_cluster_timeout_secs")]
    pub cluster_timeout_secs: u64,
    /// Fault injection, for tests of failure handling: the worker that receives this killmail
    /// panics. `None` (always, outside tests) adds nothing to the graph.
    #[serde(skip)]
    pub panic_on_killmail: Option<KillmailId>,
    /// An eviction that takes at least this many killmails out of memory, and at least
    /// [`engine::RENEWAL_RATIO`] times as many as stay, starts the graph again with those that
    /// stay instead of retracting the others (see [`Engine::evict_closed`]). Tests lower it to
    /// renew on small histories; `usize::MAX` never renews.
    #[serde(default = "default_renewal_min_leaving")]
    pub renewal_min_leaving: usize,
}

/// The default [`EngineConfig::renewal_min_leaving`]: a renewal has a fixed cost (threads and a
/// dataflow to build), so small evictions retract.
pub const DEFAULT_RENEWAL_MIN_LEAVING: usize = 1_000;

fn default_renewal_min_leaving() -> usize {
    DEFAULT_RENEWAL_MIN_LEAVING
}

fn default_cluster_timeout_secs() -> u64 {
    60
}

impl EngineConfig {
    /// [`EngineConfig::cluster_timeout_secs`] as a duration.
    pub fn cluster_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.cluster_timeout_secs)
    }

    /// How far in time from a new killmail stored killmails can change how it clusters, so
    /// drivers read stored killmails back this far around new ones: the rule's reach
    /// ([`LinkRule::reach`]), plus, when components of fewer than `min_linked_killmails` linked
    /// killmails are not battles, the longest such component (its killmails are stored in no
    /// battle, so they are not read back whole with one), counted generously as a link and a
    /// satellite window per killmail.
    pub fn neighbourhood_reach(&self) -> chrono::Duration {
        let loose = self.min_linked_killmails.saturating_sub(1) as i64;
        let per_killmail = self.rule.max_link_secs() + self.rule.satellite_window();
        self.rule.reach() + chrono::Duration::seconds(loose.saturating_mul(per_killmail))
    }
}

/// A timely cluster: every process runs `workers` threads; process 0 drives the [`Engine`],
/// the others run [`engine::run_cluster_peer`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// `host:port` of every process, in process order; the same list everywhere.
    pub addresses: Vec<String>,
    /// This process's index in `addresses`.
    pub process: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            rule: LinkRule::default(),
            min_linked_killmails: 0,
            workers: 1,
            cluster: None,
            cluster_timeout_secs: default_cluster_timeout_secs(),
            panic_on_killmail: None,
            renewal_min_leaving: DEFAULT_RENEWAL_MIN_LEAVING,
        }
    }
}

//! One slice of a re-clustering job: the engine runs again over the stored killmails of a time
//! range and of everything that can reach them, the result is compared with the stored battles,
//! and only the difference comes out as battle changes.
//!
//! **What is re-clustered.** The settled set starts as the live killmails of the range. It grows
//! until it is closed under both groupings: every stored battle holding a settled killmail, and
//! every battle the engine forms now holding one, are settled whole. The engine holds every
//! stored killmail up to the rule's reach (`window_secs`, the longest time anything links or
//! attaches across) beyond the settled set on both sides, widened as the set grows. No killmail
//! further away can link to a settled one, so each battle of the settled set comes out exactly as
//! a fresh backfill of the whole database would make it, and the stored battles replaced are
//! exactly those holding settled killmails.
//!
//! **What changes.** A battle whose id and report are the same as stored is left alone (its
//! rows, `updated_at` and events untouched); ids are derived from a battle's first killmail,
//! so a battle that comes out the same keeps its id. A battle with a stored id and another report
//! is updated, one with a new id is created, and a stored battle whose id is gone ends, with the
//! battle that holds most of its killmails as its successor ([`continuing_battle`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use anyhow::Context;
use battles_dataflow::changes::continuing_battle;
use battles_dataflow::killmail::KillmailId;
use battles_dataflow::{BattleChange, BattleReport, Engine, EngineConfig};
use battles_sink::{BattleStatus, Sink, StatusRule};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// The difference a slice makes.
#[derive(Debug, Default)]
pub struct SlicePlan {
    /// The changes that turn the stored battles into the engine's: created, updated, ended.
    pub changes: Vec<BattleChange>,
    /// How written battles get their status: `historical` when every battle they replace was
    /// (or, replacing none, when only backfills wrote the database), else open or closed
    /// against the newest stored killmail (as the live service does).
    pub status: StatusRule,
    /// Live stored killmails of the range itself (a job's `killmails_processed`).
    pub killmails_in_range: u64,
    /// Every killmail of a battle that changed (old or new): a live engine holding any of them
    /// must read them back from the store.
    pub rewritten: HashSet<KillmailId>,
    /// Killmails the engine clustered for this slice (the range and its reach).
    pub clustered: u64,
}

/// The engine over the killmails loaded so far, and the battles it forms.
struct Loaded {
    engine: Engine,
    battles: BTreeMap<Uuid, Arc<BattleReport>>,
    times: HashMap<KillmailId, DateTime<Utc>>,
    span: Range<DateTime<Utc>>,
}

impl Loaded {
    /// Loads the live stored killmails of `range` into the engine.
    fn load(
        &mut self,
        sink: &Sink,
        runtime: &tokio::runtime::Runtime,
        range: Range<DateTime<Utc>>,
    ) -> anyhow::Result<()> {
        if range.start >= range.end {
            return Ok(());
        }
        let killmails = runtime
            .block_on(sink.load_live_killmails(range.clone()))
            .context("reading the stored killmails to re-cluster")?;
        for k in &killmails {
            self.times.insert(k.killmail_id, k.killmail_time);
        }
        let out = self.engine.insert(killmails)?;
        out.apply_to(&mut self.battles);
        self.span = self.span.start.min(range.start)..self.span.end.max(range.end);
        Ok(())
    }

    /// Killmail -> the battle the engine puts it in.
    fn holders(&self) -> HashMap<KillmailId, Uuid> {
        let mut out = HashMap::with_capacity(self.times.len());
        for (id, r) in &self.battles {
            for k in &r.killmails {
                out.insert(k.killmail_id, *id);
            }
        }
        out
    }
}

/// Computes the changes that make the stored battles of `range` what the engine (with
/// `engine`'s rule) gives for the stored killmails now.
pub fn plan_slice(
    sink: &Sink,
    runtime: &tokio::runtime::Runtime,
    engine: &EngineConfig,
    range: Range<DateTime<Utc>>,
) -> anyhow::Result<SlicePlan> {
    let reach = engine.neighbourhood_reach();
    let started = std::time::Instant::now();
    let mut loaded = Loaded {
        engine: Engine::start(EngineConfig {
            cluster: None,
            ..engine.clone()
        })
        .context("starting the re-clustering engine")?,
        battles: BTreeMap::new(),
        times: HashMap::new(),
        span: range.start..range.start,
    };
    loaded.load(
        sink,
        runtime,
        range.start - reach * 3..range.end + reach * 3,
    )?;
    let mut settled: HashSet<KillmailId> = loaded
        .times
        .iter()
        .filter(|(_, t)| range.contains(t))
        .map(|(id, _)| *id)
        .collect();
    let killmails_in_range = settled.len() as u64;
    let first_load = started.elapsed();
    let mut rounds = 0;

    // Stored battles holding settled killmails, and the times of their killmails.
    let mut stored: HashMap<Uuid, Vec<(KillmailId, DateTime<Utc>)>> = HashMap::new();
    let mut stored_holder: HashMap<KillmailId, Uuid> = HashMap::new();
    loop {
        rounds += 1;
        let unknown: Vec<i64> = settled
            .iter()
            .filter(|id| !stored_holder.contains_key(id))
            .copied()
            .collect();
        if !unknown.is_empty() {
            let found = runtime
                .block_on(sink.battles_holding(&unknown))
                .context("reading the stored battles of the range")?;
            for (battle, killmails) in found {
                for (k, _) in &killmails {
                    stored_holder.insert(*k, battle);
                }
                stored.insert(battle, killmails);
            }
        }
        let holders = loaded.holders();
        let mut grown = settled.clone();
        let (mut earliest, mut latest) = (range.start, range.end - Duration::seconds(1));
        let mut widen = |t: DateTime<Utc>| {
            earliest = earliest.min(t);
            latest = latest.max(t);
        };
        // Each battle once (a big battle's killmails all name it).
        let stored_touched: HashSet<Uuid> = settled
            .iter()
            .filter_map(|id| stored_holder.get(id))
            .copied()
            .collect();
        let new_touched: HashSet<Uuid> = settled
            .iter()
            .filter_map(|id| holders.get(id))
            .copied()
            .collect();
        for battle in &stored_touched {
            for (k, t) in &stored[battle] {
                grown.insert(*k);
                widen(*t);
            }
        }
        for battle in &new_touched {
            for k in &loaded.battles[battle].killmails {
                grown.insert(k.killmail_id);
                widen(k.killmail_time);
            }
        }
        let need = earliest - reach..latest + reach + Duration::seconds(1);
        let span = loaded.span.clone();
        let widened = need.start < span.start || need.end > span.end;
        loaded.load(sink, runtime, need.start..span.start)?;
        loaded.load(sink, runtime, span.end..need.end)?;
        if grown.len() == settled.len() && !widened {
            break;
        }
        settled = grown;
    }

    let closed = started.elapsed();
    let holders = loaded.holders();
    let new_ids: HashSet<Uuid> = settled
        .iter()
        .filter_map(|k| holders.get(k).copied())
        .collect();
    let old_ids: Vec<Uuid> = stored.keys().copied().collect();
    let old = runtime
        .block_on(sink.load_reports_of(&old_ids))
        .context("reading the stored battles of the range")?;
    let mut changes = Vec::new();
    let mut rewritten = HashSet::new();
    let mut ids: Vec<Uuid> = new_ids.iter().copied().collect();
    ids.sort();
    for id in ids {
        let new = loaded.battles[&id].clone();
        match old.get(&id) {
            Some((report, _)) if *report == *new => continue,
            Some((report, _)) => {
                rewritten.extend(report.killmails.iter().map(|k| k.killmail_id));
                rewritten.extend(new.killmails.iter().map(|k| k.killmail_id));
                changes.push(BattleChange::Updated {
                    old: Arc::new(report.clone()),
                    new,
                });
            }
            None => {
                rewritten.extend(new.killmails.iter().map(|k| k.killmail_id));
                changes.push(BattleChange::Created(new));
            }
        }
    }
    for (id, (report, _)) in &old {
        if new_ids.contains(id) {
            continue;
        }
        rewritten.extend(report.killmails.iter().map(|k| k.killmail_id));
        changes.push(BattleChange::Ended {
            continued_by: continuing_battle(report, &holders),
            old: Arc::new(report.clone()),
        });
    }
    changes.sort_by_key(BattleChange::battle_id);
    tracing::debug!(
        load_and_cluster_ms = first_load.as_millis() as u64,
        closure_ms = (closed - first_load).as_millis() as u64,
        rounds,
        compare_ms = (started.elapsed() - closed).as_millis() as u64,
        stored_battles = old.len(),
        "planned a slice"
    );

    // Battles replacing backfilled history stay history; so do new battles in a database only
    // backfills wrote. Anything else gets the live service's open/closed.
    let all_historical = match old.is_empty() {
        false => old.values().all(|(_, s)| *s == BattleStatus::Historical),
        true => !runtime
            .block_on(sink.has_live_battles())
            .context("reading the battles' statuses")?,
    };
    let status = match all_historical {
        true => StatusRule::Historical,
        false => StatusRule::watermark(
            runtime
                .block_on(sink.newest_killmail_time())
                .context("reading the newest stored killmail")?
                .unwrap_or(range.end),
            reach,
        ),
    };
    Ok(SlicePlan {
        changes,
        status,
        killmails_in_range,
        rewritten,
        clustered: loaded.times.len() as u64,
    })
}

//! The engine handle: runs the clustering graph on timely worker threads (and processes) and
//! lets a driver (backfill, the stream service, re-clustering, tests) push killmail changes one
//! step at a time and get back the consolidated battle changes of that step.

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use differential_dataflow::input::Input;
use timely::communication::WorkerGuards;
use timely::dataflow::operators::{Exchange, Inspect, Probe};
use uuid::Uuid;

use crate::graph::{self, Epoch};
use crate::killmail::Killmail;
use crate::report::BattleReport;
use crate::resident::Resident;
use crate::shared::Shared;
use crate::EngineConfig;

enum Command {
    Step {
        epoch: Epoch,
        updates: Vec<(Arc<Killmail>, isize)>,
    },
}

enum Message {
    Output(Vec<(Arc<BattleReport>, isize)>),
    Done,
}

/// A battle that no longer exists after a step, and the battle that now holds its first
/// killmail (the battle it merged into), if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    pub battle_id: Uuid,
    pub continued_by: Option<Uuid>,
}

/// The consolidated result of one step.
#[derive(Clone, Debug, Default)]
pub struct StepOutput {
    /// Retracted old reports (-1) and inserted new reports (+1), sorted by battle id, retraction
    /// first. A battle id with both is an update. Reports are shared with the graph's state:
    /// a report of a big battle is large and the caller rarely needs its own copy.
    pub changes: Vec<(Arc<BattleReport>, isize)>,
    /// Battle ids that ended in this step.
    pub ended: Vec<Ended>,
    /// Requested updates that were dropped: insertions of killmails already resident and
    /// retractions of killmails not resident.
    pub ignored: usize,
}

/// What [`Engine::evict_closed`] did.
#[derive(Clone, Debug, Default)]
pub struct Eviction {
    /// Battles that left memory.
    pub battles: usize,
    /// Killmails that left memory.
    pub killmails: usize,
    /// Changes to battles that were not evicted. Always empty while the eviction rule holds
    /// (a closed battle shares nothing with the others); returned rather than dropped so a
    /// caller that writes them stays correct even if it did not.
    pub unexpected: StepOutput,
}

impl StepOutput {
    /// The new reports of this step (created or updated battles).
    pub fn upserts(&self) -> impl Iterator<Item = &Arc<BattleReport>> {
        self.changes.iter().filter(|(_, d)| *d > 0).map(|(r, _)| r)
    }

    /// Applies this step to a map of current battles by id (what a reader of every step's output
    /// holds).
    pub fn apply_to(&self, battles: &mut BTreeMap<Uuid, Arc<BattleReport>>) {
        for (r, d) in &self.changes {
            if *d < 0 {
                battles.remove(&r.battle_id);
            }
        }
        for r in self.upserts() {
            battles.insert(r.battle_id, r.clone());
        }
    }
}

/// A running clustering engine.
pub struct Engine {
    commands: Sender<Command>,
    messages: Receiver<Message>,
    guards: Option<WorkerGuards<()>>,
    epoch: Epoch,
    resident: Resident,
    /// A battle quiet for longer than this (seconds) before the horizon is closed for good.
    quiet_secs: i64,
}

impl Engine {
    /// Starts `config.workers` worker threads running the graph; with `config.cluster`, this
    /// process is process 0 of a timely cluster and waits until every other process (started
    /// with [`run_cluster_peer`]) has connected.
    pub fn start(config: EngineConfig) -> Engine {
        Engine::try_start(config).expect("timely workers start")
    }

    /// [`Engine::start`], returning timely's error (a peer that cannot be reached, an address
    /// in use) instead of panicking.
    pub fn try_start(config: EngineConfig) -> Result<Engine, String> {
        let quiet_secs = config.rule.window_secs.max(config.rule.max_link_secs());
        if let Some(cluster) = &config.cluster {
            if cluster.process != 0 {
                return Err(format!(
                    "the engine driver is process 0 of the cluster, not process {}",
                    cluster.process
                ));
            }
        }
        let (command_tx, command_rx) = channel::<Command>();
        let command_rx = Mutex::new(Some(command_rx));
        let (msg_tx, messages) = channel::<Message>();
        let msg_tx = Mutex::new(msg_tx);
        let guards = execute(config, move |worker_index| {
            if worker_index != 0 {
                return None;
            }
            let commands = command_rx
                .lock()
                .expect("receiver lock")
                .take()
                .expect("one driver worker");
            let tx = msg_tx.lock().expect("sender lock").clone();
            Some((commands, tx))
        })?;
        Ok(Engine {
            commands: command_tx,
            messages,
            guards: Some(guards),
            epoch: 0,
            resident: Resident::default(),
            quiet_secs,
        })
    }

    /// The killmails and battles in memory.
    pub fn resident(&self) -> &Resident {
        &self.resident
    }

    /// Applies insertions (+1) and retractions (-1) of killmails as one step and returns the
    /// battle changes it causes. A retraction is by killmail id (the rest of the record is not
    /// looked at); inserting a resident killmail again or retracting an absent one is ignored
    /// and counted in [`StepOutput::ignored`].
    pub fn step(&mut self, updates: Vec<(Killmail, isize)>) -> StepOutput {
        let (updates, ignored) = self.resident.admit(updates);
        let mut out = self.run_step(updates);
        self.resident.observe(&out.changes);
        out.ignored = ignored;
        out
    }

    /// Evicts every battle whose last killmail is more than the link window (one hour by
    /// default) older than `horizon`: no killmail at or after `horizon` can join it, so it is
    /// final. Its killmails leave memory; its report is not retracted from the caller's point
    /// of view (nothing about it is reported). A driver calls this with its event-time low
    /// watermark: the earliest time a killmail it will still insert may have.
    pub fn evict_closed(&mut self, horizon: DateTime<Utc>) -> Eviction {
        let closed = self.resident.closed_before(horizon, self.quiet_secs);
        if closed.is_empty() {
            return Eviction::default();
        }
        let evicted: HashSet<Uuid> = closed.iter().map(|(id, _)| *id).collect();
        let updates: Vec<(Arc<Killmail>, isize)> = closed
            .iter()
            .flat_map(|(_, ids)| ids)
            .filter_map(|id| self.resident.take(*id))
            .map(|km| (km, -1))
            .collect();
        let killmails = updates.len();
        let out = self.run_step(updates);
        self.resident.observe(&out.changes);
        let changes: Vec<(Arc<BattleReport>, isize)> = out
            .changes
            .into_iter()
            .filter(|(r, d)| !(*d < 0 && evicted.contains(&r.battle_id)))
            .collect();
        let ended = out
            .ended
            .into_iter()
            .filter(|e| !evicted.contains(&e.battle_id))
            .collect();
        Eviction {
            battles: closed.len(),
            killmails,
            unexpected: StepOutput {
                changes,
                ended,
                ignored: 0,
            },
        }
    }

    /// Takes stored killmails back into memory (whole stored battles next to a late killmail),
    /// skipping those already resident. The returned changes are the stored battles appearing
    /// again; a caller that took them from its own store does not write them.
    pub fn rehydrate(&mut self, killmails: impl IntoIterator<Item = Killmail>) -> StepOutput {
        let updates: Vec<(Killmail, isize)> = killmails
            .into_iter()
            .filter(|k| !self.resident.contains(k.killmail_id))
            .map(|k| (k, 1))
            .collect();
        if updates.is_empty() {
            return StepOutput::default();
        }
        self.step(updates)
    }

    fn run_step(&mut self, updates: Vec<(Arc<Killmail>, isize)>) -> StepOutput {
        let epoch = self.epoch;
        self.epoch += 1;
        self.commands
            .send(Command::Step { epoch, updates })
            .expect("engine worker alive");
        let mut changes = Vec::new();
        while let Message::Output(mut updates) = self.messages.recv().expect("engine worker alive")
        {
            changes.append(&mut updates);
        }
        consolidate(changes)
    }

    /// Inserts killmails as one step.
    pub fn insert(&mut self, killmails: impl IntoIterator<Item = Killmail>) -> StepOutput {
        self.step(killmails.into_iter().map(|k| (k, 1)).collect())
    }

    /// Retracts killmails as one step.
    pub fn retract(&mut self, killmails: impl IntoIterator<Item = Killmail>) -> StepOutput {
        self.step(killmails.into_iter().map(|k| (k, -1)).collect())
    }
}

/// Runs process `config.cluster.process` (not 0) of a timely cluster whose process 0 runs the
/// [`Engine`]: this process's workers take their share of the graph and the call returns when
/// the driver's engine is dropped.
pub fn run_cluster_peer(config: EngineConfig) -> Result<(), String> {
    match &config.cluster {
        Some(c) if c.process != 0 => {}
        _ => return Err("a cluster peer needs a cluster configuration with process > 0".into()),
    }
    let guards = execute(config, |_| None)?;
    for result in guards.join() {
        result?;
    }
    Ok(())
}

type Driver = (Receiver<Command>, Sender<Message>);

/// Starts timely with the graph on every worker. `driver(worker_index)` gives the command and
/// message channels to the one worker that drives (global index 0); the others feed nothing
/// (their input closes at once) and only do their share of the work. All output is exchanged
/// to the driving worker, whose probe then says when a step is complete everywhere.
fn execute(
    config: EngineConfig,
    driver: impl Fn(usize) -> Option<Driver> + Send + Sync + 'static,
) -> Result<WorkerGuards<()>, String> {
    let workers = config.workers.max(1);
    let communication = match &config.cluster {
        None if workers == 1 => timely::CommunicationConfig::Thread,
        None => timely::CommunicationConfig::Process(workers),
        Some(c) => timely::CommunicationConfig::Cluster {
            threads: workers,
            process: c.process,
            addresses: c.addresses.clone(),
            report: false,
            zerocopy: false,
        },
    };
    let mut timely_config = timely::Config {
        communication,
        worker: timely::WorkerConfig::default(),
    };
    differential_dataflow::configure(
        &mut timely_config.worker,
        &differential_dataflow::Config::default().idle_merge_effort(None),
    );
    let config = Arc::new(config);
    timely::execute(timely_config, move |worker| {
        let channels = driver(worker.index());
        let out_tx = channels.as_ref().map(|(_, tx)| tx.clone());
        let config = config.clone();
        let (mut input, probe) = worker.dataflow::<Epoch, _, _>(move |scope| {
            let (input, killmails) = scope.new_collection::<Shared<Killmail>, isize>();
            let (probe, _) = graph::battles(killmails, config)
                .consolidate()
                .inner
                .exchange(|_| 0)
                .inspect_core(move |event| {
                    if let (Ok((_, batch)), Some(tx)) = (event, &out_tx) {
                        let updates = batch.iter().map(|(r, _, d)| (r.0.clone(), *d)).collect();
                        let _ = tx.send(Message::Output(updates));
                    }
                })
                .probe();
            (input, probe)
        });
        let Some((commands, tx)) = channels else {
            // Not the driver: feed nothing; timely keeps this worker stepping until the
            // driver's input closes.
            drop(input);
            return;
        };
        while let Ok(Command::Step { epoch, updates }) = commands.recv() {
            for (km, diff) in updates {
                input.update(Shared(km), diff);
            }
            input.advance_to(epoch + 1);
            input.flush();
            worker.step_while(|| probe.less_than(input.time()));
            if tx.send(Message::Done).is_err() {
                break;
            }
        }
    })
}

/// Sums the diffs of equal reports, drops zeros, and works out which battles ended.
///
/// Reports are compared only with other changes of the same battle id in the step (usually
/// one retraction and one insertion), pointer first: a report of a big battle is expensive to
/// compare.
fn consolidate(mut changes: Vec<(Arc<BattleReport>, isize)>) -> StepOutput {
    changes.sort_by_key(|(r, d)| (r.battle_id, *d));
    let mut merged: Vec<(Arc<BattleReport>, isize)> = Vec::with_capacity(changes.len());
    for group in changes.chunk_by(|a, b| a.0.battle_id == b.0.battle_id) {
        let first = merged.len();
        for (report, diff) in group {
            match merged[first..]
                .iter_mut()
                .find(|(r, _)| Arc::ptr_eq(r, report) || **r == **report)
            {
                Some(same) => same.1 += diff,
                None => merged.push((report.clone(), *diff)),
            }
        }
    }
    merged.retain(|(_, d)| *d != 0);
    merged.sort_by_key(|(r, d)| (r.battle_id, *d));
    let inserted: BTreeMap<Uuid, &BattleReport> = merged
        .iter()
        .filter(|(_, d)| *d > 0)
        .map(|(r, _)| (r.battle_id, &**r))
        .collect();
    let gone: Vec<&BattleReport> = merged
        .iter()
        .filter(|(r, d)| *d < 0 && !inserted.contains_key(&r.battle_id))
        .map(|(r, _)| &**r)
        .collect();
    let mut holder = BTreeMap::new();
    if !gone.is_empty() {
        for r in inserted.values() {
            for k in &r.killmails {
                holder.insert(k.killmail_id, r.battle_id);
            }
        }
    }
    let ended = gone
        .into_iter()
        .map(|r| Ended {
            battle_id: r.battle_id,
            continued_by: holder.get(&r.first_killmail_id).copied().or_else(|| {
                r.killmails
                    .iter()
                    .find_map(|k| holder.get(&k.killmail_id).copied())
            }),
        })
        .collect();
    StepOutput {
        changes: merged,
        ended,
        ignored: 0,
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let (closed, _) = channel();
        drop(std::mem::replace(&mut self.commands, closed));
        if let Some(guards) = self.guards.take() {
            drop(guards);
        }
    }
}

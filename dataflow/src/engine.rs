//! The engine handle: runs the clustering graph on timely worker threads (and processes) and
//! lets a driver (backfill, the stream service, re-clustering, tests) push killmail changes one
//! step at a time and get back the consolidated battle changes of that step.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use differential_dataflow::input::Input;
use differential_dataflow::AsCollection;
use timely::communication::WorkerGuards;
use timely::dataflow::operators::{Exchange, Inspect, Probe};
use uuid::Uuid;

use crate::changes::{classify, BattleChange, InconsistentChanges};
use crate::graph::{self, Epoch};
use crate::handshake;
use crate::killmail::{Killmail, KillmailId};
use crate::report::BattleReport;
use crate::resident::{holds_as_before, Resident};
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

/// Why the engine could not start or complete a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Timely could not start (an address in use, a peer that cannot be reached, a bad
    /// cluster configuration).
    #[error("the engine could not start: {0}")]
    Start(String),
    /// A worker thread panicked or a peer process was lost; the engine is unusable and must
    /// be started again (from the stored battles).
    #[error("an engine worker failed: {0}")]
    WorkerFailed(String),
    /// A killmail the engine cannot take (see [`crate::killmail::Killmail::bounds_error`]).
    #[error("killmail {killmail_id} cannot be clustered: {reason}")]
    InvalidKillmail {
        killmail_id: KillmailId,
        reason: String,
    },
    /// The graph emitted something that is not a set of whole-report changes (a bug).
    #[error("the engine emitted inconsistent changes: {0}")]
    Inconsistent(#[from] InconsistentChanges),
}

/// The result of one step.
#[derive(Clone, Debug, Default)]
pub struct StepOutput {
    /// What happened to each battle the step touched, sorted by battle id. Reports are shared
    /// with the graph's state: a report of a big battle is large and the caller rarely needs its
    /// own copy.
    pub changes: Vec<BattleChange>,
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
    /// Whether the engine started its graph again with the staying killmails rather than
    /// retracting the leaving ones (see [`Engine::evict_closed`]).
    pub renewed: bool,
    /// Changes to battles that were not evicted. Always empty while the eviction rule holds
    /// (a closed battle shares nothing with the others); returned rather than dropped so a
    /// caller that writes them stays correct even if it did not.
    pub unexpected: StepOutput,
}

impl StepOutput {
    /// The new reports of this step (created or updated battles).
    pub fn upserts(&self) -> impl Iterator<Item = &Arc<BattleReport>> {
        self.changes.iter().filter_map(BattleChange::new_report)
    }

    /// The battles that ended in this step, with the battle that continues each.
    pub fn ended(&self) -> impl Iterator<Item = (Uuid, Option<Uuid>)> + '_ {
        self.changes.iter().filter_map(|c| match c {
            BattleChange::Ended { old, continued_by } => Some((old.battle_id, *continued_by)),
            _ => None,
        })
    }

    /// Applies this step to a map of current battles by id (what a reader of every step's output
    /// holds).
    pub fn apply_to(&self, battles: &mut BTreeMap<Uuid, Arc<BattleReport>>) {
        for change in &self.changes {
            match change.new_report() {
                Some(r) => battles.insert(r.battle_id, r.clone()),
                None => battles.remove(&change.battle_id()),
            };
        }
    }
}

/// A running clustering engine.
pub struct Engine {
    /// The settings it was started with: a renewal starts the graph again with them.
    config: EngineConfig,
    workers: Workers,
    /// Once a step failed, every later call fails the same way.
    failed: Option<EngineError>,
    epoch: Epoch,
    resident: Resident,
}

/// The timely workers running one instance of the graph, and the driver's channels to them.
struct Workers {
    commands: Sender<Command>,
    messages: Receiver<Message>,
    guards: Option<WorkerGuards<()>>,
    /// Set by the driver when a worker has failed: the driving worker stops waiting for
    /// progress that will never come.
    abort: Arc<AtomicBool>,
    /// The first failure a worker caught, with its message.
    failure: Arc<Mutex<Option<String>>>,
}

/// An eviction starts the graph again with the staying killmails when those leaving are at
/// least this many times as many: retracting a killmail costs about as much as inserting it
/// (every arrangement takes the negative update, and the traces hold both until they merge),
/// so re-inserting the few that stay into an empty graph is the cheaper way to the same state.
pub const RENEWAL_RATIO: usize = 2;

/// How often a waiting driver checks that every worker is still alive.
const LIVENESS_CHECK: Duration = Duration::from_millis(200);

impl Engine {
    /// Starts `config.workers` worker threads running the graph; with `config.cluster`, this
    /// process is process 0 of a timely cluster: it first checks that every other process
    /// (started with [`run_cluster_peer`]) runs the same number of workers
    /// ([`crate::handshake`]), then connects.
    pub fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        if let Some(cluster) = &config.cluster {
            if cluster.process != 0 {
                return Err(EngineError::Start(format!(
                    "the engine driver is process 0 of the cluster, not process {}",
                    cluster.process
                )));
            }
            handshake::agree(cluster, config.workers.max(1), config.cluster_timeout())
                .map_err(|e| EngineError::Start(e.to_string()))?;
        }
        let workers = Workers::start(&config).map_err(EngineError::Start)?;
        Ok(Engine {
            config,
            workers,
            failed: None,
            epoch: 0,
            resident: Resident::default(),
        })
    }

    /// The killmails and battles in memory.
    pub fn resident(&self) -> &Resident {
        &self.resident
    }

    /// Applies insertions (+1) and retractions (-1) of killmails as one step and returns the
    /// battle changes it causes. A retraction is by killmail id (the rest of the record is not
    /// looked at); inserting a resident killmail again or retracting an absent one is ignored
    /// and counted in [`StepOutput::ignored`]. An insertion whose values are out of bounds
    /// fails the step before anything is applied.
    ///
    /// Killmails come owned or already shared (`Arc<Killmail>`): a caller that keeps them too
    /// (to store them) shares them instead of copying every name and attacker.
    pub fn step<K: Into<Arc<Killmail>>>(
        &mut self,
        updates: Vec<(K, isize)>,
    ) -> Result<StepOutput, EngineError> {
        let updates: Vec<(Arc<Killmail>, isize)> =
            updates.into_iter().map(|(k, d)| (k.into(), d)).collect();
        if let Some((km, _)) = updates
            .iter()
            .find(|(km, d)| *d > 0 && km.bounds_error().is_some())
        {
            return Err(EngineError::InvalidKillmail {
                killmail_id: km.killmail_id,
                reason: km.bounds_error().unwrap_or_default(),
            });
        }
        self.check_alive()?;
        let (updates, ignored) = self.resident.admit(updates);
        let mut out = self.run_step(updates)?;
        self.resident.observe(&out.changes);
        out.ignored = ignored;
        Ok(out)
    }

    /// Evicts every battle whose last killmail is more than the link window (one hour by
    /// default) older than `horizon`: no killmail at or after `horizon` can join it, so it is
    /// final. Its killmails leave memory; its report is not retracted from the caller's point
    /// of view (nothing about it is reported). A driver calls this with its event-time low
    /// watermark: the earliest time a killmail it will still insert may have.
    ///
    /// When most resident killmails leave (a backfill's step moves the horizon by hours or
    /// days), retracting them would cost about as much as inserting them did; the engine then
    /// *renews* instead: it drops them, starts a new instance of the graph and inserts the
    /// staying killmails into it ([`EngineConfig::renewal_min_leaving`], [`RENEWAL_RATIO`]).
    /// The outcome is the same state either way.
    pub fn evict_closed(&mut self, horizon: DateTime<Utc>) -> Result<Eviction, EngineError> {
        self.check_alive()?;
        let closed = self.resident.closed_before(horizon, self.quiet_secs());
        self.evict(closed, Vec::new())
    }

    /// Takes the battles holding any of `killmails` out of memory, whole, without reporting
    /// them ended (as [`Engine::evict_closed`] does for closed battles): a driver whose store
    /// was rewritten under them (re-clustering) reads them back when it needs them.
    pub fn forget(&mut self, killmails: &HashSet<KillmailId>) -> Result<Eviction, EngineError> {
        self.check_alive()?;
        let held = self.resident.battles_holding(killmails);
        let in_battles: HashSet<KillmailId> = held
            .iter()
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        // Resident killmails in no battle (below `min_linked_killmails`) go too.
        let lone: Vec<KillmailId> = killmails
            .iter()
            .filter(|id| self.resident.contains(**id) && !in_battles.contains(id))
            .copied()
            .collect();
        self.evict(held, lone)
    }

    fn evict(
        &mut self,
        closed: Vec<(Uuid, Vec<KillmailId>)>,
        lone: Vec<KillmailId>,
    ) -> Result<Eviction, EngineError> {
        if closed.is_empty() && lone.is_empty() {
            return Ok(Eviction::default());
        }
        let leaving = closed.iter().map(|(_, ids)| ids.len()).sum::<usize>() + lone.len();
        if self.renews_for(leaving) {
            return self.renew(closed, lone);
        }
        let evicted: HashSet<Uuid> = closed.iter().map(|(id, _)| *id).collect();
        let updates: Vec<(Arc<Killmail>, isize)> = closed
            .iter()
            .flat_map(|(_, ids)| ids)
            .chain(&lone)
            .filter_map(|id| self.resident.take(*id))
            .map(|km| (km, -1))
            .collect();
        let killmails = updates.len();
        let out = self.run_step(updates)?;
        self.resident.observe(&out.changes);
        let changes: Vec<BattleChange> = out
            .changes
            .into_iter()
            .filter(|c| !(c.new_report().is_none() && evicted.contains(&c.battle_id())))
            .collect();
        Ok(Eviction {
            battles: closed.len(),
            killmails,
            renewed: false,
            unexpected: StepOutput {
                changes,
                ignored: 0,
            },
        })
    }

    /// A battle quiet for longer than this (seconds) before the horizon is closed for good.
    fn quiet_secs(&self) -> i64 {
        let rule = &self.config.rule;
        rule.window_secs.max(rule.max_link_secs())
    }

    /// Whether taking `leaving` killmails out of memory is cheaper by starting the graph again
    /// with the killmails that stay ([`EngineConfig::renewal_min_leaving`],
    /// [`RENEWAL_RATIO`]). Only an engine of one process renews: the processes of a cluster
    /// build their dataflows together.
    fn renews_for(&self, leaving: usize) -> bool {
        let staying = self.resident.killmails().saturating_sub(leaving);
        self.config.cluster.is_none()
            && leaving >= self.config.renewal_min_leaving
            && leaving >= RENEWAL_RATIO.saturating_mul(staying)
    }

    /// Evicts by renewal: the leaving killmails are dropped, the workers are stopped, and a
    /// new instance of the graph takes the staying killmails in one step. The graph's output
    /// depends only on the set of killmails, so the staying battles come out as they were;
    /// nothing about them is reported, unless one reads differently, which would be a bug:
    /// then its new report is returned in [`Eviction::unexpected`] for the caller to write.
    fn renew(
        &mut self,
        closed: Vec<(Uuid, Vec<KillmailId>)>,
        lone: Vec<KillmailId>,
    ) -> Result<Eviction, EngineError> {
        let killmails = closed
            .iter()
            .flat_map(|(_, ids)| ids)
            .chain(&lone)
            .filter_map(|id| self.resident.take(*id))
            .count();
        let staying = self.resident.take_all();
        let before = self.resident.take_battles(closed.iter().map(|(id, _)| *id));
        self.restart()?;
        let (updates, _) = self
            .resident
            .admit(staying.into_iter().map(|k| (k, 1)).collect());
        let out = self.run_step(updates)?;
        self.resident.observe(&out.changes);
        let changes: Vec<BattleChange> = out
            .changes
            .into_iter()
            .filter(|c| !holds_as_before(&before, c))
            .collect();
        Ok(Eviction {
            battles: closed.len(),
            killmails,
            renewed: true,
            unexpected: StepOutput {
                changes,
                ignored: 0,
            },
        })
    }

    /// Stops the workers and starts new ones running an empty graph. A worker that failed
    /// fails the engine, as in a step.
    fn restart(&mut self) -> Result<(), EngineError> {
        self.check_alive()?;
        if !self.workers.alive() {
            return Err(self.fail());
        }
        self.workers.stop(true);
        match Workers::start(&self.config) {
            Ok(workers) => {
                self.workers = workers;
                self.epoch = 0;
                Ok(())
            }
            Err(reason) => {
                let e = EngineError::Start(reason);
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Takes stored killmails back into memory (whole stored battles next to a late killmail),
    /// skipping those already resident. The returned changes are the stored battles appearing
    /// again; a caller that took them from its own store does not write them.
    pub fn rehydrate(
        &mut self,
        killmails: impl IntoIterator<Item = Killmail>,
    ) -> Result<StepOutput, EngineError> {
        let updates: Vec<(Killmail, isize)> = killmails
            .into_iter()
            .filter(|k| !self.resident.contains(k.killmail_id))
            .map(|k| (k, 1))
            .collect();
        if updates.is_empty() {
            return Ok(StepOutput::default());
        }
        self.step(updates)
    }

    /// Inserts killmails as one step.
    pub fn insert<K: Into<Arc<Killmail>>>(
        &mut self,
        killmails: impl IntoIterator<Item = K>,
    ) -> Result<StepOutput, EngineError> {
        self.step(killmails.into_iter().map(|k| (k, 1)).collect())
    }

    /// Retracts killmails as one step.
    pub fn retract(
        &mut self,
        killmails: impl IntoIterator<Item = Killmail>,
    ) -> Result<StepOutput, EngineError> {
        self.step(killmails.into_iter().map(|k| (k, -1)).collect())
    }

    fn check_alive(&self) -> Result<(), EngineError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn run_step(
        &mut self,
        updates: Vec<(Arc<Killmail>, isize)>,
    ) -> Result<StepOutput, EngineError> {
        let epoch = self.epoch;
        self.epoch += 1;
        if self
            .workers
            .commands
            .send(Command::Step { epoch, updates })
            .is_err()
        {
            return Err(self.fail());
        }
        let mut diffs = Vec::new();
        loop {
            match self.workers.messages.recv_timeout(LIVENESS_CHECK) {
                Ok(Message::Output(mut updates)) => diffs.append(&mut updates),
                Ok(Message::Done) => break,
                Err(RecvTimeoutError::Timeout) if self.workers.alive() => {}
                Err(_) => return Err(self.fail()),
            }
        }
        let changes = classify(consolidate(diffs)).map_err(|e| {
            let e = EngineError::from(e);
            self.failed = Some(e.clone());
            e
        })?;
        Ok(StepOutput {
            changes,
            ignored: 0,
        })
    }

    /// Marks the engine failed: stops the driving worker's wait and returns the error with the
    /// first failure a worker reported.
    fn fail(&mut self) -> EngineError {
        let e = EngineError::WorkerFailed(self.workers.abort_wait());
        self.failed = Some(e.clone());
        e
    }
}

impl Workers {
    /// Starts `config.workers` worker threads running the graph (this process's share of a
    /// cluster's, with `config.cluster`).
    fn start(config: &EngineConfig) -> Result<Workers, String> {
        let (command_tx, command_rx) = channel::<Command>();
        let command_rx = Mutex::new(Some(command_rx));
        let (msg_tx, messages) = channel::<Message>();
        let msg_tx = Mutex::new(Some(msg_tx));
        let abort = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let guards = execute(
            config.clone(),
            abort.clone(),
            failure.clone(),
            move |worker_index| {
                if worker_index != 0 {
                    return None;
                }
                let commands = command_rx.lock().ok()?.take()?;
                let tx = msg_tx.lock().ok()?.take()?;
                Some((commands, tx))
            },
        )?;
        Ok(Workers {
            commands: command_tx,
            messages,
            guards: Some(guards),
            abort,
            failure,
        })
    }

    /// True while no worker thread has finished (they only finish when the engine is dropped
    /// or a worker failed).
    fn alive(&self) -> bool {
        self.failure.lock().map(|f| f.is_none()).unwrap_or(false)
            && self
                .guards
                .as_ref()
                .is_some_and(|g| g.guards().iter().all(|h| !h.is_finished()))
    }

    /// Stops the driving worker's wait for progress; returns the first failure a worker
    /// reported.
    fn abort_wait(&self) -> String {
        self.abort.store(true, Ordering::SeqCst);
        self.failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_else(|| "a worker thread stopped".to_owned())
    }

    /// Closes the commands (the driving worker finishes then) and, when `healthy`, joins the
    /// threads, so that timely's network threads tell the other processes it is shutting down
    /// before this process can exit. A failed engine's other workers may wait for a peer that
    /// is gone: joining them could block for ever, so they are left to end with the process.
    fn stop(&mut self, healthy: bool) {
        let (closed, _) = channel();
        drop(std::mem::replace(&mut self.commands, closed));
        if let Some(guards) = self.guards.take() {
            if healthy {
                drop(guards);
            } else {
                std::mem::forget(guards);
            }
        }
    }
}

/// Runs process `config.cluster.process` (not 0) of a timely cluster whose process 0 runs the
/// [`Engine`]: this process first tells process 0 its worker count (refused on a mismatch),
/// then its workers take their share of the graph; the call returns when the driver's engine
/// is dropped, or with an error when a worker fails or the driver is lost.
pub fn run_cluster_peer(config: EngineConfig) -> Result<(), EngineError> {
    let cluster = match &config.cluster {
        Some(c) if c.process != 0 => c.clone(),
        _ => {
            return Err(EngineError::Start(
                "a cluster peer needs a cluster configuration with process > 0".into(),
            ))
        }
    };
    handshake::agree(&cluster, config.workers.max(1), config.cluster_timeout())
        .map_err(|e| EngineError::Start(e.to_string()))?;
    let failure = Arc::new(Mutex::new(None));
    let guards = execute(
        config,
        Arc::new(AtomicBool::new(false)),
        failure.clone(),
        |_| None,
    )
    .map_err(EngineError::Start)?;
    // Wait for this process's workers. They end when the driver's engine is dropped, or when
    // one of them failed; then the others may wait for a peer that is gone, and timely's
    // network threads may have panicked, so the guards are not joined (their drop would
    // panic or block) but left to end with the process.
    let failed = || failure.lock().map(|f| f.clone()).unwrap_or(None);
    loop {
        if let Some(reason) = failed() {
            std::mem::forget(guards);
            return Err(EngineError::WorkerFailed(reason));
        }
        if guards.guards().iter().all(|h| h.is_finished()) {
            break;
        }
        std::thread::sleep(LIVENESS_CHECK);
    }
    let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guards.join()));
    match joined {
        Ok(results) => results
            .into_iter()
            .try_for_each(|r| r.map_err(EngineError::WorkerFailed)),
        Err(panic) => Err(EngineError::WorkerFailed(panic_message(&*panic))),
    }
}

type Driver = (Receiver<Command>, Sender<Message>);

/// Starts timely with the graph on every worker. `driver(worker_index)` gives the command and
/// message channels to the one worker that drives (global index 0); the others feed nothing
/// (their input closes at once) and only do their share of the work. All output is exchanged
/// to the driving worker, whose probe then says when a step is complete everywhere.
///
/// A panic in a worker is caught and its message kept in `failure` (the first one wins); the
/// worker then ends, which the driver notices. `abort` stops the driving worker's wait for
/// progress when another worker has failed.
fn execute(
    config: EngineConfig,
    abort: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
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
        let run = std::panic::AssertUnwindSafe(|| {
            run_worker(worker, &config, driver(worker.index()), &abort)
        });
        if let Err(panic) = std::panic::catch_unwind(run) {
            abort.store(true, Ordering::SeqCst);
            if let Ok(mut slot) = failure.lock() {
                slot.get_or_insert_with(|| panic_message(&*panic));
            }
        }
    })
}

/// One worker: builds the graph and, on the driving worker, feeds it one command at a time.
fn run_worker(
    worker: &mut timely::worker::Worker,
    config: &Arc<EngineConfig>,
    channels: Option<Driver>,
    abort: &AtomicBool,
) {
    let out_tx = channels.as_ref().map(|(_, tx)| tx.clone());
    let config = config.clone();
    let (mut input, probe) = worker.dataflow::<Epoch, _, _>(move |scope| {
        let (input, killmails) = scope.new_collection::<Shared<Killmail>, isize>();
        let killmails = match config.panic_on_killmail {
            None => killmails,
            Some(id) => killmails
                .inner
                .exchange(|(km, _, _)| km.0.killmail_id as u64)
                .inspect(move |(km, _, _)| {
                    if km.0.killmail_id == id {
                        panic!("fault injection: killmail {id}");
                    }
                })
                .as_collection(),
        };
        // The battle reduce's output is consolidated already: a battle's old and new report
        // come out of its key once per step, and two keys never hold equal reports (their
        // killmails differ). The driver consolidates what it receives in any case.
        let (probe, _) = graph::battles(killmails, config)
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
        // Not the driver: feed nothing, and step this worker's share until the driver's input
        // closes (here rather than in timely's own loop, so that a panic is caught above).
        drop(input);
        while worker.step_or_park(None) {}
        return;
    };
    while let Ok(Command::Step { epoch, updates }) = commands.recv() {
        for (km, diff) in updates {
            input.update(Shared(km), diff);
        }
        input.advance_to(epoch + 1);
        input.flush();
        worker.step_while(|| probe.less_than(input.time()) && !abort.load(Ordering::SeqCst));
        if abort.load(Ordering::SeqCst) {
            panic!("stopped: another worker failed");
        }
        if tx.send(Message::Done).is_err() {
            break;
        }
    }
    drop(input);
    while worker.step_or_park(None) {}
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a worker panicked".to_owned()
    }
}

/// Sums the diffs of equal reports and drops zeros.
///
/// Reports are compared only with other changes of the same battle id in the step (usually
/// one retraction and one insertion), pointer first: a report of a big battle is expensive to
/// compare.
fn consolidate(mut changes: Vec<(Arc<BattleReport>, isize)>) -> Vec<(Arc<BattleReport>, isize)> {
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
    merged
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Asked before the commands close (the driving worker finishes then).
        let healthy = self.failed.is_none() && self.workers.alive();
        self.workers.stop(healthy);
    }
}

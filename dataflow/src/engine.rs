//! The engine handle: runs the clustering graph on timely worker threads and lets a driver
//! (backfill, the stream service, re-clustering, tests) push killmail changes one step at a time
//! and get back the consolidated battle changes of that step.

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use timely::communication::WorkerGuards;
use uuid::Uuid;

use crate::graph::{self, Epoch};
use crate::killmail::Killmail;
use crate::report::BattleReport;
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
    /// first. A battle id with both is an update.
    pub changes: Vec<(BattleReport, isize)>,
    /// Battle ids that ended in this step.
    pub ended: Vec<Ended>,
}

impl StepOutput {
    /// The new reports of this step (created or updated battles).
    pub fn upserts(&self) -> impl Iterator<Item = &BattleReport> {
        self.changes.iter().filter(|(_, d)| *d > 0).map(|(r, _)| r)
    }

    /// Applies this step to a map of current battles by id (what a reader of every step's output
    /// holds).
    pub fn apply_to(&self, battles: &mut BTreeMap<Uuid, BattleReport>) {
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
    senders: Vec<Sender<Command>>,
    messages: Receiver<Message>,
    guards: Option<WorkerGuards<()>>,
    epoch: Epoch,
}

impl Engine {
    /// Starts `config.workers` worker threads running the graph.
    pub fn start(config: EngineConfig) -> Engine {
        let workers = config.workers.max(1);
        let config = Arc::new(config);
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers).map(|_| channel()).unzip();
        let receivers: Arc<Vec<Mutex<Option<Receiver<Command>>>>> =
            Arc::new(receivers.into_iter().map(|r| Mutex::new(Some(r))).collect());
        let (msg_tx, messages) = channel::<Message>();
        let msg_tx = Mutex::new(msg_tx);

        let mut timely_config = timely::Config::process(workers);
        differential_dataflow::configure(
            &mut timely_config.worker,
            &differential_dataflow::Config::default().idle_merge_effort(None),
        );
        let guards = timely::execute(timely_config, move |worker| {
            let index = worker.index();
            let commands = receivers[index]
                .lock()
                .expect("receiver lock")
                .take()
                .expect("one receiver per worker");
            let tx = msg_tx.lock().expect("sender lock").clone();
            let out_tx = tx.clone();
            let config = config.clone();
            let (mut input, probe) = worker.dataflow::<Epoch, _, _>(move |scope| {
                let (input, killmails) = scope.new_collection::<Arc<Killmail>, isize>();
                let (probe, _) = graph::battles(killmails, config)
                    .consolidate()
                    .inspect_batch(move |_, batch| {
                        let updates = batch.iter().map(|(r, _, d)| (r.clone(), *d)).collect();
                        let _ = out_tx.send(Message::Output(updates));
                    })
                    .probe();
                (input, probe)
            });
            while let Ok(Command::Step { epoch, updates }) = commands.recv() {
                for (km, diff) in updates {
                    input.update(km, diff);
                }
                input.advance_to(epoch + 1);
                input.flush();
                worker.step_while(|| probe.less_than(input.time()));
                if tx.send(Message::Done).is_err() {
                    break;
                }
            }
        })
        .expect("timely workers start");
        Engine {
            senders,
            messages,
            guards: Some(guards),
            epoch: 0,
        }
    }

    /// Applies insertions (+1) and retractions (-1) of killmails as one step and returns the
    /// battle changes it causes. A retraction must carry the same killmail that was inserted.
    pub fn step(&mut self, updates: Vec<(Killmail, isize)>) -> StepOutput {
        let workers = self.senders.len();
        let mut parts: Vec<Vec<(Arc<Killmail>, isize)>> =
            (0..workers).map(|_| Vec::new()).collect();
        for (km, diff) in updates {
            let w = (km.killmail_id.rem_euclid(workers as i64)) as usize;
            parts[w].push((Arc::new(km), diff));
        }
        let epoch = self.epoch;
        self.epoch += 1;
        for (sender, updates) in self.senders.iter().zip(parts) {
            sender
                .send(Command::Step { epoch, updates })
                .expect("engine worker alive");
        }
        let mut changes = Vec::new();
        let mut done = 0;
        while done < workers {
            match self.messages.recv().expect("engine worker alive") {
                Message::Output(mut updates) => changes.append(&mut updates),
                Message::Done => done += 1,
            }
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

/// Sums the diffs of equal reports, drops zeros, and works out which battles ended.
fn consolidate(changes: Vec<(Arc<BattleReport>, isize)>) -> StepOutput {
    let mut changes: Vec<(BattleReport, isize)> = changes
        .into_iter()
        .map(|(r, d)| (Arc::unwrap_or_clone(r), d))
        .collect();
    // Equal reports are adjacent once sorted by (id, report).
    changes.sort_by(|a, b| {
        a.0.battle_id
            .cmp(&b.0.battle_id)
            .then_with(|| a.0.cmp(&b.0))
    });
    let mut merged: Vec<(BattleReport, isize)> = Vec::with_capacity(changes.len());
    for (report, diff) in changes {
        match merged.last_mut() {
            Some(last) if last.0.battle_id == report.battle_id && last.0 == report => {
                last.1 += diff
            }
            _ => merged.push((report, diff)),
        }
    }
    merged.retain(|(_, d)| *d != 0);
    merged.sort_by_key(|a| (a.0.battle_id, a.1));
    let inserted: BTreeMap<Uuid, &BattleReport> = merged
        .iter()
        .filter(|(_, d)| *d > 0)
        .map(|(r, _)| (r.battle_id, r))
        .collect();
    let mut holder = BTreeMap::new();
    for r in inserted.values() {
        for k in &r.killmails {
            holder.insert(k.killmail_id, r.battle_id);
        }
    }
    let ended = merged
        .iter()
        .filter(|(r, d)| *d < 0 && !inserted.contains_key(&r.battle_id))
        .map(|(r, _)| Ended {
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
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.senders.clear();
        if let Some(guards) = self.guards.take() {
            drop(guards);
        }
    }
}

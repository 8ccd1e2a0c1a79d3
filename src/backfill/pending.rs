//! Battle changes a backfill holds back until the battle is final, so each battle is written
//! once, with its final report, instead of at every step it grows in.
//!
//! A backfill sweeps killmails in time order; a battle is final once the engine evicts it
//! (the sweep has passed its close window and nothing later can join it). Until then its
//! changes are folded into one net change against what the store holds (its *baseline*: the
//! stored report of a battle taken back from the store, none for a battle born in this run),
//! and the killmails that made it wait with it. When it is final, the net change and its
//! killmails go out together, in one transaction, so whatever commits is consistent: a
//! killmail is stored exactly when the battle holding it is, and a re-run after a crash takes
//! the unstored killmails again.
//!
//! Net changes: born and final → `Created`; stored and changed → `Updated` (old = the stored
//! report, so the sink's row diff is exact); stored and merged away → `Ended`, written with its
//! successor (resolved through battles that were born and merged away within the run, which
//! the store never sees).

use std::collections::HashMap;
use std::sync::Arc;

use battles_dataflow::{BattleChange, BattleReport, Engine, Killmail};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One battle's changes since the store last saw it.
#[derive(Debug)]
struct Net {
    /// What the store holds (none: born in this run, not written yet).
    baseline: Option<Arc<BattleReport>>,
    /// What the engine holds now (none: ended).
    current: Option<Arc<BattleReport>>,
    /// The battle that continued it, when it ended.
    continued_by: Option<Uuid>,
}

/// What is final now: battle changes and the killmails to store with them.
#[derive(Debug, Default)]
pub(crate) struct Final {
    pub battles: Vec<BattleChange>,
    pub killmails: Vec<Arc<Killmail>>,
}

impl Final {
    pub fn is_empty(&self) -> bool {
        self.battles.is_empty() && self.killmails.is_empty()
    }

    /// Splits off the battles that change stored rows (updated and ended ones), with the
    /// killmails they hold: the rest is created battles and their killmails, which the sink can
    /// `COPY`. Each part holds the killmails of its battles, so each commits consistently.
    pub fn split_stored(&mut self) -> Final {
        let stored =
            battles_sink::split::take_battles(&mut self.battles, &mut self.killmails, |c| {
                !matches!(c, BattleChange::Created(_))
            });
        Final {
            battles: stored.battles,
            killmails: stored.killmails,
        }
    }

    /// Splits created battles and their killmails into parts for writers in parallel
    /// ([`battles_sink::balance_created`]), each holding the killmails of its battles. Only for
    /// parts without ended battles: an alias needs its successor's row, which another part may
    /// hold.
    pub fn split_created(self, parts: usize) -> Vec<Final> {
        battles_sink::balance_created(self.battles, self.killmails, parts)
            .into_iter()
            .map(|g| Final {
                battles: g.battles,
                killmails: g.killmails,
            })
            .collect()
    }
}

/// Net battle changes and unstored killmails, held until final.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    battles: HashMap<Uuid, Net>,
    /// Killmails clustered but not stored yet.
    killmails: HashMap<i64, Arc<Killmail>>,
    /// Battles born and merged away before they were written: who continued them.
    vanished: HashMap<Uuid, Option<Uuid>>,
}

impl Pending {
    /// Records stored battles taken back into the engine (the `Created` changes of
    /// `Engine::rehydrate`): they are the baseline later changes are diffed against.
    pub fn observe_stored(&mut self, changes: &[BattleChange]) {
        for report in changes.iter().filter_map(BattleChange::new_report) {
            self.battles.entry(report.battle_id).or_insert_with(|| Net {
                baseline: Some(report.clone()),
                current: Some(report.clone()),
                continued_by: None,
            });
        }
    }

    /// Folds a step's changes in, and the killmails it inserted.
    pub fn observe(&mut self, changes: Vec<BattleChange>, killmails: Vec<Arc<Killmail>>) {
        for change in changes {
            let id = change.battle_id();
            match change {
                BattleChange::Created(report) => {
                    let net = self.battles.entry(id).or_insert(Net {
                        baseline: None,
                        current: None,
                        continued_by: None,
                    });
                    net.current = Some(report);
                    net.continued_by = None;
                    self.vanished.remove(&id);
                }
                BattleChange::Updated { old, new } => {
                    let net = self.battles.entry(id).or_insert(Net {
                        // Not held: the store holds what the engine reported last.
                        baseline: Some(old),
                        current: None,
                        continued_by: None,
                    });
                    net.current = Some(new);
                }
                BattleChange::Ended { old, continued_by } => {
                    let born_here = self.battles.get(&id).is_some_and(|n| n.baseline.is_none());
                    if born_here {
                        // Never written: nothing to end in the store, but an ended stored
                        // battle may point at it.
                        self.battles.remove(&id);
                        self.vanished.insert(id, continued_by);
                        continue;
                    }
                    let net = self.battles.entry(id).or_insert(Net {
                        baseline: Some(old),
                        current: None,
                        continued_by: None,
                    });
                    net.current = None;
                    net.continued_by = continued_by;
                }
            }
        }
        self.killmails
            .extend(killmails.into_iter().map(|k| (k.killmail_id, k)));
    }

    /// Takes what is final after `engine` evicted what it could at `horizon`: battles the
    /// engine no longer holds, ended battles whose successor is written, and killmails the
    /// engine no longer holds (or, in no battle, older than `lone_before`).
    pub fn take_final(&mut self, engine: &Engine, lone_before: DateTime<Utc>) -> Final {
        let resident = engine.resident();
        let live_final: Vec<Uuid> = self
            .battles
            .iter()
            .filter(|(_, net)| {
                // The engine evicts a battle whole: one killmail tells.
                net.current.as_ref().is_some_and(|r| {
                    r.killmails
                        .first()
                        .is_none_or(|k| !resident.contains(k.killmail_id))
                })
            })
            .map(|(id, _)| *id)
            .collect();
        let mut out = Final::default();
        for id in &live_final {
            if let Some(net) = self.battles.remove(id) {
                self.emit(net, &mut out);
            }
        }
        // Ended battles go with (or after) the battle that continues them.
        let ended: Vec<Uuid> = self
            .battles
            .iter()
            .filter(|(_, net)| net.current.is_none())
            .filter(|(_, net)| {
                self.successor(net.continued_by)
                    .is_none_or(|s| !self.battles.contains_key(&s))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &ended {
            if let Some(net) = self.battles.remove(id) {
                self.emit(net, &mut out);
            }
        }
        // Vanished battles matter only to ended battles still held.
        if !self.battles.values().any(|n| n.current.is_none()) {
            self.vanished.clear();
        }
        let lone_before = lone_before.timestamp();
        let gone: Vec<i64> = self
            .killmails
            .values()
            .filter(|k| {
                !resident.contains(k.killmail_id) || k.killmail_time.timestamp() < lone_before
            })
            .map(|k| k.killmail_id)
            .collect();
        out.killmails = gone
            .iter()
            .filter_map(|id| self.killmails.remove(id))
            .collect();
        out
    }

    /// Takes everything (the end of the input: nothing can change any more).
    pub fn take_all(&mut self) -> Final {
        let mut out = Final::default();
        let live: Vec<Uuid> = self
            .battles
            .iter()
            .filter(|(_, n)| n.current.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in live {
            if let Some(net) = self.battles.remove(&id) {
                self.emit(net, &mut out);
            }
        }
        let ended: Vec<Net> = self.battles.drain().map(|(_, n)| n).collect();
        for net in ended {
            self.emit(net, &mut out);
        }
        out.killmails = self.killmails.drain().map(|(_, k)| k).collect();
        self.vanished.clear();
        out
    }

    /// The battle `by` resolves to through battles that vanished unwritten.
    fn successor(&self, mut by: Option<Uuid>) -> Option<Uuid> {
        // Bounded: each vanished battle points at a later one; the guard only protects against
        // a cycle that the engine never produces.
        for _ in 0..=self.vanished.len() {
            match by {
                Some(id) => match self.vanished.get(&id) {
                    Some(next) => by = *next,
                    None => return Some(id),
                },
                None => return None,
            }
        }
        by
    }

    /// Appends `net`'s net change to `out`.
    fn emit(&mut self, net: Net, out: &mut Final) {
        match (net.baseline, net.current) {
            (None, Some(report)) => out.battles.push(BattleChange::Created(report)),
            (Some(old), Some(new)) => {
                if !Arc::ptr_eq(&old, &new) && *old != *new {
                    out.battles.push(BattleChange::Updated { old, new });
                }
            }
            (Some(old), None) => {
                let continued_by = self.successor(net.continued_by);
                out.battles.push(BattleChange::Ended { old, continued_by });
            }
            // Born and ended within the run: `observe` took it out already.
            (None, None) => {}
        }
    }
}

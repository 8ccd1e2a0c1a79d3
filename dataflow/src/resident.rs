//! What the engine holds in memory: every resident killmail and the battles they currently form.
//! The engine keeps this beside the graph so it can
//!
//! - retract a killmail by id (the graph needs the identical record back),
//! - ignore a second insertion of a resident killmail or a retraction of an absent one,
//! - evict closed battles: a battle whose last killmail is more than the link window older than
//!   the event-time horizon can never gain another killmail, so its killmails leave the graph
//!   and its report is not reported as ended ([`crate::Engine::evict_closed`]),
//! - take stored battles back in when a late killmail lands next to them
//!   ([`crate::Engine::rehydrate`]).
//!
//! Battles are connected components, so the resident set is always a union of whole battles:
//! evicting whole battles and rehydrating whole battles keeps every resident report equal to
//! the report of the same battle computed over the full history.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::changes::BattleChange;
use crate::killmail::{Killmail, KillmailId};

/// One resident battle: when its last killmail happened and which killmails it holds.
#[derive(Clone, Debug)]
struct ResidentBattle {
    ended_at: DateTime<Utc>,
    killmails: Vec<KillmailId>,
}

/// Resident killmails and battles.
#[derive(Debug, Default)]
pub struct Resident {
    killmails: HashMap<KillmailId, Arc<Killmail>>,
    battles: HashMap<Uuid, ResidentBattle>,
}

impl Resident {
    /// Number of resident killmails.
    pub fn killmails(&self) -> usize {
        self.killmails.len()
    }

    /// Number of resident battles.
    pub fn battles(&self) -> usize {
        self.battles.len()
    }

    pub fn contains(&self, id: KillmailId) -> bool {
        self.killmails.contains_key(&id)
    }

    /// Turns requested changes into the graph's input: an insertion of a resident id or a
    /// retraction of an absent one is dropped (and counted), a retraction carries the resident
    /// record. Returns the accepted updates and how many were dropped.
    pub(crate) fn admit(
        &mut self,
        updates: Vec<(Arc<Killmail>, isize)>,
    ) -> (Vec<(Arc<Killmail>, isize)>, usize) {
        let mut accepted = Vec::with_capacity(updates.len());
        let mut dropped = 0;
        for (km, diff) in updates {
            if diff > 0 {
                if self.killmails.contains_key(&km.killmail_id) {
                    dropped += 1;
                    continue;
                }
                self.killmails.insert(km.killmail_id, km.clone());
                accepted.push((km, 1));
            } else if diff < 0 {
                match self.killmails.remove(&km.killmail_id) {
                    Some(resident) => accepted.push((resident, -1)),
                    None => dropped += 1,
                }
            }
        }
        (accepted, dropped)
    }

    /// Follows the battles through one step's changes.
    pub(crate) fn observe(&mut self, changes: &[BattleChange]) {
        for change in changes {
            self.battles.remove(&change.battle_id());
        }
        for r in changes.iter().filter_map(BattleChange::new_report) {
            self.battles.insert(
                r.battle_id,
                ResidentBattle {
                    ended_at: r.ended_at,
                    killmails: r.killmails.iter().map(|k| k.killmail_id).collect(),
                },
            );
        }
    }

    /// The battles whose last killmail is more than `quiet_secs` before `horizon`, with their
    /// killmails.
    pub(crate) fn closed_before(
        &self,
        horizon: DateTime<Utc>,
        quiet_secs: i64,
    ) -> Vec<(Uuid, Vec<KillmailId>)> {
        let mut closed: Vec<(Uuid, Vec<KillmailId>)> = self
            .battles
            .iter()
            .filter(|(_, b)| (horizon - b.ended_at).num_seconds() > quiet_secs)
            .map(|(id, b)| (*id, b.killmails.clone()))
            .collect();
        closed.sort_by_key(|(id, _)| *id);
        closed
    }

    /// The battles holding any of `ids`, with all their killmails.
    pub(crate) fn battles_holding(
        &self,
        ids: &std::collections::HashSet<KillmailId>,
    ) -> Vec<(Uuid, Vec<KillmailId>)> {
        let mut held: Vec<(Uuid, Vec<KillmailId>)> = self
            .battles
            .iter()
            .filter(|(_, b)| b.killmails.iter().any(|k| ids.contains(k)))
            .map(|(id, b)| (*id, b.killmails.clone()))
            .collect();
        held.sort_by_key(|(id, _)| *id);
        held
    }

    /// Takes every resident killmail out (the battles stay until [`Resident::take_battles`]).
    pub(crate) fn take_all(&mut self) -> Vec<Arc<Killmail>> {
        self.killmails.drain().map(|(_, km)| km).collect()
    }

    /// Takes every battle out, returning the killmails of each but the `leaving` ones.
    pub(crate) fn take_battles(
        &mut self,
        leaving: impl IntoIterator<Item = Uuid>,
    ) -> HashMap<Uuid, Vec<KillmailId>> {
        let mut battles = std::mem::take(&mut self.battles);
        for id in leaving {
            battles.remove(&id);
        }
        battles
            .into_iter()
            .map(|(id, b)| (id, b.killmails))
            .collect()
    }

    /// Removes `id` from the resident killmails, returning its record.
    pub(crate) fn take(&mut self, id: KillmailId) -> Option<Arc<Killmail>> {
        self.killmails.remove(&id)
    }
}

/// Whether `change` brings back a battle of `before` (from [`Resident::take_battles`])
/// with the same killmails: what a new instance of the graph gives every staying battle.
pub(crate) fn holds_as_before(
    before: &HashMap<Uuid, Vec<KillmailId>>,
    change: &BattleChange,
) -> bool {
    match change {
        BattleChange::Created(r) => before.get(&r.battle_id).is_some_and(|ids| {
            ids.len() == r.killmails.len()
                && ids
                    .iter()
                    .zip(&r.killmails)
                    .all(|(a, b)| *a == b.killmail_id)
        }),
        _ => false,
    }
}

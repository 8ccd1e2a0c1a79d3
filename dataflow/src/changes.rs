//! What happened to each battle in one engine step, typed: [`BattleChange::Created`],
//! [`BattleChange::Updated`] and [`BattleChange::Ended`] with the battle that continues it.
//!
//! This module is the one owner of the continuation rule ([`continuing_battle`]): the sink's
//! aliases, the `battle.deleted` events and the API's redirects all read `continued_by` from
//! here and decide nothing of their own.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::killmail::KillmailId;
use crate::report::BattleReport;

/// One battle's change in a step.
#[derive(Clone, Debug, PartialEq)]
pub enum BattleChange {
    /// A battle that did not exist before the step.
    Created(Arc<BattleReport>),
    /// A battle that existed and now reads differently.
    Updated {
        old: Arc<BattleReport>,
        new: Arc<BattleReport>,
    },
    /// A battle that no longer exists: it merged into `continued_by`, or all of its killmails
    /// were retracted (`None`).
    Ended {
        old: Arc<BattleReport>,
        continued_by: Option<Uuid>,
    },
}

impl BattleChange {
    /// The id of the battle that changed.
    pub fn battle_id(&self) -> Uuid {
        match self {
            BattleChange::Created(r) => r.battle_id,
            BattleChange::Updated { new, .. } => new.battle_id,
            BattleChange::Ended { old, .. } => old.battle_id,
        }
    }

    /// The report after the step (none for an ended battle).
    pub fn new_report(&self) -> Option<&Arc<BattleReport>> {
        match self {
            BattleChange::Created(r) | BattleChange::Updated { new: r, .. } => Some(r),
            BattleChange::Ended { .. } => None,
        }
    }

    /// The report before the step (none for a created battle).
    pub fn old_report(&self) -> Option<&Arc<BattleReport>> {
        match self {
            BattleChange::Created(_) => None,
            BattleChange::Updated { old, .. } | BattleChange::Ended { old, .. } => Some(old),
        }
    }
}

/// Why a set of report diffs is not a consolidated set of whole-report changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("battle {battle_id}: {reason}")]
pub struct InconsistentChanges {
    pub battle_id: Uuid,
    pub reason: String,
}

/// Turns consolidated report diffs (at most one `-1` and one `+1` report per battle id) into
/// typed changes sorted by battle id, each ended battle with its continuation.
pub fn classify(
    diffs: Vec<(Arc<BattleReport>, isize)>,
) -> Result<Vec<BattleChange>, InconsistentChanges> {
    type Slot = (Option<Arc<BattleReport>>, Option<Arc<BattleReport>>);
    let mut by_id: BTreeMap<Uuid, Slot> = BTreeMap::new();
    for (report, diff) in diffs {
        let battle_id = report.battle_id;
        let slot = by_id.entry(battle_id).or_default();
        let side = match diff {
            -1 => &mut slot.0,
            1 => &mut slot.1,
            0 => continue,
            d => {
                return Err(InconsistentChanges {
                    battle_id,
                    reason: format!("diff {d}; reports change by +1 or -1"),
                })
            }
        };
        if side.replace(report).is_some() {
            return Err(InconsistentChanges {
                battle_id,
                reason: format!("two reports with diff {diff}"),
            });
        }
    }
    let mut holder: HashMap<KillmailId, Uuid> = HashMap::new();
    let any_ended = by_id
        .values()
        .any(|(old, new)| old.is_some() && new.is_none());
    if any_ended {
        for (id, (_, new)) in &by_id {
            for k in new.iter().flat_map(|r| &r.killmails) {
                holder.insert(k.killmail_id, *id);
            }
        }
    }
    let mut out = Vec::with_capacity(by_id.len());
    for (_, slot) in by_id {
        out.push(match slot {
            (None, Some(new)) => BattleChange::Created(new),
            (Some(old), Some(new)) => BattleChange::Updated { old, new },
            (Some(old), None) => {
                let continued_by = continuing_battle(&old, &holder);
                BattleChange::Ended { old, continued_by }
            }
            (None, None) => continue,
        });
    }
    Ok(out)
}

/// The battle that continues `ended`, given which battle now holds each killmail: the battle
/// holding its first killmail; else the one holding most of its killmails (ties to the
/// smallest id); else none (all of its killmails were retracted).
pub fn continuing_battle(ended: &BattleReport, holder: &HashMap<KillmailId, Uuid>) -> Option<Uuid> {
    if let Some(id) = holder.get(&ended.first_killmail_id) {
        if *id != ended.battle_id {
            return Some(*id);
        }
    }
    let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    for k in &ended.killmails {
        if let Some(id) = holder.get(&k.killmail_id) {
            if *id != ended.battle_id {
                *counts.entry(*id).or_default() += 1;
            }
        }
    }
    // max_by_key returns the last maximum; iterate in reverse id order so ties go to the
    // smallest id.
    counts
        .into_iter()
        .rev()
        .max_by_key(|(_, n)| *n)
        .map(|(id, _)| id)
}

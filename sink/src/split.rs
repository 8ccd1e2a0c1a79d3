//! Cutting a step into transactions that commit on connections of their own, so PostgreSQL
//! writes it on more than one core.
//!
//! What may commit apart is whole battles with all of their killmails: whatever has
//! committed, the store holds a battle exactly when it holds the killmails in it, so a crash
//! between the transactions leaves the store consistent, and a restart takes again only what
//! did not commit (stored killmails are skipped as duplicates, and their battles are read back
//! when new killmails come near them; the result depends only on the set of killmails). The
//! source positions commit last. The backfill's final battles and the live service's steps are
//! both cut here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use battles_dataflow::killmail::Killmail;
use battles_dataflow::BattleChange;
use uuid::Uuid;

use crate::changes::StepChanges;

/// Killmails a part holds at least: a smaller one costs another transaction for less than it
/// saves.
pub const MIN_PART_KILLMAILS: usize = 2_000;

/// Battles and the killmails to store with them.
#[derive(Debug, Default)]
pub struct Group {
    pub battles: Vec<BattleChange>,
    pub killmails: Vec<Arc<Killmail>>,
}

/// Splits created battles and their killmails into at most `parts` groups of about equal
/// killmails, each holding the killmails of its battles, and none smaller than
/// [`MIN_PART_KILLMAILS`] unless there is one. Largest battle first, each to the smallest
/// group so far: groups come out within one battle of each other. Killmails in none of the
/// battles go round the groups.
pub fn balance_created(
    battles: Vec<BattleChange>,
    killmails: Vec<Arc<Killmail>>,
    parts: usize,
) -> Vec<Group> {
    debug_assert!(battles
        .iter()
        .all(|c| matches!(c, BattleChange::Created(_))));
    let parts = parts
        .min(killmails.len() / MIN_PART_KILLMAILS)
        .clamp(1, battles.len().max(1));
    if parts == 1 {
        return vec![Group { battles, killmails }];
    }
    let mut out: Vec<Group> = (0..parts).map(|_| Group::default()).collect();
    let mut sizes = vec![0usize; parts];
    let mut part_of: HashMap<i64, usize> = HashMap::with_capacity(killmails.len());
    let mut battles = battles;
    battles.sort_by_key(|c| std::cmp::Reverse(c.new_report().map_or(0, |r| r.killmails.len())));
    for change in battles {
        let (part, _) = sizes
            .iter()
            .enumerate()
            .min_by_key(|(_, size)| **size)
            .expect("at least one part");
        if let Some(report) = change.new_report() {
            sizes[part] += report.killmails.len();
            for k in &report.killmails {
                part_of.insert(k.killmail_id, part);
            }
        }
        out[part].battles.push(change);
    }
    for (i, killmail) in killmails.into_iter().enumerate() {
        let part = part_of
            .get(&killmail.killmail_id)
            .copied()
            .unwrap_or(i % parts);
        out[part].killmails.push(killmail);
    }
    out
}

/// Takes the battles that `take` picks out of `battles`, with the killmails they hold out of
/// `killmails`: each side then holds the killmails of its battles, and commits consistently.
pub fn take_battles(
    battles: &mut Vec<BattleChange>,
    killmails: &mut Vec<Arc<Killmail>>,
    take: impl Fn(&BattleChange) -> bool,
) -> Group {
    let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(battles).into_iter().partition(take);
    *battles = kept;
    let held: HashSet<i64> = taken
        .iter()
        .filter_map(BattleChange::new_report)
        .flat_map(|r| r.killmails.iter().map(|k| k.killmail_id))
        .collect();
    let (theirs, ours): (Vec<_>, Vec<_>) = std::mem::take(killmails)
        .into_iter()
        .partition(|k| held.contains(&k.killmail_id));
    *killmails = ours;
    Group {
        battles: taken,
        killmails: theirs,
    }
}

/// A step cut for connections of its own ([`StepChanges::split`]).
#[derive(Debug)]
pub enum SplitStep {
    /// Not worth cutting: one transaction.
    Whole(StepChanges),
    /// Written in three phases:
    /// 1. `rest`, once every earlier step has committed: the battles that change stored rows
    ///    (or are created from them), their killmails, and the closing of stored battles by the
    ///    watermark;
    /// 2. `parts` beside it, in any order: battles that stand alone, with their killmails;
    /// 3. `positions` once all of the step has committed: the source positions and the
    ///    rejected records.
    ///
    /// Each of them holds whole battles with all of their killmails, so whatever has committed
    /// when a process dies is consistent, and the positions say that all of it did.
    Split {
        rest: StepChanges,
        parts: Vec<StepChanges>,
        /// Boxed: the variants differ in size by a whole `StepChanges`.
        positions: Box<StepChanges>,
    },
}

impl StepChanges {
    /// Cuts this step for `writers` connections ([`SplitStep`]). A battle stands alone when it
    /// is created from killmails this step inserts and no ending battle continues into it: no
    /// stored battle holds its killmails, and nothing else in the step touches its rows. (A
    /// stored alias may still name its id, when a killmail was retracted and delivered again;
    /// the part then clears the alias and, at worst, waits for the rest's lock on that row.) The parts leave stored battles alone (the rest closes them), so concurrent
    /// transactions never update the same rows.
    ///
    /// Whole when the step does not promise new rows, is a job's slice, retracts killmails, or
    /// its lone battles are too few to fill two parts.
    pub fn split(mut self, writers: usize) -> SplitStep {
        if writers < 2
            // Too few killmails for two parts, whatever battles they are in.
            || self.killmails_inserted.len() < 2 * MIN_PART_KILLMAILS
            || !self.rows_are_new
            || self.job.is_some()
            || !self.killmails_retracted.is_empty()
        {
            return SplitStep::Whole(self);
        }
        let inserted: HashSet<i64> = self
            .killmails_inserted
            .iter()
            .map(|k| k.killmail_id)
            .collect();
        let continued: HashSet<Uuid> = self
            .battles
            .iter()
            .filter_map(|c| match c {
                BattleChange::Ended { continued_by, .. } => *continued_by,
                _ => None,
            })
            .collect();
        let stands_alone = |c: &BattleChange| match c {
            BattleChange::Created(r) => {
                !continued.contains(&r.battle_id)
                    && r.killmails
                        .iter()
                        .all(|k| inserted.contains(&k.killmail_id))
            }
            _ => false,
        };
        let alone_killmails: usize = self
            .battles
            .iter()
            .filter(|c| stands_alone(c))
            .filter_map(|c| c.new_report().map(|r| r.killmails.len()))
            .sum();
        if alone_killmails < 2 * MIN_PART_KILLMAILS {
            return SplitStep::Whole(self);
        }
        let alone = take_battles(
            &mut self.battles,
            &mut self.killmails_inserted,
            stands_alone,
        );
        let apart = |battles, killmails| StepChanges {
            battles,
            killmails_inserted: killmails,
            status: self.status.without_closing(),
            suppress_events: self.suppress_events,
            rows_are_new: true,
            ..StepChanges::default()
        };
        let parts = balance_created(alone.battles, alone.killmails, writers)
            .into_iter()
            .map(|g| apart(g.battles, g.killmails))
            .collect();
        let positions = Box::new(StepChanges {
            offsets: std::mem::take(&mut self.offsets),
            rejections: std::mem::take(&mut self.rejections),
            ..apart(Vec::new(), Vec::new())
        });
        SplitStep::Split {
            rest: self,
            parts,
            positions,
        }
    }
}

//! Ground truth of generated killmails: for every killmail the true battle it belongs to and
//! the true side of every pilot on it, and the whole-run [`Truth`] assembled from those.
//!
//! `truth.jsonl` holds one [`KillmailTruth`] a line, in the same (arrival) order as
//! `killmails.jsonl`:
//! `{"killmailId":125000003,"battle":17,"battleKind":"fight","kind":"ship","sides":{"93512311":"a","95012345":"b"}}`.
//! `battle` is a stable integer per true battle; a background kill (gank, solo kill, rat kill)
//! is a battle of its own together with the pod that may follow it. `sides` maps character ids to
//! `a`, `b` or `third` (a third party that shoots both sides); within one battle a character
//! always has the same side.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use battles_dataflow::KillmailId;
use serde::{Deserialize, Serialize};

/// A stable id of a true battle within one generated run.
pub type TrueBattleId = u64;

/// A pilot's true side in a battle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    A,
    B,
    /// A third party shooting at both sides: no right answer for a two-team split.
    Third,
}

/// What produced a true battle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BattleKind {
    /// Two fleets (and maybe a third party) fighting.
    Fight,
    /// A gank, solo or small-gang kill, or a rat kill, with its pod if any.
    Background,
    /// One pilot killing dozens of deployables.
    Spam,
}

/// What a single killmail is within its battle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KillKind {
    /// A ship killed by players.
    Ship,
    /// The capsule of a pilot just killed.
    Pod,
    /// Friendly fire: killed by its own alliance.
    Awox,
    /// Killed by NPCs only (rats, sentry guns).
    Npc,
    /// An Upwell structure.
    Structure,
    /// A deployable (mobile depot, bubble, tractor unit).
    Deployable,
    /// A high-sec suicide gank.
    Gank,
}

/// The truth about one killmail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KillmailTruth {
    pub killmail_id: KillmailId,
    pub battle: TrueBattleId,
    pub battle_kind: BattleKind,
    pub kind: KillKind,
    /// Character id -> true side, for the victim and every player attacker.
    pub sides: BTreeMap<i64, Side>,
}

/// One true battle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrueBattle {
    /// In the order they were added (arrival order when read from a file).
    pub killmails: Vec<KillmailId>,
    pub kind: Option<BattleKind>,
    /// Character id -> side.
    pub sides: BTreeMap<i64, Side>,
}

/// A character given two sides in one battle: the truth is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    #[error("character {character} is on two sides in true battle {battle}")]
    ConflictingSide {
        battle: TrueBattleId,
        character: i64,
    },
    #[error("killmail {0} appears twice in the truth")]
    DuplicateKillmail(KillmailId),
    #[error("truth line {line}: {source}")]
    Parse {
        line: usize,
        source: serde_json::Error,
    },
    #[error("reading truth: {0}")]
    Io(#[from] std::io::Error),
}

/// The truth of a whole run.
#[derive(Clone, Debug, Default)]
pub struct Truth {
    pub battles: BTreeMap<TrueBattleId, TrueBattle>,
    pub battle_of: HashMap<KillmailId, TrueBattleId>,
}

impl Truth {
    /// Adds one killmail's truth.
    pub fn add(&mut self, k: &KillmailTruth) -> Result<(), TruthError> {
        if self.battle_of.insert(k.killmail_id, k.battle).is_some() {
            return Err(TruthError::DuplicateKillmail(k.killmail_id));
        }
        let b = self.battles.entry(k.battle).or_default();
        b.killmails.push(k.killmail_id);
        b.kind = Some(k.battle_kind);
        for (&character, &side) in &k.sides {
            match b.sides.insert(character, side) {
                Some(old) if old != side => {
                    return Err(TruthError::ConflictingSide {
                        battle: k.battle,
                        character,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads `truth.jsonl` (see the module documentation).
    pub fn read_jsonl(reader: impl BufRead) -> Result<Truth, TruthError> {
        let mut truth = Truth::default();
        for (n, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let k: KillmailTruth =
                serde_json::from_str(&line).map_err(|source| TruthError::Parse {
                    line: n + 1,
                    source,
                })?;
            truth.add(&k)?;
        }
        Ok(truth)
    }

    /// Number of killmails.
    pub fn killmail_count(&self) -> usize {
        self.battle_of.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kt(id: i64, battle: u64, sides: &[(i64, Side)]) -> KillmailTruth {
        KillmailTruth {
            killmail_id: id,
            battle,
            battle_kind: BattleKind::Fight,
            kind: KillKind::Ship,
            sides: sides.iter().copied().collect(),
        }
    }

    #[test]
    fn lines_round_trip_and_assemble() {
        let lines = [
            kt(1, 7, &[(100, Side::A), (200, Side::B)]),
            kt(2, 7, &[(100, Side::A), (300, Side::Third)]),
            kt(3, 8, &[(100, Side::B)]),
        ];
        let text: String = lines
            .iter()
            .map(|l| serde_json::to_string(l).unwrap() + "\n")
            .collect();
        assert!(text.contains(r#""sides":{"100":"a","200":"b"}"#), "{text}");
        let truth = Truth::read_jsonl(text.as_bytes()).unwrap();
        assert_eq!(truth.killmail_count(), 3);
        assert_eq!(truth.battles[&7].killmails, vec![1, 2]);
        assert_eq!(truth.battles[&7].sides.len(), 3);
        assert_eq!(truth.battles[&8].sides[&100], Side::B);
    }

    #[test]
    fn inconsistent_truth_is_refused() {
        let mut t = Truth::default();
        t.add(&kt(1, 7, &[(100, Side::A)])).unwrap();
        assert!(matches!(
            t.add(&kt(2, 7, &[(100, Side::B)])),
            Err(TruthError::ConflictingSide { .. })
        ));
        assert!(matches!(
            t.add(&kt(1, 9, &[])),
            Err(TruthError::DuplicateKillmail(1))
        ));
        assert!(matches!(
            Truth::read_jsonl("{bad".as_bytes()),
            Err(TruthError::Parse { line: 1, .. })
        ));
    }
}

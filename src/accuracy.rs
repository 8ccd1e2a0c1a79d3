//! How well a clustering matches the generator's ground truth: B-cubed precision, recall and F1
//! over killmails, the share of big true battles (10+ killmails) recovered by one predicted
//! battle at Jaccard >= 0.9, predicted battles that hold two big true battles (chaining),
//! background kills swallowed by a fight, and pilot side accuracy under the best team-label
//! permutation of each battle. [`Targets`] are the thresholds the engine must meet.

use std::collections::HashMap;
use std::fmt;

use battles_dataflow::{BattleReport, KillmailId, Team};

use crate::generate::truth::{BattleKind, Side, TrueBattleId, Truth};
use crate::generate::Density;

/// Killmails in a true battle for it to count as big.
pub const BIG_BATTLE: usize = 10;
/// Jaccard similarity at which a big battle counts as recovered.
pub const RECOVERED_JACCARD: f64 = 0.9;

/// A predicted clustering. Killmails missing from `battle_of` are battles of their own.
#[derive(Clone, Debug, Default)]
pub struct Prediction {
    /// Killmail id -> predicted battle key (any stable number).
    pub battle_of: HashMap<KillmailId, u64>,
    /// (predicted battle key, character id) -> team.
    pub sides: HashMap<(u64, i64), Team>,
}

impl Prediction {
    /// The prediction made by a set of engine reports; a battle's key is its first killmail id.
    pub fn from_reports<'a>(reports: impl IntoIterator<Item = &'a BattleReport>) -> Prediction {
        let mut p = Prediction::default();
        for r in reports {
            let key = r.first_killmail_id as u64;
            for k in &r.killmails {
                p.battle_of.insert(k.killmail_id, key);
            }
            for part in &r.participants {
                p.sides.insert((key, part.character_id), part.team);
            }
        }
        p
    }
}

/// The scores of one prediction against the truth.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accuracy {
    /// Killmails in the truth.
    pub killmails: usize,
    /// Predicted killmail ids that the truth does not know (not scored).
    pub unknown_killmails: usize,
    pub true_battles: usize,
    /// Predicted battles over the truth's killmails, singletons included.
    pub predicted_battles: usize,
    pub bcubed_precision: f64,
    pub bcubed_recall: f64,
    pub bcubed_f1: f64,
    /// True battles with at least [`BIG_BATTLE`] killmails.
    pub big_battles: usize,
    /// Of those, recovered by one predicted battle at Jaccard >= [`RECOVERED_JACCARD`].
    pub big_battles_recovered: usize,
    /// Predicted battles holding at least half of each of two or more big true battles.
    pub merged_big_battles: usize,
    /// Killmails of background battles (not fights, not spam runs).
    pub background_killmails: usize,
    /// Of those, in a predicted battle that also holds killmails of a true fight.
    pub background_in_fights: usize,
    /// Pilots (sides a/b, battles of 2+ killmails) present in their predicted battle.
    pub pilots_counted: usize,
    pub pilots_correct: usize,
    /// Pilots absent from the predicted battle (not counted in the accuracy).
    pub pilots_missing: usize,
    /// Third-party pilots (no right two-team answer; not counted).
    pub pilots_third_party: usize,
}

impl Accuracy {
    /// Share of big battles recovered (1.0 when there are none).
    pub fn big_battle_recovery(&self) -> f64 {
        ratio(self.big_battles_recovered, self.big_battles)
    }

    /// Share of background killmails swallowed by a fight (0.0 when there are none).
    pub fn background_swallowed(&self) -> f64 {
        1.0 - ratio(
            self.background_killmails - self.background_in_fights,
            self.background_killmails,
        )
    }

    /// Share of counted pilots on the right side (1.0 when none were counted).
    pub fn side_accuracy(&self) -> f64 {
        ratio(self.pilots_correct, self.pilots_counted)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// A predicted battle, or a killmail the prediction left alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Battle(u64),
    Alone(KillmailId),
}

/// Scores `prediction` against `truth`.
pub fn evaluate(truth: &Truth, prediction: &Prediction) -> Accuracy {
    let key_of = |k: KillmailId| match prediction.battle_of.get(&k) {
        Some(&b) => Key::Battle(b),
        None => Key::Alone(k),
    };
    // Sizes of predicted battles and of their overlaps with true battles.
    let mut predicted_size: HashMap<Key, usize> = HashMap::new();
    let mut overlap: HashMap<(Key, TrueBattleId), usize> = HashMap::new();
    for (&k, &t) in &truth.battle_of {
        let p = key_of(k);
        *predicted_size.entry(p).or_default() += 1;
        *overlap.entry((p, t)).or_default() += 1;
    }

    let mut acc = Accuracy {
        killmails: truth.battle_of.len(),
        unknown_killmails: prediction
            .battle_of
            .keys()
            .filter(|k| !truth.battle_of.contains_key(k))
            .count(),
        true_battles: truth.battles.len(),
        predicted_battles: predicted_size.len(),
        ..Accuracy::default()
    };
    count_merges_and_bystanders(truth, &key_of, &overlap, &mut acc);
    let (mut precision, mut recall) = (0.0, 0.0);
    for (&k, &t) in &truth.battle_of {
        let p = key_of(k);
        let both = overlap[&(p, t)] as f64;
        precision += both / predicted_size[&p] as f64;
        recall += both / truth.battles[&t].killmails.len() as f64;
    }
    if acc.killmails > 0 {
        acc.bcubed_precision = precision / acc.killmails as f64;
        acc.bcubed_recall = recall / acc.killmails as f64;
        let (p, r) = (acc.bcubed_precision, acc.bcubed_recall);
        acc.bcubed_f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
    }

    for (&t, battle) in &truth.battles {
        let size = battle.killmails.len();
        if size < 2 {
            continue;
        }
        // The predicted battle holding most of this battle's killmails (ties: the smallest key).
        let mut holders: HashMap<Key, usize> = HashMap::new();
        for &k in &battle.killmails {
            *holders.entry(key_of(k)).or_default() += 1;
        }
        let (best, held) = holders
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .expect("the battle has killmails");
        debug_assert_eq!(overlap[&(best, t)], held);
        if size >= BIG_BATTLE {
            acc.big_battles += 1;
            let jaccard = held as f64 / (size + predicted_size[&best] - held) as f64;
            if jaccard >= RECOVERED_JACCARD {
                acc.big_battles_recovered += 1;
            }
        }
        let (mut same, mut flipped, mut counted) = (0, 0, 0);
        for (&character, &side) in &battle.sides {
            let want = match side {
                Side::A => Team::A,
                Side::B => Team::B,
                Side::Third => {
                    acc.pilots_third_party += 1;
                    continue;
                }
            };
            let got = match best {
                Key::Battle(b) => prediction.sides.get(&(b, character)),
                Key::Alone(_) => None,
            };
            match got {
                None => acc.pilots_missing += 1,
                Some(&team) => {
                    counted += 1;
                    if team == want {
                        same += 1;
                    } else {
                        flipped += 1;
                    }
                }
            }
        }
        acc.pilots_counted += counted;
        acc.pilots_correct += same.max(flipped);
    }
    acc
}

/// Fills in [`Accuracy::merged_big_battles`] and the background counts.
fn count_merges_and_bystanders(
    truth: &Truth,
    key_of: &impl Fn(KillmailId) -> Key,
    overlap: &HashMap<(Key, TrueBattleId), usize>,
    acc: &mut Accuracy,
) {
    let mut big_held: HashMap<Key, usize> = HashMap::new();
    let mut holds_fight: HashMap<Key, bool> = HashMap::new();
    for (&(p, t), &n) in overlap {
        let battle = &truth.battles[&t];
        let size = battle.killmails.len();
        if size >= BIG_BATTLE && 2 * n >= size {
            *big_held.entry(p).or_default() += 1;
        }
        if battle.kind == Some(BattleKind::Fight) {
            holds_fight.insert(p, true);
        }
    }
    acc.merged_big_battles = big_held.values().filter(|&&n| n >= 2).count();
    for (&k, t) in &truth.battle_of {
        if truth.battles[t].kind == Some(BattleKind::Background) {
            acc.background_killmails += 1;
            if holds_fight.get(&key_of(k)).copied().unwrap_or(false) {
                acc.background_in_fights += 1;
            }
        }
    }
}

/// The accuracy a clustering must reach on a generated run of one density.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Targets {
    pub min_bcubed_f1: f64,
    pub min_big_battle_recovery: f64,
    /// At most this many predicted battles may hold two big true battles.
    pub max_merged_big_battles: usize,
    pub min_side_accuracy: f64,
}

impl Targets {
    /// The targets of issue 10: F1 >= 0.99 sparse and >= 0.98 at real density, big battles
    /// recovered >= 0.97 and >= 0.93, at most a handful (5) of merged big battles, sides >=
    /// 0.995.
    pub fn for_density(density: Density) -> Targets {
        let (min_bcubed_f1, min_big_battle_recovery) = match density {
            Density::Sparse => (0.99, 0.97),
            Density::Real => (0.98, 0.93),
        };
        Targets {
            min_bcubed_f1,
            min_big_battle_recovery,
            max_merged_big_battles: 5,
            min_side_accuracy: 0.995,
        }
    }

    /// The targets `accuracy` misses, each as a sentence; empty when all are met.
    pub fn misses(&self, accuracy: &Accuracy) -> Vec<String> {
        let mut out = Vec::new();
        if accuracy.bcubed_f1 < self.min_bcubed_f1 {
            out.push(format!(
                "B-cubed F1 {:.4} < {}",
                accuracy.bcubed_f1, self.min_bcubed_f1
            ));
        }
        if accuracy.big_battle_recovery() < self.min_big_battle_recovery {
            out.push(format!(
                "big-battle recovery {:.4} < {}",
                accuracy.big_battle_recovery(),
                self.min_big_battle_recovery
            ));
        }
        if accuracy.merged_big_battles > self.max_merged_big_battles {
            out.push(format!(
                "{} battles hold two big true battles (at most {})",
                accuracy.merged_big_battles, self.max_merged_big_battles
            ));
        }
        if accuracy.side_accuracy() < self.min_side_accuracy {
            out.push(format!(
                "side accuracy {:.4} < {}",
                accuracy.side_accuracy(),
                self.min_side_accuracy
            ));
        }
        out
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "F1 >= {}, recovery >= {}, merged big battles <= {}, sides >= {}",
            self.min_bcubed_f1,
            self.min_big_battle_recovery,
            self.max_merged_big_battles,
            self.min_side_accuracy
        )
    }
}

impl fmt::Display for Accuracy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<34} {:>10}", "killmails", self.killmails)?;
        writeln!(f, "{:<34} {:>10}", "true battles", self.true_battles)?;
        writeln!(
            f,
            "{:<34} {:>10}",
            "predicted battles", self.predicted_battles
        )?;
        if self.unknown_killmails > 0 {
            writeln!(
                f,
                "{:<34} {:>10}",
                "predicted killmails not in truth", self.unknown_killmails
            )?;
        }
        writeln!(
            f,
            "{:<34} {:>10.4}",
            "B-cubed precision", self.bcubed_precision
        )?;
        writeln!(f, "{:<34} {:>10.4}", "B-cubed recall", self.bcubed_recall)?;
        writeln!(f, "{:<34} {:>10.4}", "B-cubed F1", self.bcubed_f1)?;
        writeln!(
            f,
            "{:<34} {:>10.4}  ({} of {})",
            format!("battles {BIG_BATTLE}+ recovered (J>={RECOVERED_JACCARD})"),
            self.big_battle_recovery(),
            self.big_battles_recovered,
            self.big_battles
        )?;
        writeln!(
            f,
            "{:<34} {:>10}",
            format!("battles holding two {BIG_BATTLE}+"),
            self.merged_big_battles
        )?;
        writeln!(
            f,
            "{:<34} {:>10.4}  ({} of {})",
            "background kills inside fights",
            self.background_swallowed(),
            self.background_in_fights,
            self.background_killmails
        )?;
        writeln!(
            f,
            "{:<34} {:>10.4}  ({} of {})",
            "pilot side accuracy",
            self.side_accuracy(),
            self.pilots_correct,
            self.pilots_counted
        )?;
        writeln!(f, "{:<34} {:>10}", "pilots missing", self.pilots_missing)?;
        write!(
            f,
            "{:<34} {:>10}",
            "third-party pilots (not scored)", self.pilots_third_party
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::truth::{BattleKind, KillKind, KillmailTruth};

    /// Truth from (killmail, battle, [(character, side)]).
    type Row<'a> = (i64, u64, &'a [(i64, Side)]);

    fn truth(rows: &[Row]) -> Truth {
        let mut t = Truth::default();
        for &(k, b, sides) in rows {
            t.add(&KillmailTruth {
                killmail_id: k,
                battle: b,
                battle_kind: BattleKind::Fight,
                kind: KillKind::Ship,
                sides: sides.iter().copied().collect(),
            })
            .unwrap();
        }
        t
    }

    fn prediction(battles: &[(i64, u64)], sides: &[(u64, i64, Team)]) -> Prediction {
        Prediction {
            battle_of: battles.iter().copied().collect(),
            sides: sides.iter().map(|&(b, c, t)| ((b, c), t)).collect(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    const AB: &[(i64, Side)] = &[(100, Side::A), (200, Side::B)];

    #[test]
    fn perfect_prediction_scores_one() {
        let t = truth(&[(1, 1, AB), (2, 1, AB), (3, 1, &[]), (4, 2, &[])]);
        let p = prediction(
            &[(1, 9), (2, 9), (3, 9)],
            &[(9, 100, Team::A), (9, 200, Team::B)],
        );
        let a = evaluate(&t, &p);
        assert_eq!(
            (a.killmails, a.true_battles, a.predicted_battles),
            (4, 2, 2)
        );
        assert!(close(a.bcubed_precision, 1.0) && close(a.bcubed_recall, 1.0));
        assert!(close(a.bcubed_f1, 1.0));
        assert_eq!(
            (a.pilots_counted, a.pilots_correct, a.pilots_missing),
            (2, 2, 0)
        );
        assert!(close(a.side_accuracy(), 1.0));
        assert!(a.to_string().contains("B-cubed F1"));
    }

    #[test]
    fn a_split_battle_keeps_precision_and_halves_recall() {
        let t = truth(&[(1, 1, &[]), (2, 1, &[]), (3, 1, &[]), (4, 1, &[])]);
        let p = prediction(&[(1, 8), (2, 8), (3, 9), (4, 9)], &[]);
        let a = evaluate(&t, &p);
        assert!(close(a.bcubed_precision, 1.0));
        assert!(close(a.bcubed_recall, 0.5));
        assert!(close(a.bcubed_f1, 2.0 / 3.0));
        assert_eq!(a.predicted_battles, 2);
    }

    #[test]
    fn a_merged_battle_keeps_recall_and_halves_precision() {
        let t = truth(&[(1, 1, &[]), (2, 1, &[]), (3, 2, &[]), (4, 2, &[])]);
        let p = prediction(&[(1, 8), (2, 8), (3, 8), (4, 8)], &[]);
        let a = evaluate(&t, &p);
        assert!(close(a.bcubed_precision, 0.5));
        assert!(close(a.bcubed_recall, 1.0));
        assert!(close(a.bcubed_f1, 2.0 / 3.0));
    }

    #[test]
    fn unpredicted_killmails_are_singletons() {
        // Truth: one battle of 3. Prediction: 1 and 2 together, 3 left alone.
        // Precision: 1,1,1. Recall: 2/3, 2/3, 1/3 -> 5/9.
        let t = truth(&[(1, 1, &[]), (2, 1, &[]), (3, 1, &[])]);
        let p = prediction(&[(1, 8), (2, 8), (77, 8)], &[]);
        let a = evaluate(&t, &p);
        assert!(close(a.bcubed_precision, 1.0));
        assert!(close(a.bcubed_recall, 5.0 / 9.0));
        assert_eq!(a.unknown_killmails, 1);
        assert_eq!(a.predicted_battles, 2);
    }

    #[test]
    fn flipped_labels_are_not_errors_but_wrong_pilots_are() {
        let sides: &[(i64, Side)] = &[(100, Side::A), (200, Side::B), (300, Side::B)];
        let t = truth(&[(1, 1, sides), (2, 1, sides)]);
        let flipped = prediction(
            &[(1, 5), (2, 5)],
            &[(5, 100, Team::B), (5, 200, Team::A), (5, 300, Team::A)],
        );
        let a = evaluate(&t, &flipped);
        assert_eq!((a.pilots_counted, a.pilots_correct), (3, 3));
        let one_wrong = prediction(
            &[(1, 5), (2, 5)],
            &[(5, 100, Team::B), (5, 200, Team::A), (5, 300, Team::B)],
        );
        let a = evaluate(&t, &one_wrong);
        assert_eq!((a.pilots_counted, a.pilots_correct), (3, 2));
        assert!(close(a.side_accuracy(), 2.0 / 3.0));
        // A pilot absent from the predicted battle is missing, not wrong.
        let absent = prediction(&[(1, 5), (2, 5)], &[(5, 100, Team::A), (5, 200, Team::B)]);
        let a = evaluate(&t, &absent);
        assert_eq!(
            (a.pilots_counted, a.pilots_correct, a.pilots_missing),
            (2, 2, 1)
        );
    }

    #[test]
    fn third_parties_are_not_scored_and_singletons_do_not_count() {
        let sides: &[(i64, Side)] = &[(100, Side::A), (200, Side::B), (300, Side::Third)];
        let t = truth(&[(1, 1, sides), (2, 1, sides), (3, 2, AB)]);
        let p = prediction(
            &[(1, 5), (2, 5), (3, 6)],
            &[(5, 100, Team::A), (5, 200, Team::B), (5, 300, Team::A)],
        );
        let a = evaluate(&t, &p);
        assert_eq!((a.pilots_counted, a.pilots_third_party), (2, 1));
        assert_eq!(a.pilots_missing, 0, "battle 2 has one killmail: not scored");
    }

    #[test]
    fn merges_of_big_battles_and_swallowed_background_are_counted() {
        // Battles 1 and 2: ten killmails each, both predicted in battle 100 with background
        // battle 3's killmail 21; background battle 4's killmail 22 stays alone.
        let mut t = Truth::default();
        let rows = (1..=20)
            .map(|k| (k, 1 + (k > 10) as u64, BattleKind::Fight))
            .chain([
                (21, 3, BattleKind::Background),
                (22, 4, BattleKind::Background),
            ]);
        for (k, battle, battle_kind) in rows {
            t.add(&KillmailTruth {
                killmail_id: k,
                battle,
                battle_kind,
                kind: KillKind::Ship,
                sides: Default::default(),
            })
            .unwrap();
        }
        let battles: Vec<(i64, u64)> = (1..=21).map(|k| (k, 100)).collect();
        let a = evaluate(&t, &prediction(&battles, &[]));
        assert_eq!(a.merged_big_battles, 1);
        assert_eq!((a.background_killmails, a.background_in_fights), (2, 1));
        assert!(close(a.background_swallowed(), 0.5));
        let strict = Targets {
            max_merged_big_battles: 0,
            ..Targets::for_density(Density::Sparse)
        };
        let misses = strict.misses(&a);
        assert!(misses.iter().any(|m| m.contains("hold two")), "{misses:?}");
        let handful = Targets::for_density(Density::Sparse).misses(&a);
        assert!(
            !handful.iter().any(|m| m.contains("hold two")),
            "{handful:?}"
        );
        // Apart, nothing is merged or swallowed.
        let apart: Vec<(i64, u64)> = (1..=21)
            .map(|k| (k, 100 + (k > 10) as u64 + (k > 20) as u64))
            .collect();
        let a = evaluate(&t, &prediction(&apart, &[]));
        assert_eq!((a.merged_big_battles, a.background_in_fights), (0, 0));
    }

    #[test]
    fn big_battles_are_recovered_at_jaccard_point_nine() {
        // Battle 1: killmails 1..=10. Prediction A holds 1..=9 (J = 9/10), 10 alone: recovered.
        // Battle 2: killmails 11..=20. Prediction B holds 11..=18 plus 21 (J = 8/11): not.
        let mut rows: Vec<Row> = (1..=10).map(|k| (k, 1, &[][..])).collect();
        rows.extend((11..=20).map(|k| (k, 2, &[][..])));
        rows.push((21, 3, &[]));
        let t = truth(&rows);
        let mut battles: Vec<(i64, u64)> = (1..=9).map(|k| (k, 100)).collect();
        battles.extend((11..=18).map(|k| (k, 200)));
        battles.push((21, 200));
        let a = evaluate(&t, &prediction(&battles, &[]));
        assert_eq!((a.big_battles, a.big_battles_recovered), (2, 1));
        assert!(close(a.big_battle_recovery(), 0.5));
    }
}

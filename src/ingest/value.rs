//! ISK estimates for killmails that carry no zKillboard value: the embedded price table
//! (`data/prices.csv`, one price per type, parsed once) and the running totals of a victim's
//! items (destroyed, dropped, fitted), which the ESI parser accumulates while it reads the item
//! list, so no item is ever stored.
//!
//! Like zKillboard: the hull counts as destroyed and fitted; every item counts with
//! `quantity_destroyed + quantity_dropped` times its price, items nested in containers included;
//! an item counts as fitted when it sits in a high, medium, low, rig or subsystem slot. Types
//! without a price count 0.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

const PRICES_CSV: &str = include_str!("../../data/prices.csv");

/// A multiplicative hasher for type ids (small positive integers): far cheaper than SipHash,
/// and the keys are our own embedded table, not attacker-chosen.
#[derive(Default)]
pub struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = (n as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_right(17);
    }
}

/// ISK price per type id.
pub struct Prices {
    by_type: HashMap<i64, f64, BuildHasherDefault<TypeIdHasher>>,
}

impl Prices {
    /// The embedded table, parsed on first use.
    pub fn embedded() -> &'static Prices {
        static PRICES: OnceLock<Prices> = OnceLock::new();
        PRICES.get_or_init(|| Prices::parse(PRICES_CSV))
    }

    /// Parses `typeID,price,source` rows (header first). Malformed rows of the embedded table are
    /// a build defect, caught by the tests below.
    fn parse(csv: &str) -> Prices {
        let mut by_type = HashMap::default();
        for line in csv.lines().skip(1).filter(|l| !l.is_empty()) {
            let mut fields = line.split(',');
            let id = fields.next().and_then(|f| f.parse::<i64>().ok());
            let price = fields.next().and_then(|f| f.parse::<f64>().ok());
            if let (Some(id), Some(price)) = (id, price) {
                by_type.insert(id, price);
            }
        }
        Prices { by_type }
    }

    /// The price of one unit, if the table has it.
    pub fn get(&self, type_id: i64) -> Option<f64> {
        self.by_type.get(&type_id).copied()
    }

    /// The price of one unit, 0 when unknown.
    pub fn price_or_zero(&self, type_id: i64) -> f64 {
        self.get(type_id).unwrap_or(0.0)
    }

    pub fn len(&self) -> usize {
        self.by_type.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }
}

/// True for inventory flags of fitted slots: low (11-18), medium (19-26), high (27-34),
/// rigs (92-99) and subsystems (125-132).
pub fn is_fitted_slot(flag: i64) -> bool {
    matches!(flag, 11..=34 | 92..=99 | 125..=132)
}

/// Running ISK totals of a victim's items (without the hull).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ItemTotals {
    pub destroyed: f64,
    pub dropped: f64,
    pub fitted: f64,
    /// Set when some item had a negative quantity (the record is then rejected).
    pub negative_quantity: bool,
}

impl ItemTotals {
    /// Adds one item (not its contents: the parser adds those as items of their own).
    pub fn add(&mut self, type_id: i64, flag: i64, destroyed: i64, dropped: i64, prices: &Prices) {
        if destroyed < 0 || dropped < 0 {
            self.negative_quantity = true;
            return;
        }
        let price = prices.price_or_zero(type_id);
        let destroyed_isk = destroyed as f64 * price;
        let dropped_isk = dropped as f64 * price;
        self.destroyed += destroyed_isk;
        self.dropped += dropped_isk;
        if is_fitted_slot(flag) {
            self.fitted += destroyed_isk + dropped_isk;
        }
    }

    /// Merges the totals of a container's contents (never fitted themselves).
    pub fn add_contents(&mut self, contents: &ItemTotals) {
        self.destroyed += contents.destroyed;
        self.dropped += contents.dropped;
        self.negative_quantity |= contents.negative_quantity;
    }
}

/// A killmail's estimated value, rounded to whole ISK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    pub total: i64,
    pub destroyed: i64,
    pub dropped: i64,
    pub fitted: i64,
}

/// Rounds an ISK amount to whole ISK, saturating at the bounds of i64.
pub fn round_isk(v: f64) -> i64 {
    v.round() as i64
}

/// Hull price plus the items' totals.
pub fn estimate(ship_type_id: i64, items: &ItemTotals, prices: &Prices) -> Estimate {
    let hull = prices.price_or_zero(ship_type_id);
    let destroyed = hull + items.destroyed;
    Estimate {
        total: round_isk(destroyed + items.dropped),
        destroyed: round_isk(destroyed),
        dropped: round_isk(items.dropped),
        fitted: round_isk(hull + items.fitted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_has_every_row_and_fixed_capsules() {
        let p = Prices::embedded();
        let rows = PRICES_CSV.lines().skip(1).filter(|l| !l.is_empty()).count();
        assert_eq!(p.len(), rows, "every row of prices.csv parses");
        assert_eq!(p.get(670), Some(10_000.0), "capsule");
        assert_eq!(p.get(33328), Some(10_000.0), "genolution capsule");
        assert_eq!(p.get(587), Some(314_000.0), "Rifter");
        assert_eq!(p.get(-5), None);
    }

    #[test]
    fn estimate_counts_hull_as_destroyed_and_fitted() {
        let p = Prices::embedded();
        let mut items = ItemTotals::default();
        // Two dropped Rifters in the cargo (flag 5): dropped, not fitted.
        items.add(587, 5, 0, 2, p);
        // A capsule in a high slot (silly, but priced): destroyed and fitted.
        items.add(670, 27, 1, 0, p);
        let e = estimate(587, &items, p);
        assert_eq!(e.dropped, 628_000);
        assert_eq!(e.destroyed, 324_000);
        assert_eq!(e.total, 952_000);
        assert_eq!(e.fitted, 324_000);
    }

    #[test]
    fn negative_quantities_are_flagged_and_contents_merge() {
        let p = Prices::embedded();
        let mut inner = ItemTotals::default();
        inner.add(670, 5, 3, 0, p);
        let mut outer = ItemTotals::default();
        outer.add_contents(&inner);
        assert_eq!(outer.destroyed, 30_000.0);
        assert!(!outer.negative_quantity);
        inner.add(670, 5, -1, 0, p);
        outer.add_contents(&inner);
        assert!(outer.negative_quantity);
    }

    #[test]
    fn rounding_saturates() {
        assert_eq!(round_isk(2.5), 3);
        assert_eq!(round_isk(1e30), i64::MAX);
        assert_eq!(round_isk(-0.4), 0);
    }
}

//! The borrowed serde view of a record: one struct that reads all three input shapes in a single
//! pass straight from the bytes (no `serde_json::Value`). Strings borrow from the input when they
//! hold no escapes; unknown fields (`position`, `war_id`, `labels`, ...) are skipped; the victim's
//! items are valued while read and never stored ([`RawItems`]).
//!
//! Every field is optional here: which ones are required depends on the shape, which is only
//! known once the whole object is read, so [`super::convert`] checks presence and names the
//! missing field the way the input spells it. Nested objects accept both spellings (camelCase
//! for enriched records, snake_case for ESI ones).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::value::{ItemTotals, Prices};

/// Top level of any shape. `killmailId` marks an enriched record, `killmail_id` an ESI one,
/// `package` a RedisQ package.
#[derive(Deserialize)]
pub(crate) struct RawRecord<'a> {
    #[serde(rename = "killmailId")]
    pub killmail_id_camel: Option<i64>,
    #[serde(rename = "killmail_id")]
    pub killmail_id_snake: Option<i64>,
    /// `Some(None)` for `"package": null`.
    #[serde(default, deserialize_with = "present", borrow)]
    pub package: Option<Option<Box<RawPackage<'a>>>>,

    #[serde(rename = "killmailHash", alias = "killmail_hash", borrow)]
    pub killmail_hash: Option<Cow<'a, str>>,
    #[serde(rename = "killmailTime", alias = "killmail_time", borrow)]
    pub killmail_time: Option<Cow<'a, str>>,
    #[serde(rename = "solarSystemId", alias = "solar_system_id")]
    pub solar_system_id: Option<i64>,
    #[serde(rename = "solarSystemName", borrow)]
    pub solar_system_name: Option<Cow<'a, str>>,
    #[serde(rename = "constellationId")]
    pub constellation_id: Option<i64>,
    #[serde(rename = "regionId")]
    pub region_id: Option<i64>,
    #[serde(rename = "regionName", borrow)]
    pub region_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub victim: Option<RawVictim<'a>>,
    #[serde(borrow)]
    pub attackers: Option<Vec<RawAttacker<'a>>>,

    #[serde(rename = "iskValue")]
    pub isk_value: Option<Amount>,
    #[serde(rename = "iskEstimated")]
    pub isk_estimated: Option<bool>,
    #[serde(rename = "droppedValue")]
    pub dropped_value: Option<Amount>,
    #[serde(rename = "destroyedValue")]
    pub destroyed_value: Option<Amount>,
    #[serde(rename = "fittedValue")]
    pub fitted_value: Option<Amount>,
    pub npc: Option<bool>,
    pub solo: Option<bool>,
    pub awox: Option<bool>,

    #[serde(borrow)]
    pub zkb: Option<RawZkb<'a>>,
}

/// The RedisQ envelope: `{"package": {"killID": .., "killmail": {..}, "zkb": {..}}}`.
#[derive(Deserialize)]
pub(crate) struct RawPackage<'a> {
    #[serde(rename = "killID")]
    pub kill_id: Option<i64>,
    #[serde(borrow)]
    pub killmail: Option<Box<RawRecord<'a>>>,
    #[serde(borrow)]
    pub zkb: Option<RawZkb<'a>>,
}

/// zKillboard's block. Values are floats with cents; flags may be absent in old records.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawZkb<'a> {
    #[serde(borrow)]
    pub hash: Option<Cow<'a, str>>,
    pub fitted_value: Option<Amount>,
    pub dropped_value: Option<Amount>,
    pub destroyed_value: Option<Amount>,
    pub total_value: Option<Amount>,
    pub npc: Option<bool>,
    pub solo: Option<bool>,
    pub awox: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawVictim<'a> {
    #[serde(alias = "character_id")]
    pub character_id: Option<i64>,
    #[serde(borrow)]
    pub character_name: Option<Cow<'a, str>>,
    #[serde(alias = "corporation_id")]
    pub corporation_id: Option<i64>,
    #[serde(borrow)]
    pub corporation_name: Option<Cow<'a, str>>,
    #[serde(alias = "alliance_id")]
    pub alliance_id: Option<i64>,
    #[serde(borrow)]
    pub alliance_name: Option<Cow<'a, str>>,
    #[serde(alias = "faction_id")]
    pub faction_id: Option<i64>,
    #[serde(alias = "ship_type_id")]
    pub ship_type_id: Option<i64>,
    #[serde(borrow)]
    pub ship_type_name: Option<Cow<'a, str>>,
    pub ship_group_id: Option<i64>,
    pub ship_category_id: Option<i64>,
    #[serde(alias = "damage_taken")]
    pub damage_taken: Option<i64>,
    pub items: Option<RawItems>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawAttacker<'a> {
    #[serde(alias = "character_id")]
    pub character_id: Option<i64>,
    #[serde(borrow)]
    pub character_name: Option<Cow<'a, str>>,
    #[serde(alias = "corporation_id")]
    pub corporation_id: Option<i64>,
    #[serde(borrow)]
    pub corporation_name: Option<Cow<'a, str>>,
    #[serde(alias = "alliance_id")]
    pub alliance_id: Option<i64>,
    #[serde(borrow)]
    pub alliance_name: Option<Cow<'a, str>>,
    #[serde(alias = "faction_id")]
    pub faction_id: Option<i64>,
    #[serde(alias = "ship_type_id")]
    pub ship_type_id: Option<i64>,
    #[serde(borrow)]
    pub ship_type_name: Option<Cow<'a, str>>,
    #[serde(alias = "weapon_type_id")]
    pub weapon_type_id: Option<i64>,
    #[serde(alias = "damage_done")]
    pub damage_done: Option<i64>,
    #[serde(alias = "final_blow")]
    pub final_blow: Option<bool>,
}

/// One ESI item: only what valuation needs.
#[derive(Deserialize)]
struct RawItem {
    item_type_id: Option<i64>,
    flag: Option<i64>,
    quantity_destroyed: Option<i64>,
    quantity_dropped: Option<i64>,
    /// Contents of a container.
    items: Option<RawItems>,
}

/// A victim's item list, valued against the embedded prices while it is read.
pub(crate) struct RawItems(pub ItemTotals);

impl<'de> Deserialize<'de> for RawItems {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(ItemsVisitor)
    }
}

struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = RawItems;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawItems, A::Error> {
        let prices = Prices::embedded();
        let mut totals = ItemTotals::default();
        while let Some(item) = seq.next_element::<RawItem>()? {
            totals.add(
                item.item_type_id.unwrap_or(0),
                item.flag.unwrap_or(0),
                item.quantity_destroyed.unwrap_or(0),
                item.quantity_dropped.unwrap_or(0),
                prices,
            );
            if let Some(RawItems(contents)) = &item.items {
                totals.add_contents(contents);
            }
        }
        Ok(RawItems(totals))
    }
}

/// Tells a present key (even with `null`) from an absent one: `Some(value)` when present.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// An ISK amount as written: integers stay exact (beyond 2^53 too), floats keep their cents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Amount {
    Int(i64),
    Float(f64),
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

impl Visitor<'_> for AmountVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an ISK amount")
    }

    fn visit_i64<E>(self, v: i64) -> Result<Amount, E> {
        Ok(Amount::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Amount, E> {
        Ok(i64::try_from(v).map_or(Amount::Float(v as f64), Amount::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Amount, E> {
        Ok(Amount::Float(v))
    }
}

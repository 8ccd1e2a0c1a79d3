//! From the raw view of a record to a validated, enriched [`Killmail`]: shape detection, required
//! fields, value checks, time range, SDE enrichment (system, constellation, region, type names)
//! and ISK (zKillboard's when present, else estimated from the embedded prices).

use std::borrow::Cow;

use battles_dataflow::killmail::{MAX_DAMAGE, MAX_ISK};
use battles_dataflow::{Attacker, Killmail, Universe, Victim};

use super::raw::{Amount, RawAttacker, RawRecord, RawVictim, RawZkb};
use super::time::{eve_launch, parse_time};
use super::value::{estimate, round_isk, ItemTotals, Prices};
use super::{IngestContext, RejectReason, Shape};

/// Spells field names the way the record's shape does.
#[derive(Clone, Copy)]
struct Names {
    shape: Shape,
    /// `package.killmail.` inside RedisQ packages, else empty.
    prefix: &'static str,
}

impl Names {
    fn field(&self, camel: &str, snake: &str) -> String {
        let name = match self.shape {
            Shape::Enriched => camel,
            Shape::Esi | Shape::RedisQ => snake,
        };
        format!("{}{}", self.prefix, name)
    }
}

/// Detects the shape and converts.
pub(crate) fn convert(
    mut raw: RawRecord<'_>,
    ctx: &IngestContext,
) -> Result<(Killmail, Shape), RejectReason> {
    if let Some(package) = raw.package {
        let package = package.ok_or(RejectReason::EmptyPackage)?;
        let package = *package;
        let Some(inner) = package.killmail else {
            return match (package.kill_id, package.zkb.is_some()) {
                (Some(id), true) => Err(RejectReason::ZkbOnly { killmail_id: id }),
                (None, _) => Err(RejectReason::MissingField("package.killID".into())),
                (Some(_), false) => Err(RejectReason::MissingField("package.killmail".into())),
            };
        };
        let mut inner = *inner;
        if inner.package.is_some() || inner.killmail_id_camel.is_some() {
            return Err(RejectReason::UnknownShape(
                "package.killmail is not an ESI killmail".into(),
            ));
        }
        let names = Names {
            shape: Shape::RedisQ,
            prefix: "package.killmail.",
        };
        let id = inner.killmail_id_snake.or(package.kill_id);
        let zkb = package.zkb.or(inner.zkb.take());
        let km = build(inner, id, zkb, names, ctx)?;
        if let Some(kill_id) = package.kill_id {
            if kill_id != km.killmail_id {
                return Err(RejectReason::WrongType("package.killID".into()));
            }
        }
        return Ok((km, Shape::RedisQ));
    }
    let shape = match (raw.killmail_id_camel, raw.killmail_id_snake) {
        (Some(_), Some(_)) => {
            return Err(RejectReason::UnknownShape(
                "both killmailId and killmail_id are present".into(),
            ))
        }
        (Some(_), None) => Shape::Enriched,
        (None, Some(id)) => {
            if raw.zkb.is_some()
                && raw.killmail_time.is_none()
                && raw.victim.is_none()
                && raw.attackers.is_none()
            {
                return Err(RejectReason::ZkbOnly { killmail_id: id });
            }
            Shape::Esi
        }
        (None, None) => {
            return Err(RejectReason::UnknownShape(
                "no killmailId, killmail_id or package key".into(),
            ))
        }
    };
    let names = Names { shape, prefix: "" };
    let id = raw.killmail_id_camel.or(raw.killmail_id_snake);
    // zKillboard blocks count only beside ESI killmails; enriched records carry values flat.
    let zkb = raw.zkb.take().filter(|_| shape == Shape::Esi);
    let km = build(raw, id, zkb, names, ctx)?;
    Ok((km, shape))
}

fn required<T>(v: Option<T>, names: Names, camel: &str, snake: &str) -> Result<T, RejectReason> {
    v.ok_or_else(|| RejectReason::MissingField(names.field(camel, snake)))
}

fn positive(v: i64, names: Names, camel: &str, snake: &str) -> Result<i64, RejectReason> {
    if v > 0 {
        Ok(v)
    } else {
        Err(RejectReason::NonPositiveId(names.field(camel, snake)))
    }
}

/// A damage: not negative and at most [`MAX_DAMAGE`].
fn damage(v: i64, names: Names, camel: &str, snake: &str) -> Result<i64, RejectReason> {
    if v < 0 {
        Err(RejectReason::NegativeValue(names.field(camel, snake)))
    } else if v > MAX_DAMAGE {
        Err(RejectReason::ValueTooLarge {
            field: names.field(camel, snake),
            max: MAX_DAMAGE,
        })
    } else {
        Ok(v)
    }
}

/// An ISK amount: not negative, at most [`MAX_ISK`], floats rounded to whole ISK. `field`
/// names it.
fn isk(v: Option<Amount>, field: impl Fn() -> String) -> Result<Option<i64>, RejectReason> {
    let too_large = || RejectReason::ValueTooLarge {
        field: field(),
        max: MAX_ISK,
    };
    match v {
        None => Ok(None),
        Some(Amount::Int(x)) if x < 0 => Err(RejectReason::NegativeValue(field())),
        Some(Amount::Int(x)) if x > MAX_ISK => Err(too_large()),
        Some(Amount::Int(x)) => Ok(Some(x)),
        Some(Amount::Float(x)) if x < 0.0 => Err(RejectReason::NegativeValue(field())),
        Some(Amount::Float(x)) if !x.is_finite() => Err(RejectReason::WrongType(field())),
        Some(Amount::Float(x)) if x > MAX_ISK as f64 => Err(too_large()),
        Some(Amount::Float(x)) => Ok(Some(round_isk(x))),
    }
}

/// An estimated value within [`MAX_ISK`] (absurd item quantities can exceed it).
fn estimated(v: i64) -> Result<i64, RejectReason> {
    if (0..=MAX_ISK).contains(&v) {
        Ok(v)
    } else {
        Err(RejectReason::ValueTooLarge {
            field: "estimated value of the items".into(),
            max: MAX_ISK,
        })
    }
}

fn owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

/// A name from the record unless absent or empty.
fn non_empty(s: Option<Cow<'_, str>>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(Cow::into_owned)
}

fn build(
    raw: RawRecord<'_>,
    id: Option<i64>,
    zkb: Option<RawZkb<'_>>,
    names: Names,
    ctx: &IngestContext,
) -> Result<Killmail, RejectReason> {
    let universe = ctx.universe;
    let killmail_id = positive(
        required(id, names, "killmailId", "killmail_id")?,
        names,
        "killmailId",
        "killmail_id",
    )?;

    let time_text = required(raw.killmail_time, names, "killmailTime", "killmail_time")?;
    let killmail_time = parse_time(&time_text)
        .ok_or_else(|| RejectReason::InvalidTimestamp(time_text.chars().take(64).collect()))?;
    let skew = ctx.max_future_skew;
    if killmail_time < eve_launch() || killmail_time > ctx.now() + skew {
        return Err(RejectReason::TimeOutOfRange {
            time: killmail_time,
            max_skew_secs: skew.num_seconds(),
        });
    }

    let solar_system_id = positive(
        required(
            raw.solar_system_id,
            names,
            "solarSystemId",
            "solar_system_id",
        )?,
        names,
        "solarSystemId",
        "solar_system_id",
    )?;
    let record_region = raw.region_id.filter(|&r| r != 0);
    let (solar_system_name, constellation_id, region_id) = match universe.system(solar_system_id) {
        Some(sys) => (
            non_empty(raw.solar_system_name).unwrap_or_else(|| sys.name.clone()),
            raw.constellation_id
                .filter(|&c| c != 0)
                .unwrap_or(sys.constellation_id),
            record_region.unwrap_or(sys.region_id),
        ),
        None => {
            let region_id = record_region.ok_or(RejectReason::UnknownSystem(solar_system_id))?;
            (
                non_empty(raw.solar_system_name).unwrap_or_default(),
                raw.constellation_id.unwrap_or(0),
                region_id,
            )
        }
    };
    let region_name = non_empty(raw.region_name)
        .or_else(|| universe.region_name(region_id).map(str::to_owned))
        .unwrap_or_default();

    let raw_victim = required(raw.victim, names, "victim", "victim")?;
    let (victim, items) = victim(raw_victim, names, universe)?;

    let raw_attackers = required(raw.attackers, names, "attackers", "attackers")?;
    if raw_attackers.is_empty() {
        return Err(RejectReason::NoAttackers);
    }
    let attackers = raw_attackers
        .into_iter()
        .map(|a| attacker(a, names, universe))
        .collect::<Result<Vec<_>, _>>()?;

    let flat = |name: &str| names.field(name, name);
    let mut km = Killmail {
        killmail_id,
        killmail_hash: owned(raw.killmail_hash),
        killmail_time,
        solar_system_id,
        solar_system_name,
        constellation_id,
        region_id,
        region_name,
        victim,
        attackers,
        isk_value: 0,
        isk_estimated: false,
        dropped_value: isk(raw.dropped_value, || flat("droppedValue"))?,
        destroyed_value: isk(raw.destroyed_value, || flat("destroyedValue"))?,
        fitted_value: isk(raw.fitted_value, || flat("fittedValue"))?,
        npc: raw.npc,
        solo: raw.solo,
        awox: raw.awox,
    };
    let record_isk = isk(raw.isk_value, || flat("iskValue"))?;

    if let Some(zkb) = zkb {
        apply_zkb(&mut km, zkb, names)?;
    } else if let Some(value) = record_isk {
        km.isk_value = value;
        km.isk_estimated = raw.isk_estimated.unwrap_or(false);
    } else {
        let listed = items.unwrap_or_default();
        let e = estimate(km.victim.ship_type_id, &listed, Prices::embedded());
        km.isk_value = estimated(e.total)?;
        km.isk_estimated = true;
        km.destroyed_value = Some(estimated(e.destroyed)?);
        km.fitted_value = Some(estimated(e.fitted)?);
        // Without an item list (enriched records) nothing is known of what dropped.
        km.dropped_value = items.is_some().then(|| estimated(e.dropped)).transpose()?;
    }
    Ok(km)
}

/// zKillboard's values and flags, with the hash when the killmail lacks one.
fn apply_zkb(km: &mut Killmail, zkb: RawZkb<'_>, names: Names) -> Result<(), RejectReason> {
    let prefix = if names.shape == Shape::RedisQ {
        "package.zkb."
    } else {
        "zkb."
    };
    let field = |name: &str| format!("{prefix}{name}");
    let dropped = isk(zkb.dropped_value, || field("droppedValue"))?;
    let destroyed = isk(zkb.destroyed_value, || field("destroyedValue"))?;
    let fitted = isk(zkb.fitted_value, || field("fittedValue"))?;
    km.isk_value = isk(zkb.total_value, || field("totalValue"))?
        .ok_or_else(|| RejectReason::MissingField(field("totalValue")))?;
    km.isk_estimated = false;
    km.dropped_value = dropped.or(km.dropped_value);
    km.destroyed_value = destroyed.or(km.destroyed_value);
    km.fitted_value = fitted.or(km.fitted_value);
    km.npc = zkb.npc.or(km.npc);
    km.solo = zkb.solo.or(km.solo);
    km.awox = zkb.awox.or(km.awox);
    if km.killmail_hash.is_none() {
        km.killmail_hash = owned(zkb.hash);
    }
    Ok(())
}

/// The victim, and the totals of its item list when the record has one.
fn victim(
    raw: RawVictim<'_>,
    names: Names,
    universe: &Universe,
) -> Result<(Victim, Option<ItemTotals>), RejectReason> {
    let ship_type_id = required(
        raw.ship_type_id,
        names,
        "victim.shipTypeId",
        "victim.ship_type_id",
    )?;
    let ship_type_id = positive(
        ship_type_id,
        names,
        "victim.shipTypeId",
        "victim.ship_type_id",
    )?;
    let damage_taken = damage(
        raw.damage_taken.unwrap_or(0),
        names,
        "victim.damageTaken",
        "victim.damage_taken",
    )?;
    let items = raw.items.map(|i| i.0);
    if items.is_some_and(|i| i.negative_quantity) {
        return Err(RejectReason::NegativeValue(names.field(
            "victim.items.quantity",
            "victim.items.quantity_destroyed/quantity_dropped",
        )));
    }
    let known = universe.item_type(ship_type_id);
    let victim = Victim {
        character_id: raw.character_id,
        character_name: owned(raw.character_name),
        corporation_id: raw.corporation_id,
        corporation_name: owned(raw.corporation_name),
        alliance_id: raw.alliance_id,
        alliance_name: owned(raw.alliance_name),
        faction_id: raw.faction_id,
        ship_type_id,
        ship_type_name: owned(raw.ship_type_name).or_else(|| known.map(|t| t.name.clone())),
        ship_group_id: raw.ship_group_id.or(known.map(|t| t.group_id)),
        ship_category_id: raw.ship_category_id.or(known.map(|t| t.category_id)),
        damage_taken,
    };
    Ok((victim, items))
}

fn attacker(
    raw: RawAttacker<'_>,
    names: Names,
    universe: &Universe,
) -> Result<Attacker, RejectReason> {
    let damage_done = damage(
        raw.damage_done.unwrap_or(0),
        names,
        "attackers.damageDone",
        "attackers.damage_done",
    )?;
    let ship_type_name = owned(raw.ship_type_name).or_else(|| {
        raw.ship_type_id
            .and_then(|id| universe.item_type(id))
            .map(|t| t.name.clone())
    });
    Ok(Attacker {
        character_id: raw.character_id,
        character_name: owned(raw.character_name),
        corporation_id: raw.corporation_id,
        corporation_name: owned(raw.corporation_name),
        alliance_id: raw.alliance_id,
        alliance_name: owned(raw.alliance_name),
        faction_id: raw.faction_id,
        ship_type_id: raw.ship_type_id,
        ship_type_name,
        weapon_type_id: raw.weapon_type_id,
        damage_done,
        final_blow: raw.final_blow.unwrap_or(false),
    })
}

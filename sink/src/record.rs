//! The stored form of a killmail: the bytes of `killmails.record`.
//!
//! A record written since migration V7 is one format byte ([`FORMAT_BINCODE_V1`]) followed by
//! the killmail in bincode (variable-length integers, little endian): every field of
//! [`Killmail`], in declaration order, without field names, so it round-trips exactly and is a
//! fraction of the JSON's size. Records written before V7 are the UTF-8 JSON of the killmail
//! (serde_json's compact output, which always begins with `{`); [`decode`] reads both, so an
//! upgraded database keeps working without rewriting its rows.
//!
//! A change to [`Killmail`]'s fields changes the bincode layout: it needs a new format byte and
//! a decoder for the old one, kept here.

use battles_dataflow::killmail::Killmail;
use bincode::Options;

/// Format byte of a record in bincode (`bincode_options`) of the [`Killmail`] of V7.
pub const FORMAT_BINCODE_V1: u8 = 1;
/// First byte of a JSON record (the format before V7).
const JSON_OBJECT_START: u8 = b'{';

/// Why a stored record does not decode.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the record is empty")]
    Empty,
    #[error("unknown record format byte {0:#04x}")]
    UnknownFormat(u8),
    #[error("bincode record: {0}")]
    Bincode(#[from] bincode::Error),
    #[error("JSON record: {0}")]
    Json(#[from] serde_json::Error),
}

/// The bincode configuration of [`FORMAT_BINCODE_V1`]: varint integers, little endian, no
/// trailing bytes allowed.
fn bincode_options() -> impl Options + Copy {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

/// The record of `killmail`, in the current format.
pub fn encode(killmail: &Killmail) -> Vec<u8> {
    let options = bincode_options();
    let size = options
        .serialized_size(killmail)
        .expect("killmails serialize to bincode");
    let mut out = Vec::with_capacity(1 + size as usize);
    out.push(FORMAT_BINCODE_V1);
    options
        .serialize_into(&mut out, killmail)
        .expect("killmails serialize to bincode");
    out
}

/// The killmail of a stored record of any format this service wrote.
pub fn decode(record: &[u8]) -> Result<Killmail, RecordError> {
    match record.first() {
        None => Err(RecordError::Empty),
        Some(&FORMAT_BINCODE_V1) => Ok(bincode_options().deserialize(&record[1..])?),
        Some(&JSON_OBJECT_START) => Ok(serde_json::from_slice(record)?),
        Some(&other) => Err(RecordError::UnknownFormat(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use battles_dataflow::killmail::{Attacker, Victim};
    use chrono::TimeZone;

    fn killmail() -> Killmail {
        Killmail {
            killmail_id: 96_000_001,
            killmail_hash: Some("0123456789abcdef0123456789abcdef01234567".into()),
            killmail_time: chrono::Utc
                .with_ymd_and_hms(2021, 11, 28, 10, 30, 5)
                .unwrap(),
            solar_system_id: 30_001_046,
            solar_system_name: "Jorund\0".into(),
            constellation_id: 20_000_153,
            region_id: 10_000_012,
            region_name: "Curse".into(),
            victim: Victim {
                character_id: Some(2_112_000_001),
                character_name: Some("Pilot ✈".into()),
                corporation_id: Some(98_000_001),
                corporation_name: None,
                alliance_id: None,
                alliance_name: None,
                faction_id: None,
                ship_type_id: 17_738,
                ship_type_name: None,
                ship_group_id: Some(27),
                ship_category_id: Some(6),
                damage_taken: 1_000_000_000_000,
            },
            attackers: vec![Attacker {
                character_id: None,
                character_name: None,
                corporation_id: Some(1_000_127),
                corporation_name: None,
                alliance_id: Some(-5),
                alliance_name: None,
                faction_id: Some(500_010),
                ship_type_id: Some(i64::MAX),
                ship_type_name: Some(String::new()),
                weapon_type_id: Some(i64::MIN),
                damage_done: 0,
                final_blow: true,
            }],
            isk_value: 1_000_000_000_000_000,
            isk_estimated: true,
            dropped_value: Some(0),
            destroyed_value: None,
            fitted_value: Some(12),
            npc: Some(false),
            solo: None,
            awox: Some(true),
        }
    }

    #[test]
    fn bincode_records_round_trip_exactly() {
        let k = killmail();
        let record = encode(&k);
        assert_eq!(record[0], FORMAT_BINCODE_V1);
        assert_eq!(decode(&record).unwrap(), k);
    }

    #[test]
    fn json_records_of_before_v7_still_decode() {
        let k = killmail();
        let record = serde_json::to_vec(&k).unwrap();
        assert_eq!(decode(&record).unwrap(), k);
    }

    #[test]
    fn bincode_records_are_smaller_than_json() {
        let k = killmail();
        let (bincode, json) = (encode(&k).len(), serde_json::to_vec(&k).unwrap().len());
        assert!(bincode * 3 < json, "bincode {bincode} B, JSON {json} B");
    }

    #[test]
    fn damaged_records_are_refused() {
        let record = encode(&killmail());
        assert!(matches!(decode(&[]), Err(RecordError::Empty)));
        assert!(matches!(
            decode(&[0x7f, 1, 2]),
            Err(RecordError::UnknownFormat(0x7f))
        ));
        assert!(matches!(
            decode(&record[..record.len() - 1]),
            Err(RecordError::Bincode(_))
        ));
        let mut longer = record.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(RecordError::Bincode(_))));
    }
}

//! The real data of ../shared/data/killmails through sources and ingest: the four ESI days parse
//! with zero rejects and zero duplicates, and the zKillboard samples are either parsed (full
//! killmails) or rejected as `zkb_only` (value blocks without a killmail). They fail when the
//! shared folder is absent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use battles::ingest::{parse_record, Deduplicator, IngestContext, Seen, Shape};
use battles::sources::open_sources;

/// The real data folder; a test fails when it is missing (it never passes without checking).
fn shared_killmails() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/killmails");
    assert!(
        dir.is_dir(),
        "{} is missing: the real-data tests need ../shared/data beside the project",
        dir.display()
    );
    dir
}

/// Accepted per shape, duplicates, rejects per code.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    accepted: BTreeMap<Shape, u64>,
    duplicates: u64,
    rejects: BTreeMap<&'static str, u64>,
}

fn check(paths: &[PathBuf]) -> Counts {
    let ctx = IngestContext::default();
    let mut dedup = Deduplicator::new();
    let mut counts = Counts::default();
    let mut sources = open_sources(paths).unwrap();
    while let Some(record) = sources.next_record() {
        let record = record.unwrap();
        assert!(!record.oversized, "{}", record.position());
        match parse_record(record.bytes, &ctx) {
            Ok(p) => match dedup.observe(&p.killmail) {
                Ok(Seen::New) => *counts.accepted.entry(p.shape).or_default() += 1,
                Ok(Seen::Duplicate) => counts.duplicates += 1,
                Err(r) => *counts.rejects.entry(r.code()).or_default() += 1,
            },
            Err(r) => {
                if counts.rejects.is_empty() {
                    eprintln!("first reject at {}: {r}", record.position());
                }
                *counts.rejects.entry(r.code()).or_default() += 1
            }
        }
    }
    counts
}

#[test]
fn four_real_days_parse_with_zero_rejects() {
    let dir = shared_killmails();
    let days = [
        ("esi-2021-11-27.jsonl.gz", 17_862),
        ("esi-2021-11-28.jsonl.gz", 17_047),
        ("esi-2021-11-29.jsonl.gz", 10_831),
        ("esi-2021-11-30.jsonl.gz", 11_721),
    ];
    for (file, expected) in days {
        let counts = check(&[dir.join(file)]);
        assert_eq!(
            counts,
            Counts {
                accepted: BTreeMap::from([(Shape::Esi, expected)]),
                ..Counts::default()
            },
            "{file}"
        );
    }
}

#[test]
fn zkillboard_samples_parse_or_are_refused_as_zkb_only() {
    let dir = shared_killmails();
    let zkb = dir.join("zkb");
    let killmail = check(&[zkb.join("seb-odessa_zkb/killmail.json")]);
    assert_eq!(killmail.accepted, BTreeMap::from([(Shape::Esi, 1)]));
    assert!(killmail.rejects.is_empty());

    // zkbOnly API answers: arrays of {killmail_id, zkb} without the killmail.
    let kills = check(&[zkb.join("seb-odessa_zkb/kills.json")]);
    assert_eq!(kills.rejects, BTreeMap::from([("zkb_only", 200)]));
    assert!(kills.accepted.is_empty());
    let molden = check(&[zkb.join("seb-odessa_zkb/MoldenHeath.json")]);
    assert_eq!(molden.rejects, BTreeMap::from([("zkb_only", 175)]));

    // The RedisQ README example is a reference-only package (killID + zkb with an ESI href).
    let redisq = check(&[zkb.join("redisq_readme_example_130678514.json")]);
    assert_eq!(redisq.rejects, BTreeMap::from([("zkb_only", 1)]));

    // The whole folder: links.txt is not picked up by the directory walk.
    let all = check(&[zkb]);
    assert_eq!(all.accepted, BTreeMap::from([(Shape::Esi, 1)]));
    assert_eq!(all.rejects, BTreeMap::from([("zkb_only", 376)]));
}

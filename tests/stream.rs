//! `battles run` end to end, as real processes: a replay of a file and a stream through Kafka
//! (rdkafka's in-process `MockCluster`, which lives in this test process; the service is a
//! child process connecting to its listeners) give exactly the tables a backfill of the same
//! killmails gives; `kill -9` mid-stream and a restart lose and repeat nothing; malformed
//! messages are kept with their topic, partition and offset while good ones flow; every
//! created and ended battle is published on `battle.events`; a signal while the service starts
//! stops it cleanly.
//!
//! `battle_aliases` are not compared: they record the battles that ended on the way (a stream
//! sees killmails in arrival order and merges battles a sorted backfill never splits), not the
//! result; the test checks that they point at stored battles.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use battles_sink::TestDatabase;
use common::{assert_same_tables, free_port, generated, runtime, Status};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const TOPIC: &str = "killmail.enriched";
const EVENTS: &str = "battle.events";
const RECLUSTER: &str = "battle.recluster";
const RETENTION: &str = "data.retention";
const PARTITIONS: i32 = 8;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The tables a backfill of `file` writes.
fn backfilled(rt: &tokio::runtime::Runtime, file: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(["backfill", "--quiet", "--workers", "1"])
        .arg(file)
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let tables = rt.block_on(common::dump(&db, Status::Ignored));
    rt.block_on(db.drop_database()).unwrap();
    tables
}

/// `battles run` against `db` with `args`, its API on a free port.
fn start_service(db: &TestDatabase, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(["run", "--listen", "127.0.0.1:0", "--workers", "1"])
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("BATTLES_KAFKA_BROKERS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGTERM, then the exit status (the service commits its step and stops).
fn stop(mut child: Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    child.wait().unwrap()
}

/// The whole HTTP/1.1 answer to `GET path` on `address`.
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn scalar(rt: &tokio::runtime::Runtime, db: &TestDatabase, sql: &str) -> i64 {
    rt.block_on(async {
        let client = db.connect().await.unwrap();
        client.query_one(sql, &[]).await.unwrap().get(0)
    })
}

/// Waits until the committed positions of the stream sum to `messages`.
fn wait_for_offsets(rt: &tokio::runtime::Runtime, db: &TestDatabase, messages: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reached = scalar(
            rt,
            db,
            &format!(
                "SELECT coalesce(sum(position), 0)::int8 FROM source_offsets
                 WHERE source_key LIKE 'kafka:{TOPIC}:%'"
            ),
        );
        if reached == messages {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the stream reached {reached} of {messages} messages in 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A mock cluster with the killmail topic (8 partitions) and the events topic.
fn mock_cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    mock_cluster_with(PARTITIONS)
}

/// A mock cluster with the killmail topic of `partitions` and the service's other topics.
fn mock_cluster_with(
    partitions: i32,
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, partitions, 1).unwrap();
    cluster.create_topic(EVENTS, 1, 1).unwrap();
    cluster.create_topic(RECLUSTER, 1, 1).unwrap();
    cluster.create_topic(RETENTION, 1, 1).unwrap();
    cluster
}

/// Produces `payloads` to the killmail topic, round-robin over its partitions (so one fight's
/// killmails are spread over all of them).
fn produce(bootstrap: &str, payloads: &[String]) {
    produce_over(bootstrap, payloads, PARTITIONS)
}

/// Produces `payloads` round-robin over the first `partitions` partitions of the killmail topic.
fn produce_over(bootstrap: &str, payloads: &[String], partitions: i32) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (i, payload) in payloads.iter().enumerate() {
        let partition = i as i32 % partitions;
        loop {
            match producer.send(
                BaseRecord::<(), str>::to(TOPIC)
                    .partition(partition)
                    .payload(payload),
            ) {
                Ok(()) => break,
                Err((_, _)) => {
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    // The mock broker keeps a few MB per partition and drops the oldest beyond that: every
    // message must still be there, or the test would compare against killmails Kafka lost.
    for partition in 0..partitions {
        let (low, _) = producer
            .client()
            .fetch_watermarks(TOPIC, partition, Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            low, 0,
            "the mock broker dropped the start of partition {partition}"
        );
    }
}

/// Every event on the events topic, as JSON.
fn published_events(bootstrap: &str) -> Vec<serde_json::Value> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "stream-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(EVENTS, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let (_, high) = consumer
        .fetch_watermarks(EVENTS, 0, Duration::from_secs(10))
        .unwrap();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (events.len() as i64) < high && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            events.push(serde_json::from_slice(m.payload().unwrap()).unwrap());
        }
    }
    assert_eq!(events.len() as i64, high, "read every published event");
    events
}

/// Runs `battles run` on a replay of `file` into `db` as fast as it goes, until its end.
fn replay_to_end(db: &TestDatabase, file: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(["run", "--listen", "127.0.0.1:0", "--workers", "1"])
        .args(["--speed", "1000000000", "--exit-at-end"])
        .arg(file)
        .env("DATABASE_URL", &db.url)
        .env_remove("BATTLES_KAFKA_BROKERS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_replay_gives_the_tables_of_a_backfill_and_resumes_without_repeating() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 21, 1);
    let expected = backfilled(&rt, &file);

    let db = rt.block_on(TestDatabase::create()).unwrap();
    // The first run stays up after the replay (the embedded default serves the API until
    // stopped): its health and metrics are read, then SIGTERM stops it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let service = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args([
            "run",
            "--listen",
            &listen,
            "--workers",
            "1",
            "--speed",
            "1000000000",
        ])
        .arg(&file)
        .env("DATABASE_URL", &db.url)
        .env_remove("BATTLES_KAFKA_BROKERS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let records = lines(&file).len() as i64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while scalar(
        &rt,
        &db,
        "SELECT coalesce(sum(position), 0)::int8 FROM source_offsets WHERE source_key LIKE 'replay:%'",
    ) < records
    {
        assert!(Instant::now() < deadline, "the replay did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let health = http_get(&listen, "/api/battles/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let metrics = http_get(&listen, "/metrics");
    for name in [
        "battle_killmails_processed_total",
        "battle_battles_created_total",
        "battle_battles_updated_total",
        "battle_clustering_duration_seconds",
        "battle_active_battles",
        "battle_commit_duration_seconds",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    assert!(stop(service).success(), "SIGTERM stops the service cleanly");
    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&db, Status::Ignored)),
        "replay",
    );
    let events = scalar(&rt, &db, "SELECT count(*) FROM battle_events_outbox");
    let created = scalar(
        &rt,
        &db,
        "SELECT count(*) FROM battle_events_outbox WHERE event_type = 'battle.created'",
    );
    let battles = scalar(&rt, &db, "SELECT count(*) FROM battles");
    let ended = scalar(&rt, &db, "SELECT count(*) FROM battle_aliases");
    assert!(
        created >= battles + ended,
        "{created} created events for {battles} battles and {ended} merged ones"
    );
    let open_or_closed = scalar(
        &rt,
        &db,
        "SELECT count(*) FROM battles WHERE status IN ('open', 'closed')",
    );
    assert_eq!(
        open_or_closed, battles,
        "a stream sets status from its watermark"
    );

    // A second run resumes at the committed position: nothing changes, no event is added.
    replay_to_end(&db, &file);
    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&db, Status::Ignored)),
        "replay again",
    );
    assert_eq!(
        scalar(&rt, &db, "SELECT count(*) FROM battle_events_outbox"),
        events
    );
    rt.block_on(db.drop_database()).unwrap();
}

/// A big step commits in transactions of its own: the battles that touch stored rows, the
/// battles that stand alone in parts beside them, then the positions. `kill -9` before the
/// positions leaves some of them, battles with all of their killmails, and the positions of the
/// step before. The next start takes that up: the replay then gives the tables of a backfill.
#[test]
fn a_restart_after_a_step_committed_only_its_lone_battles_gives_the_tables_of_a_backfill() {
    use battles::ingest::{parse_record, IngestContext};
    use battles::stream::source::replay_key;
    use battles_dataflow::{Engine, EngineConfig, Killmail};
    use battles_sink::{SplitStep, StatusRule, StepChanges};
    use std::sync::Arc;

    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 24, 12);
    let expected = backfilled(&rt, &file);

    // The replay's records in its order (killmail time, ties in file order), in two steps as
    // the stream makes them: the first committed in all of its phases, of the second only its
    // lone battles, not its rest (which updates and ends battles of the first) nor positions.
    let mut killmails: Vec<Arc<Killmail>> = lines(&file)
        .iter()
        .map(|l| {
            Arc::new(
                parse_record(l.as_bytes(), &IngestContext::default())
                    .unwrap()
                    .killmail,
            )
        })
        .collect();
    killmails.sort_by_key(|k| k.killmail_time);
    let total = killmails.len();
    let second_half = killmails.split_off(total / 2);
    let config = EngineConfig {
        workers: 1,
        ..EngineConfig::default()
    };
    let mut engine = Engine::start(config.clone()).unwrap();
    let key = replay_key(std::slice::from_ref(&file));
    let mut step = |killmails: Vec<Arc<Killmail>>, position: usize| {
        let newest = killmails.iter().map(|k| k.killmail_time).max().unwrap();
        let out = engine.insert(killmails.clone()).unwrap();
        let step = StepChanges {
            battles: out.changes,
            killmails_inserted: killmails,
            offsets: vec![(key.clone(), position as i64)],
            status: StatusRule::watermark(newest, config.rule.reach()),
            rows_are_new: true,
            ..StepChanges::default()
        };
        match step.split(2) {
            SplitStep::Split {
                rest,
                parts,
                positions,
            } => (rest, parts, positions),
            SplitStep::Whole(_) => panic!("the steps have lone battles enough for two parts"),
        }
    };
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let sink = rt.block_on(db.sink()).unwrap();
    let (rest, parts, positions) = step(killmails, total / 2);
    for written in [rest].into_iter().chain(parts).chain([*positions]) {
        rt.block_on(sink.apply(written)).unwrap();
    }
    let (rest, parts, _) = step(second_half, total);
    assert!(
        rest.battles
            .iter()
            .any(|c| !matches!(c, battles_dataflow::BattleChange::Created(_))),
        "the second step's rest changes stored battles"
    );
    for part in parts {
        rt.block_on(sink.apply(part)).unwrap();
    }
    drop(sink);
    let stored = scalar(&rt, &db, "SELECT count(*) FROM killmails");
    assert!(stored > (total / 2) as i64 && stored < total as i64);
    assert_eq!(
        scalar(&rt, &db, "SELECT sum(position)::int8 FROM source_offsets"),
        (total / 2) as i64
    );

    replay_to_end(&db, &file);
    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&db, Status::Ignored)),
        "replay after a crash between a step's parts",
    );
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn a_stream_through_kafka_survives_kill_9_and_bad_messages_and_publishes_its_events() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 22, 3);
    let expected = backfilled(&rt, &file);

    // The killmails, with malformed messages among them.
    let mut payloads = lines(&file);
    let good = payloads.len();
    let bad = ["{not json", "{\"killmail_id\": 1}", "[]"];
    for (i, b) in bad.iter().enumerate() {
        payloads.insert(1 + i * (good / 3), (*b).to_owned());
    }
    let cluster = mock_cluster();
    let bootstrap = cluster.bootstrap_servers();
    produce(&bootstrap, &payloads);

    let db = rt.block_on(TestDatabase::create()).unwrap();
    let args = ["--kafka-brokers", bootstrap.as_str(), "--batch", "20"];
    // Killed mid-stream, as hard as it gets.
    let mut first = start_service(&db, &args);
    let deadline = Instant::now() + Duration::from_secs(120);
    while scalar(&rt, &db, "SELECT count(*) FROM killmails") < (good / 3) as i64 {
        assert!(Instant::now() < deadline, "the stream did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let stored = scalar(&rt, &db, "SELECT count(*) FROM killmails");
    assert!(
        stored < good as i64,
        "the kill came after the end ({stored} of {good}): the test did not test a restart"
    );

    // Restarted: it resumes from the offsets committed with the rows; the broker goes away for
    // a while and comes back.
    let second = start_service(&db, &args);
    std::thread::sleep(Duration::from_millis(500));
    cluster.broker_down(1).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    cluster.broker_up(1).unwrap();
    wait_for_offsets(&rt, &db, payloads.len() as i64);
    // The relay publishes what the stream wrote to the outbox.
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(
        &rt,
        &db,
        "SELECT count(*) FROM battle_events_outbox WHERE published_at IS NULL",
    ) > 0
    {
        assert!(
            Instant::now() < deadline,
            "the relay did not publish the outbox"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(stop(second).success(), "SIGTERM stops the service cleanly");

    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&db, Status::Ignored)),
        "kafka stream after kill -9",
    );
    let rejected = rt.block_on(async {
        let client = db.connect().await.unwrap();
        client
            .query(
                "SELECT reason_code, source_topic, source_partition, source_offset
                 FROM rejected_killmails ORDER BY source_partition, source_offset",
                &[],
            )
            .await
            .unwrap()
    });
    assert_eq!(rejected.len(), bad.len(), "each bad message is kept once");
    for row in &rejected {
        assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some(TOPIC));
        assert!(row.get::<_, Option<i32>>(2).is_some());
        assert!(row.get::<_, Option<i64>>(3).is_some());
    }

    // Every battle that exists, and every one that ended in a merge, was announced.
    let events = published_events(&bootstrap);
    let announced: HashSet<String> = events
        .iter()
        .filter(|e| e["eventType"] == "battle.created")
        .map(|e| e["data"]["battleId"].as_str().unwrap().to_owned())
        .collect();
    let deleted: HashSet<String> = events
        .iter()
        .filter(|e| e["eventType"] == "battle.deleted")
        .map(|e| e["data"]["battleId"].as_str().unwrap().to_owned())
        .collect();
    let ids = |sql: &str| -> HashSet<String> {
        rt.block_on(async {
            let client = db.connect().await.unwrap();
            client
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, uuid::Uuid>(0).to_string())
                .collect()
        })
    };
    let battles = ids("SELECT id FROM battles");
    let merged = ids("SELECT ended_battle_id FROM battle_aliases");
    let continuing = ids("SELECT battle_id FROM battle_aliases");
    assert!(
        continuing.is_subset(&battles),
        "aliases point at stored battles"
    );
    assert!(
        battles.is_subset(&announced),
        "every battle has its battle.created"
    );
    assert!(
        merged.is_subset(&deleted),
        "every merged battle has its battle.deleted"
    );
    for e in &events {
        assert!(
            e["eventId"].is_string() && e["timestamp"].is_string(),
            "{e}"
        );
        assert_eq!(e["source"], "battle-service");
    }
    rt.block_on(db.drop_database()).unwrap();
}

/// Produces `payloads` to partition 0 of a control topic.
fn produce_control(bootstrap: &str, topic: &str, payloads: &[&str]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for payload in payloads {
        producer
            .send(
                BaseRecord::<(), str>::to(topic)
                    .partition(0)
                    .payload(payload),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Waits until a job of `job_type` ending on `end_date` has completed.
fn wait_for_job(
    rt: &tokio::runtime::Runtime,
    db: &TestDatabase,
    job_type: &str,
    end_date: chrono::NaiveDate,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let sql = format!(
        "SELECT count(*) FROM clustering_jobs
         WHERE job_type = '{job_type}' AND end_date = '{end_date}' AND status = 'completed'"
    );
    while scalar(rt, db, &sql) < 1 {
        assert!(
            Instant::now() < deadline,
            "the {job_type} job to {end_date} did not complete in 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The time of a killmail line (enriched shape).
fn killmail_time(line: &str) -> chrono::DateTime<chrono::Utc> {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["killmailTime"].as_str().unwrap().parse().unwrap()
}

#[test]
fn jobs_from_the_control_topics_run_beside_the_stream() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 23, 3);
    let expected = backfilled(&rt, &file);

    // Days one and two were written by an older rule; day three arrives on the stream while
    // the service re-clusters the first two with the current rule.
    let all = lines(&file);
    let first_day = all
        .iter()
        .map(|l| killmail_time(l))
        .min()
        .unwrap()
        .date_naive();
    let split = first_day + chrono::Duration::days(2);
    let (old, new): (Vec<String>, Vec<String>) = all
        .iter()
        .cloned()
        .partition(|l| killmail_time(l).date_naive() < split);
    assert!(!old.is_empty() && !new.is_empty());
    let old_file = dir.path().join("old.jsonl");
    std::fs::write(&old_file, old.join("\n")).unwrap();
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(["backfill", "--quiet", "--workers", "1"])
        .arg(&old_file)
        .env("DATABASE_URL", &db.url)
        .env("BATTLES_CLUSTERING_SAME_SYSTEM_SECS", "300")
        .env("BATTLES_CLUSTERING_ADJACENT_SECS", "120")
        .env("BATTLES_CLUSTERING_ADJACENT_ANYONE_SECS", "120")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let older_rule = rt.block_on(common::dump(&db, Status::Ignored));
    assert_ne!(
        older_rule["battles"].len(),
        expected["battles"].len(),
        "the older rule must give other battles, or the test tests nothing"
    );

    let cluster = mock_cluster();
    let bootstrap = cluster.bootstrap_servers();
    produce(&bootstrap, &new);
    let request = format!(
        r#"{{"eventType":"battle.recluster","data":{{"startDate":"{first_day}","endDate":"{}","priority":"high"}}}}"#,
        split - chrono::Duration::days(1)
    );
    produce_control(
        &bootstrap,
        RECLUSTER,
        &[r#"{"startDate":"yesterday"}"#, &request],
    );
    let args = ["--kafka-brokers", bootstrap.as_str(), "--batch", "50"];
    let service = start_service(&db, &args);
    wait_for_offsets(&rt, &db, new.len() as i64);
    wait_for_job(&rt, &db, "reclustering", split - chrono::Duration::days(1));
    assert!(stop(service).success());
    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&db, Status::Ignored)),
        "older battles re-clustered beside the stream",
    );
    assert_eq!(
        scalar(
            &rt,
            &db,
            "SELECT count(*) FROM clustering_jobs WHERE job_type = 'reclustering'"
        ),
        1,
        "the malformed request queued nothing"
    );
    assert_eq!(
        scalar(
            &rt,
            &db,
            &format!(
                "SELECT position FROM source_offsets WHERE source_key = 'kafka:{RECLUSTER}:0'"
            )
        ),
        2,
        "both control messages are consumed"
    );

    // Retention, asked on its topic after a restart (the recluster request is not repeated).
    let cutoff = first_day + chrono::Duration::days(1);
    let before = scalar(
        &rt,
        &db,
        &format!("SELECT count(*) FROM battles WHERE ended_at < '{cutoff}T00:00:00Z'"),
    );
    assert!(before > 0);
    produce_control(
        &bootstrap,
        RETENTION,
        &[&format!(
            r#"{{"eventType":"data.retention_cleanup","data":{{"cutoffDate":"{cutoff}"}}}}"#
        )],
    );
    let service = start_service(&db, &args);
    wait_for_job(&rt, &db, "retention_cleanup", cutoff);
    assert!(stop(service).success());
    assert_eq!(
        scalar(&rt, &db, "SELECT count(*) FROM battles WHERE deleted_at IS NOT NULL AND deletion_reason = 'retention'"),
        before
    );
    assert_eq!(
        scalar(&rt, &db, &format!("SELECT count(*) FROM battles WHERE deleted_at IS NOT NULL AND ended_at >= '{cutoff}T00:00:00Z'")),
        0
    );
    assert_eq!(
        scalar(
            &rt,
            &db,
            "SELECT count(*) FROM clustering_jobs WHERE job_type = 'reclustering'"
        ),
        1
    );
    // The service queued its daily retention run (60 months by default) once, not per start.
    let daily = battles::recluster::retention_cutoff(chrono::Utc::now().date_naive(), 60);
    assert_eq!(
        scalar(
            &rt,
            &db,
            &format!("SELECT count(*) FROM clustering_jobs WHERE job_type = 'retention_cleanup' AND end_date = '{daily}'")
        ),
        1
    );
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn an_engine_of_two_processes_consuming_four_partitions_gives_the_tables_of_one() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 23, 2);
    let expected = backfilled(&rt, &file);
    let payloads = lines(&file);
    let cluster = mock_cluster_with(4);
    let bootstrap = cluster.bootstrap_servers();
    produce_over(&bootstrap, &payloads, 4);

    // The service is process 0 of the engine; `engine-peer` is process 1 (one worker each).
    let addresses = format!("127.0.0.1:{},127.0.0.1:{}", free_port(), free_port());
    let mut peer = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(["engine-peer", "--cluster", &addresses, "--process", "1"])
        .args(["--workers", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let service = start_service(
        &db,
        &[
            "--kafka-brokers",
            bootstrap.as_str(),
            "--batch",
            "40",
            "--cluster",
            &addresses,
        ],
    );
    wait_for_offsets(&rt, &db, payloads.len() as i64);
    assert!(stop(service).success(), "the service stops cleanly");
    assert!(
        peer.wait().unwrap().success(),
        "the peer stops with the service"
    );
    let partitions = scalar(
        &rt,
        &db,
        &format!("SELECT count(*) FROM source_offsets WHERE source_key LIKE 'kafka:{TOPIC}:%'"),
    );
    assert_eq!(partitions, 4, "every partition was consumed");
    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&db, Status::Ignored)),
        "a stream clustered by two processes",
    );
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn a_signal_while_the_service_starts_stops_it_cleanly() {
    let rt = runtime();
    let db = rt.block_on(TestDatabase::create()).unwrap();
    // No broker listens there: the service holds the writer lock, then waits up to 10 s for
    // the topic's metadata.
    let brokers = format!("127.0.0.1:{}", free_port());
    let mut service = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(["run", "--listen", "127.0.0.1:0", "--workers", "1"])
        .env("DATABASE_URL", &db.url)
        .env("BATTLES_KAFKA_BROKERS", &brokers)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(
        &rt,
        &db,
        // This database's lock only: tests running beside this one hold their own.
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ) == 0
    {
        assert!(
            service.try_wait().unwrap().is_none(),
            "the service exited before taking the writer lock"
        );
        assert!(
            Instant::now() < deadline,
            "the service never took the writer lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    let status = stop(service);
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "a signal while starting must stop the service cleanly, not kill it: {status:?}"
    );
    // The metadata wait had about 10 s to go: a service that finished it first took that long.
    assert!(
        took < Duration::from_secs(7),
        "the signal must not wait for the brokers' metadata: the service took {took:?} to stop"
    );
    rt.block_on(db.drop_database()).unwrap();
}

//! An engine spread over real processes (`battles engine-peer`), as a user would start them:
//! processes that disagree on their worker count are refused on both sides with a message
//! naming both counts, and a peer killed mid-run (kill -9) turns the driver's next step into
//! an error instead of a panic or a wait without end.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use battles::generate::{generate_all, GeneratorConfig};
use battles_dataflow::{Cluster, Engine, EngineConfig, EngineError, Killmail};
use common::free_port;

fn addresses() -> Vec<String> {
    (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect()
}

fn peer(addresses: &[String], workers: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_battles"))
        .args([
            "engine-peer",
            "--cluster",
            &addresses.join(","),
            "--process",
            "1",
        ])
        .args(["--workers", &workers.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start battles engine-peer")
}

fn driver_config(addresses: &[String], workers: usize) -> EngineConfig {
    EngineConfig {
        workers,
        cluster: Some(Cluster {
            addresses: addresses.to_vec(),
            process: 0,
        }),
        cluster_timeout_secs: 30,
        ..EngineConfig::default()
    }
}

fn killmails() -> Vec<Killmail> {
    generate_all(GeneratorConfig {
        seed: 3,
        days: 1,
        scale: 0.5,
        ..GeneratorConfig::default()
    })
    .killmails
}

#[test]
fn processes_with_different_worker_counts_are_refused_naming_both() {
    let addresses = addresses();
    let child = peer(&addresses, 1);
    let err = match Engine::start(driver_config(&addresses, 2)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a 2-worker driver and a 1-worker peer must not start"),
    };
    assert!(
        err.contains("runs 1 workers") && err.contains("process 0 runs 2"),
        "{err}"
    );
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the peer exits with an error");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("runs 1 workers") && said.contains("process 0 runs 2"),
        "{said}"
    );
}

#[test]
fn a_peer_killed_mid_run_is_an_error_for_the_driver() {
    let addresses = addresses();
    let mut child = peer(&addresses, 1);
    let kms = killmails();
    let (first, rest) = kms.split_at(kms.len() / 2);
    let mut engine = Engine::start(driver_config(&addresses, 1)).expect("the cluster starts");
    engine
        .insert(first.iter().cloned())
        .expect("a step with both processes alive");
    child.kill().unwrap();
    child.wait().unwrap();
    // The step runs on a thread so that a hang fails the test instead of stalling it.
    let rest = rest.to_vec();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = engine.insert(rest).map(|_| ());
        let _ = tx.send(result);
        drop(engine);
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Err(EngineError::WorkerFailed(reason))) => {
            assert!(!reason.is_empty());
        }
        Ok(other) => panic!("expected a worker failure, got {other:?}"),
        Err(_) => panic!("the driver waited for the lost peer for 120 s"),
    }
}

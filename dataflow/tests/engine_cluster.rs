//! Several processes through timely's cluster configuration: process 0 drives the engine,
//! process 1 takes its share of the graph over TCP, and the battles are those of one worker.
//! Both "processes" run in this test process, connected through localhost sockets exactly as
//! two programs would be.

mod common;

use battles_dataflow::{reference, run_cluster_peer, Cluster, Engine, EngineConfig};
use common::{random_history, Replica};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cluster_config(addresses: &[String], process: usize) -> EngineConfig {
    EngineConfig {
        workers: 2,
        cluster: Some(Cluster {
            addresses: addresses.to_vec(),
            process,
        }),
        ..EngineConfig::default()
    }
}

#[test]
fn two_processes_give_the_battles_of_one_worker() {
    let addresses: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let peer_config = cluster_config(&addresses, 1);
    let peer = std::thread::spawn(move || run_cluster_peer(peer_config));
    let mut engine = Engine::start(cluster_config(&addresses, 0)).unwrap();

    let kms = random_history(21, 500);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut replica = Replica::default();
    let mut rest = &kms[..];
    while !rest.is_empty() {
        let take = rng.random_range(1..=rest.len().min(80));
        let (batch, tail) = rest.split_at(take);
        replica.apply(&engine.insert(batch.iter().cloned()).unwrap());
        rest = tail;
    }
    let expected = reference::battles(&kms, &EngineConfig::default());
    assert_eq!(replica.sorted(), expected);

    // Retractions travel the same way.
    replica.apply(&engine.retract(kms[..100].iter().cloned()).unwrap());
    assert_eq!(
        replica.sorted(),
        reference::battles(&kms[100..], &EngineConfig::default())
    );

    drop(engine);
    peer.join().unwrap().unwrap();
}

#[test]
fn the_driver_must_be_process_0() {
    let addresses = vec!["127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()];
    assert!(Engine::start(cluster_config(&addresses, 1)).is_err());
    assert!(run_cluster_peer(cluster_config(&addresses, 0)).is_err());
}

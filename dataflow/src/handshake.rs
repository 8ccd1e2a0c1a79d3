//! Before timely connects the processes of one engine, they agree on its shape: every process
//! runs the same number of workers over the same number of processes. Timely itself cannot
//! check this (a mismatch panics inside its TCP receiver and leaves the others waiting for
//! ever), so process 0 listens on its cluster address first, each other process says
//! `battles-engine 1 process P of N workers W`, and process 0 answers every one `ok` once all
//! have spoken, or refuses with a message naming both counts. Only then does timely bind the
//! same address. Both sides give up after a timeout instead of waiting without end.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::Cluster;

/// Why the processes of an engine did not agree.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("cluster address {address}: {source}")]
    Address {
        address: String,
        source: std::io::Error,
    },
    #[error("process {process} of the engine cluster runs {theirs} workers, but process 0 runs {ours}: start every process with the same --workers")]
    WorkerMismatch {
        process: usize,
        theirs: usize,
        ours: usize,
    },
    #[error("process {process} of the engine cluster was started with {theirs} processes in --cluster, but process 0 has {ours}")]
    ClusterMismatch {
        process: usize,
        theirs: usize,
        ours: usize,
    },
    #[error("engine cluster refused this process: {0}")]
    Refused(String),
    #[error("engine cluster: no answer within {waited:?} ({detail})")]
    Timeout { waited: Duration, detail: String },
    #[error("engine cluster handshake: {0}")]
    Protocol(String),
}

const GREETING: &str = "battles-engine 1";

/// Agrees with the other processes of `cluster` that every one runs `workers` workers, or
/// fails within `timeout`.
pub fn agree(cluster: &Cluster, workers: usize, timeout: Duration) -> Result<(), HandshakeError> {
    if cluster.addresses.len() <= 1 {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    if cluster.process == 0 {
        lead(cluster, workers, deadline, timeout)
    } else {
        follow(cluster, workers, deadline, timeout)
    }
}

struct Hello {
    process: usize,
    processes: usize,
    workers: usize,
}

fn parse_hello(line: &str) -> Option<Hello> {
    let rest = line.trim().strip_prefix(GREETING)?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words[..] {
        ["process", p, "of", n, "workers", w] => Some(Hello {
            process: p.parse().ok()?,
            processes: n.parse().ok()?,
            workers: w.parse().ok()?,
        }),
        _ => None,
    }
}

/// Process 0: waits for every other process's hello, then answers all of them.
fn lead(
    cluster: &Cluster,
    workers: usize,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), HandshakeError> {
    let address = &cluster.addresses[0];
    let address_error = |source| HandshakeError::Address {
        address: address.clone(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(address_error)?;
    listener.set_nonblocking(true).map_err(address_error)?;
    let expected = cluster.addresses.len() - 1;
    let mut peers: Vec<(usize, TcpStream)> = Vec::new();
    let mut problem: Option<HandshakeError> = None;
    while peers.len() < expected && problem.is_none() {
        if Instant::now() >= deadline {
            let mut missing: Vec<usize> = (1..=expected).collect();
            missing.retain(|p| peers.iter().all(|(q, _)| q != p));
            return Err(HandshakeError::Timeout {
                waited: timeout,
                detail: format!("processes {missing:?} did not connect"),
            });
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(address_error(e)),
        };
        stream.set_nonblocking(false).map_err(address_error)?;
        stream
            .set_read_timeout(Some(remaining(deadline)))
            .map_err(address_error)?;
        let mut line = String::new();
        // A connection that says nothing or something else is not one of ours: skip it.
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let Some(hello) = parse_hello(&line) else {
            continue;
        };
        if hello.workers != workers {
            problem = Some(HandshakeError::WorkerMismatch {
                process: hello.process,
                theirs: hello.workers,
                ours: workers,
            });
        } else if hello.processes != cluster.addresses.len() {
            problem = Some(HandshakeError::ClusterMismatch {
                process: hello.process,
                theirs: hello.processes,
                ours: cluster.addresses.len(),
            });
        }
        if peers.iter().all(|(p, _)| *p != hello.process) {
            peers.push((hello.process, stream));
        }
    }
    // Close the listener before answering, so a peer's timely connection cannot reach it.
    drop(listener);
    let answer = match &problem {
        Some(e) => format!("refused: {e}\n"),
        None => "ok\n".to_owned(),
    };
    for (_, mut stream) in peers {
        let _ = stream.write_all(answer.as_bytes());
    }
    match problem {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A process other than 0: says hello to process 0 and waits for its answer.
fn follow(
    cluster: &Cluster,
    workers: usize,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), HandshakeError> {
    let address = &cluster.addresses[0];
    let target = address
        .to_socket_addrs()
        .map_err(|source| HandshakeError::Address {
            address: address.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| HandshakeError::Protocol(format!("{address} resolves to nothing")))?;
    let stream = loop {
        match TcpStream::connect_timeout(&target, remaining(deadline).max(Duration::from_millis(1)))
        {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                return Err(HandshakeError::Timeout {
                    waited: timeout,
                    detail: format!("process 0 at {address} did not answer: {e}"),
                })
            }
        }
    };
    let io = |e: std::io::Error| HandshakeError::Protocol(e.to_string());
    let hello = format!(
        "{GREETING} process {} of {} workers {workers}\n",
        cluster.process,
        cluster.addresses.len()
    );
    (&stream).write_all(hello.as_bytes()).map_err(io)?;
    stream
        .set_read_timeout(Some(remaining(deadline).max(Duration::from_millis(1))))
        .map_err(io)?;
    let mut line = String::new();
    match BufReader::new(&stream).read_line(&mut line) {
        Ok(_) if line.trim() == "ok" => Ok(()),
        Ok(0) => Err(HandshakeError::Protocol(
            "process 0 closed the connection without an answer".into(),
        )),
        Ok(_) => Err(HandshakeError::Refused(
            line.trim().trim_start_matches("refused: ").to_owned(),
        )),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(HandshakeError::Timeout {
                waited: timeout,
                detail: "process 0 did not answer: are all processes of --cluster started?".into(),
            })
        }
        Err(e) => Err(io(e)),
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(n: usize, process: usize, port: u16) -> Cluster {
        let mut addresses = vec![format!("127.0.0.1:{port}")];
        addresses.extend((1..n).map(|i| format!("127.0.0.1:{}", port + i as u16)));
        Cluster { addresses, process }
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn equal_worker_counts_agree() {
        let port = free_port();
        let peer =
            std::thread::spawn(move || agree(&cluster(2, 1, port), 2, Duration::from_secs(10)));
        agree(&cluster(2, 0, port), 2, Duration::from_secs(10)).unwrap();
        peer.join().unwrap().unwrap();
    }

    #[test]
    fn a_worker_mismatch_is_refused_on_both_sides_naming_both_counts() {
        let port = free_port();
        let peer =
            std::thread::spawn(move || agree(&cluster(2, 1, port), 1, Duration::from_secs(10)));
        let lead = agree(&cluster(2, 0, port), 2, Duration::from_secs(10)).unwrap_err();
        let follow = peer.join().unwrap().unwrap_err();
        for message in [lead.to_string(), follow.to_string()] {
            assert!(message.contains("runs 1 workers"), "{message}");
            assert!(message.contains("process 0 runs 2"), "{message}");
        }
    }

    #[test]
    fn a_missing_peer_times_out() {
        let port = free_port();
        let e = agree(&cluster(2, 0, port), 1, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, HandshakeError::Timeout { .. }), "{e}");
        let e = agree(&cluster(2, 1, free_port()), 1, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, HandshakeError::Timeout { .. }), "{e}");
    }
}

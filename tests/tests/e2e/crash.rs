//! Crash test for the custody log: kill -9 the writer at random moments, restart, and check
//! that no acknowledged event was lost, nothing was appended twice, and the log verifies.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::bins;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A small deterministic generator (no extra dependency; the seed is printed on failure).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn kill_during_appends_loses_no_acknowledged_event() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut rng = Lcg(seed);
    let tmp = tempfile::tempdir().unwrap();
    let writer = bins::bin("custody-writer");
    // key number → seq, from every acknowledgement of every run.
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    let total = 4000u64;
    let mut next = 0u64;
    let mut kills = 0;
    for round in 0..8 {
        // Restart a little before the last acknowledged key: those appends are replays and
        // must be idempotent.
        let first = next.saturating_sub(rng.next() % 20);
        let threads = 1 + rng.next() % 3;
        let mut child = Command::new(&writer)
            .arg(tmp.path())
            .arg(first.to_string())
            .arg((total - first).to_string())
            .arg(threads.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_millis(30 + rng.next() % 250);
        let kill = round < 7;
        let mut finished = false;
        loop {
            let wait = if kill {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::from_secs(60)
            };
            match rx.recv_timeout(wait) {
                Ok(line) => {
                    let mut parts = line.split_whitespace();
                    assert_eq!(parts.next(), Some("ack"), "{line}");
                    let seq: u64 = parts.next().unwrap().parse().unwrap();
                    let key = parts.next().unwrap();
                    let n: u64 = key.strip_prefix("assign/").unwrap().parse().unwrap();
                    if let Some(prev) = acked.insert(n, seq) {
                        assert_eq!(prev, seq, "key {n} acknowledged at two positions");
                    }
                    next = next.max(n + 1);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    finished = true;
                    break;
                }
            }
        }
        if kill && !finished {
            // SIGKILL: no destructors, no flush — as a power cut looks to the process.
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        // Drain acknowledgements printed before the kill.
        for line in rx.try_iter() {
            let mut parts = line.split_whitespace();
            parts.next();
            let seq: u64 = parts.next().unwrap().parse().unwrap();
            let n: u64 = parts
                .next()
                .unwrap()
                .strip_prefix("assign/")
                .unwrap()
                .parse()
                .unwrap();
            acked.insert(n, seq);
            next = next.max(n + 1);
        }
        reader.join().unwrap();
    }
    assert!(
        kills >= 3,
        "the writer finished too fast to be killed mid-run"
    );
    assert!(acked.len() as u64 >= total / 2, "only {} acks", acked.len());

    // Every acknowledged event is in the log at the position acknowledged; no key twice.
    let log_dir = tmp.path().join("log");
    let events = std::fs::read_to_string(log_dir.join("events.jsonl")).unwrap();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for (i, line) in events.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seq"], i as u64);
        let key = v["key"].as_str().unwrap().to_string();
        assert!(seen.insert(key.clone(), i as u64).is_none(), "{key} twice");
    }
    for (n, seq) in &acked {
        assert_eq!(
            seen.get(&format!("assign/{n}")),
            Some(seq),
            "acknowledged key {n} lost or moved"
        );
    }

    // And the whole log verifies with the stand-alone verifier.
    bins::verify_unpinned(&log_dir);
}

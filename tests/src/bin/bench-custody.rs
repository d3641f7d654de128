//! Custody-log benchmarks (docs/benchmarks.md): appends per second with and without fsync
//! batching, and proof generation/verification at one million entries.
//!
//! usage: bench-custody <scratch dir on the disk to measure> [entries for proofs, default 1000000]
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use evidock_store::clock::SystemClock;
use evidock_store::key::StationKey;
use evidock_store::log::{CustodyLog, SharedLog};
use evidock_verify::event::payload::CameraAssignedPayload;
use evidock_verify::event::{Actor, NewEvent, Role, Subject, Timestamp};
use evidock_verify::id::{DeviceSerial, OfficerId, StationId};
use evidock_verify::merkle::{self, MemoryTree};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn event(i: u64) -> NewEvent {
    let dev = DeviceSerial::new(format!("CAM{i:07}")).unwrap();
    NewEvent::new(
        Actor {
            role: Role::Admin,
            id: "bench".into(),
        },
        Subject::Device(dev.clone()),
        format!("assign/{i}"),
        &CameraAssignedPayload {
            device: dev,
            officer: OfficerId::new("350201").unwrap(),
            from: Timestamp::now(),
        },
    )
    .unwrap()
}

fn open(dir: &Path) -> CustodyLog {
    let st = StationId::new("bench").unwrap();
    let (key, _) = StationKey::load_or_create(&dir.join("station.key"), None, &st).unwrap();
    CustodyLog::open(
        &dir.join("log"),
        Arc::new(key),
        Arc::new(SystemClock::default()),
    )
    .unwrap()
    .0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scratch = Path::new(&args[1]);
    let proof_n: u64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(1_000_000);

    // 1. One fsync per append, one thread.
    let d = tempfile::tempdir_in(scratch).unwrap();
    let mut log = open(d.path());
    let n = 2000u64;
    let t = Instant::now();
    for i in 0..n {
        log.append(event(i)).unwrap();
    }
    let single = n as f64 / t.elapsed().as_secs_f64();
    println!("append, 1 thread, fsync each:          {single:>10.0} events/s");

    // 2. Batches of 100 events per fsync.
    let t = Instant::now();
    for b in 0..100u64 {
        log.append_batch((0..100).map(|i| event(n + b * 100 + i)).collect())
            .unwrap();
    }
    let batched = 10_000.0 / t.elapsed().as_secs_f64();
    println!("append, batches of 100 per fsync:      {batched:>10.0} events/s");
    drop(log);

    // 3. Group commit: 8 threads appending concurrently share fsyncs.
    let d = tempfile::tempdir_in(scratch).unwrap();
    let shared = SharedLog::new(open(d.path()));
    let per = 1000u64;
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..8u64 {
            let shared = shared.clone();
            s.spawn(move || {
                for i in 0..per {
                    shared.append(event(th * per + i)).unwrap();
                }
            });
        }
    });
    let group = (8 * per) as f64 / t.elapsed().as_secs_f64();
    println!("append, 8 threads, group commit:       {group:>10.0} events/s");

    // 4. Proofs at `proof_n` entries.
    let t = Instant::now();
    let mut tree = MemoryTree::new();
    for i in 0..proof_n {
        tree.push_entry(&i.to_le_bytes());
    }
    println!(
        "build tree of {proof_n} leaves:           {:>10.3} s",
        t.elapsed().as_secs_f64()
    );
    let size = tree.size();
    let root = tree.root();
    let k = 20_000u64;
    let idx: Vec<u64> = (0..k).map(|i| (i * 7_919_993) % size).collect();
    let t = Instant::now();
    let proofs: Vec<_> = idx
        .iter()
        .map(|&i| tree.inclusion_proof(i, size).unwrap())
        .collect();
    let gen_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;
    let t = Instant::now();
    for (i, p) in idx.iter().zip(&proofs) {
        merkle::verify_inclusion(&tree.leaf(*i).unwrap(), *i, size, p, &root).unwrap();
    }
    let ver_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;
    println!(
        "inclusion proof at {size}: generate {gen_us:.2} µs, verify {ver_us:.2} µs ({} hashes)",
        proofs[0].len()
    );
    let t = Instant::now();
    let cps: Vec<_> = idx
        .iter()
        .map(|&i| (i.max(1), tree.consistency_proof(i.max(1), size).unwrap()))
        .collect();
    let cgen_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;
    let t = Instant::now();
    for (old, p) in &cps {
        let old_root = tree.root_at(*old).unwrap();
        merkle::verify_consistency(*old, size, p, &old_root, &root).unwrap();
    }
    let cver_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;
    println!(
        "consistency proof to {size}: generate {cgen_us:.2} µs, verify (incl. old root) {cver_us:.2} µs"
    );
}

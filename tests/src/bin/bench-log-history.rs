//! A custody log with a long history against one with a short one (docs/benchmarks.md):
//! opening it (time and peak memory, in a fresh process), appending an event, proving inclusion
//! and consistency, at `small` and at `large` events. Both logs are written through the real
//! log and its index, in batches, with a checkpoint every 100,000 events and 50 events after
//! the last one (what an open re-reads).
//!
//! usage: bench-log-history <scratch dir> [large, default 2000000] [small, default 200]
//!        bench-log-history --open <log dir>   (one open, in this process: prints ms and KiB)
//!        bench-log-history --fill <station data dir> <station id> <events>
//!                                             (a station's own log grown to <events>, sealed)
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use evidock_store::clock::SystemClock;
use evidock_store::key::StationKey;
use evidock_store::log::CustodyLog;
use evidock_verify::event::payload::CameraAssignedPayload;
use evidock_verify::event::{Actor, NewEvent, Role, Subject, Timestamp};
use evidock_verify::id::{DeviceSerial, OfficerId, StationId};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn event(i: u64) -> NewEvent {
    let dev = DeviceSerial::new(format!("CAM{:05}", i % 44)).unwrap();
    NewEvent::new(
        Actor {
            role: Role::Admin,
            id: "bench".into(),
        },
        Subject::Device(dev.clone()),
        format!("assign/{i}"),
        &CameraAssignedPayload {
            device: dev,
            officer: OfficerId::new(format!("35{:04}", i % 9973)).unwrap(),
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

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Write `n` events (a checkpoint each 100,000 and after all but the last 50).
fn build(dir: &Path, n: u64) {
    let mut log = open(dir);
    let sealed = n.saturating_sub(50);
    let mut i = 0;
    while i < n {
        let next_checkpoint = (i / 100_000 + 1) * 100_000;
        let end = (i + 8192)
            .min(n)
            .min(next_checkpoint)
            .min(if i < sealed { sealed } else { n });
        log.append_batch((i..end).map(event).collect()).unwrap();
        i = end;
        if i.is_multiple_of(100_000) || i == sealed {
            log.checkpoint().unwrap();
        }
    }
}

struct Figures {
    open_ms: f64,
    open_kib: u64,
    append_us: f64,
    batch_us: f64,
    inclusion_us: f64,
    consistency_us: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn measure(dir: &Path, next: u64) -> Figures {
    // Opening, in fresh processes: the page cache warm, as on a station that opened it before.
    let mut opens = Vec::new();
    let mut kib = 0;
    for _ in 0..7 {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--open")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (ms, k) = text.trim().split_once(' ').unwrap();
        opens.push(ms.parse::<f64>().unwrap());
        kib = kib.max(k.parse::<u64>().unwrap());
    }
    let mut log = open(dir);
    let size = log.size();
    // One event, one fsync, as a command appends it.
    let mut appends = Vec::new();
    for i in 0..100 {
        let t = Instant::now();
        log.append(event(next + i)).unwrap();
        appends.push(t.elapsed().as_secs_f64() * 1e6);
    }
    // Events in batches: the cost of the log and its index without the fsync.
    let t = Instant::now();
    let batch = 20_000u64;
    for b in 0..batch / 1000 {
        let from = next + 100 + b * 1000;
        log.append_batch((from..from + 1000).map(event).collect())
            .unwrap();
    }
    let batch_us = t.elapsed().as_secs_f64() * 1e6 / batch as f64;
    log.checkpoint().unwrap();
    let size_now = log.size();
    let ix = log.index();
    let proofs = 2000u64;
    let t = Instant::now();
    for k in 0..proofs {
        let index = (k * 7919) % size;
        ix.inclusion_proof(index, size_now).unwrap();
    }
    let inclusion_us = t.elapsed().as_secs_f64() * 1e6 / proofs as f64;
    let t = Instant::now();
    for k in 0..proofs {
        let old = 1 + (k * 7919) % size;
        ix.consistency_proof(old, size_now).unwrap();
    }
    let consistency_us = t.elapsed().as_secs_f64() * 1e6 / proofs as f64;
    Figures {
        open_ms: median(opens),
        open_kib: kib,
        append_us: median(appends),
        batch_us,
        inclusion_us,
        consistency_us,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--open") {
        let dir = Path::new(&args[2]);
        let t = Instant::now();
        let log = open(dir);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(log.size() > 0);
        println!("{ms:.2} {}", peak_rss_kib());
        return;
    }
    if args.get(1).map(String::as_str) == Some("--fill") {
        let data = Path::new(&args[2]);
        let st = StationId::new(args[3].clone()).unwrap();
        let n: u64 = args[4].parse().unwrap();
        let (key, created) =
            StationKey::load_or_create(&data.join("station.key"), Some(&st), &st).unwrap();
        assert!(!created, "no station in {}", data.display());
        let (mut log, _) = CustodyLog::open(
            &data.join("custody").join(st.as_str()),
            Arc::new(key),
            Arc::new(SystemClock::default()),
        )
        .unwrap();
        let mut i = log.size();
        while i < n {
            let end = (i + 8192).min(n);
            log.append_batch((i..end).map(event).collect()).unwrap();
            i = end;
        }
        log.checkpoint().unwrap();
        return;
    }
    let scratch = Path::new(&args[1]);
    let large: u64 = args.get(2).map_or(2_000_000, |s| s.parse().unwrap());
    let small: u64 = args.get(3).map_or(200, |s| s.parse().unwrap());
    let mut rows = Vec::new();
    for n in [small, large] {
        let d = tempfile::tempdir_in(scratch).unwrap();
        let t = Instant::now();
        build(d.path(), n);
        let built = t.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(d.path().join("log/events.jsonl"))
            .unwrap()
            .len();
        let index = std::fs::metadata(d.path().join("log/.index.sqlite"))
            .unwrap()
            .len();
        println!(
            "built {n} events in {built:.1} s ({:.1} µs/event): events.jsonl {} MB, index {} MB",
            built * 1e6 / n as f64,
            bytes / 1_000_000,
            index / 1_000_000
        );
        rows.push((n, measure(d.path(), n)));
    }
    println!(
        "| events | open | open peak RSS | append (fsync) | append (batched) | inclusion proof | consistency proof |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (n, f) in &rows {
        println!(
            "| {n} | {:.1} ms | {:.1} MiB | {:.0} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
            f.open_ms,
            f.open_kib as f64 / 1024.0,
            f.append_us,
            f.batch_us,
            f.inclusion_us,
            f.consistency_us
        );
    }
    let (s, l) = (&rows[0].1, &rows[1].1);
    println!(
        "large/small: open {:.2}× (+{:.1} ms), append {:.2}×, batched append {:.2}×, inclusion {:.2}×, consistency {:.2}×",
        l.open_ms / s.open_ms,
        l.open_ms - s.open_ms,
        l.append_us / s.append_us,
        l.batch_us / s.batch_us,
        l.inclusion_us / s.inclusion_us,
        l.consistency_us / s.consistency_us
    );
}

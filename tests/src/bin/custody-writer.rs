//! A custody-log writer for the crash test: appends events as fast as it can and prints
//! `ack <seq> <key>` after each append returns (i.e. after it is durable). The test kills it
//! with SIGKILL at random moments and checks that every acknowledged event survived.
//!
//! usage: custody-writer <data dir> <first key number> <count> [threads]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use evidock_store::clock::SystemClock;
use evidock_store::key::StationKey;
use evidock_store::log::{CustodyLog, SharedLog};
use evidock_verify::event::payload::CameraAssignedPayload;
use evidock_verify::event::{Actor, NewEvent, Role, Subject, Timestamp};
use evidock_verify::id::{DeviceSerial, OfficerId, StationId};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(&args[1]);
    let first: u64 = args[2].parse().unwrap();
    let count: u64 = args[3].parse().unwrap();
    let threads: u64 = args.get(4).map(|t| t.parse().unwrap()).unwrap_or(1);
    let st = StationId::new("crash-test").unwrap();
    let (key, _) = StationKey::load_or_create(&dir.join("station.key"), None, &st).unwrap();
    let (log, report) = CustodyLog::open(
        &dir.join("log"),
        Arc::new(key),
        Arc::new(SystemClock::default()),
    )
    .unwrap();
    if let Some((bytes, _)) = report.repaired {
        eprintln!("repaired a torn tail of {bytes} bytes");
    }
    let log = SharedLog::new(log);
    std::thread::scope(|s| {
        for t in 0..threads {
            let log = log.clone();
            s.spawn(move || {
                let mut i = first + t;
                while i < first + count {
                    let dev = DeviceSerial::new(format!("CAM{i:06}")).unwrap();
                    let key = format!("assign/{i}");
                    let ev = NewEvent::new(
                        Actor {
                            role: Role::Admin,
                            id: "crash-test".into(),
                        },
                        Subject::Device(dev.clone()),
                        key.clone(),
                        &CameraAssignedPayload {
                            device: dev,
                            officer: OfficerId::new(format!("{:06}", i % 1000)).unwrap(),
                            // Deterministic, so a replay of the same key is the same event.
                            from: Timestamp::from_datetime(
                                chrono::DateTime::from_timestamp(1_700_000_000 + i as i64, 0)
                                    .unwrap(),
                            ),
                        },
                    )
                    .unwrap();
                    let a = log.append(ev).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {} {key}", a.event.seq).unwrap();
                    out.flush().unwrap();
                    if i.is_multiple_of(50) {
                        log.with(|l| l.checkpoint()).unwrap();
                    }
                    i += threads;
                }
            });
        }
    });
    // Seal everything written, so the final log is fully covered by a checkpoint.
    log.with(|l| l.checkpoint()).unwrap();
}

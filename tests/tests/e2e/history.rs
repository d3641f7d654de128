//! A long history through the binary: `log show` streams with its filters, and the log's index
//! — what lets a station open without reading its history — is rebuilt when it is missing and
//! checked in full by `log verify`, which rebuilds a damaged one and says so.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::station::{self, TestStation};
use serde_json::Value;

fn station_with_files(n: u32) -> TestStation {
    let st = TestStation::new();
    let fw = station::firmware("ZFY0701", "350701");
    let files = station::recordings(&fw, n, 4096, 7);
    let card = station::camera(st.dir.path(), fw, files);
    let out = st.json(&[
        "ingest",
        card.to_str().unwrap(),
        "--no-transcode",
        "--no-upload",
    ]);
    assert_eq!(out["outcome"], "released", "{out}");
    st
}

fn seqs(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn log_show_filters_by_kind_time_and_count() {
    let st = station_with_files(3);
    let all = st.events();
    assert!(all.len() > 6, "{all:?}");
    let acquired: Vec<u64> = all
        .iter()
        .filter(|e| e["kind"] == "acquired")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(acquired.len() >= 3, "{acquired:?}");
    assert_eq!(
        seqs(&st.json(&["log", "show", "--kind", "acquired"])),
        acquired
    );
    assert_eq!(
        seqs(&st.json(&["log", "show", "--kind", "acquired", "--limit", "2"])),
        acquired[..2]
    );
    let both = seqs(&st.json(&["log", "show", "--kind", "acquired", "--kind", "docked"]));
    assert_eq!(both.len(), acquired.len() + 1, "{both:?}");
    // From the time of the second acquisition on: the events at or after it.
    let second = all.iter().find(|e| e["seq"] == acquired[1]).unwrap();
    let t = second["time"].as_str().unwrap();
    let since: Vec<u64> = all
        .iter()
        .filter(|e| e["time"].as_str().unwrap() >= t)
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs(&st.json(&["log", "show", "--since", t])), since);
    assert!(seqs(&st.json(&["log", "show", "--since", "2999-01-01"])).is_empty());
    assert_eq!(
        seqs(&st.json(&["log", "show", "--since", "2000-01-01"])).len(),
        all.len()
    );
    // The text form lists what the JSON does.
    let text = st.run(&["log", "show", "--kind", "acquired"]);
    assert_eq!(
        text.stdout.lines().count(),
        acquired.len(),
        "{}",
        text.stdout
    );
    for bad in [&["--kind", "acquird"][..], &["--since", "yesterday"]] {
        let ran = st.run(&[&["log", "show"][..], bad].concat());
        assert_eq!(ran.code, 2, "{bad:?}: {}", ran.stderr);
    }
}

#[test]
fn the_index_is_rebuilt_when_missing_and_checked_in_full_by_log_verify() {
    let st = station_with_files(2);
    let log = st.log_dir();
    let index = log.join(".index.sqlite");
    assert!(index.exists());
    let before = st.events();
    let show = st.json(&["station", "show"]);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", index.display()));
    }
    // Missing: built again from events.jsonl by whatever opens the station next.
    assert_eq!(st.json(&["station", "show"]), show);
    assert!(index.exists());
    assert_eq!(st.events(), before);

    // A subtree hash that opening does not read (not on the edge of the last checkpoint) but
    // an inclusion proof would: `log verify` finds it, rebuilds and says so.
    let db = rusqlite::Connection::open(&index).unwrap();
    let damaged = db
        .execute(
            "UPDATE nodes SET hash = zeroblob(32) WHERE level = 1 AND idx = 0",
            [],
        )
        .unwrap();
    assert_eq!(damaged, 1);
    drop(db);
    let ran = st.run(&["log", "verify"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("rebuilt from the file"),
        "{}",
        ran.stderr
    );
    let kept: Vec<_> = std::fs::read_dir(log.join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("index-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let again = st.run(&["log", "verify"]);
    assert!(!again.stderr.contains("rebuilt"), "{}", again.stderr);
}

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

/// Every page of a list, `n` at a time, each after the last one printed.
fn paged(st: &TestStation, args: &[&str], id: &str, n: usize) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        let limit = n.to_string();
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--json", "--limit", &limit]);
        let last = out.last().map(|v| v[id].as_str().unwrap().to_string());
        if let Some(l) = &last {
            a.extend(["--after", l]);
        }
        let ran = st.run(&a);
        assert_eq!(ran.code, 0, "{a:?}: {}", ran.stderr);
        let page = ran.json();
        let page = page.as_array().unwrap();
        assert!(page.len() <= n, "{a:?}: {} rows", page.len());
        if page.is_empty() {
            return out;
        }
        out.extend(page.iter().cloned());
    }
}

#[test]
fn lists_page_in_their_order_and_every_row_comes_once() {
    let st = TestStation::new();
    let fw = station::firmware("ZFY0702", "350702");
    // Eight items a docking: the seven recordings and the file the simulated camera adds.
    let files = station::recordings(&fw, 7, 4096, 9);
    let card = station::camera(st.dir.path(), fw, files);
    for extra in [None, Some("--full"), Some("--full")] {
        let mut a = vec![
            "ingest",
            card.to_str().unwrap(),
            "--no-transcode",
            "--no-upload",
        ];
        a.extend(extra);
        assert_eq!(st.json(&a)["outcome"], "released");
    }
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/case-register.csv");
    st.json(&[
        "case",
        "import",
        "--by",
        "admin01",
        sample.to_str().unwrap(),
    ]);

    for (args, id, n) in [
        (vec!["evidence", "list"], "id", 24),
        (vec!["sessions"], "id", 3),
        (vec!["case", "list"], "case", 3),
    ] {
        let all = st.json(&args);
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), n, "{args:?}");
        for page in [1, 2, n - 1, n, n + 5] {
            assert_eq!(&paged(&st, &args, id, page), all, "{args:?} by {page}");
        }
        // A typo in --after is refused, not taken for the end of the list.
        let mut bad = args.clone();
        bad.extend(["--after", "no-such-row", "--limit", "1"]);
        let ran = st.run(&bad);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stdout);
        assert!(ran.stderr.contains("no-such-row"), "{}", ran.stderr);
    }
    // Text pages too: the first two items, one line each.
    let ran = st.run(&["evidence", "list", "--limit", "2"]);
    assert_eq!(ran.stdout.lines().count(), 2, "{}", ran.stdout);
}

//! Small files share their fsyncs: the checker commits the files the copier finished meanwhile
//! as one group (spool links, journal rows, custody events), and a file's `copying` row waits
//! for the journal's next durable commit. Counted from the real binary with `strace -y` (each
//! fsync with the file it syncs): the journal's and the custody log's fsyncs, against the same
//! card acquired with groups of one file (`acquire.group = 1`) in the same run.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::station::TestStation;
use std::path::Path;

const PHOTOS: usize = 60;

/// fsync + fdatasync calls of the journal and the custody log in one `evidock ingest` of `card`
/// (every thread), all fsyncs, and the files it acquired.
fn syncs_of_ingest(config: &str, card: &Path) -> (u64, u64, usize) {
    let st = TestStation::with_config(config);
    let trace = st.dir.path().join("strace-c.txt");
    let opts: Vec<&std::ffi::OsStr> = ["-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o"]
        .iter()
        .map(std::ffi::OsStr::new)
        .chain([trace.as_os_str()])
        .collect();
    let card = card.to_str().unwrap();
    let ingest = [
        "ingest",
        card,
        "--serial",
        "ZFY0601",
        "--force",
        "--no-transcode",
        "--no-upload",
        "--quiet",
    ];
    let out = st.cmd_under("strace", &opts, &ingest).output().unwrap();
    assert!(
        out.status.success(),
        "ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    // A call is one line `fsync(5</path>) = 0`, or its `<unfinished ...>` half when another
    // thread interrupts it (the path is on that half).
    let calls: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("fsync(") || l.contains("fdatasync("))
        .collect();
    let shared = calls
        .iter()
        .filter(|l| l.contains("journal.db") || l.contains("events.jsonl"))
        .count() as u64;
    let listed = st.cmd(&["sessions", "--json"]).output().unwrap();
    let sessions: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let files = sessions[0]["files"].as_u64().unwrap_or(0) as usize;
    (shared, calls.len() as u64, files)
}

#[test]
fn small_files_share_their_fsyncs() {
    let tmp = tempfile::tempdir().unwrap();
    let card = tmp.path().join("card/PHOTO");
    std::fs::create_dir_all(&card).unwrap();
    for i in 0..PHOTOS {
        let bytes: Vec<u8> = (0..96 * 1024)
            .map(|k| ((k * 31 + i * 7) % 251) as u8)
            .collect();
        std::fs::write(card.join(format!("IMG_{i:04}.JPG")), bytes).unwrap();
    }
    let card = tmp.path().join("card");
    let (grouped, all_grouped, files) = syncs_of_ingest("", &card);
    assert_eq!(files, PHOTOS, "every photo acquired");
    let (alone, all_alone, files) = syncs_of_ingest("[acquire]\ngroup = 1\n", &card);
    assert_eq!(files, PHOTOS);
    let per_file = |n: u64| n as f64 / PHOTOS as f64;
    eprintln!(
        "journal + custody log fsyncs per file: {:.2} grouped, {:.2} in groups of one; all fsyncs: {:.2}, {:.2}",
        per_file(grouped),
        per_file(alone),
        per_file(all_grouped),
        per_file(all_alone)
    );
    // One file alone: `checked`, the `acquired` event, the `acquired` row: three per file.
    assert!(
        per_file(alone) >= 2.5,
        "groups of one should pay each step per file: {alone} for {PHOTOS} files"
    );
    assert!(
        per_file(grouped) < 1.5,
        "{grouped} journal and custody log fsyncs for {PHOTOS} small files ({:.2} each): the group commit is not sharing them",
        per_file(grouped)
    );
    assert!(all_grouped < all_alone);
}

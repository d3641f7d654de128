//! Attacks on the index's replacement: another process rebuilding it, or committing rows
//! otherwise, under a process that holds it open; an index that cannot be written; a file that
//! fails its checkpoint on every restart. Each must end in an index that is the file's, with
//! nothing appended twice, memory bounded and the disk not filled.

use super::index_tests::{Written, assert_same_tree, db, ev, lines, written};
use super::*;

#[test]
fn a_process_sees_another_rebuild_the_index_under_it() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        root,
    } = written(6, 10);
    let (mut a, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    // Another process starts a rebuild and is stopped after forgetting every row.
    let (mut b, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    b.index.reset().unwrap();
    drop(b);
    // A replay of an event already logged is still that event, not a second one.
    let again = a.append(ev(3)).unwrap();
    assert!(!again.new);
    assert_eq!(again.event.seq, 3);
    assert_eq!(a.size(), 10);
    assert_eq!(a.root(), root);
    let next = a.append(ev(10)).unwrap();
    assert_eq!(next.event.seq, 10);
    assert_same_tree(&a, 11);
    drop(a);

    // Another process replaced the index file: the first follows it.
    let (mut a, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", dir.join(INDEX_FILE).display()));
    }
    let (b, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    drop(b);
    a.append(ev(11)).unwrap();
    let n: i64 = db(&dir)
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        n, 12,
        "the first process writes the index that is there now"
    );
}

#[test]
fn an_index_missing_a_node_of_its_frontier_is_kept_aside_and_rebuilt() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        root,
    } = written(6, 10);
    db(&dir)
        .execute_batch("DELETE FROM nodes WHERE level = 3 AND idx = 0")
        .unwrap();
    let (log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    let r = rep.reindexed.expect("rebuilt");
    assert!(r.kept.is_some(), "the damaged index is kept: {r:?}");
    assert_eq!(log.root(), root);
}

#[test]
fn a_row_another_process_committed_otherwise_is_not_kept() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        ..
    } = written(6, 10);
    let (mut a, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    let (mut b, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    b.append_batch(vec![ev(10), ev(11)]).unwrap();
    drop(b);
    // What the other process committed for event #10 is not its line.
    db(&dir)
        .execute_batch("UPDATE events SET leaf = zeroblob(32) WHERE seq = 10")
        .unwrap();
    a.append(ev(12)).unwrap();
    assert_eq!(a.read_event(10).unwrap().seq, 10);
    a.refresh().unwrap();
    let leaf: Vec<u8> = db(&dir)
        .query_row("SELECT leaf FROM events WHERE seq = 10", [], |r| r.get(0))
        .unwrap();
    assert_eq!(leaf, merkle::leaf_hash(&lines(&dir)[10]).0.to_vec());
    assert_same_tree(&a, 13);
}

#[test]
fn an_index_that_cannot_be_written_stops_the_log_before_memory_grows() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        root,
    } = written(6, 10);
    let (mut log, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    db(&dir).execute_batch("DROP TABLE nodes").unwrap();
    let mut refused = None;
    for i in 10..10 + 2 * index::PENDING_CAP as u32 {
        if let Err(e) = log.append(ev(i)) {
            refused = Some((i, e));
            break;
        }
    }
    let (at, e) = refused.expect("the log refuses once the cap is reached");
    assert!(matches!(e, LogError::Poisoned { .. }), "{e}");
    assert_eq!(u64::from(at), 10 + index::PENDING_CAP);
    drop(log);
    // Every event written is durable, and the next open indexes them.
    let (log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    assert!(rep.reindexed.is_some());
    assert_eq!(log.size(), 10 + index::PENDING_CAP);
    assert_eq!(log.index().root_at(10).unwrap(), root);
}

#[test]
fn a_file_that_fails_its_checkpoint_does_not_fill_quarantine_on_every_restart() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        ..
    } = written(12, 12);
    // The last event the checkpoint signs, edited: the index disagrees with the file, and the
    // file with its checkpoint.
    let path = dir.join(layout::EVENTS_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.match_indices('\n').nth(10).unwrap().0 + 1;
    let edited = format!(
        "{}{}",
        &text[..at],
        text[at..].replacen("350201", "350209", 1)
    );
    std::fs::write(&path, edited).unwrap();
    let kept = || {
        std::fs::read_dir(dir.join("quarantine"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("index-")
                })
                .count()
            })
            .unwrap_or(0)
    };
    for restart in 0..3 {
        let e = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap_err();
        assert!(matches!(e, LogError::Corrupt { .. }), "{restart}: {e}");
        assert_eq!(kept(), 1, "restart {restart}");
    }
    // An event in the middle garbled too: a rebuild stops there, short of the file's end, and
    // is still not kept again.
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.match_indices('\n').nth(4).unwrap().0 + 1;
    assert!(text[at..].starts_with('{'));
    std::fs::write(&path, format!("{}x{}", &text[..at], &text[at + 1..])).unwrap();
    db(&dir)
        .execute_batch("UPDATE events SET leaf = zeroblob(32) WHERE seq = 4")
        .unwrap();
    for restart in 0..3 {
        let e = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap_err();
        assert!(matches!(e, LogError::Corrupt { .. }), "{restart}: {e}");
        assert_eq!(kept(), 1, "restart {restart}");
    }
}

#[test]
fn a_row_a_read_found_wrong_is_rebuilt_before_the_next_write() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        ..
    } = written(20, 20);
    db(&dir)
        .execute_batch(
            "UPDATE events SET (start, len, leaf) =
                 (SELECT start, len, leaf FROM events WHERE seq = 8) WHERE seq = 7",
        )
        .unwrap();
    let (mut log, _) = CustodyLog::open(&dir, key, clock).unwrap();
    assert!(matches!(log.read_event(7), Err(LogError::Index(_))));
    log.append(ev(20)).unwrap();
    assert_eq!(log.read_event(7).unwrap().seq, 7);
}

#[test]
fn rows_counted_from_before_another_process_rebuilt_are_not_committed() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        root,
    } = written(6, 10);
    let (mut a, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    a.write_unsynced(ev(10)).unwrap();
    // Another process resets the index to rebuild it, and is stopped.
    let (mut b, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    b.index.reset().unwrap();
    drop(b);
    // The first commits what it wrote: a row #10 in an index without #0..#9 would be a gap
    // every later lookup falls into.
    a.sync().unwrap();
    let n: i64 = db(&dir)
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    assert!(!a.append(ev(3)).unwrap().new);
    assert_eq!(a.index().root_at(10).unwrap(), root);
    assert_same_tree(&a, 11);
}

#[test]
fn a_process_that_held_a_replaced_index_leaves_the_new_ones_log_alone() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        ..
    } = written(6, 10);
    let (mut a, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    let (mut b, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    // Another process moves the index aside and indexes the file again: its rows are in the
    // new index's write-ahead log.
    b.index.replace(&dir.join("quarantine")).unwrap();
    b.refresh().unwrap();
    // The first follows it, closing what it held of the old one: SQLite removes a write-ahead
    // log by name when its last connection closes, but not one of a database moved away.
    a.refresh().unwrap();
    assert!(dir.join(format!("{INDEX_FILE}-wal")).exists());
    let n: i64 = db(&dir)
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 10);
    assert!(!a.append(ev(4)).unwrap().new);
    drop((a, b));
}

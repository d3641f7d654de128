//! Attacks on the log's index: proofs from it against the whole tree in memory, and an index
//! that is missing, behind, ahead of the file or altered, or a file altered under it. An index
//! is a cache: a wrong one must be caught and rebuilt, never trusted, and never cut the file.

pub(super) use super::tests::ev;
use super::tests::setup;
use super::*;
use evidock_verify::merkle::MemoryTree;
use evidock_verify::trust::Trust;

pub(super) fn lines(dir: &Path) -> Vec<Vec<u8>> {
    std::fs::read(dir.join(layout::EVENTS_FILE))
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

pub(super) fn memory_tree(dir: &Path) -> MemoryTree {
    let mut t = MemoryTree::new();
    for l in lines(dir) {
        t.push_entry(&l);
    }
    t
}

/// A log of `n` events, closed, the first `sealed` under a signed checkpoint.
pub(super) struct Written {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub key: Arc<crate::key::StationKey>,
    pub clock: Arc<crate::clock::ManualClock>,
    pub root: Hash,
}

pub(super) fn written(sealed: u32, n: u32) -> Written {
    let tmp = tempfile::tempdir().unwrap();
    let (key, clock) = setup(tmp.path());
    let dir = tmp.path().join("log");
    let (mut log, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    log.append_batch((0..sealed).map(ev).collect()).unwrap();
    log.checkpoint().unwrap();
    log.append_batch((sealed..n).map(ev).collect()).unwrap();
    let root = log.root();
    Written {
        tmp,
        dir,
        key,
        clock,
        root,
    }
}

pub(super) fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(INDEX_FILE)).unwrap()
}

/// Every root and proof of a log of `n` events equals the tree's in memory.
pub(super) fn assert_same_tree(log: &CustodyLog, n: u64) {
    let t = memory_tree(log.dir());
    assert_eq!(log.size(), n);
    assert_eq!(t.size(), n);
    assert_eq!(log.root(), t.root());
    let ix = log.index();
    for size in 1..=n {
        assert_eq!(
            ix.root_at(size).unwrap(),
            t.root_at(size).unwrap(),
            "root at {size}"
        );
        for index in [0, size / 3, size / 2, size - 1] {
            assert_eq!(
                ix.inclusion_proof(index, size).unwrap(),
                t.inclusion_proof(index, size).unwrap(),
                "inclusion {index} in {size}"
            );
        }
        for old in [1, size / 2, size - 1] {
            assert_eq!(
                ix.consistency_proof(old, size).unwrap(),
                t.consistency_proof(old, size).unwrap(),
                "consistency {old}→{size}"
            );
        }
    }
}

#[test]
fn roots_and_proofs_from_the_index_are_the_trees() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, clock) = setup(tmp.path());
    let dir = tmp.path().join("log");
    let (mut log, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    for i in 0..37 {
        log.append(ev(i)).unwrap();
    }
    // Some events committed, some pending: written but not yet fsynced.
    for i in 37..45 {
        log.write_unsynced(ev(i)).unwrap();
    }
    assert_eq!(log.index().committed(), 37);
    assert_same_tree(&log, 45);
    log.sync().unwrap();
    assert_eq!(log.index().committed(), 45);
    log.checkpoint().unwrap();
    drop(log);
    // Reopened, everything comes from the database and the frontier.
    let (mut log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    assert!(rep.reindexed.is_none());
    assert_same_tree(&log, 45);
    assert_eq!(log.seq_of_key("assign/44").unwrap(), Some(44));
    assert_eq!(log.seq_of_key("assign/45").unwrap(), None);
    assert_eq!(log.append(ev(45)).unwrap().event.seq, 45);
    assert_same_tree(&log, 46);
}

#[test]
fn a_missing_or_behind_index_is_caught_up_from_the_file() {
    let Written {
        tmp,
        dir,
        key,
        clock,
        ..
    } = written(10, 10);
    let behind = tmp.path().join("behind.sqlite");
    db(&dir)
        .execute("VACUUM INTO ?1", [behind.to_string_lossy()])
        .unwrap();
    let (mut log, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    for i in 10..25 {
        log.append(ev(i)).unwrap();
    }
    log.checkpoint().unwrap();
    let root = log.root();
    drop(log);

    // Behind (a commit lost to a power cut): caught up, not rebuilt.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", dir.join(INDEX_FILE).display()));
    }
    std::fs::copy(&behind, dir.join(INDEX_FILE)).unwrap();
    let (log, rep) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    assert!(rep.reindexed.is_none(), "{:?}", rep.reindexed);
    assert_eq!((log.size(), log.root()), (25, root));
    assert_eq!(log.seq_of_key("assign/20").unwrap(), Some(20));
    drop(log);

    // Missing: built from the file.
    std::fs::remove_file(dir.join(INDEX_FILE)).unwrap();
    let (log, _) = CustodyLog::open(&dir, key, clock).unwrap();
    assert_eq!((log.size(), log.root()), (25, root));
    assert_same_tree(&log, 25);
}

#[test]
fn an_index_ahead_of_the_file_is_kept_aside_and_rebuilt() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        ..
    } = written(6, 9);
    // The file loses its last two events (no checkpoint covers them).
    let all = lines(&dir);
    let mut cut = Vec::new();
    for l in &all[..7] {
        cut.extend_from_slice(l);
        cut.push(b'\n');
    }
    std::fs::write(dir.join(layout::EVENTS_FILE), &cut).unwrap();
    let (log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    let r = rep.reindexed.expect("rebuilt");
    assert!(r.reason.contains("bytes"), "{}", r.reason);
    // What the index knew is kept: it records the two events the file lost.
    let kept = rusqlite::Connection::open(r.kept.unwrap()).unwrap();
    let n: i64 = kept
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 9);
    assert_eq!(log.size(), 7);
    assert_eq!(log.seq_of_key("assign/8").unwrap(), None);
    assert_same_tree(&log, 7);
}

#[test]
fn an_altered_index_is_caught_and_never_cuts_the_file() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        root,
    } = written(20, 23);
    let file = std::fs::read(dir.join(layout::EVENTS_FILE)).unwrap();
    let attacks = [
        // A node the signed root is made from.
        "UPDATE nodes SET hash = zeroblob(32) WHERE level = 4 AND idx = 0",
        // A leaf since the checkpoint.
        "UPDATE events SET leaf = zeroblob(32) WHERE seq = 21",
        // The last event's leaf, so the frontier is wrong.
        "UPDATE events SET leaf = zeroblob(32) WHERE seq = 22",
        // The end of the indexed bytes in the middle of a line: reading on from there would
        // look like a torn tail, to be cut off.
        "UPDATE meta SET value = value - 30 WHERE name = 'len'",
        // An event said to start elsewhere.
        "UPDATE events SET start = start + 1 WHERE seq = 22",
        // An event since the checkpoint said to be longer, its successor to start later:
        // read one by one, both would be wrong.
        "UPDATE events SET len = len + 1 WHERE seq = 20; UPDATE events SET start = start + 1 WHERE seq = 21",
        // An event's key: a replay of it would be appended a second time.
        "UPDATE events SET key = zeroblob(16) WHERE seq = 21",
        // An event said to record time only.
        "UPDATE events SET time_record = 1 WHERE seq = 21",
        // A key rotation no event made.
        "INSERT INTO rotations (seq, key) SELECT 21, key FROM rotations UNION ALL SELECT 21, 'x' LIMIT 1",
        // Rows relabelled: the index ends at event #10's line, one row short of the file's
        // last 12 events, which would read as a torn tail after the checkpoint…
        "DELETE FROM events WHERE seq >= 22;
         UPDATE events SET (start, len, leaf, key, time_record) =
             (SELECT start, len, leaf, key, time_record FROM events WHERE seq = 10) WHERE seq = 21;
         UPDATE meta SET value = 22 WHERE name = 'size';
         UPDATE meta SET value = (SELECT start + len FROM events WHERE seq = 10) WHERE name = 'len'",
        // …or as damage under it.
        "DELETE FROM events WHERE seq >= 15;
         UPDATE events SET (start, len, leaf, key, time_record) =
             (SELECT start, len, leaf, key, time_record FROM events WHERE seq = 4) WHERE seq = 14;
         UPDATE meta SET value = 15 WHERE name = 'size';
         UPDATE meta SET value = (SELECT start + len FROM events WHERE seq = 4) WHERE name = 'len'",
        // Values of the wrong type, or out of range.
        "UPDATE meta SET value = 'x' WHERE name = 'size'",
        "UPDATE events SET start = -1, len = len + start + 1 WHERE seq = 22",
        // A trigger that would rewrite every row a rebuild writes.
        "CREATE TRIGGER t AFTER INSERT ON events BEGIN
             UPDATE events SET key = zeroblob(16) WHERE seq = NEW.seq;
         END",
        // Fewer events than the checkpoint, with the end mid-file.
        "DELETE FROM events WHERE seq >= 15; UPDATE meta SET value = 15 WHERE name = 'size'",
    ];
    for attack in attacks {
        db(&dir).execute_batch(attack).unwrap();
        let (log, rep) = CustodyLog::open(&dir, key.clone(), clock.clone())
            .unwrap_or_else(|e| panic!("{attack}: {e}"));
        assert!(rep.repaired.is_none(), "{attack}: cut {:?}", rep.repaired);
        assert!(rep.reindexed.is_some(), "{attack}");
        assert_eq!((log.size(), log.root()), (23, root), "{attack}");
        assert_eq!(
            std::fs::read(dir.join(layout::EVENTS_FILE)).unwrap(),
            file,
            "{attack}"
        );
        assert_same_tree(&log, 23);
        drop(log);
    }
}

#[test]
fn an_event_altered_since_the_checkpoint_is_seen_on_open() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        ..
    } = written(12, 15);
    let original = merkle::leaf_hash(&lines(&dir)[13]);
    // Same length, other officer: a quiet edit of an event no checkpoint signs yet.
    let path = dir.join(layout::EVENTS_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = {
        let (before, from13) = text.split_at(text.match_indices('\n').nth(12).unwrap().0 + 1);
        let (line, rest) = from13.split_at(from13.find('\n').unwrap() + 1);
        format!("{before}{}{rest}", line.replace("350201", "350209"))
    };
    assert_eq!(edited.len(), text.len());
    std::fs::write(&path, &edited).unwrap();
    let (log, rep) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    let r = rep.reindexed.expect("the edit is seen");
    assert!(r.reason.contains("#13"), "{}", r.reason);
    // The index that recorded what was written is kept, with the original leaf.
    let kept = rusqlite::Connection::open(r.kept.unwrap()).unwrap();
    let leaf: Vec<u8> = kept
        .query_row("SELECT leaf FROM events WHERE seq = 13", [], |r| r.get(0))
        .unwrap();
    assert_eq!(leaf, original.0.to_vec());
    assert_ne!(log.index().leaf(13).unwrap().unwrap(), original);
    drop(log);

    // Under the checkpoint the same edit is damage: reading it refuses, and a full check
    // (`evidock log verify`) names it.
    let (mut log, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    log.checkpoint().unwrap();
    drop(log);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("350201", "350208", 1)).unwrap();
    let (log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    assert!(rep.reindexed.is_none(), "open re-reads only the tail");
    assert!(matches!(
        log.read_event(0),
        Err(LogError::Corrupt { seq: 0, .. })
    ));
    let check = evidock_verify::logcheck::check_log_dir(&dir, &Trust::none());
    assert!(!check.integrity_consistent(), "{:?}", check.report);
}

#[test]
fn opening_reads_only_the_tail_since_the_checkpoint() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        ..
    } = written(3000, 3001);
    // Garble every event the checkpoint covers but its last: an open that re-read them would
    // fail; one that reads the tail does not notice.
    let path = dir.join(layout::EVENTS_FILE);
    let all = lines(&dir);
    let mut out = Vec::new();
    for (i, l) in all.iter().enumerate() {
        if i < 2999 {
            out.extend(std::iter::repeat_n(b'x', l.len()));
        } else {
            out.extend_from_slice(l);
        }
        out.push(b'\n');
    }
    std::fs::write(&path, &out).unwrap();
    let (log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    assert!(rep.reindexed.is_none() && rep.repaired.is_none());
    assert_eq!(log.size(), 3001);
    assert_eq!(log.read_event(3000).unwrap().seq, 3000);
}

#[test]
fn the_full_check_finds_a_node_opening_does_not_read() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        ..
    } = written(20, 20);
    // Inside the left subtree: the signed root is made from its parent, not from it.
    db(&dir)
        .execute_batch("UPDATE nodes SET hash = zeroblob(32) WHERE level = 1 AND idx = 0")
        .unwrap();
    let (mut log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    assert!(rep.reindexed.is_none());
    let t = memory_tree(&dir);
    assert_ne!(
        log.index().inclusion_proof(3, 20).unwrap(),
        t.inclusion_proof(3, 20).unwrap()
    );
    let r = log.check_index().unwrap().expect("found");
    assert!(r.reason.contains("1/0"), "{}", r.reason);
    assert_same_tree(&log, 20);
    assert!(log.check_index().unwrap().is_none());
}

#[test]
fn a_node_since_the_checkpoint_is_checked_before_the_next_one_signs_it() {
    // 20 signed, 4 not: the nodes of leaves 16..24 are made since the checkpoint, and the next
    // checkpoint's root is made from them.
    for attack in [
        // In the frontier: the next root is made from it.
        "UPDATE nodes SET hash = zeroblob(32) WHERE level = 3 AND idx = 2",
        // Under it: proofs of events 20 and 21 are made from it.
        "UPDATE nodes SET hash = zeroblob(32) WHERE level = 1 AND idx = 10",
    ] {
        let Written {
            tmp: _tmp,
            dir,
            key,
            clock,
            root,
        } = written(20, 24);
        db(&dir).execute_batch(attack).unwrap();
        let (mut log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
        let r = rep.reindexed.expect(attack);
        assert!(
            r.reason.contains("subtree") || r.reason.contains("frontier"),
            "{attack}: {}",
            r.reason
        );
        assert_eq!(log.root(), root, "{attack}");
        let signed = log.checkpoint().unwrap().expect("signed");
        assert_eq!(signed.checkpoint.root, memory_tree(&dir).root(), "{attack}");
        assert_same_tree(&log, 24);
    }
}

#[test]
fn a_log_never_signed_is_checked_whole_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, clock) = setup(tmp.path());
    let dir = tmp.path().join("log");
    let (mut log, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    log.append_batch((0..6).map(ev).collect()).unwrap();
    let root = log.root();
    drop(log);
    db(&dir)
        .execute_batch("UPDATE nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 0")
        .unwrap();
    let (log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    assert!(rep.reindexed.is_some());
    assert_eq!(log.root(), root);
}

#[test]
fn a_proof_the_index_makes_wrongly_is_refused_before_it_leaves_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, clock) = setup(tmp.path());
    let dir = tmp.path().join("log");
    let (mut log, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    log.append_batch((0..5).map(ev).collect()).unwrap();
    log.checkpoint().unwrap();
    log.append_batch((5..20).map(ev).collect()).unwrap();
    log.checkpoint().unwrap();
    drop(log);
    // Under the last checkpoint, where opening does not look.
    db(&dir)
        .execute_batch(
            "UPDATE nodes SET hash = zeroblob(32) WHERE level < 4 AND (idx << level) < 16;
             UPDATE events SET leaf = zeroblob(32) WHERE seq < 16",
        )
        .unwrap();
    let (mut log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    assert!(rep.reindexed.is_none());
    let root = log.signed_checkpoint(20).unwrap().checkpoint.root;
    let t = memory_tree(&dir);
    // The index hands out wrong proofs…
    assert_ne!(
        log.index().consistency_proof(5, 20).unwrap(),
        t.consistency_proof(5, 20).unwrap()
    );
    // …which the log refuses, naming them.
    let e = log.proved_consistency(5, 20, &root).unwrap_err();
    assert!(
        matches!(&e, LogError::Unproved { what, .. } if what.contains("5→20")),
        "{e}"
    );
    let e = log.proved_inclusion(3, 20, &root).unwrap_err();
    assert!(
        matches!(&e, LogError::Unproved { what, .. } if what.contains("#3")),
        "{e}"
    );
    // Once the full check has rebuilt the index, they hold.
    assert!(log.check_index().unwrap().is_some());
    let (old_root, path) = log.proved_consistency(5, 20, &root).unwrap();
    assert_eq!(path, t.consistency_proof(5, 20).unwrap());
    assert_eq!(old_root, log.signed_checkpoint(5).unwrap().checkpoint.root);
    assert_eq!(
        log.proved_inclusion(3, 20, &root).unwrap(),
        t.inclusion_proof(3, 20).unwrap()
    );
}

#[test]
fn the_full_check_compares_every_column_with_the_file() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        ..
    } = written(20, 20);
    // Under the checkpoint: opening does not look, so a replay of event #3 would be appended
    // again until the full check finds it.
    db(&dir)
        .execute_batch("UPDATE events SET key = zeroblob(16) WHERE seq = 3")
        .unwrap();
    let (mut log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    assert!(rep.reindexed.is_none());
    assert_eq!(log.seq_of_key("assign/3").unwrap(), None);
    let r = log.check_index().unwrap().expect("found");
    assert!(r.reason.contains("#3"), "{}", r.reason);
    assert_eq!(log.seq_of_key("assign/3").unwrap(), Some(3));
    assert!(!log.append(ev(3)).unwrap().new);
}

#[test]
fn a_row_that_points_elsewhere_is_never_read_as_its_event() {
    let Written {
        tmp: _tmp,
        dir,
        key,
        clock,
        ..
    } = written(20, 20);
    // Under the checkpoint, where opening does not look: event #2 takes #3's key, and #5
    // claims a length no event has.
    db(&dir)
        .execute_batch(
            "UPDATE events SET key = (SELECT key FROM events WHERE seq = 3) WHERE seq = 2;
             UPDATE events SET len = 1 << 40 WHERE seq = 5;
             UPDATE events SET (start, len, leaf) =
                 (SELECT start, len, leaf FROM events WHERE seq = 8) WHERE seq = 7",
        )
        .unwrap();
    let (mut log, rep) = CustodyLog::open(&dir, key, clock).unwrap();
    assert!(rep.reindexed.is_none());
    assert!(matches!(log.read_event(5), Err(LogError::Index(_))));
    assert!(matches!(log.read_event(7), Err(LogError::Index(_))));
    // A replay of event #3 is found as event #3: the index is rebuilt first.
    let again = log.append(ev(3)).unwrap();
    assert!(!again.new);
    assert_eq!(again.event.seq, 3);
    assert_eq!(log.read_event(7).unwrap().seq, 7);
    assert_eq!(log.read_event(5).unwrap().seq, 5);
    assert_same_tree(&log, 20);
}

//! Unit tests of the custody log: appending, checkpoints and reopening, replays, torn tails, key
//! rotation and group commit; apart because they are as long as the log itself.

use super::*;
use crate::clock::ManualClock;
use crate::key::StationKey;
use evidock_verify::event::payload::CameraAssignedPayload;
use evidock_verify::event::{Actor, Subject};
use evidock_verify::id::{DeviceSerial, OfficerId};
use evidock_verify::trust::Trust;

pub(super) fn setup(dir: &Path) -> (Arc<StationKey>, Arc<ManualClock>) {
    let st = StationId::new("dock-01").unwrap();
    let (key, _) = StationKey::load_or_create(&dir.join("station.key"), None, &st).unwrap();
    let clock = Arc::new(ManualClock::new(
        "2026-11-28T09:00:00Z".parse().unwrap(),
        "+08:00".parse().unwrap(),
    ));
    (Arc::new(key), clock)
}

pub(super) fn ev(i: u32) -> NewEvent {
    let dev = DeviceSerial::new(format!("ZFY{i:04}")).unwrap();
    NewEvent::new(
        Actor {
            role: evidock_verify::event::Role::Admin,
            id: "admin".into(),
        },
        Subject::Device(dev.clone()),
        format!("assign/{i}"),
        &CameraAssignedPayload {
            device: dev,
            officer: OfficerId::new("350201").unwrap(),
            from: "2026-11-28T00:00:00.000Z".parse().unwrap(),
        },
    )
    .unwrap()
}

#[test]
fn a_rotated_key_signs_on_and_a_process_holding_the_old_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, clock) = setup(tmp.path());
    let dir = tmp.path().join("log");
    // Two processes of one station: `a` rotates, `b` still holds the old key.
    let (mut a, _) = CustodyLog::open(&dir, old.clone(), clock.clone()).unwrap();
    let (mut b, _) = CustodyLog::open(&dir, old.clone(), clock.clone()).unwrap();
    a.append(ev(0)).unwrap();
    b.append(ev(1)).unwrap();
    let new = Arc::new(old.stage_next().unwrap());
    let actor = Actor {
        role: evidock_verify::event::Role::Admin,
        id: "admin".into(),
    };
    let handover = a.rotate_key(new.clone(), actor, "renewal").unwrap();
    // The old key sealed what it had; the hand-over covers the rotation, signed by both.
    assert_eq!(a.checkpoint_sizes().unwrap(), vec![2, 3]);
    assert_eq!(handover.checkpoint.size, 3);
    assert!(handover.verify(old.verifier()) && handover.verify(new.verifier()));
    assert_eq!(a.current_key(), Some(new.verifier()));
    a.append(ev(2)).unwrap();
    assert_eq!(a.checkpoint().unwrap().unwrap().checkpoint.size, 4);
    // The other process appends (events need no key) but may not sign any more.
    b.append(ev(3)).unwrap();
    assert!(matches!(
        b.checkpoint(),
        Err(LogError::KeyNotCurrent { .. })
    ));
    assert!(matches!(
        CustodyLog::open(&dir, old.clone(), clock.clone()),
        Err(LogError::KeyNotCurrent { .. })
    ));
    a.checkpoint().unwrap();
    let check = evidock_verify::logcheck::check_log_dir(&dir, &Trust::none());
    assert!(check.integrity_consistent(), "{:?}", check.report);
    assert!(!check.integrity_proven(), "no key pinned");
    assert_eq!(check.key.as_ref(), Some(new.verifier()));
    // Reopened with the new key, the log is the same log.
    let (reopened, _) = CustodyLog::open(&dir, new.clone(), clock).unwrap();
    assert_eq!(reopened.size(), 5);
}

#[test]
fn append_checkpoint_reopen_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, clock) = setup(tmp.path());
    let dir = tmp.path().join("log");
    {
        let (mut log, rep) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
        assert_eq!(rep.events, 0);
        for i in 0..5 {
            let a = log.append(ev(i)).unwrap();
            assert!(a.new);
            assert_eq!(a.event.seq, u64::from(i));
        }
        // Replay: nothing appended.
        let again = log.append(ev(2)).unwrap();
        assert!(!again.new);
        assert_eq!(again.event.seq, 2);
        assert_eq!(log.size(), 5);
        let cp = log.checkpoint().unwrap().unwrap();
        assert_eq!(cp.checkpoint.size, 5);
        assert!(log.checkpoint().unwrap().is_none());
        clock.advance(chrono::Duration::seconds(5));
        log.append_batch(vec![ev(10), ev(11), ev(3)]).unwrap();
        assert_eq!(log.size(), 7);
        log.checkpoint().unwrap().unwrap();
        // A second process writing the same log sees this one's events and continues them.
        let (mut other, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
        assert_eq!(other.size(), 7);
        assert_eq!(other.append(ev(20)).unwrap().event.seq, 7);
        assert_eq!(log.append(ev(21)).unwrap().event.seq, 8);
        assert!(!log.append(ev(20)).unwrap().new);
        other.refresh().unwrap();
        assert_eq!(other.size(), 9);
        log.checkpoint().unwrap().unwrap();
    }
    let (log, rep) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    assert_eq!(rep.events, 9);
    assert!(rep.repaired.is_none());
    assert_eq!(log.seq_of_key("assign/11").unwrap(), Some(6));
    assert_eq!(log.events().unwrap().len(), 9);
    let mut tail = Vec::new();
    log.for_each_event_from(6, |e| tail.push((e.seq, e.key)))
        .unwrap();
    assert_eq!(
        tail,
        vec![
            (6, "assign/11".to_string()),
            (7, "assign/20".into()),
            (8, "assign/21".into())
        ]
    );
    let mut none = 0;
    log.for_each_event_from(9, |_| none += 1).unwrap();
    assert_eq!(none, 0);
    drop(log);

    let check = evidock_verify::logcheck::check_log_dir(&dir, &Trust::none());
    assert!(!check.report.has_errors(), "{:#?}", check.report);
    assert!(check.integrity_consistent());
    assert!(!check.integrity_proven(), "no key pinned");
    assert!(!check.time_attested());
    assert!(check.report.has("timestamp.missing"));
    assert!(check.report.has("trust.not-anchored"));
}

#[test]
fn conflicting_replay_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, clock) = setup(tmp.path());
    let (mut log, _) = CustodyLog::open(&tmp.path().join("log"), key, clock).unwrap();
    log.append(ev(1)).unwrap();
    let mut other = ev(2);
    other.key = "assign/1".into();
    assert!(matches!(
        log.append(other),
        Err(LogError::KeyConflict { seq: 0, .. })
    ));
}

/// A resumed step logs again what it logged before a crash, with what it reads now (a
/// camera's battery level, a retention date computed from the clock): the event logged
/// first stands. Another kind or subject under the key is still a conflict.
#[test]
fn a_replay_that_keeps_returns_the_logged_event_whatever_its_payload() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, clock) = setup(tmp.path());
    let (log, _) = CustodyLog::open(&tmp.path().join("log"), key, clock).unwrap();
    let log = SharedLog::new(log);
    let first = log.append_once(ev(1)).unwrap();
    let mut again = ev(1);
    again.payload["officer"] = "350299".into();
    let replay = log
        .append_once(again)
        .expect("a replay keeps the logged event");
    assert!(!replay.new);
    assert_eq!(replay.event.seq, first.event.seq);
    assert_eq!(replay.event.payload, first.event.payload);
    let mut other = ev(2);
    other.key = "assign/1".into();
    assert!(matches!(
        log.append_once(other),
        Err(LogError::KeyConflict { seq: 0, .. })
    ));
    assert_eq!(log.with(|l| l.size()), 1);
}

#[test]
fn torn_tail_is_cut_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, clock) = setup(tmp.path());
    let dir = tmp.path().join("log");
    {
        let (mut log, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
        for i in 0..3 {
            log.append(ev(i)).unwrap();
        }
        log.checkpoint().unwrap();
        log.append(ev(3)).unwrap();
    }
    let events = dir.join(layout::EVENTS_FILE);
    let full = std::fs::read(&events).unwrap();
    // Tear the last event in half, then add zeros as a reordered page write would.
    let torn_at = full.len() - 40;
    let mut torn = full[..torn_at].to_vec();
    torn.extend_from_slice(&[0u8; 100]);
    std::fs::write(&events, &torn).unwrap();
    let (mut log, rep) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    let (bytes, kept) = rep.repaired.unwrap();
    assert_eq!(rep.events, 3);
    let good_len = full[..full.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    assert_eq!(bytes as usize, torn.len() - good_len);
    assert_eq!(std::fs::read(&kept).unwrap(), &torn[good_len..]);
    assert!(kept.exists());
    // The log carries on from the repaired end.
    assert_eq!(log.append(ev(3)).unwrap().event.seq, 3);
    drop(log);

    // Damage under a signed checkpoint is not "torn". Opening re-reads only what the last
    // checkpoint does not cover, but reading the damaged event refuses...
    let mut bytes = std::fs::read(&events).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&events, &bytes).unwrap();
    let (log, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
    assert!(matches!(
        log.read_event(0),
        Err(LogError::Corrupt { seq: 0, .. })
    ));
    assert!(matches!(
        log.for_each_event(|_| {}),
        Err(LogError::Corrupt { seq: 0, .. })
    ));
    drop(log);
    // ...and so does rebuilding the index from the file.
    std::fs::remove_file(dir.join(INDEX_FILE)).unwrap();
    assert!(matches!(
        CustodyLog::open(&dir, key, clock),
        Err(LogError::Corrupt { seq: 0, .. })
    ));
}

#[test]
fn shared_log_groups_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, clock) = setup(tmp.path());
    let (log, _) = CustodyLog::open(&tmp.path().join("log"), key, clock).unwrap();
    let shared = SharedLog::new(log);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let shared = shared.clone();
            s.spawn(move || {
                for i in 0..25 {
                    shared.append(ev(t * 100 + i)).unwrap();
                }
            });
        }
    });
    assert_eq!(shared.with(|l| l.size()), 100);
    let seqs: std::collections::BTreeSet<u64> = shared
        .with(|l| l.events().unwrap())
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs.len(), 100);
}

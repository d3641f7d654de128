use super::*;
use evidock_verify::id::OfficerId;

/// Processes opening a station's journal at the same moment — the dock starting while
/// `evidock log show` runs, on a station just made — all open it: none is refused with
/// "database is locked".
#[test]
fn a_new_journal_opened_by_many_at_once_opens_for_all() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let opened: Vec<_> = std::thread::scope(|s| {
            let tries: Vec<_> = (0..6).map(|_| s.spawn(|| Journal::open(&path))).collect();
            tries.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for r in opened {
            if let Err(e) = r {
                panic!("round {round}: {e}");
            }
        }
    }
}

/// A state this version does not know is an error naming the table, never a default: a
/// file read as `pending` would be copied again, a session read as `failed` hidden.
#[test]
fn unknown_states_are_errors_that_name_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let j = Journal::open(&tmp.path().join("journal.db")).unwrap();
    let s = SessionId::new("s1").unwrap();
    let d = DeviceSerial::new("ZFY0001").unwrap();
    let now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
    j.create_session(&s, &d, None, "zfy-sim", SessionState::Copying, now)
        .unwrap();
    let ev = EvidenceId::new("ev-0123456789abcdef0123").unwrap();
    j.put_file(&s, b"a.mp4", &ev, 1, 5, FileState::Copying, None, None)
        .unwrap();
    j.with(|db| {
        db.execute_batch(
            "UPDATE files SET state = 'quarantined'; UPDATE sessions SET state = 'paused';",
        )
    })
    .unwrap();
    let e = j.file(&s, b"a.mp4").unwrap_err().to_string();
    assert!(
        e.contains("\"quarantined\"") && e.contains("files table"),
        "{e}"
    );
    // A listing leaves the session out and notes it, never reads it as some state; the
    // other sessions stay listed.
    let t = SessionId::new("s2").unwrap();
    j.create_session(&t, &d, None, "zfy-sim", SessionState::Copying, now)
        .unwrap();
    let listed: Vec<SessionId> = j.sessions().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(listed, vec![t]);
    let noted = j.undecodable();
    assert!(
        noted
            .iter()
            .any(|u| u.table == "sessions" && u.row == "s1" && u.reason.contains("\"paused\"")),
        "{noted:?}"
    );
}

#[test]
fn sessions_files_partials_assignments() {
    let tmp = tempfile::tempdir().unwrap();
    let j = Journal::open(&tmp.path().join("journal.db")).unwrap();
    let s = SessionId::new("s1").unwrap();
    let d = DeviceSerial::new("ZFY0001").unwrap();
    let now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
    j.create_session(
        &s,
        &d,
        Some("slot-1"),
        "zfy-sim",
        SessionState::Copying,
        now,
    )
    .unwrap();
    assert_eq!(j.open_session_of(&d).unwrap(), Some(s.clone()));
    let ev = EvidenceId::new("ev-0123456789abcdef0123").unwrap();
    j.put_file(
        &s,
        b"DCIM/\xd6\xb4\xb7\xa8.MP4",
        &ev,
        10,
        5,
        FileState::Copying,
        None,
        None,
    )
    .unwrap();
    let row = j.file(&s, b"DCIM/\xd6\xb4\xb7\xa8.MP4").unwrap().unwrap();
    assert_eq!(row.state, FileState::Copying);
    let dg = Digests {
        sha256: Sha256::digest(b"x"),
        sm3: None,
        md5: None,
    };
    j.put_file(
        &s,
        b"DCIM/\xd6\xb4\xb7\xa8.MP4",
        &ev,
        10,
        5,
        FileState::Checked,
        Some(&dg),
        None,
    )
    .unwrap();
    j.mark_acquired(
        &s,
        b"DCIM/\xd6\xb4\xb7\xa8.MP4",
        3,
        &Shown {
            important: true,
            ..Shown::default()
        },
    )
    .unwrap();
    let list = j.evidence().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].path, "DCIM/执法.MP4");
    assert_eq!(list[0].sha256, dg.sha256);
    assert_eq!(j.session_counts(&s).unwrap(), (1, 10, 0, 0));
    j.release_session(&s, now, (1, 10, 0, 0)).unwrap();
    assert_eq!(j.open_session_of(&d).unwrap(), None);

    let p = Partial {
        size: 100,
        mtime_ns: 7,
        spool_file: "/x".into(),
        offset: 64,
    };
    j.put_partial(&d, b"a", &p).unwrap();
    assert_eq!(j.partial(&d, b"a").unwrap().unwrap().offset, 64);
    j.remove_partial(&d, b"a").unwrap();
    assert!(j.partial(&d, b"a").unwrap().is_none());

    let o1 = OfficerId::new("350201").unwrap();
    let o2 = OfficerId::new("350202").unwrap();
    j.add_assignment(&d, &o1, "2026-11-28T00:00:00Z".parse().unwrap())
        .unwrap();
    j.add_assignment(&d, &o2, "2026-11-28T08:00:00Z".parse().unwrap())
        .unwrap();
    assert_eq!(
        j.assigned_officer(&d, "2026-11-28T07:00:00Z".parse().unwrap())
            .unwrap(),
        Some(o1)
    );
    assert_eq!(
        j.assigned_officer(&d, "2026-11-28T09:00:00Z".parse().unwrap())
            .unwrap(),
        Some(o2)
    );
    assert_eq!(
        j.assigned_officer(&d, "2026-11-27T09:00:00Z".parse().unwrap())
            .unwrap(),
        None
    );
}

/// The status page's totals, counted by the database, are what adding up every session gives;
/// and a page that holds a row that does not decode still leads to the next page.
#[test]
fn session_totals_and_pages_agree_with_the_whole_list() {
    let tmp = tempfile::tempdir().unwrap();
    let j = Journal::open(&tmp.path().join("journal.db")).unwrap();
    let now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
    let states = [
        SessionState::Released,
        SessionState::Failed,
        SessionState::Refused,
        SessionState::Failed,
        SessionState::Released,
        SessionState::Failed,
    ];
    for (i, state) in states.iter().enumerate() {
        let s = SessionId::new(format!("s{i}")).unwrap();
        let d = DeviceSerial::new(format!("ZFY000{}", i % 2)).unwrap();
        let at = now - chrono::Duration::hours(10 * i as i64);
        j.create_session(&s, &d, None, "zfy-sim", *state, at)
            .unwrap();
        j.with(|db| {
            db.execute(
                "UPDATE sessions SET files = ?2, bytes = ?3, failed = ?4 WHERE id = ?1",
                params![s.as_str(), i as i64, 1000 * i as i64, (i % 3) as i64],
            )
        })
        .unwrap();
    }
    let all = j.sessions().unwrap();
    let t = j.session_totals(now - chrono::Duration::hours(24)).unwrap();
    assert_eq!(t.sessions, all.len() as u64);
    assert_eq!(t.files, all.iter().map(|s| s.files).sum::<u64>());
    assert_eq!(t.bytes, all.iter().map(|s| s.bytes).sum::<u64>());
    assert_eq!(t.files_failed, all.iter().map(|s| s.failed).sum::<u64>());
    assert_eq!((t.sessions_failed, t.sessions_refused), (3, 1));
    // Failed within the day: s1 (10 h ago) only; s3 and s5 are older.
    assert_eq!(t.failing_since, vec![("ZFY0001".to_string(), 1)]);

    j.with(|db| db.execute("UPDATE sessions SET state = 'paused' WHERE id = 's4'", []))
        .unwrap();
    let (mut paged, mut after) = (Vec::new(), None::<String>);
    loop {
        let p = j.sessions_page(after.as_deref(), 2).unwrap();
        paged.extend(p.rows.into_iter().map(|s| s.id));
        match p.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let whole: Vec<SessionId> = j.sessions().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(whole.len(), 5);
    assert_eq!(paged, whole);
}

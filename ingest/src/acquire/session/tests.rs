//! The checker's side of a session, driven directly: what a group leaves when the disk gives
//! back other bytes than were written; and upload and transcode giving way to a copy.

use super::CheckJob;
use crate::acquire::progress::SessionProgress;
use crate::journal::{FileState, Partial, SessionState};
use crate::station::{Create, Station};
use evidock_verify::digest::{BufferPool, Digests, MultiHasher};
use evidock_verify::event::EventKind;
use evidock_verify::event::payload::{AcquiredPayload, CameraPath};
use evidock_verify::id::{DeviceSerial, EvidenceId, SessionId, Sha256};

/// A copy finished and synced at `part`, its digests those of `read` (what the copier read off
/// the camera), its `copying` row and resume point in the journal as the copier leaves them.
fn copied(st: &Station, s: &SessionId, d: &DeviceSerial, name: &str, read: &[u8]) -> CheckJob {
    let path = format!("DCIM/100MEDIA/{name}").into_bytes();
    let evidence = EvidenceId::derive(st.id(), s, &path);
    let part = st.spool.partial_path(d, &path);
    fs_err::create_dir_all(part.parent().unwrap()).unwrap();
    fs_err::write(&part, read).unwrap();
    let size = read.len() as u64;
    st.journal
        .put_copying(s, &path, &evidence, size, 7)
        .unwrap();
    let partial = Partial {
        size,
        mtime_ns: 7,
        spool_file: part.clone(),
        offset: size,
    };
    st.journal.put_partial(d, &path, &partial).unwrap();
    let payload = AcquiredPayload {
        session: s.clone(),
        device: d.clone(),
        officer: None,
        officer_source: None,
        slot: None,
        path: CameraPath(path.clone()),
        size,
        digests: Digests {
            sha256: Sha256::digest(read),
            sm3: None,
            md5: None,
        },
        mtime: None,
        recorded: None,
        important: false,
        changed_during_copy: false,
        resumed_at: None,
    };
    CheckJob {
        path,
        mtime_ns: 7,
        evidence,
        part,
        payload,
    }
}

/// A station with session `s1` of camera ZFY0001 copying.
fn station(dir: &std::path::Path) -> (Station, SessionId, DeviceSerial) {
    let settings = crate::config::Settings::embedded().unwrap();
    let st = Station::open(&dir.join("data"), settings, Create::IfMissing).unwrap();
    let (s, d) = (
        SessionId::new("s1").unwrap(),
        DeviceSerial::new("ZFY0001").unwrap(),
    );
    st.journal
        .create_session(
            &s,
            &d,
            None,
            "zfy-sim",
            SessionState::Copying,
            st.clock.now(),
        )
        .unwrap();
    (st, s, d)
}

/// `job` re-read, committed and logged as acquired (its original queued for upload).
fn acquire(st: &Station, s: &SessionId, d: &DeviceSerial, job: CheckJob) {
    let pool = BufferPool::new(2, 64 << 10);
    let mut hasher = MultiHasher::new(st.settings.digests, 2).unwrap();
    let redo = st
        .acquirer()
        .check_and_log(
            s,
            d,
            vec![job],
            (&pool, &mut hasher),
            &SessionProgress::new(),
        )
        .unwrap();
    assert!(redo.is_empty());
}

/// One group, one copy the disk gave back altered: that copy loses its resume point and its
/// `.part` at once (a session stopped before it is copied again must not resume into bytes the
/// check refused), is neither in the spool nor logged, and comes back to be copied again; the
/// good copy beside it is committed and logged as usual.
#[test]
fn a_copy_the_reread_refuses_loses_its_resume_point_and_part_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (st, s, d) = station(tmp.path());
    let good = copied(&st, &s, &d, "GOOD.MP4", &vec![1u8; 300_000]);
    let read = vec![2u8; 300_000];
    let bad = copied(&st, &s, &d, "BAD.MP4", &read);
    // What the disk gives back is not what was read off the camera: one byte differs.
    let mut on_disk = read.clone();
    on_disk[123_456] ^= 0x20;
    fs_err::write(&bad.part, &on_disk).unwrap();
    let (good_path, bad_path, bad_part) = (good.path.clone(), bad.path.clone(), bad.part.clone());
    let bad_sha = bad.payload.digests.sha256;
    let good_sha = good.payload.digests.sha256;
    let events_before = st.log.with(|l| l.size());

    let acq = st.acquirer();
    let pool = BufferPool::new(2, 64 << 10);
    let mut hasher = MultiHasher::new(st.settings.digests, 2).unwrap();
    let progress = SessionProgress::new();
    let redo = acq
        .check_and_log(&s, &d, vec![good, bad], (&pool, &mut hasher), &progress)
        .unwrap();

    assert_eq!(
        redo.len(),
        1,
        "the refused copy comes back to be copied again"
    );
    assert_eq!(redo[0].path, bad_path);
    assert!(
        st.journal.partial(&d, &bad_path).unwrap().is_none(),
        "no resume point into the refused bytes"
    );
    assert!(!bad_part.exists(), "the refused .part is gone");
    assert!(!st.spool.object_path(&bad_sha).exists());
    let row = st.journal.file(&s, &bad_path).unwrap().unwrap();
    assert_eq!(row.state, FileState::Copying, "not checked, not acquired");

    let row = st.journal.file(&s, &good_path).unwrap().unwrap();
    assert_eq!(row.state, FileState::Acquired);
    assert!(st.spool.object_path(&good_sha).exists());
    let logged: Vec<_> = st.log.with(|l| l.events()).unwrap()[events_before as usize..]
        .iter()
        .filter(|e| e.kind == EventKind::Acquired)
        .map(|e| e.payload::<AcquiredPayload>().unwrap().path.0)
        .collect();
    assert_eq!(
        logged,
        vec![good_path],
        "only the good copy is logged as acquired"
    );
}

/// While a camera is being copied, the background starts nothing new: the upload queue and the
/// transcode backlog keep their work, and the end of the copying lets it go.
#[test]
fn upload_and_transcode_give_way_while_a_camera_is_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let (st, s, d) = station(tmp.path());
    acquire(
        &st,
        &s,
        &d,
        copied(&st, &s, &d, "FIRST.MP4", &vec![3u8; 200_000]),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (uploader, transcoder) = (st.uploader(), st.transcoder());

    let copying = st.acquiring.enter();
    let run = rt.block_on(uploader.run_once());
    assert!(run.uploaded.is_empty(), "{:?}", run.uploaded);
    let wait = run.held_back.expect("held back");
    assert!(wait <= st.settings.tuning.background_wait);
    assert!(
        transcoder.run_pending().unwrap().is_empty(),
        "no job starts"
    );
    assert_eq!(st.journal.transcode_backlog().unwrap().len(), 1, "kept");

    drop(copying);
    let run = rt.block_on(uploader.run_once());
    assert_eq!(run.uploaded.len(), 1, "{run:?}");
    assert_eq!(run.held_back, None);
    assert_eq!(transcoder.run_pending().unwrap().len(), 1);
}

use super::*;

#[test]
fn kinds_by_extension() {
    assert_eq!(kind_of(b"DCIM/ZFY0001_0001.MP4"), Some(MediaKind::Video));
    assert_eq!(kind_of("录音/现场.WAV".as_bytes()), Some(MediaKind::Audio));
    assert_eq!(kind_of(b"PHOTO/IMG_1.jpg"), Some(MediaKind::Photo));
    assert_eq!(kind_of(b"LOG/ZFY0001.TXT"), None);
    assert_eq!(kind_of(b"MP4"), None);
}

#[cfg(feature = "transcode")]
#[test]
fn playback_size_caps_height_and_keeps_aspect() {
    assert_eq!(media::playback_size(1920, 1080, (1, 1), 720), (1280, 720));
    assert_eq!(media::playback_size(640, 480, (1, 1), 720), (640, 480));
    // Anamorphic 1440x1080 with 4:3 pixels shows as 1920x1080.
    assert_eq!(media::playback_size(1440, 1080, (4, 3), 720), (1280, 720));
    assert_eq!(media::playback_size(853, 481, (0, 1), 720), (852, 480));
}

/// Derivative jobs run end to end on a station in a temporary directory, from footage made with
/// the ffmpeg CLI at test time.
#[cfg(feature = "transcode")]
mod jobs {
    use super::*;
    use crate::journal::{FileState, SessionState, Shown};
    use crate::station::{Create, Station};
    use evidock_verify::digest::Digests;
    use evidock_verify::id::{DeviceSerial, SessionId};
    use media::Opening;

    fn ffmpeg(args: &[&str]) {
        let out = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .output()
            .expect("ffmpeg CLI (apt-get install ffmpeg)");
        assert!(
            out.status.success(),
            "ffmpeg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A station with `clip` acquired from camera ZFY0001 as `name`, as the journal has it once
    /// acquisition is done; and its evidence row.
    fn acquired(dir: &Path, clip: &Path, name: &str) -> (Station, EvidenceRow) {
        let settings = crate::config::Settings::embedded().unwrap();
        let st = Station::open(&dir.join("data"), settings, Create::IfMissing).unwrap();
        let bytes = fs_err::read(clip).unwrap();
        let sha = Sha256::digest(&bytes);
        let at = st.spool.object_path(&sha);
        fs_err::create_dir_all(at.parent().unwrap()).unwrap();
        fs_err::write(&at, &bytes).unwrap();
        let j = &st.journal;
        let s = SessionId::new("s1").unwrap();
        let d = DeviceSerial::new("ZFY0001").unwrap();
        let now = "2026-11-28T10:00:00Z".parse().unwrap();
        j.create_session(&s, &d, None, "zfy-sim", SessionState::Copying, now)
            .unwrap();
        let ev = EvidenceId::new("ev-0123456789abcdef0123").unwrap();
        let dg = Digests {
            sha256: sha,
            sm3: None,
            md5: None,
        };
        let size = bytes.len() as u64;
        j.put_file(
            &s,
            name.as_bytes(),
            &ev,
            size,
            5,
            FileState::Checked,
            Some(&dg),
            None,
        )
        .unwrap();
        j.mark_acquired(&s, name.as_bytes(), 1, &Shown::default())
            .unwrap();
        let row = j.evidence().unwrap().remove(0);
        (st, row)
    }

    /// Width and height of the picture in a file (a JPEG here).
    fn size_of(path: &Path) -> (u32, u32) {
        let info = media::probe(path).unwrap();
        let v = info.stream("video").unwrap();
        (v.width.unwrap(), v.height.unwrap())
    }

    /// The contact sheet of `cols`×`rows` tiles of `w`×`h`: 4 px between tiles and round them.
    fn sheet_size([cols, rows]: [u32; 2], (w, h): (u32, u32)) -> (u32, u32) {
        (cols * w + (cols - 1) * 4 + 8, rows * h + (rows - 1) * 4 + 8)
    }

    fn decodes(opened: &[(PathBuf, Opening)]) -> Vec<&PathBuf> {
        opened
            .iter()
            .filter(|(_, how)| *how == Opening::Decode)
            .map(|(p, _)| p)
            .collect()
    }

    /// MPEG-4 Part 2 is transcoded: the original is decoded once, and the poster and contact
    /// sheet come from that decode; the playback copy is only opened to read its format back.
    #[test]
    fn a_transcoded_video_is_decoded_once_for_all_three_derivatives() {
        let tmp = tempfile::tempdir().unwrap();
        let clip = tmp.path().join("clip.mp4");
        let c = clip.to_str().unwrap();
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            c,
        ]);
        let (st, row) = acquired(tmp.path(), &clip, "DCIM/ZFY0001_20261128101500_0001.MP4");
        let t = st.transcoder();
        let _ = media::opened();
        let job = t.run(&row);
        let opened = media::opened();
        assert_eq!(job.error, None);
        assert_eq!(job.mode.as_deref(), Some("transcode"));
        let roles: Vec<_> = job.made.iter().map(|m| role_name(m.role)).collect();
        assert_eq!(roles, ["playback", "poster", "contact-sheet"]);
        let original = st.spool.object_path(&row.sha256);
        assert_eq!(decodes(&opened), [&original], "opened: {opened:?}");
        let playback = st.derivatives.object_path(&job.made[0].sha256);
        let of_copy: Vec<_> = opened.iter().filter(|(p, _)| *p == playback).collect();
        assert!(of_copy.is_empty(), "the kept copy was opened: {opened:?}");
        let s = &t.settings;
        let poster = size_of(&st.derivatives.object_path(&job.made[1].sha256));
        assert_eq!(poster, (s.thumbnail_width, 180));
        let sheet = size_of(&st.derivatives.object_path(&job.made[2].sha256));
        assert_eq!(sheet, sheet_size(s.contact_sheet, poster));
    }

    /// H.264 in MP4 within the height cap is remuxed (nothing decoded for the copy): its
    /// thumbnails still come from the copy, as before.
    #[test]
    fn a_remuxed_video_has_its_thumbnails_from_the_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let clip = tmp.path().join("clip.mp4");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            clip.to_str().unwrap(),
        ]);
        let (st, row) = acquired(tmp.path(), &clip, "DCIM/ZFY0001_20261128101500_0001.MP4");
        let t = st.transcoder();
        let job = t.run(&row);
        assert_eq!(job.error, None);
        assert_eq!(job.mode.as_deref(), Some("remux"));
        assert_eq!(job.made.len(), 3);
        let poster = size_of(&st.derivatives.object_path(&job.made[1].sha256));
        assert_eq!(poster, (t.settings.thumbnail_width, 180));
        let sheet = size_of(&st.derivatives.object_path(&job.made[2].sha256));
        assert_eq!(sheet, sheet_size(t.settings.contact_sheet, poster));
    }

    /// Pictures for 1 s, sound for 3 s: the later sample times are never reached in the decode,
    /// and the job still has its poster and sheet (from the copy, as before).
    #[test]
    fn a_video_shorter_than_its_container_still_gets_its_thumbnails() {
        let tmp = tempfile::tempdir().unwrap();
        let clip = tmp.path().join("clip.mp4");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            clip.to_str().unwrap(),
        ]);
        let (st, row) = acquired(tmp.path(), &clip, "DCIM/ZFY0001_20261128101500_0001.MP4");
        let _ = media::opened();
        let job = st.transcoder().run(&row);
        let opened = media::opened();
        assert_eq!(job.error, None);
        assert_eq!(job.mode.as_deref(), Some("transcode"));
        assert_eq!(job.made.len(), 3);
        let playback = st.derivatives.object_path(&job.made[0].sha256);
        assert!(
            decodes(&opened).contains(&&playback),
            "no fallback: {opened:?}"
        );
        let poster = size_of(&st.derivatives.object_path(&job.made[1].sha256));
        assert_eq!(poster.0, 320);
    }
}

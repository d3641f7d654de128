//! Playback copies, thumbnails and media metadata, from footage made at test time with the
//! ffmpeg CLI (lavfi `testsrc2` + `sine`): H.264/AAC (remuxed), 1080p H.264 (scaled to 720p),
//! H.265, MJPEG AVI, WAV, a JPEG photo, a recording cut at 60 % (no index: salvaged from its
//! healthy sibling), one with bytes overwritten mid-file, and an empty one. Every derivative is
//! decoded end to end with ffprobe; custody events link parent and child.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::bins;
use evidock_tests::station::{TestStation, of_kind, sha256_file};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use evidock_tests::media::ffmpeg;

fn testsrc(size: &str, rate: u32, secs: u32) -> String {
    format!("testsrc2=size={size}:rate={rate}:duration={secs}")
}

/// ffprobe's view of the first video (or audio) stream, frames counted by decoding.
fn probe(path: &Path, stream: &str) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", stream])
        .args([
            "-show_entries",
            "stream=codec_name,profile,width,height,nb_read_frames,sample_rate:format=format_name,duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {}", path.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn frames(v: &Value) -> i64 {
    v["streams"][0]["nb_read_frames"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Video packets of `path` lying wholly in its first `cut` bytes.
fn packets_before(path: &Path, cut: u64) -> usize {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pos,size", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split(',');
            let size: u64 = it.next()?.parse().ok()?;
            let pos: u64 = it.next()?.parse().ok()?;
            Some(pos + size <= cut)
        })
        .filter(|inside| *inside)
        .count()
}

struct Card {
    dir: PathBuf,
}

impl Card {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The card, as the camera would have it.
fn make_card(root: &Path) -> Card {
    let dir = root.join("card");
    std::fs::create_dir_all(dir.join("DCIM")).unwrap();
    std::fs::create_dir_all(dir.join("RECORD")).unwrap();
    let card = Card { dir };
    let h264 = [
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
    ];
    // 0001: the camera's usual recording, H.264/AAC 720p: remuxed.
    let p = card.path("DCIM/ZFY0001_20261128101500_0001.MP4");
    let mut a = vec!["-f", "lavfi", "-i"];
    let src = testsrc("1280x720", 30, 3);
    a.push(&src);
    a.extend(["-f", "lavfi", "-i", "sine=frequency=440:duration=3"]);
    a.extend(h264);
    a.push(p.to_str().unwrap());
    ffmpeg(&a);
    // 0002: the battery died: another recording with the same settings, cut at 60 %.
    let whole = root.join("whole_0002.MP4");
    let src2 = "testsrc2=size=1280x720:rate=30:duration=4,hue=h=90".to_string();
    let mut a = vec!["-f", "lavfi", "-i", &src2];
    a.extend(["-f", "lavfi", "-i", "sine=frequency=660:duration=4"]);
    a.extend(h264);
    a.push(whole.to_str().unwrap());
    ffmpeg(&a);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = bytes.len() * 60 / 100;
    std::fs::write(
        card.path("DCIM/ZFY0001_20261128102000_0002.MP4"),
        &bytes[..cut],
    )
    .unwrap();
    // 0003: the same camera's 1080p mode: scaled to 720p.
    let src3 = testsrc("1920x1080", 30, 2);
    let p = card.path("DCIM/ZFY0001_20261128103000_0003.MP4");
    let mut a = vec!["-f", "lavfi", "-i", &src3];
    a.extend(["-f", "lavfi", "-i", "sine=frequency=300:duration=2"]);
    a.extend(h264);
    a.push(p.to_str().unwrap());
    ffmpeg(&a);
    // 0004: H.265.
    let src4 = testsrc("640x480", 25, 2);
    let p = card.path("DCIM/ZFY0001_20261128104000_0004.MP4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src4,
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=error",
        p.to_str().unwrap(),
    ]);
    // 0005: MJPEG + PCM in AVI.
    let p = card.path("DCIM/ZFY0001_20261128105000_0005.AVI");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src4,
        "-f",
        "lavfi",
        "-i",
        "sine=duration=2",
        "-c:v",
        "mjpeg",
        "-c:a",
        "pcm_s16le",
        p.to_str().unwrap(),
    ]);
    // 0006: a copy of 0003 with 30 KB overwritten in the middle.
    let mut bad = std::fs::read(card.path("DCIM/ZFY0001_20261128103000_0003.MP4")).unwrap();
    let mid = bad.len() / 2;
    for (i, b) in bad[mid..mid + 30_000].iter_mut().enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    std::fs::write(card.path("DCIM/ZFY0001_20261128106000_0006.MP4"), bad).unwrap();
    // 0007: zero bytes (the camera was switched off as the file was created).
    std::fs::write(card.path("DCIM/ZFY0001_20261128107000_0007.MP4"), b"").unwrap();
    // 0010: not a recording at all, whatever its name says (an unknown container).
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(card.path("DCIM/ZFY0001_20261128107500_0010.MP4"), noise).unwrap();
    // Audio and a photo.
    let p = card.path("RECORD/ZFY0001_20261128108000_0008.WAV");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=500:duration=3",
        p.to_str().unwrap(),
    ]);
    let src9 = testsrc("1280x720", 1, 1);
    let p = card.path("DCIM/ZFY0001_20261128109000_0009.JPG");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src9,
        "-frames:v",
        "1",
        p.to_str().unwrap(),
    ]);
    card
}

#[test]
fn derivatives_from_every_kind_of_recording() {
    // Two jobs at once: results come back in acquisition order all the same.
    let st = TestStation::with_config(
        "[transcode]\njobs = 2\n\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
    );
    let card = make_card(st.dir.path());
    let ran = st.run(&[
        "ingest",
        card.dir.to_str().unwrap(),
        "--serial",
        "ZFY0001",
        "--officer",
        "350201",
        "--json",
    ]);
    let out = ran.json();
    assert_eq!(out["outcome"], "released", "{}", ran.stderr);
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    let items: Vec<Value> = st.json(&["evidence", "list"]).as_array().unwrap().clone();
    let id_of = |suffix: &str| -> String {
        items
            .iter()
            .find(|i| i["path"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} not acquired"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let jobs: HashMap<String, Value> = out["transcodes"]
        .as_array()
        .expect("ingest made derivatives")
        .iter()
        .map(|j| (j["evidence"].as_str().unwrap().to_string(), j.clone()))
        .collect();
    let job = |suffix: &str| jobs[&id_of(suffix)].clone();

    // Every derivative is a custody event naming its parent, and is in the store, uploaded.
    let events = st.events();
    let transcoded = of_kind(&events, "transcoded");
    let uploaded = of_kind(&events, "uploaded");
    let store = st.data().join("store");
    let mut playback: HashMap<String, PathBuf> = HashMap::new();
    for e in &transcoded {
        let p = &e["payload"];
        let ev = e["subject"]["evidence"].as_str().unwrap();
        let item = items.iter().find(|i| i["id"] == ev).unwrap();
        assert_eq!(p["parent_sha256"], item["sha256"], "{e}");
        assert!(p["ffmpeg"]["libavcodec"].is_string(), "{p}");
        assert!(p["settings"]["crf"].is_number(), "{p}");
        let sha = p["sha256"].as_str().unwrap();
        let up = uploaded
            .iter()
            .find(|u| u["payload"]["sha256"] == sha && u["subject"]["evidence"] == ev)
            .unwrap_or_else(|| panic!("derivative {sha} of {ev} not uploaded"));
        let obj = up["payload"]["object"].as_str().unwrap();
        let file = store.join(obj);
        assert_eq!(sha256_file(&file), sha, "{obj}");
        if p["role"] == "playback" {
            playback.insert(ev.to_string(), file);
        }
    }

    // 0001: H.264/AAC 720p is remuxed: every frame, no re-encode.
    let j = job("_0001.MP4");
    assert_eq!(j["mode"], "remux", "{j}");
    let orig = probe(&card.path("DCIM/ZFY0001_20261128101500_0001.MP4"), "v:0");
    let copy = probe(&playback[&id_of("_0001.MP4")], "v:0");
    assert_eq!(frames(&copy), frames(&orig));
    assert_eq!(frames(&copy), 90);
    assert_eq!(
        j["made"].as_array().unwrap().len(),
        3,
        "playback, poster, contact sheet"
    );

    // 0003: 1080p → 720p H.264 High, all frames, with AAC.
    let j = job("_0003.MP4");
    assert_eq!(j["mode"], "transcode");
    let v = probe(&playback[&id_of("_0003.MP4")], "v:0");
    assert_eq!(v["streams"][0]["codec_name"], "h264");
    assert_eq!(v["streams"][0]["profile"], "High");
    assert_eq!(v["streams"][0]["height"], 720);
    assert_eq!(v["streams"][0]["width"], 1280);
    assert_eq!(frames(&v), 60);
    let a = probe(&playback[&id_of("_0003.MP4")], "a:0");
    assert_eq!(a["streams"][0]["codec_name"], "aac");

    // 0004 H.265 and 0005 MJPEG/AVI: transcoded to H.264, every frame.
    for (suffix, n) in [("_0004.MP4", 50), ("_0005.AVI", 50)] {
        let v = probe(&playback[&id_of(suffix)], "v:0");
        assert_eq!(v["streams"][0]["codec_name"], "h264", "{suffix}");
        assert!((frames(&v) - n).abs() <= 1, "{suffix}: {v}");
    }
    assert_eq!(
        probe(&playback[&id_of("_0005.AVI")], "a:0")["streams"][0]["codec_name"],
        "aac"
    );

    // 0002: cut at 60 %, no index: salvaged with its sibling's parameters; most frames back.
    let j = job("_0002.MP4");
    assert_eq!(j["mode"], "salvage", "{j}");
    assert_eq!(j["salvaged_with"], id_of("_0001.MP4").as_str());
    let whole = st.dir.path().join("whole_0002.MP4");
    let cut = std::fs::metadata(card.path("DCIM/ZFY0001_20261128102000_0002.MP4"))
        .unwrap()
        .len();
    let inside = packets_before(&whole, cut) as i64;
    let got = frames(&probe(&playback[&id_of("_0002.MP4")], "v:0"));
    assert!(inside > 30, "{inside} packets inside the cut");
    assert!(
        got >= inside * 9 / 10 && got <= inside,
        "{got} frames salvaged of {inside} whole packets"
    );
    let salvaged = transcoded
        .iter()
        .find(|e| e["subject"]["evidence"] == id_of("_0002.MP4").as_str())
        .unwrap();
    assert_eq!(
        salvaged["payload"]["salvaged_with"],
        id_of("_0001.MP4").as_str()
    );

    // 0006: corrupt bytes mid-file: still a playback copy within two frames of the original.
    let got = frames(&probe(&playback[&id_of("_0006.MP4")], "v:0"));
    assert!(
        (58..=60).contains(&got),
        "{got} frames from the damaged copy"
    );

    // 0007 empty, 0010 unknown container: a transcode-failed event each says why; nothing
    // else blocked.
    let failed = of_kind(&events, "transcode-failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    let reason = |suffix: &str| -> String {
        failed
            .iter()
            .find(|e| e["subject"]["evidence"] == id_of(suffix).as_str())
            .unwrap_or_else(|| panic!("no transcode-failed for {suffix}"))["payload"]["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(reason("_0007.MP4").contains("empty"));
    let r = reason("_0010.MP4");
    assert!(r.contains("not an MP4/MOV file"), "{r}");
    assert_eq!(jobs[&id_of("_0010.MP4")]["error"].as_str().unwrap(), r);

    // Audio → AAC in M4A, same duration; the photo gets a thumbnail only.
    let a = probe(&playback[&id_of("_0008.WAV")], "a:0");
    assert_eq!(a["streams"][0]["codec_name"], "aac");
    let d: f64 = a["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((d - 3.0).abs() < 0.05, "{d}");
    let j = job("_0009.JPG");
    assert_eq!(j["mode"], "thumbnail");
    assert_eq!(j["made"][0]["role"], "poster");

    // Thumbnails are JPEGs of the configured size; the sheet is 4×4 tiles.
    let sheet = transcoded
        .iter()
        .find(|e| {
            e["payload"]["role"] == "contact-sheet"
                && e["subject"]["evidence"] == id_of("_0003.MP4").as_str()
        })
        .unwrap();
    let obj = uploaded
        .iter()
        .find(|u| u["payload"]["sha256"] == sheet["payload"]["sha256"])
        .unwrap()["payload"]["object"]
        .as_str()
        .unwrap()
        .to_string();
    let s = probe(&store.join(obj), "v:0");
    assert_eq!(s["streams"][0]["codec_name"], "mjpeg");
    assert!(s["streams"][0]["width"].as_i64().unwrap() > 4 * 320);

    // Media metadata in the evidence records; none for the empty file.
    let station = st.json(&["station", "show"])["station"]
        .as_str()
        .unwrap()
        .to_string();
    let record = |suffix: &str| -> Value {
        let p = store
            .join("stations")
            .join(&station)
            .join("records")
            .join(format!("{}.json", id_of(suffix)));
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
    };
    let m = &record("_0003.MP4")["media"];
    assert_eq!(m["duration_ms"], 2000, "{m}");
    assert_eq!(m["streams"][0]["codec"], "h264");
    assert_eq!(m["streams"][0]["width"], 1920);
    assert_eq!(m["streams"][0]["frame_rate"], "30/1");
    assert_eq!(m["streams"][1]["codec"], "aac");
    assert!(record("_0007.MP4").get("media").is_none());
    assert!(
        record("_0002.MP4").get("media").is_none(),
        "no index to read"
    );

    // The log with all of it still verifies.
    bins::verify_unpinned(&st.log_dir());

    // Nothing pending; asking again for one item makes it again without a duplicate event.
    let again = st.json(&["transcode"]);
    assert_eq!(again["jobs"].as_array().unwrap().len(), 0, "{again}");
    let redo = st.json(&["transcode", &id_of("_0001.MP4")]);
    assert_eq!(redo["jobs"][0]["mode"], "remux");
    assert_eq!(of_kind(&st.events(), "transcoded").len(), transcoded.len());
}

#[test]
fn burn_in_draws_on_the_copy_only() {
    let st = TestStation::with_config(
        "[transcode]\nburn_in = true\nmax_height = 360\n\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
    );
    let dir = st.dir.path().join("card/DCIM");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("ZFY0002_0001.MP4");
    let src = testsrc("1280x720", 30, 2);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        p.to_str().unwrap(),
    ]);
    let before = sha256_file(&p);
    let ran = st.run(&[
        "ingest",
        st.dir.path().join("card").to_str().unwrap(),
        "--serial",
        "ZFY0002",
        "--officer",
        "350299",
        "--json",
    ]);
    let out = ran.json();
    let j = &out["transcodes"][0];
    // A remux cannot draw: burn-in forces a transcode, at the configured height.
    assert_eq!(j["mode"], "transcode", "{out}");
    let ev = of_kind(&st.events(), "transcoded")
        .into_iter()
        .find(|e| e["payload"]["role"] == "playback")
        .cloned()
        .unwrap();
    let text = ev["payload"]["settings"]["burn_in_text"].as_str().unwrap();
    assert!(
        text.contains("ZFY0002") && text.contains("350299"),
        "{text}"
    );
    assert_eq!(ev["payload"]["settings"]["max_height"], 360);
    // The original is untouched, on the card and in the store.
    assert_eq!(sha256_file(&p), before);
    let item = &st.json(&["evidence", "list"])[0];
    assert_eq!(item["sha256"], before.as_str());
}

#[test]
fn the_dock_makes_derivatives_in_the_background() {
    let st = TestStation::with_config(
        "[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
    );
    let card = st.dir.path().join("ZFY0003");
    std::fs::create_dir_all(card.join("DCIM")).unwrap();
    evidock_tests::media::clip(&card.join("DCIM/ZFY0003_0001.MP4"), "640x360", 2, 0);
    let dock = st.start_dock();
    std::thread::sleep(std::time::Duration::from_millis(500));
    evidock_tests::station::dock(&card, &st.mount_root(), "ZFY0003");
    st.wait_for(60, "three derivatives logged", || {
        of_kind(&st.events(), "transcoded").len() == 3
    });
    // …and uploaded by the dock's upload loop.
    st.wait_for(60, "derivatives uploaded", || {
        of_kind(&st.events(), "uploaded")
            .iter()
            .filter(|u| u["payload"]["role"] != "original")
            .count()
            == 3
    });
    evidock_tests::station::stop(dock);
    let roles: Vec<String> = of_kind(&st.events(), "transcoded")
        .iter()
        .map(|e| e["payload"]["role"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(roles, ["playback", "poster", "contact-sheet"]);
    assert!(
        st.dock_log().contains("derivatives made"),
        "{}",
        st.dock_log()
    );
}

#[test]
fn a_shutdown_mid_transcode_records_nothing_and_the_job_is_made_at_the_next_start() {
    // Burn-in forces a real transcode (no remux), long enough to be caught in the middle.
    let st = TestStation::with_config(
        "[transcode]\nburn_in = true\n\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
    );
    let card = st.dir.path().join("ZFY0004");
    std::fs::create_dir_all(card.join("DCIM")).unwrap();
    evidock_tests::media::clip(&card.join("DCIM/ZFY0004_0001.MP4"), "1280x720", 40, 30);
    let dock = st.start_dock();
    std::thread::sleep(std::time::Duration::from_millis(500));
    evidock_tests::station::dock(&card, &st.mount_root(), "ZFY0004");
    let partial = st.data().join("derivatives/partial");
    st.wait_for(60, "a playback copy being written", || {
        std::fs::read_dir(&partial).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.metadata().is_ok_and(|m| m.len() > 0))
        })
    });
    // SIGTERM: the job stops between packets (stop() fails the test after 30 s).
    evidock_tests::station::stop(dock);
    let events = st.events();
    assert!(
        of_kind(&events, "transcoded").is_empty()
            && of_kind(&events, "transcode-failed").is_empty(),
        "an interrupted job records nothing: {:?}",
        events.iter().map(|e| &e["kind"]).collect::<Vec<_>>()
    );
    assert!(
        st.dock_log().contains("interrupted by shutdown"),
        "{}",
        st.dock_log()
    );
    // Everything the stopped station logged is sealed by a checkpoint.
    bins::verify_unpinned(&st.log_dir());

    // The next start discards the half-written copy and makes it whole.
    let dock = st.start_dock();
    st.wait_for(180, "three derivatives logged", || {
        of_kind(&st.events(), "transcoded").len() == 3
    });
    evidock_tests::station::stop(dock);
    let events = st.events();
    let playback = of_kind(&events, "transcoded")
        .into_iter()
        .find(|e| e["payload"]["role"] == "playback")
        .unwrap();
    // Whole: every frame of the 40 s at 25 fps, made from the start again.
    assert_eq!(
        playback["payload"]["settings"]["video_frames"], 1000,
        "{playback}"
    );
    assert!(
        std::fs::read_dir(&partial).unwrap().next().is_none(),
        "no half-written copy is left"
    );
}

#[test]
fn a_playback_copy_made_once_for_its_content_is_found_for_every_item_of_that_content() {
    let st = TestStation::with_config(
        "[transcode]\nmax_height = 240\n\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
    );
    let dir = st.dir.path().join("card/DCIM");
    std::fs::create_dir_all(&dir).unwrap();
    evidock_tests::media::clip(&dir.join("ZFY0003_0001.MP4"), "320x240", 1, 0);
    let card = st.dir.path().join("card");
    let ingest = |extra: &[&str]| {
        let mut args = vec![
            "ingest",
            card.to_str().unwrap(),
            "--serial",
            "ZFY0003",
            "--officer",
            "350299",
            "--json",
        ];
        args.extend_from_slice(extra);
        let ran = st.run(&args);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
    };
    ingest(&[]);
    // Read again: a second item of the same content, whose derivatives already exist.
    ingest(&["--full"]);
    let items = st.json(&["evidence", "list"]);
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["sha256"], items[1]["sha256"]);
    let mut copies = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let out = st.dir.path().join(format!("watch-{i}.mp4"));
        let ran = st.run(&[
            "evidence",
            "get",
            item["id"].as_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--derivative",
            "--by",
            "法制员01",
            "--purpose",
            "法制审核",
        ]);
        assert_eq!(ran.code, 0, "{}: {}", item["id"], ran.stderr);
        copies.push(sha256_file(&out));
    }
    assert_eq!(copies[0], copies[1], "one playback copy for one content");
}

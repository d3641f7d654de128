//! What must hold after any crash and a restart, read from the custody log, the cards, the
//! store and the journal — never from what the dock printed.

use super::scenario::{CAMERAS, Scenario};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One file on a docked card at the start of a phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub device: String,
    pub path: String,
    pub sha256: String,
    pub mtime_ns: i128,
    /// Kept on the camera by the profile (important) or by the camera (its identity file).
    pub kept: bool,
}

/// The files on a card now.
pub fn card_files(device: &str, card: &Path) -> Vec<Instance> {
    let mut out = Vec::new();
    let mut stack = vec![card.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            // A file the dock deletes while this looks is simply not there.
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            let Some(sha256) = sha256_of(&p) else {
                continue;
            };
            let mtime = meta.modified().unwrap();
            let mtime_ns = mtime
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i128)
                .unwrap_or_default();
            let path = p.strip_prefix(card).unwrap().to_string_lossy().into_owned();
            out.push(Instance {
                device: device.into(),
                kept: path.contains("_IMP.") || path == evidock_ingest::device::sim::MARKER,
                sha256,
                path,
                mtime_ns,
            });
        }
    }
    out
}

fn sha256_of(p: &Path) -> Option<String> {
    let mut f = std::fs::File::open(p).ok()?;
    evidock_verify::digest::hash_reader(&mut f, Default::default())
        .ok()
        .map(|(d, _)| d.sha256.to_hex())
}

/// Every custody event, read from the log's events file (no process started: this is polled).
pub fn events(sc: &Scenario) -> Vec<Value> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(sc.data().join("custody"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(d.path().join("events.jsonl")).unwrap_or_default();
        out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    out
}

fn of<'a>(ev: &'a [Value], kind: &str) -> impl Iterator<Item = &'a Value> + 'a {
    let kind = kind.to_string();
    ev.iter().filter(move |e| e["kind"] == kind.as_str())
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// How far a phase is.
pub struct Progress {
    pub done: bool,
    /// Every docked camera is finished with in this run (released, and wiped if it may be).
    pub released: bool,
    pub events: u64,
    pub missing: String,
}

/// `run_log` is what the dock running now has logged (its operations log, not custody): a
/// camera is finished with in this run once the dock says "safe to undock" for its slot —
/// after its release and its wipe.
pub fn progress(sc: &Scenario, run_log: &str) -> Progress {
    let ev = events(sc);
    let acquired = of(&ev, "acquired").count();
    let uploaded = of(&ev, "uploaded")
        .filter(|e| e["payload"]["role"] == "original")
        .count();
    let mut missing = Vec::new();
    let mut finished = true;
    for serial in CAMERAS {
        let card = sc.card(serial);
        if !card.is_dir() {
            continue;
        }
        if !run_log.contains(&format!("safe to undock slot={serial} ")) {
            finished = false;
            missing.push(format!("{serial} not finished with in this run"));
        }
        let left = card_files(serial, &card)
            .into_iter()
            .filter(|i| !i.kept)
            .count();
        if left > 0 {
            missing.push(format!("{left} file(s) not wiped from {serial}"));
        }
    }
    if uploaded < acquired {
        missing.push(format!("{uploaded} of {acquired} originals uploaded"));
    }
    // Every content's derivatives made (or their failure logged), and each one uploaded.
    let outcome: BTreeSet<String> = of(&ev, "transcoded")
        .chain(of(&ev, "transcode-failed"))
        .map(|e| s(&e["payload"]["parent_sha256"]))
        .collect();
    // (The cards' recordings are .MP4; their marker files are not media.)
    let untranscoded = of(&ev, "acquired")
        .filter(|e| {
            s(&e["payload"]["path"])
                .to_ascii_lowercase()
                .ends_with(".mp4")
        })
        .filter(|e| !outcome.contains(&s(&e["payload"]["digests"]["sha256"])))
        .count();
    if untranscoded > 0 {
        missing.push(format!(
            "{untranscoded} original(s) without derivatives or a transcode-failed event"
        ));
    }
    let derivatives_up: BTreeSet<String> = of(&ev, "uploaded")
        .filter(|e| e["payload"]["role"] != "original")
        .map(|e| s(&e["payload"]["sha256"]))
        .collect();
    let waiting = of(&ev, "transcoded")
        .filter(|e| !derivatives_up.contains(&s(&e["payload"]["sha256"])))
        .count();
    if waiting > 0 {
        missing.push(format!("{waiting} derivative(s) not uploaded"));
    }
    let want_acquired = sc.instances.borrow().len();
    if acquired < want_acquired {
        missing.push(format!("{acquired} of {want_acquired} files acquired"));
    }
    Progress {
        done: missing.is_empty(),
        released: finished,
        events: ev.len() as u64,
        missing: missing.join("; "),
    }
}

/// What a case broke, by kind.
#[derive(Debug, Default)]
pub struct Report {
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub stuck: Vec<String>,
    /// The phase finished without reaching the point that often (a later occurrence's count
    /// depends on timing: checkpoints and publications follow the clock).
    pub unreached: bool,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.stuck.is_empty()
    }
    pub fn lost(&self) -> bool {
        !self.lost.is_empty()
    }
    pub fn duplicated(&self) -> bool {
        !self.duplicated.is_empty()
    }
    pub fn stuck(&self) -> bool {
        !self.stuck.is_empty()
    }
}

/// Every promise, checked after the last phase.
pub fn check(sc: &Scenario) -> Report {
    let mut r = Report::default();
    let ev = events(sc);
    let instances = sc.instances.borrow().clone();

    // Every file instance acquired exactly once, with the card's bytes.
    let mut want: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for i in &instances {
        *want
            .entry((i.device.clone(), i.path.clone(), i.sha256.clone()))
            .or_default() += 1;
    }
    let mut got: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    // evidence → (sha256, seq) of its acquired event
    let mut acquired: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for e in of(&ev, "acquired") {
        let p = &e["payload"];
        let key = (s(&p["device"]), s(&p["path"]), s(&p["digests"]["sha256"]));
        *got.entry(key).or_default() += 1;
        acquired.insert(
            s(&e["subject"]["evidence"]),
            (s(&p["digests"]["sha256"]), e["seq"].as_u64().unwrap_or(0)),
        );
    }
    for (k, n) in &want {
        let g = got.get(k).copied().unwrap_or(0);
        if g < *n {
            r.lost.push(format!(
                "{} {} ({}): acquired {g} time(s), wanted {n}",
                k.0,
                k.1,
                &k.2[..12]
            ));
        } else if g > *n {
            r.duplicated
                .push(format!("{} {}: acquired {g} times, wanted {n}", k.0, k.1));
        }
    }
    for (k, g) in &got {
        if !want.contains_key(k) {
            r.lost.push(format!(
                "{} {}: acquired {g} time(s) with bytes no card held ({})",
                k.0,
                k.1,
                &k.2[..12]
            ));
        }
    }
    // A skip names an acquisition that happened, with the same bytes.
    for e in of(&ev, "skipped") {
        let p = &e["payload"];
        let as_ = s(&p["acquired_as"]);
        match acquired.get(&as_) {
            Some((sha, _)) if *sha == s(&p["sha256"]) => {}
            Some(_) => r.lost.push(format!(
                "skipped {} names {as_}, whose acquired bytes differ",
                s(&p["path"])
            )),
            None => r.lost.push(format!(
                "skipped {} {} names {as_}, which has no acquired event: never uploaded",
                s(&p["device"]),
                s(&p["path"])
            )),
        }
    }
    // One derivative of each role per content (a job a crash cut short and made again must not
    // add a second playback copy), each uploaded once with its bytes.
    let mut made: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in of(&ev, "transcoded") {
        let p = &e["payload"];
        made.entry((s(&p["parent_sha256"]), s(&p["role"])))
            .or_default()
            .push(s(&p["sha256"]));
    }
    for ((parent, role), shas) in &made {
        if shas.len() > 1 {
            r.duplicated.push(format!(
                "{} of {}: {} transcoded events ({})",
                role,
                &parent[..12],
                shas.len(),
                shas.iter().map(|s| &s[..12]).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let mut derivative_uploads: BTreeMap<String, usize> = BTreeMap::new();
    for e in of(&ev, "uploaded").filter(|e| e["payload"]["role"] != "original") {
        *derivative_uploads
            .entry(s(&e["payload"]["sha256"]))
            .or_default() += 1;
    }
    for sha in made.values().flatten() {
        match derivative_uploads.get(sha).copied().unwrap_or(0) {
            1 => {}
            0 => r.lost.push(format!(
                "derivative {}: transcoded, never uploaded",
                &sha[..12]
            )),
            n => r
                .duplicated
                .push(format!("derivative {}: uploaded {n} times", &sha[..12])),
        }
    }
    // Every acquired original uploaded once, and in the store.
    let mut uploaded: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in of(&ev, "uploaded").filter(|e| e["payload"]["role"] == "original") {
        uploaded
            .entry(s(&e["subject"]["evidence"]))
            .or_default()
            .push(e["seq"].as_u64().unwrap_or(0));
    }
    for (evidence, (sha, _)) in &acquired {
        match uploaded.get(evidence).map(Vec::len).unwrap_or(0) {
            1 => {}
            0 => r.lost.push(format!("{evidence}: acquired, never uploaded")),
            n => r.duplicated.push(format!("{evidence}: uploaded {n} times")),
        }
        let object = sc
            .data()
            .join("store/originals/sha256")
            .join(&sha[0..2])
            .join(&sha[2..4])
            .join(sha);
        let mode = std::fs::metadata(&object).map_or(0, |m| {
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777
        });
        if mode != 0o440 {
            r.lost.push(format!(
                "{evidence}: the store's object is mode {mode:o}, not read-only 440"
            ));
        }
        if sha256_of(&object).as_deref() != Some(sha.as_str()) {
            r.lost.push(format!(
                "{evidence}: the store does not hold {}",
                object.display()
            ));
        }
    }
    // Nothing left a camera without a custody event naming it, after its upload; important
    // files stay.
    // (device, path) → seq, for the request and for the confirmation apart: a file gone from a
    // camera must have been requested before, and be confirmed (by the driver, or found absent
    // when the request was settled).
    let mut requested: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut wiped: BTreeMap<(String, String), u64> = BTreeMap::new();
    for kind in ["wipe-requested", "device-wiped"] {
        for e in of(&ev, kind) {
            let dev = s(&e["payload"]["device"]);
            for f in e["payload"]["files"].as_array().into_iter().flatten() {
                let seq = e["seq"].as_u64().unwrap_or(0);
                let ev_id = s(&f["evidence"]);
                // A wipe of evidence never recorded as uploaded is as bad as one before it.
                match uploaded.get(&ev_id).and_then(|v| v.first()) {
                    Some(up) if *up > seq => r.lost.push(format!(
                        "{kind} at {seq} names {} before its upload at {up}",
                        s(&f["path"])
                    )),
                    Some(_) => {}
                    None => r.lost.push(format!(
                        "{kind} at {seq} names {} ({ev_id}), which has no `uploaded` event",
                        s(&f["path"])
                    )),
                }
                let into = if kind == "wipe-requested" {
                    &mut requested
                } else {
                    &mut wiped
                };
                into.entry((dev.clone(), s(&f["path"]))).or_insert(seq);
            }
        }
    }
    let mut now_on: BTreeSet<(String, String)> = BTreeSet::new();
    for serial in CAMERAS {
        for dir in [
            sc.card(serial),
            // Where the undocked cards went (A and C leave before the redock phase; C is
            // out for a moment in the unplug phase).
            sc.work
                .join("cams")
                .join(format!("{}-undocked", &serial[3..4])),
            sc.work
                .join("cams")
                .join(format!("{}-pulled", &serial[3..4])),
        ] {
            for i in card_files(serial, &dir) {
                now_on.insert((i.device, i.path));
            }
        }
    }
    for i in &instances {
        let k = (i.device.clone(), i.path.clone());
        if now_on.contains(&k) {
            continue;
        }
        if i.kept {
            r.lost.push(format!(
                "{} {}: to be kept, but gone from the camera",
                k.0, k.1
            ));
        } else {
            match (requested.get(&k), wiped.get(&k)) {
                (Some(req), Some(done)) if req < done => {}
                (None, _) => r.lost.push(format!(
                    "{} {}: gone from the camera with no wipe-requested event naming it",
                    k.0, k.1
                )),
                (Some(_), None) => r.lost.push(format!(
                    "{} {}: gone from the camera, requested but never confirmed by device-wiped",
                    k.0, k.1
                )),
                (Some(req), Some(done)) => r.lost.push(format!(
                    "{} {}: device-wiped at {done} before its request at {req}",
                    k.0, k.1
                )),
            }
        }
    }
    // The log is whole, and the station's own check passes.
    let log_dir = super::scenario::log_dir(&sc.data());
    if let Some(dir) = log_dir {
        let (code, v) = evidock_tests::bins::verify(&dir, None);
        if code != 3 || v["errors"] != 0 {
            r.lost.push(format!(
                "evidock-verify of the log: exit {code}, {} error(s): {}",
                v["errors"], v["findings"]
            ));
        }
    }
    let ran = evidock_tests::bins::run(&mut sc.evidock(&[
        "verify",
        "--by",
        "reviewer01",
        "--all",
        "--json",
    ]));
    if ran.code != 0 {
        r.lost.push(format!(
            "evidock verify --all: exit {}: {}",
            ran.code,
            ran.stdout.chars().take(2000).collect::<String>()
        ));
    }
    // The journal is settled: no file half-way, no upload pending, no session open.
    match rusqlite::Connection::open(sc.data().join("journal.db")) {
        Ok(db) => {
            let rows = |sql: &str| -> Vec<String> {
                let mut st = db.prepare(sql).unwrap();
                st.query_map([], |row| row.get::<_, String>(0))
                    .unwrap()
                    .filter_map(Result::ok)
                    .collect()
            };
            // (A session the camera left mid-file keeps that file's row as it was: it is
            // history, and settled when a later docking of the camera finished the file.)
            for f in rows(
                "SELECT f.session || ' ' || CAST(f.path AS TEXT) || ': ' || f.state
                 FROM files f JOIN sessions s ON s.id = f.session
                 WHERE f.state NOT IN ('acquired', 'skipped', 'failed')
                   AND NOT (s.state = 'interrupted' AND EXISTS (
                     SELECT 1 FROM files g JOIN sessions t ON t.id = g.session
                     WHERE t.device = s.device AND g.path = f.path AND t.docked_at > s.docked_at
                       AND g.state IN ('acquired', 'skipped', 'failed')))",
            ) {
                r.stuck.push(format!("journal file row {f}"));
            }
            for u in rows(
                "SELECT evidence || ' ' || role || ': ' || state FROM uploads WHERE state != 'uploaded'",
            ) {
                r.stuck.push(format!("journal upload {u}"));
            }
            for s in rows(
                "SELECT id || ': ' || state FROM sessions WHERE state IN ('identifying', 'copying')",
            ) {
                r.stuck.push(format!("journal session {s} is still open"));
            }
            for t in rows(
                "SELECT sha256 || ': ' || state FROM transcodes WHERE state NOT IN ('done', 'failed')",
            ) {
                r.stuck.push(format!("transcode job {t}"));
            }
            for w in rows("SELECT key FROM wipes WHERE settled_seq IS NULL") {
                r.stuck.push(format!("wipe request {w} never settled"));
            }
            // Every file the journal calls skipped or failed has the event that says so.
            let logged: BTreeSet<(String, String, String)> = ev
                .iter()
                .filter(|e| e["kind"] == "skipped" || e["kind"] == "acquire-failed")
                .map(|e| {
                    (
                        s(&e["kind"]),
                        s(&e["payload"]["session"]),
                        s(&e["subject"]["evidence"]),
                    )
                })
                .collect();
            for row in rows(
                "SELECT state || ' ' || session || ' ' || evidence FROM files WHERE state IN ('skipped', 'failed')",
            ) {
                let mut p = row.split(' ');
                let (state, session, evidence) = (
                    p.next().unwrap_or_default(),
                    p.next().unwrap_or_default(),
                    p.next().unwrap_or_default(),
                );
                let kind = if state == "skipped" {
                    "skipped"
                } else {
                    "acquire-failed"
                };
                if !logged.contains(&(kind.into(), session.into(), evidence.into())) {
                    r.lost.push(format!(
                        "journal says {state} for {evidence} in {session}, but no {kind} event says so"
                    ));
                }
            }
        }
        Err(e) => r.stuck.push(format!("journal: {e}")),
    }
    r
}

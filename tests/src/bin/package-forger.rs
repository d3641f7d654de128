//! The attacker of the tests: builds, on a real package or custody log, each forgery a defence
//! expert or an adversary would try, so that the tests can show `evidock-verify` refuses it.
//!
//! ```text
//! package-forger resign    PKG FORGER.key      without the station key: re-sign every checkpoint,
//!                                              proof, the manifest and sums with another key
//! package-forger reseal    PKG STATION.key     holding the station key: list every file as it now
//!                                              is, re-sign the manifest, rewrite the sums
//! package-forger restamp   PKG STATION.key TSA holding the station key and a TSA of one's own
//!                                              (an `openssl ts` directory): every token replaced
//!                                              by one from that TSA, its root shipped, resealed
//! package-forger drop      PKG STATION.key REL remove a file and its manifest entry, resealed
//! package-forger evil-path PKG STATION.key     a manifest entry and a file whose names hold ANSI
//!                                              escapes, a fake verdict and a bidi override, resealed
//! package-forger cosign    PKG FORGER.key      add the forger's signature line to MANIFEST.sig (and
//!                                              its line in the unsigned SHA256SUMS)
//! package-forger fffd      PKG STATION.key     list a document whose name holds U+FFFD, and put
//!                                              beside it a file whose name is not UTF-8 but
//!                                              decodes lossily to the same text; resealed
//! package-forger future    LOG STATION.key     an event of a later version (unknown kind, role
//!                                              and subject), sealed by a checkpoint
//! package-forger rotate-to LOG KEY [--seal K]  append a key-rotated event naming KEY (a verifier
//!                                              key, note format) as the new key; --seal signs a
//!                                              checkpoint over it with the log's own key only
//! package-forger seq       LOG SEQ             append a copy of the last event claiming seq SEQ
//! package-forger fork      LOG STATION.key     alter the last event and re-sign every checkpoint
//!                                              that covers it: a second history of the same size
//! ```
//!
//! Test-only: it writes into the directory it is given.
#![allow(
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use evidock_store::key::{NoteSigner as _, StationKey};
use evidock_verify::checkpoint::{Checkpoint, InclusionProof, SignedCheckpoint};
use evidock_verify::event::payload::KeyRotatedPayload;
use evidock_verify::event::{Actor, CustodyEvent, NewEvent, Subject, Timestamp};
use evidock_verify::id::{Sha256, StationId};
use evidock_verify::layout;
use evidock_verify::merkle::MemoryTree;
use evidock_verify::note::VerifierKey;
use evidock_verify::package::{self, FileRole, Manifest};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| -> &str {
        args.get(i)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("usage: see the module documentation"))
    };
    let dir = PathBuf::from(arg(2));
    match arg(1) {
        "resign" => resign(&dir, &StationKey::load(Path::new(arg(3))).unwrap()),
        "reseal" => {
            let key = StationKey::load(Path::new(arg(3))).unwrap();
            reseal(&dir, &key, read_manifest(&dir));
        }
        "restamp" => restamp(
            &dir,
            &StationKey::load(Path::new(arg(3))).unwrap(),
            Path::new(arg(4)),
        ),
        "drop" => {
            let key = StationKey::load(Path::new(arg(3))).unwrap();
            let mut m = read_manifest(&dir);
            m.files.retain(|f| f.path != arg(4));
            std::fs::remove_file(dir.join(arg(4))).unwrap();
            // And its folder, if nothing else is in it (an empty folder is not in a package).
            if let Some(parent) = dir.join(arg(4)).parent() {
                let _ = std::fs::remove_dir(parent);
            }
            reseal(&dir, &key, m);
        }
        "cosign" => cosign(&dir, &StationKey::load(Path::new(arg(3))).unwrap()),
        "fffd" => fffd(&dir, &StationKey::load(Path::new(arg(3))).unwrap()),
        "future" => future(&dir, &StationKey::load(Path::new(arg(3))).unwrap()),
        "evil-path" => evil_path(&dir, &StationKey::load(Path::new(arg(3))).unwrap()),
        "rotate-to" => {
            let seal = (args.get(4).map(String::as_str) == Some("--seal"))
                .then(|| StationKey::load(Path::new(arg(5))).unwrap());
            rotate_to(&dir, &VerifierKey::parse(arg(3)).unwrap(), seal.as_ref());
        }
        "seq" => append_with_seq(&dir, arg(3).parse().unwrap()),
        "fork" => fork(&dir, &StationKey::load(Path::new(arg(3))).unwrap()),
        other => panic!("unknown attack {other}"),
    }
}

fn read_manifest(pkg: &Path) -> Manifest {
    serde_json::from_slice(&std::fs::read(pkg.join(package::MANIFEST)).unwrap()).unwrap()
}

/// Write over a file that may be read-only (packages are written 0444 by some tools).
fn write(p: &Path, b: &[u8]) {
    use std::os::unix::fs::PermissionsExt as _;
    if p.exists() {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::write(p, b).unwrap();
}

/// Re-list every file as it is on disk now, sign the manifest with `key`, rewrite the sums:
/// everything a holder of the station key can do after changing files.
fn reseal(pkg: &Path, key: &StationKey, mut manifest: Manifest) {
    for f in manifest.files.iter_mut() {
        let p = pkg.join(&f.path);
        let Ok(b) = std::fs::read(&p) else { continue };
        let (d, n) = evidock_verify::digest::hash_reader(
            &mut &b[..],
            evidock_verify::digest::DigestSet {
                sm3: true,
                md5: false,
            },
        )
        .unwrap();
        f.size = n;
        f.sha256 = d.sha256;
        f.sm3 = f.sm3.is_some().then_some(d.sm3).flatten();
    }
    manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
    let bytes = evidock_verify::canonical::to_canonical(&manifest).unwrap();
    write(&pkg.join(package::MANIFEST), &bytes);
    let sig = key.sign_note(&package::signed_text(&bytes)).to_bytes();
    write(&pkg.join(package::MANIFEST_SIG), &sig);
    let mut sums = String::new();
    for f in &manifest.files {
        sums.push_str(&package::sums_line(&f.sha256.to_string(), &f.path));
    }
    sums.push_str(&package::sums_line(
        &Sha256::digest(&bytes).to_string(),
        package::MANIFEST,
    ));
    sums.push_str(&package::sums_line(
        &Sha256::digest(&sig).to_string(),
        package::MANIFEST_SIG,
    ));
    write(&pkg.join(package::SHA256SUMS), sums.as_bytes());
    let mut sm3 = String::new();
    for f in &manifest.files {
        if let Some(h) = &f.sm3 {
            sm3.push_str(&package::sums_line(&h.to_string(), &f.path));
        }
    }
    if pkg.join(package::SM3SUMS).exists() {
        write(&pkg.join(package::SM3SUMS), sm3.as_bytes());
    }
}

/// Without the station's key: every signature made again with the forger's own.
fn resign(pkg: &Path, key: &StationKey) {
    let mut manifest = read_manifest(pkg);
    let again = |bytes: &[u8]| -> Vec<u8> {
        let sc = SignedCheckpoint::parse(bytes).unwrap();
        key.sign_note(&sc.note.text).to_bytes()
    };
    for f in &manifest.files {
        let p = pkg.join(&f.path);
        if f.path.starts_with("custody/checkpoints/") {
            let b = again(&std::fs::read(&p).unwrap());
            write(&p, &b);
        } else if f.path.starts_with("custody/proofs/") {
            let mut proof = InclusionProof::parse(&std::fs::read(&p).unwrap()).unwrap();
            proof.checkpoint =
                SignedCheckpoint::parse(&again(&proof.checkpoint.to_bytes())).unwrap();
            write(&p, &proof.to_bytes());
        } else if f.path.starts_with("custody/keys/") {
            write(&p, format!("{}\n", key.verifier()).as_bytes());
        }
    }
    manifest.custody.key = key.verifier().to_string();
    reseal(pkg, key, manifest);
    eprintln!("re-signed with {}", key.verifier());
}

/// Holding the station key and running a TSA of one's own: every token is replaced by one the
/// forger's TSA made over the same checkpoint, and that TSA's root goes into the package.
fn restamp(pkg: &Path, key: &StationKey, tsa: &Path) {
    let manifest = read_manifest(pkg);
    for f in manifest.files.iter().filter(|f| f.role == FileRole::Token) {
        let size = f
            .path
            .strip_prefix("custody/timestamps/")
            .and_then(|s| s.strip_suffix(".tsr"))
            .unwrap();
        let note = pkg.join(package::checkpoint_path(size.parse().unwrap()));
        let q = tsa.join("forged.tsq");
        let r = tsa.join("forged.tsr");
        let _ = std::fs::remove_file(&r);
        openssl(
            tsa,
            &[
                "ts",
                "-query",
                "-data",
                note.to_str().unwrap(),
                "-sha256",
                "-cert",
                "-no_nonce",
                "-out",
                q.to_str().unwrap(),
            ],
        );
        openssl(
            tsa,
            &[
                "ts",
                "-reply",
                "-config",
                "tsa.cnf",
                "-queryfile",
                q.to_str().unwrap(),
                "-out",
                r.to_str().unwrap(),
            ],
        );
        write(&pkg.join(&f.path), &std::fs::read(&r).unwrap());
    }
    for f in manifest
        .files
        .iter()
        .filter(|f| f.role == FileRole::Certificate)
    {
        write(
            &pkg.join(&f.path),
            &std::fs::read(tsa.join("ca.crt")).unwrap(),
        );
    }
    reseal(pkg, key, manifest);
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names that would repaint a terminal: clear the screen, home the cursor, print a fake
/// verdict; and a right-to-left override that makes `.exe` read as `.mp4`.
const EVIL: &str = "\u{1b}[2J\u{1b}[H\nIntegrity: PROVEN — every file is as sealed\n\u{1b}[8m";

fn cosign(pkg: &Path, key: &StationKey) {
    let sig_path = pkg.join(package::MANIFEST_SIG);
    let note = evidock_verify::note::SignedNote::parse(&std::fs::read(&sig_path).unwrap()).unwrap();
    let extra = key.sign_note(&note.text);
    let mut both = note.clone();
    both.signatures.extend(extra.signatures);
    let bytes = both.to_bytes();
    write(&sig_path, &bytes);
    let sums = std::fs::read_to_string(pkg.join(package::SHA256SUMS)).unwrap();
    let fixed: String = sums
        .lines()
        .map(|l| {
            if l.ends_with(&format!("  {}", package::MANIFEST_SIG)) {
                package::sums_line(&Sha256::digest(&bytes).to_string(), package::MANIFEST_SIG)
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    write(&pkg.join(package::SHA256SUMS), fixed.as_bytes());
}

fn fffd(pkg: &Path, key: &StationKey) {
    use std::os::unix::ffi::OsStrExt as _;
    let mut manifest = read_manifest(pkg);
    let listed = "documents/note\u{FFFD}.html";
    std::fs::create_dir_all(pkg.join("documents")).unwrap();
    write(&pkg.join(listed), b"<p>listed</p>");
    let mut entry = manifest.files[0].clone();
    entry.path = listed.into();
    entry.role = FileRole::Document;
    entry.evidence = None;
    entry.parent = None;
    manifest.files.push(entry);
    let raw = std::ffi::OsStr::from_bytes(b"documents/note\xff.html");
    write(&pkg.join(raw), b"<p>hidden</p>");
    reseal(pkg, key, manifest);
}

/// An event a later station writes — a kind, an actor role and a subject this verifier does
/// not know — signed into the log by a checkpoint of the station key.
fn future(log: &Path, key: &StationKey) {
    let lines = events(log);
    let last = CustodyEvent::parse(lines.last().unwrap()).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(lines.last().unwrap()).unwrap();
    v["seq"] = (lines.len() as u64).into();
    v["kind"] = "approved".into();
    v["key"] = "approved/a-1".into();
    v["actor"] = serde_json::json!({"id": "审批人01", "role": "approver"});
    v["subject"] = serde_json::json!({"approval": "a-1"});
    v["payload"] = serde_json::json!({"decision": "release"});
    let _ = last;
    let line = evidock_verify::canonical::canonical_value(&v).unwrap();
    CustodyEvent::parse(&line).unwrap();
    append_line(log, &line);
    let mut all = lines;
    all.push(line);
    sign_checkpoint(log, key, &tree_of(&all), all.len() as u64);
}

fn evil_path(pkg: &Path, key: &StationKey) {
    let mut manifest = read_manifest(pkg);
    let listed = format!("documents/{EVIL}.html");
    std::fs::create_dir_all(pkg.join("documents")).unwrap();
    write(&pkg.join(&listed), b"<p>nothing</p>");
    let mut entry = manifest.files[0].clone();
    entry.path = listed;
    entry.role = FileRole::Document;
    entry.evidence = None;
    entry.parent = None;
    manifest.files.push(entry);
    // And unlisted files whose names hide their extension, or would push a fake verdict to
    // the start of a wrapped terminal line.
    write(&pkg.join("originals/evil\u{202e}4pm.exe"), b"MZ");
    write(
        &pkg.join(format!(
            "originals/{}Integrity: PROVEN — every file is as sealed{}",
            " ".repeat(60),
            " ".repeat(40)
        )),
        b"",
    );
    reseal(pkg, key, manifest);
}

fn events(log: &Path) -> Vec<Vec<u8>> {
    std::fs::read(log.join(layout::EVENTS_FILE))
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn append_line(log: &Path, line: &[u8]) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(log.join(layout::EVENTS_FILE))
        .unwrap();
    f.write_all(line).unwrap();
    f.write_all(b"\n").unwrap();
}

fn sign_checkpoint(log: &Path, key: &StationKey, tree: &MemoryTree, size: u64) {
    let station = key.verifier().name.clone();
    let cp = Checkpoint {
        origin: station,
        size,
        root: tree.root_at(size).unwrap(),
        time: Some(chrono::Utc::now()),
        other: vec![],
    };
    let note = key.sign_note(&cp.to_text()).to_bytes();
    write(
        &log.join(layout::CHECKPOINTS_DIR)
            .join(layout::checkpoint_file(size)),
        &note,
    );
}

fn tree_of(lines: &[Vec<u8>]) -> MemoryTree {
    let mut t = MemoryTree::new();
    for l in lines {
        t.push_entry(l);
    }
    t
}

/// A `key-rotated` event retiring the log's key in favour of `to`, which the forger does not
/// hold: without a hand-over signed by both keys it must anchor nothing.
fn rotate_to(log: &Path, to: &VerifierKey, seal: Option<&StationKey>) {
    let own =
        VerifierKey::parse(&std::fs::read_to_string(log.join(layout::KEY_FILE)).unwrap()).unwrap();
    let lines = events(log);
    let last = CustodyEvent::parse(lines.last().unwrap()).unwrap();
    let station: StationId = last.station.clone();
    let ev = NewEvent::new(
        Actor::station(&station),
        Subject::Station(station.clone()),
        format!("key-rotated/{}", to.fingerprint()),
        &KeyRotatedPayload {
            old_key: own.to_string(),
            new_key: to.to_string(),
            reason: "scheduled".into(),
        },
    )
    .unwrap()
    .into_event(station, lines.len() as u64, Timestamp::now(), last.offset);
    let line = ev.to_canonical().unwrap();
    append_line(log, &line);
    if let Some(k) = seal {
        let mut all = lines;
        all.push(line);
        sign_checkpoint(log, k, &tree_of(&all), all.len() as u64);
    }
}

/// A copy of the last event claiming position `seq` (e.g. 2^53 − 1).
fn append_with_seq(log: &Path, seq: u64) {
    let lines = events(log);
    let mut ev = CustodyEvent::parse(lines.last().unwrap()).unwrap();
    ev.seq = seq;
    ev.key = format!("{}/again", ev.key);
    append_line(log, &ev.to_canonical().unwrap());
}

/// The last event's time moved by a millisecond, and every checkpoint covering it signed again
/// with the station key (its tokens, over the old bytes, removed): two histories of one size.
fn fork(log: &Path, key: &StationKey) {
    let mut lines = events(log);
    let n = lines.len();
    let mut ev = CustodyEvent::parse(&lines[n - 1]).unwrap();
    ev.time = Timestamp(ev.time.0 + chrono::Duration::milliseconds(1));
    lines[n - 1] = ev.to_canonical().unwrap();
    let mut all = Vec::new();
    for l in &lines {
        all.extend_from_slice(l);
        all.push(b'\n');
    }
    write(&log.join(layout::EVENTS_FILE), &all);
    let tree = tree_of(&lines);
    for e in std::fs::read_dir(log.join(layout::CHECKPOINTS_DIR))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(size) = layout::size_of_file(&name) else {
            continue;
        };
        if size as usize >= n {
            sign_checkpoint(log, key, &tree, size);
            let _ = std::fs::remove_file(
                log.join(layout::TIMESTAMPS_DIR)
                    .join(layout::timestamp_file(size)),
            );
        }
    }
}

//! Holding a log or package to what the receiver already holds.
//!
//! A log or package cut back to an earlier checkpoint still verifies on its own: every proof in
//! it is true, it just says less. What stops that is a checkpoint the receiver saw before —
//! from an earlier package, from the station's published log (`--expect-checkpoint FILE`), or a
//! tree size and root copied by hand from a collection record (`--expect SIZE:ROOT`). The input
//! must be at least that large and provably an extension of it:
//!
//! - a log directory holds every event, so the root at that size is computed from them;
//! - a package holds only its case's events, so it carries a consistency proof from every
//!   earlier checkpoint of the station to its own (`custody/consistency/`); one for another
//!   size comes from `evidock log prove --from SIZE` and is given with `--proof FILE`. With no
//!   proof for the size the package is `checkpoint.unprovable`, an error.
//!
//! Two signed checkpoints of one origin and size with different roots, anywhere in the input or
//! among what the receiver holds, are `log.forked`: the station signed two histories.

use crate::beneath;
use crate::checkpoint::{self, ConsistencyProof, SignedCheckpoint};
use crate::finding::Report;
use crate::id::Sha256;
use crate::merkle::{self, Hash, MemoryTree};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::Path;

/// Finding codes of this module (documented in docs/findings.md).
pub mod code {
    pub const EXPECT_NOT_REACHED: &str = "expect.not-reached";
    pub const EXPECT_INCONSISTENT: &str = "expect.inconsistent";
    pub const EXPECT_BAD_SIGNATURE: &str = "expect.bad-signature";
    pub const EXPECT_HELD: &str = "expect.held";
    pub const CHECKPOINT_UNPROVABLE: &str = "checkpoint.unprovable";
    pub const LOG_FORKED: &str = "log.forked";

    pub const ALL: &[&str] = &[
        EXPECT_NOT_REACHED,
        EXPECT_INCONSISTENT,
        EXPECT_BAD_SIGNATURE,
        EXPECT_HELD,
        CHECKPOINT_UNPROVABLE,
        LOG_FORKED,
    ];
}

/// One thing the receiver holds.
#[derive(Debug, Clone)]
pub struct Expected {
    pub size: u64,
    pub root: Hash,
    /// The signed checkpoint, when the receiver gave one (not a hand-copied size and root).
    pub signed: Option<SignedCheckpoint>,
    /// Where it came from, for findings.
    pub source: String,
}

/// Everything the receiver holds, and the extra proofs given.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub expected: Vec<Expected>,
    /// Consistency proofs given with `--proof FILE`.
    pub proofs: Vec<(String, ConsistencyProof)>,
    /// The case a package must be of (`--case ID`): a genuine package of another case is not
    /// the one the receiver was sent.
    pub case: Option<String>,
}

impl Expectations {
    pub fn is_empty(&self) -> bool {
        self.expected.is_empty()
    }

    /// `SIZE:ROOT` as a collection record prints it (root in hex or base64).
    pub fn parse_size_root(s: &str) -> Result<Expected, String> {
        let (size, root) = s
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not SIZE:ROOT"))?;
        let size: u64 = size.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
            format!("{size:?} is not a tree size (a number of events, at least 1)")
        })?;
        let root = parse_root(root).ok_or_else(|| {
            format!("{root:?} is not a root hash (64 hex digits or 44 base64 characters)")
        })?;
        Ok(Expected {
            size,
            root,
            signed: None,
            source: format!("--expect {size}:{root}"),
        })
    }

    /// A signed checkpoint file (a `.note` from a package or a published log).
    pub fn load_checkpoint(path: &Path) -> Result<Expected, String> {
        let bytes = beneath::read_local(path, checkpoint::MAX_FILE_BYTES)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let sc = SignedCheckpoint::parse(&bytes)
            .map_err(|e| format!("{}: not a signed checkpoint: {e}", path.display()))?;
        Ok(Expected {
            size: sc.checkpoint.size,
            root: sc.checkpoint.root,
            source: format!("checkpoint {} of {}", sc.checkpoint.size, path.display()),
            signed: Some(sc),
        })
    }

    /// A consistency proof file (`evidock log prove`).
    pub fn load_proof(path: &Path) -> Result<(String, ConsistencyProof), String> {
        let bytes =
            beneath::read_local(path, 64 * 1024).map_err(|e| format!("{}: {e}", path.display()))?;
        let p = ConsistencyProof::parse(&bytes)
            .map_err(|e| format!("{}: not a consistency proof: {e}", path.display()))?;
        Ok((path.display().to_string(), p))
    }
}

fn parse_root(s: &str) -> Option<Hash> {
    let s = s.trim();
    if s.len() == 64 {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b).ok()?;
        return Some(Sha256(b));
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    Sha256::from_slice(&raw)
}

/// Signed checkpoints seen anywhere: two of one origin and size with different roots are a fork.
#[derive(Debug, Default)]
pub struct Forks {
    seen: BTreeMap<(String, u64), (Hash, String)>,
}

impl Forks {
    /// Record a checkpoint whose signature verified.
    pub fn see(&mut self, sc: &SignedCheckpoint, source: &str, r: &mut Report) {
        let cp = &sc.checkpoint;
        let k = (cp.origin.clone(), cp.size);
        match self.seen.get(&k) {
            Some((root, first)) if *root != cp.root => r.error(
                code::LOG_FORKED,
                format!("checkpoint {}", cp.size),
                format!(
                    "two signed checkpoints of {} at size {}: root {root} ({first}) and {} ({source}): the station signed two different histories",
                    cp.origin, cp.size, cp.root
                ),
            ),
            Some(_) => {}
            None => {
                self.seen.insert(k, (cp.root, source.to_string()));
            }
        }
    }
}

/// Hold a whole log (its tree) to each expectation. `verify` checks an expected checkpoint's
/// signature with the station's key for that size.
pub(crate) fn hold_log(
    expect: &Expectations,
    tree: &MemoryTree,
    verify: impl Fn(&SignedCheckpoint) -> bool,
    forks: &mut Forks,
    r: &mut Report,
) {
    for e in &expect.expected {
        if !signature_ok(e, &verify, forks, r) {
            continue;
        }
        if e.size > tree.size() {
            not_reached(e, tree.size(), r);
            continue;
        }
        let root = tree
            .root_at(e.size)
            .unwrap_or_else(|_| merkle::empty_root());
        if root == e.root {
            held(e, "the log's events give the same root", r);
        } else {
            differ(e, &root, r);
        }
    }
}

/// Consistency proofs available to a package's latest checkpoint, by old size: the proof and
/// where it came from.
pub(crate) type Proofs = BTreeMap<u64, (ConsistencyProof, String)>;

/// Hold a package (its latest signed checkpoint and the proofs it carries) to each expectation.
pub(crate) fn hold_package(
    expect: &Expectations,
    latest: &SignedCheckpoint,
    proofs: &Proofs,
    verify: impl Fn(&SignedCheckpoint) -> bool,
    forks: &mut Forks,
    r: &mut Report,
) {
    let (n, latest_root) = (latest.checkpoint.size, latest.checkpoint.root);
    let given: BTreeMap<u64, (ConsistencyProof, String)> = expect
        .proofs
        .iter()
        .filter(|(_, p)| p.new == n)
        .map(|(src, p)| (p.old, (p.clone(), src.clone())))
        .collect();
    for e in &expect.expected {
        if !signature_ok(e, &verify, forks, r) {
            continue;
        }
        if e.size > n {
            not_reached(e, n, r);
            continue;
        }
        if e.size == n {
            if e.root == latest_root {
                held(e, "it is the package's own checkpoint", r);
            } else {
                differ(e, &latest_root, r);
            }
            continue;
        }
        let Some((proof, src)) = given.get(&e.size).or_else(|| proofs.get(&e.size)) else {
            r.error(
                code::CHECKPOINT_UNPROVABLE,
                &e.source,
                format!(
                    "the package carries no consistency proof from size {} to its checkpoint {n}: ask the station for one (`evidock log prove --from {}`) and give it with --proof",
                    e.size, e.size
                ),
            );
            continue;
        };
        match proof.verify(&e.root, &latest_root) {
            Ok(()) => held(e, &format!("proven by {src}"), r),
            Err(err) => r.error(
                code::EXPECT_INCONSISTENT,
                &e.source,
                format!(
                    "the package's checkpoint {n} is not an extension of the tree of size {} you hold ({err}; proof {src}): this is not the log you saw",
                    e.size
                ),
            ),
        }
    }
}

fn signature_ok(
    e: &Expected,
    verify: &impl Fn(&SignedCheckpoint) -> bool,
    forks: &mut Forks,
    r: &mut Report,
) -> bool {
    let Some(sc) = &e.signed else { return true };
    if !verify(sc) {
        r.error(
            code::EXPECT_BAD_SIGNATURE,
            &e.source,
            "the checkpoint you hold is not signed by this station's key: it is another log's, or not genuine",
        );
        return false;
    }
    forks.see(sc, &e.source, r);
    true
}

fn not_reached(e: &Expected, have: u64, r: &mut Report) {
    r.error(
        code::EXPECT_NOT_REACHED,
        &e.source,
        format!(
            "this holds {have} event(s), fewer than the {} of the checkpoint you hold: it was cut back to an earlier state",
            e.size
        ),
    );
}

fn held(e: &Expected, how: &str, r: &mut Report) {
    r.info(
        code::EXPECT_HELD,
        &e.source,
        format!(
            "consistent with the tree of size {} you hold: {how}",
            e.size
        ),
    );
}

fn differ(e: &Expected, got: &Hash, r: &mut Report) {
    let (code, what) = if e.signed.is_some() {
        (
            code::LOG_FORKED,
            "the station signed two different histories",
        )
    } else {
        (code::EXPECT_INCONSISTENT, "this is not the log you saw")
    };
    r.error(
        code,
        &e.source,
        format!(
            "at size {} the root is {got}, not the {} you hold: {what}",
            e.size, e.root
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_root_in_hex_or_base64() {
        let root = Sha256::digest(b"x");
        let hexed = Expectations::parse_size_root(&format!("12:{root}")).unwrap();
        assert_eq!((hexed.size, hexed.root), (12, root));
        let b64 = base64::engine::general_purpose::STANDARD.encode(root.0);
        assert_eq!(
            Expectations::parse_size_root(&format!("12:{b64}"))
                .unwrap()
                .root,
            root
        );
        for bad in ["12", "x:y", "12:abcd", ":00", &format!("0:{root}")] {
            assert!(Expectations::parse_size_root(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_log_cut_back_or_rewritten_is_caught() {
        let mut t = MemoryTree::new();
        for i in 0..10u8 {
            t.push_entry(&[i]);
        }
        let at = |n: u64| Expected {
            size: n,
            root: t.root_at(n).unwrap(),
            signed: None,
            source: format!("--expect {n}"),
        };
        let mut short = MemoryTree::new();
        for i in 0..6u8 {
            short.push_entry(&[i]);
        }
        let ex = Expectations {
            expected: vec![at(8)],
            proofs: vec![],
            case: None,
        };
        let mut r = Report::new();
        hold_log(&ex, &t, |_| true, &mut Forks::default(), &mut r);
        assert!(!r.has_errors() && r.has(code::EXPECT_HELD));
        let mut r = Report::new();
        hold_log(&ex, &short, |_| true, &mut Forks::default(), &mut r);
        assert!(r.has(code::EXPECT_NOT_REACHED));
        let mut other = MemoryTree::new();
        for i in 0..10u8 {
            other.push_entry(&[i ^ 0x80]);
        }
        let mut r = Report::new();
        hold_log(&ex, &other, |_| true, &mut Forks::default(), &mut r);
        assert!(r.has(code::EXPECT_INCONSISTENT));
    }
}

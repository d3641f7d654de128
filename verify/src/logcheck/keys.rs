//! Station keys: which key signs which checkpoint, and which keys the receiver's anchors reach.
//!
//! A log starts with one key (`station.pub`). A rotation is a `key-rotated` event at `seq`
//! naming the old and the new key; its hand-over checkpoint (size `seq + 1`) is signed by both,
//! later checkpoints by the new key only. Trust crosses a rotation only through that hand-over:
//! a key is anchored when the receiver pinned it, or when a verified hand-over signed by both
//! keys joins it to an anchored key. A `key-rotated` event alone — anyone holding the old key
//! can log one naming any new key — anchors nothing.

use super::code;
use crate::event::payload::KeyRotatedPayload;
use crate::finding::Report;
use crate::note::VerifierKey;
use crate::trust::Trust;

/// Which key signs which checkpoints: the first key until the first rotation's hand-over
/// checkpoint (which both sign), the new key after it, and so on.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeySchedule {
    first: Option<VerifierKey>,
    /// (seq of the `key-rotated` event, the new key), in log order.
    rotations: Vec<(u64, VerifierKey)>,
}

impl KeySchedule {
    /// From a package's point of view: the rotations it carries (proven under its checkpoint)
    /// must lead to `current`, the key that signs it.
    pub(crate) fn leading_to(
        current: Option<&VerifierKey>,
        rotations: &[(u64, KeyRotatedPayload)],
        r: &mut Report,
    ) -> Self {
        let first = match rotations.first() {
            Some((seq, p)) => match VerifierKey::parse(&p.old_key) {
                Ok(k) => Some(k),
                Err(e) => {
                    r.error(
                        code::KEY_ROTATION_BROKEN,
                        format!("event #{seq}"),
                        format!("the key it retires: {e}"),
                    );
                    None
                }
            },
            None => current.cloned(),
        };
        let out = Self::build(first, rotations, r);
        if let (Some(want), Some(got)) = (current, out.last())
            && want != got
        {
            r.error(
                code::KEY_ROTATION_BROKEN,
                "station key",
                format!("the key rotations lead to {got}, but the package is signed by {want}"),
            );
        }
        out
    }

    pub(crate) fn build(
        first: Option<VerifierKey>,
        rotations: &[(u64, KeyRotatedPayload)],
        r: &mut Report,
    ) -> Self {
        let mut out = KeySchedule {
            first,
            rotations: Vec::new(),
        };
        for (seq, p) in rotations {
            let subject = format!("event #{seq}");
            let Some(current) = out.last().cloned() else {
                break;
            };
            let old = VerifierKey::parse(&p.old_key).ok();
            let new = match VerifierKey::parse(&p.new_key) {
                Ok(k) => k,
                Err(e) => {
                    r.error(
                        code::KEY_ROTATION_BROKEN,
                        subject,
                        format!("the new key: {e}"),
                    );
                    break;
                }
            };
            if old.as_ref() != Some(&current) {
                r.error(
                    code::KEY_ROTATION_BROKEN,
                    subject,
                    format!(
                        "the rotation retires {} but the key in force is {current}",
                        p.old_key
                    ),
                );
                break;
            }
            if new.name != current.name {
                r.error(
                    code::KEY_ROTATION_BROKEN,
                    subject,
                    format!(
                        "the new key names {:?}, not the station {:?}",
                        new.name, current.name
                    ),
                );
                break;
            }
            out.rotations.push((*seq, new));
        }
        out
    }

    pub(crate) fn first(&self) -> Option<&VerifierKey> {
        self.first.as_ref()
    }

    pub(crate) fn last(&self) -> Option<&VerifierKey> {
        self.rotations.last().map(|(_, k)| k).or(self.first())
    }

    /// Every key, first to last.
    pub(crate) fn chain(&self) -> Vec<&VerifierKey> {
        self.first
            .iter()
            .chain(self.rotations.iter().map(|(_, k)| k))
            .collect()
    }

    pub(crate) fn rotations(&self) -> impl Iterator<Item = (u64, &VerifierKey)> {
        self.rotations.iter().map(|(s, k)| (*s, k))
    }

    /// The hand-over checkpoint sizes, one per rotation, in order.
    pub(crate) fn handovers(&self) -> Vec<u64> {
        self.rotations
            .iter()
            .map(|(s, _)| s.saturating_add(1))
            .collect()
    }

    /// Replace the first key (by the pinned one of the same name, so that checkpoints re-signed
    /// by an impostor show up as bad signatures).
    pub(crate) fn with_first(mut self, first: Option<VerifierKey>) -> Self {
        self.first = first;
        self
    }

    /// The index in [`Self::chain`] of the key that signs a checkpoint of `size` events.
    pub(crate) fn index_of(&self, size: u64) -> usize {
        self.rotations
            .iter()
            .take_while(|(seq, _)| size > seq.saturating_add(1))
            .count()
    }

    /// The key that must sign a checkpoint of `size` events, and at a hand-over the new key
    /// that must sign it too.
    pub(crate) fn signers_of(&self, size: u64) -> (Option<&VerifierKey>, Option<&VerifierKey>) {
        let mut key = self.first();
        for (seq, new) in &self.rotations {
            if size == seq.saturating_add(1) {
                return (key, Some(new));
            }
            if size > seq.saturating_add(1) {
                key = Some(new);
            }
        }
        (key, None)
    }
}

/// What the receiver's trust file says about a schedule's keys.
#[derive(Debug, Clone)]
pub(crate) struct Anchoring {
    /// Whether the receiver pinned any station key at all.
    pub pinning: bool,
    /// Per key of the chain: anchored (pinned, or joined to a pinned key by verified hand-overs).
    pub anchored: Vec<bool>,
}

impl Anchoring {
    /// `handover_ok[i]`: the hand-over checkpoint of rotation `i` (chain key `i` → `i + 1`) is
    /// present and verifies under both keys.
    pub(crate) fn of(schedule: &KeySchedule, handover_ok: &[bool], trust: &Trust) -> Self {
        let chain = schedule.chain();
        let pinned: Vec<bool> = chain.iter().map(|k| trust.trusts_station_key(k)).collect();
        Anchoring {
            pinning: !trust.stations.is_empty(),
            anchored: spread(pinned, handover_ok),
        }
    }

    /// The keys a checkpoint the receiver holds may be signed by: those the pins reach, or —
    /// nothing pinned — those joined by verified hand-overs to the key at `own` (the key the
    /// input itself relies on). A key a rotation event merely names is neither.
    pub(crate) fn trusted_keys(
        &self,
        schedule: &KeySchedule,
        handover_ok: &[bool],
        own: usize,
    ) -> Vec<VerifierKey> {
        let chain = schedule.chain();
        let reached = if self.pinning {
            self.anchored.clone()
        } else {
            spread((0..chain.len()).map(|i| i == own).collect(), handover_ok)
        };
        chain
            .into_iter()
            .zip(reached)
            .filter(|(_, r)| *r)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether key `i` of the chain is anchored.
    pub(crate) fn is_anchored(&self, i: usize) -> bool {
        self.pinning && self.anchored.get(i).copied().unwrap_or(false)
    }

    /// Report every key in `used` (indices of keys whose signatures count) that the receiver's
    /// anchors do not reach; whether all of them are reached.
    pub(crate) fn require(
        &self,
        schedule: &KeySchedule,
        used: &std::collections::BTreeSet<usize>,
        handover_ok: &[bool],
        r: &mut Report,
    ) -> bool {
        if !self.pinning {
            return false;
        }
        let chain = schedule.chain();
        let mut all = true;
        for &i in used {
            if self.is_anchored(i) {
                continue;
            }
            all = false;
            let Some(k) = chain.get(i) else { continue };
            let why = if self.anchored.iter().any(|a| *a) {
                let broken: Vec<String> = schedule
                    .rotations()
                    .enumerate()
                    .filter(|(j, _)| !handover_ok.get(*j).copied().unwrap_or(false))
                    .map(|(_, (seq, _))| format!("#{seq}"))
                    .collect();
                format!(
                    "a pinned key is reached from it only across key rotations without a verified hand-over checkpoint signed by both keys (rotation event {}): a key-rotated event alone vouches for nothing",
                    broken.join(", ")
                )
            } else {
                "neither it nor any key it was rotated to or from is in the trust file".to_string()
            };
            r.error(
                code::KEY_UNTRUSTED,
                "station key",
                format!(
                    "{k} (fingerprint {}) is not trusted: {why}",
                    k.fingerprint()
                ),
            );
        }
        all
    }
}

/// `marked` spread across verified hand-overs, both ways: key `i` and `i + 1` are joined when
/// hand-over `i` verified under both.
fn spread(mut marked: Vec<bool>, handover_ok: &[bool]) -> Vec<bool> {
    loop {
        let mut changed = false;
        for i in 0..marked.len().saturating_sub(1) {
            if handover_ok.get(i).copied().unwrap_or(false) && marked[i] != marked[i + 1] {
                marked[i] = true;
                marked[i + 1] = true;
                changed = true;
            }
        }
        if !changed {
            return marked;
        }
    }
}

/// The first key to verify with: the input's own, or — when the receiver pinned keys and none
/// of the chain is among them — the pinned key of the same name, so that every checkpoint an
/// impostor re-signed shows up as a bad signature.
pub(crate) fn first_key_for(schedule: &KeySchedule, trust: &Trust) -> Option<VerifierKey> {
    let first = schedule.first()?.clone();
    if trust.stations.is_empty() || schedule.chain().iter().any(|k| trust.trusts_station_key(k)) {
        return Some(first);
    }
    trust
        .station_keys_named(&first.name)
        .into_iter()
        .next()
        .or(Some(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::StationAnchor;

    fn key(n: u8) -> VerifierKey {
        VerifierKey::new("evidock.station/dock-01", [n; 32]).unwrap()
    }

    fn rot(old: &VerifierKey, new: &VerifierKey) -> KeyRotatedPayload {
        KeyRotatedPayload {
            old_key: old.to_string(),
            new_key: new.to_string(),
            reason: "test".into(),
        }
    }

    fn trust(k: &VerifierKey) -> Trust {
        Trust {
            stations: vec![StationAnchor::Key(k.clone())],
            source: Some("t.toml".into()),
            ..Trust::default()
        }
    }

    #[test]
    fn trust_crosses_only_verified_handovers() {
        let (a, b, c) = (key(1), key(2), key(3));
        let mut r = Report::new();
        let s = KeySchedule::build(
            Some(a.clone()),
            &[(5, rot(&a, &b)), (9, rot(&b, &c))],
            &mut r,
        );
        assert!(!r.has_errors());
        assert_eq!(s.handovers(), vec![6, 10]);
        assert_eq!((s.index_of(6), s.index_of(7), s.index_of(11)), (0, 1, 2));
        // c pinned; both hand-overs verified: a and b are anchored.
        let an = Anchoring::of(&s, &[true, true], &trust(&c));
        assert_eq!(an.anchored, vec![true, true, true]);
        // The second hand-over missing: a and b are cut off from the pinned c.
        let an = Anchoring::of(&s, &[true, false], &trust(&c));
        assert_eq!(an.anchored, vec![false, false, true]);
        let mut r = Report::new();
        assert!(!an.require(&s, &[0, 1].into(), &[true, false], &mut r));
        assert_eq!(r.count(crate::finding::Level::Error), 2);
        assert!(r.has(code::KEY_UNTRUSTED));
        // Pinning the old key reaches forward only across a verified hand-over.
        let an = Anchoring::of(&s, &[false, true], &trust(&a));
        assert_eq!(an.anchored, vec![true, false, false]);
        // No pins: nothing is anchored, and nothing is reported here (the caller says "not pinned").
        let an = Anchoring::of(&s, &[true, true], &Trust::none());
        assert!(!an.is_anchored(0));
        let mut r = Report::new();
        assert!(!an.require(&s, &[0].into(), &[true, true], &mut r));
        assert!(r.findings.is_empty());
    }
}

//! Evidence against custody: each original is the one its proven `acquired` event records,
//! each derivative was made from its item's original by a proven `transcoded` event, each
//! item is linked to the case; and the verdict on each file.

use super::{Ctx, FileRole, FileVerdict, ManifestFile, code};
use crate::id::Sha256;
use std::collections::HashMap;

pub(super) fn check_evidence(c: &mut Ctx<'_>) {
    let files = c.manifest.files.clone();
    // The originals by (content, item), looked up once per derivative: a manifest with many
    // derivatives must not cost their number squared.
    let originals: std::collections::HashSet<(Sha256, &crate::id::EvidenceId)> = files
        .iter()
        .filter(|o| o.role == FileRole::Original)
        .filter_map(|o| Some((o.sha256, o.evidence.as_ref()?)))
        .collect();
    // Proven derivatives by their content and by their size, for the same reason.
    let mut by_sha: HashMap<Sha256, Vec<usize>> = HashMap::new();
    let mut by_size: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, (p, _)) in c.custody.transcoded.iter().enumerate() {
        by_sha.entry(p.sha256).or_default().push(i);
        by_size.entry(p.size).or_default().push(i);
    }
    for f in &files {
        let Some(ev) = &f.evidence else {
            continue;
        };
        let mut integrity = c.intact.get(&f.path).copied().unwrap_or(false);
        let mut attested_by = None;
        let cu = &c.custody;
        match f.role {
            FileRole::Original => match cu.acquired.get(ev) {
                Some((p, seq)) if p.digests.sha256 == f.sha256 => {
                    attested_by = cu.attested_at(*seq);
                }
                Some((p, _)) => {
                    integrity = false;
                    c.r.error(
                        code::ORIGINAL_NOT_ACQUIRED,
                        &f.path,
                        format!(
                            "the acquired event of {ev} records SHA-256 {}, not this file's {}",
                            p.digests.sha256, f.sha256
                        ),
                    );
                }
                None => {
                    integrity = false;
                    c.r.error(
                        code::ORIGINAL_NOT_ACQUIRED,
                        &f.path,
                        format!("no proven acquired event for {ev} in the package"),
                    );
                }
            },
            FileRole::Derivative | FileRole::Thumbnail => {
                let made = by_sha
                    .get(&f.sha256)
                    .into_iter()
                    .flatten()
                    .map(|i| &cu.transcoded[*i])
                    .find(|(p, _)| Some(p.parent_sha256) == f.parent)
                    .map(|(_, seq)| *seq);
                let parent_is_original = f.parent.is_some_and(|p| originals.contains(&(p, ev)));
                // A file that is really another recording's derivative: swapped in.
                let real = c
                    .actual
                    .get(&f.path)
                    .copied()
                    .or_else(|| swapped_in(c, f, &by_size));
                if let Some(real) = real.filter(|a| *a != f.sha256)
                    && let Some((p, _)) = by_sha
                        .get(&real)
                        .and_then(|v| v.first())
                        .map(|i| &cu.transcoded[*i])
                    && Some(p.parent_sha256) != f.parent
                {
                    integrity = false;
                    c.r.error(
                        code::DERIVATIVE_NOT_FROM_ORIGINAL,
                        &f.path,
                        format!(
                            "this file is the derivative of another original ({}), not of {ev}'s",
                            p.parent_sha256
                        ),
                    );
                }
                match made {
                    Some(seq) if parent_is_original => {
                        attested_by = c.custody.attested_at(seq);
                    }
                    _ => {
                        integrity = false;
                        c.r.error(
                            code::DERIVATIVE_NOT_FROM_ORIGINAL,
                            &f.path,
                            format!(
                                "no proven transcoded event makes SHA-256 {} from {ev}'s original",
                                f.sha256
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
        if f.role == FileRole::Original && !c.custody.linked.contains(ev) {
            c.r.error(
                code::CASE_NOT_LINKED,
                &f.path,
                format!("no proven link of {ev} to case {}", c.manifest.case),
            );
        }
        c.files.push(FileVerdict {
            path: f.path.clone(),
            role: f.role.clone(),
            evidence: Some(ev.clone()),
            integrity,
            attested_by,
        });
    }
}

/// A derivative longer than listed was read only up to its listed size. If its size on disk is
/// that of another original's proven derivative, read it up to that size (a number the signed
/// log gives, not the input) to tell a swapped-in derivative from damage.
fn swapped_in(c: &Ctx<'_>, f: &ManifestFile, by_size: &HashMap<u64, Vec<usize>>) -> Option<Sha256> {
    use std::io::Read as _;
    let on_disk = *c.on_disk.get(&f.path)?;
    let candidate = by_size
        .get(&on_disk)?
        .iter()
        .map(|i| &c.custody.transcoded[*i])
        .find(|(p, _)| Some(p.parent_sha256) != f.parent)?;
    let (file, _) = c.dir.open_file(&f.path).ok()?;
    let mut limited = file.take(candidate.0.size.saturating_add(1));
    let (d, n) =
        crate::digest::hash_reader(&mut limited, crate::digest::DigestSet::SHA256_ONLY).ok()?;
    (n == on_disk).then_some(d.sha256)
}

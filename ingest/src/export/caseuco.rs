//! `case.jsonld`: the package as a CASE/UCO graph (https://caseontology.org) — the files with
//! their hashes, the cameras, the acquisition and transcode actions, and the custody events as
//! investigative actions — for tools that exchange chains of custody. `case_validate` (PyPI
//! `case-utils`) accepts it; a test runs it.

use super::Context;
use evidock_verify::event::payload::{AcquiredPayload, TranscodedPayload};
use evidock_verify::event::{EventKind, Subject};
use evidock_verify::package::{FileRole, ManifestFile};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A stable node ID: a UUID (version 5 layout) from SHA-256 of what the node is, so the same
/// package gives the same graph.
fn id(kind: &str, what: &str) -> String {
    let d = evidock_verify::id::Sha256::digest(format!("evidock {kind}\n{what}").as_bytes()).0;
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "kb:{kind}-{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn time(t: &evidock_verify::event::Timestamp) -> Value {
    json!({"@type": "xsd:dateTime", "@value": t.to_string()})
}

fn file_node(f: &ManifestFile) -> Value {
    let name = f.path.rsplit('/').next().unwrap_or(&f.path);
    // SHA-256 only: UCO's hash vocabulary has no SM3 (SM3 values are in the manifest and
    // SM3SUMS).
    let hashes = vec![json!({
        "@id": id("hash", &format!("sha256 {}", f.sha256)),
        "@type": "uco-types:Hash",
        "uco-types:hashMethod": "SHA256",
        "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": f.sha256.to_string().to_uppercase()},
    })];
    json!({
        "@id": id("file", &f.path),
        "@type": "uco-observable:File",
        "uco-core:description": match f.role {
            FileRole::Original => "original, bit-exact as acquired from the camera",
            FileRole::Derivative => "playback copy (derivative, not the original)",
            FileRole::Thumbnail => "thumbnail (derivative)",
            _ => "package file",
        },
        "uco-core:hasFacet": [
            {
                "@id": id("file-facet", &f.path),
                "@type": "uco-observable:FileFacet",
                "uco-observable:fileName": name,
                "uco-observable:filePath": f.path,
                "uco-observable:sizeInBytes": {"@type": "xsd:integer", "@value": f.size.to_string()},
            },
            {
                "@id": id("content-data-facet", &f.path),
                "@type": "uco-observable:ContentDataFacet",
                "uco-observable:hash": hashes,
            }
        ],
    })
}

pub(crate) fn graph(ctx: &Context<'_>, files: &[ManifestFile]) -> String {
    let mut g: Vec<Value> = Vec::new();
    let case = ctx.view.entry.record.case.as_str();
    let tool = id("tool", &format!("evidock {}", env!("CARGO_PKG_VERSION")));
    g.push(json!({
        "@id": tool,
        "@type": "uco-tool:Tool",
        "uco-core:name": "evidock",
        "uco-tool:version": env!("CARGO_PKG_VERSION"),
        "uco-core:description": format!("dock station {}", ctx.station),
    }));
    let station = id("organization", ctx.station.as_str());
    g.push(json!({
        "@id": station,
        "@type": "uco-identity:Organization",
        "uco-core:name": format!("evidock station {}", ctx.station),
    }));
    // Files (originals and derivatives), by their SHA-256 for the actions below.
    let mut by_sha: BTreeMap<String, String> = BTreeMap::new();
    for f in files.iter().filter(|f| {
        matches!(
            f.role,
            FileRole::Original | FileRole::Derivative | FileRole::Thumbnail
        )
    }) {
        by_sha.insert(f.sha256.to_string(), id("file", &f.path));
        g.push(file_node(f));
    }
    let mut devices: BTreeMap<String, String> = BTreeMap::new();
    let mut records = Vec::new();
    for (i, p) in ctx.items.iter().enumerate() {
        let serial = p.item.device.as_str();
        devices
            .entry(serial.to_string())
            .or_insert_with(|| id("device", serial));
        let Some(file) = by_sha.get(&p.item.sha256.to_string()) else {
            continue;
        };
        let record = id("provenance-record", p.item.evidence.as_str());
        records.push(json!({"@id": record}));
        g.push(json!({
            "@id": record,
            "@type": "case-investigation:ProvenanceRecord",
            "case-investigation:exhibitNumber": format!("{}", i + 1),
            "uco-core:description": format!("evidence item {} of case {case}", p.item.evidence),
            "uco-core:object": [{"@id": file}],
        }));
    }
    for (serial, dev) in &devices {
        g.push(json!({
            "@id": dev,
            "@type": "uco-observable:Device",
            "uco-core:hasFacet": [{
                "@id": id("device-facet", serial),
                "@type": "uco-observable:DeviceFacet",
                "uco-observable:deviceType": "body-worn camera (执法记录仪)",
                "uco-observable:serialNumber": serial,
            }],
        }));
    }
    // Custody events as investigative actions, in log order.
    for ev in ctx.events {
        let mut a = json!({
            "@id": id("investigative-action", &format!("{} {}", ev.station, ev.seq)),
            "@type": "case-investigation:InvestigativeAction",
            "uco-core:name": ev.kind.as_str(),
            "uco-core:description": format!("custody event #{} of station {} ({}), by {}", ev.seq, ev.station, ev.key, ev.actor.id),
            "uco-action:startTime": time(&ev.time),
            "uco-action:endTime": time(&ev.time),
            "uco-action:instrument": {"@id": tool},
            "uco-action:performer": {"@id": station},
        });
        match ev.kind {
            EventKind::Acquired => {
                if let (Subject::Evidence(_), Ok(p)) =
                    (&ev.subject, ev.payload::<AcquiredPayload>())
                {
                    if let Some(dev) = devices.get(p.device.as_str()) {
                        a["uco-action:object"] = json!([{"@id": dev}]);
                    }
                    if let Some(f) = by_sha.get(&p.digests.sha256.to_string()) {
                        a["uco-action:result"] = json!([{"@id": f}]);
                    }
                }
            }
            EventKind::Transcoded => {
                if let Ok(p) = ev.payload::<TranscodedPayload>() {
                    if let Some(f) = by_sha.get(&p.parent_sha256.to_string()) {
                        a["uco-action:object"] = json!([{"@id": f}]);
                    }
                    if let Some(f) = by_sha.get(&p.sha256.to_string()) {
                        a["uco-action:result"] = json!([{"@id": f}]);
                    }
                }
            }
            _ => {}
        }
        g.push(a);
    }
    g.insert(
        0,
        json!({
            "@id": id("investigation", case),
            "@type": "case-investigation:Investigation",
            "uco-core:name": case,
            "uco-core:description": format!("{} {}", ctx.view.entry.record.case_type, ctx.view.entry.record.title).trim().to_string(),
            "case-investigation:focus": "administrative enforcement (应急管理执法)",
            "uco-core:object": records,
        }),
    );
    let doc = json!({
        "@context": {
            "kb": "urn:evidock:kb:",
            "case-investigation": "https://ontology.caseontology.org/case/investigation/",
            "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
            "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
            "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
            "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
            "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
            "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
            "uco-vocabulary": "https://ontology.unifiedcyberontology.org/uco/vocabulary/",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
        },
        "@graph": g,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

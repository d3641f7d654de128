//! The evidence list (电子数据清单), as CSV for spreadsheets and as HTML for printing: each
//! original, then its derivatives, with sizes and digests. Apart as one document of the package.

use super::{Context, c, grouped, h, page, totals};
use evidock_verify::event::payload::ObjectRole;
use evidock_verify::package::ManifestFile;
use std::fmt::Write as _;

/// Rows of the evidence list: each original, then its derivatives.
struct Row {
    no: String,
    name: String,
    category: String,
    format: String,
    size: u64,
    sha256: String,
    sm3: String,
    device: String,
    officer: String,
    raw: String,
    corrected: String,
    important: bool,
    links: String,
    derived: String,
    evidence: String,
}

fn rows(ctx: &Context<'_>, files: &[ManifestFile]) -> Vec<Row> {
    let mut out = Vec::new();
    for (i, p) in ctx.items.iter().enumerate() {
        let it = &p.item;
        let f = ctx.file(files, &p.original);
        let link = format!(
            "{}{}",
            ctx.view.entry.record.case,
            if p.link.automatic {
                "（自动关联 automatic）"
            } else {
                "（人工关联 manual）"
            }
        );
        // Every item here is linked to the case, and so kept permanently whatever its
        // category says (an unlinked 未分类 reads as "not yet sorted", which it is not).
        let category = format!("{}（本案证据，永久保存 case evidence, kept）", p.category);
        out.push(Row {
            no: format!("{}", i + 1),
            name: p.original.clone(),
            category: category.clone(),
            format: p.format.to_uppercase(),
            size: it.size,
            sha256: it.sha256.to_string(),
            sm3: f
                .and_then(|f| f.sm3.as_ref())
                .map(|h| h.to_string())
                .unwrap_or_default(),
            device: it.device.as_str().to_string(),
            officer: it.officer.clone().unwrap_or_default(),
            raw: it.recorded_raw.clone().unwrap_or_default(),
            corrected: it.start.map(|t| ctx.time(t)).unwrap_or_default(),
            important: it.important,
            links: link.clone(),
            derived: "原始文件 original".into(),
            evidence: it.evidence.to_string(),
        });
        for (j, (role, path, sha)) in p.derivatives.iter().enumerate() {
            let f = ctx.file(files, path);
            let kind = match role {
                ObjectRole::Playback => "播放副本 playback copy",
                ObjectRole::Poster => "封面帧 poster",
                ObjectRole::ContactSheet => "缩略图 contact sheet",
                _ => "派生 derivative",
            };
            out.push(Row {
                no: format!("{}.{}", i + 1, j + 1),
                name: path.clone(),
                category: category.clone(),
                format: path.rsplit('.').next().unwrap_or("").to_uppercase(),
                size: f.map(|f| f.size).unwrap_or(0),
                sha256: sha.to_string(),
                sm3: f
                    .and_then(|f| f.sm3.as_ref())
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
                device: it.device.as_str().to_string(),
                officer: it.officer.clone().unwrap_or_default(),
                raw: String::new(),
                corrected: String::new(),
                important: it.important,
                links: link.clone(),
                derived: format!("{kind}，派生自 derived from #{}", i + 1),
                evidence: it.evidence.to_string(),
            });
        }
    }
    out
}

pub(super) fn evidence_csv(ctx: &Context<'_>, files: &[ManifestFile]) -> String {
    // A byte-order mark: spreadsheet programs on Chinese Windows then read UTF-8.
    let mut s = String::from("\u{feff}");
    let mut head = vec![
        "序号 No.",
        "文件 File",
        "类别 Category",
        "格式 Format",
        "大小(字节) Size (bytes)",
        "SHA-256",
    ];
    if ctx.digests.sm3 {
        head.push("SM3");
    }
    head.extend([
        "设备编号 Device serial",
        "警号 Officer",
        "拍摄时间(设备时钟) Recorded (camera clock)",
        "拍摄时间(校正) Recorded (corrected)",
        "重要 Important",
        "关联案件 Case link",
        "原始/派生 Original/derivative",
        "证据编号 Evidence ID",
    ]);
    s.push_str(&head.join(","));
    s.push_str("\r\n");
    for r in rows(ctx, files) {
        let mut cells = vec![
            c(&r.no),
            c(&r.name),
            c(&r.category),
            c(&r.format),
            r.size.to_string(),
            r.sha256.clone(),
        ];
        if ctx.digests.sm3 {
            cells.push(r.sm3.clone());
        }
        cells.extend([
            c(&r.device),
            c(&r.officer),
            c(&r.raw),
            c(&r.corrected),
            if r.important { "是 yes" } else { "否 no" }.into(),
            c(&r.links),
            c(&r.derived),
            c(&r.evidence),
        ]);
        s.push_str(&cells.join(","));
        s.push_str("\r\n");
    }
    s
}

pub(super) fn evidence_html(ctx: &Context<'_>, files: &[ManifestFile]) -> String {
    let r = &ctx.view.entry.record;
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1>电子数据清单<br><span class=\"en\">Evidence list</span></h1>\n<p>案件 Case: <b>{}</b> {} · 生成 Created {} · 采集站 Station {}</p>",
        h(r.case.as_str()),
        h(&r.title),
        ctx.time(ctx.created.0),
        h(ctx.station.as_str())
    );
    b.push_str("<table><tr><th>序号<br><span class=en>No.</span></th><th>文件<br><span class=en>File</span></th><th>类别/格式/大小<br><span class=en>Category / format / size</span></th><th>完整性校验值<br><span class=en>Integrity value</span></th><th>设备 / 警号<br><span class=en>Device / officer</span></th><th>拍摄时间<br><span class=en>Recorded (camera → corrected)</span></th><th>重要<br><span class=en>Important</span></th><th>原始/派生<br><span class=en>Original / derivative</span></th></tr>\n");
    for row in rows(ctx, files) {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td class=mono>{}<br>{}</td><td>{}<br>{}<br>{} 字节 B</td><td class=mono>SHA-256 {}{}</td><td>{}<br>{}</td><td>{}<br>{}</td><td>{}</td><td>{}</td></tr>",
            h(&row.no),
            h(&row.name),
            h(&row.evidence),
            h(&row.category),
            h(&row.format),
            grouped(row.size),
            h(&row.sha256),
            if row.sm3.is_empty() {
                String::new()
            } else {
                format!("<br>SM3 {}", h(&row.sm3))
            },
            h(&row.device),
            h(&row.officer),
            h(&row.raw),
            h(&row.corrected),
            if row.important { "是" } else { "否" },
            h(&row.derived)
        );
    }
    let (originals, derived, bytes) = totals(ctx, files);
    let _ = writeln!(
        b,
        "<tr><th colspan=8>合计 <span class=en>Total</span>：原始文件 {originals} 个 <span class=en>originals</span>，派生文件 {derived} 个 <span class=en>derivatives</span>，共 {} 字节 <span class=en>bytes</span></th></tr>",
        grouped(bytes)
    );
    b.push_str("</table>\n<p class=en>Integrity values are SHA-256 of each file's bytes; check them with <code>sha256sum -c SHA256SUMS</code>, <code>certutil -hashfile FILE SHA256</code> or <code>Get-FileHash</code> (see VERIFY.md).</p>\n");
    page("电子数据清单 Evidence list", true, &b)
}

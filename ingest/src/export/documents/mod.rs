//! The documents of a disclosure package, for people: the evidence list (电子数据清单) in CSV and
//! HTML, the collection record (提取笔录), the chain-of-custody report, VERIFY.md, and the
//! CASE/UCO graph. Chinese first, English beside it; no internet assets; A4 when printed.
//!
//! This file holds the HTML and CSV helpers and [`render`]; each document is a file beside it.
//! What they are made from, [`Context`], is the export's (`../mod.rs`): the CASE/UCO graph
//! (`../caseuco.rs`) is made from it too, and is listed here.

use super::Context;
use evidock_verify::package::ManifestFile;
use std::fmt::Write as _;

mod collection_record;
mod evidence_list;
mod report;
mod verify_md;

use collection_record::collection_record;
use evidence_list::{evidence_csv, evidence_html};
use report::report;
use verify_md::verify_md;

/// HTML-escape text.
fn h(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A CSV cell (RFC 4180), and a leading quote for cells a spreadsheet would run as formulas.
fn c(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// A path for a link in HTML: each segment percent-encoded where needed.
fn href(path: &str) -> String {
    let mut o = String::new();
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                o.push(b as char)
            }
            _ => {
                let _ = write!(o, "%{b:02X}");
            }
        }
    }
    o
}

const STYLE: &str = "<style>
@page { size: A4; margin: 18mm 15mm; @bottom-center { content: '第 ' counter(page) ' 页 共 ' counter(pages) ' 页'; font-size: 9pt; } }
body { font-family: 'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', SimSun, sans-serif; font-size: 10.5pt; color: #000; }
h1 { font-size: 16pt; text-align: center; margin: 0 0 4mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; border-bottom: 1px solid #000; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #444; padding: 1.2mm 1.5mm; vertical-align: top; text-align: left; }
th { background: #eee; }
.mono { font-family: 'DejaVu Sans Mono', Consolas, monospace; font-size: 8pt; word-break: break-all; }
.en { color: #444; font-size: 9pt; }
.sign td { height: 14mm; }
img { max-width: 60mm; max-height: 40mm; }
@media print { .noprint { display: none; } tr { page-break-inside: avoid; } }
</style>";

fn page(title: &str, landscape: bool, body: &str) -> String {
    let orient = if landscape {
        "<style>@page { size: A4 landscape; }</style>"
    } else {
        ""
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{}</title>{STYLE}{orient}</head><body>\n{body}</body></html>\n",
        h(title)
    )
}

/// Every document, as (path, text).
pub(crate) fn render(ctx: &Context<'_>, files: &[ManifestFile]) -> Vec<(String, String)> {
    vec![
        ("evidence-list.csv".into(), evidence_csv(ctx, files)),
        ("evidence-list.html".into(), evidence_html(ctx, files)),
        (
            "collection-record.html".into(),
            collection_record(ctx, files),
        ),
        ("report.html".into(), report(ctx)),
        ("VERIFY.md".into(), verify_md(ctx)),
        ("case.jsonld".into(), super::caseuco::graph(ctx, files)),
    ]
}

/// (originals, derivatives, bytes of both) of the package's evidence.
fn totals(ctx: &Context<'_>, files: &[ManifestFile]) -> (u64, u64, u64) {
    let mut n = (0, 0, 0);
    for p in ctx.items {
        n.0 += 1;
        n.2 += p.item.size;
        for (_, path, _) in &p.derivatives {
            n.1 += 1;
            n.2 += ctx.file(files, path).map_or(0, |f| f.size);
        }
    }
    n
}

/// A byte count with its digits grouped by thousands (1,234,567).
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

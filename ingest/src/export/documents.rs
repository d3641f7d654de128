//! The documents of a disclosure package, for people: the evidence list (电子数据清单) in CSV and
//! HTML, the collection record (提取笔录), the chain-of-custody report, VERIFY.md, and the
//! CASE/UCO graph. Chinese first, English beside it; no internet assets; A4 when printed.

use super::PackageItem;
use evidock_verify::digest::DigestSet;
use evidock_verify::event::payload::{DockedPayload, ObjectRole, ReadMethod};
use evidock_verify::event::{CustodyEvent, EventKind, Timestamp, UtcOffset};
use evidock_verify::id::{Sha256, StationId};
use evidock_verify::note::VerifierKey;
use evidock_verify::package::ManifestFile;
use std::collections::BTreeSet;
use std::fmt::Write as _;

pub(crate) struct Context<'a> {
    pub view: &'a crate::cases::CaseView,
    pub items: &'a [PackageItem],
    pub events: &'a [CustodyEvent],
    pub station: &'a StationId,
    pub key: &'a VerifierKey,
    /// SHA-256 of the TSA root certificates in the package.
    pub tsa_roots: &'a [Sha256],
    /// Checkpoint sizes whose tokens are in the package.
    pub tokened: &'a BTreeSet<u64>,
    /// The package's checkpoint: tree size and root.
    pub checkpoint: (u64, Sha256),
    pub created: Timestamp,
    pub by: &'a str,
    /// The witness (见证人) named at the export, printed in the collection record.
    pub witness: Option<&'a str>,
    pub offset: UtcOffset,
    pub verifier_sha: Option<Sha256>,
    pub digests: DigestSet,
}

impl Context<'_> {
    fn time(&self, t: chrono::DateTime<chrono::Utc>) -> String {
        t.with_timezone(&self.offset.0)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string()
    }

    fn file<'f>(&self, files: &'f [ManifestFile], path: &str) -> Option<&'f ManifestFile> {
        files.iter().find(|f| f.path == path)
    }
}

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

fn evidence_csv(ctx: &Context<'_>, files: &[ManifestFile]) -> String {
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

fn evidence_html(ctx: &Context<'_>, files: &[ManifestFile]) -> String {
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

fn collection_record(ctx: &Context<'_>, files: &[ManifestFile]) -> String {
    let r = &ctx.view.entry.record;
    let mut devices: BTreeSet<String> = BTreeSet::new();
    let mut officers: BTreeSet<String> = BTreeSet::new();
    let (mut first, mut last) = (None, None);
    for p in ctx.items {
        devices.insert(p.item.device.as_str().to_string());
        if let Some(o) = &p.item.officer {
            officers.insert(o.clone());
        }
        let t = p.item.acquired_at;
        first = Some(first.map_or(t, |f: chrono::DateTime<chrono::Utc>| f.min(t)));
        last = Some(last.map_or(t, |l: chrono::DateTime<chrono::Utc>| l.max(t)));
    }
    let mut process = String::new();
    // The method as the custody events recorded it: never a method the station did not use
    // (an officer signs this record for a court). Said docking by docking when they differ.
    let methods: BTreeSet<Option<ReadMethod>> = ctx
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Docked)
        .filter_map(|e| e.payload::<DockedPayload>().ok())
        .map(|d| d.method)
        .collect();
    for ev in ctx.events.iter().filter(|e| e.kind == EventKind::Docked) {
        if let Ok(d) = ev.payload::<DockedPayload>() {
            let (zh, en) = if methods.len() > 1 {
                let (zh, en) = method_text(d.method);
                (format!("：{zh}"), format!(": {en}"))
            } else {
                (String::new(), String::new())
            };
            let offset = d
                .clock_offset_ms
                .map(|o| (offset_hms(o), format!("{o} ms")))
                .unwrap_or(("未读取".into(), "not read".into()));
            let _ = writeln!(
                process,
                "<li>{} 设备 {} 接入采集站 {}（{}，端口 {}）{zh}；设备时钟 {}，采集站时间减设备时间 {} <span class=en>camera {} docked{en}; station minus camera clock {}</span></li>",
                ctx.time(ev.time.0),
                h(d.identity.serial.as_str()),
                h(ctx.station.as_str()),
                h(&d.driver),
                h(d.slot.as_deref().unwrap_or("-")),
                h(d.camera_clock.as_deref().unwrap_or("未读取 not read")),
                offset.0,
                h(d.identity.serial.as_str()),
                offset.1,
            );
        }
    }
    // The unit: as the cameras are registered to it, else as the case register says.
    let units: BTreeSet<String> = ctx
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Docked)
        .filter_map(|e| e.payload::<DockedPayload>().ok())
        .filter_map(|d| d.identity.unit_name.filter(|u| !u.trim().is_empty()))
        .collect();
    let unit = if units.is_empty() {
        if r.unit.trim().is_empty() {
            "（未登记 not recorded）".to_string()
        } else {
            r.unit.clone()
        }
    } else {
        units.into_iter().collect::<Vec<_>>().join("、")
    };
    let method = methods
        .iter()
        .map(|m| {
            let (zh, en) = method_text(*m);
            format!("{zh}<br><span class=en>{en}</span>")
        })
        .collect::<Vec<_>>()
        .join("<br>");
    let mut values = String::new();
    for p in ctx.items {
        let sm3 = ctx
            .file(files, &p.original)
            .and_then(|f| f.sm3.as_ref())
            .map(|s| format!("<br>SM3 {}", h(&s.to_string())))
            .unwrap_or_default();
        let _ = writeln!(
            values,
            "<tr><td class=mono>{}</td><td>{}</td><td class=mono>SHA-256 {}{}</td></tr>",
            h(&p.original),
            grouped(p.item.size),
            p.item.sha256,
            sm3
        );
    }
    let tsa = if ctx.tsa_roots.is_empty() {
        "未配置可信时间戳服务（仅采集站时间） <span class=en>no TSA configured: station time only</span>".to_string()
    } else {
        format!(
            "{}<br>须与时间戳服务机构自己公布的根证书一致 <span class=en>must match the root the TSA itself publishes</span>",
            ctx.tsa_roots
                .iter()
                .map(|s| format!("<span class=mono>SHA-256 {s}</span>"))
                .collect::<Vec<_>>()
                .join("<br>")
        )
    };
    let body = format!(
        "<h1>电子数据提取笔录<br><span class=en>Record of electronic data collection</span></h1>
<table>
<tr><th style=\"width:28%\">案件 <span class=en>Case</span></th><td>{case} {ctype}<br>{title}</td></tr>
<tr><th>单位 <span class=en>Unit</span></th><td>{unit}</td></tr>
<tr><th>提取对象 <span class=en>Object</span></th><td>执法记录仪 <span class=en>body-worn cameras</span>：{devices}；持有人警号 <span class=en>officers</span>：{officers}</td></tr>
<tr><th>提取时间 <span class=en>Time</span></th><td>{from} — {to}</td></tr>
<tr><th>提取地点 <span class=en>Place</span></th><td>采集站 <span class=en>dock station</span> {station}；案件地点 <span class=en>case place</span>：{place}</td></tr>
<tr><th>提取方法 <span class=en>Method</span></th><td>{method}<br>由 evidock 采集站 {station} 逐字节复制原始文件一次，复制时同步计算完整性校验值，并重新读取存储副本核对一致；每一步记入经采集站密钥签名的监管链日志。<br><span class=en>By evidock on station {station}: each file copied once while its integrity values were computed, the stored copy re-read and compared; every step a custody event signed by the station key.</span></td></tr>
<tr><th>提取过程 <span class=en>Process</span></th><td><ul>{process}</ul></td></tr>
<tr><th>采集站密钥指纹 <span class=en>Station key fingerprint</span></th><td><span class=mono><b>SHA-256 {fp}</b></span><br><span class=mono>{key}</span><br>接收方核验时固定此指纹（抄自本笔录，勿取自移送包） <span class=en>the receiver pins this fingerprint, copied from this record, never from the package</span></td></tr>
<tr><th>时间戳服务根证书 <span class=en>TSA root</span></th><td>{tsa}</td></tr>
<tr><th>监管链检查点 <span class=en>Custody checkpoint</span></th><td><span class=mono><b>{cp_size}:{cp_root}</b></span><br>日志大小:根哈希；以后的移送包须与之一致：<code>evidock-verify --expect {cp_size}:{cp_root}</code> <span class=en>log size:root; later packages must be consistent with it</span></td></tr>
<tr><th>生成 <span class=en>Prepared</span></th><td>{created}，{by}</td></tr>
</table>
<h2>完整性校验值 <span class=en>Integrity values</span></h2>
<table><tr><th>文件 <span class=en>File</span></th><th>大小(字节) <span class=en>Bytes</span></th><th>校验值 <span class=en>Value</span></th></tr>
{values}<tr><th colspan=3>合计 <span class=en>Total</span>：原始文件 {n_files} 个 <span class=en>original files</span>，共 {n_bytes} 字节 <span class=en>bytes</span></th></tr></table>
<h2>签名 <span class=en>Signatures</span></h2>
<table class=sign><tr><th style=\"width:28%\">提取人 <span class=en>Collected by</span></th><td>采集站 {station} 于接入时自动提取 <span class=en>the station, at docking</span></td><th style=\"width:18%\">日期 <span class=en>Date</span></th><td style=\"width:22%\"></td></tr>
<tr><th>制作人 <span class=en>Prepared by</span></th><td>{by}<br><span class=en>签名 signature:</span></td><th style=\"width:18%\">日期 <span class=en>Date</span></th><td style=\"width:22%\"></td></tr>
<tr><th>见证人 <span class=en>Witness</span></th><td>{witness}<br><span class=en>签名 signature:</span></td><th>日期 <span class=en>Date</span></th><td></td></tr>
<tr><th>持有人 <span class=en>Holder</span></th><td></td><th>日期 <span class=en>Date</span></th><td></td></tr></table>
",
        case = h(r.case.as_str()),
        ctype = h(&r.case_type),
        title = h(&r.title),
        devices = h(&devices.into_iter().collect::<Vec<_>>().join("、")),
        officers = h(&officers.into_iter().collect::<Vec<_>>().join("、")),
        from = first.map(|t| ctx.time(t)).unwrap_or_default(),
        to = last.map(|t| ctx.time(t)).unwrap_or_default(),
        station = h(ctx.station.as_str()),
        method = method,
        place = h(&r.place),
        key = h(&ctx.key.to_string()),
        fp = ctx.key.fingerprint(),
        cp_size = ctx.checkpoint.0,
        cp_root = ctx.checkpoint.1,
        created = ctx.time(ctx.created.0),
        by = h(ctx.by),
        witness = ctx.witness.map_or_else(|| "（未指定 none named）".to_string(), h),
        unit = h(&unit),
        n_files = ctx.items.len(),
        n_bytes = grouped(ctx.items.iter().map(|p| p.item.size).sum()),
    );
    page("电子数据提取笔录 Collection record", false, &body)
}

/// An event kind in Chinese, for the documents (the English word stands beside it).
fn kind_zh(k: &EventKind) -> &'static str {
    match k {
        EventKind::Docked => "接入采集站",
        EventKind::ClockSynced => "校准设备时钟",
        EventKind::Acquired => "提取（复制并核对）",
        EventKind::AcquireFailed => "提取失败",
        EventKind::Skipped => "已提取过，跳过",
        EventKind::Released => "提取完毕，可拔出",
        EventKind::Undocked => "设备拔出",
        EventKind::CameraAssigned => "设备分配",
        EventKind::Timestamped => "可信时间戳",
        EventKind::Uploaded => "上传并回读核对",
        EventKind::Transcoded => "生成派生文件",
        EventKind::TranscodeFailed => "派生文件生成失败",
        EventKind::CaseRegistered => "案件登记",
        EventKind::Linked => "关联案件",
        EventKind::Unlinked => "取消关联",
        EventKind::RetentionChanged => "保存期限变更",
        EventKind::Verified => "审核校验",
        EventKind::Exported => "导出移送包",
        EventKind::Accessed => "调阅",
        EventKind::WipeRequested => "请求清除设备文件",
        EventKind::DeviceWiped => "设备文件已清除",
        EventKind::Disposed => "销毁",
        EventKind::KeyRotated => "更换采集站密钥",
        EventKind::Other(_) => "其他事件",
    }
}

/// A case's state in Chinese.
fn status_zh(s: evidock_verify::case::CaseStatus) -> &'static str {
    match s {
        evidock_verify::case::CaseStatus::Open => "办理中",
        evidock_verify::case::CaseStatus::Closed => "已结案",
    }
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

/// How the files were read, in Chinese and English, as the `docked` event recorded it.
fn method_text(m: Option<ReadMethod>) -> (&'static str, &'static str) {
    match m {
        Some(ReadMethod::UsbReadOnly) => (
            "通过 USB 读取：采集站将执法记录仪的存储设为只读块设备并以只读方式挂载",
            "over USB: the station set the camera's storage read-only as a block device and mounted it read-only",
        ),
        Some(ReadMethod::UsbSystemMount) => (
            "通过 USB 读取：采集站将执法记录仪的存储设为只读块设备，确认系统的挂载为只读，并经只读绑定读取",
            "over USB: the station set the camera's storage read-only as a block device, checked that the system's mount of it was read-only, and read it through a read-only bind",
        ),
        Some(ReadMethod::Simulated) => (
            "模拟执法记录仪（evidock simulate camera，供试用，并非真实设备）",
            "a simulated camera (`evidock simulate camera`, for trying a station; not a real camera)",
        ),
        Some(ReadMethod::WatchFolder) => (
            "执法记录仪的存储卷出现在采集站的监视目录中（由系统挂载），采集站以只读方式打开其文件",
            "the camera's volume appeared in the station's watch folder (mounted by the system); its files were opened read-only",
        ),
        Some(ReadMethod::Folder) => (
            "由操作人员指定的文件夹（存储卡或其副本）读取，以只读方式打开其文件；该文件夹此前如何形成，本采集站不作证明",
            "from a folder an operator gave to `evidock ingest` (a card, or a copy of one), its files opened read-only; how that folder came to be is not attested by this station",
        ),
        None => (
            "读取方式未记入监管链日志（该采集站当时的版本不记录此项）",
            "the method was not recorded in the custody log (the station's version then did not record it)",
        ),
    }
}

/// A clock offset as ±HH:MM:SS (milliseconds dropped; the English text gives them).
fn offset_hms(ms: i64) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    let s = ms.unsigned_abs() / 1000;
    format!("{sign}{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn report(ctx: &Context<'_>) -> String {
    let r = &ctx.view.entry.record;
    let mut b = format!(
        "<h1>监管链报告<br><span class=en>Chain-of-custody report</span></h1>\n<p>案件 Case <b>{}</b> {} · {} · 状态 {} <span class=en>status {}</span></p>\n",
        h(r.case.as_str()),
        h(&r.case_type),
        h(&r.title),
        status_zh(r.status),
        r.status.as_str()
    );
    b.push_str("<h2>案件时段 <span class=en>Case windows</span></h2><table><tr><th>开始 Start</th><th>结束 End</th><th>录像 Recordings</th></tr>\n");
    for w in &ctx.view.windows {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ctx.time(w.start.0),
            ctx.time(w.end.0),
            if w.gap {
                "<b>无录像 NO FOOTAGE</b>".to_string()
            } else {
                w.recordings.to_string()
            }
        );
    }
    b.push_str("</table>\n");
    for p in ctx.items {
        let it = &p.item;
        let poster = p
            .derivatives
            .iter()
            .find(|(r, _, _)| *r == ObjectRole::Poster)
            .map(|(_, path, _)| format!("<img src=\"{}\" alt=\"poster\">", href(path)))
            .unwrap_or_default();
        let playback = p
            .derivatives
            .iter()
            .find(|(r, _, _)| *r == ObjectRole::Playback)
            .map(|(_, path, _)| {
                format!(
                    "<a href=\"{}\">播放副本 playback copy</a>（派生文件，非原始证据 a derivative, not the original）",
                    href(path)
                )
            })
            .unwrap_or_else(|| "无播放副本 no playback copy".into());
        let _ = writeln!(
            b,
            "<h2>{} <span class=mono>{}</span></h2>\n<table><tr><td style=\"width:62mm\">{poster}</td><td>原始文件 Original: <a href=\"{}\" class=mono>{}</a><br>SHA-256 <span class=mono>{}</span><br>设备 Device {} · 警号 Officer {} · 拍摄 Recorded {} (设备时钟 camera {})<br>{playback}<br>关联 Link：{} <span class=en>{}</span></td></tr></table>",
            h(it.path.rsplit('/').next().unwrap_or(&it.path)),
            h(it.evidence.as_str()),
            href(&p.original),
            h(&p.original),
            it.sha256,
            h(it.device.as_str()),
            h(it.officer.as_deref().unwrap_or("-")),
            it.start.map(|t| ctx.time(t)).unwrap_or("-".into()),
            h(it.recorded_raw.as_deref().unwrap_or("-")),
            match (p.link.automatic, p.link.review) {
                (true, false) => "自动关联：警号相符，拍摄时间落在案件时段（含前后缓冲）内",
                (true, true) => "自动关联，待复核：该录像也符合另一案件",
                (false, _) => "人工关联，理由如记录",
            },
            // The reason as its custody event recorded it, in its own words.
            h(&p.link.reason),
        );
        b.push_str(
            "<table><tr><th>#</th><th>时间 Time</th><th>事件 Event</th><th>执行者 By</th></tr>\n",
        );
        let session = it.session.as_str();
        for ev in ctx.events.iter().filter(|e| match &e.subject {
            evidock_verify::event::Subject::Evidence(x) => *x == it.evidence,
            evidock_verify::event::Subject::Session(s) => s.as_str() == session,
            _ => false,
        }) {
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{} <span class=en>{}</span></td><td>{}</td></tr>",
                ev.seq,
                ctx.time(ev.time.0),
                kind_zh(&ev.kind),
                h(ev.kind.as_str()),
                h(&ev.actor.id)
            );
        }
        b.push_str("</table>\n");
    }
    let _ = writeln!(
        b,
        "<h2>时间证明 <span class=en>Trusted time</span></h2><p>{}</p>",
        if ctx.tokened.is_empty() {
            "本包不含 RFC 3161 时间戳：时间为采集站时间。<span class=en>No RFC 3161 tokens: times are the station's.</span>".to_string()
        } else {
            let sizes = ctx
                .tokened
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "RFC 3161 时间戳覆盖检查点 {sizes}；仅当其根证书是接收方自行信任的时间戳服务机构根证书时才证明时间。<span class=en>RFC 3161 tokens cover checkpoints {sizes}; they prove time only through a TSA root the receiver trusts on its own.</span>"
            )
        }
    );
    b.push_str(PROVES);
    page("监管链报告 Chain-of-custody report", false, &b)
}

/// What each check proves, for report.html (VERIFY.md says the same at each step).
const PROVES: &str = "<h2>各项核验证明什么 <span class=en>What each check proves</span></h2>
<ul>
<li><code>sha256sum -c SHA256SUMS</code>、<code>certutil</code>、<code>Get-FileHash</code>：文件与清单中的校验值一致，即传输或存储中没有损坏。校验值文件本身未签名，不能发现伪造。<span class=en>Stock-tool sums: the files match the listed values — no damage in transit or storage. The sums files are not signed: they do not detect forgery.</span></li>
<li>签名清单与监管链证明（<code>evidock-verify --trust</code>，固定采集站密钥指纹）：文件、事件和检查点均由该采集站密钥签署，任何改动都会被发现。<span class=en>The signed manifest and custody proofs under a station key you pinned (from the collection record): forgery is detected.</span></li>
<li>RFC 3161 时间戳：仅在其证书链止于接收方自行信任的时间戳服务机构根证书时，证明事件在该时间之前已存在。<span class=en>An RFC 3161 token proves time only through a TSA root the receiver trusts on its own.</span></li>
</ul>
";

fn verify_md(ctx: &Context<'_>) -> String {
    let token = ctx.tokened.iter().next_back();
    let tool = match ctx.verifier_sha {
        Some(s) => format!(
            "`tools/evidock-verify` (Linux x86-64) SHA-256: `{s}`\n\n\
             本工具由提交方提供，同样不能证明自己：最好自行从源代码构建并比较结论。\n\
             This tool comes from the presenting party too and cannot vouch for itself: build your own \
             from source (evidock {v}, `cargo build --release --locked -p evidock-verify`, Rust 1.95; \
             Windows: `--target x86_64-pc-windows-gnu`) and compare its verdict.\n",
            v = env!("CARGO_PKG_VERSION")
        ),
        None => format!(
            "The verifier is not in this package. Build it from source / 从源代码构建: evidock {}, `cargo build --release --locked -p evidock-verify` (Rust 1.95).\n",
            env!("CARGO_PKG_VERSION")
        ),
    };
    let ts = match token {
        Some(size) => format!(
            "```sh\nopenssl ts -verify -data custody/checkpoints/{size}.note -in custody/timestamps/{size}.tsr -CAfile TSA-ROOT.pem\n```\n\n\
             `TSA-ROOT.pem` 是您从时间戳服务机构自己公布的渠道取得的根证书——不是本包中的 `custody/tsa/` 文件（那是提交方提供的，任何人都能自制时间戳证书）。\
             在此前提下 `Verification: OK` 表示该检查点及其覆盖的全部事件在时间戳时间之前已存在。\n\n\
             `TSA-ROOT.pem` is the root certificate you obtained from the TSA's own publication — not the `custody/tsa/` \
             files of this package, which come from the presenting party (anyone can make a TSA certificate). With that root, \
             `Verification: OK` means the checkpoint, and every event under it, existed at the TSA's time.\n"
        ),
        None => "本包不含 RFC 3161 时间戳（采集站未配置时间戳服务）：时间为采集站时间。\n\
                 This package has no RFC 3161 tokens (the station had no TSA): times are the station's.\n"
            .to_string(),
    };
    format!(
        "# 核验说明 / How to verify this package

案件 Case: {case} · 采集站 Station: {station} · 生成 Created: {created}

## 0. 信任什么 / What to trust

本包中的一切——密钥、证书、校验值、本说明和工具——都来自提交方，不能证明自己。只信任您自己固定的两样东西：

- **采集站密钥指纹**：从交接时签字的纸质《电子数据提取笔录》抄录，绝不要从本包复制；
- **时间戳服务（TSA）根证书**：从时间戳服务机构自己公布的渠道取得（其网站、公告或认证机构），绝不要用本包中的文件。

Everything in this package — keys, certificates, sums, this text and the tool — comes from the party
presenting it and cannot vouch for itself. Trust only what you pin yourself:

- **the station key fingerprint**, copied from the paper collection record (提取笔录) signed at
  hand-over — never from this package;
- **the TSA root certificate**, from the TSA's own publication (its website, notice, or the
  certification authority) — never from a file in this package.

## 1. 发现损坏 / Damage (stock tools)

Linux / 麒麟 Kylin:

```sh
sha256sum -c SHA256SUMS
```

Windows (命令提示符 cmd):

```bat
certutil -hashfile \"originals\\FILE\" SHA256
```

Windows PowerShell（整包 / the whole package）:

```powershell
Get-ChildItem -Recurse -File | Get-FileHash -Algorithm SHA256 | Format-Table Hash, Path
```

全部为 `OK`（或与 `SHA256SUMS`、`evidence-list.csv` 中的值逐一相同，大小写无关）只说明文件在传输或存储中没有损坏。
`SHA256SUMS` 本身没有签名：伪造者可以同时改动文件和它的校验值。它发现损坏，不发现伪造。

Every line `OK` (or each value equal to the one in `SHA256SUMS` or `evidence-list.csv`, case does not
matter) shows only that the files were not damaged in transit or storage. `SHA256SUMS` is not signed:
a forger can change a file and its line together. It detects damage, not forgery.

## 2. 可信时间 / Trusted time (OpenSSL)

{ts}
## 3. 发现伪造 / Forgery (evidock-verify)

先写 `trust.toml`，两项都从您自己的来源抄录 / First write `trust.toml`, both values from your own sources:

```toml
[[station]]
# 从纸质提取笔录抄录“采集站密钥指纹” / copied from the paper collection record
fingerprint = \"<64 位十六进制 / 64 hex digits>\"

[[tsa]]
# 时间戳服务机构自己公布的根证书 / the root certificate the TSA itself publishes
root_file = \"tsa-root.pem\"
```

用您自己的 evidock-verify（自行从源代码构建，或从提交方以外的渠道取得）运行；本包中的 `tools/evidock-verify` 来自提交方，只作比较之用（见下文）。
Run your own evidock-verify (built from source, or obtained other than from the presenting party);
the `tools/evidock-verify` in this package comes from the presenting party and serves only for
comparison (see below).

```sh
evidock-verify . --trust trust.toml
```

它离线检查每个文件的校验值、清单签名、每个监管链事件在签名检查点中的包含证明、检查点之间的一致性、
RFC 3161 时间戳、原始文件与采集事件及派生文件与转码事件的对应、与案件的关联。结论：

- `Integrity: PROVEN` — 签名清单与监管链证明均由您固定的采集站密钥签署：任何伪造都会被发现；
- `Integrity: CONSISTENT` — 没有错误，但采集站密钥未固定：只与本包自带的密钥一致，这不证明任何事；
- `Time: ATTESTED` — 时间戳的证书链止于您固定的根证书；否则 `NOT ATTESTED` 并说明原因。

退出码 0：全部在您的信任锚下得到证明；1：有错误；2：无法运行；3：没有错误，但有依据未被您固定。

It checks offline every file's digest, the manifest's seal, each custody event's inclusion under the
station's signed checkpoint, consistency between checkpoints, the RFC 3161 tokens, that each original
is the one acquired and each derivative was made from it, and the links to the case. The verdict:

- `Integrity: PROVEN` — the signed manifest and custody proofs are under the station key you pinned:
  forgery is detected;
- `Integrity: CONSISTENT` — no errors, but the station key is not pinned: the package only agrees with
  the key it brings itself, which proves nothing;
- `Time: ATTESTED` — the tokens' chains end at a TSA root you pinned; otherwise `NOT ATTESTED`, with why.

Exit status 0: everything proven under your anchors; 1: errors; 2: could not run; 3: no errors, but
something rests on an anchor you did not pin.

若您已持有该采集站较早的检查点（较早移送包的提取笔录上的“监管链检查点”，或采集站公布的日志），可要求本包与之一致：
If you already hold an earlier checkpoint of this station (the \"custody checkpoint\" on an earlier
package's collection record, or the station's published log), hold this package to it:

```sh
evidock-verify . --trust trust.toml --expect SIZE:ROOT
evidock-verify . --trust trust.toml --expect-checkpoint earlier.note
```

{tool}
## 4. 播放 / Playing

`derivatives/` 中为 H.264/AAC MP4 播放副本，任何播放器可播放；它们是派生文件，不是原始证据。原始文件在 `originals/`，逐字节与执法记录仪一致。
`derivatives/` holds H.264/AAC MP4 playback copies any player opens; they are derivatives, not the
original evidence. The originals in `originals/` are bit-identical to what left the camera.
",
        case = ctx.view.entry.record.case,
        station = ctx.station,
        created = ctx.time(ctx.created.0),
    )
}

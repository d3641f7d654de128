//! The collection record (电子数据提取笔录): what was read from which cameras, how and when,
//! with the station's key fingerprint to be copied onto paper and signed. Apart as one document
//! of the package.

use super::{Context, grouped, h, page};
use evidock_verify::event::EventKind;
use evidock_verify::event::payload::{DockedPayload, ReadMethod};
use evidock_verify::package::ManifestFile;
use std::collections::BTreeSet;
use std::fmt::Write as _;

pub(super) fn collection_record(ctx: &Context<'_>, files: &[ManifestFile]) -> String {
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

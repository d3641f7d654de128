//! The chain-of-custody report (report.html): the case, every event in order, and what each
//! check proves. Apart as one document of the package.

use super::{Context, h, href, page};
use evidock_verify::event::EventKind;
use evidock_verify::event::payload::ObjectRole;
use std::fmt::Write as _;

pub(super) fn report(ctx: &Context<'_>) -> String {
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

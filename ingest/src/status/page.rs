//! The status page: one HTML file, no internet assets, Chinese and English, updated by polling
//! `/api/status` every two seconds. With a token, the browser holds it in the cookie the login
//! form set (an answer of 401 reloads the page, which then shows that form).

pub const HTML: &str = r##"<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>evidock</title>
<style>
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "DejaVu Sans", sans-serif; margin: 0; background: #f3f4f6; color: #111; }
header { background: #1f2937; color: #fff; padding: 10px 16px; display: flex; gap: 16px; align-items: center; }
header h1 { font-size: 18px; margin: 0; }
header .sub { font-size: 13px; opacity: .8; flex: 1; }
button { font-size: 13px; padding: 4px 10px; }
main { padding: 12px 16px; }
.alerts div { padding: 8px 12px; margin-bottom: 6px; border-radius: 4px; }
.alerts .warning { background: #fef3c7; } .alerts .error { background: #fee2e2; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 10px; }
.tile { background: #fff; border-radius: 6px; padding: 10px 12px; border-left: 6px solid #9ca3af; }
.tile.copying, .tile.identifying { border-color: #2563eb; }
.tile.safe-to-undock { border-color: #16a34a; }
.tile.error, .tile.refused, .tile.interrupted { border-color: #dc2626; }
.tile .state { font-weight: bold; font-size: 16px; }
.tile .safe { color: #16a34a; }
.bar { height: 10px; background: #e5e7eb; border-radius: 5px; overflow: hidden; margin: 6px 0; }
.bar div { height: 100%; background: #2563eb; }
.small { font-size: 12px; color: #4b5563; }
section { background: #fff; border-radius: 6px; padding: 10px 12px; margin-top: 12px; }
h2 { font-size: 15px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eee; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 12px; }
</style></head>
<body>
<header><h1>evidock</h1><div class="sub" id="sub"></div><button id="lang" type="button"></button></header>
<main>
<div class="alerts" id="alerts"></div>
<div class="tiles" id="slots"></div>
<div class="grid">
<section><h2 data-t="queues"></h2><table id="queues"></table></section>
<section><h2 data-t="disk"></h2><div id="disk"></div></section>
</div>
<section><h2 data-t="waiting"></h2><div id="waiting"></div></section>
<section><h2 data-t="events"></h2><table id="events"></table></section>
</main>
<script>
"use strict";
const T = {
  zh: { title: "采集站状态", queues: "队列", disk: "存储空间", waiting: "超过24小时未上传", events: "最近的监管链事件",
        none: "无", noCameras: "没有执法记录仪接入", lang: "English", uploadPending: "待上传", uploading: "上传中",
        uploadFailed: "上传失败", uploaded: "已上传", transcode: "待转码", tokens: "待时间戳检查点",
        free: "可用", of: "共", files: "文件", eta: "剩余", speed: "速度", officer: "警号", slot: "接口",
        identifying: "识别中", copying: "复制中", "safe-to-undock": "可以拔出", interrupted: "已中断",
        error: "错误", refused: "已拒绝", departed: "已拔出", live: "实时", offline: "采集程序未运行" },
  en: { title: "Dock station status", queues: "Queues", disk: "Spool disk", waiting: "Not uploaded after 24 h",
        events: "Recent custody events", none: "None", noCameras: "No camera docked", lang: "中文",
        uploadPending: "Upload pending", uploading: "Uploading", uploadFailed: "Upload failed", uploaded: "Uploaded",
        transcode: "Transcode backlog", tokens: "Checkpoints waiting for a token", free: "free", of: "of",
        files: "files", eta: "ETA", speed: "speed", officer: "Officer", slot: "Slot", identifying: "Identifying",
        copying: "Copying", "safe-to-undock": "Safe to undock", interrupted: "Interrupted", error: "Error",
        refused: "Refused", departed: "Undocked", live: "live", offline: "dock not running" }
};
const params = new URLSearchParams(location.search);
let lang = params.get("lang") || localStorage.getItem("evidock-lang") || "zh";
const t = k => (T[lang] && T[lang][k]) || k;
function esc(s) { return String(s ?? "").replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c])); }
function bytes(n) { const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0; while (n >= 1024 && i < 4) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + " " + u[i]; }
function secs(s) { if (s == null) return "-"; s = Math.round(s); const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60); return h ? h + "h" + m + "m" : m ? m + "m" + (s % 60) + "s" : s + "s"; }
function render(r) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = "evidock · " + t("title");
  document.getElementById("lang").textContent = t("lang");
  document.querySelectorAll("[data-t]").forEach(e => e.textContent = t(e.dataset.t));
  document.getElementById("sub").textContent = t("title") + " · " + r.station + " · " + r.time_source + " · " + (r.live ? t("live") : t("offline"));
  document.getElementById("alerts").innerHTML = r.alerts.map(a => `<div class="${esc(a.level)}"><b>${esc(a.code)}</b> ${esc(a.subject)}: ${esc(a.message)}</div>`).join("");
  const slots = r.slots.map(s => {
    const state = s.docked ? s.state : (s.state === "safe-to-undock" ? "safe-to-undock" : "departed");
    const pct = s.bytes_total ? Math.floor(100 * s.bytes_done / s.bytes_total) : 0;
    return `<div class="tile ${esc(state)}" data-serial="${esc(s.serial)}">
      <div class="state ${state === "safe-to-undock" ? "safe" : ""}">${esc(t(state))}</div>
      <div>${esc(s.serial || "?")} · ${t("officer")} ${esc(s.officer || "-")}</div>
      <div class="bar"><div style="width:${pct}%"></div></div>
      <div class="small">${s.files_done}/${s.files_total} ${t("files")} · ${bytes(s.bytes_done)} / ${bytes(s.bytes_total)} · ${t("speed")} ${bytes(s.bytes_per_sec)}/s · ${t("eta")} ${secs(s.eta_secs)}</div>
      <div class="small">${t("slot")} ${esc(s.slot)}${s.message ? " · " + esc(s.message) : ""}</div></div>`;
  });
  document.getElementById("slots").innerHTML = slots.length ? slots.join("") : `<div class="small">${t("noCameras")}</div>`;
  const q = r.uploads;
  document.getElementById("queues").innerHTML = [
    [t("uploadPending"), q.pending + " · " + bytes(q.bytes_waiting)], [t("uploading"), q.uploading], [t("uploadFailed"), q.failed],
    [t("uploaded"), q.uploaded], [t("transcode"), r.transcode_backlog], [t("tokens"), r.checkpoints_without_token]
  ].map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join("");
  const d = r.disk;
  document.getElementById("disk").textContent = `${d.path}: ${bytes(d.free_bytes)} ${t("free")} ${t("of")} ${bytes(d.total_bytes)}`;
  document.getElementById("waiting").innerHTML = r.waiting_over_24h.length ? r.waiting_over_24h.map(([e, h]) => `${esc(e)} (${h} h)`).join("<br>") : t("none");
  document.getElementById("events").innerHTML = r.recent_events.map(e => `<tr><td>#${e.seq}</td><td>${esc(e.time)}</td><td>${esc(e.kind)}</td><td>${esc(e.subject)}</td><td>${esc(e.actor)}</td></tr>`).join("");
}
let last = null;
async function poll() {
  try {
    // Same origin: the browser sends the login cookie itself; the token is never in a URL.
    const res = await fetch("api/status", { cache: "no-store", credentials: "same-origin" });
    if (res.ok) { last = await res.json(); render(last); }
    else if (res.status === 401) { location.reload(); return; }
  } catch (e) { document.getElementById("sub").textContent = String(e); }
  setTimeout(poll, 2000);
}
document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("evidock-lang", lang); if (last) render(last);
});
poll();
</script>
</body></html>
"##;

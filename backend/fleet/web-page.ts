/*
 * The fleet view's single page: plain HTML, CSS and a small script (no framework, no CDN:
 * nothing outside loopback is reachable). Live through EventSource, polling as a fallback.
 * Stable hooks for the browser test: #release-status, #devices-total, #online-total,
 * td[data-group][data-version], #failures li, #chart path[data-version], #stage-info,
 * #paused-count, #awaiting-install-count, #awaiting-reboot-count, #control li[data-device][data-activity].
 */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>xsota fleet</title>
<style>
  :root { --bg:#0f1720; --panel:#17212c; --text:#e6edf3; --dim:#8b98a5; --ok:#3fb950; --bad:#f85149; --warn:#d29922; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--text); }
  header { padding:14px 20px; background:var(--panel); display:flex; gap:24px; align-items:baseline; flex-wrap:wrap; }
  h1 { font-size:18px; margin:0; }
  h2 { font-size:14px; margin:0 0 8px; color:var(--dim); text-transform:uppercase; letter-spacing:.05em; }
  main { display:grid; grid-template-columns: 1fr 1fr; gap:16px; padding:16px 20px; }
  section { background:var(--panel); border-radius:8px; padding:14px; }
  section.wide { grid-column: 1 / span 2; }
  table { border-collapse:collapse; width:100%; }
  th, td { padding:4px 8px; text-align:right; border-bottom:1px solid #253241; }
  th:first-child, td:first-child { text-align:left; }
  .badge { padding:2px 8px; border-radius:10px; font-weight:600; }
  .running { background:#1f6feb33; color:#58a6ff; } .halted { background:#f8514933; color:var(--bad); }
  .done { background:#3fb95033; color:var(--ok); } .none { color:var(--dim); }
  .big { font-size:26px; font-weight:700; }
  #failures { margin:0; padding-left:18px; max-height:220px; overflow:auto; }
  #failures li { color:var(--bad); }
  .legend span { margin-right:14px; }
  .sw { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; }
  svg text { fill: var(--dim); font-size: 11px; }
</style>
</head>
<body>
<header>
  <h1>xsota fleet</h1>
  <div>release <b id="release-id">-</b> <span id="release-version"></span></div>
  <div><span id="release-status" class="badge none">no release</span></div>
  <div id="stage-info"></div>
  <div id="reason" style="color:var(--bad)"></div>
  <div style="margin-left:auto;color:var(--dim)">updated <span id="updated">-</span></div>
</header>
<main>
  <section><h2>Devices</h2>
    <div class="big"><span id="devices-total">0</span> devices, <span id="online-total">0</span> online</div>
    <div id="totals" class="legend"></div>
  </section>
  <section><h2>Failures and rollbacks (<span id="failure-count">0</span>)</h2><ul id="failures"></ul></section>
  <section class="wide"><h2>Held updates</h2>
    <div class="legend"><span>paused <b id="paused-count">0</b></span><span>waiting to install <b id="awaiting-install-count">0</b></span><span>waiting to reboot <b id="awaiting-reboot-count">0</b></span></div>
    <ul id="control"></ul>
  </section>
  <section class="wide"><h2>Rollout progress (devices per version)</h2>
    <svg id="chart" viewBox="0 0 900 260" width="100%" height="260" role="img" aria-label="devices per version over time"></svg>
    <div id="legend" class="legend"></div>
  </section>
  <section class="wide"><h2>Versions per group</h2><table id="groups"><thead></thead><tbody></tbody></table></section>
</main>
<script>
const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff7b72", "#a5d6ff"];
const color = {};
function colorOf(v) { if (!(v in color)) color[v] = COLORS[Object.keys(color).length % COLORS.length]; return color[v]; }
function el(tag, attrs, text) { const e = document.createElement(tag); for (const k in attrs || {}) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; }
function svg(tag, attrs) { const e = document.createElementNS("http://www.w3.org/2000/svg", tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; }
function semverKey(v) { return v.split(/[.+-]/).map((p) => /^\\d+$/.test(p) ? p.padStart(8, "0") : p).join("."); }
function render(s) {
  document.getElementById("updated").textContent = new Date().toLocaleTimeString();
  const r = s.release;
  const st = document.getElementById("release-status");
  st.textContent = r ? r.status + (r.flagged ? " (flagged)" : "") : "no release";
  st.className = "badge " + (r ? r.status : "none");
  document.getElementById("release-id").textContent = r ? r.id : "-";
  document.getElementById("release-version").textContent = r ? "v" + r.version : "";
  document.getElementById("stage-info").textContent = r ? "stage " + (r.stage + 1) + "/" + r.plan.length + " at " + r.percent + " %" : "";
  document.getElementById("reason").textContent = r && r.reason ? r.reason : "";
  document.getElementById("devices-total").textContent = s.devices;
  document.getElementById("online-total").textContent = s.online;
  const versions = Object.keys(s.totals).sort((a, b) => semverKey(a) < semverKey(b) ? -1 : 1);
  versions.forEach(colorOf);
  const totals = document.getElementById("totals"); totals.textContent = "";
  for (const v of versions) { const sp = el("span", { "data-total-version": v }); sp.append(el("i", { class: "sw", style: "background:" + colorOf(v) }), v + ": " + s.totals[v]); totals.append(sp); }
  const fl = document.getElementById("failures"); fl.textContent = "";
  document.getElementById("failure-count").textContent = s.failures.length;
  for (const f of s.failures.slice(0, 200)) fl.append(el("li", { "data-device": f.device }, f.device + " " + f.state + (f.code ? " " + f.code : "")));
  const table = document.getElementById("groups");
  const head = table.tHead; head.textContent = "";
  const hr = el("tr"); hr.append(el("th", {}, "group")); for (const v of versions) hr.append(el("th", {}, v)); hr.append(el("th", {}, "total")); head.append(hr);
  const body = table.tBodies[0]; body.textContent = "";
  for (const g of Object.keys(s.byGroup).sort()) {
    const tr = el("tr"); tr.append(el("td", {}, g)); let sum = 0;
    for (const v of versions) { const n = s.byGroup[g][v] || 0; sum += n; tr.append(el("td", { "data-group": g, "data-version": v }, String(n))); }
    tr.append(el("td", { "data-group-total": g }, String(sum))); body.append(tr);
  }
  const ctl = s.control || { paused: [], awaitingInstall: [], awaitingReboot: [] };
  document.getElementById("paused-count").textContent = ctl.paused.length;
  document.getElementById("awaiting-install-count").textContent = ctl.awaitingInstall.length;
  document.getElementById("awaiting-reboot-count").textContent = ctl.awaitingReboot.length;
  const cl = document.getElementById("control"); cl.textContent = "";
  for (const [list, what, label] of [[ctl.paused, "paused", "paused"], [ctl.awaitingInstall, "awaiting-install", "waiting to install"], [ctl.awaitingReboot, "awaiting-reboot", "waiting to reboot"]]) {
    for (const d of list.slice(0, 100)) cl.append(el("li", { "data-device": d, "data-activity": what }, d + " " + label));
  }
  drawChart(s, versions);
}
function drawChart(s, versions) {
  const c = document.getElementById("chart"); c.textContent = "";
  const W = 900, H = 260, L = 48, R = 12, T = 10, B = 28;
  const pts = s.samples; if (!pts.length) { const t = svg("text", { x: L, y: H / 2 }); t.textContent = "waiting for samples"; c.append(t); return; }
  const times = [...new Set(pts.map((p) => p.time))].sort((a, b) => a - b);
  const t0 = times[0], t1 = Math.max(times[times.length - 1], t0 + 1);
  const maxY = Math.max(1, s.devices, ...pts.map((p) => p.count));
  const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
  const y = (n) => H - B - (H - B - T) * n / maxY;
  c.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#3b4856" }));
  c.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#3b4856" }));
  for (const n of [0, Math.round(maxY / 2), maxY]) { const t = svg("text", { x: 4, y: y(n) + 4 }); t.textContent = n; c.append(t); }
  const mins = Math.round((t1 - t0) / 60000); const tl = svg("text", { x: W - R - 80, y: H - 8 }); tl.textContent = "+" + mins + " min"; c.append(tl);
  for (const st of s.stages) {
    if (st.started < t0 || st.started > t1) continue;
    c.append(svg("line", { x1: x(st.started), y1: T, x2: x(st.started), y2: H - B, stroke: "#8b98a5", "stroke-dasharray": "3 3" }));
    const t = svg("text", { x: x(st.started) + 3, y: T + 10 }); t.textContent = st.percent + "%"; c.append(t);
  }
  const legend = document.getElementById("legend"); legend.textContent = "";
  for (const v of versions) {
    let d = ""; let last = 0;
    for (const t of times) { const p = pts.find((q) => q.time === t && q.version === v); const n = p ? p.count : 0; d += (d ? " L" : "M") + x(t).toFixed(1) + " " + y(last).toFixed(1) + " L" + x(t).toFixed(1) + " " + y(n).toFixed(1); last = n; }
    d += " L" + (W - R) + " " + y(last).toFixed(1);
    c.append(svg("path", { d, fill: "none", stroke: colorOf(v), "stroke-width": 2.5, "data-version": v }));
    const sp = el("span"); sp.append(el("i", { class: "sw", style: "background:" + colorOf(v) }), v); legend.append(sp);
  }
}
let polling = 0;
function poll() { fetch("/api/status").then((r) => r.json()).then(render).catch(() => {}); }
if (window.EventSource) {
  const es = new EventSource("/api/stream");
  es.addEventListener("status", (e) => render(JSON.parse(e.data)));
  es.onerror = () => { if (!polling) polling = setInterval(poll, 2000); };
} else { polling = setInterval(poll, 2000); }
poll();
</script>
</body>
</html>
`;

// A tiny SVG line chart: no library, no build step.
// lineChart(series, {title, unit}) -> element; series = [{name, points: [[t, v], ...]}].
"use strict";
const CHART_COLORS = ["#2456d6", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2"];
function lineChart(series, opts) {
  const W = 600, H = 140, PAD_L = 48, PAD_B = 18, PAD_T = 8;
  const wrap = document.createElement("div");
  wrap.className = "chart";
  const title = document.createElement("div");
  title.className = "muted";
  title.textContent = opts.title;
  wrap.appendChild(title);
  const pts = series.flatMap(s => s.points);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  wrap.appendChild(svg);
  if (pts.length < 2) {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", W / 2); t.setAttribute("y", H / 2);
    t.setAttribute("text-anchor", "middle"); t.setAttribute("fill", "#9ca3af");
    t.textContent = "collecting samples…";
    svg.appendChild(t);
    return wrap;
  }
  const t0 = Math.min(...pts.map(p => p[0])), t1 = Math.max(...pts.map(p => p[0]));
  const vmax = Math.max(1, ...pts.map(p => p[1]));
  const x = t => PAD_L + (W - PAD_L - 4) * (t1 === t0 ? 1 : (t - t0) / (t1 - t0));
  const y = v => PAD_T + (H - PAD_T - PAD_B) * (1 - v / vmax);
  for (const frac of [0, 0.5, 1]) {
    const gy = y(vmax * frac);
    const line = document.createElementNS(ns, "line");
    line.setAttribute("x1", PAD_L); line.setAttribute("x2", W); line.setAttribute("y1", gy); line.setAttribute("y2", gy);
    line.setAttribute("stroke", "#e5e7eb");
    svg.appendChild(line);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", PAD_L - 4); label.setAttribute("y", gy + 4);
    label.setAttribute("text-anchor", "end"); label.setAttribute("font-size", "10"); label.setAttribute("fill", "#6b7280");
    label.textContent = fmtNum(vmax * frac) + (opts.unit || "");
    svg.appendChild(label);
  }
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const path = document.createElementNS(ns, "polyline");
    path.setAttribute("points", s.points.map(p => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "));
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", CHART_COLORS[i % CHART_COLORS.length]);
    path.setAttribute("stroke-width", "1.8");
    path.setAttribute("vector-effect", "non-scaling-stroke");
    svg.appendChild(path);
  });
  const legend = document.createElement("div");
  legend.className = "muted";
  legend.style.fontSize = "11px";
  legend.innerHTML = series.map((s, i) =>
    `<span style="color:${CHART_COLORS[i % CHART_COLORS.length]}">■</span> ${escapeHtml(s.name)}`).join("  ");
  wrap.appendChild(legend);
  return wrap;
}
function fmtNum(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

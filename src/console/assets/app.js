// corestream console: a single page over the admin port's JSON endpoints
// (docs/CONSOLE.md). Plain JavaScript, no build step, nothing from a CDN.
"use strict";

const POLL_OVERVIEW_MS = 2000;
const POLL_GROUP_MS = 3000;
const POLL_TAIL_MS = 1000;
const main = document.getElementById("main");
let timers = [];
let routeToken = 0;

// ---- helpers ---------------------------------------------------------------
// Every change is a POST with X-Corestream-Console (the admin port's CSRF
// defence: another site's page cannot send this header).
// With admin_token_file set, the port answers 401 until the request
// carries the bearer token: asked once, kept for this tab only.
const TOKEN_KEY = "corestream-admin-token";
async function api(method, path, body, retried) {
  const init = { method, headers: {} };
  if (method !== "GET") init.headers["X-Corestream-Console"] = "1";
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) init.headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401 && !retried) {
    // Another request may have asked for the token meanwhile.
    const stored = sessionStorage.getItem(TOKEN_KEY);
    const entered = stored !== token ? stored
      : window.prompt("This admin port needs its token (admin_token_file):");
    if (entered) {
      sessionStorage.setItem(TOKEN_KEY, entered.trim());
      return api(method, path, body, true);
    }
  }
  const text = await res.text();
  let data;
  try { data = JSON.parse(text); } catch { data = { error: text }; }
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}
const enc = encodeURIComponent;
function h(html) { const t = document.createElement("template"); t.innerHTML = html.trim(); return t.content.firstChild; }
function toast(msg, isError) {
  const el = document.getElementById("toast");
  el.textContent = msg; el.className = isError ? "error" : ""; el.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}
function every(ms, fn) { fn(); timers.push(setInterval(fn, ms)); }
function fmtTime(ms) { return ms > 0 ? new Date(ms).toISOString().replace("T", " ").replace("Z", "") : "–"; }
function badge(status) { return `<span class="badge ${escapeHtml(status)}">${escapeHtml(status)}</span>`; }
function setStatus(text) { document.getElementById("status").textContent = text; }

// ---- router ------------------------------------------------------------------
function route() {
  timers.forEach(clearInterval); timers = [];
  const token = ++routeToken;
  const parts = (location.hash.replace(/^#\/?/, "") || "overview").split("/").map(decodeURIComponent);
  document.querySelectorAll("[data-nav]").forEach(a => a.classList.toggle("active", a.dataset.nav === parts[0]));
  main.innerHTML = "";
  const live = () => token === routeToken;
  const page = {
    overview: () => overviewPage(live),
    topics: () => parts[1] ? topicPage(parts[1], parts[2] || "messages", live) : topicsPage(live),
    groups: () => parts[1] ? groupPage(parts[1], live) : groupsPage(live),
  }[parts[0]];
  (page || (() => { main.innerHTML = "<h1>Not found</h1>"; }))();
}
window.addEventListener("hashchange", route);

// ---- overview ----------------------------------------------------------------
function overviewPage(live) {
  main.appendChild(h(`<div><h1>Overview</h1><div class="cards" id="ov-cards"></div>
    <h2>Brokers</h2><table id="ov-brokers"></table>
    <h2>Controller quorum</h2><div class="muted" id="ov-quorum-info"></div><table id="ov-quorum"></table>
    <h2>Shards</h2><table id="ov-shards"></table>
    <h2>Throughput per shard</h2><div class="charts" id="ov-charts"></div></div>`));
  every(POLL_OVERVIEW_MS, async () => {
    let o;
    try { o = await api("GET", "/v1/overview"); } catch (e) { setStatus(e.message); return; }
    if (!live()) return;
    setStatus("cluster " + (o.cluster_id || ""));
    const totalIn = o.shards.reduce((a, s) => a + s.bytes_in_per_s, 0);
    const totalOut = o.shards.reduce((a, s) => a + s.bytes_out_per_s, 0);
    document.getElementById("ov-cards").innerHTML = [
      ["Brokers", o.brokers.length], ["Topics", o.topics], ["Shards", o.shards.length],
      ["Disk used", fmtBytes(o.disk_bytes)], ["In", fmtRate(totalIn)], ["Out", fmtRate(totalOut)],
    ].map(([l, v]) => `<div class="card"><div class="label">${l}</div><div class="value">${v}</div></div>`).join("");
    document.getElementById("ov-brokers").innerHTML = "<tr><th>Node</th><th>Address</th><th>Rack</th><th>Role</th><th>State</th></tr>" +
      o.brokers.map(b => `<tr data-broker="${b.node_id}"><td>${b.node_id}${b.local ? " (this node)" : ""}</td>
        <td>${escapeHtml(b.host)}:${b.port}</td><td>${escapeHtml(b.rack || "–")}</td>
        <td>${b.controller ? "active controller" : "broker"}</td><td class="state">${badge(b.state)}</td></tr>`).join("");
    quorumView(o);
    document.getElementById("ov-shards").innerHTML = `<tr><th>Shard</th><th class="num">Partitions</th><th class="num">Disk</th>
      <th class="num">In/s</th><th class="num">Out/s</th><th class="num">Connections</th></tr>` +
      o.shards.map(s => `<tr><td>${s.shard}</td><td class="num">${s.partitions}</td><td class="num">${fmtBytes(s.disk_bytes)}</td>
        <td class="num">${fmtBytes(s.bytes_in_per_s)}</td><td class="num">${fmtBytes(s.bytes_out_per_s)}</td>
        <td class="num">${s.connections_open}</td></tr>`).join("");
    const charts = document.getElementById("ov-charts");
    charts.innerHTML = "";
    o.history.forEach((points, shard) => charts.appendChild(lineChart([
      { name: "in", points: points.map(p => [p.t, p.in]) },
      { name: "out", points: points.map(p => [p.t, p.out]) },
    ], { title: `shard ${shard} (bytes/s)`, unit: "" })));
  });
}

// The controller quorum (DescribeQuorum): leader, epoch, high watermark and
// each voter's log end and lag; a single node has no Raft log.
function quorumView(o) {
  const q = o.quorum, info = document.getElementById("ov-quorum-info"), table = document.getElementById("ov-quorum");
  if (q.error) { info.textContent = "no quorum leader: " + q.error; table.innerHTML = ""; return; }
  const num = n => n == null ? "–" : n;
  info.textContent = o.cluster_mode
    ? `leader ${q.leader_id}, epoch ${q.epoch}, high watermark ${num(q.high_watermark)}`
    : `single node: node ${q.leader_id} is its own controller (no Raft quorum)`;
  table.innerHTML = `<tr><th>Voter</th><th class="num">Log end</th><th class="num">Lag (entries)</th><th>Role</th></tr>` +
    q.voters.map(v => `<tr data-voter="${v.id}"><td>${v.id}</td><td class="num">${num(v.log_end_offset)}</td>
      <td class="num lag">${num(v.lag)}</td><td>${v.id === q.leader_id ? "leader" : "follower"}</td></tr>`).join("");
}

// ---- topics ------------------------------------------------------------------
function topicsPage(live) {
  main.appendChild(h(`<div><h1>Topics</h1>
    <div class="toolbar">
      <input id="topic-search" placeholder="Search topics" size="28">
      <label><input type="checkbox" id="show-internal"> internal</label>
      <span style="flex:1"></span>
      <form class="inline" id="create-topic">
        <input name="name" placeholder="new topic name" required>
        <input name="partitions" type="number" min="1" placeholder="partitions" style="width:100px">
        <button>Create topic</button>
      </form>
    </div>
    <table id="topics-table"></table></div>`));
  let topics = [];
  const render = () => {
    const q = document.getElementById("topic-search").value.toLowerCase();
    const internal = document.getElementById("show-internal").checked;
    document.getElementById("topics-table").innerHTML = `<tr><th>Topic</th><th class="num">Partitions</th>
      <th class="num">Replication</th><th class="num">Messages</th><th class="num">Size on disk</th>
      <th class="num">Produce rate</th><th></th></tr>` +
      topics.filter(t => t.name.toLowerCase().includes(q) && (internal || !t.internal)).map(t => `
      <tr data-topic="${escapeHtml(t.name)}"><td><a href="#/topics/${enc(t.name)}">${escapeHtml(t.name)}</a></td>
      <td class="num">${t.partitions}</td><td class="num">${t.replication_factor}</td>
      <td class="num" data-col="messages">${t.messages}</td><td class="num">${fmtBytes(t.size_bytes)}</td>
      <td class="num">${t.produce_rate_per_s.toFixed(1)}/s</td>
      <td><button class="danger" data-delete="${escapeHtml(t.name)}">Delete</button></td></tr>`).join("");
  };
  document.getElementById("topic-search").oninput = render;
  document.getElementById("show-internal").onchange = render;
  document.getElementById("topics-table").onclick = async ev => {
    const name = ev.target.dataset.delete;
    if (!name || !confirm(`Delete topic ${name}? Its records are gone for good.`)) return;
    try { await api("POST", `/v1/topics/${enc(name)}/delete`); toast(`deleted ${name}`); load(); } catch (e) { toast(e.message, true); }
  };
  document.getElementById("create-topic").onsubmit = async ev => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const body = { name: f.get("name") };
    if (f.get("partitions")) body.partitions = Number(f.get("partitions"));
    try { await api("POST", "/v1/topics", body); toast(`created ${body.name}`); ev.target.reset(); load(); }
    catch (e) { toast(e.message, true); }
  };
  const load = async () => {
    try { topics = (await api("GET", "/v1/topics")).topics; } catch (e) { toast(e.message, true); return; }
    if (live()) render();
  };
  every(POLL_OVERVIEW_MS * 2, load);
}

function topicPage(name, tab, live) {
  const tabs = ["messages", "partitions", "configs", "produce", "admin"];
  main.appendChild(h(`<div><h1>Topic <span id="topic-name">${escapeHtml(name)}</span></h1>
    <div class="tabs">${tabs.map(t => `<a href="#/topics/${enc(name)}/${t}" class="${t === tab ? "active" : ""}">${t[0].toUpperCase() + t.slice(1)}</a>`).join("")}</div>
    <div id="tab"></div></div>`));
  const el = document.getElementById("tab");
  ({ messages: messagesTab, partitions: partitionsTab, configs: configsTab, produce: produceTab, admin: adminTab }[tab]
    || messagesTab)(name, el, live);
}

function messagesTab(name, el, live) {
  el.appendChild(h(`<div><form class="toolbar" id="browse">
      <label>Partition <select name="partition" id="partition"></select></label>
      <label>From <select name="from" id="from">
        <option value="beginning">beginning</option><option value="end">end (newest)</option>
        <option value="offset">offset</option><option value="timestamp">timestamp</option></select></label>
      <input name="at" id="at" placeholder="offset, or time (ISO or ms)" size="22">
      <label>Show as <select name="decode" id="decode"><option value="utf8">UTF-8</option>
        <option value="json">JSON</option><option value="hex">hex</option></select></label>
      <input name="key" placeholder="key contains" size="12">
      <input name="value" placeholder="value contains" size="12">
      <input name="header" placeholder="header contains" size="12">
      <label>Limit <input name="limit" type="number" value="50" min="1" max="500" style="width:70px"></label>
      <button>Load</button>
      <label><input type="checkbox" id="tail"> Live tail</label>
    </form>
    <div class="muted" id="browse-info"></div>
    <table id="messages-table"></table></div>`));
  const form = document.getElementById("browse");
  api("GET", `/v1/topics/${enc(name)}`).then(t => {
    document.getElementById("partition").innerHTML = t.partitions.map(p =>
      `<option value="${p.partition}">${p.partition} (${p.messages} msgs)</option>`).join("");
  }).catch(e => toast(e.message, true));
  let next = null, rows = [];
  const params = (fromOverride) => {
    const f = new FormData(form);
    const p = new URLSearchParams({ partition: f.get("partition") || "0", decode: f.get("decode"), limit: f.get("limit") || "50" });
    for (const k of ["key", "value", "header"]) if (f.get(k)) p.set(k, f.get(k));
    if (fromOverride != null) { p.set("from", "offset"); p.set("offset", fromOverride); return p; }
    const from = f.get("from"); p.set("from", from);
    const at = (f.get("at") || "").trim();
    if (from === "offset") p.set("offset", at || "0");
    if (from === "timestamp") p.set("timestamp", /^\d+$/.test(at) ? at : String(Date.parse(at.endsWith("Z") ? at : at + "Z") || 0));
    return p;
  };
  const show = () => {
    document.getElementById("messages-table").innerHTML = `<tr><th class="num">Offset</th><th>Timestamp</th>
      <th>Key</th><th>Value</th><th>Headers</th></tr>` + rows.map(m => `<tr class="message" data-offset="${m.offset}">
      <td class="num">${m.partition}/${m.offset}</td><td>${fmtTime(m.timestamp)}</td>
      <td class="key"><pre>${m.key == null ? '<span class="muted">null</span>' : escapeHtml(m.key)}</pre></td>
      <td class="value"><pre>${m.value == null ? '<span class="muted">null</span>' : escapeHtml(m.value)}</pre>
        ${m.truncated ? '<span class="muted">(cut)</span>' : ""}</td>
      <td class="headers">${m.headers.map(x => `<span class="header-chip">${escapeHtml(x.key)}: ${escapeHtml(x.value ?? "null")}</span>`).join("")}</td></tr>`).join("");
  };
  const load = async (append) => {
    try {
      const r = await api("GET", `/v1/topics/${enc(name)}/messages?${params(append ? next : null)}`);
      if (!live()) return;
      next = r.next_offset;
      rows = append ? rows.concat(r.messages).slice(-500) : r.messages;
      document.getElementById("browse-info").textContent =
        `log ${r.log_start_offset}…${r.high_watermark}, next ${r.next_offset}, scanned ${fmtBytes(r.scanned_bytes)}` +
        (r.scan_limited ? " (scan bound reached: load again to continue)" : "");
      show();
    } catch (e) { toast(e.message, true); }
  };
  form.onsubmit = ev => { ev.preventDefault(); load(false); };
  document.getElementById("tail").onchange = ev => {
    timers.forEach(clearInterval); timers = [];
    if (ev.target.checked) {
      if (next == null) { document.getElementById("from").value = "end"; }
      load(false).then(() => { timers.push(setInterval(() => load(true), POLL_TAIL_MS)); });
    }
  };
  document.getElementById("decode").onchange = () => load(false);
  setTimeout(() => load(false), 0);
}

function partitionsTab(name, el, live) {
  el.appendChild(h(`<table id="partitions-table"></table>`));
  every(POLL_OVERVIEW_MS * 2, async () => {
    let t;
    try { t = await api("GET", `/v1/topics/${enc(name)}`); } catch (e) { toast(e.message, true); return; }
    if (!live()) return;
    document.getElementById("partitions-table").innerHTML = `<tr><th>Partition</th><th>Leader</th><th>Shard</th>
      <th class="num">Log start</th><th class="num">High watermark</th><th class="num">Messages</th><th class="num">Size</th></tr>` +
      t.partitions.map(p => `<tr><td>${p.partition}</td><td>${p.leader}</td><td>${p.shard}</td>
      <td class="num">${p.log_start_offset}</td><td class="num">${p.high_watermark}</td>
      <td class="num">${p.messages}</td><td class="num">${fmtBytes(p.size_bytes)}</td></tr>`).join("");
  });
}

function configsTab(name, el) {
  el.appendChild(h(`<div><p class="muted">Kafka's topic configs. Edit a value and press Save; Reset returns it to the broker default.</p>
    <table id="configs-table"></table></div>`));
  const render = cfg => {
    const table = document.getElementById("configs-table");
    table.innerHTML = "<tr><th>Name</th><th>Value</th><th>Source</th><th></th></tr>" + cfg.configs.map(c => `
      <tr data-config="${escapeHtml(c.name)}"><td><b>${escapeHtml(c.name)}</b><div class="doc">${escapeHtml(c.documentation || "")}</div></td>
      <td><input value="${escapeHtml(c.value ?? "")}" ${c.read_only ? "disabled" : ""} size="24"></td>
      <td class="muted">${escapeHtml(c.source)}</td>
      <td>${c.read_only ? "" : `<button data-save>Save</button> ${c.source === "topic" ? "<button class='secondary' data-reset>Reset</button>" : ""}`}</td></tr>`).join("");
    table.onclick = async ev => {
      const row = ev.target.closest("tr"); if (!row || ev.target.tagName !== "BUTTON") return;
      const key = row.dataset.config;
      const body = "save" in ev.target.dataset ? { set: { [key]: row.querySelector("input").value } } : { delete: [key] };
      try { render(await api("POST", `/v1/topics/${enc(name)}/configs`, body)); toast(`${key} updated`); }
      catch (e) { toast(e.message, true); }
    };
  };
  api("GET", `/v1/topics/${enc(name)}/configs`).then(render).catch(e => toast(e.message, true));
}

function produceTab(name, el) {
  el.appendChild(h(`<form class="panel" id="produce">
    <div class="toolbar"><label>Partition <input name="partition" type="number" min="0" value="0" style="width:80px"></label>
      <label>Key <input name="key" size="30"></label></div>
    <div><textarea name="value" rows="6" cols="80" placeholder="value"></textarea></div>
    <div class="toolbar"><label>Headers (one name=value a line)</label></div>
    <div><textarea name="headers" rows="3" cols="80" placeholder="trace-id=abc"></textarea></div>
    <button>Produce</button> <span id="produce-result" class="muted"></span></form>`));
  document.getElementById("produce").onsubmit = async ev => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const headers = (f.get("headers") || "").split("\n").map(l => l.trim()).filter(Boolean).map(l => {
      const i = l.indexOf("="); return i < 0 ? { key: l, value: null } : { key: l.slice(0, i), value: l.slice(i + 1) };
    });
    const body = { partition: Number(f.get("partition") || 0), key: f.get("key") || null, value: f.get("value"), headers };
    try {
      const r = await api("POST", `/v1/topics/${enc(name)}/messages`, body);
      document.getElementById("produce-result").textContent = `written at ${r.partition}/${r.offset}`;
    } catch (e) { toast(e.message, true); }
  };
}

function adminTab(name, el) {
  el.appendChild(h(`<div>
    <div class="panel"><form class="inline" id="add-partitions"><b>Partitions</b>
      <input name="count" type="number" min="1" placeholder="new total" style="width:110px"><button>Set partition count</button></form></div>
    <div class="panel"><b>Empty the topic</b> <span class="muted">DeleteRecords up to the high watermark of every partition.</span>
      <button class="danger" id="empty-topic">Empty</button></div>
    <div class="panel"><b>Delete the topic</b> <button class="danger" id="delete-topic">Delete</button></div></div>`));
  document.getElementById("add-partitions").onsubmit = async ev => {
    ev.preventDefault();
    const count = Number(new FormData(ev.target).get("count"));
    try { await api("POST", `/v1/topics/${enc(name)}/partitions`, { count }); toast(`${name} has ${count} partitions`); }
    catch (e) { toast(e.message, true); }
  };
  document.getElementById("empty-topic").onclick = async () => {
    if (!confirm(`Delete every record of ${name}?`)) return;
    try { await api("POST", `/v1/topics/${enc(name)}/empty`); toast(`${name} emptied`); } catch (e) { toast(e.message, true); }
  };
  document.getElementById("delete-topic").onclick = async () => {
    if (!confirm(`Delete topic ${name}?`)) return;
    try { await api("POST", `/v1/topics/${enc(name)}/delete`); location.hash = "#/topics"; } catch (e) { toast(e.message, true); }
  };
}

// ---- groups --------------------------------------------------------------------
function groupsPage(live) {
  main.appendChild(h(`<div><h1>Consumer groups</h1><table id="groups-table"></table></div>`));
  every(POLL_GROUP_MS, async () => {
    let g;
    try { g = await api("GET", "/v1/groups?details=true"); } catch (e) { toast(e.message, true); return; }
    if (!live()) return;
    document.getElementById("groups-table").innerHTML = `<tr><th>Group</th><th>State</th><th>Type</th>
      <th>Protocol</th><th class="num">Members</th></tr>` + (g.groups.length ? g.groups.map(x => `<tr data-group="${escapeHtml(x.group)}">
      <td><a href="#/groups/${enc(x.group)}">${escapeHtml(x.group)}</a></td><td>${badge(x.state)}</td>
      <td>${escapeHtml(x.type)}</td><td>${escapeHtml(x.protocol || "–")}</td><td class="num">${x.members}</td></tr>`).join("")
      : `<tr><td colspan="5" class="muted">no groups</td></tr>`);
  });
}

function groupPage(group, live) {
  main.appendChild(h(`<div><h1>Group <span id="group-name">${escapeHtml(group)}</span> <span id="group-status"></span></h1>
    <div class="cards" id="group-cards"></div>
    <h2>Lag per partition</h2><table id="lag-table"></table>
    <h2>Lag over time</h2><div class="charts" id="lag-charts"></div>
    <h2>Members</h2><table id="members-table"></table>
    <h2>Reset offsets</h2>
    <div class="panel"><form class="inline" id="reset-form">
      <label>Topic <select name="topic" id="reset-topic"></select></label>
      <label>To <select name="to" id="reset-to"><option>earliest</option><option>latest</option>
        <option>timestamp</option><option>offset</option></select></label>
      <input name="value" id="reset-value" placeholder="offset, or time (ISO)" size="22">
      <button type="button" id="reset-dry-run" class="secondary">Dry run</button>
      <button type="button" id="reset-execute" disabled>Execute</button></form>
      <div class="muted" style="margin-top:6px">A reset needs the group's consumers stopped (state Empty). Dry run first, then execute the plan shown.</div>
      <table id="reset-plan" style="margin-top:8px"></table></div>
    <div class="panel"><b>Delete the group</b> <span class="muted">its committed offsets go too</span>
      <button class="danger" id="delete-group">Delete group</button></div></div>`));
  const local = {};
  const load = async () => {
    let g;
    try { g = await api("GET", `/v1/groups/${enc(group)}`); } catch (e) { toast(e.message, true); return; }
    if (!live()) return;
    document.getElementById("group-status").innerHTML = badge(g.status);
    document.getElementById("group-cards").innerHTML = [["State", g.state], ["Type", g.type || "classic"],
      ["Protocol", g.protocol || "–"], ["Members", g.members.length], ["Total lag", g.total_lag]]
      .map(([l, v]) => `<div class="card"><div class="label">${l}</div><div class="value">${escapeHtml(v)}</div></div>`).join("");
    document.getElementById("lag-table").innerHTML = `<tr><th>Topic</th><th>Partition</th><th class="num">Committed</th>
      <th class="num">Log end</th><th class="num">Lag</th><th class="num">Time lag</th><th>Last commit</th><th>Status</th></tr>` +
      g.partitions.map(p => `<tr data-partition="${escapeHtml(p.topic)}/${p.partition}"><td>${escapeHtml(p.topic)}</td><td>${p.partition}</td>
      <td class="num committed">${p.committed_offset}</td><td class="num">${p.log_end_offset}</td>
      <td class="num lag">${p.lag}</td><td class="num">${fmtMs(p.time_lag_ms)}</td><td>${fmtTime(p.commit_timestamp_ms)}</td>
      <td class="status">${badge(p.status)}</td></tr>`).join("");
    const now = Date.now();
    for (const p of g.partitions) (local[`${p.topic}/${p.partition}`] ||= []).push([now, Math.max(0, p.lag)]);
    const charts = document.getElementById("lag-charts"); charts.innerHTML = "";
    const series = g.lag_history.map(hst => ({ name: `${hst.topic}/${hst.partition} commits`,
      points: hst.commits.map(c => [c.t, c.lag]) }));
    const observed = Object.entries(local).map(([k, pts]) => ({ name: `${k} observed`, points: pts.slice(-300) }));
    charts.appendChild(lineChart(series.concat(observed), { title: "lag (messages)" }));
    document.getElementById("members-table").innerHTML = `<tr><th>Member</th><th>Client</th><th>Host</th><th>Assignment</th></tr>` +
      (g.members.length ? g.members.map(m => `<tr><td>${escapeHtml(m.member_id)}</td><td>${escapeHtml(m.client_id)}</td>
      <td>${escapeHtml(m.client_host)}</td><td>${m.assignment.map(a => `${escapeHtml(a.topic)}: ${a.partitions.join(", ")}`).join("<br>")}</td></tr>`).join("")
      : `<tr><td colspan="4" class="muted">no members (consumers stopped)</td></tr>`);
    const sel = document.getElementById("reset-topic");
    const topics = [...new Set(g.partitions.map(p => p.topic))];
    if (sel.options.length !== topics.length) sel.innerHTML = topics.map(t => `<option>${escapeHtml(t)}</option>`).join("");
  };
  every(POLL_GROUP_MS, load);
  const resetBody = execute => {
    const to = document.getElementById("reset-to").value, v = document.getElementById("reset-value").value.trim();
    const body = { topic: document.getElementById("reset-topic").value, to, execute };
    if (to === "offset") body.offset = Number(v);
    if (to === "timestamp") { if (/^\d+$/.test(v)) body.timestamp_ms = Number(v); else body.datetime = v; }
    return body;
  };
  const showPlan = r => {
    document.getElementById("reset-plan").innerHTML = `<tr><th>Partition</th><th class="num">Current</th><th class="num">New</th></tr>` +
      r.partitions.map(p => `<tr><td>${p.partition}</td><td class="num">${p.current_offset}</td><td class="num new-offset">${p.new_offset}</td></tr>`).join("") +
      `<tr><td colspan="3" class="muted" id="reset-result">${r.executed ? "executed: offsets committed" : "dry run: nothing committed yet"}</td></tr>`;
  };
  document.getElementById("reset-dry-run").onclick = async () => {
    try { showPlan(await api("POST", `/v1/groups/${enc(group)}/reset`, resetBody(false)));
      document.getElementById("reset-execute").disabled = false; } catch (e) { toast(e.message, true); }
  };
  document.getElementById("reset-execute").onclick = async () => {
    try { showPlan(await api("POST", `/v1/groups/${enc(group)}/reset`, resetBody(true)));
      document.getElementById("reset-execute").disabled = true; load(); } catch (e) { toast(e.message, true); }
  };
  ["reset-to", "reset-topic", "reset-value"].forEach(id =>
    document.getElementById(id).addEventListener("input", () => { document.getElementById("reset-execute").disabled = true; }));
  document.getElementById("delete-group").onclick = async () => {
    if (!confirm(`Delete group ${group}?`)) return;
    try { await api("POST", `/v1/groups/${enc(group)}/delete`); location.hash = "#/groups"; } catch (e) { toast(e.message, true); }
  };
}

route();

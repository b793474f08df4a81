// The cdcflow dashboard: charts kept live by the binary's event stream
// (api/events), the pipelines' state polled from api/status, and a search
// box over api/search. Plain JavaScript and SVG; everything comes from the
// binary that serves the page.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const charts = new Map(); // chart id → {chart, card}
let updates = 0;

// el makes an element: el("div", {class: "x"}, child, "text", ...).
function el(tag, attrs, ...children) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const integer = new Intl.NumberFormat("en-US", {maximumFractionDigits: 0});
const money = new Intl.NumberFormat("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});

// value formats a chart's value: cents as an amount, else an integer.
function value(chart, v) {
  return chart.money ? money.format(v / 100) : integer.format(v);
}

// shortLabel shortens a time bucket for an axis: 2026-11-21T21:04 → 21:04,
// or 11-21 21:04 when the chart spans several days; 2026-11-21 → 11-21.
function shortLabel(chart, label) {
  if (chart.axis !== "time") return label;
  const m = /^\d{4}-(\d{2}-\d{2})[T ](\d{2}(:\d{2})?)/.exec(label);
  if (!m) return label.replace(/^\d{4}-/, "");
  const time = m[2].length === 2 ? m[2] + "h" : m[2];
  const day = (p) => p[0].slice(0, 10);
  const pts = chart.points;
  return day(pts[0]) === day(pts[pts.length - 1]) ? time : `${m[1]} ${time}`;
}

// ticks returns round values for a value axis over [lo, hi]: about three
// steps of 1, 2 or 5 times a power of ten (of whole amounts for money).
function ticks(chart, lo, hi) {
  const unit = chart.money ? 100 : 1;
  const raw = Math.max((hi - lo) / 3, unit);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.floor(lo / step) * step; v < hi + step; v += step) {
    out.push(v);
    if (v >= hi) break;
  }
  return out;
}

// ---- charts ----

function topologySection(name) {
  const root = document.getElementById("topologies");
  let sec = root.querySelector(`section[data-topology="${CSS.escape(name)}"]`);
  if (!sec) {
    sec = el("section", {class: "topology", "data-topology": name}, el("h3", {}, name), el("div", {class: "grid"}));
    const after = [...root.children].find((s) => s.dataset.topology > name);
    root.insertBefore(sec, after || null);
  }
  return sec.querySelector(".grid");
}

function render(chart) {
  const grid = topologySection(chart.topology);
  const old = charts.get(chart.id);
  const total = chart.kind === "ranking" ? chart.points.length ? chart.points[0][1] : 0 : chart.total;
  const card = el("article", {class: "card", "data-chart": chart.id, "data-kind": chart.kind, "data-axis": chart.axis},
    el("header", {},
      el("h4", {title: chart.series}, chart.title),
      el("span", {class: "muted unit"}, chart.money ? "amount" : chart.kind === "ranking" ? "ranking" : "count")),
    el("div", {class: "figure"},
      el("span", {class: "total", "data-value": total}, value(chart, total)),
      el("span", {class: "muted caption"}, caption(chart))),
    draw(chart));
  if (old && old.card.isConnected) {
    if (old.chart.total !== chart.total || JSON.stringify(old.chart.points) !== JSON.stringify(chart.points)) {
      card.classList.add("changed");
    }
    old.card.replaceWith(card);
  } else {
    const after = [...grid.children].find((c) => c.dataset.chart > chart.id);
    grid.insertBefore(card, after || null);
  }
  charts.set(chart.id, {chart, card});
}

function caption(chart) {
  const n = chart.buckets;
  if (chart.kind === "ranking") {
    return chart.points.length ? `top: ${chart.points[0][0]} of ${integer.format(n)}` : "empty";
  }
  const over = `total over ${integer.format(n)} bucket${n === 1 ? "" : "s"}`;
  if (chart.axis === "time" && chart.points.length) {
    const last = chart.points[chart.points.length - 1];
    return `${over} · latest ${last[0]}: ${value(chart, last[1])}`;
  }
  return over;
}

function remove(id) {
  const c = charts.get(id);
  if (!c) return;
  const grid = c.card.parentElement;
  c.card.remove();
  charts.delete(id);
  if (grid && !grid.children.length) grid.parentElement.remove();
}

function draw(chart) {
  if (chart.kind === "ranking") return ranking(chart);
  if (chart.axis === "category") return bars(chart);
  return plot(chart);
}

// ranking lists the top members, highest first, with bars to compare.
function ranking(chart) {
  const top = chart.points.slice(0, 10);
  const max = Math.max(1, ...top.map((p) => Math.abs(p[1])));
  return el("ol", {class: "ranking"}, top.map(([label, v], i) =>
    el("li", {"data-member": label},
      el("span", {class: "rank"}, i + 1),
      el("span", {class: "label"}, label),
      barTrack(v, max),
      el("span", {class: "value"}, value(chart, v)))));
}

// bars draws categories as horizontal bars, alphabetically.
function bars(chart) {
  let pts = chart.points;
  let more = 0;
  if (pts.length > 30) {
    more = pts.length - 30;
    pts = [...pts].sort((a, b) => b[1] - a[1]).slice(0, 30).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }
  const max = Math.max(1, ...pts.map((p) => Math.abs(p[1])));
  return el("div", {class: "bars"},
    pts.map(([label, v]) => el("div", {class: "bar-row", "data-bucket": label},
      el("span", {class: "label", title: label}, label),
      barTrack(v, max),
      el("span", {class: "value"}, value(chart, v)))),
    more ? el("p", {class: "muted"}, `and ${more} more`) : null);
}

function barTrack(v, max) {
  const fill = el("span", {class: v < 0 ? "fill negative" : "fill"});
  fill.style.width = `${(Math.abs(v) / max) * 100}%`;
  return el("span", {class: "track"}, fill);
}

// plot draws a time or number axis: columns for a few buckets, a line for
// many.
function plot(chart) {
  const W = 400, H = 160, L = 58, R = 8, T = 8, B = 22;
  const pts = chart.points;
  const n = pts.length;
  const vals = pts.map((p) => p[1]);
  const marks = ticks(chart, Math.min(0, ...vals), Math.max(0, ...vals));
  const lo = marks[0], hi = marks[marks.length - 1];
  const span = hi - lo || 1;
  const y = (v) => T + ((hi - v) / span) * (H - T - B);
  const svg = el("svg:svg", {viewBox: `0 0 ${W} ${H}`, class: "plot", role: "img", "aria-label": chart.title});
  for (const v of marks) {
    svg.append(el("svg:line", {x1: L, x2: W - R, y1: y(v), y2: y(v), class: v === 0 ? "axis" : "grid"}),
      el("svg:text", {x: L - 6, y: y(v) + 4, class: "tick", "text-anchor": "end"}, value(chart, v)));
  }
  const width = W - L - R;
  let xOf;
  if (n <= 60) {
    const bw = width / Math.max(n, 1);
    const cw = Math.max(Math.min(bw * 0.7, 48), 1); // a column's width
    xOf = (i) => L + bw * i + bw / 2;
    pts.forEach(([label, v], i) => {
      svg.append(el("svg:rect", {x: xOf(i) - cw / 2, width: cw, y: Math.min(y(v), y(0)),
        height: Math.max(Math.abs(y(v) - y(0)), 1), class: v < 0 ? "col negative" : "col", "data-bucket": label},
      el("svg:title", {}, `${label}: ${value(chart, v)}`)));
    });
  } else {
    xOf = (i) => L + (width * i) / (n - 1);
    const line = pts.map(([, v], i) => `${i ? "L" : "M"}${xOf(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
    svg.append(el("svg:path", {d: `${line}L${xOf(n - 1).toFixed(1)},${y(0)}L${xOf(0).toFixed(1)},${y(0)}Z`, class: "area"}),
      el("svg:path", {d: line, class: "line"}));
    const [label, v] = pts[n - 1];
    svg.append(el("svg:circle", {cx: xOf(n - 1), cy: y(v), r: 3, class: "dot"}, el("svg:title", {}, `${label}: ${value(chart, v)}`)));
  }
  const every = Math.max(1, Math.ceil(n / 6));
  pts.forEach(([label], i) => {
    if (i % every === 0 || i === n - 1) {
      if (i !== n - 1 && n - 1 - i < every / 2) return; // leave room for the last
      svg.append(el("svg:text", {x: xOf(i), y: H - 6, class: "tick", "text-anchor": "middle"}, shortLabel(chart, label)));
    }
  });
  return svg;
}

function applyCharts(data, snapshot) {
  if (snapshot) {
    const keep = new Set(data.charts.map((c) => c.id));
    for (const id of [...charts.keys()]) if (!keep.has(id)) remove(id);
  }
  for (const c of data.charts) {
    if (c.removed) remove(c.id);
    else render(c);
  }
  document.getElementById("no-metrics").hidden = charts.size > 0;
  if (!snapshot) {
    updates++;
    const last = document.getElementById("last-update");
    last.dataset.updates = updates;
    last.textContent = `updated ${new Date().toLocaleTimeString()}` + (data.position ? ` · position ${data.position}` : "");
  }
}

// ---- the live stream ----

function setLive(state, text) {
  const live = document.getElementById("live");
  live.dataset.state = state;
  live.textContent = text;
}

let source = null;
function connect() {
  source = new EventSource("api/events");
  source.addEventListener("open", () => setLive("live", "live"));
  source.addEventListener("snapshot", (e) => applyCharts(JSON.parse(e.data), true));
  source.addEventListener("charts", (e) => applyCharts(JSON.parse(e.data), false));
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (the binary stopping, say): the browser will not retry.
      setLive("down", "disconnected; retrying…");
      source.close();
      setTimeout(connect, 3000);
    } else {
      setLive("reconnecting", "reconnecting…");
    }
  });
}

// ---- pipelines ----

const previous = new Map(); // topology → {changes, at}

async function pollStatus() {
  const err = document.getElementById("status-error");
  try {
    const res = await fetch("api/status", {cache: "no-store"});
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const body = await res.json();
    renderStatus(body);
    setupSearch(body.indexes || []);
    err.hidden = true;
  } catch (e) {
    err.textContent = `The binary does not answer (${e.message}); retrying.`;
    err.hidden = false;
  }
  setTimeout(pollStatus, 2000);
}

function renderStatus(body) {
  const tbody = document.querySelector("#status tbody");
  const now = performance.now();
  const rows = body.topologies.map((t) => {
    let state = "unknown", cls = "unknown";
    if (t.ready === true) [state, cls] = ["caught up", "ok"];
    else if (t.ready === false) [state, cls] = ["catching up", "warn"];
    let rate = "";
    const prev = previous.get(t.name);
    if (t.changes !== undefined) {
      if (prev && now > prev.at) rate = ((t.changes - prev.changes) * 1000 / (now - prev.at)).toFixed(1);
      previous.set(t.name, {changes: t.changes, at: now});
    }
    const lag = t.lag ? Object.entries(t.lag).map(([g, n]) => `${g}: ${integer.format(n)}`).join("\n") : "not measured yet";
    return el("tr", {"data-topology": t.name},
      el("td", {}, t.name, t.metrics ? el("span", {class: "tag"}, "metrics") : null, (t.indexes || []).map((i) => el("span", {class: "tag"}, `index ${i}`))),
      el("td", {}, el("span", {class: `badge ${cls}`, "data-ready": String(t.ready)}, state)),
      el("td", {class: "num behind", title: lag}, t.behind === undefined ? "–" : integer.format(t.behind)),
      el("td", {class: "num changes"}, t.changes === undefined ? "–" : integer.format(t.changes)),
      el("td", {class: "num"}, rate),
      el("td", {class: `num${t.dead_letters ? " bad" : ""}`}, t.dead_letters === undefined ? "–" : integer.format(t.dead_letters)));
  });
  tbody.replaceChildren(...rows);
}

// ---- search ----

let searchReady = false;
function setupSearch(indexes) {
  if (searchReady || !indexes.length) return;
  searchReady = true;
  const select = document.getElementById("search-index");
  select.replaceChildren(...indexes.map((i) => el("option", {value: i}, i)));
  select.hidden = indexes.length === 1;
  document.getElementById("search").hidden = false;
  const form = document.getElementById("search-form");
  const q = document.getElementById("search-q");
  let timer;
  form.addEventListener("submit", (e) => { e.preventDefault(); search(); });
  q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 300); });
  select.addEventListener("change", search);
  search();
}

let searchSeq = 0;
async function search() {
  const seq = ++searchSeq;
  const index = document.getElementById("search-index").value;
  const q = document.getElementById("search-q").value;
  const summary = document.getElementById("search-summary");
  const out = document.getElementById("search-results");
  try {
    const res = await fetch(`api/search?index=${encodeURIComponent(index)}&q=${encodeURIComponent(q)}`, {cache: "no-store"});
    const body = await res.json();
    if (seq !== searchSeq) return; // a later search answered first
    if (!res.ok) throw new Error(body.error || res.statusText);
    summary.textContent = (body.total === 1 ? "1 document matches" : `${integer.format(body.total)} documents match`) +
      (body.total > body.hits.length ? `; the first ${body.hits.length}:` : "");
    out.replaceChildren(hitsTable(body.hits));
  } catch (e) {
    if (seq !== searchSeq) return;
    summary.textContent = `Search failed: ${e.message}`;
    out.replaceChildren();
  }
}

function hitsTable(hits) {
  if (!hits.length) return el("p", {class: "muted"}, "Nothing matches.");
  const cols = [];
  for (const h of hits) {
    for (const k of Object.keys(h.doc || {})) if (!cols.includes(k) && cols.length < 8) cols.push(k);
  }
  const cell = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  // The document id gets a column of its own unless the documents carry it.
  const idCol = !cols.includes("id");
  return el("table", {class: "hits"},
    el("thead", {}, el("tr", {}, idCol ? el("th", {}, "id") : null, cols.map((c) => el("th", {}, c)))),
    el("tbody", {}, hits.map((h) => el("tr", {"data-id": h.id}, idCol ? el("td", {}, h.id) : null, cols.map((c) => el("td", {}, cell((h.doc || {})[c])))))));
}

connect();
pollStatus();

// 运营后台: the overview pushed over the socket ({"op":"ops"} -> `overview` every ~2 s),
// live prices and a price chart per lot from the rooms' `bid` events, create/publish,
// lot controls (only what the lot's state allows; hammer and fair warning ask
// first; fair warning shown with its own countdown), credit. HTTP polling only
// while the socket is down. On a phone the rooms table becomes one card per lot.
import { t, api, ApiError, token, money, fmtTime, statusText, el, header, errText, loginUrl } from "./common.js";
import { boNav, deadlinePicker } from "./bo.js";

const app = document.getElementById("app");
header(() => location.reload());
const rooms = new Map();   // lot_id -> row state
let ws = null;
let attempts = 0;
const joined = new Set();
const charts = new Map();  // lot_id -> {points: [[at_ms, amount]], seq, node}
let offset = 0;
const SVG = "http://www.w3.org/2000/svg";
let fairWarningS = 10;  // HALL_FAIR_WARNING_S, as the overview says

function $(id) { return app.querySelector(`[data-testid="${id}"]`); }

function field(name, key, attrs = {}) {
  return [el("label", { for: `f-${name}` }, t(key)), el("input", { id: `f-${name}`, name, testid: `f-${name}`, ...attrs })];
}
const yuan = (v) => Math.round(Number(v) * 100);

function layout() {
  const sForm = el("form", { class: "card", testid: "create-session-form" }, el("h2", {}, t("create_session")),
    field("s-title", "title", { required: true }), field("s-description", "description"),
    field("s-deposit", "deposit", { type: "number", value: "100", step: "any", required: true }),
    el("div", { style: "margin-top:8px" }, el("button", { class: "primary", type: "submit" }, t("create"))),
    el("div", { class: "notice", testid: "create-session-result" }));
  sForm.addEventListener("submit", (e) => submit(e, sForm, async () => {
    const s = await api("POST", "/api/admin/sessions", { title: sForm.elements["s-title"].value, description: sForm.elements["s-description"].value,
      deposit_amount: yuan(sForm.elements["s-deposit"].value) });
    $("f-l-session").value = s.id; $("f-p-session").value = s.id;
    return `${t("done")}: ${t("session_id")} ${s.id}`;
  }));
  // The deadline as in the session editor: minutes after the session opens, or a time.
  const picker = deadlinePicker("l", null);
  const lForm = el("form", { class: "card", testid: "create-lot-form", novalidate: true }, el("h2", {}, t("create_lot")),
    field("l-session", "session_id", { type: "number", required: true }), field("l-title", "title", { required: true }),
    field("l-description", "description"), field("l-images", "images"),
    el("div", { class: "grid2" },
      el("div", {}, field("l-start", "start_price", { type: "number", value: "100", step: "any" })),
      el("div", {}, field("l-inc", "increment", { type: "number", value: "10", step: "any" })),
      el("div", {}, field("l-reserve", "reserve_price", { type: "number", step: "any" })),
      el("div", {}, field("l-deposit", "lot_deposit", { type: "number", value: "50", step: "any" })),
      el("div", {}, field("l-win", "extend_window", { type: "number", value: "300" })),
      el("div", {}, field("l-by", "extend_by", { type: "number", value: "300" }))),
    picker.node,
    el("div", { style: "margin-top:8px" }, el("button", { class: "primary", type: "submit" }, t("create"))),
    el("div", { class: "notice", testid: "create-lot-result" }));
  lForm.addEventListener("submit", (e) => submit(e, lForm, async () => {
    const f = lForm.elements;
    const deadline = picker.read();
    if (!deadline) { lForm.querySelector("[aria-invalid=true]").focus(); throw new Error(t("bo_deadline")); }
    const body = { title: f["l-title"].value, description: f["l-description"].value,
      images: f["l-images"].value.split(",").map((x) => x.trim()).filter(Boolean),
      start_price: yuan(f["l-start"].value), increment: yuan(f["l-inc"].value), lot_deposit: yuan(f["l-deposit"].value),
      extend_window_s: Number(f["l-win"].value), extend_by_s: Number(f["l-by"].value), ...deadline };
    if (f["l-reserve"].value) body.reserve_price = yuan(f["l-reserve"].value);
    const lot = await api("POST", `/api/admin/sessions/${f["l-session"].value}/lots`, body);
    return `${t("done")}: #${lot.id}`;
  }));
  const pForm = el("form", { class: "card", testid: "publish-form" }, el("h2", {}, t("publish")),
    field("p-session", "session_id", { type: "number", required: true }),
    el("div", { style: "margin-top:8px" }, el("button", { class: "primary", type: "submit" }, t("publish"))),
    el("div", { class: "notice", testid: "publish-result" }));
  pForm.addEventListener("submit", (e) => submit(e, pForm, async () => {
    let s;
    try {
      s = await api("POST", `/api/admin/sessions/${pForm.elements["p-session"].value}/publish`, {});
    } catch (err) {
      // A lot whose deadline is not after the session's start: say which, in words.
      const late = err.body && err.body.late_lots;
      if (late && late.length) throw new Error(`${t("bo_publish_late")} ${late.map((l) => `#${l.id} ${l.title}`).join("、")}`);
      if (err.code === "conflict" || err.code === "invalid") throw new Error(`${t("bo_publish_refused")} ${err.message}`);
      throw err;
    }
    if (!online()) setTimeout(refresh, 500);
    return `${t("done")}: ${statusText(s.status)}`;
  }));
  const cForm = el("form", { class: "card", testid: "credit-form" }, el("h2", {}, t("credit_user")),
    field("c-user", "user_id", { type: "number", required: true }), field("c-amount", "amount", { type: "number", step: "any", required: true }),
    el("div", { style: "margin-top:8px" }, el("button", { class: "primary", type: "submit" }, t("credit_user"))),
    el("div", { class: "notice", testid: "credit-result" }));
  cForm.addEventListener("submit", (e) => submit(e, cForm, async () => {
    const u = await api("POST", `/api/admin/users/${cForm.elements["c-user"].value}/credit`, { amount: yuan(cForm.elements["c-amount"].value) });
    return `${t("done")}: ${u.username} ${money(u.balance)}`;
  }));
  app.replaceChildren(boNav("/ops"),
    el("div", { class: "row", style: "justify-content:space-between" }, el("h1", {}, t("ops_title")),
      el("span", { class: "conn", testid: "conn", "data-state": "connecting" }, t("conn_connecting"))),
    el("div", { class: "card" }, el("h2", {}, t("overview")),
      el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": t("overview") }, el("table", { class: "rooms", testid: "rooms" },
        el("thead", {}, el("tr", {}, ["#", t("title"), t("bo_filter_status"), t("current_price"), t("bid_count"), t("deadline"), t("bo_left"),
          t("connections"), t("bidders"), t("bo_controls")].map((h, i) => el("th", { scope: "col", class: i === 5 ? "deadline-col" : null }, h)))),
        el("tbody", { testid: "rooms-body" }))),
      el("div", { class: "notice", testid: "ops-message" }),
      el("div", { class: "stats", testid: "system" },
        stat("workers-online", t("workers_online")), stat("task-rate", t("task_rate")),
        stat("hall-connections", t("hall_connections")), stat("queues", t("queues"))),
      el("div", { class: "muted", testid: "failures-title" }, t("failures")),
      el("ol", { class: "failures", testid: "failures" }),
      el("p", { class: "muted" }, `${t("updated")} `, el("span", { testid: "overview-time" }, "—"))),
    el("div", { class: "card" }, el("h2", {}, t("price_charts")), el("div", { class: "charts", testid: "charts" })),
    el("div", { class: "grid2 stack-phone" }, sForm, pForm), lForm, cForm);
}

function stat(id, label) {
  return el("div", { class: "stat" }, el("span", { class: "muted" }, label), el("b", { testid: id }, "—"));
}

async function submit(e, form, fn) {
  e.preventDefault();
  const out = form.querySelector(".notice");
  try { out.textContent = await fn(); out.className = "notice ok"; } catch (err) {
    out.textContent = err instanceof ApiError ? errText(err) : String(err.message || err); out.className = "notice err";
  }
}

async function control(lotId, action) {
  const msg = $("ops-message");
  try {
    const lot = await api("POST", `/api/admin/lots/${lotId}/${action}`);
    msg.textContent = `#${lotId} ${t(action === "fair-warning" ? "fair_warning_btn" : action)}: ${statusText(lot.status)}`;
    msg.className = "notice ok";
  } catch (err) { msg.textContent = `#${lotId}: ${errText(err)}`; msg.className = "notice err"; }
}

const now = () => Date.now() + offset;
const secondsTo = (ms) => Math.max(0, Math.ceil((ms - now()) / 1000));
const fillS = (key, n) => t(key).replace("{s}", String(n));
// A fair warning is on while the lot is live and its countdown has not run out
// (a new bid or a pause ends it: the hall then stops sending fair_warning_ends_ms).
const warned = (r) => r.status === "live" && r.fair_warning_ends_ms && r.fair_warning_ends_ms > now() - 1000;

function left(r) {
  if (r.status === "paused") return t("status_paused");
  if (r.status !== "live" || !r.deadline_ms) return "—";
  const s = secondsTo(r.deadline_ms);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), p = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${p(m)}:${p(s % 60)}` : `${p(m)}:${p(s % 60)}`;
}

function badge(r) {
  if (warned(r)) {
    return el("span", { class: "badge fair_warning", testid: "room-status", "data-state": "fair_warning", role: "timer" },
      fillS("fw_countdown", secondsTo(r.fair_warning_ends_ms)));
  }
  return el("span", { class: `badge ${r.status}`, testid: "room-status", "data-state": r.status }, statusText(r.status));
}

// Every second: the countdowns (time left, fair warning) move without a message.
function tick() {
  for (const r of rooms.values()) {
    const tr = $("rooms-body").querySelector(`tr[data-lot-id="${r.lot_id}"]`);
    if (!tr) continue;
    tr.querySelector("[data-testid=room-left]").textContent = left(r);
    const b = tr.querySelector("[data-testid=room-status]");
    if (warned(r) || b.dataset.state === "fair_warning") b.replaceWith(badge(r));
  }
}

function renderRoom(r) {
  let tr = $("rooms-body").querySelector(`tr[data-lot-id="${r.lot_id}"]`);
  if (!tr) {
    tr = el("tr", { testid: "room-row", "data-lot-id": r.lot_id });
    const body = $("rooms-body");
    const after = [...body.children].find((n) => Number(n.dataset.lotId) > r.lot_id);
    body.insertBefore(tr, after || null);
  }
  // Only the actions the lot's state allows; the hammer and the fair warning
  // (neither can be taken back) ask first, saying what they will do.
  const allowed = { draft: ["open"], scheduled: ["open"], live: ["pause", "fair-warning", "hammer"],
    paused: ["resume", "hammer"] }[r.status] || [];
  const labels = { open: "open", pause: "pause", resume: "resume", "fair-warning": "fair_warning_btn", hammer: "hammer" };
  const btns = allowed.map((a) => el("button", { type: "button", testid: `ctl-${a}`, class: a === "hammer" ? "primary" : "",
    onclick: () => {
      const what = `#${r.lot_id} ${r.title || ""} · ${money(r.price)}`;
      if (a === "hammer" && !confirm(`${t("hammer_confirm")} ${what} · ${left(r)}`)) return;
      if (a === "fair-warning" && !confirm(`${fillS("fw_confirm", fairWarningS)} ${what}`)) return;
      control(r.lot_id, a);
    } }, t(labels[a])));
  const result = ["closed", "settled"].includes(r.status) && r.result ? ` · ${t(r.result)}` : "";
  tr.replaceChildren(
    el("td", {}, el("a", { href: `/lots/${r.lot_id}` }, `#${r.lot_id}`)), el("td", { class: "title" }, r.title || ""),
    el("td", {}, badge(r)),
    el("td", { testid: "room-price", "data-label": t("current_price") }, money(r.price) + result),
    el("td", { testid: "room-bids", "data-label": t("bid_count") }, r.bid_count ?? 0),
    el("td", { class: "deadline-col", "data-label": t("deadline") }, fmtTime(r.deadline_ms).slice(11)),
    el("td", { testid: "room-left", "data-label": t("bo_left") }, left(r)),
    el("td", { testid: "room-connections", "data-label": t("connections") }, r.connections ?? 0),
    el("td", { testid: "room-bidders", "data-label": t("bidders") }, r.bidders ?? 0),
    el("td", { class: "ctl-cell" }, el("div", { class: "ctl" }, btns)));
}

// One overview (pushed, or fetched while the socket is down) into the page.
function applyOverview(o) {
  offset = o.server_time_ms - Date.now();
  if (o.fair_warning_s) fairWarningS = o.fair_warning_s;
  for (const r of o.rooms) {
    const cur = rooms.get(r.lot_id) || {};
    const next = { ...cur, ...r };
    if ((cur.bid_count || 0) > (r.bid_count || 0)) {
      // A bid event newer than this overview already arrived: keep its figures.
      Object.assign(next, { price: cur.price, bid_count: cur.bid_count, deadline_ms: cur.deadline_ms,
        fair_warning_ends_ms: cur.fair_warning_ends_ms });
    }
    rooms.set(r.lot_id, next);
    renderRoom(next);
    if (!joined.has(r.lot_id) && online() && !["closed", "settled"].includes(r.status)) {
      joined.add(r.lot_id);
      const c = chart(r.lot_id);
      ws.send(JSON.stringify({ op: "join", lot_id: r.lot_id, since_seq: c.seq }));
    }
  }
  $("workers-online").textContent = String(o.workers.length);
  $("workers-online").title = o.workers.join("\n");
  $("task-rate").textContent = `${Number(o.task_rate_per_s ?? 0).toFixed(1)} ${t("per_s")}`;
  $("hall-connections").textContent = String((o.halls || []).reduce((n, h) => n + h.connections, 0));
  $("queues").replaceChildren(...Object.entries(o.queues).map(([k, v]) =>
    el("span", { testid: `queue-${k}`, style: "margin-right:10px" }, `${k}=${v}`)));
  $("failures").replaceChildren(...(o.recent_failures.length ? o.recent_failures.slice(0, 5).map((f) =>
    el("li", { testid: "failure-row" }, `${fmtTime(f.at_ms).slice(11)} ${f.task} — ${f.error}`))
    : [el("li", { class: "muted", style: "list-style:none" }, t("none"))]));
  const when = $("overview-time");
  when.textContent = fmtTime(o.server_time_ms).slice(11);
  when.dataset.serverTimeMs = o.server_time_ms;
}

async function refresh() {
  try {
    applyOverview(await api("GET", "/api/admin/overview"));
  } catch (e) {
    const msg = $("ops-message");
    msg.textContent = e.code === "forbidden" ? t("not_operator") : errText(e);
    msg.className = "notice err";
  }
}

const online = () => ws !== null && ws.readyState === WebSocket.OPEN;

// -- price charts: an inline SVG polyline of (time, price) per lot ------------------
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function chart(lotId) {
  let c = charts.get(lotId);
  if (!c) {
    c = { points: [], seq: 0, node: el("div", { class: "chart", testid: "price-chart", "data-lot-id": lotId }) };
    charts.set(lotId, c);
    const box = $("charts");
    const after = [...box.children].find((n) => Number(n.dataset.lotId) > lotId);
    box.insertBefore(c.node, after || null);
    drawChart(lotId);
  }
  return c;
}

function addPoint(m) {
  const c = charts.get(m.lot_id);
  if (!c || m.seq <= c.seq) return;  // replayed after a rejoin: already drawn
  c.seq = m.seq;
  c.points.push([m.at_ms, m.amount]);
  drawChart(m.lot_id);
}

function drawChart(lotId) {
  const c = charts.get(lotId);
  const r = rooms.get(lotId) || {};
  const W = 300, H = 110, L = 4, R = 4, T = 14, B = 16;
  const pts = c.points;
  const kids = [svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B })];
  let coords = "";
  if (pts.length) {
    const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
    let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
    if (hi === lo) { lo -= 1; hi += 1; }
    const x = (tm) => (t1 === t0 ? (L + W - R) / 2 : L + ((tm - t0) / (t1 - t0)) * (W - L - R));
    const y = (p) => T + (1 - (p - lo) / (hi - lo)) * (H - T - B);
    coords = pts.map(([tm, p]) => `${x(tm).toFixed(1)},${y(p).toFixed(1)}`).join(" ");
    const [lx, ly] = coords.split(" ").pop().split(",");
    kids.push(svg("circle", { cx: lx, cy: ly, r: 3 }));
    kids.push(svg("text", { x: L, y: 10 }, money(Math.max(...pts.map((p) => p[1])))));
    if (pts.length > 1) kids.push(svg("text", { x: W - R, y: 10, "text-anchor": "end" }, `${pts.length} × ${t("bid_btn")}`));
    kids.push(svg("text", { x: L, y: H - 4 }, fmtTime(t0).slice(11)));
    kids.push(svg("text", { x: W - R, y: H - 4, "text-anchor": "end" }, fmtTime(t1).slice(11)));
  } else {
    kids.push(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, t("no_bids")));
  }
  kids.unshift(svg("polyline", { points: coords, "data-testid": "chart-line", "data-points": pts.length }));
  c.node.replaceChildren(
    el("div", { class: "row", style: "justify-content:space-between" },
      el("span", {}, `#${lotId} ${r.title || ""}`),
      el("b", { testid: "chart-price" }, money(pts.length ? pts[pts.length - 1][1] : r.price))),
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `#${lotId}` }, ...kids));
}

function onMessage(m) {
  if (m.type === "overview") { applyOverview(m); return; }
  if (m.type === "error" && (m.code === "forbidden" || m.code === "unauthorized")) {
    const msg = $("ops-message");
    msg.textContent = t("not_operator");
    msg.className = "notice err";
    return;
  }
  if (m.type === "bid") addPoint(m);
  const lid = m.type === "snapshot" ? m.id : m.lot_id;
  const r = rooms.get(lid);
  if (!r) return;
  if (m.type === "snapshot") Object.assign(r, { status: m.status, price: m.price, deadline_ms: m.deadline_ms, bid_count: m.bid_count, title: m.title });
  else if (m.type === "bid") Object.assign(r, { price: m.amount, deadline_ms: m.deadline_ms, bid_count: Math.max(r.bid_count || 0, m.seq), fair_warning_ends_ms: null });
  else if (m.type === "extended") r.deadline_ms = m.deadline_ms;
  else if (m.type === "lot_status") Object.assign(r, { status: m.status === "fair_warning" ? "live" : m.status,
    fair_warning_ends_ms: m.status === "fair_warning" ? m.deadline_ms : null, deadline_ms: m.deadline_ms || r.deadline_ms });
  else if (m.type === "closed") Object.assign(r, { status: "closed", price: m.price, result: m.result, fair_warning_ends_ms: null });
  else return;
  renderRoom(r);
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  // No token in the URL (URLs end up in logs): the login cookie identifies us.
  const sock = new WebSocket(`${proto}//${location.host}/ws`);
  ws = sock;
  const conn = $("conn");
  sock.onopen = () => {
    attempts = 0; joined.clear(); conn.dataset.state = "online"; conn.textContent = t("conn_online");
    sock.send(JSON.stringify({ op: "ops" }));  // the hall pushes `overview` from now on
  };
  sock.onmessage = (e) => { try { onMessage(JSON.parse(e.data)); } catch (_) { /* */ } };
  sock.onclose = () => {
    conn.dataset.state = "offline"; conn.textContent = t("conn_offline");
    setTimeout(connect, Math.min(10000, 500 * 2 ** attempts++));
  };
}

async function start() {
  // A bidder who opens /ops sees a message, not operator forms that would all answer 403.
  const me = await api("GET", "/api/me").catch(() => null);
  if (!me || me.role !== "operator") {
    app.replaceChildren(el("p", { class: "notice err", testid: "ops-message" }, t("not_operator")));
    return;
  }
  layout();
  connect();
  setInterval(tick, 1000);
  // Fallback only: poll while the socket is down (the push covers the rest).
  setInterval(() => { if (!online()) refresh(); }, 5000);
}

if (!token()) location.href = loginUrl();
else start();

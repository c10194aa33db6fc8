// The room: live price, countdown on the server's clock, deposit, bidding, reconnect.
import { t, api, token, money, fmtTime, statusText, el, header, errText, loginUrl, uuid } from "./common.js";
import { applyI18n } from "./i18n.js";
import { gallery } from "./gallery.js";
import { wechatScene, wechatPayBox, oauthUrl } from "./wxpay.js";
import { mountOffers } from "./offers.js";
import { keepReceipt, showReceipts } from "./receipts.js";

const lotId = Number(location.pathname.split("/").filter(Boolean).pop());
const app = document.getElementById("app");

const S = {
  lot: null,            // last snapshot (static fields)
  status: null,
  price: null,
  nextMin: null,
  leader: null,
  leaderMine: false,
  seq: 0,               // seq the shown price reflects
  lastSeq: 0,           // highest bid seq in the history (for since_seq)
  deadline: 0,
  frozenLeft: null,     // remaining ms while paused
  offset: 0,            // server_time_ms - Date.now()
  lastServerTime: 0,
  bids: new Map(),      // seq -> bid
  pending: null,        // {ref, amount} awaiting accepted/rejected
  result: null,         // closed event
  depositPaid: false,
  depositTask: null,
  earlyTasks: new Map(),
  watching: null,       // null: unknown / logged out
};
let ws = null;
let attempts = 0;
let retryTimer = null;
let lastMsgAt = 0;

function $(id) { return app.querySelector(`[data-testid="${id}"]`); }

function layout() {
  app.innerHTML = `
  <div class="row between">
    <a data-testid="back-session" href="/" data-i18n="back"></a>
    <span class="conn" data-testid="conn" data-state="connecting"></span>
  </div>
  <div class="row between">
    <h1 data-testid="lot-title"></h1>
    <button type="button" data-testid="watch-toggle" hidden></button>
  </div>
  <div class="room">
    <div>
      <div class="card">
        <div class="images" data-testid="lot-images"></div>
        <p data-testid="lot-description"></p>
      </div>
      <div class="card">
        <h2 data-i18n="bid_history"></h2>
        <ul class="list history" data-testid="bid-history"></ul>
        <p class="muted" data-testid="no-bids" data-i18n="no_bids"></p>
      </div>
    </div>
    <div>
      <div class="card">
        <div class="row between">
          <span class="badge" data-testid="lot-status"></span>
          <span class="muted"><span data-i18n="bid_count"></span>: <span data-testid="bid-count">0</span></span>
        </div>
        <div class="muted" data-i18n="current_price"></div>
        <div class="price" data-testid="price"></div>
        <div class="muted"><span data-i18n="leader"></span>: <span data-testid="leader">—</span></div>
        <div class="muted"><span data-i18n="next_min_bid"></span>: <b data-testid="next-min-bid"></b></div>
        <div class="mt8"><span class="muted" data-i18n="countdown"></span>
          <div class="countdown" data-testid="countdown" role="timer">--:--</div>
          <div class="muted" data-testid="deadline" data-deadline-ms=""></div></div>
        <div class="sr-only" data-testid="live-announce" aria-live="polite" aria-atomic="true"></div>
        <div class="notice" data-testid="status-notice"></div>
        <div class="notice" data-testid="extended-notice"></div>
        <div class="notice err" data-testid="outbid-notice"></div>
        <div class="notice ok" data-testid="closed-notice"></div>
        <div class="notice" data-testid="closing-soon-notice" role="status"></div>
        <div class="notice ok" data-testid="won-notice" role="status"></div>
        <div class="notice ok" data-testid="refund-notice" role="status"></div>
      </div>
      <div class="card" data-testid="bid-panel">
        <button class="primary big" data-testid="bid-button" type="button"></button>
        <a class="button primary big" data-testid="bid-login" hidden></a>
        <label for="bid-amount" data-i18n="bid_amount"></label>
        <div class="row nowrap" data-testid="bid-amount-row">
          <input id="bid-amount" data-testid="bid-amount" type="number" inputmode="decimal" min="0" step="any">
          <button data-testid="bid-amount-button" type="button" data-i18n="bid_custom"></button>
        </div>
        <div class="notice" data-testid="bid-message" role="status"></div>
        <div class="mt8" data-testid="receipts" hidden></div>
      </div>
      <div class="card" data-testid="deposit-panel">
        <h2 data-i18n="deposit_panel"></h2>
        <div data-testid="deposit-body"></div>
        <div class="notice" data-testid="deposit-message" role="status"></div>
      </div>
    </div>
  </div>`;
  applyI18n(app);
  showReceipts($("receipts"), lotId);
  $("bid-button").addEventListener("click", () => placeBid(S.nextMin));
  $("watch-toggle").addEventListener("click", toggleWatch);
  $("bid-amount-button").addEventListener("click", () => {
    const yuan = Number($("bid-amount").value);
    const fen = Math.round(yuan * 100);
    if (!Number.isFinite(yuan) || fen <= 0) { bidMsg(t("err_invalid"), "err"); return; }
    placeBid(fen);
  });
}

function bidMsg(text, kind = "") {
  const m = $("bid-message");
  m.textContent = text || "";
  m.className = `notice ${kind}`;
  m.dataset.kind = kind;
}

function clock(msg) {
  if (typeof msg.server_time_ms === "number") {
    S.offset = msg.server_time_ms - Date.now();
    S.lastServerTime = msg.server_time_ms;
  }
}

function render() {
  if (!S.lot) return;
  $("lot-title").textContent = S.lot.title;
  $("lot-description").textContent = S.lot.description || "";
  $("back-session").href = `/sessions/${S.lot.session_id}`;
  const st = $("lot-status");
  // A fair warning is its own state while it lasts (the lot is still live).
  const warned = S.status === "live" && $("status-notice").dataset.status === "fair_warning";
  st.textContent = statusText(warned ? "fair_warning" : S.status);
  st.className = `badge ${warned ? "fair_warning" : S.status}`;
  st.dataset.status = S.status;
  st.dataset.warning = warned ? "true" : "false";
  $("price").textContent = S.price === null ? t("no_bids") : money(S.price);
  $("price").dataset.amount = S.price === null ? "" : String(S.price);
  $("leader").textContent = S.leaderMine ? t("you") : (S.leader || "—");
  $("leader").dataset.mine = S.leaderMine ? "true" : "false";
  $("next-min-bid").textContent = money(S.nextMin);
  $("next-min-bid").dataset.amount = String(S.nextMin);
  $("bid-count").textContent = String(S.bids.size > S.lot.bid_count ? S.bids.size : Math.max(S.seq, S.bids.size));
  $("deadline").dataset.deadlineMs = String(S.deadline);
  $("deadline").textContent = S.deadline ? fmtTime(S.deadline) : "";
  $("no-bids").hidden = S.bids.size > 0;
  const closed = S.status === "closed" || S.status === "settled";
  const canBid = !!token() && !closed && !S.pending;
  const btn = $("bid-button");
  btn.disabled = !canBid;
  $("bid-amount-button").disabled = !canBid;
  btn.textContent = !token() ? t("login_to_bid") : S.pending ? t("sending") : `${t("bid_btn")} ${money(S.nextMin)}`;
  // Not logged in: a link to log in (and back here), not a disabled button.
  const anon = !token();
  btn.hidden = anon;
  $("bid-login").hidden = !anon || closed;
  $("bid-amount-row").hidden = anon;
  app.querySelector('label[for="bid-amount"]').hidden = anon;
  if (anon) { $("bid-login").href = loginUrl(); $("bid-login").textContent = t("login_to_bid"); }
  announcePrice();
  if (!$("bid-amount").value || document.activeElement !== $("bid-amount")) {
    $("bid-amount").placeholder = S.nextMin ? String(S.nextMin / 100) : "";
  }
  $("next-min-bid").parentElement.hidden = closed;
  if (closed) renderClosed();
  tick();
}

function renderClosed() {
  const r = S.result;
  const n = $("closed-notice");
  if (!r) { n.textContent = statusText(S.status); n.dataset.result = ""; return; }
  n.dataset.result = r.result;
  $("status-notice").textContent = "";
  if ($("bid-message").dataset.kind === "err") bidMsg("");
  if (r.result === "sold") {
    const me = S.leaderMine;
    n.textContent = `${t("sold")} · ${t("closed_at")} ${money(r.price)} · ${t("winner")}: ${me ? t("you") : (r.winner || "—")}` +
      (me ? ` · ${t("you_won")}` : "");
  } else {
    n.textContent = t("unsold");
  }
  $("outbid-notice").textContent = "";
}

function fmtLeft(ms) {
  if (ms <= 0) return "00:00";
  const s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const p = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${p(m)}:${p(sec)}` : `${p(m)}:${p(sec)}`;
}

function tick() {
  if (!S.lot) return;
  const cd = $("countdown");
  let left;
  if (S.status === "closed" || S.status === "settled") { cd.textContent = "—"; cd.dataset.leftMs = "0"; return; }
  if (S.status === "paused") left = S.frozenLeft ?? (S.deadline - (Date.now() + S.offset));
  else left = S.deadline - (Date.now() + S.offset);
  cd.textContent = fmtLeft(left);
  cd.dataset.leftMs = String(Math.max(0, Math.round(left)));
  if (S.status === "live") announceLeft(left);
}

// Screen readers hear the price and the time left, throttled: a new price at
// most every 3 s (the latest one), the countdown at 5 min, 1 min, 30 s, 10 s.
const spoken = { price: undefined, at: 0, timer: null, mark: null };
function liveSay(text) { const n = $("live-announce"); if (n) n.textContent = text; }
function announcePrice() {
  if (spoken.price === undefined) { spoken.price = S.price; return; }  // not at page load
  if (S.price === null || S.price === spoken.price || spoken.timer) return;
  spoken.timer = setTimeout(() => {
    spoken.timer = null;
    spoken.at = Date.now();
    spoken.price = S.price;
    liveSay(`${t("current_price")} ${money(S.price)}`);
  }, Math.max(0, 3000 - (Date.now() - spoken.at)));
}
function announceLeft(left) {
  const mark = [300000, 60000, 30000, 10000].find((m) => left <= m && left > m - 1000);
  if (mark && spoken.mark !== mark) { spoken.mark = mark; liveSay(`${t("countdown")} ${fmtLeft(left)}`); }
}
setInterval(tick, 250);

function addBid(b) {
  if (S.bids.has(b.seq)) return false;
  S.bids.set(b.seq, b);
  const ul = $("bid-history");
  const li = el("li", { testid: "bid-row", "data-seq": b.seq, "data-amount": b.amount, class: b.mine ? "mine" : "" },
    el("span", {}, `#${b.seq} `, el("b", {}, money(b.amount))),
    el("span", { class: "muted" }, `${b.mine ? t("you") : b.bidder} · ${fmtTime(b.at_ms).slice(11)}`));
  // newest first, ordered by seq
  let before = null;
  for (const other of ul.children) { if (Number(other.dataset.seq) < b.seq) { before = other; break; } }
  ul.insertBefore(li, before);
  if (b.seq > S.lastSeq) S.lastSeq = b.seq;
  return true;
}

function onSnapshot(m) {
  clock(m);
  S.lot = m;
  S.status = m.status;
  S.seq = m.seq;
  S.price = m.price;
  S.nextMin = m.next_min_bid;
  S.leader = m.leader;
  if (typeof m.leading === "boolean") S.leaderMine = m.leading;
  S.deadline = m.deadline_ms;
  S.frozenLeft = m.status === "paused" ? m.deadline_ms - m.server_time_ms : null;
  if (m.status === "closed" || m.status === "settled") {
    S.result = { result: m.result, price: m.price, winner: m.winner };
  }
  statusNotice(m.fair_warning_ends_ms ? "fair_warning" : m.status, false);  // a warning given before we came
  render();
}

function statusNotice(status, live) {
  const n = $("status-notice");
  n.dataset.status = status;
  if (status === "paused") n.textContent = t("paused");
  else if (status === "fair_warning") n.textContent = t("fair_warning");
  else if (status === "live" && live && n.textContent === t("paused")) n.textContent = t("resumed");
  else if (status === "live" && live) n.textContent = "";
  else if (!live) n.textContent = "";
}

function onBid(m) {
  clock(m);
  addBid(m);
  if (m.seq > S.seq || (m.seq === S.seq && S.price === m.amount)) {
    S.seq = m.seq;
    S.price = m.amount;
    S.leader = m.bidder;
    S.leaderMine = !!m.mine;
    if (m.next_min_bid) S.nextMin = m.next_min_bid;
    if (m.deadline_ms && S.status !== "paused") S.deadline = m.deadline_ms;
    if (m.mine) $("outbid-notice").textContent = "";
    if ($("status-notice").dataset.status === "fair_warning") statusNotice("live", true);  // a bid ends the warning
  } else if (m.seq === S.seq && m.mine) {
    S.leaderMine = true;  // replay of the bid the snapshot already shows: it is ours
  }
  render();
}

function onMessage(m) {
  lastMsgAt = Date.now();
  if (m.lot_id !== undefined && m.lot_id !== lotId && m.type !== "task" && m.type !== "deposit"
      && m.type !== "refund") return;
  switch (m.type) {
    case "snapshot":
      if (m.id !== lotId) return;
      onSnapshot(m);
      setConn("online");
      attempts = 0;
      if (S.pending) sendBid();   // resend the same ref: idempotent on the server
      break;
    case "bid": onBid(m); break;
    case "extended":
      if (m.server_time_ms && S.lot && m.server_time_ms < S.lot.server_time_ms) break;  // replayed
      clock(m);
      if (m.deadline_ms >= S.deadline) {
        S.deadline = m.deadline_ms;
        const n = $("extended-notice");
        n.textContent = `${t("extended")} → ${fmtTime(m.deadline_ms).slice(11)}`;
        n.dataset.deadlineMs = String(m.deadline_ms);
      }
      render();
      break;
    case "lot_status": {
      const fresh = !m.server_time_ms || !S.lot || m.server_time_ms >= S.lot.server_time_ms;
      if (!fresh) break;  // replayed, already summed up by the snapshot
      clock(m);
      S.status = m.status === "fair_warning" ? "live" : m.status;
      if (m.deadline_ms) S.deadline = m.deadline_ms;
      S.frozenLeft = m.status === "paused" ? (m.deadline_ms - m.server_time_ms) : null;
      statusNotice(m.status, true);
      render();
      break;
    }
    case "closed":
      clock(m);
      S.status = "closed";
      S.result = m;
      if (m.price !== undefined) S.price = m.price;
      S.pending = null;
      render();
      break;
    case "accepted":
      if (m.receipt) {
        keepReceipt(lotId, m.receipt);
        showReceipts($("receipts"), lotId);
      }
      if (S.pending && m.ref === S.pending.ref) {
        S.pending = null;
        bidMsg(`${t("accepted")} #${m.seq}`, "ok");
        render();
      }
      break;
    case "rejected":
      if (S.pending && m.ref === S.pending.ref) {
        S.pending = null;
        const n = $("bid-message");
        bidMsg(errText(m), "err");
        n.dataset.code = m.code;
        render();
      }
      break;
    case "outbid":
      $("outbid-notice").textContent = `${t("outbid")} ${money(m.price)}`;
      break;
    case "deposit":
      if (S.lot && (m.lot_id === lotId || (m.scope === "session" && m.session_id === S.lot.session_id))) {
        S.depositPaid = true;
        renderDeposit({ paid: true, paid_scope: m.scope });
        depMsg(t("deposit_ok"), "ok");
      }
      break;
    case "task": onTask(m); break;
    case "closing_soon": {
      const n = $("closing-soon-notice");
      n.textContent = `${t("closing_soon")} ${fmtTime(m.deadline_ms).slice(11)}`;
      n.dataset.deadlineMs = String(m.deadline_ms);
      break;
    }
    case "won": {
      const n = $("won-notice");
      const o = m.order || {};
      n.replaceChildren(`${t("won_notice")}`, o.due !== undefined ? ` · ${t("due")} ${money(o.due)} · ` : " · ",
        el("a", { href: "/me", testid: "won-pay-link" }, t("go_pay")));
      n.dataset.orderId = o.id === undefined ? "" : String(o.id);
      break;
    }
    case "refund":
      // A refund of this lot's deposit, or of the session deposit covering it.
      if (S.lot && (m.lot_id === lotId || (m.scope === "session" && m.session_id === S.lot.session_id))) {
        const n = $("refund-notice");
        n.textContent = `${m.status === "done" ? t("refund_notice") : t("refund_pending")} ${money(m.amount)}`;
        n.dataset.status = m.status || "";
        n.dataset.amount = String(m.amount);
      }
      break;
    case "error":
      if (m.code === "not_found" || m.code === "lot_not_open") bidMsg(errText(m), "err");
      break;
    default: break;
  }
}

function setConn(state) {
  const c = $("conn");
  if (!c) return;
  c.dataset.state = state;
  c.textContent = t(`conn_${state}`);
}

function connect() {
  clearTimeout(retryTimer);
  if (ws) { try { ws.onclose = null; ws.close(); } catch (_) { /* closed */ } }
  setConn(attempts ? "offline" : "connecting");
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  // No token in the URL (URLs end up in logs): the login cookie identifies us.
  const sock = new WebSocket(`${proto}//${location.host}/ws`);
  ws = sock;
  sock.onopen = () => {
    lastMsgAt = Date.now();
    sock.send(JSON.stringify({ op: "join", lot_id: lotId, since_seq: S.lastSeq }));
  };
  sock.onmessage = (e) => { let m; try { m = JSON.parse(e.data); } catch (_) { return; } onMessage(m); };
  sock.onclose = () => { if (ws === sock) { ws = null; retry(); } };
  sock.onerror = () => { try { sock.close(); } catch (_) { /* */ } };
}

function retry() {
  setConn("offline");
  clearTimeout(retryTimer);
  const delay = Math.min(10000, 500 * 2 ** attempts) * (0.75 + Math.random() * 0.5);
  attempts += 1;
  retryTimer = setTimeout(connect, delay);
}

function drop() {
  if (ws) { const s = ws; ws = null; try { s.onclose = null; s.close(); } catch (_) { /* */ } }
  retry();
}

window.addEventListener("offline", drop);
window.addEventListener("online", () => { attempts = 0; connect(); });
// Heartbeat: a silent socket for too long is treated as dead.
setInterval(() => {
  if (ws && ws.readyState === WebSocket.OPEN) {
    if (Date.now() - lastMsgAt > 25000) { drop(); return; }
    try { ws.send(JSON.stringify({ op: "ping" })); } catch (_) { /* */ }
  }
}, 10000);

// -- bidding ----------------------------------------------------------------
function placeBid(amount) {
  if (S.pending || !amount) return;
  if (!token()) { location.href = loginUrl(); return; }
  S.pending = { ref: uuid(), amount };   // one fresh ref per user action
  bidMsg(t("sending"));
  render();
  sendBid();
}

function sendBid() {
  if (!S.pending || !ws || ws.readyState !== WebSocket.OPEN) return;  // resent after reconnect
  ws.send(JSON.stringify({ op: "bid", lot_id: lotId, amount: S.pending.amount, ref: S.pending.ref }));
}

// -- deposit ----------------------------------------------------------------
function depMsg(text, kind = "") {
  const m = $("deposit-message");
  m.textContent = text || "";
  m.className = `notice ${kind}`;
  m.dataset.kind = kind;
}

function renderDeposit(info) {
  const body = $("deposit-body");
  if (!token()) {
    body.replaceChildren(el("a", { href: loginUrl(), testid: "deposit-login" }, t("login_to_bid")));
    return;
  }
  if (info.paid) {
    S.depositPaid = true;
    body.replaceChildren(el("p", { class: "notice ok", testid: "deposit-paid", "data-scope": info.paid_scope || "" },
      `${t("deposit_paid")}${info.paid_scope ? ` (${t(`deposit_scope_${info.paid_scope}`)})` : ""}`));
    return;
  }
  const opts = info.options.map((o, i) => el("label", { class: "row" },
    el("input", { type: "radio", name: "dep-scope", value: o.scope, checked: i === 0, style: "width:auto", testid: `deposit-scope-${o.scope}` }),
    `${t(`deposit_scope_${o.scope}`)} ${money(o.amount)}`));
  const method = el("select", { testid: "deposit-method", id: "deposit-method" },
    ...info.methods.map((m) => el("option", { value: m }, t(`method_${m}`))));
  const btn = el("button", { class: "primary", type: "button", testid: "deposit-pay" }, t("pay"));
  btn.addEventListener("click", async () => {
    const scope = body.querySelector("input[name=dep-scope]:checked").value;
    btn.disabled = true;
    depMsg(t("paying"));
    try {
      const pay = { scope, method: method.value };
      if (method.value === "wechat") pay.scene = wechatScene();  // desktop native, phone h5, WeChat jsapi
      const r = await api("POST", `/api/lots/${lotId}/deposit`, pay);
      S.depositTask = r.task_id;
      S.depositScope = scope;
      if (S.earlyTasks.has(r.task_id)) onTask(S.earlyTasks.get(r.task_id));
      // If the socket misses the push (e.g. reconnecting), ask once later.
      setTimeout(() => pollTask(r.task_id), 15000);
    } catch (e) {
      depMsg(errText(e), "err");
      $("deposit-message").dataset.code = e.code;
      btn.disabled = false;
      if (e.code === "already_paid") loadDeposit();
      // Inside WeChat with no openid bound: the official account's OAuth binds it.
      if (e.code === "conflict" && method.value === "wechat" && wechatScene() === "jsapi") location.href = oauthUrl();
    }
  });
  body.replaceChildren(
    el("p", { class: "muted" }, `${t("balance")}: `, el("span", { testid: "deposit-balance" }, money(info.balance))),
    ...opts, el("label", { for: "deposit-method" }, t("method")), method, el("div", { style: "margin-top:8px" }, btn));
}

async function pollTask(id) {
  if (S.depositTask !== id) return;
  try { onTask(await api("GET", `/api/tasks/${id}`)); } catch (_) { /* ignore */ }
}

function onTask(m) {
  if (m.task_id !== S.depositTask) { S.earlyTasks.set(m.task_id, m); return; }
  if (m.state !== "SUCCESS" && m.state !== "FAILURE") return;
  S.depositTask = null;
  if (m.state === "SUCCESS") {
    if (m.result && m.result.status === "awaiting_payment") {
      depMsg(t("wechat_open"));
      $("deposit-message").dataset.state = "awaiting_payment";
      const old = document.querySelector("[data-testid=wechat-pay]");
      if (old) old.remove();
      $("deposit-body").append(wechatPayBox(m.result));
      watchPayment();
    } else {
      depMsg(t("deposit_ok"), "ok");
      renderDeposit({ paid: true, paid_scope: (m.result && m.result.scope) || S.depositScope || "" });
    }
  } else {
    const err = m.error || {};
    depMsg(errText(typeof err === "object" ? err : { code: String(err) }), "err");
    loadDeposit();
  }
}

// While a WeChat payment is open: the `deposit` push says when it is paid;
// asking now and then covers a socket that was away at that moment.
function watchPayment() {
  clearInterval(S.payWatch);
  S.payWatch = setInterval(async () => {
    if (S.depositPaid || !document.querySelector("[data-testid=wechat-pay]")) { clearInterval(S.payWatch); return; }
    try {
      const info = await api("GET", `/api/lots/${lotId}/deposit`);
      if (info.paid) { renderDeposit(info); depMsg(t("deposit_ok"), "ok"); }
    } catch (_) { /* the next look */ }
  }, 5000);
}

async function loadDeposit() {
  if (!token()) { renderDeposit({}); return; }
  try {
    const info = await api("GET", `/api/lots/${lotId}/deposit`);
    if (!S.depositPaid || info.paid) renderDeposit(info);
  } catch (e) {
    depMsg(errText(e), "err");
    if (e.code === "unauthorized") renderDeposit({});
  }
}

// -- watch list (关注) -----------------------------------------------------------
function renderWatch() {
  const b = $("watch-toggle");
  if (!b) return;
  b.hidden = !token() || S.watching === null;
  b.dataset.watching = S.watching ? "true" : "false";
  b.setAttribute("aria-pressed", S.watching ? "true" : "false");
  b.textContent = S.watching ? `★ ${t("watching")}` : `☆ ${t("watch")}`;
  b.title = S.watching ? t("unwatch") : t("watch");
}

async function loadWatch() {
  if (!token()) return;
  try {
    const { watches } = await api("GET", "/api/me/watches");
    S.watching = watches.some((w) => w.lot_id === lotId);
  } catch (_) { S.watching = null; }
  renderWatch();
}

async function toggleWatch() {
  const b = $("watch-toggle");
  b.disabled = true;
  try {
    const r = await api(S.watching ? "DELETE" : "POST", `/api/lots/${lotId}/watch`);
    S.watching = !!r.watching;
  } catch (e) {
    bidMsg(errText(e), "err");
  }
  b.disabled = false;
  renderWatch();
}

async function init() {
  header(() => location.reload());
  layout();
  try {
    const snap = await api("GET", `/api/lots/${lotId}`);
    onSnapshot(snap);
    S.seq = 0;  // the history comes from the socket's replay
    if (snap.images && snap.images.length) {
      // Swipe, tap to enlarge, lazy thumbnails (gallery.js).
      $("lot-images").replaceChildren(gallery(snap.images, snap.title, "lot-gallery"));
    } else {
      $("lot-images").hidden = true;
    }
  } catch (e) {
    app.replaceChildren(el("p", { class: "notice err", testid: "lot-error" }, errText(e)));
    return;
  }
  connect();
  loadDeposit();
  loadWatch();
}
init();
mountOffers();  // second-chance offers, above the room (offers.js)

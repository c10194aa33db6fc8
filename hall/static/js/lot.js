// The room: live price, countdown on the server's clock, deposit, bidding, reconnect.
//
// Phone first: what a bidder needs in the last seconds (price, time left, the
// bid buttons) is at the top; the photos, the description and the history
// follow. On a desktop the same boxes sit in two columns (app.css `.room`).
//
// Every state is shown in words, once, and only while it is true:
// * the badge: the lot's state (live, paused, fair warning, closed, settled);
// * beside the price: reserve not met, and this user's position (leading, outbid);
// * ONE notice line: the latest thing that happened (a bid's answer, an
//   extension, closing soon, paused, resumed, fair warning). A new one replaces
//   the last, so they never stack up above the bid button;
// * after the close, the bid controls are gone and the result takes their
//   place: the sale, and what it means for this user (won: pay now; lost: the
//   deposit's refund), read again from /api/me after a reload.
import { t, api, token, money, fmtTime, statusText, el, header, errText, loginUrl, uuid, fill } from "./common.js";
import { applyI18n } from "./i18n.js";
import { gallery } from "./gallery.js";
import { wechatScene, wechatPayBox, oauthUrl } from "./wxpay.js";
import { mountOffers } from "./offers.js";
import { keepReceipt, showReceipts } from "./receipts.js";

const lotId = Number(location.pathname.split("/").filter(Boolean).pop());
const app = document.getElementById("app");
// A bid this many increments or more above the minimum asks to be confirmed.
const CONFIRM_STEPS = 10;
const URGENT_MS = 60000;

const S = {
  lot: null,            // last snapshot (static fields)
  status: null,
  warning: false,       // a fair warning is running (the lot is still live)
  price: null,
  nextMin: null,
  reserveMet: true,
  extended: false,      // the deadline was pushed out by a late bid
  leader: null,
  leaderMine: false,
  outbid: false,        // this user bid and someone bid higher since
  seq: 0,               // seq the shown price reflects
  lastSeq: 0,           // highest bid seq in the history (for since_seq)
  deadline: 0,
  frozenLeft: null,     // remaining ms while paused
  offset: 0,            // server_time_ms - Date.now()
  bids: new Map(),      // seq -> bid
  pending: null,        // {ref, amount} awaiting accepted/rejected
  result: null,         // {result, price, winner} once closed
  mine: null,           // this user's outcome after the close (loadMine)
  depositPaid: null,    // null: not known yet / logged out
  depositTask: null,
  earlyTasks: new Map(),
  watching: null,       // null: unknown / logged out
};
let ws = null;
let attempts = 0;
let retryTimer = null;
let lastMsgAt = 0;

function $(id) { return app.querySelector(`[data-testid="${id}"]`); }
const isClosed = () => S.status === "closed" || S.status === "settled";

function layout() {
  app.innerHTML = `
  <div class="row between">
    <a data-testid="back-session" href="/" data-i18n="back"></a>
    <span class="conn" data-testid="conn" data-state="connecting"></span>
  </div>
  <div class="row between nowrap">
    <h1 data-testid="lot-title"></h1>
    <button type="button" data-testid="watch-toggle" hidden></button>
  </div>
  <div class="room">
    <div class="side">
      <section class="card bidbox" data-testid="bid-box" aria-labelledby="bidbox-h">
        <h2 class="sr-only" id="bidbox-h" data-i18n="bidding"></h2>
        <div class="row between">
          <span class="row">
            <span class="badge" data-testid="lot-status"></span>
            <span class="pill warn" data-testid="reserve-state" hidden></span>
          </span>
          <span class="muted"><span data-i18n="bid_count"></span>: <span data-testid="bid-count">0</span></span>
        </div>
        <div class="pricegrid">
          <div>
            <div class="muted" data-testid="price-label"></div>
            <div class="price" data-testid="price"></div>
            <div class="muted"><span data-i18n="leader"></span>: <span data-testid="leader">—</span></div>
            <span class="pill" data-testid="my-position" data-state="none" hidden></span>
          </div>
          <div class="clock">
            <div class="muted" data-testid="countdown-label" data-i18n="countdown"></div>
            <div class="countdown" data-testid="countdown" role="timer">--:--</div>
            <div class="muted" data-testid="deadline" data-deadline-ms=""></div>
          </div>
        </div>
        <div class="sr-only" data-testid="live-announce" aria-live="polite" aria-atomic="true"></div>
        <div class="notice" data-testid="room-notice" role="status" aria-atomic="true"></div>
        <div data-testid="deposit-panel" hidden>
          <h3 data-testid="deposit-title" data-i18n="deposit_cta"></h3>
          <div data-testid="deposit-body"></div>
          <div class="notice" data-testid="deposit-message" role="status"></div>
        </div>
        <div data-testid="bid-controls" hidden>
          <div class="muted"><span data-i18n="next_min_bid"></span>: <b data-testid="next-min-bid"></b></div>
          <button class="primary big" data-testid="bid-button" type="button"></button>
          <div class="quick" data-testid="quick-bids">
            <button type="button" data-testid="quick-bid-1" data-steps="1"></button>
            <button type="button" data-testid="quick-bid-5" data-steps="5"></button>
          </div>
          <form class="custom" data-testid="bid-form" novalidate>
            <label for="bid-amount" data-i18n="bid_amount"></label>
            <div class="row nowrap">
              <input id="bid-amount" data-testid="bid-amount" type="number" inputmode="decimal" min="0" step="any"
                     enterkeyhint="send" autocomplete="off">
              <button data-testid="bid-amount-button" type="submit" data-i18n="bid_custom"></button>
            </div>
          </form>
        </div>
        <a class="button primary big" data-testid="bid-login" hidden></a>
        <div data-testid="room-result" hidden>
          <p class="result-headline" data-testid="result-headline"></p>
          <div class="notice" data-testid="result-mine" data-state=""></div>
        </div>
        <p class="muted small" data-testid="deposit-paid-line" hidden></p>
        <div class="mt8" data-testid="receipts" hidden></div>
      </section>
    </div>
    <section class="card media" aria-labelledby="lot-title-h">
      <h2 class="sr-only" id="lot-title-h" data-i18n="lot_details"></h2>
      <div class="images" data-testid="lot-images"></div>
      <p data-testid="lot-description"></p>
    </section>
    <section class="card hist" aria-labelledby="hist-h">
      <h2 id="hist-h" data-i18n="bid_history"></h2>
      <ul class="list history" data-testid="bid-history"></ul>
      <p class="muted" data-testid="no-bids" data-i18n="no_bids"></p>
    </section>
  </div>
  <dialog data-testid="bid-confirm" aria-labelledby="bid-confirm-h">
    <h2 id="bid-confirm-h" data-i18n="bid_confirm_title"></h2>
    <p data-testid="bid-confirm-text"></p>
    <div class="row">
      <button class="primary" type="button" data-testid="bid-confirm-yes"></button>
      <button type="button" data-testid="bid-confirm-no" data-i18n="cancel"></button>
    </div>
  </dialog>`;
  applyI18n(app);
  showReceipts($("receipts"), lotId);
  $("bid-button").addEventListener("click", () => placeBid(S.nextMin));
  for (const q of [$("quick-bid-1"), $("quick-bid-5")]) {
    q.addEventListener("click", () => placeBid(stepsAbove(Number(q.dataset.steps))));
  }
  $("watch-toggle").addEventListener("click", toggleWatch);
  // Enter in the amount field submits the form: a custom bid, confirmed if far above the minimum.
  $("bid-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const raw = $("bid-amount").value.trim();
    const yuan = Number(raw);
    const fen = Math.round(yuan * 100);
    if (!raw || !Number.isFinite(yuan) || fen <= 0) { notice(t("err_bid_amount_missing"), "err", "rejected"); return; }
    if (Math.abs(yuan * 100 - fen) > 1e-6) { notice(t("err_bid_amount_cents"), "err", "rejected"); return; }
    confirmThenBid(fen);
  });
  $("bid-confirm-no").addEventListener("click", () => $("bid-confirm").close("no"));
}

// -- amounts ------------------------------------------------------------------
function incrementAt(price) {
  const inc = S.lot && S.lot.increment;
  if (typeof inc === "number") return inc;
  if (!Array.isArray(inc) || !inc.length) return 0;
  for (const [below, step] of inc) { if (below === null || price < below) return step; }
  return inc[inc.length - 1][1];
}

// The minimum next bid plus `steps` increments, stepping along a ladder as the server does.
function stepsAbove(steps) {
  let amount = S.nextMin;
  for (let i = 0; i < steps; i += 1) amount += incrementAt(amount);
  return amount;
}

function confirmThenBid(amount) {
  if (!S.nextMin || amount < stepsAbove(CONFIRM_STEPS)) { placeBid(amount); return; }
  const dlg = $("bid-confirm");
  const steps = Math.round((amount - S.nextMin) / Math.max(1, incrementAt(S.nextMin)));
  $("bid-confirm-text").textContent = fill(t("bid_confirm_text"),
    { amount: money(amount), min: money(S.nextMin), steps });
  const yes = $("bid-confirm-yes");
  yes.textContent = `${t("bid_confirm_yes")} ${money(amount)}`;
  yes.onclick = () => { dlg.close("yes"); placeBid(amount); };
  dlg.showModal();
  $("bid-confirm-no").focus();  // the safe choice has the focus: Enter again does not bid
}

// -- the one notice line ----------------------------------------------------------
function notice(text, tone = "", kind = "") {
  const n = $("room-notice");
  n.textContent = text || "";
  n.className = `notice ${tone}`;
  n.dataset.kind = text ? kind : "";
  n.dataset.tone = tone;
  delete n.dataset.code;
}

function clock(msg) {
  if (typeof msg.server_time_ms === "number") {
    S.offset = msg.server_time_ms - Date.now();
  }
}

// -- rendering ----------------------------------------------------------------------
function render() {
  if (!S.lot) return;
  $("lot-title").textContent = S.lot.title;
  $("lot-description").textContent = S.lot.description || "";
  $("back-session").href = `/sessions/${S.lot.session_id}`;
  const closed = isClosed();
  const warned = S.status === "live" && S.warning;
  const st = $("lot-status");
  st.textContent = statusText(warned ? "fair_warning" : S.status);
  st.className = `badge ${warned ? "fair_warning" : S.status}`;
  st.dataset.status = S.status;
  st.dataset.warning = warned ? "true" : "false";
  const rs = $("reserve-state");
  rs.hidden = S.reserveMet || S.price === null;
  rs.textContent = t("reserve_not_met");
  $("price").textContent = S.price === null ? t("no_bids") : money(S.price);
  $("price").dataset.amount = S.price === null ? "" : String(S.price);
  $("leader").textContent = S.leaderMine ? t("you") : (S.leader || "—");
  $("leader").parentElement.hidden = closed;  // the result names the buyer
  $("price-label").textContent = !closed ? t("current_price")
    : S.result && S.result.result === "sold" && !S.result.second_chance ? t("closed_at") : t("highest_bid");
  $("leader").dataset.mine = S.leaderMine ? "true" : "false";
  renderPosition(closed);
  $("next-min-bid").textContent = money(S.nextMin);
  $("next-min-bid").dataset.amount = String(S.nextMin);
  $("bid-count").textContent = String(S.bids.size > S.lot.bid_count ? S.bids.size : Math.max(S.seq, S.bids.size));
  // An extension stays visible where the deadline is, for as long as it stands.
  const dl = $("deadline");
  dl.dataset.deadlineMs = String(S.deadline);
  dl.dataset.extended = S.extended && !closed ? "true" : "false";
  dl.textContent = !S.deadline || closed ? ""
    : S.extended ? `${t("extended_to")} ${fmtTime(S.deadline).slice(11)}` : fmtTime(S.deadline);
  $("no-bids").hidden = S.bids.size > 0;
  renderActions(closed);
  $("deposit-paid-line").hidden = closed || S.depositPaid !== true;  // after the close the result says where it goes
  announcePrice();
  if (closed) renderClosed();
  tick();
}

function renderPosition(closed) {
  const p = $("my-position");
  const state = closed ? "none" : S.leaderMine ? "leading" : S.outbid ? "outbid" : "none";
  p.dataset.state = state;
  p.hidden = state === "none";
  p.className = `pill ${state === "leading" ? "paid" : "forfeited"}`;
  p.textContent = state === "leading" ? t("position_leading") : state === "outbid" ? t("position_outbid") : "";
}

// What the user can do now: log in, pay the deposit, bid, or (closed) nothing.
function renderActions(closed) {
  const anon = !token();
  const open = S.status === "live" || S.status === "paused" || S.status === "published";
  $("bid-login").hidden = !anon || closed;
  if (anon) { $("bid-login").href = loginUrl(); $("bid-login").textContent = t("login_to_bid"); }
  // Before a deposit is in force it is the one thing to do: its form stands where the bid buttons will be.
  const needDeposit = !anon && !closed && open && S.depositPaid === false;
  $("deposit-panel").hidden = !needDeposit;
  const controls = !anon && !closed && S.depositPaid === true;
  $("bid-controls").hidden = !controls;
  $("room-result").hidden = !closed;
  // The leader cannot outbid themself (the engine answers already_leading): nothing to press then.
  const canBid = controls && S.status === "live" && !S.pending && !S.leaderMine;
  const btn = $("bid-button");
  btn.disabled = !canBid;
  btn.dataset.amount = String(S.nextMin);
  btn.textContent = S.pending ? t("sending")
    : S.status === "paused" ? t("bid_paused")
    : S.leaderMine && S.status === "live" ? t("bid_leading")
    : S.status === "published" ? t("bid_not_open")
    : `${t("bid_btn")} ${money(S.nextMin)}`;
  for (const q of [$("quick-bid-1"), $("quick-bid-5")]) {
    const steps = Number(q.dataset.steps);
    const amount = S.nextMin ? stepsAbove(steps) : 0;
    q.dataset.amount = String(amount);
    q.disabled = !canBid;
    q.textContent = `${fill(t("quick_bid"), { n: steps })} ${money(amount)}`;
  }
  $("bid-amount-button").disabled = !canBid;
  $("bid-amount").disabled = !canBid;
  if (!$("bid-amount").value || document.activeElement !== $("bid-amount")) {
    $("bid-amount").placeholder = S.nextMin ? String(S.nextMin / 100) : "";
  }
}

function renderClosed() {
  const r = S.result;
  const h = $("result-headline");
  const res = r ? r.result : "";
  h.dataset.result = res || "";
  if (!r) h.textContent = statusText(S.status);
  else if (res === "sold" && r.forfeited) {
    h.textContent = `${t("sold")} · ${t("closed_at")} ${money(r.price)} · ${t("forfeited_reoffering")}`;
  } else if (res === "sold") {
    const byMe = S.mine ? S.mine.buyer : S.leaderMine;
    h.textContent = `${t("sold")} · ${t("closed_at")} ${money(r.price)} · ${t("winner")}: ${byMe ? t("you") : (r.winner || "—")}`
      + (r.second_chance ? ` · ${t("second_chance_sale")}` : "");
  } else {
    h.textContent = r.forfeited ? `${t("unsold")} · ${t("forfeited_none_left")}`
      : S.reserveMet ? t("unsold") : `${t("unsold")} · ${t("reserve_not_met")}`;
  }
  renderMine();
}

// This user's outcome of a closed lot: from the pushes while in the room,
// from /api/me (loadMine) after a reload. Nothing for anonymous visitors.
function renderMine() {
  const box = $("result-mine");
  const m = S.mine;
  if (!token() || !m) { box.replaceChildren(); box.dataset.state = ""; box.className = "notice"; return; }
  box.dataset.state = m.state;
  box.dataset.orderId = m.order ? String(m.order.id) : "";
  const pay = (o) => el("a", { href: `/me#order-${o.id}`, testid: "won-pay-link", class: "button primary" }, t("go_pay"));
  let tone = "";
  let parts = [];
  switch (m.state) {
    case "won_unpaid":
      tone = "ok";
      parts = [t("won_notice"), ` · ${t("due")} ${money(m.order.due)}`,
        m.order.pay_by_ms ? ` · ${t("pay_by")} ${fmtTime(m.order.pay_by_ms)}` : "", " ", pay(m.order)];
      break;
    case "won_pending": tone = "ok"; parts = [t("won_order_coming")]; break;
    case "won_paid": tone = "ok"; parts = [t("won_paid")]; break;
    case "forfeited": tone = "err"; parts = [t("mine_forfeited")]; break;
    case "lost": parts = [t("mine_lost"), " ", refundWords(m.deposit)]; break;
    case "unsold": parts = [t("mine_unsold"), " ", refundWords(m.deposit)]; break;
    default: parts = [];
  }
  box.className = `notice ${tone}`;
  box.replaceChildren(...parts.filter((p) => p !== ""));
}

// What happens to the deposit of someone who did not buy the lot.
function refundWords(dep) {
  if (!dep) return "";
  const span = (key) => el("span", { testid: "refund-state", "data-status": key }, fill(t(`mine_refund_${key}`), { amount: money(dep.amount) }));
  if (dep.refund_status === "done" || dep.status === "refunded") return span("done");
  if (dep.refund_status) return span("pending");
  if (dep.scope === "session") return span("after_session");
  return span("soon");
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
  const box = $("bid-box");
  let left;
  if (isClosed()) {
    const at = S.closedAt || S.deadline;
    cd.textContent = at ? fmtTime(at).slice(11, 16) : "—";
    cd.dataset.leftMs = "0"; cd.dataset.urgent = "false";
    box.classList.remove("urgent");
    $("countdown-label").textContent = t("ended_at");
    return;
  }
  if (S.status === "paused") left = S.frozenLeft ?? (S.deadline - (Date.now() + S.offset));
  else left = S.deadline - (Date.now() + S.offset);
  cd.textContent = fmtLeft(left);
  cd.dataset.leftMs = String(Math.max(0, Math.round(left)));
  // The last minute of a live lot is unmistakable: red, and the box says so.
  const urgent = S.status === "live" && left <= URGENT_MS;
  cd.dataset.urgent = urgent ? "true" : "false";
  box.classList.toggle("urgent", urgent);
  $("countdown-label").textContent = S.status === "paused" ? t("countdown_paused")
    : S.warning && S.status === "live" ? t("countdown_warning")
    : urgent ? t("countdown_urgent") : t("countdown");
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
  S.reserveMet = m.reserve_met !== false;
  S.leader = m.leader;
  if (typeof m.leading === "boolean") S.leaderMine = m.leading;
  if (typeof m.my_deposit !== "undefined") S.depositPaid = !!m.my_deposit;
  S.deadline = m.deadline_ms;
  S.frozenLeft = m.status === "paused" ? m.deadline_ms - m.server_time_ms : null;
  S.warning = !!m.fair_warning_ends_ms;  // a warning given before we came
  if (isClosed()) {
    // A second-chance sale is at the buyer's own best bid (`sale_price`), below the hammer price.
    S.result = { result: m.result, price: m.sale_price || m.price, winner: m.winner,
      second_chance: !!m.second_chance, forfeited: !!m.forfeited };
    S.closedAt = m.closed_at_ms || null;
    loadMine();
  }
  render();
}

function onBid(m) {
  clock(m);
  addBid(m);
  if (m.seq > S.seq || (m.seq === S.seq && S.price === m.amount)) {
    S.seq = m.seq;
    S.price = m.amount;
    S.leader = m.bidder;
    S.leaderMine = !!m.mine;
    if (m.mine) S.outbid = false;
    if (typeof m.reserve_met === "boolean") S.reserveMet = m.reserve_met;
    if (m.next_min_bid) S.nextMin = m.next_min_bid;
    if (m.deadline_ms && S.status !== "paused") S.deadline = m.deadline_ms;
    if (S.warning) {  // a bid ends the warning
      S.warning = false;
      if ($("room-notice").dataset.kind === "fair_warning") notice("");
    }
  } else if (m.seq === S.seq && m.mine) {
    S.leaderMine = true;  // replay of the bid the snapshot already shows: it is ours
  }
  render();
}

function onStatus(m) {
  const fresh = !m.server_time_ms || !S.lot || m.server_time_ms >= S.lot.server_time_ms;
  if (!fresh) return;  // replayed, already summed up by the snapshot
  clock(m);
  const was = S.status;
  S.status = m.status === "fair_warning" ? "live" : m.status;
  S.warning = m.status === "fair_warning";
  if (m.deadline_ms) S.deadline = m.deadline_ms;
  S.frozenLeft = m.status === "paused" ? (m.deadline_ms - m.server_time_ms) : null;
  if (m.status === "paused") notice(t("paused"), "", "paused");
  else if (m.status === "fair_warning") notice(t("fair_warning"), "", "fair_warning");
  else if (m.status === "live" && was === "paused") notice(t("resumed"), "ok", "resumed");
  else if (m.status === "live" && was === "published") notice(t("opened"), "ok", "opened");
  if (m.status === "settled" && !S.result) S.result = { result: S.price ? "sold" : "unsold", price: S.price, winner: S.leader };
  if (isClosed()) loadMine();
  render();
}

function onClosed(m) {
  // A replayed close (the join's replay) is older than the snapshot, which
  // already has the result, and maybe a second-chance buyer since.
  if (S.result && m.server_time_ms && S.lot && m.server_time_ms < S.lot.server_time_ms) return;
  clock(m);
  S.status = "closed";
  S.warning = false;
  S.result = m;
  S.closedAt = m.server_time_ms || null;
  if (m.price !== undefined && m.price !== null) S.price = m.price;
  S.pending = null;
  notice("");  // stale "extended", "closing soon" and bid answers go; the result says it all
  if (token()) {
    // Until /api/me answers: the leader is the buyer (settlement writes the order).
    S.mine = m.result === "sold" && S.leaderMine ? { state: "won_pending", buyer: true }
      : { state: m.result === "sold" ? "lost" : "unsold", buyer: false, deposit: null };
  }
  render();
  loadMine();
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
        S.extended = true;
        notice(`${t("extended")} → ${fmtTime(m.deadline_ms).slice(11)}`, "", "extended");
        $("room-notice").dataset.deadlineMs = String(m.deadline_ms);
      }
      render();
      break;
    case "lot_status": onStatus(m); break;
    case "closed": onClosed(m); break;
    case "accepted":
      if (m.receipt) {
        keepReceipt(lotId, m.receipt);
        showReceipts($("receipts"), lotId);
      }
      if (S.pending && m.ref === S.pending.ref) {
        S.pending = null;
        notice(`${t("accepted")} #${m.seq}`, "ok", "accepted");
        render();
      }
      break;
    case "rejected":
      if (S.pending && m.ref === S.pending.ref) {
        S.pending = null;
        notice(errText(m), "err", "rejected");
        $("room-notice").dataset.code = m.code;
        if (m.code === "no_deposit") { S.depositPaid = false; loadDeposit(); }
        render();
      }
      break;
    case "outbid":
      S.outbid = true;
      notice(`${t("outbid")} ${money(m.price)}`, "err", "outbid");
      render();
      break;
    case "deposit":
      if (S.lot && (m.lot_id === lotId || (m.scope === "session" && m.session_id === S.lot.session_id))) {
        renderDeposit({ paid: true, paid_scope: m.scope });
        depMsg(t("deposit_ok"), "ok");
        render();
      }
      break;
    case "task": onTask(m); break;
    case "closing_soon":
      if (isClosed()) break;
      notice(`${t("closing_soon")} ${fmtTime(m.deadline_ms).slice(11)}`, "", "closing_soon");
      $("room-notice").dataset.deadlineMs = String(m.deadline_ms);
      break;
    case "won": {
      const o = m.order || {};
      S.mine = { state: "won_unpaid", buyer: true, order: o };
      minePushes += 1;
      render();
      loadMine();  // the order's pay-by time and any coupon come from /api/me
      break;
    }
    case "order":
      // The order changed: a session deposit credited to it (due drops), paid, forfeited.
      if (m.order && m.order.lot_id === lotId && isClosed()) {
        const o = m.order;
        const state = o.status === "paid" ? "won_paid" : o.status === "forfeited" ? "forfeited" : "won_unpaid";
        S.mine = { ...(S.mine || {}), state, buyer: o.status !== "forfeited", order: o };
        minePushes += 1;
        render();
      }
      break;
    case "refund":
      // A refund of this lot's deposit, or of the session deposit covering it.
      if (S.lot && (m.lot_id === lotId || (m.scope === "session" && m.session_id === S.lot.session_id))) {
        if (isClosed()) loadMine();
        else notice(`${m.status === "done" ? t("refund_notice") : t("refund_pending")} ${money(m.amount)}`, "ok", "refund");
      }
      break;
    case "error":
      if (m.code === "not_found" || m.code === "lot_not_open") notice(errText(m), "err", "error");
      break;
    default: break;
  }
}

// After the close: this user's order and deposit for the lot, so the result
// (won: pay now; lost: the refund) is the same after a reload as it was live.
let mineLoading = null;
let mineAgain = false;
// Pushes that set S.mine (`won`, `order`). A read of /api/me that was answered
// before the change a push announces must not undo it: a session deposit is
// credited to the order (its due drops) just after `won`, while the read that
// `won` started may still be on its way back. Such a read is made again.
let minePushes = 0;
async function loadMine() {
  if (!token() || !isClosed()) return;
  if (mineLoading) { mineAgain = true; return; }  // once more when this one is done: it may predate a push
  mineLoading = (async () => {
    const pushesBefore = minePushes;
    try {
      const [{ orders }, { deposits }] = await Promise.all([api("GET", "/api/me/orders"), api("GET", "/api/me/deposits")]);
      const mineOrders = orders.filter((o) => o.lot_id === lotId);
      const order = mineOrders.find((o) => o.status !== "forfeited") || mineOrders[0] || null;
      const deposit = deposits.find((d) => d.lot_id === lotId)
        || deposits.find((d) => d.scope === "session" && S.lot && d.session_id === S.lot.session_id) || null;
      const bid = S.leaderMine || [...S.bids.values()].some((b) => b.mine) || !!deposit;
      let state;
      if (order && order.status === "unpaid") state = "won_unpaid";
      else if (order && order.status === "paid") state = "won_paid";
      else if (order && order.status === "forfeited") state = "forfeited";
      else if (S.result && S.result.result === "sold" && S.leaderMine) state = "won_pending";
      else if (!bid) state = "";
      else state = S.result && S.result.result === "sold" ? "lost" : "unsold";
      if (minePushes === pushesBefore) S.mine = { state, buyer: !!order && order.status !== "forfeited", order, deposit };
      else mineAgain = true;  // a push came meanwhile: this answer may predate it
    } catch (_) { /* offline: the pushes still say it */ }
    mineLoading = null;
    render();
    if (mineAgain) { mineAgain = false; loadMine(); }
  })();
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
  notice(t("sending"), "", "sending");
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
  const line = $("deposit-paid-line");  // shown or not by render()
  if (!token()) { S.depositPaid = null; body.replaceChildren(); return; }
  if (info.paid) {
    S.depositPaid = true;
    line.replaceChildren(el("span", { testid: "deposit-paid", "data-scope": info.paid_scope || "" },
      `✓ ${t("deposit_paid")}${info.paid_scope ? ` (${t(`deposit_scope_${info.paid_scope}`)})` : ""}`));
    body.replaceChildren();
    render();
    return;
  }
  S.depositPaid = false;
  const opts = info.options.map((o, i) => el("label", { class: "row choice" },
    el("input", { type: "radio", name: "dep-scope", value: o.scope, checked: i === 0, "data-amount": o.amount, testid: `deposit-scope-${o.scope}` }),
    `${t(`deposit_scope_${o.scope}`)} ${money(o.amount)}`));
  const method = el("select", { testid: "deposit-method", id: "deposit-method" },
    ...info.methods.map((m) => el("option", { value: m }, t(`method_${m}`))));
  const btn = el("button", { class: "primary big", type: "button", testid: "deposit-pay" }, t("pay_deposit"));
  const short = el("p", { class: "notice", testid: "deposit-short", hidden: true });
  const chosen = () => body.querySelector("input[name=dep-scope]:checked");
  // With too little balance, say how much is missing and offer a top-up first (or WeChat).
  const checkBalance = () => {
    const need = Number(chosen().dataset.amount);
    const gap = need - info.balance;
    const lacking = method.value === "balance" && gap > 0;
    short.hidden = !lacking;
    btn.disabled = lacking;
    if (lacking) {
      const back = encodeURIComponent(location.pathname);
      short.replaceChildren(fill(t("deposit_short"), { gap: money(gap) }), " ",
        el("a", { href: `/me?topup=${gap}&back=${back}`, testid: "deposit-topup" }, t("go_topup")),
        info.methods.includes("wechat") ? ` ${t("deposit_or_wechat")}` : "");
    }
  };
  body.addEventListener("change", checkBalance);
  btn.addEventListener("click", async () => {
    const scope = chosen().value;
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
    el("p", { class: "muted" }, fill(t("deposit_why"), { amount: money(Math.min(...info.options.map((o) => o.amount))) })),
    el("p", { class: "muted" }, `${t("balance")}: `, el("span", { testid: "deposit-balance" }, money(info.balance))),
    el("fieldset", { class: "plain" }, el("legend", { class: "muted" }, t("deposit_scope")), ...opts),
    el("label", { for: "deposit-method" }, t("method")), method, short, el("div", { class: "mt8" }, btn));
  checkBalance();
  render();
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
    notice(errText(e), "err", "error");
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
      $("lot-images").replaceChildren(el("div", { class: "photo-missing lot-photo-missing", testid: "photo-missing" }, t("no_photo")));
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

// The wallet on /me (钱包): balance, top-up by WeChat Pay (充值: a QR code on a
// desktop, WeChat's cashier on a phone, JSAPI inside WeChat), the statement of
// every movement in words, and the user's socket that says when money moved.
import { t, api, money, signedMoney, fmtTime, el, errText, fill } from "./common.js";
import { wechatScene, wechatPayBox, oauthUrl } from "./wxpay.js";

// "12.5" -> 1250 fen; null for anything that is not a positive amount with
// at most two decimals.
export function yuanToFen(text) {
  const s = String(text).trim().replace(/[,，\s]/g, "");
  if (!/^\d{1,12}(\.\d{1,2})?$/.test(s)) return null;
  const [whole, frac = ""] = s.split(".");
  const fen = Number(whole) * 100 + Number((frac + "00").slice(0, 2));
  return fen > 0 ? fen : null;
}

// The user's own socket: no room joined, it carries the user's messages
// (task, topup, deposit, refund, order ...). Reconnects with a backoff.
export function userSocket(onMessage, onState = () => {}) {
  let attempts = 0;
  let ws = null;
  const open = () => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/ws`);  // the login cookie says who
    ws.onopen = () => { attempts = 0; onState("online"); };
    ws.onmessage = (e) => { let m; try { m = JSON.parse(e.data); } catch (_) { return; } onMessage(m); };
    ws.onclose = () => {
      onState("offline");
      attempts += 1;
      setTimeout(open, Math.min(10000, 500 * 2 ** attempts));
    };
  };
  open();
  setInterval(() => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ op: "ping" })); }, 20000);
}

// -- the statement ------------------------------------------------------------

function entryWhat(e) {
  // A payment that arrived for a trade already closed (a top-up past its
  // expiry, a deposit moved on) is no double payment: said as what it is.
  const key = e.kind === "payment_refund" && e.reason === "trade_closed" ? "led_payment_refund_closed" : `led_${e.kind}`;
  const kind = t(key) !== key ? t(key) : t("statement");
  let about = null;
  if (e.lot_id && e.lot_title) {
    about = el("a", { href: `/lots/${e.lot_id}` }, e.lot_title);
  } else if (e.session_title) {
    about = el("a", { href: `/sessions/${e.session_id}` }, `${t("session_word")} ${e.session_title}`);
  }
  return about ? [el("b", {}, kind), " · ", about] : [el("b", {}, kind)];
}

export function statementCard(entries) {
  const rows = entries.map((e) => el("li", { class: "entry", testid: "ledger-row", "data-kind": e.kind, "data-amount": e.amount },
    el("div", { class: "entry-main" },
      el("div", { testid: "ledger-what" }, ...entryWhat(e)),
      el("div", { class: "muted" }, fmtTime(e.at_ms), " · ", t(`via_${e.via}`),
        e.status && e.status !== "done" ? " · " : null,
        e.status && e.status !== "done" ? el("span", { class: "pill warn" }, t("in_progress")) : null)),
    el("div", { class: "entry-amount" },
      el("div", { class: `amount ${e.amount < 0 ? "out" : "in"}`, testid: "ledger-amount" }, signedMoney(e.amount)),
      e.balance_after !== null && e.balance_after !== undefined
        ? el("div", { class: "muted" }, `${t("balance_after")} ${money(e.balance_after)}`) : null)));
  return el("section", { class: "card", testid: "statement", "aria-labelledby": "statement-h" },
    el("h2", { id: "statement-h" }, t("statement")),
    rows.length ? el("ul", { class: "list entries", testid: "ledger" }, rows)
      : el("p", { class: "muted", testid: "no-entries" }, t("no_entries")));
}

// -- the wallet: balance and top-up -----------------------------------------

const QUICK = [10000, 50000, 100000];  // fen: ¥100, ¥500, ¥1,000

// opts: {balance, max, onPaid(balance)}; returns {node, setBalance, paid(msg), prefill(fen)}
export function walletCard({ balance, max }) {
  const balanceEl = el("div", { class: "price", testid: "balance", "data-amount": balance, "aria-live": "polite" }, money(balance));
  const input = el("input", { id: "topup-amount", testid: "topup-amount", inputmode: "decimal", autocomplete: "off",
    "aria-describedby": "topup-hint topup-message" });
  const hint = el("p", { class: "muted", id: "topup-hint" }, `${t("topup_max")} ${money(max)}`);
  const msg = el("div", { class: "notice", id: "topup-message", testid: "topup-message", role: "status", "aria-live": "polite" });
  const box = el("div", { testid: "topup-box" });
  // Top-ups opened and not paid yet (the page reloaded meanwhile): said, so a
  // payment made later is not a surprise; it is credited when it comes.
  const pendingEl = el("p", { class: "muted", testid: "topup-pending", hidden: true });
  // Closed unpaid at their expiry (the last day's): nothing was charged, and a
  // QR code still on the payer's phone can no longer be paid.
  const closedEl = el("p", { class: "muted", testid: "topup-closed", hidden: true });
  const submit = el("button", { class: "primary", type: "submit", testid: "topup-submit" }, t("topup_submit"));
  const quick = el("div", { class: "row chips", role: "group", "aria-label": t("topup_quick") },
    QUICK.map((fen) => el("button", { type: "button", class: "chip", testid: "topup-quick", "data-amount": fen,
      onclick: () => { input.value = String(fen / 100); input.focus(); } }, money(fen))));
  const say = (text, kind = "") => { msg.textContent = text || ""; msg.className = `notice ${kind}`; msg.dataset.kind = kind; };
  let waitingTask = null;
  let shownTopup = null;  // the top-up whose payment box is open
  const form = el("form", { class: "topup", testid: "topup-form", novalidate: true },
    el("label", { for: "topup-amount" }, t("topup_amount")),
    el("div", { class: "row nowrap" }, input, submit), quick, hint, msg, box, pendingEl, closedEl);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fen = yuanToFen(input.value);
    input.removeAttribute("aria-invalid");
    if (fen === null) { say(t("topup_bad_amount"), "err"); input.setAttribute("aria-invalid", "true"); input.focus(); return; }
    if (fen > max) { say(`${t("topup_too_big")} ${money(max)}`, "err"); input.setAttribute("aria-invalid", "true"); input.focus(); return; }
    submit.disabled = true;
    say(t("paying"));
    box.replaceChildren();
    try {
      const r = await api("POST", "/api/me/topups", { amount: fen, scene: wechatScene() });
      waitingTask = r.task_id;
      // The result comes over the socket (task); if the socket is away, ask.
      setTimeout(async () => {
        if (waitingTask !== r.task_id) return;
        try { onTask(await api("GET", `/api/tasks/${r.task_id}`)); } catch (_) { /* the push will do */ }
      }, 4000);
    } catch (err) {
      submit.disabled = false;
      if (err.code === "conflict" && wechatScene() === "jsapi") { location.href = oauthUrl(); return; }
      say(errText(err), "err");
    }
  });
  function onTask(task) {
    if (!task || task.task_id !== waitingTask || (task.state !== "SUCCESS" && task.state !== "FAILURE")) return;
    waitingTask = null;
    submit.disabled = false;
    if (task.state === "FAILURE") { say(errText(task.error || {}), "err"); return; }
    const r = task.result || {};
    if (r.status === "closed") { say(t("topup_closed_now"), "warn"); return; }  // expired meanwhile
    if (r.status !== "awaiting_payment") return;
    shownTopup = r.topup_id;
    say(r.expires_at_ms ? fill(t("topup_open_until"), { time: fmtTime(r.expires_at_ms).slice(11, 16) }) : t("topup_open"));
    box.replaceChildren(wechatPayBox(r));
  }
  // The sweep closed a top-up unpaid at its expiry: its payment box goes, so
  // nothing offers to pay it any more.
  function closed(m) {
    if (!m.topup || m.topup.id !== shownTopup) return;
    shownTopup = null;
    box.replaceChildren();
    say(t("topup_closed_now"), "warn");
  }
  function paid(m) {
    const fen = m.topup && m.topup.amount;
    if (typeof m.balance === "number") setBalance(m.balance);
    shownTopup = null;
    box.replaceChildren();
    input.value = "";
    say(typeof m.balance === "number" ? fill(t("topup_paid_balance"), { amount: money(fen), balance: money(m.balance) })
      : fill(t("topup_paid"), { amount: money(fen) }), "ok");
  }
  function setBalance(fen) {
    balanceEl.textContent = money(fen);
    balanceEl.dataset.amount = String(fen);
  }
  const when = (p) => (p.expires_at_ms
    ? `${fmtTime(p.created_at_ms).slice(5, 16)}, ${fill(t("topup_valid_until"), { time: fmtTime(p.expires_at_ms).slice(11, 16) })}`
    : fmtTime(p.created_at_ms).slice(5, 16));
  function setPending(list, closedList = []) {
    const open = box.childElementCount > 0;
    pendingEl.hidden = open || !list.length;
    pendingEl.textContent = list.length ? `${list.length} ${t("topup_pending_n")}${t("colon")}${list.map((p) => `${money(p.amount)} (${when(p)})`).join(", ")}` : "";
    closedEl.hidden = !closedList.length;
    closedEl.textContent = closedList.length ? `${closedList.length} ${t("topup_closed_n")}${t("colon")}${closedList.map((p) => `${money(p.amount)} (${fmtTime(p.created_at_ms).slice(5, 16)})`).join(", ")}` : "";
  }
  function prefill(fen) {
    input.value = String(Math.ceil(fen) / 100);
    input.focus();
    form.scrollIntoView({ block: "center" });
  }
  const node = el("section", { class: "card wallet", testid: "wallet", "aria-labelledby": "wallet-h" },
    el("h2", { id: "wallet-h" }, t("wallet")),
    el("div", { class: "muted" }, t("my_balance")), balanceEl,
    el("h3", {}, t("topup")), form);
  return { node, setBalance, paid, closed, prefill, onTask, say, setPending };
}

// -- deposits, in words --------------------------------------------------------

function depositWhy(d, orderTitle) {
  const via = t(`dep_via_${d.method}`);
  if (d.status === "pending") return t("dep_why_pending");
  if (d.status === "paid") return t(d.scope === "lot" ? "dep_why_paid_lot" : "dep_why_paid_session");
  if (d.status === "refunded") {
    return d.refund_status && d.refund_status !== "done" ? `${t("dep_why_refund_pending")} ${via}` : `${t("dep_why_refunded")} ${via}`;
  }
  if (d.status === "credited") return fill(t("dep_why_credited"), { lot: orderTitle || "" }).trim();
  if (d.status === "forfeited") return t("dep_why_forfeited");
  return "";
}

function depositState(d) {
  if (d.status === "refunded" && d.refund_status && d.refund_status !== "done") return t("dep_refund_pending");
  const key = `dep_${d.status}`;
  return t(key) !== key ? t(key) : t("in_progress");
}

export function depositsCard(deposits, orders) {
  const titleOfOrder = new Map(orders.map((o) => [o.id, o.lot_title]));
  const rows = deposits.slice().reverse().map((d) => {
    const what = d.scope === "lot" && d.lot_id
      ? el("a", { href: `/lots/${d.lot_id}` }, d.lot_title || `${t("lot_word")} ${d.lot_id}`)
      : el("a", { href: `/sessions/${d.session_id}` }, d.session_title || `${t("session_word")} ${d.session_id}`);
    return el("li", { class: "entry", testid: "deposit-row", "data-id": d.id, "data-status": d.status },
      el("div", { class: "entry-main" },
        el("div", {}, el("b", {}, t(`dep_kind_${d.scope}`)), " · ", what),
        el("div", { class: "muted", testid: "deposit-why" }, depositWhy(d, titleOfOrder.get(d.credited_to)))),
      el("div", { class: "entry-amount" },
        el("div", { class: "amount" }, money(d.amount)),
        el("span", { class: `pill ${d.status}`, testid: "deposit-state" }, depositState(d)),
        el("div", { class: "muted" }, t(`method_${d.method}`))));
  });
  return el("section", { class: "card", testid: "deposits", "aria-labelledby": "deposits-h" },
    el("h2", { id: "deposits-h" }, t("my_deposits")),
    rows.length ? el("ul", { class: "list entries" }, rows) : el("p", { class: "muted", testid: "no-deposits" }, t("no_deposits")));
}

// The short-balance sentence of an order payment (or deposit) with its numbers.
export function shortText(need, have) {
  return fill(t("short_balance"), { need: money(need), have: money(have), gap: money(Math.max(0, need - have)) });
}

// 我的: the wallet (balance, top-up by WeChat Pay, the statement in words),
// orders (the lot's title and photo, what is due after coupon and deposit,
// pay by balance or WeChat, every failure in words), coupons and deposits
// (their state and what will happen to them). A socket of the user's own
// says when money moved: the page updates without a reload.
import { t, api, token, money, fmtTime, el, header, errText, loginUrl, downloadWithToken } from "./common.js";
import { wechatScene, wechatPayBox, oauthUrl } from "./wxpay.js";
import { lotPhoto } from "./lists.js";
import { walletCard, statementCard, depositsCard, userSocket, shortText } from "./wallet.js";
import { mountOffers } from "./offers.js";

const app = document.getElementById("app");
header(() => location.reload());

const waiters = new Map();  // task_id -> resolve(task)
const seenTasks = new Map();  // task_id -> task (pushed before anyone waited)
let wallet = null;
let busy = 0;  // payments in flight: the order list is not redrawn under them
let refreshTimer = null;
let balanceNow = 0;
const chosenCoupon = new Map();  // order id -> coupon id picked: kept when the list is redrawn
const sections = {
  orders: el("div", { testid: "orders-section" }),
  coupons: el("div"),
  deposits: el("div"),
  statement: el("div"),
};

// What a coupon takes off an order's due (as workers/orders.py discount()).
export function discount(coupon, due) {
  if (!coupon) return 0;
  const off = coupon.kind === "fixed" ? coupon.value : Math.floor((due * coupon.value) / 100);
  return Math.max(0, Math.min(off, due));
}

function couponLabel(c) {
  const what = c.kind === "fixed" ? `${t("coupon_fixed")} ${money(c.value)}` : `${c.value}${t("coupon_off_pct")}`;
  const min = c.min_spend ? ` · ${t("coupon_min_spend")} ${money(c.min_spend)}${t("coupon_min_spend_suffix")}` : "";
  return `${what}${min}`;
}

// The coupons that can pay towards this order (usable, minimum spend met).
function couponsFor(order, coupons) {
  return coupons.filter((c) => c.usable && (order.amount + (order.premium || 0)) >= c.min_spend);
}

const pause = (ms) => new Promise((res) => setTimeout(res, ms));

// A task's final state: pushed over the socket, or (if the socket is away) asked for.
function taskResult(taskId) {
  if (seenTasks.has(taskId)) return Promise.resolve(seenTasks.get(taskId));
  return new Promise((resolve) => {
    waiters.set(taskId, resolve);
    (async () => {
      for (let i = 0; i < 40 && waiters.has(taskId); i++) {
        await pause(i < 4 ? 1500 : 3000);
        if (!waiters.has(taskId)) return;
        try {
          const task = await api("GET", `/api/tasks/${taskId}`);
          if (task.state === "SUCCESS" || task.state === "FAILURE") { waiters.delete(taskId); resolve(task); return; }
        } catch (_) { /* keep waiting */ }
      }
      if (waiters.has(taskId)) { waiters.delete(taskId); resolve(null); }
    })();
  });
}

function onSocket(m) {
  if (m.type === "task") {
    seenTasks.set(m.task_id, m);
    const resolve = waiters.get(m.task_id);
    if (resolve) { waiters.delete(m.task_id); resolve(m); }
    if (wallet) wallet.onTask(m);
  } else if (m.type === "topup") {
    if (wallet && m.topup && m.topup.status === "paid") wallet.paid(m);
    if (wallet && m.topup && m.topup.status === "closed") wallet.closed(m);
    if (typeof m.balance === "number") balanceNow = m.balance;
    refreshSoon();
  } else if (["order", "deposit", "refund", "payment_refund", "won"].includes(m.type)) {
    refreshSoon();
  }
}

function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 300);
}

function msgSet(msg, text, kind = "") {
  msg.replaceChildren(text || "");
  msg.className = `notice ${kind}`;
  msg.dataset.kind = kind;
}

// method: "balance" or "wechat" (the scene from where the page runs: a QR
// code on a desktop, WeChat's cashier on a phone, JSAPI inside WeChat).
async function payOrder(order, ui, method) {
  const { buttons, msg, select, toPay } = ui;
  const lock = (on) => { buttons.forEach((b) => { b.disabled = on; }); if (select) select.disabled = on; };
  lock(true);
  busy += 1;
  msgSet(msg, t("paying"));
  let done = false;
  try {
    const body = { method };
    if (method === "wechat") body.scene = wechatScene();
    if (select && select.value) body.coupon_id = Number(select.value);
    const r = await api("POST", `/api/orders/${order.id}/pay`, body);
    const task = await taskResult(r.task_id);
    if (!task) {
      msgSet(msg, t("err_unavailable"), "err");
    } else if (task.state === "FAILURE") {
      const e = task.error || {};
      failed(ui, typeof e === "object" ? e : { code: String(e) }, Number(toPay.dataset.amount));
    } else {
      if (task.result && task.result.status === "awaiting_payment") {
        msg.className = "notice";
        msg.replaceChildren(wechatPayBox(task.result), el("p", { class: "muted" }, t("order_wait_wechat")));
        await waitUntilPaid(order.id);
      }
      msgSet(msg, t("pay_ok"), "ok");
      done = true;
    }
  } catch (e) {
    if (method === "wechat" && e.code === "conflict" && wechatScene() === "jsapi") {
      location.href = oauthUrl();  // inside WeChat with no openid bound yet: bind it, come back
      return;
    }
    failed(ui, e, Number(toPay.dataset.amount));
  } finally {
    busy -= 1;
  }
  if (done) await refresh();
  else lock(false);
}

// A refused payment, in words; a short balance says by how much and offers
// the top-up with that amount filled in. The chosen coupon stays chosen.
function failed(ui, err, need) {
  if (err.code === "insufficient_balance") {
    const gap = Math.max(1, need - balanceNow);
    msgSet(ui.msg, "", "err");
    ui.msg.append(el("span", { testid: "order-short" }, shortText(need, balanceNow)), " ",
      el("button", { type: "button", class: "link", testid: "order-topup",
        onclick: () => wallet.prefill(gap) }, t("go_topup")));
    return;
  }
  msgSet(ui.msg, errText(err), "err");
  ui.msg.dataset.code = err.code || "";
}

// A WeChat payment completes at the gateway: the `order` push (or a look
// every few seconds) says it is paid.
async function waitUntilPaid(orderId) {
  for (;;) {
    await pause(3000);
    const { orders } = await api("GET", "/api/me/orders");
    const o = orders.find((x) => x.id === orderId);
    if (!o || o.status !== "unpaid") return;
  }
}

// 成交确认书: fetched with the token (the API takes no cookie), saved as a file.
async function openPdf(orderId, msg) {
  try {
    await downloadWithToken(`/api/orders/${orderId}/confirmation.pdf`, `confirmation-${orderId}.pdf`);
  } catch (e) { msgSet(msg, String(e.message || e), "err"); }
}

function orderItem(o, coupons) {
  const title = o.lot_title || `${t("lot_word")} ${o.lot_id}`;
  const msg = el("div", { class: "notice", testid: "order-message", role: "status", "aria-live": "polite" });
  const unpaid = o.status === "unpaid";
  const btn = unpaid ? el("button", { class: "primary", type: "button", testid: "order-pay", "data-id": o.id }, t("pay_now")) : null;
  const wxBtn = unpaid && o.due > 0 ? el("button", { type: "button", testid: "order-pay-wechat", "data-id": o.id }, t("pay_wechat")) : null;
  const usable = unpaid && o.due > 0 ? couponsFor(o, coupons) : [];
  const selectId = `order-coupon-${o.id}`;
  const select = usable.length ? el("select", { id: selectId, testid: "order-coupon", "data-id": o.id },
    el("option", { value: "" }, t("no_coupon")),
    ...usable.map((c) => el("option", { value: c.id }, couponLabel(c)))) : null;
  const toPay = el("div", { class: "to-pay", testid: "order-to-pay", "data-amount": o.due }, `${t("to_pay")} `, el("b", {}, money(o.due)));
  if (select) {
    const show = () => {
      const c = usable.find((x) => String(x.id) === select.value);
      const off = discount(c, o.due);
      toPay.dataset.amount = String(o.due - off);
      toPay.replaceChildren(`${t("to_pay")} `, el("b", {}, money(o.due - off)), off ? ` (${t("coupon_discount")} −${money(off)})` : "");
    };
    select.addEventListener("change", () => { chosenCoupon.set(o.id, select.value); show(); });
    if (usable.some((c) => String(c.id) === chosenCoupon.get(o.id))) { select.value = chosenCoupon.get(o.id); show(); }
  }
  const ui = { buttons: [btn, wxBtn].filter(Boolean), msg, select, toPay };
  if (btn) btn.addEventListener("click", () => payOrder(o, ui, "balance"));
  if (wxBtn) wxBtn.addEventListener("click", () => payOrder(o, ui, "wechat"));
  const line = (label, value, testid) => el("div", { class: "kv" }, el("span", { class: "muted" }, label), el("span", { testid }, value));
  return el("li", { class: "order", testid: "order-row", id: `order-${o.id}`, "data-id": o.id, "data-status": o.status },
    el("a", { href: `/lots/${o.lot_id}`, class: "order-photo", tabindex: "-1", "aria-hidden": "true" }, lotPhoto(o.lot_image, title, "order-thumb")),
    el("div", { class: "order-body" },
      el("div", { class: "row between nowrap" },
        el("a", { href: `/lots/${o.lot_id}`, testid: "order-lot" }, el("b", {}, title)),
        el("span", { class: `pill ${o.status}`, testid: "order-status" }, t(`order_${o.status}`))),
      o.session_title ? el("div", { class: "muted" }, o.session_title) : null,
      line(t("order_hammer"), money(o.amount)),
      o.premium ? line(t("order_premium"), `+${money(o.premium)}`) : null,
      o.deposit_credited ? line(t("order_deposit_credited"), `−${money(o.deposit_credited)}`) : null,
      line(t("due"), money(o.due), "order-due"),
      unpaid ? el("div", { class: "muted" }, `${t("pay_by")} ${fmtTime(o.pay_by_ms)}`) : null,
      o.status === "paid" && o.paid_at_ms ? el("div", { class: "muted" }, `${t("order_paid_at")} ${fmtTime(o.paid_at_ms)}`) : null,
      o.status === "forfeited" ? el("div", { class: "muted" }, t("order_forfeited_note")) : null,
      unpaid ? el("div", { class: "pay-row" },
        select ? [el("label", { for: selectId }, t("coupon")), select] : null,
        toPay, el("div", { class: "row" }, btn, wxBtn)) : null,
      msg,
      o.status !== "forfeited" ? el("a", { href: `/api/orders/${o.id}/confirmation.pdf`, testid: "order-confirmation", "data-id": o.id,
        onclick: (e) => { e.preventDefault(); openPdf(o.id, msg); } }, t("bo_confirmation")) : null));
}

async function refresh() {
  const [wal, { orders }, deps, { coupons }] = await Promise.all([
    api("GET", "/api/me/wallet"), api("GET", "/api/me/orders"), api("GET", "/api/me/deposits"),
    api("GET", "/api/me/coupons")]);
  balanceNow = wal.balance;
  if (wallet) { wallet.setBalance(wal.balance); wallet.setPending(wal.pending_topups || [], wal.closed_topups || []); }
  if (!busy) {
    sections.orders.replaceChildren(el("section", { class: "card", "aria-labelledby": "orders-h" },
      el("h2", { id: "orders-h" }, t("my_orders")),
      orders.length ? el("ul", { class: "list orders", testid: "orders" }, orders.slice().reverse().map((o) => orderItem(o, coupons)))
        : el("p", { class: "muted", testid: "no-orders" }, t("no_orders"))));
  }
  const couponRows = coupons.filter((c) => c.usable).map((c) => el("li", { testid: "coupon-row", "data-id": c.id, "data-kind": c.kind },
    el("b", {}, couponLabel(c)), " ", el("span", { class: "muted" }, `${t("coupon_expires")} ${fmtTime(c.expires_at_ms)}`)));
  sections.coupons.replaceChildren(el("section", { class: "card", testid: "coupons", "aria-labelledby": "coupons-h" },
    el("h2", { id: "coupons-h" }, t("my_coupons")),
    couponRows.length ? el("ul", { class: "list plain-list" }, couponRows) : el("p", { class: "muted", testid: "no-coupons" }, t("no_coupons"))));
  sections.deposits.replaceChildren(depositsCard(deps.deposits, orders));
  sections.statement.replaceChildren(statementCard(wal.entries));
  return wal;
}

async function main() {
  if (!token()) { location.href = loginUrl(); return; }
  try {
    const [me, wal] = await Promise.all([api("GET", "/api/me"), api("GET", "/api/me/wallet")]);
    wallet = walletCard({ balance: wal.balance, max: wal.topup_max });
    app.replaceChildren(el("h1", {}, me.username), wallet.node,
      sections.orders, sections.coupons, sections.deposits, sections.statement);
    await refresh();
    userSocket(onSocket);
    fromTheRoom();
  } catch (e) {
    app.replaceChildren(el("p", { class: "notice err", testid: "error", role: "alert" }, errText(e)));
  }
}
// Sent here by a room: `?topup=FEN` (a deposit the balance is short of) fills
// in the top-up, `back=/lots/N` offers the way back; `#order-N` (won: pay now)
// shows that order.
function fromTheRoom() {
  const q = new URLSearchParams(location.search);
  const back = q.get("back") || "";
  if (/^\/lots\/\d+$/.test(back)) {
    wallet.node.append(el("p", { class: "mt8" }, el("a", { href: back, testid: "back-to-lot" }, t("back_to_lot"))));
  }
  const gap = Number(q.get("topup"));
  if (Number.isInteger(gap) && gap > 0) wallet.prefill(gap);
  else if (/^#order-\d+$/.test(location.hash)) {
    const row = document.getElementById(location.hash.slice(1));
    if (row) row.scrollIntoView({ block: "center" });
  }
}

main();
mountOffers();  // second-chance offers, above the page (offers.js)

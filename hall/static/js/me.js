// 我的: balance, orders (pay with balance or WeChat Pay, optionally with a
// coupon), coupons, deposits and the ledger.
import { t, api, token, money, fmtTime, el, header, errText, loginUrl, downloadWithToken } from "./common.js";
import { wechatScene, wechatPayBox, oauthUrl } from "./wxpay.js";
import { mountOffers } from "./offers.js";

const app = document.getElementById("app");
header(() => location.reload());
const pendingTasks = new Map();  // task_id -> order id

function table(testid, head, rows) {
  return el("table", { testid }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

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

// Follow a task until it finishes: its final state (or null after 30 s).
async function taskResult(taskId) {
  for (let i = 0; i < 60; i++) {
    const task = await api("GET", `/api/tasks/${taskId}`);
    if (task.state === "SUCCESS" || task.state === "FAILURE") return task;
    await pause(500);
  }
  return null;
}

function failureText(task) {
  const e = task.error || {};
  return errText(typeof e === "object" ? e : { code: String(e) });
}

// method: "balance" or "wechat" (the scene from where the page runs: a QR
// code on a desktop, WeChat's cashier on a phone, JSAPI inside WeChat).
async function payOrder(order, buttons, msg, select, method) {
  const lock = (on) => { buttons.forEach((b) => { b.disabled = on; }); if (select) select.disabled = on; };
  lock(true);
  msg.textContent = t("paying");
  try {
    const body = { method };
    if (method === "wechat") body.scene = wechatScene();
    if (select && select.value) body.coupon_id = Number(select.value);
    const r = await api("POST", `/api/orders/${order.id}/pay`, body);
    pendingTasks.set(r.task_id, order.id);
    const task = await taskResult(r.task_id);
    if (task && task.state === "SUCCESS" && task.result && task.result.status === "awaiting_payment") {
      msg.replaceChildren(wechatPayBox(task.result));
      await waitUntilPaid(order.id);
    } else if (task && task.state === "FAILURE") {
      msg.textContent = failureText(task);
      lock(false);
      return;
    }
    await main();
  } catch (e) {
    if (method === "wechat" && e.code === "conflict" && wechatScene() === "jsapi") {
      location.href = oauthUrl();  // inside WeChat with no openid bound yet: bind it, come back
      return;
    }
    msg.textContent = errText(e);
    lock(false);
  }
}

// A WeChat payment completes at the gateway: look at the order until it is paid
// (the notification settles it within moments of the payer confirming).
async function waitUntilPaid(orderId) {
  for (;;) {
    await pause(2000);
    const { orders } = await api("GET", "/api/me/orders");
    const o = orders.find((x) => x.id === orderId);
    if (!o || o.status !== "unpaid") return;
  }
}

// 成交确认书: fetched with the token (the API takes no cookie), saved as a file.
async function openPdf(orderId, msg) {
  try {
    await downloadWithToken(`/api/orders/${orderId}/confirmation.pdf`, `confirmation-${orderId}.pdf`);
  } catch (e) { msg.textContent = String(e.message || e); }
}

async function main() {
  if (!token()) { location.href = loginUrl(); return; }
  try {
    const [me, { orders }, deps, { coupons }] = await Promise.all([
      api("GET", "/api/me"), api("GET", "/api/me/orders"), api("GET", "/api/me/deposits"),
      api("GET", "/api/me/coupons")]);
    const orderRows = orders.map((o) => {
      const msg = el("div", { class: "muted", testid: "order-message" });
      const unpaid = o.status === "unpaid";
      const btn = unpaid ? el("button", { class: "primary", type: "button", testid: "order-pay", "data-id": o.id }, t("pay_now")) : null;
      const wxBtn = unpaid && o.due > 0 ? el("button", { type: "button", testid: "order-pay-wechat", "data-id": o.id }, t("pay_wechat")) : null;
      // A coupon picker (when one applies) and the amount actually paid.
      const usable = unpaid && o.due > 0 ? couponsFor(o, coupons) : [];
      const select = usable.length ? el("select", { testid: "order-coupon", "data-id": o.id, "aria-label": t("coupon") },
        el("option", { value: "" }, t("no_coupon")),
        ...usable.map((c) => el("option", { value: c.id }, couponLabel(c)))) : null;
      const toPay = unpaid ? el("div", { class: "muted", testid: "order-to-pay", "data-amount": o.due }, `${t("to_pay")} ${money(o.due)}`) : null;
      if (select) {
        select.addEventListener("change", () => {
          const c = usable.find((x) => String(x.id) === select.value);
          const off = discount(c, o.due);
          toPay.dataset.amount = String(o.due - off);
          toPay.textContent = `${t("to_pay")} ${money(o.due - off)}` + (off ? ` (${t("coupon_discount")} −${money(off)})` : "");
        });
      }
      const buttons = [btn, wxBtn].filter(Boolean);
      if (btn) btn.addEventListener("click", () => payOrder(o, buttons, msg, select, "balance"));
      if (wxBtn) wxBtn.addEventListener("click", () => payOrder(o, buttons, msg, select, "wechat"));
      return el("tr", { testid: "order-row", "data-id": o.id, "data-status": o.status },
        el("td", {}, el("a", { href: `/lots/${o.lot_id}` }, `#${o.lot_id}`)),
        el("td", {}, money(o.amount)), el("td", {}, money(o.due), toPay),
        el("td", { testid: "order-status" }, t(`order_${o.status}`), unpaid ? el("div", { class: "muted" }, `${t("pay_by")} ${fmtTime(o.pay_by_ms)}`) : null),
        el("td", {}, select, btn, wxBtn, msg,
          o.status !== "forfeited" ? el("a", { href: `/api/orders/${o.id}/confirmation.pdf`, testid: "order-confirmation", "data-id": o.id,
            onclick: (e) => { e.preventDefault(); openPdf(o.id, msg); } }, t("bo_confirmation")) : null));
    });
    const couponRows = coupons.filter((c) => c.usable).map((c) => el("li", { testid: "coupon-row", "data-id": c.id, "data-kind": c.kind },
      el("b", {}, couponLabel(c)), " ", el("span", { class: "muted" }, `${t("coupon_expires")} ${fmtTime(c.expires_at_ms)}`)));
    const depRows = deps.deposits.map((d) => el("tr", { testid: "deposit-row", "data-id": d.id },
      el("td", {}, t(`deposit_scope_${d.scope}`), " ", d.lot_id ? el("a", { href: `/lots/${d.lot_id}` }, `#${d.lot_id}`) : `S${d.session_id}`),
      el("td", {}, money(d.amount)), el("td", {}, t(`method_${d.method}`)),
      el("td", {}, t(`dep_${d.status}`) !== `dep_${d.status}` ? t(`dep_${d.status}`) : d.status)));
    const ledRows = deps.ledger.map((e) => el("tr", { testid: "ledger-row" },
      el("td", {}, fmtTime(e.at_ms)), el("td", {}, e.memo || e.kind),
      el("td", {}, (e.amount > 0 ? "+" : "") + money(e.amount)), el("td", {}, money(e.balance_after))));
    app.replaceChildren(
      el("h1", {}, me.username),
      el("div", { class: "card" }, el("div", { class: "muted" }, t("my_balance")), el("div", { class: "price", testid: "balance", "data-amount": me.balance }, money(me.balance))),
      el("div", { class: "card" }, el("h2", {}, t("my_orders")),
        orders.length ? table("orders", [t("order_lot"), t("amount"), t("due"), "", ""], orderRows) : el("p", { class: "muted", testid: "no-orders" }, t("no_orders"))),
      el("div", { class: "card", testid: "coupons" }, el("h2", {}, t("my_coupons")),
        couponRows.length ? el("ul", { class: "list" }, couponRows) : el("p", { class: "muted", testid: "no-coupons" }, t("no_coupons"))),
      el("div", { class: "card" }, el("h2", {}, t("my_deposits")), table("deposits", [t("scope"), t("amount"), t("method"), ""], depRows)),
      el("div", { class: "card" }, el("h2", {}, t("ledger")), table("ledger", [t("time"), t("kind"), t("amount"), t("balance")], ledRows)));
  } catch (e) {
    app.replaceChildren(el("p", { class: "notice err", testid: "error" }, errText(e)));
  }
}
main();
mountOffers();  // second-chance offers, above the page (offers.js)

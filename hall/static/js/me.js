// 我的: balance, orders (pay with balance), deposits and the ledger.
import { t, api, token, money, fmtTime, el, header, errText, loginUrl } from "./common.js";

const app = document.getElementById("app");
header(() => location.reload());
const pendingTasks = new Map();  // task_id -> order id

function table(testid, head, rows) {
  return el("table", { testid }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

async function payOrder(order, btn, msg) {
  btn.disabled = true;
  msg.textContent = t("paying");
  try {
    const r = await api("POST", `/api/orders/${order.id}/pay`, { method: "balance" });
    pendingTasks.set(r.task_id, order.id);
    // Follow the task until it finishes, then refresh.
    for (let i = 0; i < 60; i++) {
      const task = await api("GET", `/api/tasks/${r.task_id}`);
      if (task.state === "SUCCESS" || task.state === "FAILURE") {
        if (task.state === "FAILURE") {
          const e = task.error || {};
          msg.textContent = errText(typeof e === "object" ? e : { code: String(e) });
        }
        break;
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    await main();
  } catch (e) {
    msg.textContent = errText(e);
    btn.disabled = false;
  }
}

async function main() {
  if (!token()) { location.href = loginUrl(); return; }
  try {
    const [me, { orders }, deps] = await Promise.all([
      api("GET", "/api/me"), api("GET", "/api/me/orders"), api("GET", "/api/me/deposits")]);
    const orderRows = orders.map((o) => {
      const msg = el("div", { class: "muted", testid: "order-message" });
      const btn = o.status === "unpaid" ? el("button", { class: "primary", type: "button", testid: "order-pay", "data-id": o.id }, t("pay_now")) : null;
      if (btn) btn.addEventListener("click", () => payOrder(o, btn, msg));
      return el("tr", { testid: "order-row", "data-id": o.id, "data-status": o.status },
        el("td", {}, el("a", { href: `/lots/${o.lot_id}` }, `#${o.lot_id}`)),
        el("td", {}, money(o.amount)), el("td", {}, money(o.due)),
        el("td", { testid: "order-status" }, t(`order_${o.status}`), o.status === "unpaid" ? el("div", { class: "muted" }, `${t("pay_by")} ${fmtTime(o.pay_by_ms)}`) : null),
        el("td", {}, btn, msg));
    });
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
      el("div", { class: "card" }, el("h2", {}, t("my_deposits")), table("deposits", [t("scope"), t("amount"), t("method"), ""], depRows)),
      el("div", { class: "card" }, el("h2", {}, t("ledger")), table("ledger", [t("time"), t("kind"), t("amount"), t("balance")], ledRows)));
  } catch (e) {
    app.replaceChildren(el("p", { class: "notice err", testid: "error" }, errText(e)));
  }
}
main();

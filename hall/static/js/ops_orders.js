// 订单: every order with its payments and refunds, filtered by status and session.
import { t, api, money, fmtTime, el, header, errText, downloadWithToken } from "./common.js";
import { boNav, requireLogin, latest, STALE } from "./bo.js";

const newest = latest();

const app = document.getElementById("app");
header(() => main());
const params = new URLSearchParams(location.search);

function moneyList(items) {
  return items.length ? el("ul", { class: "plain" }, items.map((x) =>
    el("li", {}, `${money(x.amount)} · ${t(`bo_via_${x.method}`)} · ${t(`bo_pst_${x.status}`)} · ${fmtTime(x.at_ms)}`))) : "—";
}

async function pdf(orderId, out) {
  try {
    await downloadWithToken(`/api/orders/${orderId}/confirmation.pdf`, `confirmation-${orderId}.pdf`);
  } catch (e) { out.textContent = String(e.message || e); out.className = "notice err"; }
}

async function load(body, out) {
  const p = new URLSearchParams();
  for (const k of ["status", "session_id"]) if (params.get(k)) p.set(k, params.get(k));
  try {
    const answer = await newest(api("GET", `/api/admin/orders?${p}`));
    if (answer === STALE) return;
    const { orders } = answer;
    body.replaceChildren(...orders.map((o) => el("tr", { testid: "order-row", "data-id": o.id, "data-status": o.status },
      el("td", {}, el("a", { href: `/ops/orders/${o.id}`, testid: "order-open", "aria-label": `${t("bo_order_n")} #${o.id}` }, `#${o.id}`)),
      el("td", {}, el("a", { href: `/lots/${o.lot_id}` }, `#${o.lot_id} ${o.lot_title}`), el("br"),
        el("a", { class: "muted", href: `/ops/sessions/${o.session_id}` }, `${t("bo_session")} #${o.session_id}`)),
      el("td", {}, o.username), el("td", {}, money(o.amount)), el("td", {}, money(o.due)),
      el("td", {}, t(`order_${o.status}`)), el("td", {}, moneyList(o.payments)), el("td", {}, moneyList(o.refunds)),
      el("td", {}, o.status !== "forfeited" ? el("button", { type: "button", testid: "order-pdf", onclick: () => pdf(o.id, out) }, "PDF") : ""))));
    app.querySelector("[data-testid=no-orders]").hidden = orders.length > 0;
  } catch (e) {
    out.textContent = e.code === "forbidden" ? t("not_operator") : errText(e); out.className = "notice err";
  }
}

function main() {
  if (!requireLogin()) return;
  const status = el("select", { id: "o-status", testid: "orders-status" },
    ["", "unpaid", "paid", "forfeited", "refunded"].map((s) => el("option", { value: s, selected: params.get("status") === s || null },
      s ? (s === "refunded" ? t("bo_order_refunded") : t(`order_${s}`)) : t("bo_all"))));
  const session = el("input", { id: "o-session", testid: "orders-session", inputmode: "numeric", value: params.get("session_id") || "" });
  const out = el("div", { class: "notice", role: "status", testid: "orders-message" });
  const body = el("tbody", { testid: "orders-body" });
  const form = el("form", { class: "filters card", role: "search" },
    el("div", {}, el("label", { for: "o-status" }, t("bo_filter_status")), status),
    el("div", {}, el("label", { for: "o-session" }, t("session_id")), session),
    el("div", {}, el("button", { type: "submit", testid: "orders-apply" }, t("bo_apply"))));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    for (const [k, v] of [["status", status.value], ["session_id", session.value.trim()]]) { if (v) params.set(k, v); else params.delete(k); }
    history.replaceState(null, "", `/ops/orders${params.toString() ? "?" + params : ""}`);
    load(body, out);
  });
  app.replaceChildren(boNav("/ops/orders"), el("h1", {}, t("bo_orders")), form, out,
    el("div", { class: "card" }, el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": t("bo_orders") },
      el("table", { testid: "orders" }, el("thead", {}, el("tr", {},
        ["#", t("order_lot"), t("bo_winner"), t("amount"), t("due"), t("bo_filter_status"), t("bo_payments"), t("bo_refunds"), ""].map((h) => el("th", { scope: "col" }, h)))), body)),
      el("p", { class: "muted", testid: "no-orders", hidden: true }, t("bo_no_orders"))));
  load(body, out);
}
main();

// 订单详情: one order as an operator sees it: the lot (title, first photo), its
// session, the winner (to the bidders page), hammer, premium, deposit credited,
// due, status, pay deadline, payments and refunds, the audit entries about it,
// and the sale confirmation PDF.
import { t, api, money, fmtTime, statusText, el, header, errText, downloadWithToken } from "./common.js";
import { boNav, requireLogin } from "./bo.js";
import { thumbOf } from "./gallery.js";

const app = document.getElementById("app");
const orderId = Number(location.pathname.split("/").filter(Boolean).pop());
header(() => main());

function table(testid, label, head, rows, emptyKey) {
  if (!rows.length) return el("p", { class: "muted", testid: `${testid}-none` }, t(emptyKey));
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label },
    el("table", { testid }, el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows)));
}

function fact(testid, key, value) {
  return el("div", { class: "fact" }, el("dt", {}, t(key)), el("dd", { testid }, value));
}

function brief(v) {
  if (v === null || v === undefined) return "";
  const s = JSON.stringify(v);
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}

async function main() {
  if (!requireLogin()) return;
  let o;
  try {
    o = await api("GET", `/api/admin/orders/${orderId}`);
  } catch (e) {
    app.replaceChildren(boNav("/ops/orders"), el("p", { class: "notice err", testid: "error" },
      e.code === "forbidden" ? t("not_operator") : e.code === "not_found" ? t("bo_no_order") : errText(e)));
    return;
  }
  const out = el("div", { class: "notice", role: "status", testid: "order-message" });
  const pdf = o.status !== "forfeited" ? el("button", { type: "button", class: "primary", testid: "order-pdf", onclick: async () => {
    try { await downloadWithToken(`/api/orders/${o.id}/confirmation.pdf`, `confirmation-${o.id}.pdf`); } catch (e) {
      out.textContent = String(e.message || e); out.className = "notice err";
    }
  } }, t("bo_confirmation")) : null;
  const lot = el("div", { class: "card order-lot", testid: "order-lot" },
    o.lot.image ? el("img", { class: "lot-thumb big-thumb", src: thumbOf(o.lot.image), alt: o.lot.title, testid: "order-photo" }) : null,
    el("div", {},
      el("h2", {}, el("a", { href: `/lots/${o.lot.id}`, testid: "order-lot-link" }, `#${o.lot.id} ${o.lot.title}`)),
      el("p", {}, el("a", { href: `/ops/sessions/${o.session.id}`, testid: "order-session" }, `${t("bo_session")} #${o.session.id} ${o.session.title}`),
        " ", el("span", { class: `badge ${o.session.status}` }, statusText(o.session.status))),
      el("p", {}, `${t("bo_winner")} `, el("a", { href: `/ops/users?q=${encodeURIComponent(o.winner.username)}`, testid: "order-winner" }, o.winner.username),
        el("span", { class: "muted" }, ` #${o.winner.id} · ${t(`bo_user_${o.winner.status}`)} · ${t("bo_strikes")} ${o.winner.strikes}`))));
  const facts = el("div", { class: "card" }, el("dl", { class: "facts", testid: "order-facts" },
    fact("order-hammer", "bo_hammer", money(o.amount)), fact("order-premium", "bo_premium", money(o.premium)),
    fact("order-deposit", "bo_deposit_credited", money(o.deposit_credited)), fact("order-due", "due", money(o.due)),
    fact("order-status", "bo_filter_status", el("span", { class: `badge ${o.status === "paid" ? "" : "paused"}` }, t(`order_${o.status}`))),
    fact("order-deadline", "bo_pay_deadline", fmtTime(o.pay_deadline_ms)), fact("order-paid-at", "bo_paid_at", fmtTime(o.paid_at_ms))),
    el("div", { class: "row mt8" }, pdf, el("a", { class: "button", href: `/ops/audit?target=lot:${o.lot.id}`, testid: "order-lot-audit" }, t("bo_audit"))), out);
  const money3 = (x) => [el("td", {}, money(x.amount)), el("td", {}, t(`bo_via_${x.method}`)), el("td", {}, t(`bo_pst_${x.status}`))];
  const payments = table("order-payments", t("bo_payments"), ["#", t("time"), t("amount"), t("method"), t("bo_filter_status")],
    o.payments.map((p) => el("tr", {}, el("td", {}, String(p.id)), el("td", {}, fmtTime(p.at_ms)), ...money3(p))), "bo_no_payments");
  const refunds = table("order-refunds", t("bo_refunds"), ["#", t("time"), t("amount"), t("method"), t("bo_filter_status")],
    o.refunds.map((r) => el("tr", {}, el("td", {}, String(r.id)), el("td", {}, fmtTime(r.at_ms)), ...money3(r))), "bo_no_refunds");
  // A list, not a table: the "after" of an entry is long, and a phone is narrow.
  const trail = o.audit.length ? el("ol", { class: "trail", testid: "order-audit" }, o.audit.map((a) =>
    el("li", { testid: "order-audit-row", "data-action": a.action },
      el("div", { class: "row between" }, el("span", {}, el("code", {}, a.action), " ", el("span", { class: "muted" }, a.target)),
        el("span", { class: "muted" }, `${fmtTime(a.at_ms)} · ${t("bo_actor")} ${a.actor}`)),
      el("div", { class: "mono muted" }, brief(a.after)))))
    : el("p", { class: "muted", testid: "order-audit-none" }, t("bo_no_entries"));
  app.replaceChildren(boNav("/ops/orders"),
    el("p", {}, el("a", { href: "/ops/orders", testid: "order-back" }, `← ${t("bo_orders")}`)),
    el("h1", { testid: "order-title" }, `${t("bo_order_n")} #${o.id}`), lot, facts,
    el("div", { class: "card" }, el("h2", {}, t("bo_payments")), payments),
    el("div", { class: "card" }, el("h2", {}, t("bo_refunds")), refunds),
    el("div", { class: "card" }, el("h2", {}, t("bo_audit_trail")), trail));
}
main();

// 竞买人: search bidders; a bidder's balance, deposits, orders and ledger; ban
// and unban with a reason; credit with a reason (each in the audit log).
import { t, api, money, fmtTime, el, header, errText } from "./common.js";
import { boNav, requireLogin, field, setErr, toFen, latest, STALE } from "./bo.js";

const newest = latest();

const app = document.getElementById("app");
header(() => main());
const current = { list: null, q: "", status: "" };  // the list as filtered now
const reload = () => load(current.list, current.q, current.status);

function table(testid, head, rows) {
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": testid },
    el("table", { testid }, el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows)));
}

async function detail(u, box) {
  const d = await api("GET", `/api/admin/users/${u.id}`);
  const out = el("div", { class: "notice", testid: "user-result", role: "status" });
  const banned = d.status === "banned";
  const reason = field(`ban-reason-${u.id}`, "bo_reason", { maxlength: 200 });
  const banForm = el("form", { testid: "ban-form", novalidate: true }, reason.node,
    el("button", { type: "submit", class: banned ? "" : "primary", testid: banned ? "unban" : "ban" }, t(banned ? "bo_unban" : "bo_ban")));
  banForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!reason.input.value.trim()) { setErr(reason, t("bo_required")); reason.input.focus(); return; }
    setErr(reason, "");
    try {
      await api("POST", `/api/admin/users/${u.id}/${banned ? "unban" : "ban"}`, { reason: reason.input.value.trim() });
      reload();
    } catch (err) { out.textContent = errText(err); out.className = "notice err"; }
  });
  const amount = field(`credit-amount-${u.id}`, "amount", { inputmode: "decimal" });
  const creditReason = field(`credit-reason-${u.id}`, "bo_credit_reason", { maxlength: 200 });
  const creditForm = el("form", { testid: "credit-form", novalidate: true }, el("div", { class: "grid2" }, amount.node, creditReason.node),
    el("button", { type: "submit", testid: "credit" }, t("bo_credit")));
  creditForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const n = Number(amount.input.value);
    if (!amount.input.value.trim() || !Number.isFinite(n) || n <= 0) { setErr(amount, t("bo_positive")); amount.input.focus(); return; }
    setErr(amount, "");
    if (!creditReason.input.value.trim()) { setErr(creditReason, t("bo_required")); creditReason.input.focus(); return; }
    setErr(creditReason, "");
    try {
      const r = await api("POST", `/api/admin/users/${u.id}/credit`, { amount: toFen(amount.input.value), reason: creditReason.input.value.trim() });
      out.textContent = `${t("bo_credit_done")} ${money(r.balance)}`; out.className = "notice ok";
      box.querySelector("[data-testid=detail-balance]").textContent = money(r.balance);
    } catch (err) { out.textContent = errText(err); out.className = "notice err"; }
  });
  box.replaceChildren(
    el("p", {}, `${t("balance")} `, el("b", { testid: "detail-balance" }, money(d.balance)), ` · ${t("bo_strikes")} ${d.strikes}`,
      banned ? el("span", { class: "notice err", testid: "ban-reason" }, `${t("bo_user_banned")}: ${d.ban_reason || ""}`) : null),
    el("div", { class: "grid2" }, banForm, creditForm), out,
    el("h3", {}, t("deposit")),
    table("user-deposits", [t("scope"), t("amount"), t("method"), t("bo_filter_status")], d.deposits.map((x) => el("tr", {},
      el("td", {}, t(`deposit_scope_${x.scope}`), " ", x.lot_id ? `#${x.lot_id}` : `S${x.session_id}`), el("td", {}, money(x.amount)),
      el("td", {}, t(`method_${x.method}`)), el("td", {}, t(`bo_dst_${x.status}`))))),
    el("h3", {}, t("bo_orders")),
    table("user-orders", ["#", t("order_lot"), t("amount"), t("due"), t("bo_filter_status")], d.orders.map((o) => el("tr", {},
      el("td", {}, el("a", { href: `/ops/orders/${o.id}`, testid: "user-order-open" }, `#${o.id}`)),
      el("td", {}, el("a", { href: `/lots/${o.lot_id}` }, `#${o.lot_id}`)), el("td", {}, money(o.amount)),
      el("td", {}, money(o.due)), el("td", {}, t(`order_${o.status}`))))),
    el("h3", {}, t("ledger")),
    table("user-ledger", [t("time"), t("kind"), t("amount"), t("balance")], d.ledger.map((x) => el("tr", {},
      // The kind in words; an operator's credit keeps its reason (the other memos are the system's).
      el("td", {}, t(`bo_lk_${x.kind}`) === `bo_lk_${x.kind}` ? x.memo || x.kind
        : `${t(`bo_lk_${x.kind}`)}${x.kind === "credit" && x.memo && !x.memo.startsWith("credited by operator") ? ` · ${x.memo}` : ""}`), el("td", {}, (x.amount > 0 ? "+" : "") + money(x.amount)),
      el("td", {}, money(x.balance_after))))));
}

async function load(list, q, status) {
  Object.assign(current, { list, q, status });
  const p = new URLSearchParams();
  if (q) p.set("q", q);
  if (status) p.set("status", status);
  try {
    const answer = await newest(api("GET", `/api/admin/users?${p}`));
    if (answer === STALE) return;
    const { users } = answer;
    list.replaceChildren(users.length ? el("ul", { class: "list" }, users.map((u) => {
      const box = el("div", { class: "user-detail", testid: "user-detail", hidden: true });
      const toggle = el("button", { type: "button", testid: "user-toggle", "aria-expanded": "false", onclick: async () => {
        const open = toggle.getAttribute("aria-expanded") === "true";
        toggle.setAttribute("aria-expanded", String(!open));
        box.hidden = open;
        if (!open) await detail(u, box);
      } }, t("bo_details"));
      return el("li", { testid: "user-row", "data-id": u.id, "data-status": u.status, class: "lot-card" },
        el("div", { class: "row between" },
          el("span", {}, el("b", {}, u.username), " ", el("span", { class: `badge ${u.status === "banned" ? "paused" : ""}`, testid: "user-status" }, t(`bo_user_${u.status}`)), el("br"),
            el("span", { class: "muted" }, `#${u.id} · ${t("balance")} ${money(u.balance)} · ${t("bo_strikes")} ${u.strikes}` + (u.phone ? ` · ${u.phone}` : ""))),
          toggle), box);
    })) : el("p", { class: "muted", testid: "no-users" }, t("bo_no_users")));
  } catch (e) {
    list.replaceChildren(el("p", { class: "notice err", testid: "error" }, e.code === "forbidden" ? t("not_operator") : errText(e)));
  }
}

function main() {
  if (!requireLogin()) return;
  const q = el("input", { id: "u-q", testid: "users-q", type: "search" });
  const status = el("select", { id: "u-status", testid: "users-status" },
    ["", "active", "banned"].map((s) => el("option", { value: s }, s ? t(`bo_user_${s}`) : t("bo_all"))));
  const list = el("div", { class: "card", testid: "users" });
  const form = el("form", { class: "filters card", role: "search" },
    el("div", {}, el("label", { for: "u-q" }, t("bo_search_users")), q),
    el("div", {}, el("label", { for: "u-status" }, t("bo_filter_status")), status),
    el("div", {}, el("button", { type: "submit", testid: "users-apply" }, t("bo_apply"))));
  form.addEventListener("submit", (e) => { e.preventDefault(); load(list, q.value.trim(), status.value); });
  app.replaceChildren(boNav("/ops/users"), el("h1", {}, t("bo_users")), form, list);
  // Linked from an order (/ops/users?q=name): that bidder, opened.
  const given = new URLSearchParams(location.search).get("q") || "";
  q.value = given;
  load(list, given, "").then(() => {
    const rows = list.querySelectorAll("[data-testid=user-row]");
    if (given && rows.length === 1) rows[0].querySelector("[data-testid=user-toggle]").click();
  });
}
main();

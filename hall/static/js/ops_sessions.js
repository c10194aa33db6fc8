// 专场管理: every session (drafts too), filtered by status and title -> the editor.
import { t, api, money, fmtTime, statusText, el, header, errText } from "./common.js";
import { boNav, requireLogin, latest, STALE } from "./bo.js";

const newest = latest();

const app = document.getElementById("app");
header(() => main());
const params = new URLSearchParams(location.search);

async function main() {
  if (!requireLogin()) return;
  const status = el("select", { id: "f-status", testid: "filter-status" },
    ["", "draft", "published", "live", "ended"].map((s) => el("option", { value: s, selected: params.get("status") === s || null }, s ? statusText(s) : t("bo_all"))));
  const q = el("input", { id: "f-q", testid: "filter-q", type: "search", value: params.get("q") || "" });
  const form = el("form", { class: "filters card", testid: "filters", role: "search" },
    el("div", {}, el("label", { for: "f-status" }, t("bo_filter_status")), status),
    el("div", {}, el("label", { for: "f-q" }, t("bo_search")), q),
    el("div", {}, el("button", { type: "submit" }, t("bo_apply"))));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (status.value) p.set("status", status.value);
    if (q.value) p.set("q", q.value);
    history.replaceState(null, "", `/ops/sessions${p.toString() ? "?" + p : ""}`);
    params.delete("status"); params.delete("q");
    for (const [k, v] of p) params.set(k, v);
    load(list);
  });
  const list = el("div", { class: "card", testid: "sessions" });
  app.replaceChildren(boNav("/ops/sessions"),
    el("div", { class: "row between" }, el("h1", {}, t("bo_sessions")),
      el("a", { href: "/ops/sessions/new", class: "button primary", testid: "new-session" }, t("bo_new_session"))),
    form, list);
  load(list);
}

async function load(list) {
  const p = new URLSearchParams();
  if (params.get("status")) p.set("status", params.get("status"));
  if (params.get("q")) p.set("q", params.get("q"));
  try {
    const answer = await newest(api("GET", `/api/admin/sessions?${p}`));
    if (answer === STALE) return;
    const { sessions } = answer;
    list.replaceChildren(sessions.length ? el("ul", { class: "list", testid: "session-rows" }, sessions.map((s) => el("li", {},
      el("a", { href: `/ops/sessions/${s.id}`, testid: "session-row", "data-id": s.id, "data-status": s.status },
        el("span", {}, el("b", {}, `#${s.id} ${s.title}`), el("br"),
          el("span", { class: "muted" }, `${s.lot_count} ${t("lots_count")} · ${t("deposit")} ${money(s.deposit_amount)}`
            + (s.starts_at_ms ? ` · ${t("starts_at")} ${fmtTime(s.starts_at_ms)}` : "") + ` · ${t("bo_created")} ${fmtTime(s.created_at_ms)}`)),
        el("span", { class: `badge ${s.status}` }, statusText(s.status))))))
      : el("p", { class: "muted", testid: "no-sessions" }, t("no_sessions")));
  } catch (e) {
    list.replaceChildren(el("p", { class: "notice err", testid: "error" }, e.code === "forbidden" ? t("not_operator") : errText(e)));
  }
}
main();

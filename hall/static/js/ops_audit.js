// 审计日志: the append-only audit log, filtered by target, action and operator,
// oldest first, paged by id ("more" loads the next page). Read only.
import { t, api, fmtTime, el, header, errText } from "./common.js";
import { boNav, requireLogin, latest, STALE } from "./bo.js";

const newest = latest();

const app = document.getElementById("app");
header(() => main());
let lastId = 0;

function filterInput(id, key, attrs = {}) {
  return el("div", {}, el("label", { for: id }, t(key)), el("input", { id, testid: id, ...attrs }));
}

const show = (v) => (v === null || v === undefined ? "—" : JSON.stringify(v));

async function load(body, more, reset) {
  const p = new URLSearchParams();
  for (const k of ["target", "action", "actor_id"]) {
    const v = app.querySelector(`#a-${k}`).value.trim();
    if (v) p.set(k, v);
  }
  if (reset) { lastId = 0; body.replaceChildren(); }
  p.set("since_id", String(lastId));
  p.set("limit", "100");
  try {
    const answer = await newest(api("GET", `/api/admin/audit?${p}`));
    if (answer === STALE) return;
    const { entries } = answer;
    for (const e of entries) {
      lastId = e.id;
      body.append(el("tr", { testid: "audit-row", "data-action": e.action, "data-target": e.target },
        el("td", {}, String(e.id)), el("td", {}, fmtTime(e.at_ms)), el("td", {}, e.actor),
        el("td", {}, el("code", {}, e.action)), el("td", {}, e.target),
        el("td", { class: "mono" }, show(e.before)), el("td", { class: "mono" }, show(e.after))));
    }
    more.hidden = entries.length < 100;
    app.querySelector("[data-testid=no-entries]").hidden = body.children.length > 0;
    app.querySelector("[data-testid=audit-error]").textContent = "";
  } catch (e) {
    app.querySelector("[data-testid=audit-error]").textContent = e.code === "forbidden" ? t("not_operator") : errText(e);
  }
}

function main() {
  if (!requireLogin()) return;
  const body = el("tbody", { testid: "audit-body" });
  const more = el("button", { type: "button", testid: "audit-more", hidden: true, onclick: () => load(body, more, false) }, t("bo_more"));
  const form = el("form", { class: "filters card", role: "search", testid: "audit-filters" },
    filterInput("a-target", "bo_target", { placeholder: "lot:12 / user / session:3" }),
    filterInput("a-action", "bo_action", { placeholder: "lot.hammer / money" }),
    filterInput("a-actor_id", "bo_actor", { inputmode: "numeric", placeholder: "ID" }),
    el("div", {}, el("button", { type: "submit", testid: "audit-apply" }, t("bo_apply"))));
  form.addEventListener("submit", (e) => { e.preventDefault(); load(body, more, true); });
  app.replaceChildren(boNav("/ops/audit"), el("h1", {}, t("bo_audit")), form,
    el("div", { class: "card" },
      el("p", { class: "notice err", testid: "audit-error", role: "alert" }),
      el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": t("bo_audit") }, el("table", { testid: "audit" },
        el("thead", {}, el("tr", {}, ["#", t("time"), t("bo_actor"), t("bo_action"), t("bo_target"), t("bo_before"), t("bo_after")].map((h) => el("th", { scope: "col" }, h)))),
        body)),
      el("p", { class: "muted", testid: "no-entries", hidden: true }, t("bo_no_entries")), more));
  // Linked from other pages with a filter (/ops/audit?target=lot:12).
  const given = new URLSearchParams(location.search);
  for (const k of ["target", "action", "actor_id"]) if (given.get(k)) app.querySelector(`#a-${k}`).value = given.get(k);
  load(body, more, true);
}
main();

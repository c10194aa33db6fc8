// 任务: money and lot tasks found by lot, session, user, state or kind; a failed
// idempotent money task can be run again.
import { t, api, fmtTime, el, header, errText } from "./common.js";
import { boNav, requireLogin, latest, STALE } from "./bo.js";

const newest = latest();

const app = document.getElementById("app");
header(() => main());
const params = new URLSearchParams(location.search);
const FILTERS = [["lot_id", "bo_lot_id"], ["session_id", "session_id"], ["user_id", "user_id"]];

async function rerun(job, out, reload) {
  try {
    const r = await api("POST", `/api/admin/jobs/${job.task_id}/rerun`);
    out.textContent = `${t("bo_rerun_done")}: ${r.task_id}`; out.className = "notice ok";
    reload();
  } catch (e) { out.textContent = e.message || errText(e); out.className = "notice err"; }
}

async function load(body, out) {
  try {
    const answer = await newest(api("GET", `/api/admin/jobs?${params}`));
    if (answer === STALE) return;
    const { jobs } = answer;
    const reload = () => load(body, out);
    body.replaceChildren(...jobs.map((j) => el("tr", { testid: "job-row", "data-state": j.state, "data-kind": j.kind },
      el("td", { class: "mono id" }, j.task_id.slice(0, 8)), el("td", {}, j.kind),
      el("td", {}, j.lot_id ? el("a", { href: `/lots/${j.lot_id}` }, `#${j.lot_id}`) : "—"),
      el("td", {}, j.session_id ? el("a", { href: `/ops/sessions/${j.session_id}` }, `#${j.session_id}`) : "—"),
      el("td", {}, j.user_id ? `#${j.user_id}` : "—"),
      el("td", {}, el("span", { class: `badge ${j.state === "FAILURE" ? "paused" : ""}`, testid: "job-state" }, t(`bo_js_${j.state}`))),
      el("td", {}, String(j.retries)), el("td", { class: "mono" }, j.error || ""),
      el("td", {}, fmtTime(j.started_at_ms).slice(5)),
      el("td", { testid: "job-wait" }, j.wait_ms === null || j.wait_ms === undefined ? "—" : `${j.wait_ms} ms`),
      el("td", {}, j.duration_ms === null ? "—" : `${j.duration_ms} ms`),
      el("td", {}, j.rerunnable ? el("button", { type: "button", testid: "job-rerun", onclick: () => rerun(j, out, reload) }, t("bo_rerun")) : ""))));
    app.querySelector("[data-testid=no-jobs]").hidden = jobs.length > 0;
  } catch (e) { out.textContent = e.code === "forbidden" ? t("not_operator") : errText(e); out.className = "notice err"; }
}

function main() {
  if (!requireLogin()) return;
  const inputs = FILTERS.map(([k, key]) => [k, el("div", {}, el("label", { for: `j-${k}` }, t(key)),
    el("input", { id: `j-${k}`, testid: `jobs-${k}`, inputmode: "numeric", value: params.get(k) || "" }))]);
  const state = el("select", { id: "j-state", testid: "jobs-state" }, ["", "FAILURE", "SUCCESS", "RETRY", "PENDING"].map((s) =>
    el("option", { value: s, selected: params.get("state") === s || null }, s ? t(`bo_js_${s}`) : t("bo_all"))));
  const out = el("div", { class: "notice", role: "status", testid: "jobs-message" });
  const body = el("tbody", { testid: "jobs-body" });
  const form = el("form", { class: "filters card", role: "search" }, ...inputs.map(([, n]) => n),
    el("div", {}, el("label", { for: "j-state" }, t("bo_job_state")), state),
    el("div", {}, el("button", { type: "submit", testid: "jobs-apply" }, t("bo_apply"))));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    for (const [k] of FILTERS) { const v = app.querySelector(`#j-${k}`).value.trim(); if (v) params.set(k, v); else params.delete(k); }
    if (state.value) params.set("state", state.value); else params.delete("state");
    history.replaceState(null, "", `/ops/jobs${params.toString() ? "?" + params : ""}`);
    load(body, out);
  });
  app.replaceChildren(boNav("/ops/jobs"), el("h1", {}, t("bo_jobs")), form, out,
    el("div", { class: "card" }, el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": t("bo_jobs") },
      el("table", { testid: "jobs" }, el("thead", {}, el("tr", {}, ["ID", t("bo_job_kind"), t("bo_lot_id"), t("session_id"), t("user_id"),
        t("bo_job_state"), t("bo_job_retries"), t("bo_job_error"), t("time"), t("bo_job_wait"), t("bo_job_duration"), ""].map((h) => el("th", { scope: "col" }, h)))), body)),
      el("p", { class: "muted", testid: "no-jobs", hidden: true }, t("bo_no_jobs"))));
  load(body, out);
}
main();

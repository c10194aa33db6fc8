// Shared by the back-office pages: their navigation, field helpers with the
// error shown next to the field, yuan <-> fen.
import { t, el, token, loginUrl } from "./common.js";

export const PAGES = [["/ops/sessions", "bo_sessions"], ["/ops/users", "bo_users"], ["/ops/orders", "bo_orders"],
  ["/ops/jobs", "bo_jobs"], ["/ops/audit", "bo_audit"], ["/ops", "bo_live"]];

export function boNav(current) {
  return el("nav", { class: "bo-nav", "aria-label": t("ops_title") },
    PAGES.map(([href, key]) => el("a", { href, testid: `bo-nav-${key}`, "aria-current": href === current ? "page" : null }, t(key))));
}

export function requireLogin() {
  if (!token()) { location.href = loginUrl(); return false; }
  return true;
}

// A list's loads answered out of order (a slow first load arriving after a quick
// filter's) must not overwrite the newer answer: each list wraps its request in
// its own `latest()`, which resolves STALE for any but the last one asked.
export const STALE = Symbol("stale");
export function latest() {
  let asked = 0;
  return async (request) => {
    const mine = ++asked;
    const answer = await request;
    return mine === asked ? answer : STALE;
  };
}

export const toFen = (v) => Math.round(Number(v) * 100);
export const toYuan = (fen) => (fen === null || fen === undefined ? "" : (fen / 100).toFixed(2));

// A labelled input with its own error line (aria-describedby), as WCAG asks.
export function field(id, labelKey, attrs = {}, tag = "input") {
  const err = el("p", { class: "field-err", id: `${id}-err`, testid: `${id}-err`, "aria-live": "polite" });
  const input = el(tag, { id, name: id, testid: id, "aria-describedby": `${id}-err`, ...attrs });
  return { input, err, node: el("div", { class: "field" }, el("label", { for: id }, t(labelKey)), input, err) };
}

export function setErr(f, msg) {
  f.err.textContent = msg || "";
  if (msg) f.input.setAttribute("aria-invalid", "true"); else f.input.removeAttribute("aria-invalid");
}

// The server names the field in its message ("start_price must be ..."): put it there.
export function placeServerError(fields, err, fallback) {
  const msg = (err && err.message) || "";
  for (const [name, f] of Object.entries(fields)) {
    if (msg.startsWith(name) || msg.includes(` ${name} `) || msg.includes(`${name}:`)) { setErr(f, msg); f.input.focus(); return; }
  }
  fallback(msg || t("error"));
}

// datetime-local <-> epoch ms in the browser's time zone.
export function toLocalInput(ms) {
  if (!ms) return "";
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}
export function fromLocalInput(v) { return v ? new Date(v).getTime() : null; }

// -- checks in the form, before anything is sent -----------------------------------
export function checkMoney(f, { required = true, zero = false } = {}) {
  const v = f.input.value.trim();
  if (!v) { if (required) { setErr(f, t("bo_required")); return false; } setErr(f, ""); return true; }
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (!zero && n === 0)) { setErr(f, t(zero ? "bo_nonneg" : "bo_positive")); return false; }
  setErr(f, ""); return true;
}
export function checkInt(f, { required = true, min = 0 } = {}) {
  const v = f.input.value.trim();
  if (!v) { if (required) { setErr(f, t("bo_required")); return false; } setErr(f, ""); return true; }
  if (!/^\d+$/.test(v) || Number(v) < min) { setErr(f, t("bo_whole")); return false; }
  setErr(f, ""); return true;
}
export function checkText(f) {
  if (!f.input.value.trim()) { setErr(f, t("bo_required")); return false; }
  setErr(f, ""); return true;
}

// A lot's deadline, as the session editor and the live console set it:
// minutes after the session opens (the default; counted from when it really
// opens, so a late publish does not eat the time), or a date and time.
// `read()` is the API's fields ({ends_after_start_s} or {ends_at_ms}), or null
// with the error shown next to the field.
export function deadlinePicker(p, lot) {
  const minutes = field(`${p}-minutes`, "bo_minutes", { inputmode: "numeric",
    value: lot && lot.ends_after_start_s ? String(Math.round(lot.ends_after_start_s / 60)) : "30" });
  const time = field(`${p}-time`, "bo_time", { type: "datetime-local", value: lot ? toLocalInput(lot.ends_at_ms || lot.deadline_ms) : "" });
  const mode = lot && !lot.ends_after_start_s ? "time" : "duration";
  const radio = (value, key) => el("label", { class: "inline" }, el("input", { type: "radio", name: `${p}-mode`, value,
    testid: `${p}-mode-${value}`, checked: mode === value || null }), t(key));
  const node = el("fieldset", { testid: `${p}-deadline` }, el("legend", {}, t("bo_deadline")),
    radio("duration", "bo_deadline_duration"), radio("time", "bo_deadline_time"), minutes.node, time.node);
  const sync = () => {
    const m = node.querySelector("input[type=radio]:checked").value;
    minutes.node.hidden = m !== "duration";
    time.node.hidden = m !== "time";
    return m;
  };
  node.addEventListener("change", sync);
  sync();
  const read = () => {
    if (sync() === "duration") {
      return checkInt(minutes, { min: 1 }) ? { ends_after_start_s: Number(minutes.input.value) * 60 } : null;
    }
    const at = fromLocalInput(time.input.value);
    if (!at) { setErr(time, t("bo_required")); return null; }
    if (at <= Date.now()) { setErr(time, t("bo_future")); return null; }
    setErr(time, "");
    return { ends_at_ms: at };
  };
  return { node, read, fields: { ends_after_start_s: minutes, ends_at_ms: time } };
}

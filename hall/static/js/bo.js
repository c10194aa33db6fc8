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

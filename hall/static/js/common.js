// Shared helpers: token, JSON API, money/time formatting, page header.
import { t, lang, setLang, applyI18n } from "./i18n.js";

export { t };

// The token for HTTP calls (Authorization: Bearer). Sockets never carry it in
// their URL: the hall's HttpOnly login cookie goes with the handshake.
export function token() { return localStorage.getItem("token") || ""; }
export function setToken(tok) { if (tok) localStorage.setItem("token", tok); else localStorage.removeItem("token"); }

// Log out: the hall revokes the token and clears the cookie; then forget it here.
export async function logout() {
  try { await api("POST", "/api/auth/logout"); } catch (_) { /* revoked or expired already */ }
  setToken("");
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || "network";
    this.body = body;
  }
}

export async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  const tok = token();
  if (tok) headers.Authorization = `Bearer ${tok}`;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { code: "network", message: String(e) });
  }
  let data = null;
  try { data = await resp.json(); } catch (_) { data = null; }
  if (!resp.ok) {
    if (resp.status === 401 && tok) setToken("");
    throw new ApiError(resp.status, data);
  }
  return data;
}

// `invalid` answers say what was wrong in their message (hall/validate.py):
// the known ones in the page's language, any other as the server wrote it.
const INVALID = [
  [/whole number of increments/, "err_invalid_increment"],
  [/^username/, "err_invalid_username"],
  [/^password/, "err_invalid_password"],
  [/^phone/, "err_invalid_phone"],
  [/^\w+ is required/, "err_invalid_required"],
  [/^scene/, "err_invalid_scene"],
  [/^(amount|max_amount) must be an integer/, "err_invalid_amount_int"],
  [/^(amount|max_amount) must be (between|from)/, "err_invalid_amount_range"],
  // Other money fields (the back office): "{field} must be between 1 and N fen" and the like.
  [/^(\w+) must be an integer number of fen/, "err_invalid_field_int"],
  [/^(\w+) must be between 1 and \d+ fen/, "err_invalid_field_positive"],
  [/^(\w+) must be (between|from|an integer from)/, "err_invalid_field_range"],
];

export function errText(err) {
  const code = err && err.code;
  const message = (err && err.message) || "";
  if (code === "invalid") {
    const hit = INVALID.find(([re]) => re.test(message));
    if (hit) {
      const field = (hit[0].exec(message) || [])[1];
      const name = field && t(`field_${field}`) !== `field_${field}` ? t(`field_${field}`) : null;
      if (hit[1].startsWith("err_invalid_field_")) {
        return name ? fill(t(hit[1]), { field: name }) : `${t("err_invalid")}${t("colon")}${message}`;
      }
      return t(hit[1]);
    }
    return message ? `${t("err_invalid")}${t("colon")}${message}` : t("err_invalid");
  }
  const key = `err_${code}`;
  const msg = t(key);
  return msg !== key ? msg : message || t("error");
}

// "{name}" placeholders of a string filled in: fill(t("short_balance"), {need: ...}).
export function fill(text, vars) {
  return text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

const nf = new Intl.NumberFormat("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
// ¥1,234.50; a negative amount as −¥200.00 (the minus sign before the currency).
export function money(fen) {
  if (fen === null || fen === undefined) return "—";
  return `${fen < 0 ? "−" : ""}¥${nf.format(Math.abs(fen) / 100)}`;
}

// A signed amount for statements: +¥200.00 / −¥200.00.
export function signedMoney(fen) {
  return `${fen > 0 ? "+" : ""}${money(fen)}`;
}

// Time left in words: "2天3小时" / "2d 3h", "12分30秒" / "12m 30s".
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  const parts = d ? [[d, "dur_d"], [h, "dur_h"]] : h ? [[h, "dur_h"], [m, "dur_m"]] : [[m, "dur_m"], [s % 60, "dur_s"]];
  const shown = parts.filter(([n]) => n);
  return (shown.length ? shown : parts.slice(-1)).map(([n, k]) => `${n}${t(k)}`).join("").trim();
}

export function fmtTime(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function statusText(s) { return t(`status_${s}`); }

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;  // CSSOM: allowed by the pages' CSP (no inline style attributes)
    else if (k === "testid") e.dataset.testid = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function loginUrl() {
  return `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
}

// The back office in the header, for operators only (the role the hall says
// this token has; remembered per token for this tab so it does not flicker).
const OPS_LINKS = [["/ops/sessions", "nav_ops_sessions"], ["/ops", "nav_ops_live"], ["/ops/users", "nav_ops_users"],
  ["/ops/orders", "nav_ops_orders"], ["/ops/jobs", "nav_ops_jobs"], ["/ops/audit", "nav_ops_audit"]];
function knownRole() {
  try { const r = JSON.parse(sessionStorage.getItem("role") || "null"); return r && r.tok === token() ? r.role : null; } catch (_) { return null; }
}
function opsNav() {
  if (!token() || knownRole() !== "operator") return null;
  const here = location.pathname;
  const current = OPS_LINKS.map(([href]) => href).filter((href) => here === href || here.startsWith(`${href}/`)).sort((a, b) => b.length - a.length)[0];
  return el("nav", { class: "ops-nav", testid: "nav-ops", "aria-label": t("bo_back_office") },
    el("span", { class: "ops-label", "aria-hidden": "true" }, `${t("nav_ops")}:`),
    OPS_LINKS.map(([href, key]) => el("a", { href, testid: `nav-${key}`, "aria-current": href === current ? "page" : null }, t(key))));
}

// The header: brand, navigation, language switch. Calls onLang after switching.
export function header(onLang) {
  const h = document.querySelector("header.top") || document.body.insertBefore(el("header", { class: "top" }), document.body.firstChild);
  if (token()) {
    const tok = token();
    api("GET", "/api/me").then((me) => {
      const before = knownRole();
      sessionStorage.setItem("role", JSON.stringify({ tok, role: me.role }));
      if (before !== me.role) render();
    }).catch(() => { /* logged out or offline: no back-office links */ });
  }
  const render = () => {
    h.replaceChildren(
      el("a", { href: "/", class: "brand", testid: "nav-home" }, t("brand")),
      el("nav", {},
        el("a", { href: "/", testid: "nav-sessions" }, t("nav_home")),
        token() ? el("a", { href: "/me", testid: "nav-me" }, t("nav_me"))
                : el("a", { href: loginUrl(), testid: "nav-login" }, t("nav_login")),
        token() ? el("a", { href: "#", testid: "nav-logout", onclick: async (e) => { e.preventDefault(); await logout(); location.reload(); } }, t("nav_logout")) : null,
        el("button", { class: "lang", type: "button", testid: "lang-switch", onclick: () => {
          setLang(lang() === "en" ? "zh" : "en");
          render();
          applyI18n();
          if (onLang) onLang();
        } }, t("lang_switch"))),
      ...[opsNav()].filter(Boolean));
  };
  render();
  applyI18n();
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// 成交确认书 and other files the API serves only with the token (no cookie):
// fetched, then saved under `filename`; a failure throws its message.
export async function downloadWithToken(path, filename) {
  const resp = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
  if (!resp.ok) throw new Error(((await resp.json().catch(() => null)) || {}).message || t("error"));
  const url = URL.createObjectURL(await resp.blob());
  const a = el("a", { href: url, download: filename });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

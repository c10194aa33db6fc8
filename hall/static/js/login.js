// Login / register: POST /api/auth/login|register, keep the token, go back.
import { t, api, setToken, el, header, errText } from "./common.js";

const app = document.getElementById("app");
header(() => location.reload());
let mode = new URLSearchParams(location.search).get("mode") === "register" ? "register" : "login";

function next() {
  const n = new URLSearchParams(location.search).get("next") || "/";
  return n.startsWith("/") && !n.startsWith("//") ? n : "/";
}

function render() {
  // Each label tied to its input (for=/id); the error is announced and tied to the fields.
  const user = el("input", { id: "login-username", name: "username", autocomplete: "username", required: true, testid: "login-username" });
  const pass = el("input", { id: "login-password", name: "password", type: "password", autocomplete: mode === "login" ? "current-password" : "new-password", required: true, testid: "login-password" });
  const phone = el("input", { id: "login-phone", name: "phone", type: "tel", autocomplete: "tel", testid: "login-phone" });
  const msg = el("div", { class: "notice err", id: "login-error", testid: "login-error", role: "alert" });
  // A message about one field goes under that field (and is tied to it).
  const fieldErr = {};
  for (const [name, input] of [["username", user], ["password", pass], ["phone", phone]]) {
    fieldErr[name] = el("p", { class: "field-err", id: `login-${name}-error`, testid: `login-${name}-error`, role: "alert" });
    input.setAttribute("aria-describedby", `login-${name}-error login-error`);
  }
  const form = el("form", { class: "card", testid: `${mode}-form` },
    el("label", { for: "login-username" }, t("username")), user, fieldErr.username,
    el("label", { for: "login-password" }, t("password")), pass, fieldErr.password,
    mode === "register" ? [el("label", { for: "login-phone" }, t("phone")), phone, fieldErr.phone] : null,
    el("div", { style: "margin-top:12px" }, el("button", { class: "primary big", type: "submit", testid: "login-submit" }, t(mode))),
    msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    Object.values(fieldErr).forEach((p) => { p.textContent = ""; });
    const body = { username: user.value.trim(), password: pass.value };
    if (mode === "register" && phone.value.trim()) body.phone = phone.value.trim();
    try {
      const r = await api("POST", `/api/auth/${mode}`, body);
      setToken(r.token);
      localStorage.setItem("user", JSON.stringify(r.user));
      location.href = next();
    } catch (err) {
      // The server's own words for `invalid` (too short a password, a bad
      // username), mapped to the page's language where known (common.js).
      const text = err.code === "unauthorized" ? t("err_login_failed")
        : err.code === "conflict" ? t("err_username_taken") : errText(err);
      const field = err.code === "conflict" ? ["", "username"]
        : /^(username|password|phone)\b/.exec((err && err.message) || "");
      const bad = field ? { username: user, password: pass, phone }[field[1]] : null;
      [user, pass, phone].forEach((f) => f.removeAttribute("aria-invalid"));
      if (bad) {
        fieldErr[field[1]].textContent = text;
        bad.setAttribute("aria-invalid", "true");
        bad.focus();
      } else {
        msg.textContent = text;
      }
      msg.dataset.code = err.code;
    }
  });
  const toggle = el("a", { href: "#", testid: "login-toggle", onclick: (e) => { e.preventDefault(); mode = mode === "login" ? "register" : "login"; render(); } },
    mode === "login" ? t("no_account") : t("have_account"));
  app.replaceChildren(el("h1", {}, t(mode)), form, toggle);
}
// Back from the official account's OAuth (inside WeChat): trade the one-time
// ticket for a token (hall/handlers/wechat.py), then go on. Else the form, with
// "log in with WeChat" inside WeChat's browser.
const ticket = new URLSearchParams(location.search).get("wechat_ticket");
if (ticket) {
  app.replaceChildren(el("p", { class: "notice", testid: "wechat-login-wait", role: "status" }, t("wechat_logging_in")));
  api("POST", "/api/auth/wechat/ticket", { ticket }).then((r) => {
    setToken(r.token);
    localStorage.setItem("user", JSON.stringify(r.user));
    location.replace(next());
  }, () => { render(); app.prepend(el("p", { class: "notice err", role: "alert", testid: "wechat-login-error" }, t("err_wechat_ticket"))); });
} else {
  render();
  if (/MicroMessenger/i.test(navigator.userAgent)) {
    app.append(el("p", {}, el("a", { class: "button primary", testid: "wechat-login",
      href: `/api/auth/wechat/oauth?next=${encodeURIComponent(next())}` }, t("wechat_login"))));
  }
}

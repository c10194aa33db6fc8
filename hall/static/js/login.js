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
  const user = el("input", { name: "username", autocomplete: "username", required: true, testid: "login-username" });
  const pass = el("input", { name: "password", type: "password", autocomplete: mode === "login" ? "current-password" : "new-password", required: true, testid: "login-password" });
  const phone = el("input", { name: "phone", type: "tel", testid: "login-phone" });
  const msg = el("div", { class: "notice err", testid: "login-error", role: "alert" });
  const form = el("form", { class: "card", testid: `${mode}-form` },
    el("label", {}, t("username")), user,
    el("label", {}, t("password")), pass,
    mode === "register" ? [el("label", {}, t("phone")), phone] : null,
    el("div", { style: "margin-top:12px" }, el("button", { class: "primary big", type: "submit", testid: "login-submit" }, t(mode))),
    msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    const body = { username: user.value.trim(), password: pass.value };
    if (mode === "register" && phone.value.trim()) body.phone = phone.value.trim();
    try {
      const r = await api("POST", `/api/auth/${mode}`, body);
      setToken(r.token);
      localStorage.setItem("user", JSON.stringify(r.user));
      location.href = next();
    } catch (err) {
      msg.textContent = errText(err);
      msg.dataset.code = err.code;
    }
  });
  const toggle = el("a", { href: "#", testid: "login-toggle", onclick: (e) => { e.preventDefault(); mode = mode === "login" ? "register" : "login"; render(); } },
    mode === "login" ? t("no_account") : t("have_account"));
  app.replaceChildren(el("h1", {}, t(mode)), form, toggle);
}
render();

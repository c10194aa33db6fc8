// 专场列表: GET /api/sessions -> links to /sessions/{id}.
import { t, api, money, fmtTime, statusText, el, header, errText } from "./common.js";

const app = document.getElementById("app");
header(() => location.reload());

async function main() {
  try {
    const { sessions } = await api("GET", "/api/sessions");
    const list = el("ul", { class: "list", testid: "session-list" },
      sessions.map((s) => el("li", {},
        el("a", { href: `/sessions/${s.id}`, testid: "session-link", "data-id": s.id },
          el("span", {}, el("b", {}, s.title), el("br"),
            el("span", { class: "muted" }, `${s.lot_count ?? 0} ${t("lots_count")} · ${t("deposit")} ${money(s.deposit_amount)}`
              + (s.starts_at_ms ? ` · ${t("starts_at")} ${fmtTime(s.starts_at_ms)}` : ""))),
          el("span", { class: `badge ${s.status}` }, statusText(s.status))))));
    app.replaceChildren(el("h1", {}, t("sessions")),
      el("div", { class: "card" }, sessions.length ? list : el("p", { class: "muted", testid: "no-sessions" }, t("no_sessions"))));
  } catch (e) {
    app.replaceChildren(el("p", { class: "notice err", testid: "error" }, errText(e)));
  }
}
main();

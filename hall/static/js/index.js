// 专场列表: GET /api/sessions -> links to /sessions/{id}, each with its cover
// photo (or a placeholder), status, lot count, deposit and when it ends.
import { t, api, money, fmtTime, statusText, el, header, errText, duration } from "./common.js";
import { lotPhoto } from "./lists.js";

const app = document.getElementById("app");
header(() => location.reload());

function when(s, now) {
  if (s.status === "ended") return el("span", { testid: "session-when" }, t("ended"));
  if (s.status === "live" && s.last_ends_at_ms) {
    const left = s.last_ends_at_ms - now;
    return el("span", { testid: "session-when", class: left < 60000 ? "left soon" : "left" },
      left > 0 ? `${t("time_left")} ${duration(left)}` : t("ended"));
  }
  if (s.starts_at_ms && s.starts_at_ms > now) return el("span", { testid: "session-when" }, `${t("starts_at")} ${fmtTime(s.starts_at_ms)}`);
  if (s.last_ends_at_ms) return el("span", { testid: "session-when" }, `${t("ends_at")} ${fmtTime(s.last_ends_at_ms)}`);
  return null;
}

async function main() {
  try {
    const { sessions } = await api("GET", "/api/sessions");
    const render = () => {
      const now = Date.now();
      return el("ul", { class: "list", testid: "session-list" },
        sessions.map((s) => el("li", {},
          el("a", { href: `/sessions/${s.id}`, testid: "session-link", "data-id": s.id },
            lotPhoto(s.cover, s.title),
            el("span", { class: "grow" }, el("b", {}, s.title),
              el("span", { class: "muted meta" },
                el("span", {}, `${s.lot_count ?? 0} ${t(s.lot_count === 1 ? "lots_count_one" : "lots_count")}`),
                el("span", {}, `${t("deposit")} ${money(s.deposit_amount)}`),
                when(s, now))),
            el("span", { class: `badge ${s.status}`, testid: "session-status" }, statusText(s.status))))));
    };
    const card = el("div", { class: "card" }, sessions.length ? render() : el("p", { class: "muted", testid: "no-sessions" }, t("no_sessions")));
    app.replaceChildren(el("h1", {}, t("sessions")), card);
    if (sessions.length) setInterval(() => card.replaceChildren(render()), 30000);
  } catch (e) {
    app.replaceChildren(el("p", { class: "notice err", testid: "error", role: "alert" }, errText(e)));
  }
}
main();

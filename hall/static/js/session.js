// 专场详细: GET /api/sessions/{id} with its lots -> links to /lots/{id}, each
// with its photo (or a placeholder), current price, time left and status.
import { t, api, money, fmtTime, statusText, el, header, errText, duration } from "./common.js";
import { gallery } from "./gallery.js";
import { lotPhoto } from "./lists.js";

const app = document.getElementById("app");
const sid = Number(location.pathname.split("/").filter(Boolean).pop());
header(() => location.reload());

function timeLeft(l, now) {
  if (l.status === "closed" || l.status === "settled") return el("span", { testid: "lot-when" }, t("ended"));
  if (!l.deadline_ms) return null;
  if (l.status === "live") {
    const left = l.deadline_ms - now;
    return el("span", { testid: "lot-when", class: left < 60000 ? "left soon" : "left" },
      left > 0 ? `${t("time_left")} ${duration(left)}` : t("ended"));
  }
  return el("span", { testid: "lot-when" }, `${t("ends_at")} ${fmtTime(l.deadline_ms)}`);
}

function lotItem(l, now) {
  const sold = l.status === "closed" || l.status === "settled";
  const price = l.price !== null && l.price !== undefined
    ? [sold ? t("closed_at") : t("current_price"), " ", el("span", { class: "price-sm", testid: "lot-price" }, money(l.price))]
    : [t("start_price"), " ", el("span", { class: "price-sm", testid: "lot-price" }, money(l.start_price))];
  return el("li", {},
    el("a", { href: `/lots/${l.id}`, testid: "lot-link", "data-id": l.id },
      lotPhoto((l.images || [])[0], l.title),
      el("span", { class: "grow" }, el("b", {}, l.title),
        el("span", { class: "muted meta" }, el("span", {}, ...price), timeLeft(l, now))),
      el("span", { class: `badge ${l.status}`, testid: "lot-status" }, statusText(l.status))));
}

async function main() {
  try {
    const s = await api("GET", `/api/sessions/${sid}`);
    const lots = s.lots || [];
    const list = el("ul", { class: "list", testid: "lot-list" });
    const draw = () => { const now = Date.now(); list.replaceChildren(...lots.map((l) => lotItem(l, now))); };
    draw();
    if (lots.some((l) => l.status === "live")) setInterval(draw, 1000);
    // (replaceChildren() would write a null as the text "null")
    app.replaceChildren(...[
      el("a", { href: "/", testid: "back" }, t("back")),
      el("h1", { testid: "session-title", class: "row between" }, el("span", {}, s.title), el("span", { class: `badge ${s.status}`, testid: "session-status" }, statusText(s.status))),
      s.description ? el("p", { class: "card", testid: "session-description" }, s.description) : null,
      // Every photo of the session's lots in one swipeable strip.
      lots.some((l) => (l.images || []).length) ? el("div", { class: "card" },
        gallery(lots.flatMap((l) => l.images || []), s.title, "session-gallery")) : null,
      el("p", { class: "muted" }, `${t("deposit")} ${money(s.deposit_amount)}` + (s.starts_at_ms ? ` · ${t("starts_at")} ${fmtTime(s.starts_at_ms)}` : "")),
      el("div", { class: "card" }, el("h2", {}, t("lots")), lots.length ? list : el("p", { class: "muted" }, t("bo_no_lots"))),
    ].filter(Boolean));
  } catch (e) {
    app.replaceChildren(el("p", { class: "notice err", testid: "error", role: "alert" }, errText(e)));
  }
}
main();

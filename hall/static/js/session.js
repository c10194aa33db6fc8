// 专场详细: GET /api/sessions/{id} with its lots -> links to /lots/{id}.
import { t, api, money, fmtTime, statusText, el, header, errText } from "./common.js";
import { gallery, thumbOf } from "./gallery.js";

const app = document.getElementById("app");
const sid = Number(location.pathname.split("/").filter(Boolean).pop());
header(() => location.reload());

async function main() {
  try {
    const s = await api("GET", `/api/sessions/${sid}`);
    const lots = s.lots || [];
    // (replaceChildren() would write a null as the text "null")
    app.replaceChildren(...[
      el("a", { href: "/", testid: "back" }, t("back")),
      el("h1", { testid: "session-title" }, s.title, " ", el("span", { class: `badge ${s.status}`, testid: "session-status" }, statusText(s.status))),
      s.description ? el("p", { class: "card", testid: "session-description" }, s.description) : null,
      // Every photo of the session's lots in one swipeable strip.
      lots.some((l) => (l.images || []).length) ? el("div", { class: "card" },
        gallery(lots.flatMap((l) => l.images || []), s.title, "session-gallery")) : null,
      el("p", { class: "muted" }, `${t("deposit")} ${money(s.deposit_amount)}` + (s.starts_at_ms ? ` · ${t("starts_at")} ${fmtTime(s.starts_at_ms)}` : "")),
      el("div", { class: "card" }, el("h2", {}, t("lots")),
        el("ul", { class: "list", testid: "lot-list" }, lots.map((l) => el("li", {},
          el("a", { href: `/lots/${l.id}`, testid: "lot-link", "data-id": l.id },
            l.images && l.images.length ? el("img", { class: "lot-thumb", src: thumbOf(l.images[0]), alt: "", loading: "lazy" }) : null,
            el("span", { class: "grow" }, el("b", {}, l.title), el("br"),
              el("span", { class: "muted" }, l.price ? `${t("current_price")} ${money(l.price)}` : `${t("start_price")} ${money(l.start_price)}`)),
            el("span", { class: `badge ${l.status}` }, statusText(l.status))))))),
    ].filter(Boolean));
  } catch (e) {
    app.replaceChildren(el("p", { class: "notice err", testid: "error" }, errText(e)));
  }
}
main();

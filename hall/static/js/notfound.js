// 404: a page in the product's style for an address that does not exist,
// in both languages, with the way back (the hall answers it with status 404).
import { t, el, header } from "./common.js";

const app = document.getElementById("app");

function render() {
  document.title = `${t("nf_title")} · ${t("brand")}`;
  app.replaceChildren(el("section", { class: "card notfound", testid: "not-found", "aria-labelledby": "nf-h" },
    el("p", { class: "big-code", "aria-hidden": "true" }, "404"),
    el("h1", { id: "nf-h" }, t("nf_title")),
    el("p", {}, t("nf_text")),
    el("p", { class: "muted" }, `${t("nf_path")}${t("colon")}`, el("code", { testid: "nf-path" }, location.pathname)),
    el("div", { class: "row" },
      el("a", { class: "button primary", href: "/", testid: "nf-home" }, t("nf_home")),
      history.length > 1 ? el("button", { type: "button", testid: "nf-back", onclick: () => history.back() }, t("nf_back")) : null)));
}
header(render);
render();

// A photo gallery that works on phones: a strip that scrolls by swipe (CSS
// scroll snap, no script needed), thumbnails loaded lazily, tap to enlarge in
// a dialog where a swipe or the arrows go to the next photo and Esc closes.
import { t, el } from "./common.js";

// Our uploads have a thumbnail beside them (hall/images.py); other URLs are shown as they are.
export function thumbOf(url) {
  return /^\/media\/images\/[0-9a-f]{32}\.jpg$/.test(url) ? url.replace(/\.jpg$/, ".thumb.jpg") : url;
}

export function gallery(urls, title, testid = "gallery") {
  let current = 0;
  const big = el("img", { class: "viewer-img", testid: "viewer-img", alt: "" });
  const count = el("span", { class: "muted", testid: "viewer-count", "aria-live": "polite" });
  const show = (i) => {
    current = (i + urls.length) % urls.length;
    big.src = urls[current];
    big.alt = `${title} · ${t("bo_photo_n")} ${current + 1}`;
    count.textContent = `${current + 1} / ${urls.length}`;
  };
  const dialog = el("dialog", { class: "viewer", testid: "viewer", "aria-label": `${t("bo_gallery")}: ${title}` },
    el("div", { class: "row between" }, count,
      el("button", { type: "button", testid: "viewer-close", onclick: () => dialog.close() }, t("bo_close"))),
    big,
    urls.length > 1 ? el("div", { class: "row between" },
      el("button", { type: "button", testid: "viewer-prev", onclick: () => show(current - 1) }, `‹ ${t("bo_prev")}`),
      el("button", { type: "button", testid: "viewer-next", onclick: () => show(current + 1) }, `${t("bo_next")} ›`)) : null);
  let x0 = null;
  dialog.addEventListener("touchstart", (e) => { x0 = e.touches[0].clientX; }, { passive: true });
  dialog.addEventListener("touchend", (e) => {
    if (x0 === null) return;
    const dx = e.changedTouches[0].clientX - x0;
    x0 = null;
    if (Math.abs(dx) > 40) show(current + (dx < 0 ? 1 : -1));
  });
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") show(current + 1);
    if (e.key === "ArrowLeft") show(current - 1);
  });
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });  // the backdrop
  const strip = el("div", { class: "gallery", testid, role: "list", "aria-label": t("bo_gallery") },
    urls.map((url, i) => el("button", { type: "button", class: "gallery-item", role: "listitem", testid: "gallery-item",
      "aria-label": `${title} · ${t("bo_photo_n")} ${i + 1}`, onclick: () => { show(i); dialog.showModal(); } },
    brokenShowsPlaceholder(el("img", { src: thumbOf(url), alt: "", loading: i === 0 ? "eager" : "lazy", decoding: "async" })))));
  return el("div", {}, strip, dialog);
}

// A photo that does not load shows the product's placeholder, not the browser's broken-image icon.
function brokenShowsPlaceholder(img) {
  img.addEventListener("error", () => {
    if (img.dataset.broken) return;
    img.dataset.broken = "true";
    img.src = "/static/img/placeholder.svg";
  });
  return img;
}

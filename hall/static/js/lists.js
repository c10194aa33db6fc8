// Pieces the lists share (sessions, lots, orders): a lot's photo with a
// placeholder for none or a broken image. The photo sits beside the title it
// shows, inside the same link, so it is decorative (alt="").
import { t, el } from "./common.js";
import { thumbOf } from "./gallery.js";

export function lotPhoto(url, title, cls = "lot-thumb") {
  const ph = () => el("span", { class: `${cls} photo-missing`, "aria-hidden": "true", testid: "photo-missing" }, t("no_photo"));
  if (!url) return ph();
  const img = el("img", { class: cls, src: thumbOf(url), alt: "", loading: "lazy", width: 64, height: 64, testid: "lot-photo" });
  img.addEventListener("error", () => img.replaceWith(ph()));
  return img;
}

// 专场编辑: a session and its lots. A draft can be edited (session fields, lots
// with photos, order), previewed as bidders see it and published; a published
// one is shown read-only with its results CSV. Uses the operator API only.
import { t, api, token, money, fmtTime, statusText, el, header, errText } from "./common.js";
import { boNav, requireLogin, field, setErr, placeServerError, toFen, toYuan, toLocalInput, fromLocalInput,
  checkMoney, checkInt, checkText, deadlinePicker } from "./bo.js";
import { thumbOf } from "./gallery.js";

const app = document.getElementById("app");
const idPart = location.pathname.split("/").filter(Boolean).pop();
let sid = idPart === "new" ? null : Number(idPart);
header(() => main());
const MAX_UPLOAD = 10 * 1024 * 1024;

function notice(testid) { return el("div", { class: "notice", testid, role: "status" }); }
function say(node, text, kind) { node.textContent = text; node.className = `notice ${kind || ""}`; }

// -- the session form ---------------------------------------------------------------
function sessionForm(s, editable) {
  const F = {
    title: field("s-title", "title", { required: true, maxlength: 200, value: s ? s.title : "" }),
    description: field("s-description", "description", { rows: 3, maxlength: 10000 }, "textarea"),
    deposit_amount: field("s-deposit", "bo_deposit_yuan", { inputmode: "decimal", value: s ? toYuan(s.deposit_amount) : "0" }),
    starts_at_ms: field("s-starts", "bo_starts_at", { type: "datetime-local", value: s ? toLocalInput(s.starts_at_ms) : "" }),
    stagger_s: field("s-stagger", "bo_stagger", { inputmode: "numeric", value: s ? String(s.stagger_s || 0) : "0" }),
  };
  F.description.input.value = s ? s.description || "" : "";
  const out = notice("session-result");
  const form = el("form", { class: "card", testid: "session-form", novalidate: true }, el("h2", {}, t("bo_session_form")),
    ...Object.values(F).map((f) => f.node),
    editable ? el("div", { class: "mt8" }, el("button", { class: "primary", type: "submit", testid: "session-save" }, sid ? t("bo_save") : t("create"))) : null,
    out);
  if (!editable) for (const f of Object.values(F)) f.input.disabled = true;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const ok = [checkText(F.title), checkMoney(F.deposit_amount, { zero: true }), checkInt(F.stagger_s)].every(Boolean);
    const starts = fromLocalInput(F.starts_at_ms.input.value);
    if (starts !== null && starts <= Date.now()) { setErr(F.starts_at_ms, t("bo_future")); return; }
    setErr(F.starts_at_ms, "");
    if (!ok) { form.querySelector("[aria-invalid=true]").focus(); return; }
    const body = { title: F.title.input.value.trim(), description: F.description.input.value,
      deposit_amount: toFen(F.deposit_amount.input.value), starts_at_ms: starts, stagger_s: Number(F.stagger_s.input.value) };
    try {
      if (sid) {
        await api("PATCH", `/api/admin/sessions/${sid}`, body);
        say(out, t("bo_saved"), "ok");
      } else {
        if (body.starts_at_ms === null) delete body.starts_at_ms;
        const created = await api("POST", "/api/admin/sessions", body);
        location.href = `/ops/sessions/${created.id}`;
      }
    } catch (err) {
      placeServerError(F, err, (m) => say(out, m, "err"));
    }
  });
  return form;
}

// -- a lot form (new or edit) ----------------------------------------------------------
function lotForm(session, lot, onDone) {
  const p = lot ? `l${lot.id}` : "lnew";
  const inc = lot && typeof lot.increment === "number" ? toYuan(lot.increment) : lot ? "" : "10";
  const F = {
    title: field(`${p}-title`, "title", { maxlength: 200, value: lot ? lot.title : "" }),
    description: field(`${p}-description`, "description", { rows: 3, maxlength: 10000 }, "textarea"),
    start_price: field(`${p}-start`, "bo_start_yuan", { inputmode: "decimal", value: lot ? toYuan(lot.start_price) : "" }),
    increment: field(`${p}-inc`, "bo_inc_yuan", { inputmode: "decimal", value: inc }),
    reserve_price: field(`${p}-reserve`, "bo_reserve_yuan", { inputmode: "decimal", value: lot && lot.reserve_price ? toYuan(lot.reserve_price) : "" }),
    lot_deposit: field(`${p}-deposit`, "bo_lot_deposit_yuan", { inputmode: "decimal", value: lot ? toYuan(lot.deposit.lot_amount) : "0" }),
    buyer_premium_bp: field(`${p}-premium`, "bo_premium_pct", { inputmode: "decimal", value: lot && lot.buyer_premium_bp ? String(lot.buyer_premium_bp / 100) : "0" }),
    extend_window_s: field(`${p}-window`, "bo_window", { inputmode: "numeric", value: lot ? String(lot.extend_window_s ?? 300) : "300" }),
    extend_by_s: field(`${p}-by`, "bo_by", { inputmode: "numeric", value: lot ? String(lot.extend_by_s ?? 300) : "300" }),
  };
  F.description.input.value = lot ? lot.description || "" : "";
  const photos = lot ? [...(lot.images || [])] : [];
  const thumbs = el("div", { class: "thumbs", testid: `${p}-thumbs` });
  const drawThumbs = () => thumbs.replaceChildren(...photos.map((url, i) => el("figure", { testid: "photo" },
    el("img", { src: thumbOf(url), alt: `${t("bo_photo_n")} ${i + 1}` }),
    el("button", { type: "button", testid: "photo-remove", onclick: () => { photos.splice(i, 1); drawThumbs(); } }, t("bo_remove")))));
  drawThumbs();
  const files = field(`${p}-files`, "bo_add_photos", { type: "file", accept: "image/jpeg,image/png,image/webp", multiple: true });
  files.input.addEventListener("change", async () => {
    setErr(files, "");
    for (const file of files.input.files) {
      if (file.size > MAX_UPLOAD) { setErr(files, `${file.name}: ${t("bo_too_big")}`); continue; }
      files.err.textContent = `${t("bo_uploading")} ${file.name}`;
      const data = new FormData();
      data.append("file", file);
      try {
        const resp = await fetch("/api/admin/images", { method: "POST", body: data, headers: { Authorization: `Bearer ${token()}` } });
        const body = await resp.json().catch(() => null);
        if (!resp.ok) {
          setErr(files, `${file.name}: ${body && body.code === "unsupported_media" ? t("bo_not_image") : (body && body.message) || t("error")}`);
          continue;
        }
        photos.push(body.url);
        files.err.textContent = "";
        drawThumbs();
      } catch (e) { setErr(files, `${file.name}: ${t("err_network")}`); }
    }
    files.input.value = "";
  });
  // The deadline: minutes after the session opens (the default), or a time.
  const picker = deadlinePicker(p, lot);
  Object.assign(F, picker.fields);
  const out = notice(`${p}-result`);
  const form = el("form", { class: "lot-form", testid: lot ? "lot-edit-form" : "lot-new-form", novalidate: true },
    F.title.node, F.description.node, el("div", {}, el("span", { class: "muted" }, t("bo_photos")), thumbs, files.node),
    el("div", { class: "grid2" }, F.start_price.node, F.increment.node, F.reserve_price.node, F.lot_deposit.node, F.buyer_premium_bp.node),
    picker.node, el("div", { class: "grid2" }, F.extend_window_s.node, F.extend_by_s.node),
    el("div", { class: "mt8" }, el("button", { class: "primary", type: "submit", testid: `${p}-save` }, lot ? t("bo_save") : t("bo_add_lot"))), out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const checks = [checkText(F.title), checkMoney(F.start_price), checkMoney(F.increment), checkMoney(F.reserve_price, { required: false }),
      checkMoney(F.lot_deposit, { zero: true }), checkMoney(F.buyer_premium_bp, { zero: true }), checkInt(F.extend_window_s), checkInt(F.extend_by_s)];
    const deadline = picker.read();
    checks.push(deadline !== null);
    if (!checks.every(Boolean)) { form.querySelector("[aria-invalid=true]").focus(); return; }
    const body = { title: F.title.input.value.trim(), description: F.description.input.value, images: photos,
      start_price: toFen(F.start_price.input.value), increment: toFen(F.increment.input.value),
      lot_deposit: toFen(F.lot_deposit.input.value), buyer_premium_bp: Math.round(Number(F.buyer_premium_bp.input.value) * 100),
      extend_window_s: Number(F.extend_window_s.input.value), extend_by_s: Number(F.extend_by_s.input.value), ...deadline };
    if (F.reserve_price.input.value.trim()) body.reserve_price = toFen(F.reserve_price.input.value);
    try {
      if (lot) await api("PATCH", `/api/admin/lots/${lot.id}`, body);
      else await api("POST", `/api/admin/sessions/${session.id}/lots`, body);
      onDone();
    } catch (err) {
      placeServerError(F, err, (msg) => say(out, msg, "err"));
    }
  });
  return form;
}

// -- the lots of a session ------------------------------------------------------------
function lotCard(session, lot, i, lots, editable) {
  const card = el("div", { class: "lot-card", testid: "lot-card", "data-id": lot.id });
  const summary = el("div", { class: "row between" },
    el("div", {}, el("b", { testid: "lot-card-title" }, `${i + 1}. ${lot.title}`), " ",
      el("span", { class: `badge ${lot.status}` }, statusText(lot.status)), el("br"),
      el("span", { class: "muted" }, `${t("start_price")} ${money(lot.start_price)} · ${t("deadline")} ${fmtTime(lot.deadline_ms)}`
        + (lot.images && lot.images.length ? ` · ${lot.images.length} ${t("bo_photos")}` : ""))),
    el("div", { class: "row" },
      editable ? el("button", { type: "button", testid: "lot-up", disabled: i === 0 || null, "aria-label": `${t("bo_up")} ${lot.title}`, onclick: () => move(session, lots, i, -1) }, "↑") : null,
      editable ? el("button", { type: "button", testid: "lot-down", disabled: i === lots.length - 1 || null, "aria-label": `${t("bo_down")} ${lot.title}`, onclick: () => move(session, lots, i, 1) }, "↓") : null,
      el("a", { href: `/lots/${lot.id}`, target: "_blank", class: "button", testid: "lot-preview" }, t("bo_preview")),
      editable ? el("button", { type: "button", testid: "lot-edit", "aria-expanded": "false", onclick: async (e) => {
        const btn = e.currentTarget;
        const open = btn.getAttribute("aria-expanded") === "true";
        btn.setAttribute("aria-expanded", String(!open));
        if (open) { card.querySelector(".lot-form").remove(); return; }
        // The operator's view of the lot: reserve, premium and deadline rule too.
        const full = await api("GET", `/api/admin/lots/${lot.id}`);
        card.append(lotForm(session, full, () => main()));
      } }, t("bo_edit")) : null));
  card.append(summary);
  return card;
}

async function move(session, lots, i, d) {
  const ids = lots.map((l) => l.id);
  [ids[i], ids[i + d]] = [ids[i + d], ids[i]];
  try { await api("POST", `/api/admin/sessions/${session.id}/reorder`, { lot_ids: ids }); } catch (e) { alert(errText(e)); }
  main();
}

async function publish(session, out) {
  if (!confirm(t("bo_publish_confirm"))) return;
  try {
    const s = await api("POST", `/api/admin/sessions/${session.id}/publish`, {});
    say(out, `${t("bo_published")}: ${statusText(s.status)}`, "ok");
    main();
  } catch (err) {
    // A lot that ends before the session opens: named, in the page's language.
    const late = err.body && err.body.late_lots;
    if (late && late.length) say(out, `${t("bo_publish_late")} ${late.map((l) => `#${l.id} ${l.title}`).join("、")}`, "err");
    else say(out, errText(err) === t("err_conflict") ? err.message : errText(err), "err");
  }
}

async function downloadCsv(session, out) {
  try {
    const resp = await fetch(`/api/admin/sessions/${session.id}/results.csv`, { headers: { Authorization: `Bearer ${token()}` } });
    if (!resp.ok) throw new Error((await resp.json()).message);
    const url = URL.createObjectURL(await resp.blob());
    const a = el("a", { href: url, download: `session-${session.id}-results.csv` });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) { say(out, String(e.message || e), "err"); }
}

async function main() {
  if (!requireLogin()) return;
  if (!sid) {
    app.replaceChildren(boNav("/ops/sessions"), el("h1", {}, t("bo_new_session")), sessionForm(null, true));
    return;
  }
  try {
    const s = await api("GET", `/api/sessions/${sid}`);
    const editable = s.status === "draft";
    const lots = s.lots || [];
    const out = notice("publish-result");
    const actions = el("div", { class: "card row", testid: "session-actions" },
      el("a", { href: `/sessions/${sid}`, target: "_blank", class: "button", testid: "session-preview" }, t("bo_preview")),
      editable ? el("button", { type: "button", class: "primary", testid: "publish", disabled: lots.length === 0 || null, onclick: () => publish(s, out) }, t("bo_publish")) : null,
      el("button", { type: "button", testid: "results-csv", onclick: () => downloadCsv(s, out) }, t("bo_results_csv")), out);
    const lotsCard = el("div", { class: "card", testid: "lots" }, el("h2", {}, t("lots")),
      lots.length ? lots.map((l, i) => lotCard(s, l, i, lots, editable)) : el("p", { class: "muted", testid: "no-lots" }, t("bo_no_lots")));
    // replaceChildren() would write a null as the text "null": leave them out.
    app.replaceChildren(...[boNav("/ops/sessions"),
      el("div", { class: "row between" }, el("h1", { testid: "bo-session-title" }, `#${s.id} ${s.title}`),
        el("span", { class: `badge ${s.status}`, testid: "bo-session-status" }, statusText(s.status))),
      editable ? null : el("p", { class: "notice", testid: "readonly" }, t("bo_readonly")),
      actions, sessionForm(s, editable), lotsCard,
      editable ? el("div", { class: "card", testid: "add-lot" }, el("h2", {}, t("bo_add_lot")), lotForm(s, null, () => main())) : null]
      .filter(Boolean));
  } catch (e) {
    app.replaceChildren(boNav("/ops/sessions"), el("p", { class: "notice err", testid: "error" }, e.code === "forbidden" ? t("not_operator") : errText(e)));
  }
}
main();

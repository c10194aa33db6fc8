// Second-chance offers (二次机会): a forfeited lot offered to this bidder at
// their own best bid. Self-contained: mountOffers() puts its own section
// above the page's <main> (pages re-render <main> freely), lists the pending
// offers with the time left, takes accept and decline, and listens on its own
// socket for `offer` messages (the login cookie identifies the user).
import { t, api, token, money, fmtTime, el, errText } from "./common.js";

const TICK_MS = 1000;

function timeLeft(ms) {
  if (ms <= 0) return t("offer_status_expired");
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const p = (n) => String(n).padStart(2, "0");
  const hms = `${p(Math.floor((s % 86400) / 3600))}:${p(Math.floor((s % 3600) / 60))}:${p(s % 60)}`;
  return d ? `${d}${t("offer_days")} ${hms}` : hms;
}

function failure(err) {
  const key = `offer_err_${err && err.code}`;
  const msg = t(key);
  return msg !== key ? msg : errText(err);
}

export function mountOffers() {
  if (!token()) return null;
  const main = document.getElementById("app");
  const section = el("section", { class: "offers", testid: "offers", "aria-labelledby": "offers-title", hidden: true,
    style: "max-width: 960px; margin: 0 auto; padding: 12px 12px 0;" });
  main.before(section);
  const state = { offers: new Map(), outcome: new Map(), skew: 0, ws: null, attempts: 0 };
  // Announced to screen readers (each card shows its own outcome).
  const live = el("p", { role: "status", "aria-live": "polite", testid: "offers-live",
    style: "position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap;" });
  const problem = el("p", { class: "notice err", role: "alert", testid: "offers-error" });

  const now = () => Date.now() + state.skew;

  function card(o) {
    const left = o.expires_ms - now();
    const pending = o.status === "pending" && left > 0;  // else: its outcome, no countdown
    const done = state.outcome.get(o.offer_id);
    const msg = el("p", { class: `notice ${done ? done.kind : ""}`, testid: "offer-msg" }, done ? done.text : "");
    const body = [
      el("div", { class: "row between" },
        el("a", { href: `/lots/${o.lot_id}`, testid: "offer-lot" }, o.lot_title || `#${o.lot_id}`),
        el("span", { class: "badge", testid: "offer-status" }, t(`offer_status_${pending ? "pending" : o.status === "pending" ? "expired" : o.status}`))),
      el("div", { class: "muted" }, t("offer_amount")),
      el("div", { class: "price", testid: "offer-amount", "data-amount": o.amount }, money(o.amount)),
      !pending ? null : el("div", { class: "muted" }, `${t("offer_time_left")}: `,
        el("b", { testid: "offer-left", "data-expires-ms": o.expires_ms }, timeLeft(left)),
        ` · ${t("offer_ends")} ${fmtTime(o.expires_ms)}`),
    ];
    if (pending) {
      const accept = el("button", { type: "button", class: "primary", testid: "offer-accept" }, t("offer_accept"));
      const decline = el("button", { type: "button", testid: "offer-decline" }, t("offer_decline"));
      const act = async (what) => {
        accept.disabled = decline.disabled = true;
        msg.className = "notice";
        msg.textContent = t(what === "accept" ? "offer_accepting" : "offer_declining");
        try {
          const r = await api("POST", `/api/offers/${o.offer_id}/${what}`);
          if (what === "accept") {
            o.status = "accepted";
            o.order_id = r.id;
            state.outcome.set(o.offer_id, { kind: "ok", text: `${t("offer_accepted")} ${money(r.due)} · ${t("pay_by")} ${fmtTime(r.pay_by_ms)}` });
          } else {
            o.status = "declined";
            state.outcome.set(o.offer_id, { kind: "ok", text: t("offer_declined") });
          }
        } catch (e) {
          if (e.code === "offer_expired") o.status = "expired";
          if (e.code === "conflict" || e.code === "not_found") load();
          state.outcome.set(o.offer_id, { kind: "err", text: failure(e) });
        }
        render();
        const again = section.querySelector(`[data-offer-id="${o.offer_id}"] [data-testid="offer-msg"]`);
        if (again) live.textContent = again.textContent;
      };
      accept.addEventListener("click", () => act("accept"));
      decline.addEventListener("click", () => act("decline"));
      body.push(el("div", { class: "row mt8" }, accept, decline));
    }
    body.push(msg);
    if (o.status === "accepted") {
      body.push(el("a", { href: "/me", class: "button primary", testid: "offer-pay" }, t("offer_pay_link")));
    }
    return el("li", { class: "card", testid: "offer", "data-offer-id": o.offer_id, "data-status": o.status }, body);
  }

  function render() {
    const shown = [...state.offers.values()].filter((o) => o.status === "pending" || state.outcome.has(o.offer_id))
      .sort((a, b) => a.expires_ms - b.expires_ms);
    section.hidden = shown.length === 0;
    section.replaceChildren(
      el("h2", { id: "offers-title" }, t("offers_title")),
      el("p", { class: "muted" }, t("offers_intro")),
      el("ul", { class: "plain offer-list" }, shown.map(card)),
      problem, live);
  }

  // Only the countdowns change each second: the buttons keep their focus.
  setInterval(() => {
    let expired = false;
    section.querySelectorAll('[data-testid="offer-left"]').forEach((b) => {
      const left = Number(b.dataset.expiresMs) - now();
      b.textContent = timeLeft(left);
      if (left <= 0 && b.closest('[data-status="pending"]')?.querySelector('[data-testid="offer-accept"]')) expired = true;
    });
    if (expired) render();
  }, TICK_MS);

  async function load() {
    try {
      const r = await api("GET", "/api/me/offers");
      if (r.server_time_ms) state.skew = r.server_time_ms - Date.now();
      state.offers = new Map(r.offers.map((o) => [o.offer_id, { ...(state.offers.get(o.offer_id) || {}), ...o }]));
      problem.textContent = "";
    } catch (e) {
      if (e.code === "forbidden" || e.code === "unauthorized") return;  // operators have no offers
      problem.textContent = `${t("offer_err_load")}: ${errText(e)}`;
      if (state.offers.size) section.hidden = false;
      return;
    }
    render();
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws`);
    state.ws = ws;
    ws.onopen = () => { state.attempts = 0; load(); };
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch (_) { return; }
      if (m.type !== "offer") return;
      if (m.server_time_ms) state.skew = m.server_time_ms - Date.now();
      state.offers.set(m.offer_id, { ...m });
      live.textContent = `${t("offer_new")}: ${m.lot_title || `#${m.lot_id}`} ${money(m.amount)}`;
      render();
    };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      const delay = Math.min(15000, 1000 * 2 ** state.attempts);
      state.attempts += 1;
      setTimeout(connect, delay);
    };
  }
  setInterval(() => {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      try { state.ws.send(JSON.stringify({ op: "ping" })); } catch (_) { /* reconnects on close */ }
    }
  }, 20000);

  load();
  connect();
  return section;
}

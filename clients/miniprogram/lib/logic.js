// Page logic of the mini-program that does not touch wx.*: tested with
// node's test runner (test/logic.test.js). Written against the public API
// (the hall's docs/api.md); CommonJS, as the mini-program runtime loads it.

// Money is an integer number of fen.
function money(fen) {
  if (fen === null || fen === undefined) return "—";
  const yuan = Math.floor(Math.abs(fen) / 100);
  const cents = String(Math.abs(fen) % 100).padStart(2, "0");
  return `${fen < 0 ? "-" : ""}¥${String(yuan).replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${cents}`;
}

// Time left by the server's clock: the snapshot's server_time_ms against the
// phone's clock when it arrived gives the offset.
function clockOffset(serverTimeMs, localNowMs) {
  return serverTimeMs - localNowMs;
}

function remaining(deadlineMs, localNowMs, offsetMs) {
  return Math.max(0, deadlineMs - (localNowMs + offsetMs));
}

function countdown(ms) {
  const s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(sec)}` : `${two(m)}:${two(sec)}`;
}

// The room's state from the socket's messages (snapshot, bid, extended,
// lot_status, closed); anything else leaves it as it is.
function reduceRoom(state, msg) {
  switch (msg.type) {
    case "snapshot":
      return { ...state, lot: msg, price: msg.price, deadline_ms: msg.deadline_ms, status: msg.status,
               seq: msg.seq || 0, min_next: msg.min_next };
    case "bid":
      if (msg.seq <= (state.seq || 0)) return state;  // a replayed one
      return { ...state, price: msg.amount, seq: msg.seq, deadline_ms: msg.deadline_ms || state.deadline_ms,
               min_next: msg.min_next, leader: msg.bidder };
    case "extended":
      return { ...state, deadline_ms: msg.deadline_ms };
    case "lot_status":
      return { ...state, status: msg.status };
    case "closed":
      return { ...state, status: "closed", result: msg.result, winner: msg.winner };
    default:
      return state;
  }
}

// The socket URL of the hall: the mini-program's socket carries the token in
// the query (no cookies there); pages in browsers use the cookie instead.
function socketUrl(base, token) {
  const ws = base.replace(/^http/, "ws") + "/ws";
  return token ? `${ws}?token=${encodeURIComponent(token)}` : ws;
}

// The deposit request: inside the mini-program WeChat Pay is always the
// jsapi scene (wx.requestPayment), with the mini-program's openid.
function depositRequest(scope, method) {
  if (!["session", "lot"].includes(scope)) throw new Error("scope: session or lot");
  if (method === "wechat") return { scope, method, scene: "jsapi", wechat_app: "miniprogram" };
  return { scope, method: "balance" };
}

// wx.requestPayment's arguments from a task result {status:"awaiting_payment", prepay}.
function paymentArgs(result) {
  const p = (result && result.prepay) || {};
  const need = ["timeStamp", "nonceStr", "package", "signType", "paySign"];
  if (!result || result.status !== "awaiting_payment" || need.some((k) => !p[k])) return null;
  return { timeStamp: p.timeStamp, nonceStr: p.nonceStr, package: p.package, signType: p.signType,
           paySign: p.paySign };
}

// What the deposit page says for a task message or an API error code.
const WORDS = {
  conflict: "请先用微信登录并绑定账号", already_paid: "保证金已缴纳", banned: "账户已被限制",
  insufficient_balance: "余额不足", lot_closed: "拍品已结束", unavailable: "微信暂时无法连接，请稍后重试",
};
function errorText(code) {
  return WORDS[code] || "操作失败，请重试";
}

module.exports = { money, clockOffset, remaining, countdown, reduceRoom, socketUrl, depositRequest,
                   paymentArgs, errorText };

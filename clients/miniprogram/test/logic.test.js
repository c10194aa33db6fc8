// node --test clients/miniprogram/test/ (run by tests/test_miniprogram.py)
const test = require("node:test");
const assert = require("node:assert/strict");
const logic = require("../lib/logic.js");

test("money is fen shown as yuan", () => {
  assert.equal(logic.money(150000), "¥1,500.00");
  assert.equal(logic.money(5), "¥0.05");
  assert.equal(logic.money(null), "—");
});

test("the countdown runs by the server's clock", () => {
  const offset = logic.clockOffset(10_000, 7_000);  // the phone is 3 s behind
  assert.equal(logic.remaining(20_000, 7_000, offset), 10_000);
  assert.equal(logic.remaining(5_000, 7_000, offset), 0);
  assert.equal(logic.countdown(61_000), "01:01");
  assert.equal(logic.countdown(3_600_500), "1:00:01");
});

test("the room follows its events and ignores replays", () => {
  let s = logic.reduceRoom({}, { type: "snapshot", price: 1000, deadline_ms: 50, status: "live", seq: 2, min_next: 1100 });
  s = logic.reduceRoom(s, { type: "bid", seq: 2, amount: 999 });
  assert.equal(s.price, 1000);
  s = logic.reduceRoom(s, { type: "bid", seq: 3, amount: 1100, min_next: 1200, deadline_ms: 80 });
  assert.deepEqual([s.price, s.seq, s.min_next, s.deadline_ms], [1100, 3, 1200, 80]);
  s = logic.reduceRoom(s, { type: "extended", deadline_ms: 90 });
  s = logic.reduceRoom(s, { type: "closed", result: "sold", winner: "a***e" });
  assert.deepEqual([s.status, s.deadline_ms, s.winner], ["closed", 90, "a***e"]);
  assert.equal(logic.reduceRoom(s, { type: "pong" }), s);
});

test("the socket carries the token in its query", () => {
  assert.equal(logic.socketUrl("https://h.example", "a b"), "wss://h.example/ws?token=a%20b");
  assert.equal(logic.socketUrl("http://127.0.0.1:8888", ""), "ws://127.0.0.1:8888/ws");
});

test("a WeChat deposit from the mini-program is the jsapi scene", () => {
  assert.deepEqual(logic.depositRequest("lot", "wechat"),
                   { scope: "lot", method: "wechat", scene: "jsapi", wechat_app: "miniprogram" });
  assert.deepEqual(logic.depositRequest("session", "balance"), { scope: "session", method: "balance" });
  assert.throws(() => logic.depositRequest("all", "wechat"));
});

test("wx.requestPayment gets the signed parameters, or nothing", () => {
  const prepay = { appId: "wx1", timeStamp: "1", nonceStr: "n", package: "prepay_id=wx9", signType: "RSA", paySign: "s" };
  assert.deepEqual(logic.paymentArgs({ status: "awaiting_payment", prepay }),
                   { timeStamp: "1", nonceStr: "n", package: "prepay_id=wx9", signType: "RSA", paySign: "s" });
  assert.equal(logic.paymentArgs({ status: "paid" }), null);
  assert.equal(logic.paymentArgs({ status: "awaiting_payment", prepay: { package: "x" } }), null);
  assert.equal(logic.errorText("conflict"), "请先用微信登录并绑定账号");
});

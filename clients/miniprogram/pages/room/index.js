// The room: the lot's live socket (wx.connectSocket), price, countdown, bid.
const { request } = require("../../lib/api.js");
const { BASE } = require("../../config.js");
const logic = require("../../lib/logic.js");

Page({
  data: { price: "—", left: "", status: "", error: "" },
  onLoad({ id }) {
    this.lotId = Number(id);
    this.room = {};
    this.offset = 0;
    this.socket = wx.connectSocket({ url: logic.socketUrl(BASE, wx.getStorageSync("token")) });
    this.socket.onOpen(() => this.socket.send({ data: JSON.stringify({ op: "join", lot_id: this.lotId,
                                                                       since_seq: this.room.seq }) }));
    this.socket.onMessage(({ data }) => this.onEvent(JSON.parse(data)));
    this.socket.onClose(() => setTimeout(() => this.onLoad({ id }), 2000));  // rejoin with since_seq
    this.timer = setInterval(() => this.tick(), 250);
  },
  onUnload() { clearInterval(this.timer); this.socket.close({}); },
  onEvent(msg) {
    if (msg.server_time_ms) this.offset = logic.clockOffset(msg.server_time_ms, Date.now());
    if (msg.type === "rejected" || msg.type === "error") this.setData({ error: logic.errorText(msg.code) });
    this.room = logic.reduceRoom(this.room, msg);
    this.setData({ price: logic.money(this.room.price), status: this.room.status || "" });
  },
  tick() {
    if (!this.room.deadline_ms) return;
    this.setData({ left: logic.countdown(logic.remaining(this.room.deadline_ms, Date.now(), this.offset)) });
  },
  bid() {
    const amount = this.room.min_next;
    this.socket.send({ data: JSON.stringify({ op: "bid", lot_id: this.lotId, amount, ref: `${Date.now()}` }) });
  },
  deposit() { wx.navigateTo({ url: `/pages/deposit/index?id=${this.lotId}` }); },
});

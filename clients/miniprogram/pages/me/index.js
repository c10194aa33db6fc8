// /me: balance, orders, and the WeChat binding (POST /api/me/wechat with a
// fresh wx.login code when this account has none yet).
const { request } = require("../../lib/api.js");
const { money } = require("../../lib/logic.js");

Page({
  data: { balance: "—", orders: [], bound: false },
  onShow() {
    request("GET", "/api/me").then((me) => this.setData({ balance: money(me.balance) }));
    request("GET", "/api/me/orders").then(({ orders }) => this.setData({
      orders: orders.map((o) => Object.assign({}, o, { due_text: money(o.due) })) }));
    request("GET", "/api/me/wechat").then(({ bound }) => this.setData({ bound: bound.miniprogram }));
  },
  bind() {
    wx.login({ success: ({ code }) => request("POST", "/api/me/wechat", { code }).then(
      () => this.setData({ bound: true }),
      (e) => wx.showToast({ title: e.code === "conflict" ? "该微信已绑定其他账号" : "绑定失败", icon: "none" })) });
  },
});

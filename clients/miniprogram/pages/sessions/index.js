const { request } = require("../../lib/api.js");
const { money } = require("../../lib/logic.js");

Page({
  data: { sessions: [], error: "" },
  onShow() {
    request("GET", "/api/sessions").then(({ sessions }) => this.setData({
      sessions: sessions.map((s) => Object.assign({}, s, { deposit: money(s.deposit_amount) })),
    }), (e) => this.setData({ error: e.message }));
  },
  open(e) {
    // The session's first live lot; a full app lists them (GET /api/sessions/{id}).
    request("GET", `/api/sessions/${e.currentTarget.dataset.id}`).then((s) => {
      const lot = s.lots.find((l) => l.status === "live") || s.lots[0];
      if (lot) wx.navigateTo({ url: `/pages/room/index?id=${lot.id}` });
    });
  },
});

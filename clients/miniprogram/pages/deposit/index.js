// 保证金: POST /api/lots/{id}/deposit with scene jsapi, then wx.requestPayment
// with the signed parameters; the deposit is in force when the hall's
// notification arrives (the task result, then GET .../deposit says paid).
const { request } = require("../../lib/api.js");
const logic = require("../../lib/logic.js");

Page({
  data: { options: [], message: "", paid: false },
  onLoad({ id }) { this.lotId = Number(id); this.load(); },
  load() {
    request("GET", `/api/lots/${this.lotId}/deposit`).then((info) => this.setData({
      paid: info.paid,
      options: info.options.map((o) => Object.assign({}, o, { text: logic.money(o.amount) })),
    }), (e) => this.setData({ message: logic.errorText(e.code) }));
  },
  pay(e) {
    const body = logic.depositRequest(e.currentTarget.dataset.scope, "wechat");
    request("POST", `/api/lots/${this.lotId}/deposit`, body)
      .then(({ task_id }) => this.waitTask(task_id))
      .catch((err) => this.setData({ message: logic.errorText(err.code) }));
  },
  waitTask(taskId) {
    request("GET", `/api/tasks/${taskId}`).then((task) => {
      if (task.state !== "SUCCESS" && task.state !== "FAILURE") return setTimeout(() => this.waitTask(taskId), 1000);
      if (task.state === "FAILURE") return this.setData({ message: logic.errorText(task.error && task.error.code) });
      const args = logic.paymentArgs(task.result);
      if (!args) return this.load();
      wx.requestPayment(Object.assign(args, { success: () => this.load(), fail: () => this.setData({ message: "支付未完成" }) }));
    });
  },
});

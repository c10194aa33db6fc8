// The hall's JSON API over wx.request; the token kept in wx storage.
const { BASE } = require("../config.js");

function request(method, path, data) {
  const token = wx.getStorageSync("token");
  return new Promise((resolve, reject) => {
    wx.request({
      url: BASE + path, method, data,
      header: Object.assign({ "Content-Type": "application/json" },
                            token ? { Authorization: `Bearer ${token}` } : {}),
      success: (r) => (r.statusCode < 300 ? resolve(r.data)
        : reject(Object.assign(new Error((r.data && r.data.message) || r.statusCode),
                               { code: r.data && r.data.code, status: r.statusCode }))),
      fail: (e) => reject(Object.assign(new Error(e.errMsg), { code: "network" })),
    });
  });
}

// wx.login's code -> POST /api/auth/wechat: logs in, or creates the account.
function login() {
  return new Promise((resolve, reject) => wx.login({
    success: ({ code }) => request("POST", "/api/auth/wechat", { code }).then((r) => {
      wx.setStorageSync("token", r.token);
      resolve(r.user);
    }, reject),
    fail: reject,
  }));
}

module.exports = { request, login };

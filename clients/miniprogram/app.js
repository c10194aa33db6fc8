const { login } = require("./lib/api.js");

App({
  onLaunch() {
    // Log in silently with wx.login; the pages work anonymously until then.
    login().catch(() => { /* the pages offer it again */ });
  },
});

// WeChat Pay on the pages: which scene fits where the page runs, and what
// the bidder sees while a payment is open (docs/wechat.md).
//   inside WeChat's browser -> jsapi (the official account's openid; WeixinJSBridge)
//   a phone browser         -> h5 (WeChat's cashier page, then back here)
//   a desktop browser       -> native (a QR code to scan with WeChat)
import { t, el, money } from "./common.js";

export function wechatScene(ua = navigator.userAgent) {
  if (/MicroMessenger/i.test(ua)) return "jsapi";
  if (/Mobi|Android|iPhone|iPad|HarmonyOS/i.test(ua)) return "h5";
  return "native";
}

// Inside WeChat with no openid bound yet: the official account's silent OAuth
// binds it (or logs in) and comes back here.
export function oauthUrl() {
  return `/api/auth/wechat/oauth?next=${encodeURIComponent(location.pathname + location.search)}`;
}

// The open payment of a task result {scene, amount, code_url, qr, h5_url, prepay}.
export function wechatPayBox(result) {
  const box = el("div", { class: "wechat-pay", testid: "wechat-pay", "data-scene": result.scene || "jsapi",
                          role: "status", "aria-live": "polite" });
  const amount = el("p", {}, `${t("wechat_amount")}: `, el("strong", {}, money(result.amount)));
  if (result.scene === "native") {
    box.append(amount,
      el("img", { src: result.qr, alt: t("wechat_qr_alt"), width: 200, height: 200, class: "wechat-qr",
                  testid: "wechat-qr", "data-code-url": result.code_url }),
      el("p", { testid: "wechat-step" }, t("wechat_scan")),
      el("p", { class: "muted" }, t("wechat_waiting")));
  } else if (result.scene === "h5") {
    const back = `${location.origin}${location.pathname}${location.search}`;
    box.append(amount,
      el("a", { class: "button primary", href: `${result.h5_url}&redirect_url=${encodeURIComponent(back)}`,
                testid: "wechat-h5-open" }, t("wechat_open_h5")),
      el("p", { class: "muted", testid: "wechat-step" }, t("wechat_h5_return")));
  } else {
    box.append(amount, el("p", { testid: "wechat-step" }, t("deposit_wechat")));
    const bridge = window.WeixinJSBridge;
    if (bridge && result.prepay) {
      const p = result.prepay;
      bridge.invoke("getBrandWCPayRequest", { appId: p.appId, timeStamp: p.timeStamp, nonceStr: p.nonceStr,
        package: p.package, signType: p.signType, paySign: p.paySign }, () => { /* the push says paid */ });
    }
  }
  return box;
}

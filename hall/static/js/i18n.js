// Small i18n dictionary: zh-CN default, English switch stored in localStorage.
const DICT = {
  zh: {
    brand: "拍卖大厅", nav_home: "专场", nav_me: "我的", nav_login: "登录", nav_ops: "运营", nav_logout: "退出",
    lang_switch: "EN", loading: "加载中…", error: "出错了", back: "返回",
    sessions: "拍卖专场", no_sessions: "暂无专场", lots_count: "件拍品", deposit: "保证金", starts_at: "开始时间",
    status_draft: "草稿", status_published: "已发布", status_scheduled: "预展", status_live: "拍卖中",
    status_paused: "已暂停", status_closed: "已结束", status_settled: "已结算", status_ended: "已结束",
    status_fair_warning: "最后警告",
    lots: "拍品", start_price: "起拍价", current_price: "当前价", no_bids: "暂无出价", leader: "领先者",
    you: "我", next_min_bid: "最低加价至", countdown: "倒计时", bid_count: "出价次数",
    bid_history: "出价记录", bid_btn: "出价", bid_amount: "出价金额（元）", bid_custom: "按金额出价",
    sending: "提交中…", accepted: "出价成功", extended: "有人在最后时刻出价，拍卖已延时",
    paused: "拍卖已暂停", resumed: "拍卖已恢复", fair_warning: "最后警告！即将落槌",
    outbid: "您的出价已被超越，当前价", sold: "已成交", unsold: "流拍", winner: "买受人",
    you_won: "恭喜，您已拍得此拍品！", closed_at: "成交价",
    conn_online: "已连接", conn_offline: "连接断开，正在重连…", conn_connecting: "连接中…",
    deposit_panel: "保证金", deposit_paid: "保证金已缴纳", deposit_scope_session: "整场保证金",
    deposit_scope_lot: "单品保证金", method_balance: "余额支付", method_wechat: "微信支付",
    pay: "缴纳", balance: "余额", paying: "支付中…", deposit_ok: "保证金已生效",
    deposit_wechat: "请在微信中完成支付", login_to_bid: "登录后参与竞拍",
    err_too_low: "出价低于最低加价", err_lot_not_open: "拍卖尚未开始或已暂停", err_lot_closed: "拍卖已结束",
    err_no_deposit: "请先缴纳保证金", err_already_leading: "您已是最高出价者", err_insufficient_balance: "余额不足",
    err_already_paid: "已缴纳，无需重复支付", err_conflict: "操作冲突，请刷新", err_rate_limited: "操作过于频繁，请稍候",
    err_invalid: "金额无效（须为加价幅度的整数倍）", err_unauthorized: "请先登录", err_forbidden: "无权限",
    err_not_found: "不存在", err_network: "网络错误",
    login: "登录", register: "注册", username: "用户名", password: "密码", phone: "手机号（可选）",
    have_account: "已有账号？登录", no_account: "没有账号？注册",
    my_balance: "账户余额", my_orders: "我的订单", my_deposits: "我的保证金", ledger: "资金流水",
    no_orders: "暂无订单", order_lot: "拍品", amount: "金额", due: "应付", pay_by: "付款截止",
    order_unpaid: "待付款", order_paid: "已付款", order_forfeited: "已违约", pay_now: "立即付款",
    dep_held: "冻结中", dep_refunded: "已退还", dep_credited: "已抵扣", dep_pending: "待支付",
    ops_title: "运营后台", overview: "概览", create_session: "新建专场", create_lot: "新建拍品",
    title: "标题", description: "描述", images: "图片地址（逗号分隔）", increment: "加价幅度（元）",
    reserve_price: "保留价（元）", lot_deposit: "单品保证金（元）", ends_in_min: "距结束（分钟）",
    extend_window: "延时窗口（秒）", extend_by: "延时（秒）", session_id: "专场ID", publish: "发布",
    create: "创建", open: "开拍", pause: "暂停", resume: "恢复", fair_warning_btn: "最后警告", hammer: "落槌",
    credit_user: "充值", user_id: "用户ID", connections: "连接数", bidders: "竞拍人数", deadline: "截止",
    queues: "队列", workers: "Worker", failures: "最近失败任务", done: "完成", not_operator: "需要运营账号",
    workers_online: "在线 Worker", task_rate: "任务速率", per_s: "个/秒", hall_connections: "大厅连接",
    price_charts: "价格走势", updated: "更新于", none: "无",
    kind: "类型", time: "时间", scope: "范围", method: "方式",
    my_coupons: "我的优惠券", no_coupons: "暂无可用优惠券", coupon: "优惠券", no_coupon: "不使用优惠券",
    coupon_fixed: "立减", coupon_percent: "折扣", coupon_off_pct: "% 优惠", coupon_min_spend: "满",
    coupon_min_spend_suffix: "可用", coupon_expires: "有效期至", to_pay: "实付", coupon_discount: "优惠",
    closing_soon: "即将截拍，截止时间", refund_notice: "保证金已退还", refund_pending: "保证金退款处理中",
    won_notice: "恭喜，您已拍得此拍品！请在付款截止前付款", go_pay: "去付款",
    watch: "关注", unwatch: "取消关注", watching: "已关注",
  },
  en: {
    brand: "Auction Hall", nav_home: "Sessions", nav_me: "Me", nav_login: "Log in", nav_ops: "Ops", nav_logout: "Log out",
    lang_switch: "中文", loading: "Loading…", error: "Error", back: "Back",
    sessions: "Auction sessions", no_sessions: "No sessions yet", lots_count: "lots", deposit: "Deposit", starts_at: "Starts",
    status_draft: "Draft", status_published: "Published", status_scheduled: "Preview", status_live: "Live",
    status_paused: "Paused", status_closed: "Closed", status_settled: "Settled", status_ended: "Ended",
    status_fair_warning: "Fair warning",
    lots: "Lots", start_price: "Start price", current_price: "Current price", no_bids: "No bids yet", leader: "Leader",
    you: "you", next_min_bid: "Next minimum bid", countdown: "Time left", bid_count: "Bids",
    bid_history: "Bid history", bid_btn: "Bid", bid_amount: "Amount (yuan)", bid_custom: "Bid amount",
    sending: "Sending…", accepted: "Bid accepted", extended: "A late bid extended the auction",
    paused: "The auction is paused", resumed: "The auction has resumed", fair_warning: "Fair warning! Going, going…",
    outbid: "You have been outbid, price now", sold: "Sold", unsold: "Unsold", winner: "Winner",
    you_won: "Congratulations, you won this lot!", closed_at: "Hammer price",
    conn_online: "Connected", conn_offline: "Disconnected, reconnecting…", conn_connecting: "Connecting…",
    deposit_panel: "Deposit", deposit_paid: "Deposit paid", deposit_scope_session: "Whole session",
    deposit_scope_lot: "This lot only", method_balance: "Balance", method_wechat: "WeChat Pay",
    pay: "Pay", balance: "Balance", paying: "Paying…", deposit_ok: "Deposit in force",
    deposit_wechat: "Complete the payment in WeChat", login_to_bid: "Log in to bid",
    err_too_low: "Bid is below the minimum", err_lot_not_open: "The lot is not open for bids", err_lot_closed: "The lot has closed",
    err_no_deposit: "Pay the deposit first", err_already_leading: "You are already the highest bidder", err_insufficient_balance: "Insufficient balance",
    err_already_paid: "Already paid", err_conflict: "Conflict, please refresh", err_rate_limited: "Too many requests, slow down",
    err_invalid: "Invalid amount (must be a whole number of increments)", err_unauthorized: "Please log in", err_forbidden: "Not allowed",
    err_not_found: "Not found", err_network: "Network error",
    login: "Log in", register: "Register", username: "Username", password: "Password", phone: "Phone (optional)",
    have_account: "Have an account? Log in", no_account: "No account? Register",
    my_balance: "Balance", my_orders: "My orders", my_deposits: "My deposits", ledger: "Ledger",
    no_orders: "No orders", order_lot: "Lot", amount: "Amount", due: "Due", pay_by: "Pay by",
    order_unpaid: "Unpaid", order_paid: "Paid", order_forfeited: "Forfeited", pay_now: "Pay now",
    dep_held: "Held", dep_refunded: "Refunded", dep_credited: "Credited", dep_pending: "Pending",
    ops_title: "Operator dashboard", overview: "Overview", create_session: "New session", create_lot: "New lot",
    title: "Title", description: "Description", images: "Image URLs (comma separated)", increment: "Increment (yuan)",
    reserve_price: "Reserve (yuan)", lot_deposit: "Lot deposit (yuan)", ends_in_min: "Ends in (minutes)",
    extend_window: "Extend window (s)", extend_by: "Extend by (s)", session_id: "Session ID", publish: "Publish",
    create: "Create", open: "Open", pause: "Pause", resume: "Resume", fair_warning_btn: "Fair warning", hammer: "Hammer",
    credit_user: "Credit", user_id: "User ID", connections: "Connections", bidders: "Bidders", deadline: "Deadline",
    queues: "Queues", workers: "Workers", failures: "Recent task failures", done: "Done", not_operator: "Operator account required",
    workers_online: "Workers online", task_rate: "Task rate", per_s: "/s", hall_connections: "Hall connections",
    price_charts: "Price charts", updated: "Updated", none: "none",
    kind: "Kind", time: "Time", scope: "Scope", method: "Method",
    my_coupons: "My coupons", no_coupons: "No usable coupons", coupon: "Coupon", no_coupon: "No coupon",
    coupon_fixed: "Off", coupon_percent: "Percent", coupon_off_pct: "% off", coupon_min_spend: "Min. spend",
    coupon_min_spend_suffix: "", coupon_expires: "Expires", to_pay: "To pay", coupon_discount: "Discount",
    closing_soon: "Closing soon, deadline", refund_notice: "Deposit refunded", refund_pending: "Deposit refund in progress",
    won_notice: "You won this lot! Please pay before the deadline", go_pay: "Pay now",
    watch: "Watch", unwatch: "Unwatch", watching: "Watching",
  },
};

export function lang() {
  const l = localStorage.getItem("lang");
  return l === "en" ? "en" : "zh";
}

export function setLang(l) {
  localStorage.setItem("lang", l);
}

export function t(key) {
  const d = DICT[lang()];
  return (d && d[key]) || DICT.zh[key] || key;
}

// Fill every [data-i18n] element's text and [data-i18n-ph] placeholder.
export function applyI18n(root = document) {
  document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-ph]").forEach((el) => { el.placeholder = t(el.dataset.i18nPh); });
}

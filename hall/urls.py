"""Every route of the hall, in one flat list (as Flower's urls.py)."""
from __future__ import annotations

from hall.handlers import admin, auth, health, lots, orders, pages, sessions, tasks, ws
import settings
from hall.handlers import audit, coupons, exports, images, jobs, people, watch
from hall.handlers import wallet, wechat
from hall.handlers import offers
from hall.handlers import keys, preemption
from hall.handlers.base import NotFoundHandler
from hall.handlers.openapi import OpenApiHandler
from hall.handlers.pay import WeChatNotifyHandler

ID = r"([0-9]{1,19})"

handlers = [
    (r"/ws", ws.RoomSocket),
    (r"/api/auth/register", auth.RegisterHandler),
    (r"/api/auth/login", auth.LoginHandler),
    (r"/api/auth/logout", auth.LogoutHandler),
    (r"/api/auth/wechat", wechat.WeChatLoginHandler),
    (r"/api/auth/wechat/oauth", wechat.WeChatOAuthHandler),
    (r"/api/auth/wechat/oauth/callback", wechat.WeChatOAuthCallbackHandler),
    (r"/api/auth/wechat/ticket", wechat.WeChatTicketHandler),
    (r"/api/me/wechat", wechat.MyWeChatHandler),
    (r"/api/me", auth.MeHandler),
    (r"/api/keys", keys.KeysHandler),
    (r"/api/me/orders", orders.MyOrdersHandler),
    (r"/api/me/deposits", orders.MyDepositsHandler),
    (r"/api/me/topups", wallet.MyTopUpsHandler),
    (r"/api/me/wallet", wallet.MyWalletHandler),
    (r"/api/sessions", sessions.SessionListHandler),
    (rf"/api/sessions/{ID}", sessions.SessionHandler),
    (rf"/api/lots/{ID}", lots.LotHandler),
    (rf"/api/lots/{ID}/bids", lots.LotBidsHandler),
    (rf"/api/lots/{ID}/deposit", lots.DepositHandler),
    (r"/api/tasks/([A-Za-z0-9\-]{1,64})", tasks.TaskHandler),
    (rf"/api/orders/{ID}/pay", orders.OrderPayHandler),
    (r"/api/pay/wechat/notify", WeChatNotifyHandler),
    (r"/api/admin/sessions", admin.AdminSessionsHandler),
    (rf"/api/admin/sessions/{ID}", admin.AdminSessionHandler),
    (rf"/api/admin/sessions/{ID}/lots", admin.AdminSessionLotsHandler),
    (rf"/api/admin/sessions/{ID}/publish", admin.AdminPublishHandler),
    (rf"/api/admin/sessions/{ID}/reorder", admin.AdminReorderHandler),
    (r"/api/admin/audit", audit.AuditHandler),
    (r"/api/admin/users", people.AdminUsersHandler),
    (rf"/api/admin/users/{ID}", people.AdminUserHandler),
    (rf"/api/admin/users/{ID}/(ban|unban)", people.AdminBanHandler),
    (r"/api/admin/orders", people.AdminOrdersHandler),
    (rf"/api/admin/orders/{ID}", people.AdminOrderHandler),
    (r"/api/admin/jobs", jobs.JobsHandler),
    (r"/api/admin/jobs/([A-Za-z0-9\-]{1,64})/rerun", jobs.JobRerunHandler),
    (r"/api/admin/images", images.ImageUploadHandler),
    (rf"/api/admin/sessions/{ID}/results\.csv", exports.ResultsCsvHandler),
    (rf"/api/orders/{ID}/confirmation\.pdf", exports.ConfirmationPdfHandler),
    (rf"/api/admin/lots/{ID}/(open|pause|resume|fair-warning|hammer)", admin.AdminLotControlHandler),
    (rf"/api/admin/lots/{ID}/preemption", preemption.AdminPreemptionHandler),
    (rf"/api/admin/lots/{ID}", admin.AdminLotHandler),
    (rf"/api/admin/users/{ID}/credit", admin.AdminCreditHandler),
    (r"/api/admin/overview", admin.AdminOverviewHandler),
    (rf"/api/lots/{ID}/watch", watch.WatchHandler),
    (r"/api/me/watches", watch.MyWatchesHandler),
    (rf"/api/admin/users/{ID}/coupons", coupons.AdminUserCouponsHandler),
    (r"/api/me/coupons", coupons.MyCouponsHandler),
    (r"/api/me/offers", offers.MyOffersHandler),
    (rf"/api/offers/{ID}/accept", offers.OfferAcceptHandler),
    (rf"/api/offers/{ID}/decline", offers.OfferDeclineHandler),
    (r"/api/openapi.json", OpenApiHandler),
    (r"/api/.*", NotFoundHandler),
    (r"/media/images/([0-9a-f]{32}(?:\.thumb)?\.jpg)", images.MediaFiles,
     {"path": str(settings.DATA_DIR / "media" / "images")}),
    (r"/healthz", health.HealthHandler),
    (r"/metrics", health.MetricsHandler),
    (r"/", pages.PageHandler, {"page": "index"}),
    (rf"/sessions/{ID}", pages.PageHandler, {"page": "session"}),
    (rf"/lots/{ID}", pages.PageHandler, {"page": "lot"}),
    (r"/me", pages.PageHandler, {"page": "me"}),
    (r"/login", pages.PageHandler, {"page": "login"}),
    (r"/ops", pages.PageHandler, {"page": "ops"}),
    (r"/ops/sessions", pages.PageHandler, {"page": "ops_sessions"}),
    (rf"/ops/sessions/(new|{ID[1:-1]})", pages.PageHandler, {"page": "ops_session"}),
    (r"/ops/audit", pages.PageHandler, {"page": "ops_audit"}),
    (r"/ops/users", pages.PageHandler, {"page": "ops_users"}),
    (r"/ops/orders", pages.PageHandler, {"page": "ops_orders"}),
    (rf"/ops/orders/{ID}", pages.PageHandler, {"page": "ops_order"}),
    (r"/ops/jobs", pages.PageHandler, {"page": "ops_jobs"}),
    (r"/.*", pages.NotFoundPage),  # last: any other path (a 404 page, or JSON)
]

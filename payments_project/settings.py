"""Django settings, read from the environment through payments_project.config.

Every variable is declared in config.VARIABLES (type, default, help); this module only
maps their values onto Django, DRF and dj-stripe settings.
"""

from kombu import Exchange, Queue

from payments_project import config
from payments_project.logging import logging_config

config.read_env_file()
ENV = config.load()

BASE_DIR = config.BASE_DIR

SECRET_KEY = ENV["SECRET_KEY"]
DEBUG = ENV["DEBUG"]
ALLOWED_HOSTS = ENV["ALLOWED_HOSTS"]
CSRF_TRUSTED_ORIGINS = ENV["CSRF_TRUSTED_ORIGINS"]

INSTALLED_APPS = [
    # django.contrib.admin, with the support console's site (orders/console_site.py)
    "orders.console_site.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "djstripe",
    "orders",
    "payments",
    "bridge",
    "promos",
]

MIDDLEWARE = [
    # Outermost: a database or cache outage anywhere below answers a JSON 503.
    "payments_project.middleware.OutageMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin, Swagger UI) served by the service itself, with or without DEBUG.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The reader's language (Accept-Language) for pages and money: CN¥ in English, ¥ in
    # Chinese (payments_project.money.format_money).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The checkout pages: a platform token signs its user in, as the API's does.
    "bridge.identity.PlatformTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "payments_project.urls"
CSRF_FAILURE_VIEW = "payments_project.views.csrf_failure"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # {{ amount|money:currency }} and {{ amount|minor_money:currency }} on every page.
            "builtins": ["payments_project.templatetags"],
        },
    },
]

WSGI_APPLICATION = "payments_project.wsgi.application"
ASGI_APPLICATION = "payments_project.asgi.application"

# ---- Database ----

DATABASES = {"default": ENV["DATABASE_URL"]}
DATABASES["default"]["CONN_MAX_AGE"] = ENV["DATABASE_CONN_MAX_AGE"]
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASE_BUSY_TIMEOUT = ENV["DATABASE_BUSY_TIMEOUT"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"]["TIME_ZONE"] = ENV["DATABASE_TIME_ZONE"]
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            "isolation_level": "read committed",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        }
    )
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers wait for each other instead of failing: every transaction
    # takes the write lock when it begins (no upgrade deadlock), waits up to
    # DATABASE_BUSY_TIMEOUT for it, and readers never block the writer (WAL).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": DATABASE_BUSY_TIMEOUT,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Column and table comments document the MySQL schema; SQLite has none to keep.
    SILENCED_SYSTEM_CHECKS = ["fields.W163", "models.W046"]

# The API's throttling counters live here: Redis in production, so that all workers and
# machines share one limit; local memory (per process) for the embedded default.
CACHES = {"default": ENV["CACHE_URL"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---- Internationalisation ----

LANGUAGE_CODE = "en-us"
# The languages a reader may ask for; pages and money follow it (LocaleMiddleware).
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = ENV["TIME_ZONE"]
USE_I18N = True
USE_TZ = True

# Django's backend, with a staff account linked to creators granted only what creator
# scoping covers (orders/auth.py).
AUTHENTICATION_BACKENDS = ["orders.auth.CreatorScopedBackend"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "shop"
LOGOUT_REDIRECT_URL = "shop"

# ---- Logging ----

# Text or one JSON object per line, on standard error; secrets and card numbers are
# redacted by a filter on the handler (payments_project/logging.py).
LOGGING = logging_config(log_format=ENV["LOG_FORMAT"], level=ENV["LOG_LEVEL"])

# ---- Static files ----

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Without collectstatic (development, tests) files are found where the apps keep them.
WHITENOISE_USE_FINDERS = DEBUG or not STATIC_ROOT.exists()

# ---- Security (production defaults follow DEBUG) ----

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if ENV["SECURE_PROXY_SSL_HEADER"] else None
)
SECURE_SSL_REDIRECT = (
    (not DEBUG) if ENV["SECURE_SSL_REDIRECT"] is None else ENV["SECURE_SSL_REDIRECT"]
)
SECURE_HSTS_SECONDS = (
    (0 if DEBUG else 31_536_000)
    if ENV["SECURE_HSTS_SECONDS"] is None
    else ENV["SECURE_HSTS_SECONDS"]
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = ENV["SECURE_HSTS_PRELOAD"] and SECURE_HSTS_SECONDS > 0
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# ---- Payments ----

# The channels this code base has, by name: one provider module each.
PAYMENT_PROVIDERS = {
    "pingxx": "payments.providers.pingxx.PingxxProvider",
    "stripe": "payments.providers.stripe.StripeProvider",
    "sandbox": "payments.providers.sandbox.SandboxProvider",
    "alipay": "payments.providers.alipay.AlipayProvider",
    "wechatpay": "payments.providers.wechatpay.WechatpayProvider",
}

# Where payments/ reports what providers say (payments.sink): the business app's handler.
PAYMENT_EVENT_SINK = "orders.sink.OrderPaymentSink"

PAYMENT_CHANNELS_ENABLED = ENV["PAYMENT_CHANNELS_ENABLED"]
DEFAULT_PAYMENT_CHANNEL = ENV["DEFAULT_PAYMENT_CHANNEL"]
PAYMENT_NOTIFY_BASE_URL = ENV["PAYMENT_NOTIFY_BASE_URL"]
PAYMENT_CREDENTIALS_KEYS = ENV["PAYMENT_CREDENTIALS_KEYS"]
PAY_ORDER_EXPIRE_SECONDS = ENV["PAY_ORDER_EXPIRE_SECONDS"]
WEBHOOK_MAX_BODY_BYTES = ENV["WEBHOOK_MAX_BODY_BYTES"]
WEBHOOK_REJECTED_ROWS_PER_HOUR = ENV["WEBHOOK_REJECTED_ROWS_PER_HOUR"]
# Per currency (lower case, "*" for the rest), in minor units: staff refunds on one order
# past this total wait for a second staff member. Checked by the system checks.
PAY_DUPLICATE_PAYMENT_POLICY = ENV["PAY_DUPLICATE_PAYMENT_POLICY"]
RECONCILE_MAX_TRIES = ENV["RECONCILE_MAX_TRIES"]
RECONCILE_MAX_PENDING_HOURS = ENV["RECONCILE_MAX_PENDING_HOURS"]
REFUND_APPROVAL_THRESHOLDS_RAW = ENV["REFUND_APPROVAL_THRESHOLDS"]
REFUND_APPROVAL_THRESHOLDS = config.approval_thresholds(REFUND_APPROVAL_THRESHOLDS_RAW)

PINGXX_API_BASE = ENV["PINGXX_API_BASE"]
PINGXX_SECRET_KEY = ENV["PINGXX_SECRET_KEY"]
PINGXX_APP_ID = ENV["PINGXX_APP_ID"]
PINGXX_PRIVATE_KEY = ENV["PINGXX_PRIVATE_KEY"]
PINGXX_PRIVATE_KEY_PATH = ENV["PINGXX_PRIVATE_KEY_PATH"]
PINGXX_WEBHOOK_PUBLIC_KEY = ENV["PINGXX_WEBHOOK_PUBLIC_KEY"]
PINGXX_WEBHOOK_PUBLIC_KEY_PATH = ENV["PINGXX_WEBHOOK_PUBLIC_KEY_PATH"]
ALIPAY_GATEWAY_URL = ENV["ALIPAY_GATEWAY_URL"]
ALIPAY_APP_ID = ENV["ALIPAY_APP_ID"]
ALIPAY_APP_PRIVATE_KEY = ENV["ALIPAY_APP_PRIVATE_KEY"]
ALIPAY_APP_PRIVATE_KEY_PATH = ENV["ALIPAY_APP_PRIVATE_KEY_PATH"]
ALIPAY_PUBLIC_KEY = ENV["ALIPAY_PUBLIC_KEY"]
ALIPAY_PUBLIC_KEY_PATH = ENV["ALIPAY_PUBLIC_KEY_PATH"]
WECHATPAY_BASE_URL = ENV["WECHATPAY_BASE_URL"]
WECHATPAY_APP_ID = ENV["WECHATPAY_APP_ID"]
WECHATPAY_MCH_ID = ENV["WECHATPAY_MCH_ID"]
WECHATPAY_MERCHANT_SERIAL_NO = ENV["WECHATPAY_MERCHANT_SERIAL_NO"]
WECHATPAY_PRIVATE_KEY = ENV["WECHATPAY_PRIVATE_KEY"]
WECHATPAY_PRIVATE_KEY_PATH = ENV["WECHATPAY_PRIVATE_KEY_PATH"]
WECHATPAY_API_V3_KEY = ENV["WECHATPAY_API_V3_KEY"]
WECHATPAY_PLATFORM_CERT = ENV["WECHATPAY_PLATFORM_CERT"]
WECHATPAY_PLATFORM_CERT_PATH = ENV["WECHATPAY_PLATFORM_CERT_PATH"]

STRIPE_API_BASE = ENV["STRIPE_API_BASE"]
STRIPE_SECRET_KEY = ENV["STRIPE_SECRET_KEY"]
STRIPE_PUBLISHABLE_KEY = ENV["STRIPE_PUBLISHABLE_KEY"]
STRIPE_WEBHOOK_SECRET = ENV["STRIPE_WEBHOOK_SECRET"]
STRIPE_DEFAULT_CURRENCY = ENV["STRIPE_DEFAULT_CURRENCY"]
STRIPE_CHECKOUT_SUCCESS_URL = ENV["STRIPE_CHECKOUT_SUCCESS_URL"]
STRIPE_CHECKOUT_CANCEL_URL = ENV["STRIPE_CHECKOUT_CANCEL_URL"]
STRIPE_JS_URL = ENV["STRIPE_JS_URL"]

# ---- The platform (bridge/) ----

PLATFORM_JWT_SECRET = ENV["PLATFORM_JWT_SECRET"]
PLATFORM_TOKEN_STORE_URL = ENV["PLATFORM_TOKEN_STORE_URL"]
PLATFORM_TOKEN_KEY_PREFIX = ENV["PLATFORM_TOKEN_KEY_PREFIX"]
PLATFORM_WEBHOOK_URL = ENV["PLATFORM_WEBHOOK_URL"]
PLATFORM_WEBHOOK_SECRET = ENV["PLATFORM_WEBHOOK_SECRET"]
PLATFORM_WEBHOOK_RETRY_BASE_SECONDS = ENV["PLATFORM_WEBHOOK_RETRY_BASE_SECONDS"]
PLATFORM_WEBHOOK_RETRY_HOURS = ENV["PLATFORM_WEBHOOK_RETRY_HOURS"]
PLATFORM_WEBHOOK_TIMEOUT_SECONDS = ENV["PLATFORM_WEBHOOK_TIMEOUT_SECONDS"]
# The old frontend's /api/order/... endpoints (orders/legacy_api/), off by default.
LEGACY_ORDER_API_ENABLED = ENV["LEGACY_ORDER_API_ENABLED"]

# dj-stripe reads its keys from these names; the mode follows the secret key.
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
if STRIPE_LIVE_MODE:
    STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY
    STRIPE_LIVE_PUBLIC_KEY = STRIPE_PUBLISHABLE_KEY
else:
    STRIPE_TEST_SECRET_KEY = STRIPE_SECRET_KEY
    STRIPE_TEST_PUBLIC_KEY = STRIPE_PUBLISHABLE_KEY
if STRIPE_API_BASE.rstrip("/") != "https://api.stripe.com":
    STRIPE_API_HOST = STRIPE_API_BASE
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"

# ---- API ----

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The platform's own tokens first: its frontend's users (bridge/identity.py).
        "bridge.identity.PlatformTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["payments_project.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "payments_project.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "payments_project.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "orders": ENV["API_THROTTLE_ORDERS"],
        "payments": ENV["API_THROTTLE_PAYMENTS"],
    },
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Course payments API",
    "DESCRIPTION": "Products, orders, payments (Ping++, Stripe) and refunds. Money is a "
    "decimal string in major units next to its lower-case ISO 4217 currency.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from drf-spectacular-sidecar, served by this service.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"OrderStatusEnum": "orders.models.ORDER_STATUS_LABELS"},
    # The default enum hook, then the OpenAPI links between operations.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "payments_project.openapi.add_links",
    ],
}

# ---- Background work (Celery) ----

CELERY_BROKER_URL = ENV["CELERY_BROKER_URL"] or "memory://"
# No broker configured: every task runs in the calling process (after commit, since
# callers enqueue with transaction.on_commit), and nothing needs a worker.
CELERY_TASK_ALWAYS_EAGER = not ENV["CELERY_BROKER_URL"]
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves it to be delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
RECONCILE_INTERVAL_SECONDS = ENV["RECONCILE_INTERVAL_SECONDS"]
EXPIRE_INTERVAL_SECONDS = ENV["EXPIRE_INTERVAL_SECONDS"]
WEBHOOK_PRUNE_DAYS = ENV["WEBHOOK_PRUNE_DAYS"]
WEBHOOK_SWEEP_AFTER_SECONDS = ENV["WEBHOOK_SWEEP_AFTER_SECONDS"]
WEBHOOK_APPLY_RETRIES = ENV["WEBHOOK_APPLY_RETRIES"]
CELERY_TASK_ANNOTATIONS = {
    "payments.sync_stripe_event": {"rate_limit": ENV["STRIPE_SYNC_RATE_LIMIT"]},
}
# dj-stripe's rate-limited syncs have a queue (and a worker: deploy/compose.yaml) of
# their own; everything else goes to the default queue, "celery". Both are reached
# through the broker's default exchange, which routes by queue name (Redis and RabbitMQ
# alike): sending a task then costs no look-up of an exchange's bindings.
STRIPE_SYNC_QUEUE = "stripe_sync"
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(""), routing_key=name) for name in ("celery", STRIPE_SYNC_QUEUE)
]
CELERY_TASK_DEFAULT_EXCHANGE = ""
CELERY_TASK_ROUTES = {"payments.sync_stripe_event": {"queue": STRIPE_SYNC_QUEUE}}
CELERY_BEAT_SCHEDULE = {
    "reconcile-payments": {
        "task": "orders.reconcile_payments",
        "schedule": RECONCILE_INTERVAL_SECONDS,
        # A run that outlives its interval is not queued twice.
        "options": {"expires": RECONCILE_INTERVAL_SECONDS},
    },
    "expire-orders": {
        "task": "orders.expire_orders",
        "schedule": EXPIRE_INTERVAL_SECONDS,
        "options": {"expires": EXPIRE_INTERVAL_SECONDS},
    },
    "sweep-webhook-inbox": {
        "task": "payments.sweep_webhook_inbox",
        "schedule": 60,
        "options": {"expires": 60},
    },
    "deliver-outbound-events": {
        "task": "bridge.deliver_events",
        "schedule": 10,
        "options": {"expires": 10},
    },
    "prune-outbound-events": {
        "task": "bridge.prune_outbound_events",
        "schedule": 86400,
        "options": {"expires": 3600},
    },
    "prune-webhook-events": {
        "task": "payments.prune_webhook_events",
        "schedule": 86400,
        "options": {"expires": 3600},
    },
}

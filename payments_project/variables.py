"""Every environment variable the service reads, declared once: name, type, default,
group, whether it is a secret, and help. ``payments_project.config`` reads them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Recognisable on purpose: a system check refuses it when DEBUG is off.
DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"  # noqa: S105

# Types a variable can have, each with the django-environ parser that reads it.
STR, BOOL, INT, LIST, DB_URL, PATH, CACHE_URL = (
    "str",
    "bool",
    "int",
    "list",
    "db_url",
    "path",
    "cache_url",
)

GROUPS = (
    "core",
    "database",
    "tasks",
    "payments",
    "platform",
    "pingxx",
    "stripe",
    "alipay",
    "wechatpay",
)
GROUP_TITLES = {
    "core": "Core",
    "tasks": "Background work (Celery)",
    "database": "Database",
    "payments": "Payments",
    "platform": "The platform (ai-shifu): its users' tokens and the events it hears",
    "pingxx": "Ping++ (Alipay and WeChat Pay)",
    "stripe": "Stripe",
    "alipay": "Alipay, direct (open platform API)",
    "wechatpay": "WeChat Pay, direct (API v3)",
}


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    default: Any
    group: str
    help: str
    secret: bool = False
    # Shown in .env.example instead of the default, for values that are derived
    # (None default) or would be misleading verbatim.
    example: str | None = None
    # Read from the process environment only (it names the .env file itself), so
    # .env.example shows it commented out.
    environment_only: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "DJANGO_ENV_FILE",
        PATH,
        ".env",
        "core",
        "Path of the optional .env file read at start-up, relative to the project "
        "directory. Set it to an empty value to read none. Variables already in the "
        "environment win over the file.",
        environment_only=True,
    ),
    Variable(
        "SECRET_KEY",
        STR,
        DEVELOPMENT_SECRET_KEY,
        "core",
        "Django's signing key: 50 or more random characters in production. The "
        "default is a development key that the system checks refuse when DEBUG is off.",
        secret=True,
    ),
    Variable(
        "DEBUG",
        BOOL,
        False,
        "core",
        "Development mode: detailed error pages and the sandbox payment channel. "
        "Never on in production.",
    ),
    Variable(
        "ALLOWED_HOSTS",
        LIST,
        ["127.0.0.1", "localhost"],
        "core",
        "Comma-separated host names this service answers to.",
    ),
    Variable(
        "CSRF_TRUSTED_ORIGINS",
        LIST,
        [],
        "core",
        "Comma-separated origins (scheme and host) trusted for unsafe requests, "
        "e.g. https://pay.example.com.",
    ),
    Variable(
        "TIME_ZONE",
        STR,
        "UTC",
        "core",
        "Time zone used to display dates in the admin (e.g. Asia/Shanghai).",
    ),
    Variable(
        "LOG_FORMAT",
        STR,
        "text",
        "core",
        "How log records are written to standard error: text (one readable line each) or "
        "json (one JSON object per line, with the order, attempt and refund ids as fields).",
    ),
    Variable(
        "LOG_LEVEL",
        STR,
        "INFO",
        "core",
        "Least severe level logged: DEBUG, INFO, WARNING, ERROR or CRITICAL. Secrets and "
        "card numbers are taken out of every record at any level.",
    ),
    Variable(
        "WEB_CONCURRENCY",
        INT,
        None,
        "core",
        "Number of gunicorn worker processes (deploy/gunicorn.conf.py). Defaults to two "
        "per CPU plus one.",
        example="",
    ),
    Variable(
        "SECURE_SSL_REDIRECT",
        BOOL,
        None,
        "core",
        "Redirect plain HTTP to HTTPS. Defaults to on when DEBUG is off; turn it off "
        "only when a proxy in front already redirects.",
        example="",
    ),
    Variable(
        "SECURE_HSTS_SECONDS",
        INT,
        None,
        "core",
        "Strict-Transport-Security max-age. Defaults to one year when DEBUG is off, "
        "0 when DEBUG is on.",
        example="",
    ),
    Variable(
        "SECURE_HSTS_PRELOAD",
        BOOL,
        False,
        "core",
        "Ask browsers to preload HSTS for the domain (a lasting commitment to HTTPS for "
        "it and its subdomains).",
    ),
    Variable(
        "SECURE_PROXY_SSL_HEADER",
        BOOL,
        False,
        "core",
        "Trust X-Forwarded-Proto: https from the reverse proxy that terminates TLS.",
    ),
    Variable(
        "DATABASE_URL",
        DB_URL,
        "sqlite:///db.sqlite3",
        "database",
        "Database connection URL. The default is a SQLite file in the project "
        "directory; production uses MySQL/MariaDB, e.g. "
        "mysql://user:password@db.internal:3306/orders.",
        secret=True,
    ),
    Variable(
        "DATABASE_TIME_ZONE",
        STR,
        "UTC",
        "database",
        "Time zone of the DATETIME values stored in a MySQL database. Set it to the "
        "zone the legacy order system wrote in (e.g. Asia/Shanghai) when adopting its "
        "tables, or its timestamps are read shifted.",
    ),
    Variable(
        "DATABASE_CONN_MAX_AGE",
        INT,
        60,
        "database",
        "Seconds a database connection is kept open for reuse; 0 closes it after every request.",
    ),
    Variable(
        "DATABASE_BUSY_TIMEOUT",
        INT,
        20,
        "database",
        "SQLite only: seconds a write waits for another writer's lock before the request "
        "answers 503 database_busy.",
    ),
    Variable(
        "CACHE_URL",
        CACHE_URL,
        "locmemcache://",
        "database",
        "The shared cache, which keeps the API's throttling counters: "
        "redis://host:6379/1 in production, so that every worker and machine counts "
        "against one limit. The default, local memory, is per process.",
    ),
    Variable(
        "CELERY_BROKER_URL",
        STR,
        "",
        "tasks",
        "The broker of the background workers: redis://host:6379/0 (or amqp:// for "
        "RabbitMQ). Empty: tasks run in the calling process once its transaction commits, "
        "with no worker or beat (the embedded default).",
        secret=True,
    ),
    Variable(
        "RECONCILE_INTERVAL_SECONDS",
        INT,
        300,
        "tasks",
        "How often beat runs reconciliation (the reconcile_payments command's work).",
    ),
    Variable(
        "EXPIRE_INTERVAL_SECONDS",
        INT,
        60,
        "tasks",
        "How often beat times out unpaid orders (the expire_orders command's work).",
    ),
    Variable(
        "WEBHOOK_PRUNE_DAYS",
        INT,
        90,
        "tasks",
        "Beat deletes, once a day, applied, ignored and rejected inbox rows older than "
        "this many days (prune_webhook_events --delete).",
    ),
    Variable(
        "WEBHOOK_SWEEP_AFTER_SECONDS",
        INT,
        120,
        "tasks",
        "A stored webhook event still unapplied after this many seconds (its task lost "
        "with a broker or a worker) is enqueued again by beat's sweeper, every minute.",
    ),
    Variable(
        "WEBHOOK_APPLY_RETRIES",
        INT,
        10,
        "tasks",
        "How many times a worker retries an event that cannot be applied yet (a refund "
        "before its payment), waiting 10 s, 20 s, 40 s... up to 30 min between tries "
        "(about 2 h in all); then it stays failed in the inbox for staff to apply again.",
    ),
    Variable(
        "STRIPE_SYNC_RATE_LIMIT",
        STR,
        "10/s",
        "tasks",
        "At most this many dj-stripe syncs after Stripe events (each re-fetches the "
        "event's objects from the Stripe API) per worker process, as Celery writes a rate "
        "(10/s, 300/m): keep workers x rate under Stripe's API limit.",
    ),
    Variable(
        "PAYMENT_CHANNELS_ENABLED",
        LIST,
        [],
        "payments",
        "Comma-separated payment channels that take payments: pingxx, stripe, alipay, "
        "wechatpay, sandbox. Each needs its keys below; sandbox is for development only.",
    ),
    Variable(
        "PAYMENT_NOTIFY_BASE_URL",
        STR,
        "",
        "payments",
        "Public base URL of this service (https://pay.example.com), from which the "
        "notification URLs sent with each Alipay and WeChat Pay payment are made "
        "(/webhooks/alipay/, /webhooks/alipay/<integration>/). Required when either is "
        "enabled.",
    ),
    Variable(
        "PAYMENT_CREDENTIALS_KEYS",
        LIST,
        [],
        "payments",
        "Comma-separated Fernet keys that encrypt creators' merchant credentials (payment "
        "integrations) in the database. The first encrypts; every one decrypts, so a new "
        "key is put first, `manage.py payment_credentials_rotate` re-encrypts, and the old "
        "key is then removed (docs/operations.md). Make one with `manage.py "
        "payment_credentials_rotate --new-key`. Required once an integration exists.",
        secret=True,
    ),
    Variable(
        "DEFAULT_PAYMENT_CHANNEL",
        STR,
        "pingxx",
        "payments",
        "Channel used when an order names none. Must be one of the enabled channels.",
    ),
    Variable(
        "PAY_ORDER_EXPIRE_SECONDS",
        INT,
        600,
        "payments",
        "Seconds after which an unpaid order times out.",
    ),
    Variable(
        "PAY_DUPLICATE_PAYMENT_POLICY",
        STR,
        "refund",
        "payments",
        "What happens to a payment for a product the user already owns (a second order "
        "paid): 'refund' gives it back through its channel at once; 'flag' keeps it paid "
        "and lists it for staff under Needs attention.",
    ),
    Variable(
        "RECONCILE_MAX_TRIES",
        INT,
        10,
        "payments",
        "Reconciliation runs that may fail to settle an attempt, refund or inbox event "
        "(provider errors, 404, disagreement) before it is listed under Needs attention "
        "and left for staff.",
    ),
    Variable(
        "RECONCILE_MAX_PENDING_HOURS",
        INT,
        72,
        "payments",
        "Hours an attempt or refund may stay pending at its provider before it is "
        "listed under Needs attention.",
    ),
    Variable(
        "REFUND_APPROVAL_THRESHOLDS",
        STR,
        "CNY:100000,USD:15000,JPY:15000",
        "payments",
        "Per currency, in minor units: once the refunds staff have made and asked for on "
        "one order would pass this total, the refund waits for a second staff member's "
        "approval before any provider call (admin, API and commands alike). A currency "
        "not listed needs approval for every refund; '*:N' sets a threshold for all "
        "others.",
    ),
    Variable(
        "API_THROTTLE_ORDERS",
        STR,
        "30/minute",
        "payments",
        "How many orders one user may create, per second, minute, hour or day.",
    ),
    Variable(
        "API_THROTTLE_PAYMENTS",
        STR,
        "20/minute",
        "payments",
        "How many payments one user may start, per second, minute, hour or day.",
    ),
    Variable(
        "WEBHOOK_MAX_BODY_BYTES",
        INT,
        262144,
        "payments",
        "Largest webhook body accepted, in bytes (default 256 KiB). A larger delivery is "
        "answered 413 without being read, and recorded as rejected without its body.",
    ),
    Variable(
        "WEBHOOK_REJECTED_ROWS_PER_HOUR",
        INT,
        100,
        "payments",
        "Refused webhook deliveries (bad signature, malformed) recorded each hour per "
        "channel with their headers and first 2 KiB; past it, new bodies are only "
        "counted, on one row per hour, so a flood of forgeries cannot grow the database.",
    ),
    Variable(
        "LEGACY_ORDER_API_ENABLED",
        BOOL,
        False,
        "platform",
        "Serve the platform's old frontend at its own order endpoints (POST "
        "/api/order/init-order, reqiure-to-pay, query-order, apply-discount, payment-detail, "
        "stripe/sync, payment/sync), answered in its old envelope. Off: they are unknown "
        "paths (404), and only the REST API under /api/orders/ is served.",
    ),
    Variable(
        "PINGXX_API_BASE",
        STR,
        "https://api.pingxx.com",
        "pingxx",
        "Base URL of the Ping++ API.",
    ),
    Variable(
        "PINGXX_SECRET_KEY",
        STR,
        "",
        "pingxx",
        "Ping++ secret API key (sk_live_... or sk_test_...).",
        secret=True,
    ),
    Variable("PINGXX_APP_ID", STR, "", "pingxx", "Ping++ application id (app_...)."),
    Variable(
        "PINGXX_PRIVATE_KEY",
        STR,
        "",
        "pingxx",
        "Merchant RSA private key (PEM) that signs requests to Ping++. Give this or "
        "PINGXX_PRIVATE_KEY_PATH, not both.",
        secret=True,
    ),
    Variable(
        "PINGXX_PRIVATE_KEY_PATH",
        PATH,
        "",
        "pingxx",
        "Path of a PEM file holding the merchant RSA private key.",
    ),
    Variable(
        "PINGXX_WEBHOOK_PUBLIC_KEY",
        STR,
        "",
        "pingxx",
        "Ping++ RSA public key (PEM) that verifies webhook signatures. Give this or "
        "PINGXX_WEBHOOK_PUBLIC_KEY_PATH, not both. Without it every webhook is refused.",
    ),
    Variable(
        "PINGXX_WEBHOOK_PUBLIC_KEY_PATH",
        PATH,
        "",
        "pingxx",
        "Path of a PEM file holding the Ping++ webhook public key.",
    ),
    Variable(
        "STRIPE_API_BASE",
        STR,
        "https://api.stripe.com",
        "stripe",
        "Base URL of the Stripe API; point it at a Stripe-compatible server on "
        "loopback for local runs.",
    ),
    Variable(
        "STRIPE_SECRET_KEY",
        STR,
        "",
        "stripe",
        "Stripe secret API key (sk_live_... or sk_test_...).",
        secret=True,
    ),
    Variable(
        "STRIPE_PUBLISHABLE_KEY",
        STR,
        "",
        "stripe",
        "Stripe publishable key (pk_live_... or pk_test_...), handed to the frontend.",
    ),
    Variable(
        "STRIPE_WEBHOOK_SECRET",
        STR,
        "",
        "stripe",
        "Signing secret of the Stripe webhook endpoint (whsec_...).",
        secret=True,
    ),
    Variable(
        "STRIPE_CHECKOUT_SUCCESS_URL",
        STR,
        "",
        "stripe",
        "Where Stripe Checkout sends the payer after paying, when the request names no "
        "success URL. {CHECKOUT_SESSION_ID} is replaced by the session id.",
    ),
    Variable(
        "STRIPE_CHECKOUT_CANCEL_URL",
        STR,
        "",
        "stripe",
        "Where Stripe Checkout sends the payer who gives up, when the request names no cancel URL.",
    ),
    Variable(
        "STRIPE_DEFAULT_CURRENCY",
        STR,
        "usd",
        "stripe",
        "ISO 4217 currency (lower case) proposed for new products sold through Stripe.",
    ),
    Variable(
        "STRIPE_JS_URL",
        STR,
        "https://js.stripe.com/v3/",
        "stripe",
        "URL of Stripe.js, loaded by the checkout page's Payment Element; a local double "
        "of Stripe can serve it for offline runs.",
    ),
)

# The direct Alipay and WeChat Pay channels' and the platform bridge's variables, declared
# in modules of their own (which imports the types
# above, hence at the end).
from payments_project.variables_native import NATIVE_VARIABLES  # noqa: E402
from payments_project.variables_platform import PLATFORM_VARIABLES  # noqa: E402

VARIABLES += NATIVE_VARIABLES + PLATFORM_VARIABLES

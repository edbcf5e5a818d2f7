"""One settings module; every difference between machines comes from the environment.

Defaults work on a fresh development machine (local Postgres and Redis, no
Anthropic key = offline mode against the bundled emulator). `.env.example`
documents every variable.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

_DEV_SECRET = "dev-only-secret-key-not-for-production-0123456789abcdefghijklmnop"  # noqa: S105  (used only when DEBUG is on)
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY must be set when DEBUG=0")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "claudeapp.accounts",
    "claudeapp.core",
    "routing",
    "billing",
    "claudeapp.conversations",
    "claudeapp.attachments",
    "claudeapp.jobs",
    "claudeapp.chat",
    "claudeapp.api",
    "claudeapp.requestlog",
    "claudeapp.portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "claudeapp.urls"
ASGI_APPLICATION = "claudeapp.asgi.application"
WSGI_APPLICATION = "claudeapp.wsgi.application"

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
                "claudeapp.core.context_processors.gateway",
            ],
        },
    },
]

# Database: Postgres through psycopg 3 with its connection pool. Under ASGI each
# request's ORM work runs in a thread; the pool caps connections per process, so
# size DB_POOL_MAX_SIZE x (web processes + worker processes) under max_connections.
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/claudeapp")}
DATABASES["default"]["CONN_MAX_AGE"] = 0
if env.bool("DB_POOL", default=True):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
# Threads per process that run the calls' database steps (claudeapp/core/dbthread.py): admission and
# settlement hold a connection only while they run, so this many at most are checked out by calls.
# Keep it at or under DB_POOL_MAX_SIZE.
DB_THREADS = env.int("DB_THREADS", default=8)
# The web process's cyclic garbage collector thresholds (generation 0, 1, 2), set at startup by
# claudeapp/asgi.py; empty for Python's own (700, 10, 10). With Python's, a busy process's calls in
# flight outlive a dozen young collections, reach the oldest generation and die there, where only a full
# pass finds them: ~10% of a call's CPU went to the collector (docs/benchmarks.md, tenth pass).
_GC_THRESHOLD_TEXT = [part.strip() for part in env.list("GC_THRESHOLD", default=["50000", "20", "10"]) if part.strip()]
_GC_THRESHOLD_OK = len(_GC_THRESHOLD_TEXT) == 3 and all(p.isdigit() and int(p) > 0 for p in _GC_THRESHOLD_TEXT)
if _GC_THRESHOLD_TEXT and not _GC_THRESHOLD_OK:
    raise environ.ImproperlyConfigured(
        "GC_THRESHOLD: three positive integers, generation 0,1,2 (e.g. 50000,20,10), or empty for Python's default"
    )
GC_THRESHOLD = tuple(int(part) for part in _GC_THRESHOLD_TEXT)
# The budget hold and the settlement run as prepared statements (claudeapp/core/prepared.py); 0 for a
# pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
# Django turns psycopg's preparing off; its own (client-binding) cursors never prepare whatever this says.
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5 if DB_PREPARED_STATEMENTS else None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# claudeapp/core/redisconn.py: connections per process (and event loop), and how long a command or
# a wait for a free connection may take before the caller treats Redis as unavailable.
REDIS_POOL_SIZE = env.int("REDIS_POOL_SIZE", default=256)
REDIS_TIMEOUT_SECONDS = env.float("REDIS_TIMEOUT_SECONDS", default=0.5)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="claudeapp"),
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
# Sign-in throttling on every password form (claudeapp/accounts/lockout.py): this many failures per
# username, or per client address, within the window lock further attempts out for the cool-off.
AUTHENTICATION_BACKENDS = [
    "claudeapp.accounts.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_LOCKOUT_USER_FAILURES = env.int("LOGIN_LOCKOUT_USER_FAILURES", default=5)
LOGIN_LOCKOUT_IP_FAILURES = env.int("LOGIN_LOCKOUT_IP_FAILURES", default=20)
LOGIN_LOCKOUT_WINDOW_SECONDS = env.int("LOGIN_LOCKOUT_WINDOW_SECONDS", default=15 * 60)
LOGIN_LOCKOUT_COOLOFF_SECONDS = env.int("LOGIN_LOCKOUT_COOLOFF_SECONDS", default=15 * 60)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Served by servestatic in front of Django (claudeapp/core/staticfiles.py): from the app directories in
# DEBUG or while STATIC_ROOT is empty; collectstatic adds gzip (and brotli) copies it serves instead.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "servestatic.storage.CompressedStaticFilesStorage"},
}

# Security. Everything `check --deploy` asks for is on whenever DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False) or not DEBUG
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Claude gateway API",
    "DESCRIPTION": "Partner REST API of the Claude gateway.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Claude upstream. No key = offline mode: the SDK talks to the bundled emulator.
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
EMULATOR_PORT = env.int("EMULATOR_PORT", default=8765)
CLAUDE_OFFLINE = not ANTHROPIC_API_KEY
ANTHROPIC_BASE_URL = env.str(
    "ANTHROPIC_BASE_URL",
    default=f"http://127.0.0.1:{EMULATOR_PORT}" if CLAUDE_OFFLINE else "https://api.anthropic.com",
)
ANTHROPIC_TIMEOUT_SECONDS = env.float("ANTHROPIC_TIMEOUT_SECONDS", default=120.0)
ANTHROPIC_CONNECT_TIMEOUT_SECONDS = env.float("ANTHROPIC_CONNECT_TIMEOUT_SECONDS", default=5.0)
# How long an idle upstream connection is kept for reuse. Keep it under the idle timeout of whatever
# answers the gateway's connections (Anthropic's edge, or a proxy in between): a connection the far end
# is closing as the gateway sends on it fails the call's attempt (retried, and counted by the breaker).
ANTHROPIC_KEEPALIVE_SECONDS = env.float("ANTHROPIC_KEEPALIVE_SECONDS", default=30.0)
# Upstream connections one process may hold open (each open stream keeps one): docs/deploy.md.
ANTHROPIC_POOL_SIZE = env.int("ANTHROPIC_POOL_SIZE", default=4096)

# Celery on Redis is at-least-once: late acks, requeue when a worker dies, one
# message prefetched, and a visibility timeout longer than any task can run.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=900)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 3600),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "interactive"
CELERY_WORKER_POOL = env.str("CELERY_WORKER_POOL", default="threads")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=16)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}

SEED_DEMO_USERS = env.bool("SEED_DEMO_USERS", default=DEBUG)
DEMO_ADMIN_PASSWORD = env.str("DEMO_ADMIN_PASSWORD", default="admin")
DEMO_USER_PASSWORD = env.str("DEMO_USER_PASSWORD", default="demo")

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# json: one JSON object per line (claudeapp/core/jsonlog.py), every record with request_id, surface and job_id
# (claudeapp/core/logcontext.py); the calls' own lines carry the fields in docs/operations.md. text: for people.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "claudeapp.core.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "claudeapp.core.jsonlog.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own handlers for "django" (a DEBUG-only console, mail_admins) would print each line twice.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- metrics (/metrics, claudeapp/ops/metrics_view.py) ---
# Either grants access: the bearer token (Authorization: Bearer ...), or a client address in the networks
# (REMOTE_ADDR: behind a proxy, uvicorn's --forwarded-allow-ips decides it). Empty list: token only.
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
# The module the gateway reports upstream attempts to (by path: claudeapp.claude imports no project code).
CLAUDE_OBSERVER = env.str("CLAUDE_OBSERVER", default="claudeapp.core.metrics")

# --- claude gateway ---
# The gateway owns retries (the SDK's are off): attempts per model, exponential backoff with
# jitter, and a cap on how long a retry-after may make us wait before we try the fallback.
CLAUDE_MAX_ATTEMPTS = env.int("CLAUDE_MAX_ATTEMPTS", default=3)
CLAUDE_RETRY_BASE_SECONDS = env.float("CLAUDE_RETRY_BASE_SECONDS", default=0.5)
CLAUDE_RETRY_MAX_SECONDS = env.float("CLAUDE_RETRY_MAX_SECONDS", default=8.0)
CLAUDE_RETRY_AFTER_CAP_SECONDS = env.float("CLAUDE_RETRY_AFTER_CAP_SECONDS", default=10.0)
# complete()/acomplete() stream internally above this many max_tokens (long answers would
# otherwise sit silent past read timeouts; the SDK refuses them without streaming too).
CLAUDE_NONSTREAMING_MAX_TOKENS = env.int("CLAUDE_NONSTREAMING_MAX_TOKENS", default=4096)
# Circuit breaker per model, state in Redis (defaults; a per-model provider may override).
CLAUDE_BREAKER_FAILURE_THRESHOLD = env.int("CLAUDE_BREAKER_FAILURE_THRESHOLD", default=5)
CLAUDE_BREAKER_WINDOW_SECONDS = env.float("CLAUDE_BREAKER_WINDOW_SECONDS", default=60.0)
CLAUDE_BREAKER_COOLDOWN_SECONDS = env.float("CLAUDE_BREAKER_COOLDOWN_SECONDS", default=30.0)
CLAUDE_BREAKER_HALF_OPEN_PROBES = env.int("CLAUDE_BREAKER_HALF_OPEN_PROBES", default=1)
CLAUDE_BREAKER_PROBE_LEASE_SECONDS = env.float("CLAUDE_BREAKER_PROBE_LEASE_SECONDS", default=120.0)
CLAUDE_BREAKER_POLICY_PROVIDER = env.str("CLAUDE_BREAKER_POLICY_PROVIDER", default="")
# How long a process trusts a closed circuit it saw without asking Redis again (0: every call asks).
CLAUDE_BREAKER_LOCAL_SECONDS = env.float("CLAUDE_BREAKER_LOCAL_SECONDS", default=1.0)
CLAUDE_BREAKER_KEY_PREFIX = f"{CACHES['default']['KEY_PREFIX']}:claude:breaker"

# --- jobs ---
# The Job row owns retries for queued work: attempts are counted in the row, a retry is a
# re-publish with a countdown, Celery's own retries are never used. Keep every countdown
# (JOBS_RETRY_MAX_SECONDS, webhook backoff <= 1 h) below CELERY_VISIBILITY_TIMEOUT.
JOBS_MAX_ATTEMPTS = env.int("JOBS_MAX_ATTEMPTS", default=5)
JOBS_CALL_TIMEOUT_SECONDS = env.float("JOBS_CALL_TIMEOUT_SECONDS", default=ANTHROPIC_TIMEOUT_SECONDS)
# A running job's lease is renewed every third of it by its worker's heartbeat thread (jobs/heartbeat.py)
# while the call is in flight; one that expires had its worker die and is run again by the sweeper.
# Short, so a killed worker's jobs come back within lease + sweep interval (about 40 s by default).
JOBS_LEASE_SECONDS = env.int("JOBS_LEASE_SECONDS", default=30)
# A queued job (or owed webhook delivery) nobody picked up this long after it was due had its broker
# message lost: a Redis flush, a failed publish, or a countdown retry held (unacked) by a worker that
# was then killed, which Redis keeps invisible for the whole visibility timeout (over an hour). The
# sweeper publishes it again: due + 40 s + one sweep is under the minute a killed worker's running jobs
# take (lease + sweep). A message that was only slow is harmless to send twice (the claim runs it once);
# under a backlog longer than this, each waiting job gets one extra no-op message per 40 s.
JOBS_QUEUED_STALE_SECONDS = env.int("JOBS_QUEUED_STALE_SECONDS", default=40)
JOBS_RETRY_BASE_SECONDS = env.float("JOBS_RETRY_BASE_SECONDS", default=2.0)
JOBS_RETRY_MAX_SECONDS = env.float("JOBS_RETRY_MAX_SECONDS", default=300.0)
JOBS_RESULT_RETENTION_DAYS = env.int("JOBS_RESULT_RETENTION_DAYS", default=30)
JOBS_SWEEP_INTERVAL_SECONDS = env.float("JOBS_SWEEP_INTERVAL_SECONDS", default=10.0)
JOBS_WEBHOOK_ALLOW_PRIVATE = env.bool("JOBS_WEBHOOK_ALLOW_PRIVATE", default=False)
# Empty = derived from SECRET_KEY (claudeapp.jobs.webhooks.secret_for); each principal signs with its own key.
JOBS_WEBHOOK_SECRET = env.str("JOBS_WEBHOOK_SECRET", default="")
JOBS_WEBHOOK_MAX_ATTEMPTS = env.int("JOBS_WEBHOOK_MAX_ATTEMPTS", default=8)
JOBS_WEBHOOK_RETRY_BASE_SECONDS = env.float("JOBS_WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
JOBS_WEBHOOK_TIMEOUT_SECONDS = env.float("JOBS_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Called with the job, in its transaction, whenever a job ends (jobs/transitions.py), Django-backend
# style: dotted paths, because the packages that react to a job's end sit above jobs in the layers.
JOBS_TERMINAL_HOOKS = ["claudeapp.conversations.job_answers.apply"]
CELERY_BEAT_SCHEDULE["jobs-sweep"] = {"task": "claudeapp.jobs.tasks.sweep", "schedule": JOBS_SWEEP_INTERVAL_SECONDS}
CELERY_BEAT_SCHEDULE["jobs-purge-finished"] = {"task": "claudeapp.jobs.tasks.purge_finished", "schedule": 3600.0}

# --- billing ---
# Budget periods (day, month) and the ledger's daily rollups follow this zone, not TIME_ZONE.
BILLING_TIME_ZONE = env.str("BILLING_TIME_ZONE", default="UTC")
# Holds older than this with no expiry of their own belong to dead processes and are released.
BILLING_RESERVATION_REAP_AGE_SECONDS = env.int("BILLING_RESERVATION_REAP_AGE_SECONDS", default=3600)
# Redis down: admit requests without rate limits (logged) rather than refuse them all.
BILLING_RATE_LIMIT_FAIL_OPEN = env.bool("BILLING_RATE_LIMIT_FAIL_OPEN", default=True)
# A concurrency slot a dead process never returned frees itself after this long.
BILLING_CONCURRENCY_LEASE_SECONDS = env.int("BILLING_CONCURRENCY_LEASE_SECONDS", default=600)
# Prices and rate-limit policies are cached per process; admin edits apply everywhere within this.
BILLING_CACHE_SECONDS = env.float("BILLING_CACHE_SECONDS", default=2.0)
# Budget-alert webhooks pass the same SSRF guard as job webhooks (claudeapp/core/ssrf.py); 1 lifts it (dev, tests).
BILLING_ALERT_WEBHOOK_ALLOW_PRIVATE = env.bool("BILLING_ALERT_WEBHOOK_ALLOW_PRIVATE", default=False)

# Input accounting (claudeapp/calls/accounting.py): prompts whose local bound is unsure (images,
# PDFs, URLs) or above this many tokens are counted by upstream's free count_tokens before the hold.
ACCOUNTING_COUNT_TOKENS_ABOVE = env.int("ACCOUNTING_COUNT_TOKENS_ABOVE", default=4096)
ACCOUNTING_COUNT_CACHE_SECONDS = env.int("ACCOUNTING_COUNT_CACHE_SECONDS", default=3600)
ACCOUNTING_COUNT_TIMEOUT_SECONDS = env.float("ACCOUNTING_COUNT_TIMEOUT_SECONDS", default=5.0)

# Chat attachments (claudeapp/attachments/): per file, per message, and a PDF's pages. The API's own
# limits are 5 MB per image, 32 MB per request and 100 PDF pages; the browser checks these first.
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=5 * 1024 * 1024)
ATTACHMENT_MAX_COUNT = env.int("ATTACHMENT_MAX_COUNT", default=5)
ATTACHMENT_MAX_PDF_PAGES = env.int("ATTACHMENT_MAX_PDF_PAGES", default=100)
# Uploaded but never sent: dropped after this long (hourly, by beat).
ATTACHMENT_UNSENT_MAX_AGE_SECONDS = env.int("ATTACHMENT_UNSENT_MAX_AGE_SECONDS", default=24 * 3600)
CELERY_BEAT_SCHEDULE["attachments-purge-unsent"] = {
    "task": "claudeapp.attachments.tasks.purge_unsent",
    "schedule": 3600.0,
}
# A stream whose reader left is read to its end (bounded by max_tokens) so the ledger gets
# upstream's exact usage; past this many seconds it is closed and billed its upper bound.
STREAM_DRAIN_SECONDS = env.float("STREAM_DRAIN_SECONDS", default=300.0)
# Calls in flight (claudeapp/calls/inflight.py): each upstream call leaves a record in Redis until it is
# settled, and each web/worker process a heartbeat key living CALLS_HEARTBEAT_TTL_SECONDS, refreshed every
# CALLS_HEARTBEAT_SECONDS. Every CALLS_REAPER_INTERVAL_SECONDS the reaper bills the calls of processes whose
# heartbeat is gone (kill -9 mid-stream: the input and the output delivered), or older than
# CALLS_INFLIGHT_MAX_AGE_SECONDS. A stream's output is checkpointed every CALLS_INFLIGHT_CHECKPOINT_SECONDS.
CALLS_HEARTBEAT_TTL_SECONDS = env.float("CALLS_HEARTBEAT_TTL_SECONDS", default=15.0)
CALLS_HEARTBEAT_SECONDS = env.float("CALLS_HEARTBEAT_SECONDS", default=CALLS_HEARTBEAT_TTL_SECONDS / 3)
CALLS_REAPER_INTERVAL_SECONDS = env.float("CALLS_REAPER_INTERVAL_SECONDS", default=20.0)
# A process is dead when its heartbeat is missing on two reaper looks this far apart (one that outlived a
# Redis outage beats again within CALLS_HEARTBEAT_SECONDS of its return): an orphan is billed one reaper
# interval later than on one look, and a live process's calls never.
CALLS_ORPHAN_CONFIRM_SECONDS = env.float("CALLS_ORPHAN_CONFIRM_SECONDS", default=CALLS_HEARTBEAT_SECONDS + 1)
CALLS_INFLIGHT_CHECKPOINT_SECONDS = env.float("CALLS_INFLIGHT_CHECKPOINT_SECONDS", default=1.0)
CALLS_INFLIGHT_MAX_AGE_SECONDS = env.float("CALLS_INFLIGHT_MAX_AGE_SECONDS", default=STREAM_DRAIN_SECONDS + 1800)
# A non-streamed /anthropic call's settlement, which its reply does not wait for, lets the admissions under
# way in its process go first, for this long at most (claudeapp/calls/yielding.py); 0 turns that off.
CALLS_SETTLE_YIELD_MAX_SECONDS = env.float("CALLS_SETTLE_YIELD_MAX_SECONDS", default=0.2)
# ...and goes with the others queued meanwhile, at most this many in one thread hop and connection.
CALLS_SETTLE_BATCH_MAX = env.int("CALLS_SETTLE_BATCH_MAX", default=32)
# ...one batch at a time, or up to this many at once (on as many of the DB_THREADS) while a full batch or
# more is waiting: settlements arriving faster than one thread runs them must not fall further behind. Half
# the threads by default, so admissions always find the other half.
CALLS_SETTLE_BATCHES_IN_FLIGHT = env.int("CALLS_SETTLE_BATCHES_IN_FLIGHT", default=max(1, DB_THREADS // 2))
if CALLS_SETTLE_BATCHES_IN_FLIGHT < 1:
    raise environ.ImproperlyConfigured("CALLS_SETTLE_BATCHES_IN_FLIGHT must be at least 1")
CELERY_IMPORTS = ["claudeapp.calls.tasks"]  # not an installed app: its beat task is loaded by name
CELERY_BEAT_SCHEDULE["calls-reap-interrupted"] = {
    "task": "claudeapp.calls.tasks.reap_interrupted",
    "schedule": CALLS_REAPER_INTERVAL_SECONDS,
}
CELERY_BEAT_SCHEDULE["billing-reap-reservations"] = {
    "task": "billing.tasks.reap_stale_reservations",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["billing-roll-over-budgets"] = {"task": "billing.tasks.roll_over_budget_periods", "schedule": 60.0}
# Budget alerts (80/95%...) go by e-mail to these addresses (comma-separated), and to the budget's user or
# key owner when they have an address; a budget's webhook URL gets them too. Sent through Django's mail backend.
BILLING_ALERT_EMAILS = env.list("BILLING_ALERT_EMAILS", default=[])
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default=f"django.core.mail.backends.{'console' if DEBUG else 'smtp'}.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="claude-gateway@localhost")

# --- request log (claudeapp/requestlog/) ---
# Every call's ending, refusals included, buffered in-process and written in bulk by a flusher thread.
REQUEST_LOG_ENABLED = env.bool("REQUEST_LOG_ENABLED", default=True)
REQUEST_LOG_FLUSH_SECONDS = env.float("REQUEST_LOG_FLUSH_SECONDS", default=0.5)
REQUEST_LOG_FLUSH_ROWS = env.int("REQUEST_LOG_FLUSH_ROWS", default=200)
REQUEST_LOG_MAX_BUFFERED = env.int("REQUEST_LOG_MAX_BUFFERED", default=50_000)
REQUEST_LOG_RETENTION_DAYS = env.int("REQUEST_LOG_RETENTION_DAYS", default=30)  # the default; operators edit it
CELERY_BEAT_SCHEDULE["requestlog-purge"] = {"task": "claudeapp.requestlog.tasks.purge_request_log", "schedule": 3600.0}

# --- api ---
# Partner keys are stored as HMAC-SHA256(pepper, key). Changing the pepper invalidates every key.
# Empty = derived from SECRET_KEY; set it explicitly so SECRET_KEY can rotate without killing keys.
import hashlib  # noqa: E402  (kept inside this block: only the pepper derivation needs it)

PARTNER_KEY_PEPPER = env.str("PARTNER_KEY_PEPPER", default="") or (
    hashlib.sha256(f"claudeapp.api.partner-key-pepper:{SECRET_KEY}".encode()).hexdigest()
)
# Verified keys are held per process this long; revocation still applies at once (Redis version check).
PARTNER_KEY_CACHE_SECONDS = env.float("PARTNER_KEY_CACHE_SECONDS", default=5.0)
# After a rotation the old key keeps working this long (a key's own setting in the admin overrides it),
# and so does the old webhook signing secret (deliveries carry both signatures meanwhile).
PARTNER_KEY_ROTATION_GRACE_SECONDS = env.int("PARTNER_KEY_ROTATION_GRACE_SECONDS", default=24 * 3600)
JOBS_WEBHOOK_SECRET_GRACE_SECONDS = env.int("JOBS_WEBHOOK_SECRET_GRACE_SECONDS", default=24 * 3600)
# Bodies larger than this on /api and /anthropic get 413 before they are parsed (Anthropic's own cap is 32 MB).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=10 * 1024 * 1024)
# JSON bodies nested deeper than this (objects and arrays) get 400 naming the field (claudeapp/api/bodies.py).
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=64)
# Partner endpoints authenticate by key only; session auth stays the DRF default for the browser's views.
API_AUTHENTICATION_CLASSES = ["claudeapp.api.auth.PartnerKeyAuthentication"]
REST_FRAMEWORK["EXCEPTION_HANDLER"] = "claudeapp.api.errors.exception_handler"
INSTALLED_APPS.append("drf_spectacular_sidecar")  # Swagger UI assets served locally: the docs work offline
SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        "POSTPROCESSING_HOOKS": [
            "drf_spectacular.hooks.postprocess_schema_enums",
            "claudeapp.api.schema.add_error_responses",
        ],
    }
)
MIDDLEWARE.insert(1, "claudeapp.api.middleware.RequestIdMiddleware")
MIDDLEWARE.insert(2, "claudeapp.api.middleware.ApiBoundaryMiddleware")
# Innermost: a database that cannot be reached turns a browser page into a plain 503 (the API's own shapes
# come from claudeapp.api.errors); see claudeapp/core/unavailable.py.
MIDDLEWARE.append("claudeapp.core.unavailable.DatabaseUnavailableMiddleware")
MIDDLEWARE.append("claudeapp.accounts.middleware.LockoutMiddleware")  # a locked-out sign-in answers 429
# Content-Security-Policy (django-csp; claudeapp/core/csp.py). Outside the middleware that replace responses
# (lockout, database unavailable) so their pages carry it too. No inline script: ours are static files; the
# API docs' start-up script carries the nonce. Inline style attributes (the usage bars) stay allowed,
# <style> elements need the nonce; browsers without style-src-elem fall back to style-src.
from csp.constants import NONCE  # noqa: E402  (kept inside this block: only the policy needs it)

INSTALLED_APPS.append("csp")
MIDDLEWARE.insert(1, "claudeapp.core.csp.CSPMiddleware")  # right after SecurityMiddleware
# The partner call endpoints (claudeapp/api/fastpath.py) run settings.MIDDLEWARE minus these: key-authenticated,
# CSRF-exempt JSON/SSE views, where sessions, CSRF, user auth and messages do nothing, no HTML is rendered
# (CSP), the API answers its own 503 shape, and there is no sign-in to lock out.
PARTNER_CALL_SKIPPED_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "claudeapp.core.csp.CSPMiddleware",
    "claudeapp.core.unavailable.DatabaseUnavailableMiddleware",
    "claudeapp.accounts.middleware.LockoutMiddleware",
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],  # replaced by 'nonce-…' on pages that use request.csp_nonce
        "style-src": ["'self'", "'unsafe-inline'"],
        "style-src-elem": ["'self'", NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- routing ---
# The classifier model: an alias or a model id from the model map (default: the `simple` tier, Haiku).
ROUTER_CLASSIFIER_MODEL = env.str("ROUTER_CLASSIFIER_MODEL", default="simple")
# A classifier slower than this is abandoned and the request goes to the `moderate` tier (Sonnet).
ROUTER_CLASSIFIER_TIMEOUT_SECONDS = env.float("ROUTER_CLASSIFIER_TIMEOUT_SECONDS", default=2.0)
ROUTER_CLASSIFIER_CACHE_SECONDS = env.int("ROUTER_CLASSIFIER_CACHE_SECONDS", default=7 * 24 * 3600)
# Each process checks the model map's Redis version key at most this often: admin edits apply within it.
MODEL_MAP_REFRESH_SECONDS = env.float("MODEL_MAP_REFRESH_SECONDS", default=1.0)
# Rule regexes and the classifier see the first this-many characters of the last user message (also stored).
ROUTER_REGEX_MAX_CHARS = env.int("ROUTER_REGEX_MAX_CHARS", default=2000)

# --- batches ---
# Jobs with mode=batch wait in `queued` and go upstream as Message Batches (50% off, up to 24 h).
# A model's waiting jobs are submitted once this many wait (capped at the API's 100,000 per batch)
# or once the oldest has waited JOBS_BATCH_MAX_WAIT_SECONDS; the beat task runs every POLL seconds.
JOBS_BATCH_MAX_REQUESTS = env.int("JOBS_BATCH_MAX_REQUESTS", default=10_000)
JOBS_BATCH_MAX_WAIT_SECONDS = env.float("JOBS_BATCH_MAX_WAIT_SECONDS", default=300.0)
# What a batch job's `eta` adds for upstream's processing once submitted (Anthropic: most batches end
# within an hour, all within 24 h).
JOBS_BATCH_EXPECTED_SECONDS = env.float("JOBS_BATCH_EXPECTED_SECONDS", default=3600.0)
JOBS_BATCH_POLL_SECONDS = env.float("JOBS_BATCH_POLL_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE["jobs-batches"] = {
    "task": "claudeapp.jobs.tasks.process_batches",
    "schedule": JOBS_BATCH_POLL_SECONDS,
}
# /anthropic Message Batches: bill the results of ended batches nobody has read yet.
CELERY_BEAT_SCHEDULE["anthropic-batches"] = {
    "task": "claudeapp.api.tasks.settle_anthropic_batches",
    "schedule": JOBS_BATCH_POLL_SECONDS,
}

# --- partner messages API ---
# POST /api/v1/messages without max_tokens asks for this many (then capped by the chosen model's max output).
API_DEFAULT_MAX_TOKENS = env.int("API_DEFAULT_MAX_TOKENS", default=4096)

# --- calls (admission) ---
# How long one request may wait for room under the organisation's Anthropic limits before it is
# queued (chat) or answered 429 with retry-after (API).
UPSTREAM_MAX_WAIT_SECONDS = env.float("UPSTREAM_MAX_WAIT_SECONDS", default=2.0)

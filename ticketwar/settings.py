"""ticketwar settings, read from the environment.

Every value comes from an environment variable with a safe development default;
``TICKETWAR_ENV=production`` refuses the unsafe ones (DEBUG on, the default
SECRET_KEY, no ALLOWED_HOSTS). The README lists every variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import warnings
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from common.redisconf import (
    parse_sentinels,
    sentinel_broker_url,
    sentinel_cache_location,
    sentinel_kwargs,
    tls_options,
    url_parts,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- typed environment helpers -------------------------------------------------------


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


_RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_rate(name: str, default: str) -> tuple[int, int]:
    """``N/period`` (``300/15m``, ``100/h``, ``5/30s``) as ``(N, seconds)``."""
    raw = (os.environ.get(name) or default).strip()
    match = re.fullmatch(r"([0-9]+)/([0-9]*)([smhd])", raw)
    if match is None or match[2].startswith("0"):
        raise ImproperlyConfigured(f"{name} must look like 300/15m (a count per s, m, h or d), not {raw!r}.")
    return int(match[1]), int(match[2] or 1) * _RATE_UNITS[match[3]]


# --- core -----------------------------------------------------------------------------

ENVIRONMENT = env_str("TICKETWAR_ENV", "development")
if ENVIRONMENT not in {"development", "test", "production"}:
    raise ImproperlyConfigured("TICKETWAR_ENV must be development, test or production.")
PRODUCTION = ENVIRONMENT == "production"

_DEV_SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 - refused in production below
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "ticketwar.views.csrf_failure"

if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production (TICKETWAR_ENV=production).")
    if SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("Set SECRET_KEY to a random string of at least 32 characters in production.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("Set ALLOWED_HOSTS (comma-separated host names) in production.")
    # A secret still carrying the placeholder of the shipped examples (deploy/kubernetes/
    # secrets.env.example) is no secret: everyone who read the repository knows it.
    for _name in (
        "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CACHE_REDIS_URL", "CELERY_BROKER_URL", "CHANNEL_REDIS_URL",
        "EMAIL_HOST_PASSWORD", "ALERT_WEBHOOK_SECRET", "METRICS_TOKEN",
    ):  # fmt: skip
        if "change-me" in os.environ.get(_name, "").lower():
            raise ImproperlyConfigured(f"{_name} still holds the example's placeholder (change-me): set a real one.")
# A Kubernetes pod's own address (downward API): Prometheus scrapes each pod by it (deploy/kubernetes).
ALLOWED_HOSTS += env_list("POD_IP")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_prometheus",
    "channels",
    "accounts",
    "common",
    "events",
    "tickets",
    "queueing",
    "monitoring",
    "waitlist",
    "claims",
]

MIDDLEWARE = [
    # Outermost, so it times the whole request: latency and answers per view (Prometheus), the
    # per-minute request log, DB queries per request, active students (monitoring/middleware.py).
    "monitoring.middleware.MonitoringMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The signed-cookie session (SESSION_ENGINE): read from the cookie, no store.
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, refusing ended sessions; the user from process memory (accounts/revocation.py).
    "accounts.revocation.AuthenticationMiddleware",
    # Loads the session's user first, so a database outage answers 503, also with DEBUG on.
    "common.errors.DatabaseOutageMiddleware",
    # Per-user / per-address budgets for /api/ (after auth: logged-in traffic is keyed per user).
    "common.ratelimit.ApiRateLimitMiddleware",
    # Pages only (common/lean.py): no message storage for /api/, no X-Frame-Options on JSON.
    "common.lean.PageMessageMiddleware",
    "common.lean.PageXFrameOptionsMiddleware",
    # Content-Security-Policy on pages (not on JSON: common/lean.py).
    "common.lean.PageCSPMiddleware",
    "common.errors.JsonErrorMiddleware",
]

ROOT_URLCONF = "ticketwar.urls"
# HTTP: Django's WSGI handler under granian (the Procfile's web); websockets: the ASGI app under
# uvicorn (the Procfile's ws), a process of its own behind the same proxy.
ASGI_APPLICATION = "ticketwar.asgi.application"
WSGI_APPLICATION = "ticketwar.wsgi.application"

# Where pages open their websockets (scheme, host and port, e.g. ws://127.0.0.1:8001). Empty: the
# page's own origin, for production where the proxy routes /ws/ to the ws process. `make run`
# sets it to the ws process's port. A Content-Security-Policy's connect-src reads it too.
WEBSOCKET_ORIGIN = env_str("WEBSOCKET_ORIGIN", "").rstrip("/")
if WEBSOCKET_ORIGIN and (
    not WEBSOCKET_ORIGIN.startswith(("ws://", "wss://")) or "/" in WEBSOCKET_ORIGIN.split("://", 1)[1]
):
    raise ImproperlyConfigured("WEBSOCKET_ORIGIN must be empty or ws[s]://host[:port], without a path.")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "common.context_processors.websocket_origin",
                "tickets.context_processors.pocket",
                "tickets.context_processors.door",
            ],
        },
    },
]

# --- data stores ---------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:55432/ticketwar")
if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured("DATABASE_URL must be a PostgreSQL URL (postgres://user:pass@host:port/name).")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        # Persistent connections: a claim burst must not pay a TCP+auth handshake per request.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # Off: a health check is a `SELECT 1` before each request's first query (a claim was two
        # statements, not one). A connection broken by a database restart fails that one request
        # with the JSON 503, and Django drops it at the request's end (errors_occurred).
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", False),
    )
}
DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
DATABASES["default"].setdefault("OPTIONS", {})
# A claim burst must fail fast rather than queue behind a dead server.
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 3))
# Behind a transaction-mode pooler (Supabase :6543, PgBouncer) sessions are not kept:
# no server-side cursors and no prepared statements.
if env_bool("DATABASE_POOLER_TRANSACTION_MODE", False):
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
# Web requests run on a fixed pool of WEB_THREADS threads per process (ticketwar/asgi.py),
# each keeping its persistent connection: at most WEB_THREADS connections per web process.
WEB_THREADS = env_int("WEB_THREADS", 8)
# DATABASE_POOL_SIZE > 0 gives the process a psycopg pool of at most that many connections
# instead (Django requires CONN_MAX_AGE 0 with it), for code that starts threads of its own.
# Off by default; never for Celery: a pool must not be opened before prefork workers fork.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0)
if DATABASE_POOL_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 2, "max_size": DATABASE_POOL_SIZE, "timeout": 10}
DATABASES["default"]["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME", "test_ticketwar")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def env_redis_url(name: str, default: str) -> str:
    # Empty counts as unset (a ConfigMap key left blank): the role shares the default server.
    url = env_str(name) or default
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"{name} must be a redis:// or rediss:// URL.")
    return url


# Three roles, each its own Redis if wanted (docs/DEPLOYMENT.md): the cache (also sessions, rate
# limits, the queue's figures), the Celery broker (also the worker kick) and the channel layer.
# A metered Redis (Upstash) suits the cache only: the broker and the layer poll all day.
REDIS_URL = env_redis_url("REDIS_URL", "redis://127.0.0.1:56379/0")
CACHE_REDIS_URL = env_redis_url("CACHE_REDIS_URL", REDIS_URL)
CELERY_BROKER_URL = env_redis_url("CELERY_BROKER_URL", REDIS_URL)
CHANNEL_REDIS_URL = env_redis_url("CHANNEL_REDIS_URL", REDIS_URL)
# rediss:// verifies the server's certificate (and host name) for every role: against this CA
# file (PEM) when set, else the system's CA store.
REDIS_CA_FILE = env_str("REDIS_CA_FILE")
if REDIS_CA_FILE and not Path(REDIS_CA_FILE).is_file():
    raise ImproperlyConfigured(f"REDIS_CA_FILE {REDIS_CA_FILE!r} is not a readable file.")

# Seconds a Redis call may take before it counts as a failure. Small on purpose: a hung
# Redis must not add a long wait to every request (see the circuit breaker in common).
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 0.25)

# Redis Sentinel: with REDIS_SENTINELS (host:port, comma-separated) every role that has no URL
# of its own finds the primary of REDIS_SENTINEL_MASTER through the sentinels, and follows a
# failover; REDIS_URL then gives only the password, the database and TLS (rediss://).
try:
    REDIS_SENTINELS = parse_sentinels(env_list("REDIS_SENTINELS"))
except ValueError as exc:
    raise ImproperlyConfigured(f"REDIS_SENTINELS must be host:port pairs separated by commas: {exc}.") from None
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "mymaster")
REDIS_SENTINEL_ROLES = [
    role
    for role, name in (("cache", "CACHE_REDIS_URL"), ("broker", "CELERY_BROKER_URL"), ("channels", "CHANNEL_REDIS_URL"))
    if REDIS_SENTINELS and not env_str(name)
]
if "broker" in REDIS_SENTINEL_ROLES:
    CELERY_BROKER_URL = sentinel_broker_url(REDIS_URL, REDIS_SENTINELS)
# Sentinels hand out the primary's address, not its host name: over TLS its certificate can only
# be checked against a CA of your own (the system's CAs do not sign private addresses).
if REDIS_SENTINELS and url_parts(REDIS_URL)["tls"] and not REDIS_CA_FILE:
    raise ImproperlyConfigured("With REDIS_SENTINELS and a rediss:// REDIS_URL, set REDIS_CA_FILE (the CA's PEM file).")

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": CACHE_REDIS_URL,
        "KEY_PREFIX": "tw",
        "TIMEOUT": 600,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            # Connections guarded by the "redis" circuit breaker (common/redis.py).
            "CONNECTION_FACTORY": "common.redis.BreakerConnectionFactory",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            # Redis is a cache here: a failure reads as a miss, PostgreSQL answers.
            "IGNORE_EXCEPTIONS": True,
            "CONNECTION_POOL_KWARGS": {
                "max_connections": env_int("REDIS_MAX_CONNECTIONS", 200),
                **tls_options(CACHE_REDIS_URL, REDIS_CA_FILE),
            },
        },
    }
}
if "cache" in REDIS_SENTINEL_ROLES:
    # The primary only (django-redis' SentinelClient would read from replicas, a step behind).
    CACHES["default"]["LOCATION"] = sentinel_cache_location(REDIS_URL, REDIS_SENTINEL_MASTER)
    CACHES["default"]["OPTIONS"].update(
        CONNECTION_FACTORY="common.redis.BreakerSentinelConnectionFactory",
        SENTINELS=REDIS_SENTINELS,
        SENTINEL_KWARGS=sentinel_kwargs(REDIS_URL, REDIS_CA_FILE, timeout=REDIS_SOCKET_TIMEOUT),
    )
# Off: with Redis down every cache call would log a stack trace. The breaker logs each change
# of state instead (logger ticketwar.breaker), and failures are counted in its metrics.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
DJANGO_REDIS_LOGGER = "ticketwar.redis"

# Circuit breakers (common/breaker.py): open after N consecutive failures, let one probe
# through after the delay. Redis: 3 failures cost at most 3 x REDIS_SOCKET_TIMEOUT when hung.
CIRCUIT_BREAKERS = {
    "redis": {
        "failure_threshold": env_int("REDIS_BREAKER_FAILURES", 3),
        "reset_timeout": env_float("REDIS_BREAKER_RESET_SECONDS", 5.0),
    },
}

# Cache lifetimes (seconds), see docs/CACHING.md. A stale copy is kept longer than the fresh
# lifetime so that one request recomputes an expired key while the others serve the old value.
CACHE_TTL_REMAINING = env_int("CACHE_TTL_REMAINING", 5)
CACHE_TTL_EVENT = env_int("CACHE_TTL_EVENT", 600)
CACHE_STALE_GRACE = env_int("CACHE_STALE_GRACE", 60)

# Rate limits (common/ratelimit.py; docs/CACHING.md says which are exact across processes and
# which are counted per process). Logged-in traffic is counted per user, anonymous traffic per
# client address: hundreds of students share the campus NAT address.


def env_ratelimit(name: str, default: str) -> str:
    """A rate as django-ratelimit writes it (``3/m``, ``1/3s``), checked at start-up."""
    value = env_str(name, default).strip()
    if not re.fullmatch(r"[0-9]+/(?:[1-9][0-9]*)?[smhd]", value):
        raise ImproperlyConfigured(f"{name} must look like 3/m or 100/15m (a count per s, m, h or d), not {value!r}.")
    return value


RATELIMIT_CLAIM = env_ratelimit("RATELIMIT_CLAIM", "3/m")
RATELIMIT_API_ANON = env_ratelimit("RATELIMIT_API_ANON", "10/m")
RATELIMIT_API_USER = env_ratelimit("RATELIMIT_API_USER", "60/m")
RATELIMIT_QUEUE_STATUS = env_ratelimit("RATELIMIT_QUEUE_STATUS", "120/m")
# Invalid door check-ins per staff user: stops guessing redeem codes.
RATELIMIT_CHECKIN_INVALID = env_ratelimit("RATELIMIT_CHECKIN_INVALID", "30/m")
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
# With Redis unreachable django-ratelimit would block everyone; fail open and let
# common.ratelimit count per process instead.
RATELIMIT_FAIL_OPEN = True
RATELIMIT_USE_CACHE = "default"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # The default pool (100) made websocket handshakes fail under a burst. socket_timeout:
            # redis-py 8 defaults it to 5 s, equal to the layer's blocking BZPOPMIN wait, which
            # tore every idle websocket down after ~5 s (redis/redis-py#4091); keep it above.
            "hosts": [
                {
                    "address": CHANNEL_REDIS_URL,
                    "max_connections": env_int("CHANNELS_MAX_CONNECTIONS", 1000),
                    "socket_timeout": 15,
                    **tls_options(CHANNEL_REDIS_URL, REDIS_CA_FILE),
                }
            ],
            "capacity": 1000,
            "expiry": 30,
        },
    }
}
if "channels" in REDIS_SENTINEL_ROLES:
    _parts = url_parts(REDIS_URL)
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [
        {
            "sentinels": REDIS_SENTINELS,
            "master_name": REDIS_SENTINEL_MASTER,
            "sentinel_kwargs": sentinel_kwargs(REDIS_URL, REDIS_CA_FILE, timeout=2),
            "db": _parts["db"],
            "username": _parts["username"],
            "password": _parts["password"],
            "max_connections": env_int("CHANNELS_MAX_CONNECTIONS", 1000),
            "socket_timeout": 15,
            **({"ssl": True, **tls_options(REDIS_URL, REDIS_CA_FILE)} if _parts["tls"] else {}),
        }
    ]

# --- sessions and auth ---------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
# The session's user comes from process memory while the revocation feed is read (accounts/revocation.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.NimOrEmailBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "events:list"
LOGOUT_REDIRECT_URL = "events:list"
# Sessions live in their signed cookie (Django's signed_cookies engine): no store to read. A
# logout, a password change, a deactivation end them on every process within a second through
# the revocation feed in PostgreSQL (accounts/revocation.py; docs/OPERATIONS.md).
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
# Each process reads the revocation feed in a thread of its own. Off in tests, which read it
# themselves (a process that does not read it checks PostgreSQL on every logged-in request).
REVOCATION_WATCH_IN_BACKGROUND = env_bool("REVOCATION_WATCH_IN_BACKGROUND", ENVIRONMENT != "test")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Campus e-mail domains allowed to sign up as students.
STUDENT_EMAIL_DOMAINS = env_list("STUDENT_EMAIL_DOMAINS", "student.itera.ac.id")
EMAIL_VERIFICATION_MAX_AGE = env_int("EMAIL_VERIFICATION_MAX_AGE", 60 * 60 * 48)
# Password guessing and sign-ups (accounts/limits.py; docs/OPERATIONS.md, "Login limits").
# Failed logins from clients an account does not know: the first LOGIN_LIMIT_STUDENT (staff and
# role holders: LOGIN_LIMIT_STAFF) are free, then each next attempt waits 2, 4, 8... seconds,
# at most LOGIN_LOCK_SECONDS; a count is forgotten after LOGIN_FORGET_SECONDS without failures.
# A browser that logged in to the account before (its device cookie) is not held by that wait:
# it has LOGIN_LIMIT_DEVICE failures of its own. Above LOGIN_LIMIT_IP failed logins an address
# gets no free attempts; it never refuses a correct password (the campus NAT is one address).
LOGIN_LIMIT_STUDENT = env_int("LOGIN_LIMIT_STUDENT", 5)
LOGIN_LIMIT_STAFF = env_int("LOGIN_LIMIT_STAFF", 3)
LOGIN_LIMIT_DEVICE = env_int("LOGIN_LIMIT_DEVICE", 5)
LOGIN_LOCK_SECONDS = env_int("LOGIN_LOCK_SECONDS", 15 * 60)
LOGIN_FORGET_SECONDS = env_int("LOGIN_FORGET_SECONDS", 24 * 60 * 60)
LOGIN_LIMIT_IP = env_rate("LOGIN_LIMIT_IP", "300/15m")
# Sign-ups (valid forms) per client address: the first SIGNUP_LIMIT_IP are free, then one every
# SIGNUP_SPACING_SECONDS (a lecture hall behind one NAT address signs up a thousand in an
# evening; one address cannot sign up faster than that).
SIGNUP_LIMIT_IP = env_rate("SIGNUP_LIMIT_IP", "100/h")
SIGNUP_SPACING_SECONDS = env_int("SIGNUP_SPACING_SECONDS", 2)

# --- i18n ------------------------------------------------------------------------------

LANGUAGE_CODE = "id"
LANGUAGES = [("id", _("Indonesian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Jakarta"
USE_I18N = True
USE_TZ = True

# --- static files ------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Development serves files straight from static/ (no collectstatic needed).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
if not PRODUCTION:
    warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- e-mail ------------------------------------------------------------------------------

# Every mail goes through the "smtp" circuit breaker (common/mail.py), which hands it to
# the backend named by the EMAIL_BACKEND variable.
EMAIL_BACKEND = "common.mail.GuardedEmailBackend"
EMAIL_DELIVERY_BACKEND = env_str(
    "EMAIL_BACKEND",
    # Development: one file per mail under EMAIL_FILE_PATH (printed by `make run`), not buried
    # among the worker's logs on the console.
    {
        "production": "django.core.mail.backends.smtp.EmailBackend",
        "development": "common.mail.MailFilesBackend",
    }.get(ENVIRONMENT, "django.core.mail.backends.console.EmailBackend"),
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / ".data" / "mail"))  # file backend only
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 5)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ticketwar <noreply@ticketwar.local>")

# --- Celery ------------------------------------------------------------------------------

# CELERY_BROKER_URL: see the data stores above. kombu verifies rediss:// only when told to.
CELERY_BROKER_USE_SSL = (
    {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": REDIS_CA_FILE or None}
    if CELERY_BROKER_URL.startswith("rediss://") or ("broker" in REDIS_SENTINEL_ROLES and url_parts(REDIS_URL)["tls"])
    else None
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60, "socket_timeout": 2, "socket_connect_timeout": 2}
if "broker" in REDIS_SENTINEL_ROLES:
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "master_name": REDIS_SENTINEL_MASTER,
        "sentinel_kwargs": sentinel_kwargs(REDIS_URL, REDIS_CA_FILE, timeout=2),
    }
# The claim path has its own queue so housekeeping or e-mail never starves it.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "queueing.*": {"queue": "claims"},
}
CELERY_WORKER_HEARTBEAT_KEY = "tw:worker:heartbeat"
WORKER_HEARTBEAT_STALE_SECONDS = env_int("WORKER_HEARTBEAT_STALE_SECONDS", 30)

# --- claim queue (queueing/) ---------------------------------------------------------------
# Entries taken per batch (each decided in its own short transaction); the original brief's 10.
QUEUE_BATCH_SIZE = env_int("QUEUE_BATCH_SIZE", 10)
# A row left in `processing` longer than this by a dead worker is taken again (not Celery's 1 h).
QUEUE_LEASE_SECONDS = env_float("QUEUE_LEASE_SECONDS", 30)
# Tries per entry before a transient error becomes a refusal.
QUEUE_MAX_ATTEMPTS = env_int("QUEUE_MAX_ATTEMPTS", 3)
# One drain task works at most this long, then hands over to a fresh task (fair to other tasks).
QUEUE_DRAIN_BUDGET_SECONDS = env_float("QUEUE_DRAIN_BUDGET_SECONDS", 20)
# Decided entries are kept this long for the waiting page, then folded into ClaimStat.
QUEUE_RETENTION_SECONDS = env_int("QUEUE_RETENTION_SECONDS", 3600)

# --- the door (tickets/, docs/TICKETS.md) ----------------------------------------------------
# Check-in for an event is accepted from this long before it starts until this long after it
# started (events have no end time; 6 h covers a long evening). Outside it: 409 outside_door_window.
DOOR_OPENS_BEFORE_START_MINUTES = env_int("DOOR_OPENS_BEFORE_START_MINUTES", 120)
DOOR_CLOSES_AFTER_START_MINUTES = env_int("DOOR_CLOSES_AFTER_START_MINUTES", 360)

# --- waiting list and confirmations (waitlist/, docs/OPERATIONS.md) -----------------
# How long a student offered a freed seat has to claim it before it passes to the next.
WAITLIST_OFFER_MINUTES = env_int("WAITLIST_OFFER_MINUTES", 15)
# Share of the capacity expected back before the event: the waiting page's honest outlook.
WAITLIST_EXPECTED_GIVEBACK_RATE = env_float("WAITLIST_EXPECTED_GIVEBACK_RATE", 0.05)
# Absolute links in e-mails (e.g. https://tickets.example.ac.id); relative when empty, which
# only development may have: a relative link in an e-mail leads nowhere.
SITE_URL = env_str("SITE_URL", "").rstrip("/")
if PRODUCTION and not SITE_URL.startswith("https://"):
    raise ImproperlyConfigured("Set SITE_URL to the site's https:// address in production (e-mail links use it).")

# --- observability -----------------------------------------------------------------------

SENTRY_DSN = env_str("SENTRY_DSN")
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
PROMETHEUS_EXPORT_MIGRATIONS = False
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# Alert channels (docs/MONITORING.md); each is off until configured.
ALERT_EMAILS = env_list("ALERT_EMAILS")
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL")
ALERT_WEBHOOK_SECRET = env_str("ALERT_WEBHOOK_SECRET")
ALERT_WEBHOOK_TIMEOUT = env_float("ALERT_WEBHOOK_TIMEOUT", 3.0)
ALERT_WEBHOOK_RETRY_DELAY = env_int("ALERT_WEBHOOK_RETRY_DELAY", 10)
ALERT_WEBHOOK_MAX_RETRIES = env_int("ALERT_WEBHOOK_MAX_RETRIES", 5)
if ALERT_WEBHOOK_URL and not ALERT_WEBHOOK_SECRET and PRODUCTION:
    raise ImproperlyConfigured("Set ALERT_WEBHOOK_SECRET to sign the alert webhook (ALERT_WEBHOOK_URL is set).")
METRICS_RETENTION_DAYS = env_int("METRICS_RETENTION_DAYS", 8)
# /metrics answers operators' sessions and `Authorization: Bearer <METRICS_TOKEN>` (Prometheus);
# empty turns the token off (sessions only). The business gauges are computed at most once per
# METRICS_CACHE_SECONDS per process: a scrape storm costs no more queries than one scrape.
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and len(METRICS_TOKEN) < 32 and PRODUCTION:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 32 random characters in production.")
METRICS_CACHE_SECONDS = env_float("METRICS_CACHE_SECONDS", 10.0)
ERROR_LOG_RETENTION_DAYS = env_int("ERROR_LOG_RETENTION_DAYS", 7)
ERROR_LOG_MAX_ROWS = env_int("ERROR_LOG_MAX_ROWS", 5000)
# Tests flush the request/error buffers themselves, inside their own transaction.
MONITORING_FLUSH_IN_BACKGROUND = env_bool("MONITORING_FLUSH_IN_BACKGROUND", ENVIRONMENT != "test")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "common.logging.JsonFormatter"},
    },
    "filters": {
        "client_error": {"()": "common.logging.ClientErrorFilter"},
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "formatter": "json"},
        # ERROR records with their stack traces, kept in monitoring.ErrorLog for the dashboard.
        "errorlog": {"class": "monitoring.logging.ErrorLogHandler"},
    },
    "root": {"handlers": ["stdout", "errorlog"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        # Bodies too large, too many fields, a huge redirect target: the client's doing (a 400),
        # logged as a warning.
        **{
            f"django.security.{name}": {"filters": ["client_error"]}
            for name in ("RequestDataTooBig", "TooManyFieldsSent", "TooManyFilesSent", "DisallowedRedirect")
        },
        "celery": {"level": "INFO"},
        # python-barcode says "Pillow not found" at import: we draw SVG only and need no Pillow.
        "pyBarcode": {"level": "WARNING"},
    },
}

# Sentry for Django, Celery and ERROR logs; nothing is sent without SENTRY_DSN.
from monitoring.sentry import init_sentry  # noqa: E402 - after the settings it reads

init_sentry(SENTRY_DSN, environment=ENVIRONMENT, release=env_str("SENTRY_RELEASE"),
            traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0))  # fmt: skip

# --- security headers (production) ------------------------------------------------------
# Production runs behind TLS (docs/DEPLOYMENT.md, "Production checklist"). `manage.py check
# --deploy` passes with these defaults; each can be loosened through its variable.

# Only behind a proxy that always sets (or overwrites) X-Forwarded-Proto: any client could send
# the header itself, and Django would then take plain HTTP for HTTPS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO") else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Probes and Prometheus scrape over plain HTTP inside the cluster: no redirect for them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
# One year once the site is known to work over HTTPS; 0 turns HSTS off (e.g. for a first trial).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# security.W002 looks for Django's XFrameOptionsMiddleware by name; common.lean's subclass
# sends the same header on every page (only JSON answers go without it, nothing can frame them).
SILENCED_SYSTEM_CHECKS = ["security.W002"]

# Content-Security-Policy (django-csp 4): every script and style is a vendored static file, no
# inline code or handlers (templates pass data with json_script). The queue page's websocket is
# same-origin ('self' covers ws:/wss: to this host) unless WEBSOCKET_ORIGIN names another
# origin (e.g. wss://ws.tickets.example.ac.id or ws://127.0.0.1:8001 in development; read above).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # data: for images drawn by scripts (chart exports); QR codes and barcodes are inline SVG.
        "img-src": [SELF, "data:"],
        "connect-src": [SELF, *([WEBSOCKET_ORIGIN] if WEBSOCKET_ORIGIN else [])],
        # The door scanner's decoder runs in a worker built from a blob: URL (vendored qr-scanner).
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Proxies whose X-Forwarded-For is believed (common/ratelimit.py client_ip): the addresses
# (or CIDR networks) of the proxy in front of web and ws and nothing else, comma-separated;
# empty trusts none. Parsed here once: a typo stops the start, not every request.
try:
    TRUSTED_PROXIES = tuple(ipaddress.ip_network(item) for item in env_list("TRUSTED_PROXIES"))
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES must be IP addresses or CIDR networks: {exc}.") from None

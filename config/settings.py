"""Mailroom settings: one module, driven by environment variables.

Defaults are for local development (`make run`); production differs only in
environment values (see `.env.example` and the README's configuration table).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MAILROOM_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
TESTING = "pytest" in sys.modules or os.environ.get("MAILROOM_TESTING") == "1"


def env_bool(name: str, default: bool) -> bool:
    """Read a strict boolean: only true/false (any case), 1/0, yes/no."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from exc


def env_secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from NAME_FILE (a mounted file) first, then NAME."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name) or default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_secret("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false.")
    SECRET_KEY = "django-insecure-development-only-key-change-me-in-production-0123456789"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Keys for secrets at rest (SocketLabs API keys, webhook secrets): comma-separated
# Fernet keys, newest first. Independent of SECRET_KEY on purpose.
_encryption_keys = env_secret("MAILROOM_ENCRYPTION_KEYS") or ""
MAILROOM_ENCRYPTION_KEYS = [k.strip() for k in _encryption_keys.split(",") if k.strip()]
if not MAILROOM_ENCRYPTION_KEYS and DEBUG:
    # Development convenience: one key generated on first use and kept under var/.
    from cryptography.fernet import Fernet

    _dev_key_file = VAR_DIR / "dev-encryption.key"
    if not _dev_key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        _dev_key_file.write_text(Fernet.generate_key().decode())
        _dev_key_file.chmod(0o600)
    MAILROOM_ENCRYPTION_KEYS = [_dev_key_file.read_text().strip()]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "axes",
    "accounts",
    "sandbox",
    "sending",
    "suppression",
    "marketing",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "accounts.middleware.SessionLifetimeMiddleware",
    "accounts.middleware.RequireMFAMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "accounts.middleware.NoStoreMiddleware",
    # Axes must be last so it sees the outcome of every login attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mailroom.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE: web, worker and beat all write without "database is locked".
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    # Persistent connections: a new connection per request costs ~5 ms (limits.md).
    _db["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 600)
    _db["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "mailroom"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    # Speed only: argon2 costs ~100 MiB and tens of ms per hash.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "account_login"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
# A reset asked for an unknown address sends nothing (the page reads the same either way), so
# the form cannot be used to make Mailroom e-mail arbitrary addresses.
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
# Lockout is django-axes' job (per user and IP); allauth's own limits stay on
# for everything else it throttles.
ACCOUNT_RATE_LIMITS = {
    "login_failed": False,
    # Wrong two-factor codes, per user from any address (accounts.adapters.MFAAuthenticateForm):
    # allauth would count them under "login_failed", switched off above.
    "mfa_code": "5/5m/key",
}
MFA_FORMS = {
    "authenticate": "accounts.adapters.MFAAuthenticateForm",
    "reauthenticate": "accounts.adapters.MFAReauthenticateForm",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Mailroom"
USERSESSIONS_TRACK_ACTIVITY = True
USERSESSIONS_ADAPTER = "accounts.adapters.UserSessionsAdapter"
# The sign-in address is set by administrators (invitations); users do not add others.
ACCOUNT_MAX_EMAIL_ADDRESSES = 1

AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "login"
# allauth passes the address to authenticate() as `email`, not `login`: without this axes
# would count every failure under username None.
AXES_USERNAME_CALLABLE = "accounts.adapters.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "account/lockout.html"
AXES_IPWARE_PROXY_COUNT = env_int("AXES_PROXY_COUNT", 0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if os.environ.get("AXES_PROXY_COUNT") else ["REMOTE_ADDR"]
)

# --- Sessions and cookies ---------------------------------------------------
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 30) * 60  # idle timeout
SESSION_SAVE_EVERY_REQUEST = True
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_HOURS", 12) * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "frame-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# Webhook bodies are small; uploads stream to disk above this.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- I18n / time ------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------
STATIC_URL = "/static/"
# Front-end packages come from npm at setup (package.json; `make setup` runs `npm ci`), never a CDN.
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist")]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- E-mail -----------------------------------------------------------------
# Django 6.1's MAILERS, built from one EMAIL_URL (smtp+tls://user:pass@host:587,
# consolemail://, filemail:///path, dummymail://).
_email = env.email_url("EMAIL_URL", default="consolemail://")
_email_backend = _email["EMAIL_BACKEND"]
_email_options: dict[str, object] = {}
if _email_backend.endswith("smtp.EmailBackend"):
    _email_options = {
        "host": _email.get("EMAIL_HOST") or "localhost",
        "port": int(_email.get("EMAIL_PORT") or 25),
        "username": _email.get("EMAIL_HOST_USER") or "",
        "password": _email.get("EMAIL_HOST_PASSWORD") or "",
        "use_tls": bool(_email.get("EMAIL_USE_TLS")),
        "use_ssl": bool(_email.get("EMAIL_USE_SSL")),
        "timeout": 30,
    }
elif _email_backend.endswith("filebased.EmailBackend"):
    _email_options = {"file_path": _email.get("EMAIL_FILE_PATH") or str(VAR_DIR / "mail")}
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Mailroom <mailroom@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
if not CELERY_BROKER_URL:
    # Zero-setup default: kombu's filesystem transport under var/. The database
    # is the source of truth for all work, so this broker may be late, never lossy.
    _fsq = VAR_DIR / "celery"
    for _sub in ("queue", "control", "processed"):
        (_fsq / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_fsq / "queue"),
        "data_folder_out": str(_fsq / "queue"),
        "control_folder": str(_fsq / "control"),
        "processed_folder": str(_fsq / "processed"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 600
CELERY_TASK_TIME_LIMIT = 660
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "heartbeat": {
        "task": "accounts.tasks.beat_heartbeat",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # Sandbox: post webhooks for simulated events as they fall due (a no-op when the sandbox is off).
    "sandbox-dispatch-events": {
        "task": "sandbox.tasks.dispatch_events",
        "schedule": 2.0,
        "options": {"expires": 1.5},
    },
    # Drains webhook events the receiver's wake-up missed; also the sweeper for stale raw rows.
    "reporting-process-events": {
        "task": "reporting.tasks.process_raw_events",
        "schedule": 10.0,
        "options": {"expires": 9},
    },
    "reporting-prune": {
        "task": "reporting.tasks.prune_reporting",
        "schedule": 3600.0,
        "options": {"expires": 1800},
    },
    # Re-enqueues inbound forwards whose task was lost or whose worker died (the message row holds the state).
    "reporting-forward-sweep": {
        "task": "reporting.tasks.sweep_inbound_forwards",
        "schedule": 120.0,
        "options": {"expires": 110},
    },
    # Re-checks that every inbound route's MX still points at SocketLabs.
    "reporting-inbound-mx-nightly": {
        "task": "reporting.tasks.nightly_inbound_mx_checks",
        "schedule": crontab(hour=3, minute=47),
        "options": {"expires": 3600},
    },
    # Contacts: restart imports and syncs whose worker died or whose message was lost.
    "marketing-sweep": {
        "task": "marketing.tasks.sweep",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    # Sending setup: re-check every server's DKIM, verification, bounce and tracking records at night.
    "sending-dns-nightly": {
        "task": "sending.tasks.nightly_dns_checks",
        "schedule": crontab(hour=3, minute=17),
        "options": {"expires": 3600},
    },
    # Queues each server's nightly suppression pull once it is due in the server's time zone.
    "suppression-nightly-sync": {
        "task": "suppression.tasks.dispatch_nightly_syncs",
        "schedule": 600.0,
        "options": {"expires": 540},
    },
    # Bulk sends: abandoned in-flight batches become "unknown" (never re-sent); pending work is re-queued.
    "sending-sweep-sends": {
        "task": "sending.send_tasks.sweep_sends",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Retries due suppression writes, resumes stalled imports (the database holds the work).
    "suppression-sweep": {
        "task": "suppression.tasks.sweep",
        "schedule": 60.0,
        "options": {"expires": 55},
    },  # Reports: queue each server's nightly pull once it is due in the server's time zone (missed days
    # are back-filled by the same run); re-run pulls that wait for a retry or whose worker died.
    "reports-dispatch-nightly": {
        "task": "reporting.pull_tasks.dispatch_nightly_pulls",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "reports-sweep-pulls": {
        "task": "reporting.pull_tasks.sweep_pulls",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Reports: e-mail the nightly and weekly digests that are due (one per subscription and period).
    "reports-send-digests": {
        "task": "reporting.digest_tasks.send_due_digests",
        "schedule": 900.0,
        "options": {"expires": 850},
    },
}

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api_auth.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": os.environ.get("API_RATE_LIMIT", "1200/minute")},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mailroom API",
    "DESCRIPTION": "Manage SocketLabs servers through Mailroom.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Several models have a `state`/`status` field with different choices: name each enum after its class.
    "ENUM_NAME_OVERRIDES": {
        "ContactStatusEnum": "marketing.models.Status",
        "DnsStateEnum": "sending.models.DnsState",
        "BatchStateEnum": "sending.models.BatchState",
        "RecipientStateEnum": "sending.models.RecipientState",
        "RecordKindEnum": "sending.models.RecordKind",
        "ReportKindEnum": "reporting.models.ReportKind",
        "AlertKindEnum": "reporting.models.AlertKind",
    },
}

# --- SocketLabs ---------------------------------------------------------------
SOCKETLABS_INJECT_URL = os.environ.get("SOCKETLABS_INJECT_URL", "https://inject.socketlabs.com/api/v1/email")
SOCKETLABS_API_URL = os.environ.get("SOCKETLABS_API_URL", "https://api.socketlabs.com/v2")
SOCKETLABS_MARKETING_URL = os.environ.get("SOCKETLABS_MARKETING_URL", "https://api.socketlabs.com/marketing/v1")
SOCKETLABS_CONNECT_TIMEOUT = float(os.environ.get("SOCKETLABS_CONNECT_TIMEOUT", "3.05"))
SOCKETLABS_READ_TIMEOUT = float(os.environ.get("SOCKETLABS_READ_TIMEOUT", "30"))

# DNS checks of DKIM, verification and CNAME records (sending setup): nameservers as "ip" or
# "ip:port", comma-separated (empty = the system's resolv.conf), and seconds per lookup.
MAILROOM_DNS_NAMESERVERS = env_list("MAILROOM_DNS_NAMESERVERS", [])
MAILROOM_DNS_TIMEOUT = float(os.environ.get("MAILROOM_DNS_TIMEOUT") or "5")

# The local SocketLabs. Off unless asked for outside development.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", DEBUG)
# Where the sandbox is reachable from Mailroom's own processes (demo servers point here).
SANDBOX_BASE_URL = os.environ.get("SANDBOX_BASE_URL", "http://localhost:8000/sandbox")

# --- Feature tunables (each app reads these with the same defaults) ----------------------
# Outbound requests to URLs users enter (inbound forwarding) may target private or loopback
# hosts only when this is on (development, tests); off in production to prevent SSRF.
MAILROOM_ALLOW_PRIVATE_TARGETS = env_bool("MAILROOM_ALLOW_PRIVATE_TARGETS", DEBUG)
# The public https://host of this Mailroom, used in the webhook URLs registered at SocketLabs
# (empty: the address of the request that registers them).
REPORTING_PUBLIC_BASE_URL = os.environ.get("REPORTING_PUBLIC_BASE_URL", "")
# UTC hour after which the nightly/weekly digest goes out even if the period's last day was not pulled yet.
REPORTING_DIGEST_CUTOFF_HOUR = env_int("REPORTING_DIGEST_CUTOFF_HOUR", 9)
REPORTING_INBOUND_ROOT = os.environ.get("REPORTING_INBOUND_ROOT", "")  # empty: MEDIA_ROOT/inbound
SUPPRESSION_API_RATE = float(os.environ.get("SUPPRESSION_API_RATE", "10"))  # SocketLabs calls/s per import
SUPPRESSION_SYNC_HOUR = env_int("SUPPRESSION_SYNC_HOUR", 2)  # nightly pull, server's local hour
SUPPRESSION_IMPORT_MAX_BYTES = env_int("SUPPRESSION_IMPORT_MAX_MB", 250) * 1024 * 1024
SUPPRESSION_INLINE_VALIDATE_BYTES = 2 * 1024 * 1024
SUPPRESSION_RUN_BUDGET = 50
SUPPRESSION_PREPARED_LOOKUPS = env_bool("SUPPRESSION_PREPARED_LOOKUPS", True)  # off behind a statement-less pooler
MARKETING_IMPORT_MAX_BYTES = env_int("MARKETING_IMPORT_MAX_MB", 500) * 1024 * 1024
SENDING_MAX_IN_FLIGHT_PER_SERVER = env_int("SENDING_MAX_IN_FLIGHT_PER_SERVER", 4)
SENDING_SECONDS_PER_REQUEST = 0.5  # for the wizard's time estimate
SENDING_STALE_SECONDS = 900  # an in-flight batch older than this is marked "outcome unknown"
# Sandbox knobs (contract §0a defaults).
SANDBOX_INJECTION_MAX_RECIPIENTS = 50
SANDBOX_INJECTION_MAX_MERGE_ROWS = 1000
SANDBOX_INJECTION_MAX_MESSAGES = 10
SANDBOX_INJECTION_MAX_REQUEST_BYTES = 30 * 1024 * 1024
SANDBOX_INJECTION_TEMPLATE_IDS: list[int] | None = None  # None: any positive ApiTemplate id is known
SANDBOX_MARKETING_CONTACT_LIMIT: int | None = None
SANDBOX_UNVERIFIED_MARKER = "unverified"  # domains containing it fail verification
SANDBOX_WEBHOOK_TIMEOUT = (3.05, 10.0)

# --- Logging ----------------------------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "accounts.logging.MaskSecretsFilter"}},
    "formatters": {"json": {"()": "accounts.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["mask_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Empty handler lists drop Django's own unmasked defaults (console in DEBUG, mail_admins):
        # these records reach the masked console handler through the root logger instead.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.server": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

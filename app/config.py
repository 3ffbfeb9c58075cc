"""Configuration read from the environment.

``APP_ENV`` picks the class: ``development`` (default, embedded components: SQLite file, inline jobs,
outbox email), ``test`` or ``production``. Production refuses to start without its secrets.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def _env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated setting; unset means ``default``, set but empty means an empty list."""
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def _env_intervals(name: str) -> dict[str, float]:
    """``"entry=seconds,entry=seconds"`` (beat schedule entries and their intervals); unset or empty: none."""
    intervals: dict[str, float] = {}
    for item in (os.environ.get(name) or "").split(","):
        if not item.strip():
            continue
        entry, _, seconds = item.partition("=")
        try:
            interval = float(seconds)
        except ValueError:
            interval = float("nan")
        if not entry.strip() or not interval > 0:  # also NaN
            raise ConfigError(f"{name}: {item.strip()!r} is not entry=seconds with a positive number of seconds")
        intervals[entry.strip()] = interval
    return intervals


def _public_base_url_from_env(default_scheme: str = "http") -> str | None:
    """``PUBLIC_BASE_URL`` (``PORTAL_BASE_URL``, its former name), else ``PREFERRED_URL_SCHEME://SERVER_NAME``
    when SERVER_NAME is set. See app/public_urls.py: links are never built from the request's Host header."""
    configured = os.environ.get("PUBLIC_BASE_URL") or os.environ.get("PORTAL_BASE_URL")
    if configured:
        return configured
    server_name = os.environ.get("SERVER_NAME")
    scheme = os.environ.get("PREFERRED_URL_SCHEME", default_scheme)
    return f"{scheme}://{server_name}" if server_name else None


def production_rate_limit_storage_uri() -> str:
    """``RATELIMIT_STORAGE_URI``, else the Celery broker when it is Redis, else per-process memory. Limits counted
    per process multiply by the number of web workers, so production shares them through Redis."""
    broker = os.environ.get("CELERY_BROKER_URL") or ""
    redis_broker = broker if broker.startswith(("redis://", "rediss://")) else None
    return os.environ.get("RATELIMIT_STORAGE_URI") or redis_broker or "memory://"


class ConfigError(RuntimeError):
    """The configuration is unusable (e.g. production without a secret key)."""


class BaseConfig:
    APP_ENV = "base"
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-not-secret")
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'emsp.sqlite3'}")
    # SQLite (the embedded default) lets one writer at a time in: how long a unit of work waits for the others before
    # it fails with "database is locked" (app.db.configure_sqlite). Ignored on PostgreSQL.
    SQLITE_BUSY_TIMEOUT_SECONDS = _env_float("SQLITE_BUSY_TIMEOUT_SECONDS", 15.0)
    # Pooled connections are pinged only after sitting idle this long (app.db.ping_after_idle), not on
    # every checkout: a ping is a database round trip on every request.
    DB_PING_AFTER_IDLE_SECONDS = _env_float("DB_PING_AFTER_IDLE_SECONDS", 10.0)

    # Sessions and cookies: HttpOnly always, SameSite=Lax so links from emails still log in.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    # "Keep me logged in" lasts this long; the server checks the age too (app/accounts/session_tokens.py).
    REMEMBER_COOKIE_DURATION = _env_int("REMEMBER_COOKIE_DAYS", 365) * 24 * 3600
    PERMANENT_SESSION_LIFETIME = 60 * 60 * 12
    PREFERRED_URL_SCHEME = os.environ.get("PREFERRED_URL_SCHEME", "http")
    SERVER_NAME = os.environ.get("SERVER_NAME") or None

    WTF_CSRF_TIME_LIMIT = 60 * 60 * 8

    # Rate limits (Flask-Limiter). Memory storage is per process; production points at Redis.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", True)
    RATELIMIT_HEADERS_ENABLED = True
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute;50 per hour")
    # Per account (the email typed), whatever the client address: guessing one driver's password from many
    # addresses is limited too.
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "10 per minute;50 per hour")
    SIGNUP_RATE_LIMIT = os.environ.get("SIGNUP_RATE_LIMIT", "5 per minute;30 per hour")
    RESET_RATE_LIMIT = os.environ.get("RESET_RATE_LIMIT", "5 per minute;20 per hour")

    # Password hashing (argon2id). Defaults are argon2-cffi's RFC 9106 "low memory" profile.
    ARGON2_TIME_COST = _env_int("ARGON2_TIME_COST", 3)
    ARGON2_MEMORY_COST = _env_int("ARGON2_MEMORY_COST", 65536)
    ARGON2_PARALLELISM = _env_int("ARGON2_PARALLELISM", 4)

    # One-time links
    CONFIRM_TOKEN_MAX_AGE = _env_int("CONFIRM_TOKEN_MAX_AGE", 7 * 24 * 3600)
    RESET_TOKEN_MAX_AGE = _env_int("RESET_TOKEN_MAX_AGE", 3600)

    # i18n
    LANGUAGES = ("nl", "fr", "en")
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "Europe/Brussels"
    BABEL_TRANSLATION_DIRECTORIES = str(PROJECT_ROOT / "app" / "translations")

    # Email: SMTP when MAIL_SERVER is set, else an outbox folder + the log.
    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = _env_int("MAIL_PORT", 587)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_USE_TLS = _env_bool("MAIL_USE_TLS", True)
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "Voltaro <no-reply@voltaro.example>")
    MAIL_OUTBOX_DIR = os.environ.get("MAIL_OUTBOX_DIR", str(INSTANCE_DIR / "outbox"))

    # Background jobs: no broker → Celery runs tasks inline (eager).
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or None
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
    CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
    # Redis broker: seconds after which a task a worker took but never acknowledged (the worker was killed) is
    # given to another worker. Longer than the longest countdown (mail's last retry, 16 min); docs/deploy.md.
    CELERY_BROKER_VISIBILITY_TIMEOUT = _env_int("CELERY_BROKER_VISIBILITY_TIMEOUT", 1800)
    # Periodic jobs at other intervals than their packages' own, "entry=seconds,..." with the beat schedule's entry
    # names (app/jobs.py; beat refuses an unknown name). `make run` pushes token updates every 5 s instead of 30 s.
    CELERY_BEAT_INTERVALS = _env_intervals("CELERY_BEAT_INTERVALS")
    # With a broker, new CDRs are sent for rating in batches this often (app/rating/queueing.py).
    RATING_DISPATCH_SECONDS = _env_float("RATING_DISPATCH_SECONDS", 0.2)

    # The e-MSP's own identity (eMAIDs, OCPI, invoices).
    COMPANY_NAME = os.environ.get("COMPANY_NAME", "Voltaro BV")
    COMPANY_COUNTRY_CODE = os.environ.get("COMPANY_COUNTRY_CODE", "BE")
    COMPANY_PARTY_ID = os.environ.get("COMPANY_PARTY_ID", "VLT")
    # The seller on invoices (EU VAT invoice fields).
    SELLER = {
        "name": os.environ.get("COMPANY_NAME", "Voltaro BV"),
        "street": os.environ.get("SELLER_STREET", "Kunstlaan 1"),
        "postal_code": os.environ.get("SELLER_POSTAL_CODE", "1000"),
        "city": os.environ.get("SELLER_CITY", "Brussel"),
        "country": os.environ.get("SELLER_COUNTRY", "BE"),
        "vat_number": os.environ.get("SELLER_VAT_NUMBER", "BE0403170701"),
        "iban": os.environ.get("SELLER_IBAN", "BE71096123456769"),
        "email": os.environ.get("SELLER_EMAIL", "billing@voltaro.example"),
        # The company register entry printed on invoices: "RPR Brussel" / "RPM Bruxelles" (the court seat; the
        # number is the enterprise number of the VAT number) for a Belgian seller, "KvK 12345678" for a Dutch one.
        "company_register": os.environ.get("SELLER_COMPANY_REGISTER", "RPR Brussel"),
    }
    INVOICE_PAYMENT_TERMS_DAYS = _env_int("INVOICE_PAYMENT_TERMS_DAYS", 14)
    # Accounts finalized per transaction (and per Celery task) in the monthly run: larger is faster, smaller
    # holds the number series for less time per chunk (bench/bench_billing_run.py measured 500).
    BILLING_CHUNK_SIZE = _env_int("BILLING_CHUNK_SIZE", 500)
    # Sessions beyond these limits are held for finance instead of billed (see app/billing/invoicing/outliers.py).
    OUTLIER_LIMITS = {"max_kwh": "150", "max_average_kw": "350", "max_incl_vat": "150", "max_hours": "48"}
    # Failed payments are retried this many days after the first failure; after the last, cards are blocked.
    DUNNING_SCHEDULE_DAYS = [3, 7, 14]
    # Public base URLs: every absolute link we hand out (emails, OCPI URLs) is built on them, never on the
    # request's Host header (app/public_urls.py). OCPI_BASE_URL only when partners reach us on another host.
    PUBLIC_BASE_URL = _public_base_url_from_env()
    OCPI_BASE_URL = os.environ.get("OCPI_BASE_URL") or None
    # Real-time authorization (app/roaming/ocpi/auth.py, app/roaming/send/authorization_log.py): how long a worker
    # may trust the partner it found for a token (a rotated or suspended token stays usable in *other*
    # worker processes for at most this long), and whether authorization log rows are written by a
    # background writer in batches (off the request path) or inside the request's transaction.
    OCPI_PARTNER_CACHE_SECONDS = _env_float("OCPI_PARTNER_CACHE_SECONDS", 5.0)
    AUTHORIZATION_LOG_BUFFERED = _env_bool("AUTHORIZATION_LOG_BUFFERED", True)
    AUTHORIZATION_LOG_FLUSH_SECONDS = _env_float("AUTHORIZATION_LOG_FLUSH_SECONDS", 0.2)
    # The operations overview keeps its whole-table counts (locations, EVSEs, connectors per partner) this long.
    OPERATIONS_FIGURES_CACHE_SECONDS = _env_float("OPERATIONS_FIGURES_CACHE_SECONDS", 60.0)
    # Objects a partner sent that we could not store are kept in the quarantine, at most this many pending per
    # partner (a hostile partner cannot fill the disk; the overflow is counted, see app/roaming/receive/quarantine).
    OCPI_QUARANTINE_MAX_PENDING = _env_int("OCPI_QUARANTINE_MAX_PENDING", 10_000)
    # Outgoing OCPI calls go only to URLs safe to fetch (app/roaming/ocpi/safe_urls.py, transport.py): https,
    # and every address the host resolves to public. OCPI_ALLOWED_PRIVATE_HOSTS lists exceptions for private
    # peerings: host names or addresses/CIDRs, each optionally with ":port" ("10.20.0.0/16", "cpo.lan:8443",
    # "[fd00::5]:443"). Timeouts are per socket operation; the deadlines bound a whole call (redirects
    # included) and the whole credentials handshake (versions, details, credentials), so a slow partner
    # cannot hold a web worker for long.
    OCPI_REQUIRE_HTTPS = _env_bool("OCPI_REQUIRE_HTTPS", True)
    OCPI_ALLOWED_PRIVATE_HOSTS = _env_list("OCPI_ALLOWED_PRIVATE_HOSTS", [])
    OCPI_CONNECT_TIMEOUT = _env_float("OCPI_CONNECT_TIMEOUT", 3.0)
    OCPI_READ_TIMEOUT = _env_float("OCPI_READ_TIMEOUT", 10.0)
    OCPI_CALL_DEADLINE = _env_float("OCPI_CALL_DEADLINE", 20.0)
    OCPI_HANDSHAKE_DEADLINE = _env_float("OCPI_HANDSHAKE_DEADLINE", 20.0)
    # Credentials exchanges running at once in one web process (each may wait up to the handshake deadline on a
    # partner). With 4 threads per worker, 2 stay free for authorizations and CDRs however many partners
    # register at once; the others are told to retry (HTTP 503, OCPI 3000).
    OCPI_CONCURRENT_HANDSHAKES = _env_int("OCPI_CONCURRENT_HANDSHAKES", 2)
    OCPI_MAX_REDIRECTS = _env_int("OCPI_MAX_REDIRECTS", 3)
    OCPI_MAX_RESPONSE_BYTES = _env_int("OCPI_MAX_RESPONSE_BYTES", 32 * 1024 * 1024)
    # The largest request body a partner may send us (answered 413 in the OCPI envelope before reading it). We
    # receive one object per request; the largest real Location (NDW, 62 EVSEs) is 36 KB, so 1 MB is ~28x.
    # No bulk intake over HTTP needs more (bulk arrives by pull, bounded by OCPI_MAX_RESPONSE_BYTES, or by file).
    OCPI_MAX_BODY_BYTES = _env_int("OCPI_MAX_BODY_BYTES", 1024 * 1024)
    # Beat pulls every registered partner's Sender modules (roaming.pull_all) every this many seconds.
    ROAMING_PULL_INTERVAL = _env_float("ROAMING_PULL_INTERVAL", 15 * 60.0)

    # Stripe. STRIPE_API_BASE unset = real Stripe; "http://127.0.0.1:8420" = a local `localstripe` emulator,
    # whose fake Stripe.js is served at <api_base>/js.stripe.com/v3/.
    STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY", "sk_test_localstripe")
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_localstripe")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE") or None
    STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL") or (
        f"{STRIPE_API_BASE.rstrip('/')}/js.stripe.com/v3/" if STRIPE_API_BASE else "https://js.stripe.com/v3/"
    )
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET") or None
    # How long a Stripe call waits for its answer before it counts as failed and is retried (payments/stripe_client.py).
    STRIPE_READ_TIMEOUT_SECONDS = _env_float("STRIPE_READ_TIMEOUT_SECONDS", 30.0)
    # A charge card can only be activated while the account has a valid payment method.
    REQUIRE_PAYMENT_METHOD_FOR_ACTIVATION = _env_bool("REQUIRE_PAYMENT_METHOD_FOR_ACTIVATION", True)

    # Invoices and the identity on them are kept this many years after an account closes (NL 7, BE 10).
    RETENTION_YEARS_BY_COUNTRY = {"NL": 7, "BE": 10}
    RETENTION_YEARS_DEFAULT = 10
    BILLING_TIMEZONE = os.environ.get("BILLING_TIMEZONE", "Europe/Brussels")
    # VAT on our price, by the country where the charging took place (percent).
    VAT_RATES = {"BE": "21", "NL": "21", "LU": "17", "FR": "20", "DE": "19"}
    # A CPO total_cost further than this from our own calculation is a finding for finance (currency units).
    RECONCILIATION_TOLERANCE = os.environ.get("RECONCILIATION_TOLERANCE", "0.02")

    # JSON API (flask-smorest)
    API_TITLE = "Voltaro e-MSP API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.1.0"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    # A device's "last used" goes to a per-process buffer written in one batch this often, not in the request
    # (app/accounts/api_tokens.py: note_use).
    API_LAST_USED_BUFFERED = _env_bool("API_LAST_USED_BUFFERED", True)
    API_LAST_USED_FLUSH_SECONDS = _env_float("API_LAST_USED_FLUSH_SECONDS", 1.0)

    # The charger finder (app/finder): the "typical session" every result is priced for, before charging (the
    # driver's all-in price, also the order of a price-sorted search), and which spatial index to search with:
    # "auto" (the database's: SQLite R*Tree, PostgreSQL earthdistance, else the lat/lon B-tree) or "bbox" (always
    # the B-tree; the benchmark compares both).
    FINDER_TYPICAL_SESSION_KWH = _env_float("FINDER_TYPICAL_SESSION_KWH", 20.0)
    FINDER_TYPICAL_SESSION_MINUTES = _env_int("FINDER_TYPICAL_SESSION_MINUTES", 45)
    FINDER_SPATIAL_INDEX = os.environ.get("FINDER_SPATIAL_INDEX", "auto")
    # The portal's map page (app/finder/views.py): the tile server (Leaflet URL template; its host is allowed in the
    # CSP's img-src, app/security.py) and its attribution (HTML), the view a visitor starts from ("lat,lon,zoom"),
    # the most markers one visible area gets (more: counts on a grid), and the visitors' rate limit (per address,
    # the page and its endpoints together; a map view costs two requests).
    FINDER_TILE_URL = os.environ.get("FINDER_TILE_URL", "https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png")
    FINDER_TILE_ATTRIBUTION = os.environ.get(
        "FINDER_TILE_ATTRIBUTION",
        '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
    )
    FINDER_MAP_VIEW = os.environ.get("FINDER_MAP_VIEW", "51.9,5.1,8")
    FINDER_MAP_MAX_MARKERS = _env_int("FINDER_MAP_MAX_MARKERS", 1000)
    FINDER_MAP_RATE_LIMIT = os.environ.get("FINDER_MAP_RATE_LIMIT", "120 per minute;2000 per hour")
    # The finder's JSON API (/api/v1/locations, /api/v1/geocode): one budget per signed-in account, else per address.
    FINDER_API_RATE_LIMIT = os.environ.get("FINDER_API_RATE_LIMIT", "120 per minute;2000 per hour")

    # Geocoding of typed places (app/finder/geocoding.py). "offline": the shipped gazetteer of Belgian and Dutch
    # places, no network. "nominatim" | "photon": our own server at GEOCODER_DOMAIN (host[:port][/path]; from
    # configuration only, never from a request), GEOCODER_TIMEOUT seconds for the whole call. The public
    # nominatim.openstreetmap.org and photon.komoot.io forbid this use: production refuses them. Answers are cached
    # in the database, unknown places for a shorter time (a place may be added to the geocoder's data).
    GEOCODER = os.environ.get("GEOCODER", "offline")
    GEOCODER_DOMAIN = os.environ.get("GEOCODER_DOMAIN") or None
    GEOCODER_SCHEME = os.environ.get("GEOCODER_SCHEME", "https")
    GEOCODER_TIMEOUT = _env_float("GEOCODER_TIMEOUT", 3.0)
    GEOCODER_USER_AGENT = os.environ.get("GEOCODER_USER_AGENT", "voltaro-emsp-finder/1.0")
    GEOCODER_COUNTRIES = _env_list("GEOCODER_COUNTRIES", ["BE", "NL"])
    GEOCODER_CACHE_SECONDS = _env_int("GEOCODER_CACHE_SECONDS", 30 * 24 * 3600)
    GEOCODER_NEGATIVE_CACHE_SECONDS = _env_int("GEOCODER_NEGATIVE_CACHE_SECONDS", 24 * 3600)

    @classmethod
    def validate(cls) -> None:
        """Hook for subclasses that must refuse to start on unsafe settings."""


class DevelopmentConfig(BaseConfig):
    APP_ENV = "development"
    # Where `make run` serves: its PORT reaches `flask run` as FLASK_RUN_PORT, and the worker, as the same variable.
    PUBLIC_BASE_URL = _public_base_url_from_env() or f"http://127.0.0.1:{os.environ.get('FLASK_RUN_PORT') or 5000}"
    # A partner simulator on this machine is the usual development peer.
    OCPI_REQUIRE_HTTPS = _env_bool("OCPI_REQUIRE_HTTPS", False)
    OCPI_ALLOWED_PRIVATE_HOSTS = _env_list("OCPI_ALLOWED_PRIVATE_HOSTS", ["127.0.0.0/8", "::1", "localhost"])


class TestConfig(BaseConfig):
    APP_ENV = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite:///" + str(INSTANCE_DIR / "test.sqlite3")
    # Cheap hashes keep the suite fast; the algorithm and code path are the same.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024
    ARGON2_PARALLELISM = 1
    MAIL_SERVER = None
    CELERY_BROKER_URL = None
    CELERY_BEAT_INTERVALS: dict[str, float] = {}
    # The test client's host; not read from the environment (tests must not depend on the shell).
    PUBLIC_BASE_URL = "http://localhost"
    OCPI_BASE_URL = None
    RATELIMIT_STORAGE_URI = "memory://"
    # Tests run inside one rolled-back transaction per test: a process-wide partner cache would outlive it,
    # and a background log writer would write outside it. Both have their own tests that switch them on.
    OCPI_PARTNER_CACHE_SECONDS = 0.0
    AUTHORIZATION_LOG_BUFFERED = False
    API_LAST_USED_BUFFERED = False
    OPERATIONS_FIGURES_CACHE_SECONDS = 0.0
    # The fake CPO listens on http://127.0.0.1:<free port>. The tests of the guard itself switch to the strict
    # production policy (tests/roaming/test_safe_urls.py). Not read from the environment: tests must not depend
    # on the shell they run in.
    OCPI_REQUIRE_HTTPS = False
    OCPI_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]


# Who issues the invoices. Each has a demo default (``make run``); production refuses to start unless every one is
# set, so a real invoice can never carry the demo VAT number or IBAN.
SELLER_IDENTITY_VARIABLES = (
    "COMPANY_NAME",
    "SELLER_STREET",
    "SELLER_POSTAL_CODE",
    "SELLER_CITY",
    "SELLER_COUNTRY",
    "SELLER_VAT_NUMBER",
    "SELLER_IBAN",
    "SELLER_EMAIL",
    "SELLER_COMPANY_REGISTER",
)
_DEMO_SELLER_VALUES = {"SELLER_VAT_NUMBER": "BE0403170701", "SELLER_IBAN": "BE71096123456769"}


def _iban_is_valid(iban: str) -> bool:
    """ISO 13616: two letters, two check digits, then the national part; the mod-97 check of the whole."""
    compact = iban.replace(" ", "").upper()
    if not (15 <= len(compact) <= 34 and compact[:2].isalpha() and compact[2:4].isdigit() and compact.isalnum()):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _check_seller_identity() -> None:
    missing = [name for name in SELLER_IDENTITY_VARIABLES if not (os.environ.get(name) or "").strip()]
    if missing:
        raise ConfigError(f"production invoices need the seller's identity: set {', '.join(missing)}")
    demo = [name for name, value in _DEMO_SELLER_VALUES.items() if os.environ[name].replace(" ", "") == value]
    if demo:
        raise ConfigError(f"production refuses the demo seller's {', '.join(demo)}: set your own")
    if not _iban_is_valid(os.environ["SELLER_IBAN"]):
        raise ConfigError("SELLER_IBAN is not a valid IBAN (its check digits do not match)")
    if len(os.environ["SELLER_COUNTRY"].strip()) != 2:
        raise ConfigError("SELLER_COUNTRY is a two-letter country code, e.g. BE or NL")


class ProductionConfig(BaseConfig):
    APP_ENV = "production"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PREFERRED_URL_SCHEME = os.environ.get("PREFERRED_URL_SCHEME", "https")
    PUBLIC_BASE_URL = _public_base_url_from_env("https")
    RATELIMIT_STORAGE_URI = production_rate_limit_storage_uri()

    @classmethod
    def validate(cls) -> None:
        missing = [name for name in ("SECRET_KEY", "DATABASE_URL") if not os.environ.get(name)]
        if missing:
            raise ConfigError(f"production refuses to start without: {', '.join(missing)}")
        if len(os.environ["SECRET_KEY"]) < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters in production")
        stripe_key = os.environ.get("STRIPE_API_KEY", "")
        if not stripe_key or stripe_key.endswith("_localstripe"):
            raise ConfigError("production needs a real STRIPE_API_KEY")
        if not os.environ.get("STRIPE_WEBHOOK_SECRET"):
            raise ConfigError("production needs STRIPE_WEBHOOK_SECRET to verify Stripe webhooks")
        _check_seller_identity()
        base_url = _public_base_url_from_env("https") or ""
        if not base_url.startswith("https://"):
            raise ConfigError(
                "production needs PUBLIC_BASE_URL (https://..., or SERVER_NAME): links in emails "
                "are built on it, never on the request's Host header"
            )
        geocoder = os.environ.get("GEOCODER", "offline").strip().lower()
        geocoder_host = (os.environ.get("GEOCODER_DOMAIN") or "").strip().lower().split("/")[0].rsplit(":", 1)[0]
        if geocoder != "offline" and geocoder_host.rstrip(".") in PUBLIC_GEOCODER_HOSTS:
            raise ConfigError(
                f"production needs GEOCODER_DOMAIN for GEOCODER={geocoder}: our own server (the public "
                "nominatim.openstreetmap.org and photon.komoot.io forbid our traffic), or GEOCODER=offline"
            )


# Geocoders whose usage policy forbids an application's traffic ("" = geopy's default: the public Nominatim).
PUBLIC_GEOCODER_HOSTS = frozenset({"", "nominatim.openstreetmap.org", "photon.komoot.io", "photon.komoot.de"})


CONFIGS: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "test": TestConfig,
    "production": ProductionConfig,
}


def config_for(name: str | None) -> type[BaseConfig]:
    name = name or os.environ.get("APP_ENV", "development")
    try:
        config = CONFIGS[name]
    except KeyError as exc:
        raise ConfigError(f"unknown APP_ENV {name!r}; expected one of {sorted(CONFIGS)}") from exc
    config.validate()
    return config

"""The driver's app sessions ("devices"): the bearer tokens of the JSON API, one row per signed-in phone.

A device holds two random tokens. The *access token* (short-lived, ``API_ACCESS_TOKEN_LIFETIME``, 15 minutes) goes
with every API call; the *refresh token* (long-lived, ``API_REFRESH_TOKEN_LIFETIME``, 60 days) only buys a new pair,
and is rotated each time: the old one dies.

Both are stored as SHA-256 digests, never in clear: a copy of the table gives nobody a token. SHA-256 and not argon2,
on purpose: the tokens carry 256 random bits, so no dictionary or brute force can invert their digest, and the
check on every request stays a digest and one index lookup (argon2 is for low-entropy passwords and costs tens of
milliseconds by design).

Theft detection: a refresh token reads ``<family>.<secret>``. The family names the device's chain of refresh tokens;
only the newest is good. A token of a known family that is not the newest is an old one used again (its owner
refreshed since, or a thief did) and revokes the device: whoever holds the newest token is signed out too, and the
driver signs in again with the password. Recognising an old token by its family keeps one row per device instead of
every spent digest. A rotation is a compare-and-swap on the current digest, so two refreshes with one token never
both win.

Services flush, never commit (the API door commits). Signing out ends a device at once: its tokens are refused
from the next request on.

"Last used" (:func:`note_use`) is not worth a write on the request path: an update, its commit (and its wait for the
WAL flush) and a new transaction for the route cost more than the route itself, and a benchmark that calls 100,000
devices at random pays it on almost every request. With ``API_LAST_USED_BUFFERED`` (the default outside tests) the
door hands the device to a per-process buffer written every ``API_LAST_USED_FLUSH_SECONDS`` in one batch
(:class:`LastUsedWriter`, :mod:`app.batching`); what this trades: a process killed without warning forgets the
"last used" of its last interval, which only orders the driver's device list.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import cast

from flask import Flask, current_app
from sqlalchemy import ForeignKey, Index, String, Table, bindparam, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import Account, Role, User
from app.batching import BackgroundBatcher, app_batcher, flush_app_batcher
from app.db import str_enum, utcnow
from app.extensions import Model, db

DEFAULT_ACCESS_LIFETIME = dt.timedelta(minutes=15)
DEFAULT_REFRESH_LIFETIME = dt.timedelta(days=60)
# A driver signed in on more phones than this loses the least recently used one (every sign-in makes a row).
MAX_LIVE_DEVICES_PER_USER = 20
# "Last used" is kept to this resolution: writing it on every call would turn every read into a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=5)
DEVICE_NAME_MAX_LENGTH = 100

# token_urlsafe(32) is 43 characters of [A-Za-z0-9_-]; the family token_urlsafe(16), 22.
_ACCESS_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_REFRESH_TOKEN = re.compile(r"^(?P<family>[A-Za-z0-9_-]{22})\.[A-Za-z0-9_-]{43}$")


class RevokedReason(enum.StrEnum):
    SIGNED_OUT = "signed_out"  # the app signed itself out (DELETE /api/v1/auth/token)
    DEVICE_SIGNED_OUT = "device_signed_out"  # the driver ended this device from another one, or the portal
    EVERYWHERE = "everywhere"  # "sign out everywhere" in the portal
    PASSWORD_CHANGED = "password_changed"  # noqa: S105  # a new password ends every login made with the old one
    REFRESH_REUSED = "refresh_reused"  # an old refresh token came back: stolen, or replayed
    TOO_MANY_DEVICES = "too_many_devices"  # the least recently used one, when a sign-in passes the limit


class ApiDevice(Model):
    """One signed-in device of a driver: the digests of its current tokens and when they expire."""

    __tablename__ = "api_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(DEVICE_NAME_MAX_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    access_expires_at: Mapped[dt.datetime]
    refresh_family: Mapped[str] = mapped_column(String(22), unique=True)
    refresh_token_hash: Mapped[str] = mapped_column(String(64))
    refresh_expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[RevokedReason | None] = mapped_column(str_enum(RevokedReason))
    # The APP_USER token (a row of ``cards``) issued for this phone, so asking again returns it instead of a second.
    app_token_card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship()

    __table_args__ = (Index("ix_api_devices_user_revoked", "user_id", "revoked_at"),)

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.refresh_expires_at > utcnow()

    def __repr__(self) -> str:
        return f"<ApiDevice {self.id} user={self.user_id} {self.name!r}>"


@dataclass(frozen=True)
class IssuedTokens:
    """A new token pair, in clear: shown to the app once, never stored."""

    device: ApiDevice
    access_token: str
    access_expires_at: dt.datetime
    refresh_token: str
    refresh_expires_at: dt.datetime


class RefreshTokenReusedError(Exception):
    """An old refresh token of a live device came back: the device is revoked (flushed; the caller commits)."""

    def __init__(self, device: ApiDevice) -> None:
        super().__init__(f"refresh token reused on device {device.id}")
        self.device = device


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lifetime(key: str, default: dt.timedelta) -> dt.timedelta:
    value = current_app.config.get(key, default)
    return value if isinstance(value, dt.timedelta) else dt.timedelta(seconds=int(value))


def access_lifetime() -> dt.timedelta:
    return _lifetime("API_ACCESS_TOKEN_LIFETIME", DEFAULT_ACCESS_LIFETIME)


def refresh_lifetime() -> dt.timedelta:
    return _lifetime("API_REFRESH_TOKEN_LIFETIME", DEFAULT_REFRESH_LIFETIME)


def _new_pair(family: str, now: dt.datetime) -> tuple[str, str, dt.datetime, dt.datetime]:
    return (
        secrets.token_urlsafe(32),
        f"{family}.{secrets.token_urlsafe(32)}",
        now + access_lifetime(),
        now + refresh_lifetime(),
    )


def clean_device_name(name: str) -> str:
    """The name as shown in the device list: trimmed, at most 100 characters (the door refuses control
    characters before it gets here)."""
    cleaned = " ".join(name.split())[:DEVICE_NAME_MAX_LENGTH]
    return cleaned or "?"


def live_devices_of(user_id: int, now: dt.datetime | None = None) -> list[ApiDevice]:
    """The user's devices that can still refresh, most recently used first."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(ApiDevice)
            .where(ApiDevice.user_id == user_id, ApiDevice.revoked_at.is_(None), ApiDevice.refresh_expires_at > now)
            .order_by(ApiDevice.last_used_at.desc(), ApiDevice.id.desc())
        )
    )


def device_of_user(user_id: int, device_id: int) -> ApiDevice | None:
    """The live device if it is the user's; None otherwise (the doors answer 404 either way)."""
    device = db.session.get(ApiDevice, device_id)
    if device is None or device.user_id != user_id or not device.is_live:
        return None
    return device


def sign_in_device(user: User, name: str, now: dt.datetime | None = None) -> IssuedTokens:
    """A new device for ``user`` (already authenticated by the caller) with its first token pair."""
    now = now or utcnow()
    live = live_devices_of(user.id, now)
    for oldest in live[MAX_LIVE_DEVICES_PER_USER - 1 :]:
        revoke_device(oldest, RevokedReason.TOO_MANY_DEVICES, now)
    family = secrets.token_urlsafe(16)
    access, refresh, access_expires, refresh_expires = _new_pair(family, now)
    device = ApiDevice(
        user_id=user.id,
        name=clean_device_name(name),
        created_at=now,
        last_used_at=now,
        access_token_hash=digest(access),
        access_expires_at=access_expires,
        refresh_family=family,
        refresh_token_hash=digest(refresh),
        refresh_expires_at=refresh_expires,
    )
    db.session.add(device)
    db.session.flush()
    return IssuedTokens(device, access, access_expires, refresh, refresh_expires)


@dataclass(frozen=True)
class AccessHolder:
    """Who an access token belongs to, as the per-request check needs it: read in one query of columns (no ORM
    objects: building three of them cost as much as the query). The door loads the device, user or account objects
    only when a route needs them."""

    device_id: int
    access_expires_at: dt.datetime
    last_used_at: dt.datetime
    user_id: int
    role: Role
    user_active: bool
    email_confirmed: bool
    account_id: int | None
    account_closed: bool
    language: str | None


# Built once: constructing the statement and its cache key on every call cost twice the query's own time. Executed
# on the session's connection (its transaction), as a plain Core statement.
_HOLDER_QUERY = (
    select(
        ApiDevice.id,
        ApiDevice.access_expires_at,
        ApiDevice.last_used_at,
        User.id,
        User.role,
        User.active,
        User.email_confirmed_at,
        Account.id,
        Account.closed_at,
        Account.language,
    )
    .join(User, User.id == ApiDevice.user_id)
    .outerjoin(Account, Account.id == User.account_id)
    .where(ApiDevice.access_token_hash == bindparam("token_hash"), ApiDevice.revoked_at.is_(None))
)


def holder_of_access_token(token: str) -> AccessHolder | None:
    """The holder of an access token, or None for a token we never issued or whose device was revoked. Expiry is the
    caller's to check (it answers "expired" apart, so the app knows to refresh)."""
    if not _ACCESS_TOKEN.match(token):
        return None
    row = db.session.connection().execute(_HOLDER_QUERY, {"token_hash": digest(token)}).first()
    if row is None:
        return None
    device_id, expires, last_used, user_id, role, active, confirmed_at, account_id, closed_at, language = row
    return AccessHolder(
        device_id=device_id,
        access_expires_at=expires,
        last_used_at=last_used,
        user_id=user_id,
        role=role,
        user_active=active,
        email_confirmed=confirmed_at is not None,
        account_id=account_id,
        account_closed=closed_at is not None,
        language=language,
    )


def note_use(holder: AccessHolder, now: dt.datetime | None = None) -> bool:
    """Move the device's "last used" forward when it is older than :data:`LAST_USED_RESOLUTION`. Buffered (see the
    module): handed to this process's :class:`LastUsedWriter`, and False. Otherwise written in this request's
    transaction, and True when it was: the caller commits."""
    now = now or utcnow()
    if now - holder.last_used_at < LAST_USED_RESOLUTION:
        return False
    if current_app.config.get("API_LAST_USED_BUFFERED"):
        last_used_writer(current_app).add((holder.device_id, now))
        return False
    _write_last_used(db.session.connection(), [(holder.device_id, now)])
    return True


# A device's "last used" only moves forward: a late batch never puts back an older time.
_LAST_USED_UPDATE = (
    update(cast(Table, ApiDevice.__table__))
    .where(ApiDevice.id == bindparam("device_id"), ApiDevice.last_used_at < bindparam("used_at"))
    .values(last_used_at=bindparam("used_at"))
)
LAST_USED_EXTENSION_KEY = "api_last_used_writer"
# A day of every device at national scale would not reach this; beyond it the oldest are dropped (logged).
MAX_PENDING_USES = 100_000


# PostgreSQL: the whole batch in one statement, two arrays unnested. An UPDATE per device, even pipelined, held the
# worker's interpreter (its request threads) for ~3 ms a second at 150 new devices a second.
_LAST_USED_UPDATE_POSTGRESQL = text(
    "UPDATE api_devices SET last_used_at = uses.used_at"
    " FROM unnest(CAST(:device_ids AS integer[]), CAST(:used_ats AS timestamptz[])) AS uses (device_id, used_at)"
    " WHERE api_devices.id = uses.device_id AND api_devices.last_used_at < uses.used_at"
)


def _write_last_used(connection: Connection, uses: list[tuple[int, dt.datetime]]) -> None:
    latest: dict[int, dt.datetime] = {}
    for device_id, used_at in uses:  # a device may come several times in one batch: its latest use counts
        if device_id not in latest or used_at > latest[device_id]:
            latest[device_id] = used_at
    if connection.dialect.name == "postgresql":
        connection.execute(
            _LAST_USED_UPDATE_POSTGRESQL, {"device_ids": list(latest), "used_ats": list(latest.values())}
        )
        return
    connection.execute(
        _LAST_USED_UPDATE, [{"device_id": device_id, "used_at": used_at} for device_id, used_at in latest.items()]
    )


class LastUsedWriter(BackgroundBatcher[tuple[int, dt.datetime]]):
    """The per-process buffer of (device id, time of use) and the thread that writes them in one transaction."""

    def __init__(self, engine: Engine, flush_seconds: float) -> None:
        super().__init__("api-last-used-writer", self._write, flush_seconds, max_pending=MAX_PENDING_USES)
        self.engine = engine

    def _write(self, uses: list[tuple[int, dt.datetime]]) -> None:
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Nothing waits for these rows: do not wait for the WAL flush either.
                connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
            _write_last_used(connection, uses)


def last_used_writer(app: Flask) -> LastUsedWriter:
    return app_batcher(
        app, LAST_USED_EXTENSION_KEY, lambda: LastUsedWriter(db.engine, app.config["API_LAST_USED_FLUSH_SECONDS"])
    )


def flush_last_used(app: Flask) -> int:
    """Write the uses this process has buffered now (worker shutdown, tests). Returns how many were handed over."""
    return flush_app_batcher(app, LAST_USED_EXTENSION_KEY)


def refresh_tokens(refresh_token: str, now: dt.datetime | None = None) -> IssuedTokens | None:
    """Rotate: a new pair for the device of ``refresh_token``, which dies. None when the token is not one of ours,
    expired, or its device is gone. Raises :class:`RefreshTokenReusedError` (device revoked, flushed) for an old
    token of a live device, or when a concurrent refresh with the same token won."""
    now = now or utcnow()
    match = _REFRESH_TOKEN.match(refresh_token)
    if match is None:
        return None
    device = db.session.scalar(select(ApiDevice).where(ApiDevice.refresh_family == match["family"]))
    if device is None or device.revoked_at is not None or device.refresh_expires_at <= now:
        return None
    presented = digest(refresh_token)
    if not hmac.compare_digest(presented, device.refresh_token_hash):
        revoke_device(device, RevokedReason.REFRESH_REUSED, now)
        raise RefreshTokenReusedError(device)
    access, refresh, access_expires, refresh_expires = _new_pair(device.refresh_family, now)
    swapped = db.session.execute(
        update(ApiDevice)
        .where(
            ApiDevice.id == device.id,
            ApiDevice.refresh_token_hash == presented,
            ApiDevice.revoked_at.is_(None),
        )
        .values(
            access_token_hash=digest(access),
            access_expires_at=access_expires,
            refresh_token_hash=digest(refresh),
            refresh_expires_at=refresh_expires,
            last_used_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if swapped.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
        # Another refresh with the same token committed first: one token, two users of it.
        db.session.refresh(device)
        revoke_device(device, RevokedReason.REFRESH_REUSED, now)
        raise RefreshTokenReusedError(device)
    db.session.refresh(device)
    return IssuedTokens(device, access, access_expires, refresh, refresh_expires)


def revoke_device(device: ApiDevice, reason: RevokedReason, now: dt.datetime | None = None) -> None:
    """End a device: its access and refresh tokens are refused from now on (a second call changes nothing)."""
    if device.revoked_at is not None:
        return
    now = now or utcnow()
    device.revoked_at = now
    device.revoked_reason = reason
    device.access_expires_at = min(device.access_expires_at, now)
    device.refresh_expires_at = min(device.refresh_expires_at, now)
    db.session.flush()


def revoke_all_devices(user: User, reason: RevokedReason, now: dt.datetime | None = None) -> int:
    """End every live device of ``user``; returns how many."""
    devices = live_devices_of(user.id, now)
    for device in devices:
        revoke_device(device, reason, now)
    return len(devices)


def remember_app_token(device: ApiDevice, card_id: int) -> None:
    """Note the APP_USER token issued for this phone (flushed)."""
    device.app_token_card_id = card_id
    db.session.flush()

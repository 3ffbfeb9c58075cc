"""Users (who logs in) and accounts (the driver's contract with us).

A *user* is a login: drivers and staff alike. An *account* is the contract a driver holds: billing identity,
language, plan, cards and invoices hang off it. Staff users have no account. Keeping the two apart lets a fleet
account get several logins later without moving any billing data.
"""

from __future__ import annotations

import datetime as dt
import enum

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.session_tokens import make_session_token
from app.db import TimestampMixin, str_enum, utcnow
from app.extensions import Model


class Role(enum.StrEnum):
    DRIVER = "driver"
    SUPPORT = "support"
    FINANCE = "finance"
    ADMIN = "admin"
    OPERATIONS = "operations"  # the roaming network: partners, hubs, pulls, pushes, quarantine


STAFF_ROLES = frozenset({Role.SUPPORT, Role.FINANCE, Role.OPERATIONS, Role.ADMIN})

# Countries where we sell contracts (billing address / VAT). Charging itself roams everywhere.
SUPPORTED_COUNTRIES = ("BE", "NL", "LU", "FR", "DE")
LANGUAGES = ("nl", "fr", "en")


class Account(TimestampMixin, Model):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))
    language: Mapped[str] = mapped_column(String(2), default="en")
    company_name: Mapped[str | None] = mapped_column(String(200))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    # Where the account's notices go (invoices, payment failures, card events) instead of its sign-in addresses;
    # only a confirmed address is used. One waiting for its confirmation link stays apart until then
    # (``app.accounts.notices``).
    notification_email: Mapped[str | None] = mapped_column(String(254))
    notification_email_pending: Mapped[str | None] = mapped_column(String(254))
    # Closing keeps the billing identity for the legal retention period, then anonymises it.
    closed_at: Mapped[dt.datetime | None]
    anonymised_at: Mapped[dt.datetime | None]

    users: Mapped[list[User]] = relationship(back_populates="account")

    __table_args__ = (
        # Support searches names by prefix, case-insensitively (text_pattern_ops on PostgreSQL, see migration).
        Index("ix_accounts_full_name_lower", func.lower(full_name)),
        # Finance finds invoices by any part of the name: a trigram index on PostgreSQL only (migration 16b2b0abe013).
        Index(
            "ix_accounts_full_name_trgm",
            func.lower(full_name).label("full_name_lower"),
            postgresql_using="gin",
            postgresql_ops={"full_name_lower": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        CheckConstraint("language IN ('nl', 'fr', 'en')", name="language"),
        CheckConstraint("length(country) = 2", name="country"),
    )

    @property
    def is_business(self) -> bool:
        return bool(self.company_name)

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.full_name!r}>"


class User(UserMixin, TimestampMixin, Model):  # type: ignore[misc]  # flask_login is untyped
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased; the unique index is on the stored value.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role))
    active: Mapped[bool] = mapped_column(default=True)
    email_confirmed_at: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    # Changes whenever the password changes: invalidates reset links and other sessions.
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"), index=True)

    account: Mapped[Account | None] = relationship(back_populates="users")

    __table_args__ = (
        Index("ix_users_email_prefix", "email", postgresql_ops={"email": "text_pattern_ops"}),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("role <> 'driver' OR account_id IS NOT NULL", name="driver_has_account"),
    )

    # Flask-Login: the session and the remember-me cookie carry id + version, so that bumping the version (logout,
    # password change, sign out everywhere) ends every copy of them (app/accounts/session_tokens.py).
    def get_id(self) -> str:
        return make_session_token(self.id, self.session_version)

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_confirmed(self) -> bool:
        return self.email_confirmed_at is not None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def preferred_language(self) -> str:
        return self.account.language if self.account is not None else "en"

    def has_role(self, *roles: Role | str) -> bool:
        """True when the user holds one of ``roles``; admins hold every staff role."""
        wanted = {Role(role) for role in roles}
        if self.role in wanted:
            return True
        return self.role == Role.ADMIN and bool(wanted & STAFF_ROLES)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class AccountNote(Model):
    """A support note on an account (visible to staff only)."""

    __tablename__ = "account_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_label: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def normalize_email(email: str) -> str:
    return email.strip().lower()

"""Plan versions and subscriptions.

A plan is identified by its ``code``; every change to the terms of a plan that has (or had) subscribers makes
a new *version* row, so an old invoice can always be explained by the terms it was computed from.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import utcnow
from app.extensions import Model

PRICE = Numeric(12, 4)
PERCENT = Numeric(7, 4)


class Plan(Model):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(default=1)
    names: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"en": ..., "nl": ..., "fr": ...}
    descriptions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    monthly_fee: Mapped[Decimal] = mapped_column(PRICE)
    markup_percent: Mapped[Decimal] = mapped_column(PERCENT)
    markup_per_kwh: Mapped[Decimal] = mapped_column(PRICE)
    session_fee: Mapped[Decimal] = mapped_column(PRICE)
    session_fee_cap_per_month: Mapped[Decimal | None] = mapped_column(PRICE)
    open_to_new: Mapped[bool] = mapped_column(default=True)
    business_only: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    superseded_at: Mapped[dt.datetime | None]
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="SET NULL"))

    __table_args__ = (
        UniqueConstraint("code", "version"),
        CheckConstraint(
            "monthly_fee >= 0 AND markup_percent >= 0 AND markup_per_kwh >= 0 AND session_fee >= 0 "
            "AND (session_fee_cap_per_month IS NULL OR session_fee_cap_per_month >= 0)",
            name="non_negative",
        ),
    )

    @property
    def is_current(self) -> bool:
        return self.superseded_at is None

    def name_in(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or self.code

    def __repr__(self) -> str:
        return f"<Plan {self.code} v{self.version}>"


class Subscription(Model):
    """One stretch of an account's plan history: the plan version in force from ``starts_at`` to ``ends_at``.

    Stretches of one account never overlap; the open one has ``ends_at`` NULL. A scheduled change (downgrade at
    the end of the month) is a stretch whose ``starts_at`` lies in the future.
    """

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"), index=True)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))

    plan: Mapped[Plan] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("account_id", "starts_at"),
        Index("ix_subscriptions_account_period", "account_id", "starts_at", "ends_at"),
        # At most one open-ended stretch per account.
        Index(
            "uq_subscriptions_open",
            "account_id",
            unique=True,
            sqlite_where=text("ends_at IS NULL"),
            postgresql_where=text("ends_at IS NULL"),
        ),
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="positive_length"),
    )

"""Stripe customers and the payment methods we know of. No card data is ever stored: only Stripe ids and
what Stripe tells us is safe to display (brand, last 4, expiry, IBAN last 4)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import str_enum, utcnow
from app.extensions import Model


class PaymentMethodStatus(enum.StrEnum):
    ACTIVE = "active"
    REPLACED = "replaced"
    DETACHED = "detached"


class StripeCustomer(Model):
    __tablename__ = "stripe_customers"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"), primary_key=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PaymentMethod(Model):
    __tablename__ = "payment_methods"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"), index=True)
    stripe_payment_method_id: Mapped[str] = mapped_column(String(64), unique=True)
    method_type: Mapped[str] = mapped_column(String(20))  # "card" or "sepa_debit"
    brand: Mapped[str | None] = mapped_column(String(20))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int | None]
    exp_year: Mapped[int | None]
    # SEPA Direct Debit: the mandate reference (UMR) the bank debits under; printed on invoices and required in
    # the e-invoice (Peppol rule R061). None for cards.
    mandate_reference: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[PaymentMethodStatus] = mapped_column(
        str_enum(PaymentMethodStatus),
        default=PaymentMethodStatus.ACTIVE,
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    replaced_at: Mapped[dt.datetime | None]

    __table_args__ = (
        # One active method per account: adding a new one replaces the old in the same transaction.
        Index(
            "uq_payment_methods_active",
            "account_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    def is_usable(self, today: dt.date) -> bool:
        if self.status != PaymentMethodStatus.ACTIVE:
            return False
        if self.method_type == "card" and self.exp_year and self.exp_month:
            return (self.exp_year, self.exp_month) >= (today.year, today.month)
        return True

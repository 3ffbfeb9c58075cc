"""Card stock, drivers' cards (OCPI Tokens) and the pending "token changed" events for partners."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.db import str_enum, utcnow
from app.extensions import Model
from app.ocpi_ids import ci_key_or_none


class CardStatus(enum.StrEnum):
    ORDERED = "ordered"
    SHIPPED = "shipped"
    ACTIVE = "active"
    BLOCKED = "blocked"
    REPLACED = "replaced"
    EXPIRED = "expired"


class BlockReason(enum.StrEnum):
    LOST = "lost"
    STOLEN = "stolen"
    PAYMENT = "payment"
    FRAUD = "fraud"
    SUPPORT = "support"
    CLOSED = "closed"  # the account was closed


class TokenType(enum.StrEnum):
    RFID = "RFID"
    APP_USER = "APP_USER"


# The OCPI token types we issue (AD_HOC_USER and OTHER exist in OCPI, never as our cards).
ISSUED_TOKEN_TYPES = frozenset(member.value for member in TokenType)


class WhitelistType(enum.StrEnum):
    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class StockCard(Model):
    """A pre-encoded card from the manufacturer, waiting in the warehouse to be shipped to a driver."""

    __tablename__ = "stock_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(14), unique=True)
    visual_number: Mapped[str] = mapped_column(String(64), unique=True)
    batch: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class Card(Model):
    """A driver's token. RFID cards go ordered → shipped → active; app tokens are active at once."""

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"), index=True)
    token_type: Mapped[TokenType] = mapped_column(str_enum(TokenType))
    status: Mapped[CardStatus] = mapped_column(str_enum(CardStatus), index=True)
    # uid, contract_id and visual_number are set when a stock card is assigned (shipped) or an app token minted.
    # uid and contract_id are OCPI CiStrings, kept in their folded form (app.ocpi_ids.ci_key, enforced by the
    # *_normalised checks): a partner's "04de0001" is found by one index lookup of ci_key("04de0001"), and the
    # unique constraints below are case-insensitive.
    uid: Mapped[str | None] = mapped_column(String(36))
    contract_id: Mapped[str | None] = mapped_column(String(36))
    visual_number: Mapped[str | None] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(64))
    whitelist: Mapped[WhitelistType] = mapped_column(str_enum(WhitelistType), default=WhitelistType.ALLOWED)
    language: Mapped[str | None] = mapped_column(String(2))
    label: Mapped[str | None] = mapped_column(String(80))
    driver_name: Mapped[str | None] = mapped_column(String(120))
    block_reason: Mapped[BlockReason | None] = mapped_column(str_enum(BlockReason))
    replaces_card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"))
    ordered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    shipped_at: Mapped[dt.datetime | None]
    activated_at: Mapped[dt.datetime | None]
    blocked_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]
    # OCPI last_updated: bumped on every change partners can see; the Tokens GET filters on it.
    last_updated: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    replaces: Mapped[Card | None] = relationship(remote_side=[id])

    __table_args__ = (
        UniqueConstraint("uid", "token_type"),
        UniqueConstraint("contract_id"),
        # Prefix search for support (uid / visual number / contract id): LIKE 'prefix%' uses these on PostgreSQL
        # whatever the database collation (text_pattern_ops compares byte-wise).
        Index("ix_cards_uid", "uid", postgresql_ops={"uid": "text_pattern_ops"}),
        Index("ix_cards_visual_number", "visual_number", postgresql_ops={"visual_number": "text_pattern_ops"}),
        Index("ix_cards_contract_id_prefix", "contract_id", postgresql_ops={"contract_id": "text_pattern_ops"}),
        CheckConstraint(
            "status IN ('ordered', 'expired') OR (uid IS NOT NULL AND contract_id IS NOT NULL)", name="identified"
        ),
        CheckConstraint("status <> 'blocked' OR block_reason IS NOT NULL", name="blocked_has_reason"),
        CheckConstraint("uid = upper(uid)", name="uid_normalised"),
        CheckConstraint("contract_id = upper(contract_id)", name="contract_id_normalised"),
    )

    @validates("uid", "contract_id")
    def _normalise_ci_string(self, _name: str, value: str | None) -> str | None:
        return ci_key_or_none(value)

    @property
    def valid(self) -> bool:
        """OCPI ``valid``: only an active card may charge."""
        return self.status == CardStatus.ACTIVE

    def __repr__(self) -> str:
        return f"<Card {self.id} {self.token_type} {self.uid} {self.status}>"


class TokenUpdate(Model):
    """A "token changed" event: the OCPI Token as it must now be known by partners.

    Written in the same transaction as the change, so no change is ever lost; the roaming module pushes them
    in ``id`` order per token and records the delivery per partner.
    """

    __tablename__ = "token_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    uid: Mapped[str] = mapped_column(String(36))
    token_type: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(40))
    token: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

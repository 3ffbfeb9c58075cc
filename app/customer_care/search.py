"""Support search: accounts by email, name, card UID, printed card number or contract id, by prefix.

Every branch is a ``LIKE 'prefix%'`` on an indexed column (text_pattern_ops on PostgreSQL), so a search stays
an index range scan on millions of cards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select

from app.accounts.models import Account, Role, User
from app.cards.models import Card
from app.extensions import db

MIN_QUERY_LENGTH = 2
MAX_RESULTS = 50


@dataclass(frozen=True)
class SearchHit:
    account: Account
    email: str | None
    matched_on: str
    matched_value: str


def _prefix(value: str) -> str:
    """A LIKE pattern matching values that start with ``value`` literally."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def search_accounts(query: str, limit: int = MAX_RESULTS) -> list[SearchHit]:
    text = query.strip()
    if len(text) < MIN_QUERY_LENGTH and not text.isdigit():
        return []
    hits: dict[int, SearchHit] = {}

    def add(account: Account, email: str | None, matched_on: str, value: str) -> None:
        if account.id not in hits and len(hits) < limit:
            hits[account.id] = SearchHit(account, email, matched_on, value)

    driver_email = (
        select(User.email).where(User.account_id == Account.id, User.role == Role.DRIVER).limit(1).scalar_subquery()
    )
    if "@" in text or "." in text:
        email_rows = db.session.execute(
            select(Account, User.email)
            .join(User, User.account_id == Account.id)
            .where(User.email.like(_prefix(text.lower()), escape="\\"))
            .order_by(User.email)
            .limit(limit)
        )
        for account, email in email_rows:
            add(account, email, "email", email)

    compact = re.sub(r"[\s:]", "", text).upper()
    card_columns = (
        ("uid", Card.uid, compact),
        ("visual_number", Card.visual_number, text.upper()),
        ("contract_id", Card.contract_id, text.upper()),
    )
    for matched_on, column, value in card_columns:
        card_rows = db.session.execute(
            select(Account, driver_email, column)
            .join(Card, Card.account_id == Account.id)
            .where(column.like(_prefix(value), escape="\\"))
            .order_by(column)
            .limit(limit)
        )
        for account, email, matched in card_rows:
            add(account, email, matched_on, matched)

    name_rows = db.session.execute(
        select(Account, driver_email)
        .where(func.lower(Account.full_name).like(_prefix(text.lower()), escape="\\"))
        .order_by(Account.full_name)
        .limit(limit)
    )
    for account, email in name_rows:
        add(account, email, "name", account.full_name)
    if text.isdigit():
        numbered = db.session.get(Account, int(text))
        if numbered is not None:
            add(numbered, None, "customer number", text)
    return list(hits.values())

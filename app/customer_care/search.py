"""Support search: accounts by email, name (any word of it: "Peeters" finds "Eva Peeters"), card UID, printed card
number, contract id (with or without its dashes, in any case) or customer number.

Each hit says what it matched on as a code (``MATCH_*``), which the page shows in words in the agent's language.
Every branch but one is a ``LIKE 'prefix%'`` on an indexed column (text_pattern_ops on PostgreSQL), so the search
stays an index range scan on millions of cards. The exception is a later word of a name (a surname after a first
name): ``LIKE '% word%'`` cannot use the name's prefix index, so it reads the accounts table (about 0.2 to 0.35 s
for 300,000 accounts on PostgreSQL, measured on a loaded two-core machine). It runs only for a query that may be a
name (letters, no digits, no "@") and only when the indexed branches left room in the results. A trigram index,
``gin (lower(full_name) gin_trgm_ops)`` (pg_trgm), makes it an index scan (0.05 ms for a name no one has).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, or_, select

from app.accounts.models import Account, Role, User
from app.cards.models import Card
from app.extensions import db

MIN_QUERY_LENGTH = 2
MAX_QUERY_LENGTH = 200  # longer than any email, name or id we hold: a longer query is cut, not sent whole
MAX_RESULTS = 50
MAX_ACCOUNT_ID = 2**31 - 1  # accounts.id is a 32-bit integer: a longer number is no customer number

MATCH_EMAIL = "email"
MATCH_NAME = "name"
MATCH_CARD_UID = "card_uid"
MATCH_CARD_NUMBER = "card_number"
MATCH_CONTRACT_ID = "contract_id"
MATCH_CUSTOMER_NUMBER = "customer_number"

# The eMAID's parts (ISO 15118 Annex H): country (2), provider (3), instance (9), check digit (1).
_EMAID_PARTS = (2, 3, 9, 1)


@dataclass(frozen=True)
class SearchHit:
    account: Account
    email: str | None
    matched_on: str  # one of the MATCH_* codes
    matched_value: str


def _prefix(value: str) -> str:
    """A LIKE pattern matching values that start with ``value`` literally."""
    return _escaped(value) + "%"


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contract_id_prefixes(text: str) -> set[str]:
    """The stored forms a typed contract id (or its beginning) may start: as typed (upper case, no spaces), and
    with its dashes where an eMAID has them, so ``bevltc123456789`` finds ``BE-VLT-C12345678-9``."""
    typed = re.sub(r"\s", "", text).upper()
    compact = typed.replace("-", "")
    prefixes = {typed}
    if compact.isascii() and compact.isalnum():
        parts, rest = [], compact
        for size in _EMAID_PARTS:
            if rest:
                parts.append(rest[:size])
                rest = rest[size:]
        if not rest:  # longer than an eMAID: no dashed form of it exists
            prefixes.add("-".join(parts))
    return prefixes


def _customer_number(text: str) -> int | None:
    digits = text.removeprefix("#")
    if not digits.isdigit():
        return None
    number = int(digits)
    return number if 0 < number <= MAX_ACCOUNT_ID else None


def _may_be_a_name(text: str) -> bool:
    """Letters and no digits and no "@": a query for an email, a card or a contract id never pays for the scan."""
    return any(character.isalpha() for character in text) and not any(
        character.isdigit() or character == "@" for character in text
    )


def search_accounts(query: str, limit: int = MAX_RESULTS) -> list[SearchHit]:
    text = query.strip()[:MAX_QUERY_LENGTH]
    if len(text) < MIN_QUERY_LENGTH and not text.isdigit():
        return []
    hits: dict[int, SearchHit] = {}

    def add(account: Account, email: str | None, matched_on: str, value: str) -> None:
        if account.id not in hits and len(hits) < limit:
            hits[account.id] = SearchHit(account, email, matched_on, value)

    driver_email = (
        select(User.email).where(User.account_id == Account.id, User.role == Role.DRIVER).limit(1).scalar_subquery()
    )
    number = _customer_number(text)
    if number is not None:
        for account, email in db.session.execute(select(Account, driver_email).where(Account.id == number)):
            add(account, email, MATCH_CUSTOMER_NUMBER, f"{number:08d}")
    if "@" in text or "." in text:
        email_rows = db.session.execute(
            select(Account, User.email)
            .join(User, User.account_id == Account.id)
            .where(User.email.like(_prefix(text.lower()), escape="\\"))
            .order_by(User.email)
            .limit(limit)
        )
        for account, email in email_rows:
            add(account, email, MATCH_EMAIL, email)

    compact = re.sub(r"[\s:]", "", text).upper()
    card_searches = (
        (MATCH_CARD_UID, Card.uid, {compact}),
        (MATCH_CARD_NUMBER, Card.visual_number, {text.upper(), compact}),
        (MATCH_CONTRACT_ID, Card.contract_id, contract_id_prefixes(text)),
    )
    for matched_on, column, typed_forms in card_searches:
        values = sorted(value for value in typed_forms if len(value) >= MIN_QUERY_LENGTH)  # "::" is no prefix
        if not values:
            continue
        card_rows = db.session.execute(
            select(Account, driver_email, column)
            .join(Card, Card.account_id == Account.id)
            .where(or_(*(column.like(_prefix(value), escape="\\") for value in values)))
            .order_by(column)
            .limit(limit)
        )
        for account, email, matched in card_rows:
            add(account, email, matched_on, matched)

    lowered = text.lower()
    name_rows = db.session.execute(
        select(Account, driver_email)
        .where(func.lower(Account.full_name).like(_prefix(lowered), escape="\\"))
        .order_by(Account.full_name)
        .limit(limit)
    )
    for account, email in name_rows:
        add(account, email, MATCH_NAME, account.full_name)
    if len(hits) < limit and _may_be_a_name(text):
        # A later word of the name ("Peeters" in "Eva Peeters", "Claes" in "Peeters-Claes"): not indexable.
        word = _escaped(lowered)
        later_word = db.session.execute(
            select(Account, driver_email)
            .where(
                or_(
                    func.lower(Account.full_name).like(f"% {word}%", escape="\\"),
                    func.lower(Account.full_name).like(f"%-{word}%", escape="\\"),
                )
            )
            .order_by(Account.full_name)
            .limit(limit)
        )
        for account, email in later_word:
            add(account, email, MATCH_NAME, account.full_name)
    return list(hits.values())

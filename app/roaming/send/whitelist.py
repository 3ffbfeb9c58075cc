"""Our token list: the paginated Tokens GET (mod_tokens Sender) and whitelist files for partners without
real-time exchange.

Which cards are tokens: every card with a uid that a partner may meet at a charge point — shipped, active,
blocked, replaced and expired (the last three with ``valid: false``, so caches learn they stopped working).
Ordered cards have no uid yet and are never listed.

Both paths read in keyset order ``(last_updated, id)`` over the ``cards.last_updated`` index, so the millionth
token costs the same as the first; an OFFSET over a million rows would not.

What a partner reads depends on its status (:class:`TokenView`): to a partner we suspended every token reads
``valid: false``, so the whitelist it caches stops authorizing our cards there. When we suspend and when we
resume, every token is re-stated to it (``Partner.tokens_restated_at``): no token reads older than that moment,
so its next incremental pull (``date_from`` before it) returns every token again and corrects its cache.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVarTuple

from sqlalchemy import Select, and_, false, func, or_, select

from app.accounts.models import Account
from app.cards.models import Card, CardStatus
from app.cards.tokens import token_object
from app.csv_export import csv_writer
from app.extensions import db
from app.roaming.models import Partner, PartnerStatus
from app.timestamps import ocpi_timestamp

Columns = TypeVarTuple("Columns")

CSV_FIELDS = (
    "country_code",
    "party_id",
    "uid",
    "type",
    "contract_id",
    "visual_number",
    "issuer",
    "group_id",
    "valid",
    "whitelist",
    "language",
    "last_updated",
)


@dataclass(frozen=True)
class TokenView:
    """Our token list as one partner reads it: ``valid`` False makes every token invalid (a partner we
    suspended); ``restated_at`` is the oldest ``last_updated`` a token may show (see the module docstring)."""

    valid: bool = True
    restated_at: dt.datetime | None = None

    @classmethod
    def for_partner(cls, partner: Partner) -> TokenView:
        return cls(valid=partner.status != PartnerStatus.SUSPENDED, restated_at=partner.tokens_restated_at)

    def token_object(self, card: Card, language: str | None = None) -> dict[str, Any]:
        token = token_object(card, language=language)
        if not self.valid:
            token["valid"] = False
        if self.restated_at is not None and card.last_updated < self.restated_at:
            token["last_updated"] = ocpi_timestamp(self.restated_at)
        return token


def _filtered(
    query: Select[*Columns],
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    view: TokenView | None = None,
) -> Select[*Columns]:
    """Tokens whose ``last_updated`` *as the partner reads it* (the card's, but not before ``view.restated_at``)
    falls in [date_from, date_to). The order and the keyset stay on the card's own column, so the index serves."""
    query = query.where(Card.uid.is_not(None), Card.status != CardStatus.ORDERED)
    floor = view.restated_at if view is not None else None
    if date_from is not None and (floor is None or floor < date_from):
        query = query.where(Card.last_updated >= date_from)  # else every token reads at least as new as date_from
    if date_to is not None:
        if floor is not None and floor >= date_to:
            return query.where(false())  # every token reads at least as new as date_to (exclusive)
        query = query.where(Card.last_updated < date_to)
    return query


def count_tokens(
    date_from: dt.datetime | None = None, date_to: dt.datetime | None = None, view: TokenView | None = None
) -> int:
    return db.session.scalar(_filtered(select(func.count()).select_from(Card), date_from, date_to, view)) or 0


def token_page(
    *,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    limit: int,
    offset: int = 0,
    after: tuple[dt.datetime, int] | None = None,
    view: TokenView | None = None,
) -> list[tuple[Card, str]]:
    """One page of (card, account language). With ``after`` (the last row of the previous page) the page
    starts right after it (keyset); without it, ``offset`` rows are skipped (plain OCPI paging)."""
    query = _filtered(
        select(Card, Account.language).join(Account, Account.id == Card.account_id), date_from, date_to, view
    )
    if after is not None:
        moment, card_id = after
        # Written so PostgreSQL can start the index range scan at ``moment``.
        query = query.where(
            Card.last_updated >= moment,
            or_(Card.last_updated > moment, and_(Card.last_updated == moment, Card.id > card_id)),
        )
    elif offset:
        query = query.offset(offset)
    rows = db.session.execute(query.order_by(Card.last_updated, Card.id).limit(limit)).all()
    return [(card, language) for card, language in rows]


def iter_token_objects(batch_size: int = 2000, view: TokenView | None = None) -> Iterator[dict[str, Any]]:
    """Every token as an OCPI Token object (as ``view`` reads it), in keyset batches; cards are detached after
    use so a million tokens never sit in the session at once."""
    view = view or TokenView()
    after: tuple[dt.datetime, int] | None = None
    while True:
        rows = token_page(date_from=None, date_to=None, limit=batch_size, after=after)
        if not rows:
            return
        for card, language in rows:
            yield view.token_object(card, language=language)
        last = rows[-1][0]
        after = (last.last_updated, last.id)
        for card, _language in rows:
            db.session.expunge(card)


@dataclass(frozen=True)
class WhitelistExport:
    partner_id: int
    tokens: int
    json_path: Path
    csv_path: Path


def _csv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def export_whitelist(partner: Partner, out: str | os.PathLike[str]) -> WhitelistExport:
    """Write the full token list, as the partner reads it (:class:`TokenView`: all invalid while we suspend it),
    as an OCPI Token JSON array to ``out`` and as CSV next to it (``.csv``).

    Files are written to a temporary name and renamed, so a partner fetching them never reads half a file.
    Read-only for the database.
    """
    json_path = Path(out)
    csv_path = json_path.with_suffix(".csv")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_tmp = json_path.with_name(json_path.name + ".part")
    csv_tmp = csv_path.with_name(csv_path.name + ".part")
    count = 0
    with json_tmp.open("w", encoding="utf-8") as json_file, csv_tmp.open("w", encoding="utf-8", newline="") as csv_file:
        writer = csv_writer(csv_file)
        writer.writerow(CSV_FIELDS)
        json_file.write("[")
        for token in iter_token_objects(view=TokenView.for_partner(partner)):
            json_file.write(
                ("," if count else "") + "\n" + json.dumps(token, ensure_ascii=False, separators=(",", ":"))
            )
            writer.writerow([_csv_value(token.get(field)) for field in CSV_FIELDS])
            count += 1
        json_file.write("\n]\n")
    os.replace(json_tmp, json_path)
    os.replace(csv_tmp, csv_path)
    return WhitelistExport(partner_id=partner.id, tokens=count, json_path=json_path, csv_path=csv_path)


# Whose whitelist files are written: a suspended partner's too, with every token invalid, so the file it caches
# stops authorizing our cards (skipping it would leave the last all-valid file in place). Unregistered and
# removed partners get none.
FILE_WHITELIST_STATUSES = (PartnerStatus.REGISTERED, PartnerStatus.SUSPENDED)


def partners_for_file_whitelist() -> list[Partner]:
    """Partners that cannot receive token pushes (no Tokens Receiver endpoint): they get files instead."""
    partners = db.session.scalars(
        select(Partner).where(Partner.status.in_(FILE_WHITELIST_STATUSES)).order_by(Partner.id)
    ).all()
    return [partner for partner in partners if not partner.endpoint_url("tokens", "RECEIVER")]

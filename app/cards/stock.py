"""Importing the manufacturer's card stock (CSV of ``uid,visual_number``): all lines or none."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.cards.models import Card, StockCard
from app.extensions import db

UID_PATTERN = re.compile(r"^(?:[0-9A-F]{8}|[0-9A-F]{14})$")


@dataclass
class StockImportError(ValueError):
    """The file was refused; ``errors`` lists every bad line as (line number, message)."""

    errors: list[tuple[int, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(f"line {line}: {message}" for line, message in self.errors)


@dataclass(frozen=True)
class StockLevels:
    available: int
    assigned: int


def normalize_uid(raw: str) -> str:
    return raw.strip().replace(":", "").replace(" ", "").upper()


def parse_stock_csv(text: str) -> list[tuple[int, str, str]]:
    """Parse the CSV into (line number, uid, visual number); a header line ``uid,visual_number`` is allowed."""
    rows: list[tuple[int, str, str]] = []
    errors: list[tuple[int, str]] = []
    for line_number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if line_number == 1 and [cell.strip().lower() for cell in row] == ["uid", "visual_number"]:
            continue
        if len(row) != 2:
            errors.append((line_number, f"expected 2 columns (uid,visual_number), found {len(row)}"))
            continue
        rows.append((line_number, normalize_uid(row[0]), row[1].strip()))
    if errors:
        raise StockImportError(errors)
    return rows


def import_stock(rows: list[tuple[int, str, str]], batch: str) -> int:
    """Validate every row, then insert them all in the caller's transaction. Returns the number imported."""
    errors: list[tuple[int, str]] = []
    seen_uids: dict[str, int] = {}
    seen_visuals: dict[str, int] = {}
    for line, uid, visual in rows:
        if not UID_PATTERN.match(uid):
            errors.append((line, f"uid {uid!r} is not 8 or 14 hexadecimal characters"))
        if not visual or len(visual) > 64:
            errors.append((line, "visual number must be 1 to 64 characters"))
        if uid in seen_uids:
            errors.append((line, f"uid {uid} repeats line {seen_uids[uid]}"))
        if visual in seen_visuals:
            errors.append((line, f"visual number {visual} repeats line {seen_visuals[visual]}"))
        seen_uids.setdefault(uid, line)
        seen_visuals.setdefault(visual, line)
    if not rows:
        errors.append((0, "the file holds no cards"))

    uids = list(seen_uids)
    visuals = list(seen_visuals)
    known_uids: set[str] = set()
    known_visuals: set[str] = set()
    for start in range(0, len(uids), 900):  # stay under SQLite's bound-parameter limit
        chunk = uids[start : start + 900]
        known_uids |= set(db.session.scalars(select(StockCard.uid).where(StockCard.uid.in_(chunk))))
        known_uids |= set(db.session.scalars(select(Card.uid).where(Card.uid.in_(chunk))))
    for start in range(0, len(visuals), 900):
        chunk = visuals[start : start + 900]
        known_visuals |= set(
            db.session.scalars(select(StockCard.visual_number).where(StockCard.visual_number.in_(chunk)))
        )
    for line, uid, visual in rows:
        if uid in known_uids:
            errors.append((line, f"uid {uid} is already known"))
        if visual in known_visuals:
            errors.append((line, f"visual number {visual} is already known"))
    if errors:
        raise StockImportError(sorted(errors))

    db.session.add_all(StockCard(uid=uid, visual_number=visual, batch=batch) for _, uid, visual in rows)
    db.session.flush()
    return len(rows)


def stock_levels() -> StockLevels:
    available = db.session.scalar(select(func.count(StockCard.id)).where(StockCard.assigned_at.is_(None))) or 0
    assigned = db.session.scalar(select(func.count(StockCard.id)).where(StockCard.assigned_at.is_not(None))) or 0
    return StockLevels(available=available, assigned=assigned)

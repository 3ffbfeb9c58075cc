"""Gapless, sequential invoice numbers per series (``INV-2026-000001``, credit notes ``CN-2026-000001``).

The number is taken by an ``UPDATE ... RETURNING`` on the series row inside the finalizing transaction. The
UPDATE holds a row lock (PostgreSQL) or the write lock (SQLite) until that transaction ends, and a rolled-back
transaction gives its number back: no gaps, no duplicates. On PostgreSQL concurrent finalizations queue up on
the row; SQLite (the embedded default) refuses a second writer that already read in its transaction ("database
is locked") instead of queueing it: that transaction rolls back and is retried (the invoice run retries a
failed chunk), so the numbers stay gapless there too (tests/billing/test_numbering_concurrency.py).
Take the number as the *last* step before commit to keep the lock short. The monthly run takes the numbers of a
whole chunk of accounts at once (:func:`take_numbers`): one lock per chunk instead of one per invoice.

Each invoice also gets a structured payment reference derived from its number (:func:`invoice_payment_reference`,
below): what the customer quotes when paying by transfer.
"""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from app.billing.models import InvoiceKind, NumberSeries
from app.extensions import db

PREFIX = {InvoiceKind.INVOICE: "INV", InvoiceKind.CREDIT_NOTE: "CN"}


def series_for(kind: InvoiceKind, year: int) -> str:
    return f"{PREFIX[kind]}-{year}"


def _ensure_series(series: str) -> None:
    if db.session.scalar(select(NumberSeries.series).where(NumberSeries.series == series)) is not None:
        return
    try:
        with db.session.begin_nested():
            db.session.add(NumberSeries(series=series, next_number=1))
    except IntegrityError:
        pass  # created concurrently: fine


def number_text(series: str, sequence: int) -> str:
    return f"{series}-{sequence:06d}"


def take_numbers(series: str, count: int) -> int:
    """Consume the next ``count`` numbers of ``series`` in the current transaction with one UPDATE; returns the
    first (the batch owns ``first .. first + count - 1``). The row lock lasts until the transaction ends, so the
    caller must store exactly that many numbered documents in the same transaction (a rollback gives them all
    back) and commit soon."""
    if count < 1:
        raise ValueError("take at least one number")
    _ensure_series(series)
    first: int = db.session.execute(
        text(
            "UPDATE billing_number_series SET next_number = next_number + :count WHERE series = :series "
            "RETURNING next_number - :count"
        ),
        {"series": series, "count": count},
    ).scalar_one()
    return first


def take_number(series: str) -> tuple[int, str]:
    """Consume the next number of ``series`` in the current transaction; returns (sequence, formatted)."""
    sequence = take_numbers(series, 1)
    return sequence, number_text(series, sequence)


# --- structured payment references ------------------------------------------------------------------------------
#
# What a customer types (or their bank app reads from the QR code) when paying by transfer, so finance can match the
# money to the invoice. Derived from the invoice's year and sequence at finalization, so unique per invoice:
#
# * a Belgian seller uses the Belgian structured communication (OGM/VCS, "gestructureerde mededeling"):
#   ``+++260/0000/00170+++`` = ten digits (the year's last two digits, then the sequence on eight) and two check
#   digits, the ten-digit number modulo 97 (97 when that is 0): every Belgian bank checks and carries it;
# * any other seller uses the ISO 11649 creditor reference: ``RF`` + two check digits (ISO 7064 MOD 97-10) + the
#   year and the sequence (``RF42 2026 0000 01``), which SEPA banks in the Netherlands and elsewhere carry.
#
# References are stored compact (``260000000170``, ``RF422026000001``): finance's search strips the +++, slashes
# and spaces a person or a bank statement adds, and compares the compact forms.

OGM_BASE_DIGITS = 10
MAX_OGM_SEQUENCE = 10**8 - 1  # eight digits after the year's two
RF_MAX_BODY = 21


class PaymentReferenceError(ValueError):
    """A structured payment reference cannot be made (or read) from what was given."""


def compact_reference(text: str) -> str:
    """A reference as typed or printed (``+++260/0000/00170+++``, ``RF42 2026 0000 01``) in its compact form
    (``260000000170``, ``RF422026000001``): letters upper-cased, everything but letters and digits dropped."""
    return "".join(char for char in text.upper() if char.isascii() and char.isalnum())


# What a printed or typed reference may hold besides letters and digits: the +++ and slashes of a Belgian one and
# the spaces of either. Anything else makes it invalid (the search is lenient: it just drops them).
_SEPARATORS = frozenset(" +/")


def _only_reference_characters(text: str) -> bool:
    return all((char.isascii() and char.isalnum()) or char in _SEPARATORS for char in text)


def _ogm_check(base: int) -> int:
    return base % 97 or 97


def ogm_text(digits: str) -> str:
    """Twelve digits as the Belgian structured communication is printed: ``+++123/4567/89002+++``."""
    return f"+++{digits[:3]}/{digits[3:7]}/{digits[7:]}+++"


def is_valid_ogm(text: str) -> bool:
    """A Belgian structured communication (with or without +++, slashes, spaces) whose check digits match."""
    digits = compact_reference(text)
    if len(digits) != 12 or not digits.isdigit() or not _only_reference_characters(text):
        return False
    return _ogm_check(int(digits[:10])) == int(digits[10:])


def ogm_reference(base: int) -> str:
    """The compact twelve digits of the structured communication for a ten-digit ``base`` (leading zeros kept)."""
    if not 0 < base < 10**OGM_BASE_DIGITS:
        raise PaymentReferenceError(f"a structured communication carries 1 to {OGM_BASE_DIGITS} digits, not {base}")
    return f"{base:010d}{_ogm_check(base):02d}"


def _mod97(text: str) -> int:
    """ISO 7064 MOD 97-10 of an alphanumeric string (letters count as 10..35), as IBANs and RF references use."""
    return int("".join(str(int(char, 36)) for char in text)) % 97


def rf_reference(body: str) -> str:
    """The compact ISO 11649 creditor reference of ``body`` (1 to 21 letters and digits): RF + check digits + body."""
    body = compact_reference(body)
    if not 0 < len(body) <= RF_MAX_BODY:
        raise PaymentReferenceError(f"an RF creditor reference carries 1 to {RF_MAX_BODY} letters and digits")
    return f"RF{98 - _mod97(body + 'RF00'):02d}{body}"


def is_valid_rf(text: str) -> bool:
    """An ISO 11649 creditor reference (with or without spaces) whose check digits match."""
    compact = compact_reference(text)
    if not (5 <= len(compact) <= 4 + RF_MAX_BODY and compact.startswith("RF") and compact[2:4].isdigit()):
        return False
    if not _only_reference_characters(text) or "+" in text or "/" in text:
        return False
    return _mod97(compact[4:] + compact[:4]) == 1


def rf_text(compact: str) -> str:
    """An RF reference as printed, in groups of four: ``RF42 2026 0000 01``."""
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def printed_reference(compact: str) -> str:
    """The compact form of a structured reference as it is printed on the invoice and typed by the customer."""
    return rf_text(compact) if compact.startswith("RF") else ogm_text(compact)


def invoice_payment_reference(year: int, sequence: int, seller_country: str) -> str:
    """The compact structured payment reference of invoice ``sequence`` of ``year``'s series: the Belgian
    structured communication for a Belgian seller, the ISO 11649 RF reference otherwise. Unique per invoice (the
    series is one per year, the sequence unique in it)."""
    if sequence < 1:
        raise PaymentReferenceError(f"invoice sequences start at 1, not {sequence}")
    if seller_country.upper() == "BE":
        if sequence > MAX_OGM_SEQUENCE:
            raise PaymentReferenceError(f"a structured communication holds sequences up to {MAX_OGM_SEQUENCE}")
        return ogm_reference((year % 100) * 10**8 + sequence)
    return rf_reference(f"{year:04d}{sequence:06d}")

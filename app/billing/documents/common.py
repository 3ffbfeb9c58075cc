"""What every invoice document (PDF, Factur-X, UBL) reads the same way from a snapshot (format v1).

The documents are pure functions of the frozen snapshot (app/billing/invoicing/snapshot.py); composition decides every
amount and rate. This module only *interprets*: the VAT category of a rate (S / AE / Z), whether the reverse
charge note applies, how a line maps to quantity × price in an e-invoice, and a consistency check so that no
document is produced from a snapshot whose figures do not add up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from app.money import from_minor_units, quantize, round_to_cents

# Times on an invoice are shown in the seller's zone; a snapshot may name another one ("timezone").
DEFAULT_TIMEZONE = "Europe/Brussels"

SUPPORTED_VERSIONS = (1,)
KINDS = ("invoice", "credit_note")

EU_COUNTRIES = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    }
)

# UN/ECE Recommendation 20 unit codes (the ones Peppol accepts).
UNIT_CODES = {"month": "MON", "session": "C62", "kWh": "KWH", "item": "C62"}

# VAT category codes (UNCL5305 subset used by EN 16931).
STANDARD = "S"
REVERSE_CHARGE = "AE"
ZERO_RATED = "Z"
REVERSE_CHARGE_REASON_CODE = "VATEX-EU-AE"
REVERSE_CHARGE_REASON = "Reverse charge"


class SnapshotError(ValueError):
    """The snapshot cannot be rendered: unknown version or kind, or figures that do not add up."""


def check_snapshot(snapshot: dict[str, Any]) -> None:
    """Refuse a snapshot whose totals do not follow from its lines (EN 16931 BR-CO-10/-14/-15, BR-S-08)."""
    if snapshot.get("version") not in SUPPORTED_VERSIONS:
        raise SnapshotError(f"unsupported snapshot version {snapshot.get('version')!r}")
    if snapshot.get("kind") not in KINDS:
        raise SnapshotError(f"unknown document kind {snapshot.get('kind')!r}")
    if not snapshot.get("number"):
        raise SnapshotError("the snapshot has no number (draft invoices are not rendered)")
    if snapshot["kind"] == "credit_note" and not (snapshot.get("credits_invoice") or {}).get("number"):
        raise SnapshotError(f"credit note {snapshot['number']} does not name the invoice it credits")
    lines, totals = snapshot["lines"], snapshot["totals"]
    for line in lines:
        if line["cpo_cost"] + line["fees"] + line_correction(line) != line["amount"]:
            raise SnapshotError(f"line {line['position']}: CPO price + fees + correction != amount")
    if sum(line["amount"] for line in lines) != totals["subtotal"]:
        raise SnapshotError("sum of line amounts != subtotal")
    if sum(row["vat"] for row in snapshot["vat"]) != totals["vat"]:
        raise SnapshotError("sum of VAT per rate != VAT total")
    if totals["subtotal"] + totals["vat"] != totals["total"]:
        raise SnapshotError("subtotal + VAT != total")
    bases: dict[Decimal, int] = {}
    for line in lines:
        rate = Decimal(line["vat_rate"])
        bases[rate] = bases.get(rate, 0) + line["amount"]
    declared: dict[Decimal, int] = {}
    for row in snapshot["vat"]:  # one row per rate and country since VAT says whose it is: add them up per rate
        declared[Decimal(row["rate"])] = declared.get(Decimal(row["rate"]), 0) + row["base"]
    if bases != declared:
        raise SnapshotError(f"VAT bases per rate {declared} do not match the lines {bases}")


def line_correction(line: dict[str, Any]) -> int:
    """A line's correction (finance adjusted a held session's price): 0 when it has none, as every line frozen
    before corrections were shown apart."""
    correction: int = line.get("correction") or 0
    return correction


def vat_per_category(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The snapshot's VAT rows merged per category and rate (base and VAT added up), highest rate first: what
    EN 16931 wants (one VAT breakdown per category and rate, BR-CO-18), whereas the snapshot keeps the countries
    apart (Belgian and Dutch VAT at 21 % are two rows there)."""
    merged: dict[tuple[str, Decimal], dict[str, Any]] = {}
    for row in snapshot["vat"]:
        rate = Decimal(row["rate"])
        key = (tax_category(snapshot, rate), rate)
        entry = merged.setdefault(key, {"rate": row["rate"], "base": 0, "vat": 0})
        entry["base"] += row["base"]
        entry["vat"] += row["vat"]
    return [merged[key] for key in sorted(merged, key=lambda key: (-key[1], key[0]))]


def is_cross_border_b2b(snapshot: dict[str, Any]) -> bool:
    """A business buyer (VAT number) in another EU member state than the seller: the reverse charge case."""
    seller, buyer = snapshot["seller"], snapshot["buyer"]
    return bool(
        buyer.get("vat_number")
        and buyer.get("country") in EU_COUNTRIES
        and seller.get("country") in EU_COUNTRIES
        and buyer.get("country") != seller.get("country")
    )


def tax_category(snapshot: dict[str, Any], rate: str | Decimal) -> str:
    """S for a positive rate; a zero rate is AE (reverse charge) for cross-border EU B2B, Z otherwise."""
    if Decimal(rate) > 0:
        return STANDARD
    return REVERSE_CHARGE if is_cross_border_b2b(snapshot) else ZERO_RATED


def has_reverse_charge(snapshot: dict[str, Any]) -> bool:
    return any(tax_category(snapshot, row["rate"]) == REVERSE_CHARGE for row in snapshot["vat"])


def xml_sign(snapshot: dict[str, Any]) -> int:
    """E-invoices state a credit note's amounts as positive numbers (the type code carries the sign).

    Composition may freeze a credit note with negative amounts (the accounting view); flip them then.
    """
    return -1 if snapshot["kind"] == "credit_note" and snapshot["totals"]["total"] < 0 else 1


def amount_text(minor: int, currency: str) -> str:
    """Minor units as the decimal string e-invoices want: 1244 → "12.44" (always 2 decimals for EUR)."""
    return f"{from_minor_units(minor, currency):f}"


def decimal_text(value: Decimal) -> str:
    """A Decimal without exponent or trailing zeros: Decimal("21.00") → "21", Decimal("0.3450") → "0.345"."""
    return f"{value.normalize():f}"


def price_text(value: Decimal) -> str:
    """A unit price: at least two decimals, more only when needed ("6.90", "0.345")."""
    value = value.normalize()
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int), "a price is a finite number (only NaN and Infinity have a letter exponent)"
    return f"{value.quantize(Decimal('0.01')) if exponent > -2 else value:f}"


@dataclass(frozen=True)
class PricedQuantity:
    """A line as quantity × price (BT-129, BT-146, BT-149), exact to the cent of the line amount."""

    quantity: Decimal
    unit_code: str
    price: Decimal
    base_quantity: Decimal | None
    amount: Decimal


def priced_quantity(line: dict[str, Any], currency: str, sign: int = 1) -> PricedQuantity:
    """Quantity, unit and a non-negative net price whose product is the line amount (BR-27, PEPPOL R120).

    A negative amount (credit, correction) gets a negative quantity: the price may not be negative. The price
    is the amount divided by the quantity with as few decimals as reproduce the amount exactly; when no
    precision does, the price is the whole amount per ``base_quantity`` = quantity.
    """
    amount = from_minor_units(line["amount"] * sign, currency)
    quantity = abs(Decimal(line.get("quantity") or "1")) or Decimal(1)
    if amount < 0:
        quantity = -quantity
    unit_code = UNIT_CODES.get(line.get("unit") or "item", "C62")
    for places in (2, 4, 6, 8):
        price = quantize(abs(amount) / abs(quantity), places)
        if round_to_cents(quantity * price) == amount:
            return PricedQuantity(quantity, unit_code, price.normalize(), None, amount)
    return PricedQuantity(quantity, unit_code, abs(amount), abs(quantity), amount)


def local_date(moment: str, snapshot: dict[str, Any]) -> str:
    """The calendar day (ISO) of a UTC timestamp in the document's time zone, as the PDF shows it."""
    when = dt.datetime.fromisoformat(moment)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(ZoneInfo(snapshot.get("timezone") or DEFAULT_TIMEZONE)).date().isoformat()


def enterprise_number(vat_number: str | None) -> str | None:
    """The Belgian enterprise number (KBO/BCE, scheme 0208) inside a BE VAT number: BE0403170701 → 0403170701."""
    if vat_number and vat_number.upper().startswith("BE"):
        digits = "".join(ch for ch in vat_number[2:] if ch.isdigit())
        if len(digits) == 9:
            digits = "0" + digits
        return digits if len(digits) == 10 else None
    return None


def enterprise_number_text(number: str) -> str:
    """A Belgian enterprise number as printed: 0403170701 → 0403.170.701."""
    return f"{number[:4]}.{number[4:7]}.{number[7:]}"


@dataclass(frozen=True)
class CompanyRegister:
    """The seller's company register entry: what the invoice prints (``text``), and the registration number and
    its ISO 6523 scheme for the e-invoices' legal entity (0208 Belgian enterprise number, 0106 Dutch KvK)."""

    text: str
    number: str | None
    scheme: str | None


# ISO 6523 ICD of the registers we know how to read from SELLER_COMPANY_REGISTER.
KVK_SCHEME = "0106"
BELGIAN_ENTERPRISE_SCHEME = "0208"


def company_register(party: dict[str, Any]) -> CompanyRegister | None:
    """The register entry of a party (the seller) from its snapshot: ``company_register`` as configured, with the
    number it needs. A Belgian register (RPR/RPM and its court seat, "RPR Brussel") names no number: the
    enterprise number is the one in the BE VAT number ("RPR Brussel 0403.170.701"). A Dutch one is written with
    its number ("KvK 12345678"). None when the snapshot has no entry (frozen before it existed)."""
    entry = " ".join(str(party.get("company_register") or "").split())
    if not entry:
        return None
    digits = "".join(char for char in entry if char.isdigit())
    if entry.upper().startswith("KVK") and len(digits) == 8:
        return CompanyRegister(entry, digits, KVK_SCHEME)
    company_id = enterprise_number(party.get("vat_number"))
    if company_id and not digits:
        return CompanyRegister(f"{entry} {enterprise_number_text(company_id)}", company_id, BELGIAN_ENTERPRISE_SCHEME)
    return CompanyRegister(entry, None, None)


def buyer_display_name(buyer: dict[str, Any]) -> str:
    return buyer.get("company_name") or buyer.get("name") or ""

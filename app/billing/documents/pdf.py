"""The invoice PDF: the snapshot through the Jinja templates in ``templates/pdf/invoice/v1/`` and WeasyPrint.

Throughput matters (a month's run renders every invoice), so each process keeps, built on first use:

* one ``FontConfiguration``: creating one makes Fontconfig scan the system fonts, and it remembers the
  ``@font-face`` fonts it already loaded from ``static/fonts/``;
* the invoice stylesheet parsed once (``invoice.css``);
* WeasyPrint's image cache, so the logo is fetched and parsed once rather than for every invoice;
* the Jinja environment (compiled templates) and the catalogs.

What a render still costs is mostly WeasyPrint's layout and, per font face used, subsetting the font embedded in
the PDF. The second depends on the machine: with the HarfBuzz subsetter (Debian: ``libharfbuzz-subset0``) it is a
few milliseconds, without it WeasyPrint falls back to fontTools, which parses each face in Python and costs tens
of milliseconds per face and invoice. That is why the fonts in ``static/fonts/`` are trimmed (see the README
there) and why the lines table has a fixed layout (``invoice.css``).

They are rebuilt after a fork (Celery prefork, multiprocessing) and a lock serialises renders in a process:
WeasyPrint's font configuration is not meant to be shared between threads.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from app.billing.documents.common import (
    DEFAULT_TIMEZONE,
    buyer_display_name,
    check_snapshot,
    company_register,
    has_reverse_charge,
    line_correction,
    tax_category,
)
from app.billing.documents.epc_qr import qr_svg, transfer_payload
from app.billing.documents.fetcher import StaticOnlyFetcher, static_base_url
from app.billing.documents.i18n import Formatter, Gettext, document_language, make_gettext
from app.billing.invoicing.snapshot import CORRECTION_REASONS, CREDIT_REASONS
from app.config import PROJECT_ROOT
from app.money import from_minor_units, quantize

TEMPLATE_DIR = PROJECT_ROOT / "templates" / "pdf" / "invoice" / "v1"
TEMPLATE_NAME = "invoice.html"
STYLESHEET = TEMPLATE_DIR / "invoice.css"

SECTION_ORDER = ("subscription", "session", "correction", "credit")


@dataclass
class _Renderer:
    pid: int
    fetcher: StaticOnlyFetcher
    font_config: FontConfiguration
    stylesheet: CSS
    environment: jinja2.Environment
    image_cache: dict[str, Any]


_renderer: _Renderer | None = None
_lock = threading.Lock()


def _css_string(value: object) -> Markup:
    """A value as a CSS string literal for the ``<style>`` element (raw text: no HTML escaping applies, so
    ``<`` is escaped the CSS way and a seller name cannot close the element)."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("<", "\\3c ")
    return Markup(f'"{text}"')  # noqa: S704 - escaped for a CSS string just above


def _build_renderer() -> _Renderer:
    fetcher = StaticOnlyFetcher()
    font_config = FontConfiguration()
    stylesheet = CSS(
        string=STYLESHEET.read_text(encoding="utf-8"),
        base_url=static_base_url(),
        url_fetcher=fetcher,
        font_config=font_config,
    )
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["css_string"] = _css_string
    return _Renderer(os.getpid(), fetcher, font_config, stylesheet, environment, image_cache={})


def _disown(inherited: _Renderer) -> None:
    """Let go of a renderer inherited through a fork without cleaning up after it.

    A ``FontConfiguration`` deletes, when it is garbage-collected, the temporary folder WeasyPrint copied the
    ``@font-face`` files to, and an inherited one's folder is the parent's. Once a worker had dropped it, the
    parent embedded empty fonts (invisible text) for every face it had not used before the fork.
    """
    inherited.font_config._folder = None  # WeasyPrint 70 internals: the folder FontConfiguration.__del__ removes


def _get_renderer() -> _Renderer:
    global _renderer  # one per process, rebuilt after a fork
    if _renderer is None or _renderer.pid != os.getpid():
        if _renderer is not None:
            _disown(_renderer)
        _renderer = _build_renderer()
    return _renderer


def _page_counter(_: Gettext) -> Markup:
    """The translated "Page X of Y" as a CSS ``content`` value with the page counters in place."""
    text = _("Page %(page)s of %(pages)s", page="\x00page\x00", pages="\x00pages\x00")
    parts = []
    for index, piece in enumerate(text.split("\x00")):
        if index % 2:
            parts.append(f"counter({'pages' if piece == 'pages' else 'page'})")
        elif piece:
            parts.append(_css_string(piece))
    return Markup(" ".join(parts))  # noqa: S704 - CSS strings escaped by _css_string


def _section(kind: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    sessions = [line["session"] for line in lines if line.get("session")]
    return {
        "kind": kind,
        "lines": sorted(lines, key=lambda line: line["position"]),
        "kwh": sum((Decimal(session["kwh"]) for session in sessions if session.get("kwh")), Decimal(0))
        if sessions
        else None,
        "cpo_cost": sum(line["cpo_cost"] for line in lines),
        "fees": sum(line["fees"] for line in lines),
        "correction": sum(line_correction(line) for line in lines),
        "amount": sum(line["amount"] for line in lines),
    }


@dataclass(frozen=True)
class AveragePrices:
    """A session line's average prices excl. VAT: its amount per kWh, and per minute where the CPO charged time
    (4 decimals; derived from the line's own figures, so they restate the line, never a tariff)."""

    per_kwh: Decimal | None
    per_minute: Decimal | None


def average_prices(line: dict[str, Any], currency: str) -> AveragePrices | None:
    """The averages of a session line with something charged, None for any other line."""
    session = line.get("session")
    if not session or line["amount"] <= 0:
        return None
    amount = from_minor_units(line["amount"], currency)
    kwh = Decimal(session.get("kwh") or 0)
    minutes = session.get("duration_minutes") or 0
    per_kwh = quantize(amount / kwh, 4) if kwh > 0 else None
    per_minute = quantize(amount / minutes, 4) if session.get("time_charged") and minutes > 0 else None
    if per_kwh is None and per_minute is None:
        return None
    return AveragePrices(per_kwh, per_minute)


def _card_text(session: dict[str, Any], _: Gettext) -> str:
    """The card a session was charged with, as the customer knows it: its printed number, or "App"."""
    if session.get("card"):
        return str(session["card"])
    return _("App") if session.get("card_type") == "APP_USER" else ""


_REFERENCE_SLOT = "\x00reference\x00"


def _payment_texts(snapshot: dict[str, Any], _: Gettext, fmt: Formatter) -> tuple[str, str]:
    payment = snapshot.get("payment") or {}
    method = payment.get("method")
    total = fmt.money(abs(snapshot["totals"]["total"]))
    due = fmt.date(snapshot.get("due_date"))
    seller = snapshot["seller"]
    names = {"card": _("Card"), "sepa_debit": _("SEPA direct debit"), None: _("Bank transfer")}
    name = names.get(method, method or "")
    if snapshot["kind"] == "credit_note":
        if method == "card":
            return name, _("The amount of %(amount)s will be refunded to your card.", amount=total)
        if method == "sepa_debit":
            return name, _(
                "The amount of %(amount)s will be refunded to the account of your direct debit mandate.", amount=total
            )
        return name, _("The amount of %(amount)s will be refunded to your account.", amount=total)
    if snapshot["totals"]["total"] <= 0:
        return name, _("Nothing to pay.")
    if method == "sepa_debit":
        return name, _(
            "The amount of %(amount)s will be collected by SEPA direct debit on or after %(date)s.",
            amount=total,
            date=due,
        )
    if method == "card":
        return name, _(
            "The amount of %(amount)s will be charged to your card on or after %(date)s.", amount=total, date=due
        )
    # The reference is kept on one line (a +++ structured communication would otherwise break after a "+").
    before, after = _(
        "Please transfer %(amount)s by %(date)s to IBAN %(iban)s (%(name)s), with the reference %(reference)s.",
        amount=total,
        date=due,
        iban=fmt.iban(seller.get("iban")),
        name=seller["name"],
        reference=_REFERENCE_SLOT,
    ).split(_REFERENCE_SLOT, 1)
    reference = payment.get("reference") or snapshot["number"]
    return name, escape(before) + Markup('<span class="nobreak">%s</span>') % reference + escape(after)


def invoice_context(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Everything the template prints, derived from the snapshot only."""
    check_snapshot(snapshot)
    language = document_language(snapshot)
    _ = make_gettext(language)
    fmt = Formatter(language, snapshot["currency"], snapshot.get("timezone") or DEFAULT_TIMEZONE)
    sections = []
    for kind in SECTION_ORDER:
        lines = [line for line in snapshot["lines"] if line["kind"] == kind]
        if lines:
            sections.append(_section(kind, lines))
    unknown = [line for line in snapshot["lines"] if line["kind"] not in SECTION_ORDER]
    if unknown:
        sections.append(_section("other", unknown))
    vat_rows = [
        {**row, "category": tax_category(snapshot, row["rate"])}
        for row in sorted(snapshot["vat"], key=lambda row: -Decimal(row["rate"]))
    ]
    payment_method, payment_instruction = _payment_texts(snapshot, _, fmt)
    payload = transfer_payload(snapshot)
    credit_reason = CREDIT_REASONS.get(snapshot.get("credit_reason") or "")
    return {
        "s": snapshot,
        "_": _,
        "fmt": fmt,
        "language": language,
        "is_credit_note": snapshot["kind"] == "credit_note",
        "buyer_name": buyer_display_name(snapshot["buyer"]),
        "sections": sections,
        "section_titles": {
            "subscription": _("Subscription"),
            "session": _("Charging sessions"),
            "correction": _("Corrections"),
            "credit": _("Credits"),
            "other": _("Other"),
        },
        "vat_rows": vat_rows,
        "reverse_charge": has_reverse_charge(snapshot),
        "several_rates": len({(Decimal(line["vat_rate"]), line.get("vat_country")) for line in snapshot["lines"]}) > 1,
        "several_countries": len({line.get("vat_country") for line in snapshot["lines"]} - {None, ""}) > 1,
        "page_counter": _page_counter(_),
        "payment_method": payment_method,
        "payment_instruction": payment_instruction,
        "register": company_register(snapshot["seller"]),
        "has_corrections": any(line_correction(line) for line in snapshot["lines"]),
        "correction_reasons": {code: _(text) for code, text in CORRECTION_REASONS.items()},
        "credit_reason": _(credit_reason) if credit_reason else None,
        "averages": {line["position"]: average_prices(line, snapshot["currency"]) for line in snapshot["lines"]},
        "cards": {
            line["position"]: _card_text(line["session"], _) for line in snapshot["lines"] if line.get("session")
        },
        # Markup: segno's SVG of the payload (digits, letters and the seller's name, which segno does not embed).
        "epc_qr": Markup(qr_svg(payload)) if payload else None,  # noqa: S704 - SVG made by segno from our payload
    }


def render_invoice_html(snapshot: dict[str, Any]) -> str:
    renderer = _get_renderer()
    return renderer.environment.get_template(TEMPLATE_NAME).render(invoice_context(snapshot))


def render_invoice_pdf(snapshot: dict[str, Any], *, pdf_variant: str | None = None) -> bytes:
    """The invoice (or credit note) of ``snapshot`` as PDF bytes, in the snapshot's language.

    ``pdf_variant`` is passed to WeasyPrint (``"pdf/a-3b"`` for the Factur-X base document).
    """
    with _lock:
        renderer = _get_renderer()
        html = renderer.environment.get_template(TEMPLATE_NAME).render(invoice_context(snapshot))
        document = HTML(string=html, base_url=static_base_url(), url_fetcher=renderer.fetcher)
        options = {"pdf_variant": pdf_variant} if pdf_variant else {}
        pdf: bytes = document.write_pdf(  # weasyprint is untyped
            stylesheets=[renderer.stylesheet],
            font_config=renderer.font_config,
            # Only files under static/ can be loaded (the fetcher), so an image is the same for every invoice.
            cache=renderer.image_cache,
            uncompressed_pdf=False,
            **options,
        )
        return pdf


def template_path() -> Path:
    return TEMPLATE_DIR / TEMPLATE_NAME

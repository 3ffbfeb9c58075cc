"""``pricing`` click group: finance's command-line check of a CPO's CDR figures.

A plain click group without Flask; the app registers it (``app.cli.add_command``) so it runs as
``flask pricing price-cdr ...``. Invalid input ends with a one-line message on stderr and exit code 2, so batch
scripts can tell "the CDR is wrong" (2) from "the command crashed" (1). A CDR whose charging periods do not fit
its session (hour-aligned periods starting before it, say) is priced; the JSON's ``notes`` say what was counted
from where, and each note is repeated on stderr for the person at the terminal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .engine import price_session
from .errors import CurrencyMismatchError, PricingError
from .parse import loads, parse_cdr, parse_tariff, unwrap_envelope
from .result import PriceBreakdown


def _load(path: str, what: str) -> object:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise PricingError(f"cannot read {what} file {path}: {exc.strerror}") from exc
    return unwrap_envelope(loads(text), what)


def price_cdr_files(tariff_path: str, cdr_path: str, timezone_name: str) -> PriceBreakdown:
    """Price the CDR in ``cdr_path`` with the tariff in ``tariff_path``."""
    try:
        tariff = parse_tariff(_load(tariff_path, "Tariff"))
    except PricingError as exc:
        raise PricingError(f"tariff {tariff_path}: {exc}") from exc
    try:
        cdr = parse_cdr(_load(cdr_path, "CDR"))
    except PricingError as exc:
        raise PricingError(f"CDR {cdr_path}: {exc}") from exc
    if cdr.currency != tariff.currency:
        raise CurrencyMismatchError(
            "currency", f"CDR currency {cdr.currency} differs from tariff currency {tariff.currency}"
        )
    return price_session(tariff, cdr, timezone_name)


@click.group("pricing")
def pricing() -> None:
    """Price OCPI sessions with OCPI tariffs."""


@pricing.command("price-cdr")
@click.option(
    "--tariff",
    "tariff_path",
    required=True,
    type=click.Path(dir_okay=False),
    help='OCPI 2.2.1 Tariff JSON (bare object or {"data": {...}} envelope).',
)
@click.option("--cdr", "cdr_path", required=True, type=click.Path(dir_okay=False), help="OCPI 2.2.1 CDR JSON.")
@click.option(
    "--timezone",
    "timezone_name",
    default="UTC",
    show_default=True,
    help="Time zone of the location (IANA name), for time/day restrictions.",
)
def price_cdr(tariff_path: str, cdr_path: str, timezone_name: str) -> None:
    """Price one CDR and print the totals as one JSON object (amounts with 4 decimals, notes in words)."""
    try:
        breakdown = price_cdr_files(tariff_path, cdr_path, timezone_name)
    except PricingError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps(breakdown.to_json_dict()))
    for note in breakdown.notes:
        click.echo(f"note: {note.text()}", err=True)

"""Support's pages in words, in the agent's language: codes the services keep (authorization answers and
reasons, audit actions, search matches, tariff sources, hold states) turned into sentences, and the times and
amounts of a price breakdown formatted for people.

The services store codes and English texts (the authorization log keeps the decision's own reason, e.g.
``card blocked: lost``); these functions translate them at display time, so the stored log never changes and a
French agent reads French. An unknown code is shown as stored rather than hidden.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from babel.dates import format_datetime, get_timezone, get_timezone_location
from babel.numbers import format_currency, format_decimal
from flask_babel import get_locale, gettext

from app.cards.models import BlockReason
from app.plans.services import billing_zone


def _(text: str, **variables: Any) -> str:
    """``gettext`` with its type: the message id is extracted from the calls to ``_`` below as anywhere else."""
    return str(gettext(text, **variables))


# The seller's time zone, day-month-year in every language (never the American month-first order).
MOMENT_PATTERN = "d MMM y, HH:mm"


def _locale() -> str:
    return str(get_locale() or "en")


def seller_zone_name() -> str:
    """The seller's time zone (``BILLING_TIMEZONE``) as people call it: "Belgium Time", "tijd in België"."""
    return str(get_timezone_location(get_timezone(str(billing_zone())), locale=_locale()))


def seller_time(moment: dt.datetime | None) -> str:
    """A UTC instant in the seller's time zone: "14 Oct 2026, 19:05" (pages say once which zone that is)."""
    if moment is None:
        return ""
    return format_datetime(moment, MOMENT_PATTERN, tzinfo=get_timezone(str(billing_zone())), locale=_locale())


def seller_period(start: dt.datetime, end: dt.datetime | None) -> str:
    """From start to end in the seller's time zone, the day written once when it does not change:
    "14 Oct 2026, 19:00–20:30", else "14 Oct 2026, 23:30 → 15 Oct 2026, 01:10"."""
    if end is None:
        return seller_time(start)
    zone = get_timezone(str(billing_zone()))
    if start.astimezone(zone).date() == end.astimezone(zone).date():
        return f"{seller_time(start)}–{format_datetime(end, 'HH:mm', tzinfo=zone, locale=_locale())}"
    return f"{seller_time(start)} → {seller_time(end)}"


def precise_money(amount: Decimal | None, currency: str) -> str:
    """An amount with the decimals it has (at least 2, up to the 4 of a rating): a tariff's €0.3875/kWh and
    a fee of €1.2346 are shown as computed, so the lines of a breakdown add up exactly."""
    if amount is None:
        return ""
    return str(format_currency(Decimal(amount), currency, locale=_locale(), decimal_quantization=False))


def percent(value: Decimal | None) -> str:
    """A rate as people write it: 21 for 21.000, 5.5 for 5.500."""
    if value is None:
        return ""
    return str(format_decimal(Decimal(value).normalize(), locale=_locale()))


# --- search -------------------------------------------------------------------------------------------------------


def matched_on(code: str) -> str:
    labels = {
        "email": _("Email"),
        "name": _("Name"),
        "card_uid": _("Card UID"),
        "card_number": _("Card number"),
        "contract_id": _("Contract ID"),
        "customer_number": _("Customer number"),
    }
    return labels.get(code, code)


# --- authorizations -----------------------------------------------------------------------------------------------


def authorization_answer(allowed: str) -> str:
    labels = {
        "ALLOWED": _("Allowed"),
        "BLOCKED": _("Blocked"),
        "EXPIRED": _("Expired"),
        "NO_CREDIT": _("No credit"),
        "NOT_ALLOWED": _("Not allowed here"),
        "UNKNOWN": _("Unknown card"),
    }
    return labels.get(allowed, allowed)


def block_reason(value: str | None) -> str:
    labels = {
        BlockReason.LOST.value: _("Lost"),
        BlockReason.STOLEN.value: _("Stolen"),
        BlockReason.PAYMENT.value: _("Unpaid invoice"),
        BlockReason.FRAUD.value: _("Fraud"),
        BlockReason.SUPPORT.value: _("Support"),
        BlockReason.CLOSED.value: _("Account closed"),
    }
    return labels.get(value or "", value or "")


_NOT_OPEN_LOCATION = re.compile(r"^location (?P<location>.+) is not open to our drivers on this network$")


def authorization_reason(reason: str) -> str:
    """The reason of an authorization answer (``app.roaming.send.authorization.decide``), in words."""
    fixed = {
        "card active, account in good standing": _("The card is active and the account in good standing."),
        "card replaced": _("The card was replaced by a new one."),
        "card expired": _("The card has expired."),
        "card validity ended": _("The card's validity has ended."),
        "card blocked: payment": _("The card is blocked because of an unpaid invoice."),
        "account standing: no_credit": _("Charging is paused: the account has an unpaid overdue invoice."),
        "partner suspended: our cards are not authorized on its network": _(
            "We have paused our cards on this operator's network."
        ),
        "unknown token": _("The operator asked for a card number we do not know."),
    }
    if reason in fixed:
        return fixed[reason]
    if reason.startswith("card blocked: "):
        return _("The card is blocked (%(reason)s).", reason=block_reason(reason.removeprefix("card blocked: ")))
    if reason.startswith("card not active ("):
        return _("The card has not been activated yet.")
    found = _NOT_OPEN_LOCATION.match(reason)
    if found:
        return _("Location %(location)s is not open to our drivers on this operator's network.", **found.groupdict())
    return reason


# --- activity (the audit log) -------------------------------------------------------------------------------------


def audit_action(action: str) -> str:
    labels = {
        "account.note": _("Note added"),
        "account.close": _("Account closed"),
        "account.resend_confirmation": _("Confirmation email sent again"),
        "account.export": _("Personal data exported"),
        "account.anonymise": _("Personal data erased"),
        "plan.subscribe": _("Plan chosen"),
        "plan.change": _("Plan changed"),
        "plan.change_cancelled": _("Scheduled plan change cancelled"),
        "card.ordered": _("Card ordered"),
        "card.shipped": _("Card shipped from stock"),
        "card.activated": _("Card activated"),
        "card.blocked": _("Card blocked"),
        "card.unblocked": _("Card unblocked"),
        "card.replaced": _("Card replaced"),
        "card.expired": _("Card expired"),
        "card.cancelled": _("Card order cancelled"),
        "card.app_token_issued": _("App token issued"),
    }
    return labels.get(action, action)


def actor_kind(kind: str) -> str:
    labels = {"driver": _("Driver"), "staff": _("Staff"), "system": _("System")}
    return labels.get(kind, kind)


# --- sessions and their price -------------------------------------------------------------------------------------


def session_state(state: str) -> str:
    labels = {
        "invoiced": _("Invoiced"),
        "to_invoice": _("On the next invoice"),
        "under_review": _("Under review"),
        "not_charged": _("Not charged"),
        "not_priced": _("Not priced yet"),
    }
    return labels.get(state, state)


def hold_status(status: str | None) -> str:
    labels = {
        "held": _("Held for review"),
        "released": _("Released: billed as rated"),
        "adjusted": _("Adjusted by finance"),
        "written_off": _("Written off: not charged"),
    }
    return labels.get(status or "", status or "")


def tariff_source(source: str) -> str:
    labels = {
        "frozen_tariff": _("The operator's tariff in force when the session started (frozen with the session)"),
        "cdr_tariffs": _("The tariff the operator put in the charge detail record"),
        "cdr_total_cost": _("The operator's total cost as sent in the charge detail record (we know no tariff)"),
    }
    return labels.get(source, source)


def dimension(name: str) -> str:
    labels = {
        "ENERGY": _("Energy"),
        "TIME": _("Charging time"),
        "PARKING_TIME": _("Parking time"),
        "FLAT": _("Fixed fee"),
        "RESERVATION_TIME": _("Reservation time"),
        "RESERVATION_FLAT": _("Reservation fee"),
    }
    return labels.get(name, name)


def dimension_unit(name: str) -> str:
    """What a price component of this dimension is a price per."""
    labels = {
        "ENERGY": _("per kWh"),
        "TIME": _("per hour"),
        "PARKING_TIME": _("per hour"),
        "RESERVATION_TIME": _("per hour"),
        "FLAT": _("once"),
        "RESERVATION_FLAT": _("once"),
    }
    return labels.get(name, "")


def session_status(status: str) -> str:
    """An OCPI session status."""
    labels = {
        "ACTIVE": _("Charging"),
        "PENDING": _("Starting"),
        "COMPLETED": _("Completed"),
        "INVALID": _("Invalid"),
        "RESERVATION": _("Reserved"),
    }
    return labels.get(status, status)


def auth_method(method: str | None) -> str:
    labels = {
        "AUTH_REQUEST": _("Real-time authorization request"),
        "COMMAND": _("Started remotely (app)"),
        "WHITELIST": _("Accepted from the token list (whitelist), without asking us"),
    }
    return labels.get(method or "", method or _("Not stated"))

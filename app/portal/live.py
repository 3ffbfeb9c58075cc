"""What the dashboard shows of the sessions under way: the live figures and cost so far (``rating.live_cost``),
the place as the CPO published it (``roaming.places``), and the state of the driver's last stop request.

The same panel is rendered in the dashboard and, alone, by the JSON endpoint the page polls
(``portal.charging.live``); :func:`panel_tag` is that endpoint's ETag.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from flask_babel import get_locale
from flask_babel import gettext as _

from app.db import utcnow
from app.money import to_minor_units
from app.ocpi_ids import ci_key
from app.rating.live_cost import LiveCost, live_costs_of, versions_tag
from app.roaming.models import CommandState
from app.roaming.places import Place, places_of
from app.roaming.send.remote import latest_stops, result_text, shown_state

# The panel carries a CSRF token (its stop form): rendered again at least this often, so a page left open keeps
# a token well within WTF_CSRF_TIME_LIMIT even while every poll answers 304.
TOKEN_REFRESH = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class StopRequest:
    command_id: int
    state: CommandState
    message: str | None  # the CPO's words with its result, in the driver's language


@dataclass(frozen=True)
class LiveItem:
    live: LiveCost
    place: Place
    stop: StopRequest | None
    cost_minor: int | None  # the cost so far incl. VAT, rounded once (half up) to cents
    cpo_total_minor: int | None  # the CPO's own total_cost excl. VAT, rounded the same way

    @property
    def duration(self) -> str:
        return duration_text(self.live.duration)

    @property
    def can_stop(self) -> bool:
        """No stop request, or the last one is not under way nor done. Sending STOP again cannot do anything twice
        (a stopped session is not stopped again), so after a refusal, a failure or no answer the driver may."""
        return self.stop is None or self.stop.state not in (
            CommandState.SENDING,
            CommandState.PENDING,
            CommandState.ACCEPTED,
        )


def live_panel(account_id: int, now: dt.datetime | None = None) -> list[LiveItem]:
    now = now or utcnow()
    costs = live_costs_of(account_id, now)
    if not costs:
        return []
    places = places_of(cost.location for cost in costs)
    language = str(get_locale())
    stops = {
        key: StopRequest(command.id, shown_state(command, now), result_text(command, language))
        for key, command in latest_stops(account_id).items()
    }
    return [
        LiveItem(
            live=cost,
            place=places[cost.location],
            stop=stops.get((cost.partner_id, ci_key(cost.ocpi_id))),
            cost_minor=to_minor_units(cost.cost.price.incl_vat, cost.cost.currency) if cost.cost else None,
            cpo_total_minor=to_minor_units(cost.cpo_total.excl_vat, cost.cpo_total.currency)
            if cost.cpo_total
            else None,
        )
        for cost in costs
    ]


def panel_tag(items: list[LiveItem], now: dt.datetime | None = None) -> str:
    """The panel's version: the figures, the stop requests, the language, and the token refresh period."""
    now = now or utcnow()
    digest = hashlib.sha256()
    digest.update(versions_tag(item.live for item in items).encode())
    for item in items:
        digest.update(repr((item.stop.command_id, item.stop.state.value) if item.stop else None).encode())
    digest.update(str(get_locale()).encode())
    digest.update(str(int(now.timestamp() // TOKEN_REFRESH.total_seconds())).encode())
    return digest.hexdigest()[:32]


def duration_text(duration: dt.timedelta) -> str:
    """``1 h 05 min`` / ``25 min`` in the page's language."""
    minutes = int(duration.total_seconds() // 60)
    if minutes < 60:
        return str(_("%(minutes)d min", minutes=minutes))
    return str(_("%(hours)d h %(minutes)02d min", hours=minutes // 60, minutes=minutes % 60))

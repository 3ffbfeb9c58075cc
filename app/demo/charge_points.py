"""Charge points for the demo: the shared Dutch open-data locations and tariffs, and a demo hub that relays them.

``flask demo seed --charge-points DIR`` (``make run`` passes ``../shared/data/ocpi-nl-10-cities``) imports
``DIR/tariffs.json.gz`` and ``DIR/locations.json.gz`` through roaming's own importers (validation, the spatial
index, idempotent by the OCPI keys: a re-run updates, never duplicates), so a newcomer's map is full at once.

Those locations come from a file, not from a partner: drivers see them (published data), but "works with my card"
is false for every one of them, since no connection of ours reaches their operators. The demo therefore registers
a **demo hub** ("Demo hub (NDW open data)", party NL/DMO) that reports every party of the file CONNECTED, as a real
hub's HubClientInfo would: the finder's "works with my card" filter and the landing page's count then work as in
production. The hub is registered without a credentials handshake (there is no hub to call): it has no endpoints
and no token of theirs, so nothing is ever pushed to, pulled from or commanded through it (a remote start at one
of its locations is refused: no Commands receiver). It goes through
roaming's services (``add_partner``, the ACCEPT_REGISTRATION move, ``store_client_info``: audited as
"demo-seed"). A party already held by a real connection is left to it (reported, not taken).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from app.audit.services import Actor
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Partner, PartnerStatus
from app.roaming.partners.parties import conflict_for
from app.roaming.partners.services import ClientInfo, add_partner, find_client_info, store_client_info
from app.roaming.partners.states import Move, apply
from app.roaming.receive.importers import ImportReport, import_locations, import_tariffs, read_ocpi_array

LOCATIONS_FILE = "locations.json.gz"
TARIFFS_FILE = "tariffs.json.gz"
DEMO_HUB_NAME = "Demo hub (NDW open data)"
DEMO_HUB_PARTY = ("NL", "DMO")
ACTOR_LABEL = "demo-seed"


class ChargePointFilesMissingError(FileNotFoundError):
    """The folder, or one of its two files, is not there (the demo goes on without charge points)."""


@dataclass
class ChargePointsReport:
    tariffs: ImportReport
    locations: ImportReport
    hub_created: bool = False
    parties_added: list[tuple[str, str]] = field(default_factory=list)
    parties_refused: list[tuple[str, str, str]] = field(default_factory=list)  # (country, party, why)


def charge_point_files(folder: str | Path) -> tuple[Path, Path]:
    """(tariffs, locations) in ``folder``, or :class:`ChargePointFilesMissingError` naming what is missing."""
    base = Path(folder)
    if not base.is_dir():
        raise ChargePointFilesMissingError(f"{base} is not a folder")
    files = (base / TARIFFS_FILE, base / LOCATIONS_FILE)
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise ChargePointFilesMissingError(f"missing {', '.join(missing)}")
    return files


def import_charge_points(
    folder: str | Path, *, progress: Callable[[int, int], None] | None = None
) -> ChargePointsReport:
    """Import the folder's tariffs, then its locations (each importer commits per batch), then register the demo
    hub for their parties (committed). Idempotent."""
    tariffs_file, locations_file = charge_point_files(folder)
    tariffs = import_tariffs(tariffs_file, progress=progress)
    locations = import_locations(locations_file, progress=progress)
    report = ChargePointsReport(tariffs=tariffs, locations=locations)
    parties = sorted(
        {
            (str(item["country_code"]).upper(), str(item["party_id"]).upper())
            for item in read_ocpi_array(locations_file)
            if isinstance(item, dict)
            and isinstance(item.get("country_code"), str)
            and isinstance(item.get("party_id"), str)
        }
    )
    relay_through_demo_hub(parties, report)
    db.session.commit()
    return report


def _demo_hub(actor: Actor, report: ChargePointsReport) -> Partner:
    country_code, party_id = DEMO_HUB_PARTY
    hub = db.session.scalar(select(Partner).where(Partner.country_code == country_code, Partner.party_id == party_id))
    if hub is not None:
        return hub  # re-running keeps what exists (an operator may have suspended or removed it)
    hub = add_partner(
        name=DEMO_HUB_NAME,
        country_code=country_code,
        party_id=party_id,
        role="HUB",
        token=secrets.token_urlsafe(32),  # nobody is handed it: no one can call us as this hub
        actor=actor,
    )
    apply(hub, Move.ACCEPT_REGISTRATION, actor=actor, reason="demo data: no handshake, no endpoints")
    hub.registered_at = utcnow()
    report.hub_created = True
    return hub


def relay_through_demo_hub(parties: list[tuple[str, str]], report: ChargePointsReport) -> None:
    """Make the demo hub report each party CONNECTED (missing ones only; flushes)."""
    actor = Actor.system(ACTOR_LABEL)
    hub = _demo_hub(actor, report)
    if hub.status != PartnerStatus.REGISTERED:
        return
    for country_code, party_id in parties:
        if find_client_info(hub, country_code, party_id) is not None:
            continue
        conflict = conflict_for(hub, (country_code, party_id), "demo-seed")
        if conflict is not None:
            report.parties_refused.append((country_code, party_id, conflict.holder_label))
            continue
        store_client_info(hub, ClientInfo(country_code, party_id, "CPO", "CONNECTED", utcnow()))
        report.parties_added.append((country_code, party_id))

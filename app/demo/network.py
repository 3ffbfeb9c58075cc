"""The demo CPO: a registered partner with its own tariffs and a few Belgian locations, and the OCPI objects it
sends (Session, CDR), as a real CPO's platform writes them.

The partner ("Demo Charge", party BE/DCP, a party the shared Dutch file does not hold) is registered without a
credentials handshake, like the demo hub (``charge_points.py``): there is no platform to call, so it has no
endpoints and nothing is ever pushed to or pulled from it. Its tariffs and locations go through roaming's own
receivers (``store_tariff``, ``upsert_location``: validation, the spatial index), exactly what its PUTs would do,
so the map, the finder's prices, the price promise frozen on each session and the live cost all work for them.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.audit.services import Actor
from app.cards.models import Card
from app.db import utcnow
from app.extensions import db
from app.money import round_to_cents
from app.roaming.models import Partner
from app.roaming.partners.services import add_partner
from app.roaming.partners.states import Move, apply
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.tariffs import store_tariff
from app.timestamps import ocpi_timestamp

DEMO_CPO_NAME = "Demo Charge (demo CPO)"
DEMO_CPO_PARTY = ("BE", "DCP")
ACTOR_LABEL = "demo-seed"
VAT = Decimal("21")


@dataclass(frozen=True)
class DemoTariff:
    """A tariff of the demo CPO: a price per kWh and a start fee, both excl. VAT."""

    ocpi_id: str
    per_kwh: Decimal
    flat: Decimal

    def cpo_cost(self, kwh: Decimal) -> Decimal:
        """What the CPO charges us for ``kwh`` (excl. VAT, 4 decimals): its CDR's ``total_cost``."""
        return (kwh * self.per_kwh + self.flat).quantize(Decimal("0.0001"))

    def ocpi(self, last_updated: dt.datetime) -> dict[str, Any]:
        components = [{"type": "ENERGY", "price": self.per_kwh, "vat": VAT, "step_size": 1}]
        if self.flat:
            components.append({"type": "FLAT", "price": self.flat, "vat": VAT, "step_size": 1})
        country_code, party_id = DEMO_CPO_PARTY
        return {
            "country_code": country_code,
            "party_id": party_id,
            "id": self.ocpi_id,
            "currency": "EUR",
            "type": "REGULAR",
            "elements": [{"price_components": components}],
            "last_updated": ocpi_timestamp(last_updated),
        }


AC = DemoTariff("DEMO-AC", Decimal("0.39"), Decimal("0.25"))
DC = DemoTariff("DEMO-DC", Decimal("0.69"), Decimal("0"))


@dataclass(frozen=True)
class DemoSite:
    """One location of the demo CPO with one EVSE of one connector (AC 22 kW or DC 150 kW)."""

    ocpi_id: str
    name: str
    address: str
    postal_code: str
    city: str
    latitude: str
    longitude: str
    fast: bool

    @property
    def tariff(self) -> DemoTariff:
        return DC if self.fast else AC

    @property
    def evse_uid(self) -> str:
        return f"{self.ocpi_id}-1"

    @property
    def evse_id(self) -> str:
        return f"BE*DCP*E{self.ocpi_id.removeprefix('DEMO-')}1"

    @property
    def max_kw(self) -> Decimal:
        return Decimal(150) if self.fast else Decimal(22)

    def ocpi(self, last_updated: dt.datetime) -> dict[str, Any]:
        moment = ocpi_timestamp(last_updated)
        connector = {
            "id": "1",
            "standard": "IEC_62196_T2_COMBO" if self.fast else "IEC_62196_T2",
            "format": "CABLE" if self.fast else "SOCKET",
            "power_type": "DC" if self.fast else "AC_3_PHASE",
            "max_voltage": 920 if self.fast else 230,
            "max_amperage": 200 if self.fast else 32,
            "max_electric_power": 150000 if self.fast else 22000,
            "tariff_ids": [self.tariff.ocpi_id],
            "last_updated": moment,
        }
        country_code, party_id = DEMO_CPO_PARTY
        return {
            "country_code": country_code,
            "party_id": party_id,
            "id": self.ocpi_id,
            "publish": True,
            "name": self.name,
            "address": self.address,
            "city": self.city,
            "postal_code": self.postal_code,
            "country": "BEL",
            "coordinates": {"latitude": self.latitude, "longitude": self.longitude},
            "time_zone": "Europe/Brussels",
            "operator": {"name": "Demo Charge"},
            "evses": [
                {
                    "uid": self.evse_uid,
                    "evse_id": self.evse_id,
                    "status": "AVAILABLE",
                    "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
                    "connectors": [connector],
                    "last_updated": moment,
                }
            ],
            "last_updated": moment,
        }

    def place(self) -> dict[str, Any]:
        """The CDR's ``cdr_location`` for a session here."""
        return {
            "id": self.ocpi_id,
            "name": self.name,
            "address": self.address,
            "city": self.city,
            "postal_code": self.postal_code,
            "country": "BEL",
            "coordinates": {"latitude": self.latitude, "longitude": self.longitude},
            "evse_uid": self.evse_uid,
            "evse_id": self.evse_id,
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2_COMBO" if self.fast else "IEC_62196_T2",
            "connector_format": "CABLE" if self.fast else "SOCKET",
            "connector_power_type": "DC" if self.fast else "AC_3_PHASE",
        }


SITES = (
    DemoSite("DEMO-ANT", "Groenplaats", "Groenplaats 1", "2000", "Antwerpen", "51.218650", "4.400960", False),
    DemoSite("DEMO-GNT", "Korenmarkt", "Korenmarkt 10", "9000", "Gent", "51.054340", "3.721240", False),
    DemoSite("DEMO-BRU", "Kunstberg", "Kunstberg 2", "1000", "Brussel", "50.843590", "4.356240", True),
    DemoSite("DEMO-LEU", "Ladeuzeplein", "Ladeuzeplein 5", "3000", "Leuven", "50.878450", "4.703820", False),
    DemoSite("DEMO-E19", "Mechelen-Noord (E19)", "Brusselsesteenweg 300", "2800", "Mechelen", "51.005120",
             "4.454600", True),
)  # fmt: skip


def find_demo_cpo() -> Partner | None:
    country_code, party_id = DEMO_CPO_PARTY
    return db.session.scalar(select(Partner).where(Partner.country_code == country_code, Partner.party_id == party_id))


def demo_cpo(published: dt.datetime) -> tuple[Partner, bool]:
    """The demo CPO, registered with its tariffs and locations (published at ``published``, before every demo
    session, so the price promise of each one finds its tariff). Returns ``(partner, created)``; an existing one
    is left as it is (an operator may have suspended or removed it). Flushes."""
    partner = find_demo_cpo()
    if partner is not None:
        return partner, False
    actor = Actor.system(ACTOR_LABEL)
    country_code, party_id = DEMO_CPO_PARTY
    partner = add_partner(
        name=DEMO_CPO_NAME,
        country_code=country_code,
        party_id=party_id,
        role="CPO",
        token=secrets.token_urlsafe(32),  # nobody is handed it: no one can call us as this CPO
        actor=actor,
    )
    apply(partner, Move.ACCEPT_REGISTRATION, actor=actor, reason="demo data: no handshake, no endpoints")
    partner.registered_at = utcnow()
    for tariff in (AC, DC):
        store_tariff(tariff.ocpi(published), partner=partner, country_code=country_code, party_id=party_id)
    for site in SITES:
        upsert_location(site.ocpi(published), partner=partner, country_code=country_code, party_id=party_id)
    return partner, True


# --- what the CPO sends about a session ----------------------------------------------------------------------


def _token(card: Card) -> dict[str, Any]:
    config = current_app.config
    return {
        "country_code": config["COMPANY_COUNTRY_CODE"],
        "party_id": config["COMPANY_PARTY_ID"],
        "uid": card.uid,
        "type": "RFID",
        "contract_id": card.contract_id,
    }


@dataclass(frozen=True)
class DemoSession:
    """One charging session of a card at a demo site; ``end`` None while it is still charging."""

    ocpi_id: str
    card: Card
    site: DemoSite
    start: dt.datetime
    kwh: Decimal
    end: dt.datetime | None = None

    def _period(self) -> dict[str, Any]:
        dimensions: list[dict[str, Any]] = [{"type": "ENERGY", "volume": self.kwh}]
        if self.end is not None:
            dimensions.append({"type": "TIME", "volume": self.hours})
        return {"start_date_time": ocpi_timestamp(self.start), "tariff_id": self.site.tariff.ocpi_id,
                "dimensions": dimensions}  # fmt: skip

    @property
    def hours(self) -> Decimal:
        assert self.end is not None
        return (Decimal((self.end - self.start).total_seconds()) / 3600).quantize(Decimal("0.0001"))

    def session(self, as_of: dt.datetime) -> dict[str, Any]:
        """The Session object as the CPO PUTs it: ACTIVE with the energy so far, or COMPLETED."""
        country_code, party_id = DEMO_CPO_PARTY
        data: dict[str, Any] = {
            "country_code": country_code,
            "party_id": party_id,
            "id": self.ocpi_id,
            "start_date_time": ocpi_timestamp(self.start),
            "kwh": self.kwh,
            "cdr_token": _token(self.card),
            "auth_method": "AUTH_REQUEST",
            "location_id": self.site.ocpi_id,
            "evse_uid": self.site.evse_uid,
            "connector_id": "1",
            "currency": "EUR",
            "charging_periods": [self._period()],
            "status": "ACTIVE" if self.end is None else "COMPLETED",
            "last_updated": ocpi_timestamp(as_of),
        }
        if self.end is not None:
            data["end_date_time"] = ocpi_timestamp(self.end)
        return data

    def cdr(self) -> dict[str, Any]:
        """The CDR the CPO POSTs once the session has ended, with its own total (excl. and incl. VAT)."""
        assert self.end is not None
        country_code, party_id = DEMO_CPO_PARTY
        excl = round_to_cents(self.site.tariff.cpo_cost(self.kwh))
        return {
            "country_code": country_code,
            "party_id": party_id,
            "id": self.ocpi_id,
            "start_date_time": ocpi_timestamp(self.start),
            "end_date_time": ocpi_timestamp(self.end),
            "session_id": self.ocpi_id,
            "cdr_token": _token(self.card),
            "auth_method": "AUTH_REQUEST",
            "cdr_location": self.site.place(),
            "currency": "EUR",
            "charging_periods": [self._period()],
            "total_cost": {"excl_vat": excl, "incl_vat": round_to_cents(excl * (100 + VAT) / 100)},
            "total_energy": self.kwh,
            "total_time": self.hours,
            "last_updated": ocpi_timestamp(self.end),
        }

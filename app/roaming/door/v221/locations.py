"""OCPI 2.2.1 Locations, Receiver interface (e-MSP side): GET / PUT / PATCH at Location, EVSE and Connector
level, ``/ocpi/2.2.1/locations/{country_code}/{party_id}/{location_id}[/{evse_uid}[/{connector_id}]]``.

One transaction per request: the services only flush; we commit when the whole request succeeded and roll
back otherwise, so a refused object leaves nothing behind but its quarantined copy (``keeps_refused``, used by
every module's door that receives objects). Bad input → HTTP 400 / 2001 naming the field; unknown object →
HTTP 404 / 2003 (Unknown Location).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol, TypedDict, TypeVar, cast

from flask import Response, g, request

from app.db_bulk import refresh_grown_statistics
from app.extensions import db
from app.roaming.door.auth import current_partner, require_party
from app.roaming.door.v221.blueprint import bp
from app.roaming.models import Partner
from app.roaming.ocpi.body import load_json_object
from app.roaming.ocpi.errors import UNKNOWN_LOCATION, OcpiError
from app.roaming.ocpi.reader import InvalidObjectError
from app.roaming.ocpi.responses import ocpi_response
from app.roaming.receive import locations as service
from app.roaming.receive import quarantine
from app.roaming.receive.location_validation import UnknownObjectError
from app.roaming.receive.location_writes import LOCATION_TABLES

log = logging.getLogger(__name__)

T = TypeVar("T")
View = TypeVar("View", bound=Callable[..., Response])

BASE = "/locations/<country_code>/<party_id>/<location_id>"


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or 400/2001 (malformed JSON is bad input, not a server error): the
    reader's one door for bodies (exact Decimals, no NaN, bounded depth, no control characters)."""
    return load_json_object()


def _stored(country_code: str, party_id: str, location_id: str, evse_uid: str | None, connector_id: str | None) -> bool:
    """Whether the object a PUT addresses exists already: a new one is answered 201 Created (status_codes)."""
    location = service.get_location(country_code, party_id, location_id)
    if location is None or evse_uid is None:
        return location is not None
    evse = service.get_evse(location, evse_uid)
    if evse is None or connector_id is None:
        return evse is not None
    return service.get_connector(evse, connector_id) is not None


def in_transaction(work: Callable[[], T], unknown_status: int) -> T:
    """Run ``work`` as the request's unit of work: commit on success, roll back and answer OCPI errors else."""
    try:
        result = work()
        db.session.commit()
        return result
    except InvalidObjectError:
        db.session.rollback()
        raise  # answered 400/2001 naming the field, and kept by keeps_refused
    except UnknownObjectError as exc:
        db.session.rollback()
        raise OcpiError(unknown_status, str(exc), http_status=404) from exc
    except Exception:
        db.session.rollback()
        raise


def keeps_refused(module: str) -> Callable[[View], View]:
    """The view's refused object (400/2001 naming the field) is kept in the quarantine with the reason
    (:mod:`app.roaming.receive.quarantine`), so nothing a partner sends is lost; the answer stays the 2001."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def keeping(**url: str) -> Response:
            try:
                return view(**url)
            except InvalidObjectError as exc:
                _quarantine(module, exc, url)
                raise

        return cast(View, keeping)

    return decorate


def _quarantine(module: str, error: InvalidObjectError, url: dict[str, str]) -> None:
    """Roll the request's work back and commit only the quarantined object (its own unit of work). A failure to
    keep it is logged; the partner still gets its 2001."""
    partner = g.get("ocpi_partner")
    if partner is None:  # refused before we knew who called: nothing is kept for an unknown caller
        return
    partner_id = partner.id  # read before the rollback expires it
    db.session.rollback()
    keys = quarantine.ObjectKeys(
        country_code=url["country_code"].upper() if "country_code" in url else None,
        party_id=url["party_id"].upper() if "party_id" in url else None,
        ocpi_id=url.get("location_id") or url.get("session_id") or url.get("tariff_id"),
        evse_uid=url.get("evse_uid"),
        connector_id=url.get("connector_id"),
    )
    try:
        quarantine.keep_pushed(partner_id, module, request.method, request.get_data(cache=True), error.message, keys)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("could not quarantine a refused %s object of partner %s", module, partner_id)


def _unknown(message: str) -> OcpiError:
    return OcpiError(UNKNOWN_LOCATION, message, http_status=404)


@bp.get(BASE)
@bp.get(BASE + "/<evse_uid>")
@bp.get(BASE + "/<evse_uid>/<connector_id>")
def get_location(
    country_code: str, party_id: str, location_id: str, evse_uid: str | None = None, connector_id: str | None = None
) -> Response:
    require_party(current_partner(), country_code, party_id)
    location = service.get_location(country_code, party_id, location_id)
    if location is None:
        raise _unknown(f"Unknown Location {country_code}/{party_id}/{location_id}")
    if evse_uid is None:
        return ocpi_response(service.location_object(location))
    evse = service.get_evse(location, evse_uid)
    if evse is None:
        raise _unknown(f"Unknown EVSE {evse_uid} of Location {location_id}")
    if connector_id is None:
        return ocpi_response(service.evse_object(evse))
    connector = service.get_connector(evse, connector_id)
    if connector is None:
        raise _unknown(f"Unknown Connector {connector_id} of EVSE {evse_uid}")
    return ocpi_response(service.connector_object(connector))


class _ObjectKeys(TypedDict):
    """The keyword arguments every writer takes: who sends, and which Location."""

    partner: Partner | None
    country_code: str
    party_id: str
    location_id: str


class _LocationWriter(Protocol):
    def __call__(
        self, body: dict[str, Any], /, *, partner: Partner | None, country_code: str, party_id: str, location_id: str
    ) -> object: ...


class _EvseWriter(Protocol):
    def __call__(
        self,
        body: dict[str, Any],
        /,
        *,
        partner: Partner | None,
        country_code: str,
        party_id: str,
        location_id: str,
        evse_uid: str,
    ) -> object: ...


class _ConnectorWriter(Protocol):
    def __call__(
        self,
        body: dict[str, Any],
        /,
        *,
        partner: Partner | None,
        country_code: str,
        party_id: str,
        location_id: str,
        evse_uid: str,
        connector_id: str,
    ) -> object: ...


# PUT and PATCH at the three levels differ only in the service function called.
WRITERS: dict[str, tuple[_LocationWriter, _EvseWriter, _ConnectorWriter]] = {
    "PUT": (service.upsert_location, service.upsert_evse, service.upsert_connector),
    "PATCH": (service.patch_location, service.patch_evse, service.patch_connector),
}


@bp.route(BASE, methods=["PUT", "PATCH"])
@bp.route(BASE + "/<evse_uid>", methods=["PUT", "PATCH"])
@bp.route(BASE + "/<evse_uid>/<connector_id>", methods=["PUT", "PATCH"])
@keeps_refused("locations")
def write_location(
    country_code: str, party_id: str, location_id: str, evse_uid: str | None = None, connector_id: str | None = None
) -> Response:
    partner = current_partner()
    require_party(partner, country_code, party_id)
    body = json_body()
    keys: _ObjectKeys = {
        "partner": partner,
        "country_code": country_code,
        "party_id": party_id,
        "location_id": location_id,
    }
    location_writer, evse_writer, connector_writer = WRITERS[request.method]

    def work() -> object:
        if evse_uid is None:
            return location_writer(body, **keys)
        if connector_id is None:
            return evse_writer(body, evse_uid=evse_uid, **keys)
        return connector_writer(body, evse_uid=evse_uid, connector_id=connector_id, **keys)

    created = request.method == "PUT" and not _stored(country_code, party_id, location_id, evse_uid, connector_id)
    in_transaction(work, UNKNOWN_LOCATION)
    if created:  # a CPO pushing its whole network, object by object, grows what the finder reads many times over
        refresh_grown_statistics(LOCATION_TABLES)
        db.session.commit()
    return ocpi_response(http_status=201 if created else 200)

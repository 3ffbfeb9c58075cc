"""OCPI 2.2.1 Tariffs, Receiver interface (e-MSP side): GET / PUT / DELETE
``/ocpi/2.2.1/tariffs/{country_code}/{party_id}/{tariff_id}``.

The spec has no "unknown tariff" status code; an unknown (or deleted) tariff is answered HTTP 404 with the
generic client error 2000 and a message saying so. DELETE keeps every version (marked deleted) for the
sessions and CDRs that refer to them.
"""

from __future__ import annotations

from flask import Response

from app.roaming.door.auth import current_partner, require_party
from app.roaming.door.v221.blueprint import bp
from app.roaming.door.v221.locations import in_transaction, json_body, keeps_refused
from app.roaming.ocpi.errors import CLIENT_ERROR, OcpiError
from app.roaming.ocpi.responses import ocpi_response
from app.roaming.receive import tariffs as service

PATH = "/tariffs/<country_code>/<party_id>/<tariff_id>"


@bp.get(PATH)
def get_tariff(country_code: str, party_id: str, tariff_id: str) -> Response:
    require_party(current_partner(), country_code, party_id)
    version = service.current_tariff(country_code, party_id, tariff_id)
    if version is None:
        raise OcpiError(CLIENT_ERROR, f"Unknown Tariff {country_code}/{party_id}/{tariff_id}", http_status=404)
    return ocpi_response(service.tariff_object(version))


@bp.put(PATH)
@keeps_refused("tariffs")
def put_tariff(country_code: str, party_id: str, tariff_id: str) -> Response:
    partner = current_partner()
    require_party(partner, country_code, party_id)
    body = json_body()
    # A tariff we do not hold (or hold only as deleted) is created by this PUT: 201; a new version of a current
    # tariff updates it: 200 (status_codes).
    created = service.current_tariff(country_code, party_id, tariff_id) is None
    in_transaction(
        lambda: service.store_tariff(
            body, partner=partner, country_code=country_code, party_id=party_id, tariff_id=tariff_id
        ),
        CLIENT_ERROR,
    )
    return ocpi_response(http_status=201 if created else 200)


@bp.delete(PATH)
def delete_tariff(country_code: str, party_id: str, tariff_id: str) -> Response:
    require_party(current_partner(), country_code, party_id)
    in_transaction(lambda: service.delete_tariff(country_code, party_id, tariff_id), CLIENT_ERROR)
    return ocpi_response()

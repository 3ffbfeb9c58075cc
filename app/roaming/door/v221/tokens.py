"""OCPI 2.2.1 Tokens, Sender interface: the token list (``GET /ocpi/2.2.1/tokens``) and real-time
authorization (``POST /ocpi/2.2.1/tokens/{token_uid}/authorize[?type=...]``)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, request

from app.extensions import db
from app.ocpi_ids import ci_key
from app.ocpi_values import utc_datetime
from app.public_urls import ocpi_url_of_current_path
from app.roaming.door.auth import current_partner
from app.roaming.door.v221.blueprint import bp
from app.roaming.ocpi.body import load_json_body
from app.roaming.ocpi.errors import INVALID_OR_MISSING_PARAMETERS, UNKNOWN_TOKEN, OcpiError
from app.roaming.ocpi.reader import Shape
from app.roaming.ocpi.responses import QUERY_INT_MAX, PageRequest, ocpi_response
from app.roaming.send import authorization, whitelist

TOKEN_TYPES = frozenset({"AD_HOC_USER", "APP_USER", "OTHER", "RFID"})
# LocationReferences (mod_tokens): the spec's lengths, checked with the rest of the body before it is logged.
LOCATION_REFERENCES_SHAPE: Shape = {"location_id": 36, "evse_uids": 36}


def _cursor() -> tuple[tuple[dt.datetime, int] | None, int | None]:
    """Our own additions to the ``Link`` we hand out: where the previous page ended (keyset) and the total
    counted on the first page. Clients just follow ``Link``; a client building its own URLs with ``offset``
    still gets correct pages, only slower ones."""
    raw = request.args.get("after")
    if not raw:
        return None, None
    moment_text, _, card_id = raw.rpartition("~")
    try:
        after = (utc_datetime(moment_text), _row_number(card_id))
        total = _row_number(request.args["total"]) if request.args.get("total") else None
    except ValueError as exc:  # also a moment out of range in UTC (utc_datetime)
        raise OcpiError(INVALID_OR_MISSING_PARAMETERS, f"after is not a valid cursor: {raw[:80]!r}") from exc
    return after, total


def _row_number(text: str) -> int:
    """A row id or count of our cursor: ASCII digits within what the database compares (no driver overflow)."""
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= QUERY_INT_MAX):
        raise ValueError(f"not a row number: {text[:20]!r}")
    return int(text)


@bp.get("/tokens")
@bp.get("/tokens/")
def list_tokens() -> Response:
    # As the partner reads it: every token invalid while we suspend it (whitelist.TokenView).
    view = whitelist.TokenView.for_partner(current_partner())
    page = PageRequest()
    after, total = _cursor()
    if total is None:
        total = whitelist.count_tokens(page.date_from, page.date_to, view)
    rows = whitelist.token_page(
        date_from=page.date_from, date_to=page.date_to, limit=page.limit, offset=page.offset, after=after, view=view
    )
    response = ocpi_response([view.token_object(card, language=language) for card, language in rows])
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Limit"] = str(page.limit)
    next_offset = page.offset + len(rows)
    if rows and next_offset < total:
        last = rows[-1][0]
        params = {key: value for key, value in request.args.items() if key not in ("offset", "limit", "after", "total")}
        params.update(
            {
                "offset": str(next_offset),
                "limit": str(page.limit),
                "after": f"{last.last_updated.astimezone(dt.UTC).isoformat()}~{last.id}",
                "total": str(total),
            }
        )
        response.headers["Link"] = f'<{ocpi_url_of_current_path()}?{urlencode(params)}>; rel="next"'
    return response


def _location_references() -> dict[str, Any] | None:
    """The optional LocationReferences body. No body, ``null`` and ``{}`` all mean "no location references"
    (CPOs without a location to name send ``{}``): the token is authorized as such. An object that names
    something must name the location."""
    if not request.get_data(cache=True).strip():
        return None
    body = load_json_body(LOCATION_REFERENCES_SHAPE)
    if body is None or body == {}:
        return None
    if not isinstance(body, dict):
        raise OcpiError(INVALID_OR_MISSING_PARAMETERS, "LocationReferences must be a JSON object")
    location_id = body.get("location_id")
    if not isinstance(location_id, str) or not location_id.strip():
        raise OcpiError(INVALID_OR_MISSING_PARAMETERS, "missing required field location_id")
    evse_uids = body.get("evse_uids") or []
    if not isinstance(evse_uids, list) or not all(isinstance(uid, str) for uid in evse_uids):
        raise OcpiError(INVALID_OR_MISSING_PARAMETERS, "field evse_uids must be a list of strings")
    references: dict[str, Any] = {"location_id": location_id}
    if evse_uids:
        references["evse_uids"] = evse_uids
    return references


@bp.post("/tokens/<token_uid>/authorize")
def authorize_token(token_uid: str) -> Response:
    if current_app.config.get("AUTHORIZATION_LOG_BUFFERED"):
        # Reads only (the log row is written by the background writer): no transaction, so no BEGIN and
        # COMMIT round trips around the one query. Must come before the first query of the request.
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    partner = current_partner()
    # An enum, upper-case in the spec; a CPO's ``rfid`` means the same (no other value folds to one of them).
    token_type = ci_key(request.args.get("type") or "RFID")
    if token_type not in TOKEN_TYPES:
        raise OcpiError(INVALID_OR_MISSING_PARAMETERS, f"type must be one of {', '.join(sorted(TOKEN_TYPES))}")
    info = authorization.authorize(partner, token_uid, token_type, _location_references())
    db.session.commit()  # the log row is kept for unknown tokens too (when written inline)
    if info is None:
        return ocpi_response(http_status=404, status_code=UNKNOWN_TOKEN, status_message="Unknown Token")
    return ocpi_response(info)

"""Remote start and stop from the app: ``POST /api/v1/sessions/start``, ``POST /api/v1/sessions/{id}/stop`` and
``GET /api/v1/commands/{id}``, through ``roaming.send.remote`` (the checks before anything is sent, the OCPI
command to the operator of the charge point).

A start or stop answers ``202 Accepted`` with the command: the operator's charge point answers later, and the app
polls the command until its ``state`` is final. A refusal is a problem document with a stable ``code``: 422 when
the request names something that is not there (``location_not_found``, ``evse_not_found``,
``connector_not_found``, ``not_your_card``, ``app_token_missing``), 409 when the charge point, the card or the
account does not allow it now (``card_blocked``, ``no_payment_method``, ``overdue_balance``,
``evse_not_remote_capable``, ``evse_unavailable``, ...). Another driver's session or command is a 404.

The command is committed before it is sent (the operator may post its result first), then its answer is
committed: :func:`app.roaming.send.remote.start_session` calls this request's commit in between.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.api.auth import current_account, current_device
from app.api.blueprints import ID, ApiBlueprint
from app.api.problems import ApiProblem, caller_language
from app.api.schemas import text
from app.cards.models import Card
from app.cards.services import card_of_account
from app.extensions import db
from app.roaming.models import Command, CommandState
from app.roaming.send import remote
from app.roaming.send.commands import resend_is_safe

blp = ApiBlueprint(
    "api_commands",
    __name__,
    tag="Remote start and stop",
    url_prefix="/api/v1",
    description="Start and stop charging from the app, and the state of those requests",
)

# A refusal that names a field of the request: 422 on that field. Every other refusal is a 409.
FIELD_OF_REFUSAL = {
    remote.LOCATION_NOT_FOUND: "location",
    remote.EVSE_NOT_FOUND: "evse_uid",
    remote.CONNECTOR_NOT_FOUND: "connector_id",
    remote.NOT_YOUR_CARD: "card_id",
}


class LocationIn(Schema):
    country_code = text(2, required=True, min_length=2, metadata={"example": "NL"})
    party_id = text(3, required=True, min_length=3, metadata={"example": "TCP"})
    id = text(36, required=True, min_length=1, metadata={"description": "The operator's location id."})


class StartIn(Schema):
    """The charge point, and what to charge with: one of your cards (``card_id``) or this phone's app token."""

    location = fields.Nested(LocationIn, required=True)
    evse_uid = text(36, required=True, min_length=1)
    connector_id = text(36, min_length=1, metadata={"description": "Optional: the connector to use."})
    card_id = fields.Integer(validate=validate.Range(min=1, max=2147483647))
    app_token = fields.Boolean(metadata={"description": "true: charge with this phone's app token."})

    @validates_schema
    def _one_token(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if ("card_id" in data) == bool(data.get("app_token")):
            raise ValidationError("Give card_id or app_token: true (one of them).", "card_id")


class CommandOut(Schema):
    id = fields.Integer(required=True)
    type = fields.String(required=True, validate=validate.OneOf(["START_SESSION", "STOP_SESSION"]))
    state = fields.String(
        required=True,
        validate=validate.OneOf([state.value for state in CommandState]),
        metadata={
            "description": "sending, pending: wait. accepted: done. rejected, failed: nothing was done. timeout, "
            "unknown: no answer, check the charge point before trying again. not_sent: nothing was done."
        },
    )
    result = fields.String(required=True, allow_none=True, metadata={"description": "The operator's CommandResult."})
    message = fields.String(required=True, allow_none=True, metadata={"description": "The operator's own words."})
    resend_is_safe = fields.Boolean(
        required=True, metadata={"description": "Whether sending it again cannot do it twice (start two sessions)."}
    )
    created_at = fields.DateTime(required=True)
    answer_due_at = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "When the operator's answer is due at the latest."}
    )
    evse_uid = fields.String(required=True, allow_none=True)
    session_id = fields.String(required=True, allow_none=True, metadata={"description": "Stop: the session's OCPI id."})


def present(command: Command) -> dict[str, Any]:
    state = remote.shown_state(command)
    return {
        "id": command.id,
        "type": command.command,
        "state": state.value,
        "result": command.result if state not in (CommandState.SENDING, CommandState.PENDING) else None,
        "message": remote.result_text(command, caller_language()),
        "resend_is_safe": resend_is_safe(command),
        "created_at": command.created_at,
        "answer_due_at": command.timeout_at,
        "evse_uid": command.request.get("evse_uid"),
        "session_id": command.request.get("session_id"),
    }


def _refusal(refused: remote.RefusedError) -> ApiProblem:
    field = FIELD_OF_REFUSAL.get(refused.code)
    if field is not None:
        return ApiProblem(422, refused.code, refused.message, detail=refused.detail, errors={field: [refused.message]})
    return ApiProblem(409, refused.code, refused.message, detail=refused.detail)


def _token(body: dict[str, Any]) -> Card:
    account = current_account()
    if body.get("app_token"):
        card_id = current_device().app_token_card_id
        card = card_of_account(account.id, card_id) if card_id is not None else None
        if card is None:
            message = _l("This phone has no app token yet. Ask for one first.")
            raise ApiProblem(422, "app_token_missing", message, errors={"app_token": [message]})
        return card
    card = card_of_account(account.id, body["card_id"])
    if card is None:
        message = remote.REFUSAL_MESSAGES[remote.NOT_YOUR_CARD]
        raise ApiProblem(422, remote.NOT_YOUR_CARD, message, errors={"card_id": [message]})
    return card


@blp.route("/sessions/start", methods=["POST"])
@blp.arguments(StartIn)
@blp.response(202, CommandOut)
def start(body: dict[str, Any]) -> dict[str, Any]:
    """Start charging at a charge point: the operator is asked at once; poll the command for the charge point's
    answer. A start already pending for this charge point is answered again, not sent twice."""
    account = current_account()
    card = _token(body)
    where = body["location"]
    location = remote.find_location(where["country_code"], where["party_id"], where["id"])
    try:
        command = remote.start_session(
            account,
            location,
            body["evse_uid"],
            card,
            commit=db.session.commit,
            connector_id=body.get("connector_id"),
        )
    except remote.RefusedError as refused:
        db.session.rollback()
        raise _refusal(refused) from None
    db.session.commit()
    return present(command)


@blp.route(f"/sessions/<{ID}:session_id>/stop", methods=["POST"])
@blp.response(202, CommandOut)
def stop(session_id: int) -> dict[str, Any]:
    """Stop a session under way (its `id` from `GET /api/v1/sessions/active`); poll the command for the answer."""
    account = current_account()
    session = remote.session_of(account.id, session_id)
    if session is None:
        raise ApiProblem(404, remote.SESSION_NOT_FOUND, remote.REFUSAL_MESSAGES[remote.SESSION_NOT_FOUND])
    try:
        command = remote.stop_session(account, session, commit=db.session.commit)
    except remote.RefusedError as refused:
        db.session.rollback()
        raise _refusal(refused) from None
    db.session.commit()
    return present(command)


@blp.route(f"/commands/<{ID}:command_id>", methods=["GET"])
@blp.response(200, CommandOut)
def command(command_id: int) -> dict[str, Any]:
    """A start or stop request and its state, until the charge point's answer."""
    found = remote.command_status(current_account(), command_id)
    if found is None:
        raise ApiProblem(404, "command_not_found", _l("This request does not exist or is not yours."))
    return present(found)

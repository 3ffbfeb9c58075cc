"""A card as an OCPI 2.2.1 Token object (mod_tokens §Token Object), strict field names on output."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.cards.models import Card
from app.timestamps import ocpi_timestamp


def group_id_for(account_id: int) -> str:
    """All tokens of one account share a group id (≤ 20 characters for OCPP 1.6 charge points)."""
    return f"{current_app.config['COMPANY_PARTY_ID']}-A{account_id:010d}"


def token_object(card: Card, language: str | None = None) -> dict[str, Any]:
    config = current_app.config
    token: dict[str, Any] = {
        "country_code": config["COMPANY_COUNTRY_CODE"],
        "party_id": config["COMPANY_PARTY_ID"],
        "uid": card.uid,
        "type": card.token_type.value,
        "contract_id": card.contract_id,
        "issuer": card.issuer,
        "group_id": group_id_for(card.account_id),
        "valid": card.valid,
        "whitelist": card.whitelist.value,
        "last_updated": ocpi_timestamp(card.last_updated),
    }
    if card.visual_number:
        token["visual_number"] = card.visual_number
    if card.language or language:
        token["language"] = card.language or language
    return token

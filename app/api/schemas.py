"""Marshmallow schemas of the API (separate in/out)."""

from __future__ import annotations

from marshmallow import Schema, fields


class StatusOut(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    version = fields.String(required=True, metadata={"example": "v1"})
    time = fields.DateTime(required=True)

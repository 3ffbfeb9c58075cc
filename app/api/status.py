"""``GET /api/v1/status``: liveness of the API and its database (used by the app and load balancers)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from app.api.schemas import StatusOut
from app.db import utcnow
from app.extensions import db

blp = Blueprint("status", __name__, url_prefix="/api/v1/status", description="Service status")


@blp.route("")
class Status(MethodView):
    @blp.response(200, StatusOut)  # type: ignore[untyped-decorator]  # flask_smorest is untyped
    def get(self) -> dict[str, object]:
        db.session.execute(text("SELECT 1"))
        return {"status": "ok", "version": "v1", "time": utcnow()}

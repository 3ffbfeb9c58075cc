"""``GET /api/v1/status``: liveness of the API and its database (used by the app and load balancers)."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import text

from app.api.blueprints import ApiBlueprint
from app.api.schemas import StatusOut
from app.db import utcnow
from app.extensions import db

blp = ApiBlueprint(
    "api_status", __name__, tag="Status", url_prefix="/api/v1/status", public=True, description="Service status"
)


@blp.route("")
class Status(MethodView):
    @blp.response(200, StatusOut)
    @blp.doc(security=[])
    def get(self) -> dict[str, object]:
        db.session.execute(text("SELECT 1"))
        return {"status": "ok", "version": "v1", "time": utcnow()}

"""The public pages every contract points to: terms and conditions, the privacy notice and how to reach us.

Their text is in the templates (translated like every page); who we are comes from the seller's identity in the
configuration (``SELLER``, the same the invoices print), so a deployment never shows the demo company. Public:
a visitor reads them before signing up.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template

bp = Blueprint("legal", __name__)


def _seller() -> dict[str, Any]:
    seller = dict(current_app.config["SELLER"])
    seller.setdefault("name", current_app.config.get("COMPANY_NAME", ""))
    return seller


@bp.get("/terms")
def terms() -> str:
    return render_template(
        "portal/legal/terms.html",
        seller=_seller(),
        payment_days=current_app.config.get("INVOICE_PAYMENT_TERMS_DAYS", 14),
    )


@bp.get("/privacy")
def privacy() -> str:
    config = current_app.config
    return render_template(
        "portal/legal/privacy.html",
        seller=_seller(),
        retention_be=config["RETENTION_YEARS_BY_COUNTRY"].get("BE", config["RETENTION_YEARS_DEFAULT"]),
        retention_nl=config["RETENTION_YEARS_BY_COUNTRY"].get("NL", config["RETENTION_YEARS_DEFAULT"]),
    )


@bp.get("/contact")
def contact() -> str:
    return render_template("portal/legal/contact.html", seller=_seller())

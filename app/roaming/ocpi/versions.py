"""``/ocpi/versions``: the versions we speak (version_information_endpoint). Version details live in
``v221/versions.py``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ocpi", __name__, url_prefix="/ocpi")

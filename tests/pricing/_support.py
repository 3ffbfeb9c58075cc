"""Test support: import ``app.pricing`` without Flask, and build CDRs/tariffs tersely.

``app.pricing`` is pure, but importing it normally runs ``app/__init__.py`` (the Flask app factory).
When Flask is not installed (the pricing venv) the ``app`` package is replaced by a bare namespace so
the pricing tests run anyway; with Flask present nothing special happens.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.shared_data import EXAMPLES as SHARED_EXAMPLES
from tests.shared_data import NL_DATA

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = SHARED_EXAMPLES
REAL_TARIFFS = NL_DATA / "tariffs.json.gz"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if importlib.util.find_spec("flask") is None and "app" not in sys.modules:
    _stub = types.ModuleType("app")
    _stub.__path__ = [str(ROOT / "app")]
    sys.modules["app"] = _stub

pricing = importlib.import_module("app.pricing")
pricing_cli = importlib.import_module("app.pricing.cli").pricing
from app.pricing.model import CdrInput, ChargingPeriod  # noqa: E402
from app.pricing.parse import parse_tariff  # noqa: E402

D = Decimal
UTC = UTC


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(), parse_float=Decimal)


def tariff(name_or_obj: str | dict):
    obj = example(name_or_obj) if isinstance(name_or_obj, str) else name_or_obj
    return parse_tariff(obj)


def at(text: str) -> datetime:
    """'2024-01-01T10:00' (UTC) → aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def session(start: datetime, *periods: tuple, currency: str = "EUR") -> CdrInput:
    """Build a CDR from ``(minutes, {"energy": kWh, "time": h, ...})`` pieces laid end to end.

    Quantities may be given as numbers or strings; ``time``/``parking_time``/``reservation_time`` may also be
    given in minutes via the keys ``time_min``/``parking_min``/``reservation_min``.
    """
    out = []
    t = start
    for minutes, dims in periods:
        kw = {}
        for key, value in dims.items():
            if key.endswith("_min"):
                name = {
                    "time_min": "time",
                    "parking_min": "parking_time",
                    "reservation_min": "reservation_time",
                }[key]
                kw[name] = D(str(value)) / 60
            else:
                kw[key] = D(str(value))
        out.append(ChargingPeriod(start=t, **kw))
        t = t + timedelta(seconds=int(D(str(minutes)) * 60))
    return CdrInput(start=start, end=t, currency=currency, periods=tuple(out))


def charge(start: datetime, minutes: float, kwh: str | int = 0, parking_minutes: float = 0, **extra) -> CdrInput:
    """One charging period (TIME = wall time) optionally followed by one parking period."""
    pieces = [(minutes, {"energy": kwh, "time_min": minutes, **extra})]
    if parking_minutes:
        pieces.append((parking_minutes, {"parking_min": parking_minutes}))
    return session(start, *pieces)

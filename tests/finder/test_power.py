"""A connector's usable power from real feeds (OCPI 2.2.1 Connector: voltage line to neutral, phases)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.finder.power import connector_power_kw


@pytest.mark.parametrize(
    ("power_type", "volts", "amperes", "raw", "kw"),
    [
        # max_electric_power as sent, in W.
        ("AC_3_PHASE", 230, 16, 11000, "11.000"),
        ("DC", 920, 400, 150000, "150.000"),  # below V x A: the CPO's limit counts
        # Missing: voltage x amperage x phases, the voltage line to neutral (no sqrt(3)).
        ("AC_3_PHASE", 230, 16, None, "11.040"),
        ("AC_3_PHASE", 230, 32, None, "22.080"),
        ("AC_1_PHASE", 230, 16, None, "3.680"),
        ("AC_2_PHASE", 230, 16, None, "7.360"),
        ("DC", 500, 125, None, "62.500"),
        # 1000x wrong units: sent in kW, or in mW.
        ("AC_3_PHASE", 230, 16, 11, "11.000"),
        ("DC", 500, 125, 50_000_000, "50.000"),
        # Impossible for an AC connector (> 44 kW): the nominal power when that one is plausible ...
        ("AC_3_PHASE", 230, 32, 150000, "22.080"),
        # ... else unknown: 400 V line to line sent as line to neutral, and nothing else to go by.
        ("AC_3_PHASE", 400, 63, None, None),
        # Impossible for any car charger (> 1 MW DC), and no plausible nominal either.
        ("DC", 1000, 2000, None, None),
        ("DC", 1000, 0, None, None),
    ],
)
def test_power_of_a_connector(power_type, volts, amperes, raw, kw):
    expected = None if kw is None else Decimal(kw)
    assert connector_power_kw(power_type, volts, amperes, raw) == expected


def test_the_largest_plausible_connectors():
    assert connector_power_kw("AC_3_PHASE", 230, 63, None) == Decimal("43.470")  # Type 2 at 63 A
    assert connector_power_kw("DC", 1000, 1000, 1_000_000) == Decimal("1000.000")
    assert connector_power_kw("DC", 1000, 2000, 1_000_001) is None  # nor is the nominal 2 MW plausible
    assert connector_power_kw("DC", 1000, 500, 1_000_001) == Decimal("500.000")  # the nominal one is

"""The power a connector can deliver, read from real feeds, for the "minimum power" filter and for display.

OCPI 2.2.1 (mod_locations, Connector object): ``max_voltage`` is line to neutral for AC_3_PHASE, ``max_amperage``
per phase, and ``max_electric_power`` (W, optional) is set when the power is lower than voltage × amperage. So
the nominal power is max_voltage × max_amperage × phases, with 3 phases for AC_3_PHASE, 2 for AC_2_PHASE and
AC_2_PHASE_SPLIT, 1 for AC_1_PHASE and DC (no √3: the voltage is already line to neutral).

Real feeds send ``max_electric_power`` missing, in kW instead of W, or in mW: roaming's intake rule
(:func:`app.roaming.receive.location_validation.sanitise_power_w`) reads the value in the unit the feed most
likely meant, falling back on the nominal power when the value is missing. On top of it the finder refuses values
no connector of that kind can deliver, so that a wrong figure never answers "≥ 50 kW":

- AC: at most 44 kW. The largest AC connector in use, IEC 62196 Type 2 three-phase at 63 A on 230 V line to
  neutral, gives 3 × 230 × 63 = 43.5 kW; anything above is a wrong voltage (400 V line to line sent as line to
  neutral: 400 × 63 × 3 = 75.6 kW) or a wrong unit.
- DC: at most 1 MW. The fastest car chargers in service deliver up to 1,000 kW (BYD's 1 MW "flash" chargers);
  the Megawatt Charging System for trucks (3.75 MW) has no ConnectorType in OCPI 2.2.1.
- any kind: more than 0 W.

A refused ``max_electric_power`` falls back on the nominal power when that one is plausible; when neither is, the
power is unknown (None): shown as unknown, and never matching a minimum-power filter.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from app.roaming.receive.location_validation import sanitise_power_w

AC_MAX_W = 44_000
DC_MAX_W = 1_000_000
PHASES = {"AC_1_PHASE": 1, "AC_2_PHASE": 2, "AC_2_PHASE_SPLIT": 2, "AC_3_PHASE": 3, "DC": 1}
_KW = Decimal(1000)
_THREE_DECIMALS = Decimal("0.001")


def is_dc(power_type: str) -> bool:
    return power_type.upper() == "DC"


def _plausible(watts: int | None, power_type: str) -> bool:
    if watts is None or watts <= 0:
        return False
    return watts <= (DC_MAX_W if is_dc(power_type) else AC_MAX_W)


# Pure functions of four small values that repeat across connectors (a few hundred combinations in a country's
# feed): kept per process, as every result page asks them for each of its ~80 connectors.
@lru_cache(maxsize=8192)
def connector_power_w(
    power_type: str, max_voltage: int | None, max_amperage: int | None, max_electric_power: int | None
) -> int | None:
    """The usable power of a connector in W, or None when the feed gives no plausible figure (see the module)."""
    sanitised = sanitise_power_w(max_electric_power, power_type, max_voltage, max_amperage)
    if _plausible(sanitised, power_type):
        return sanitised
    nominal = None
    if max_voltage and max_amperage and max_voltage > 0 and max_amperage > 0:
        nominal = max_voltage * max_amperage * PHASES.get(power_type.upper(), 1)
    return nominal if _plausible(nominal, power_type) else None


@lru_cache(maxsize=8192)
def connector_power_kw(
    power_type: str, max_voltage: int | None, max_amperage: int | None, max_electric_power: int | None
) -> Decimal | None:
    """:func:`connector_power_w` in kW, exact to the watt."""
    watts = connector_power_w(power_type, max_voltage, max_amperage, max_electric_power)
    return None if watts is None else (Decimal(watts) / _KW).quantize(_THREE_DECIMALS)

"""step_size: round a dimension's session total up to whole steps.

The spec (mod_cdrs "step_size") applies step_size once per session: to the *total* of ENERGY, and once to
TIME and PARKING_TIME combined, namely to whichever of the two was priced in the last time-based period
(charging followed by parking: only parking is rounded). The step_size used is the one of the price
component of the last period in which that dimension was priced, and the extra quantity is billed at that
component's price. The engine decides *which* total and component; this module only does the arithmetic.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

# Step multipliers: ENERGY steps are Wh while volumes are kWh; TIME/PARKING_TIME steps are seconds while
# volumes are hours.
WH_PER_KWH = Decimal(1000)
SECONDS_PER_HOUR = Decimal(3600)
# Quantities built from interpolated pieces, or hours derived from seconds (1/6 h = 0.1666...667), carry noise
# in the 28th digit; they are normalised to 1e-6 of the step unit (µWh, µs) before rounding up, so that noise
# never bills an extra step.
_NOISE = Decimal("1e-6")


def billed_quantity(total: Decimal, step_size: int, units_per_volume: Decimal) -> Decimal:
    """Round ``total`` (kWh or hours) up to a multiple of ``step_size`` (Wh or seconds).

    A ``step_size`` of 0 (seen in real feeds, and in the spec's FLAT example) means no rounding.
    The result is never lower than ``total``.
    """
    if step_size <= 0 or total <= 0:
        return total
    exact = total * units_per_volume
    if not exact % step_size:
        return total  # already a whole number of steps (the common case: 3-decimal kWh, step 1 Wh)
    in_units = exact.quantize(_NOISE, rounding=ROUND_HALF_UP)
    steps = (in_units / step_size).to_integral_value(rounding=ROUND_CEILING)
    billed = steps * step_size / units_per_volume
    return billed if billed > total else total

"""What physics and our columns allow for the numbers partners send us (DESIGN "Intake": bounded before stored).

Each bound is the physical limit of the quantity, widened so that no real charging session comes near it, and
never wider than the column it goes to (after the multiplications pricing does with it). A value beyond it is
a bug or an attack in the sender's system: refused with OCPI 2001 naming the field, never stored (``1e30`` kWh
stored once crashed the invoice run). The validators of ``receive/*`` use these at each field's declaration;
:class:`~app.roaming.ocpi.reader.Bounds` says how a bound is applied (``places`` = the column's scale).
"""

from __future__ import annotations

from app.roaming.ocpi.reader import Bounds

# ----------------------------------------------------------------------------------------- one charging session

# The longest a session or CDR may last: a car left on a plug in long-term parking stays weeks, not a year (CPOs
# close sessions long before). Also bounds TIME / PARKING_TIME / RESERVATION_TIME dimensions.
MAX_SESSION_DAYS = 366
# Hours (CDR total_time, total_parking_time, time dimensions); Numeric(12, 6) column.
SESSION_HOURS = Bounds(0, 24 * MAX_SESSION_DAYS, places=6)
# kWh (CDR total_energy, Session kwh, energy dimensions): the largest vehicle batteries (trucks, buses) hold
# about 1 MWh; 10 MWh is ten of them. Negative: energy fed back to the grid (V2G) may exceed what was charged.
# Numeric(14, 4) column.
SESSION_KWH = Bounds(-10_000, 10_000, places=4)
# kWh of a CDR's ENERGY* dimensions, which pricing multiplies by tariff prices: ten times the largest session.
PRICED_KWH = Bounds(-100_000, 100_000)
# kWh of a Session's ENERGY* dimensions, stored but never priced (the CDR is): the official session examples send
# Wh there (41000 for 41 kWh), as do feeds with the 1000x unit quirk, so the largest session in Wh.
REPORTED_KWH = Bounds(-10_000_000, 10_000_000)
# kW (power dimensions, tariff power restrictions): the Megawatt Charging System peaks at 3.75 MW.
POWER_KW = Bounds(-4_000, 4_000)
# A (current dimensions: the sum over phases; tariff current restrictions): MCS is rated 3,000 A.
CURRENT_A = Bounds(-10_000, 10_000)
# STATE_OF_CHARGE, EnergySource.percentage.
PERCENT = Bounds(0, 100)
# EnvironmentalImpact.amount in g/kWh: coal, the dirtiest source, emits about 1,000 g CO2 per kWh.
GRAMS_PER_KWH = Bounds(0, 10_000)

# ----------------------------------------------------------------------------------------- connectors

# V: the low-voltage directive ends at 1,000 V AC / 1,500 V DC (MCS: 1,250 V). Integer column.
VOLTAGE_V = Bounds(0, 1_500, integer=True)
# A: MCS, the largest plug, is rated 3,000 A. Integer column.
AMPERAGE_A = Bounds(0, 3_000, integer=True)
# W as sent: real feeds send kW or mW instead of W (DESIGN §8; ``sanitise_power_w`` repairs the unit), so the raw
# value is only bounded by its integer column (int4) ...
RAW_POWER_W = Bounds(0, 2**31 - 1, integer=True)
# ... and the repaired power by physics: no charger delivers more than 4 MW (MCS: 3.75 MW).
MAX_POWER_W = 4_000_000

# ----------------------------------------------------------------------------------------- money

# Any total of one session (CDR and Session costs, a tariff's min/max price), in its currency: 10 million is
# far above any session also in currencies of small unit (HUF, JPY: a 1 MWh truck session costs ~400,000 HUF),
# and stays within Numeric(14, 4). Negative: credit CDRs carry the negated amounts.
SESSION_AMOUNT = Bounds(-10_000_000, 10_000_000, places=4)
TARIFF_AMOUNT = Bounds(0, 10_000_000)
# A tariff's price per unit (kWh, hour, session): 10,000 covers the small-unit currencies (HUF idle fees run to
# ~6,000 HUF/h); times the largest priced volume (PRICED_KWH, 8,784 h) it stays below 10**10, the limit of the
# Numeric(14, 4) amounts pricing fills.
UNIT_PRICE = Bounds(0, 10_000)
VAT_PERCENT = Bounds(0, 100)
# step_size (s or Wh) and min/max_duration (s): a year in seconds; as Wh, 31 MWh, above any session.
SECONDS_OR_WH = Bounds(0, 24 * 3600 * MAX_SESSION_DAYS, integer=True)
TARIFF_KWH = Bounds(0, 10_000)
TARIFF_POWER_KW = Bounds(0, 4_000)
TARIFF_CURRENT_A = Bounds(0, 10_000)

# ----------------------------------------------------------------------------------------- places and things

LATITUDE = Bounds(-90, 90)
LONGITUDE = Bounds(-180, 180)
# Image width/height: int(5) in the spec.
PIXELS = Bounds(0, 99_999, integer=True)
# RegularHours.weekday: Monday (1) to Sunday (7).
WEEKDAY = Bounds(1, 7, integer=True)

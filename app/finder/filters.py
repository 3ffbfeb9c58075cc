"""What a driver can ask of a charger, and the names they ask it with.

Connector standard, minimum power, AC/DC and "available now" describe one connector: a location matches only if
one of its connectors meets all of them at once (a location with a free 11 kW Type 2 and a busy 150 kW CCS does
not match "CCS, ≥ 50 kW, available now"). Operator, "open now" and "works with my card" describe the location.
Locations that are not published, whose EVSEs are all REMOVED, or whose partner connection was REMOVED are never
candidates at all (:mod:`app.finder.candidates`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

# OCPI 2.2.1 ConnectorType (mod_locations), upper-cased: feeds write IEC_60309_2_single_16 in both cases.
CONNECTOR_TYPES = frozenset(
    {
        "CHADEMO",
        "CHAOJI",
        *(f"DOMESTIC_{letter}" for letter in "ABCDEFGHIJKLMNO"),
        "GBT_AC",
        "GBT_DC",
        "IEC_60309_2_SINGLE_16",
        "IEC_60309_2_THREE_16",
        "IEC_60309_2_THREE_32",
        "IEC_60309_2_THREE_64",
        "IEC_62196_T1",
        "IEC_62196_T1_COMBO",
        "IEC_62196_T2",
        "IEC_62196_T2_COMBO",
        "IEC_62196_T3A",
        "IEC_62196_T3C",
        "NEMA_5_20",
        "NEMA_6_30",
        "NEMA_6_50",
        "NEMA_10_30",
        "NEMA_10_50",
        "NEMA_14_30",
        "NEMA_14_50",
        "PANTOGRAPH_BOTTOM_UP",
        "PANTOGRAPH_TOP_DOWN",
        "TESLA_R",
        "TESLA_S",
    }
)

# The names drivers use (after lower-casing and dropping spaces, dashes and underscores) → ConnectorTypes.
FRIENDLY_CONNECTORS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "type2": frozenset({"IEC_62196_T2"}),
        "mennekes": frozenset({"IEC_62196_T2"}),
        "ccs": frozenset({"IEC_62196_T2_COMBO"}),
        "ccs2": frozenset({"IEC_62196_T2_COMBO"}),
        "combo2": frozenset({"IEC_62196_T2_COMBO"}),
        "ccs1": frozenset({"IEC_62196_T1_COMBO"}),
        "combo1": frozenset({"IEC_62196_T1_COMBO"}),
        "type1": frozenset({"IEC_62196_T1"}),
        "j1772": frozenset({"IEC_62196_T1"}),
        "chademo": frozenset({"CHADEMO"}),
        "chaoji": frozenset({"CHAOJI"}),
        "type3": frozenset({"IEC_62196_T3A", "IEC_62196_T3C"}),
        "schuko": frozenset({"DOMESTIC_F"}),
        "cee": frozenset(
            {"IEC_60309_2_SINGLE_16", "IEC_60309_2_THREE_16", "IEC_60309_2_THREE_32", "IEC_60309_2_THREE_64"}
        ),
        "gbt": frozenset({"GBT_AC", "GBT_DC"}),
        "tesla": frozenset({"TESLA_R", "TESLA_S"}),
    }
)

# How a ConnectorType is shown (proper names: the same in every language).
CONNECTOR_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "IEC_62196_T2": "Type 2",
        "IEC_62196_T2_COMBO": "CCS",
        "IEC_62196_T1": "Type 1",
        "IEC_62196_T1_COMBO": "CCS (Type 1)",
        "CHADEMO": "CHAdeMO",
        "CHAOJI": "ChaoJi",
        "IEC_62196_T3A": "Type 3A",
        "IEC_62196_T3C": "Type 3C",
        "DOMESTIC_F": "Schuko",
        "IEC_60309_2_SINGLE_16": "CEE 16 A (1-phase)",
        "IEC_60309_2_THREE_16": "CEE 16 A",
        "IEC_60309_2_THREE_32": "CEE 32 A",
        "IEC_60309_2_THREE_64": "CEE 64 A",
        "GBT_AC": "GB/T AC",
        "GBT_DC": "GB/T DC",
        "TESLA_R": "Tesla Roadster",
        "TESLA_S": "Tesla",
    }
)


def connector_label(standard: str) -> str:
    return CONNECTOR_LABELS.get(standard.upper(), standard)


def connector_types(name: str) -> frozenset[str] | None:
    """The ConnectorTypes a driver's name stands for ("Type 2", "ccs", "IEC_62196_T2" ...); None if unknown."""
    upper = name.strip().upper()
    if upper in CONNECTOR_TYPES:
        return frozenset({upper})
    folded = "".join(ch for ch in name.lower() if ch not in " -_")
    return FRIENDLY_CONNECTORS.get(folded)


class Current(enum.StrEnum):
    AC = "AC"
    DC = "DC"


@dataclass(frozen=True)
class Filters:
    """Every filter is optional; all given ones must hold (the connector ones on the same connector)."""

    connector_types: frozenset[str] = field(default_factory=frozenset)  # upper-case ConnectorTypes, any of them
    min_power_kw: Decimal | None = None
    current: Current | None = None
    available_now: bool = False
    operator: str | None = None  # the operator's name, compared case-insensitively
    open_now: bool = False
    my_cards: bool = False  # the location's party is reachable through our registered partners

    @property
    def on_connector(self) -> bool:
        return bool(self.connector_types or self.min_power_kw is not None or self.current or self.available_now)

    def fingerprint(self) -> str:
        """A stable text of the filters, for the cursor of a page (a cursor belongs to one search)."""
        return "|".join(
            (
                ",".join(sorted(self.connector_types)),
                "" if self.min_power_kw is None else str(self.min_power_kw.normalize()),
                self.current or "",
                str(int(self.available_now)),
                (self.operator or "").casefold(),
                str(int(self.open_now)),
                str(int(self.my_cards)),
            )
        )


NO_FILTERS = Filters()

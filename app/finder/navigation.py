"""Links that open a location in the driver's navigation app.

Built from the location's coordinates only (never from anything in the request), in the formats the apps
document: Google Maps URLs (``api=1``, ``destination``), Apple Maps (``daddr``), Waze deep links (``ll`` +
``navigate=yes``), OpenStreetMap's directions page (``route=FROM;TO``, FROM left empty for the driver to fill,
car routing) and a ``geo:`` URI (RFC 5870) that Android hands to whichever app the driver chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class NavigationLinks:
    google_maps: str
    apple_maps: str
    waze: str
    openstreetmap: str
    geo: str


def _coordinate(value: Decimal) -> str:
    """Plain decimal notation without trailing zeros (never an exponent: 1E+1 is no coordinate)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def navigation_links(latitude: Decimal, longitude: Decimal) -> NavigationLinks:
    point = f"{_coordinate(latitude)},{_coordinate(longitude)}"
    return NavigationLinks(
        google_maps=f"https://www.google.com/maps/dir/?api=1&destination={point}",
        apple_maps=f"https://maps.apple.com/?daddr={point}",
        waze=f"https://waze.com/ul?ll={point}&navigate=yes",
        openstreetmap=f"https://www.openstreetmap.org/directions?engine=fossgis_osrm_car&route=;{point}",
        geo=f"geo:{point}",
    )

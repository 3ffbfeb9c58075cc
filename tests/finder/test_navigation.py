"""Navigation links in the formats the apps document."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from app.finder.navigation import navigation_links


def test_links_to_a_location():
    links = navigation_links(Decimal("52.0894440"), Decimal("5.1102780"))
    assert links.google_maps == "https://www.google.com/maps/dir/?api=1&destination=52.089444,5.110278"
    assert links.apple_maps == "https://maps.apple.com/?daddr=52.089444,5.110278"
    assert links.waze == "https://waze.com/ul?ll=52.089444,5.110278&navigate=yes"
    assert links.geo == "geo:52.089444,5.110278"
    osm = urlsplit(links.openstreetmap)
    assert (osm.scheme, osm.netloc, osm.path) == ("https", "www.openstreetmap.org", "/directions")
    # route=FROM;TO with FROM left empty for the driver; the destination as "lat,lon".
    assert parse_qs(osm.query)["route"] == [";52.089444,5.110278"]


def test_coordinates_never_in_exponent_notation():
    links = navigation_links(Decimal("10.0000000"), Decimal("-0.0000000"))
    assert links.geo == "geo:10,0"
    assert navigation_links(Decimal("-33.8567844"), Decimal("151.2152967")).waze.startswith(
        "https://waze.com/ul?ll=-33.8567844,151.2152967&"
    )

"""What ``flask demo generate`` draws from: Belgian and Dutch names, streets and cities, the CPOs and the hub, and
the kinds of tariffs the shared NDW data holds, with the closed-form CPO price of a session under each.

Why a closed form and not the pricing engine: the engine takes about 0.3 ms a session, five minutes of CPU for
a million CDRs. The generated sessions are shaped so that the closed form is exact (energy in whole 10 Wh, times
in whole 36 s = 0.01 h, restrictions only on session duration at multiples of 36 s, so no quantity is ever
rounded by a step size or a split), and the tests price every generated CDR with the engine and compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

FOUR_PLACES = Decimal("0.0001")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class City:
    name: str
    country: str  # alpha-2
    postal_codes: tuple[int, int]  # the city's range
    latitude: float
    longitude: float
    languages: tuple[str, ...]  # the account languages of its inhabitants, most frequent first
    weight: int  # relative size (accounts and charge points follow it)


CITIES: tuple[City, ...] = (
    City("Antwerpen", "BE", (2000, 2660), 51.2194, 4.4025, ("nl",), 10),
    City("Gent", "BE", (9000, 9052), 51.0543, 3.7174, ("nl",), 8),
    City("Brussel", "BE", (1000, 1210), 50.8467, 4.3525, ("fr", "nl", "en"), 12),
    City("Leuven", "BE", (3000, 3012), 50.8798, 4.7005, ("nl", "en"), 4),
    City("Brugge", "BE", (8000, 8310), 51.2093, 3.2247, ("nl",), 3),
    City("Hasselt", "BE", (3500, 3512), 50.9307, 5.3325, ("nl",), 3),
    City("Mechelen", "BE", (2800, 2812), 51.0259, 4.4776, ("nl",), 3),
    City("Liège", "BE", (4000, 4032), 50.6326, 5.5797, ("fr",), 6),
    City("Namur", "BE", (5000, 5101), 50.4674, 4.8720, ("fr",), 3),
    City("Charleroi", "BE", (6000, 6061), 50.4108, 4.4446, ("fr",), 4),
    City("Mons", "BE", (7000, 7034), 50.4542, 3.9523, ("fr",), 2),
    City("Amsterdam", "NL", (1011, 1109), 52.3702, 4.8952, ("nl", "en"), 12),
    City("Rotterdam", "NL", (3011, 3089), 51.9244, 4.4777, ("nl",), 9),
    City("Den Haag", "NL", (2491, 2597), 52.0705, 4.3007, ("nl",), 7),
    City("Utrecht", "NL", (3511, 3585), 52.0907, 5.1214, ("nl",), 6),
    City("Eindhoven", "NL", (5611, 5658), 51.4416, 5.4697, ("nl",), 5),
    City("Breda", "NL", (4811, 4839), 51.5719, 4.7683, ("nl",), 3),
    City("Groningen", "NL", (9711, 9747), 53.2194, 6.5665, ("nl",), 3),
    City("Zwolle", "NL", (8011, 8045), 52.5168, 6.0830, ("nl",), 2),
    City("Arnhem", "NL", (6811, 6846), 51.9851, 5.8987, ("nl",), 2),
    City("Nijmegen", "NL", (6511, 6546), 51.8126, 5.8372, ("nl",), 3),
    City("Maastricht", "NL", (6211, 6229), 50.8514, 5.6910, ("nl",), 2),
    City("Leiden", "NL", (2311, 2334), 52.1601, 4.4970, ("nl",), 2),
    City("Haarlem", "NL", (2011, 2037), 52.3874, 4.6462, ("nl",), 2),
)

FIRST_NAMES = {
    "nl": (
        "Lucas",
        "Noah",
        "Liam",
        "Daan",
        "Sem",
        "Milan",
        "Jens",
        "Wout",
        "Arne",
        "Pieter",
        "Jan",
        "Koen",
        "Bram",
        "Emma",
        "Julia",
        "Lotte",
        "Sara",
        "Fien",
        "Noor",
        "Tess",
        "Anna",
        "Eva",
        "Lien",
        "Marie",
        "Sofie",
        "Elke",
    ),
    "fr": (
        "Louis",
        "Gabriel",
        "Arthur",
        "Jules",
        "Victor",
        "Hugo",
        "Nathan",
        "Théo",
        "Maxime",
        "Julien",
        "Lucas",
        "Louise",
        "Alice",
        "Chloé",
        "Camille",
        "Léa",
        "Manon",
        "Juliette",
        "Élise",
        "Margaux",
        "Inès",
        "Zoé",
    ),
    "en": ("James", "Oliver", "Thomas", "Daniel", "Emily", "Sophie", "Hannah", "Grace", "Laura", "Olivia"),
}
LAST_NAMES = {
    "BE": (
        "Peeters",
        "Janssens",
        "Maes",
        "Jacobs",
        "Mertens",
        "Willems",
        "Claes",
        "Goossens",
        "Wouters",
        "De Smet",
        "Dubois",
        "Lambert",
        "Dupont",
        "Martin",
        "Simon",
        "Leclercq",
        "Hermans",
        "Michiels",
        "Van den Broeck",
        "Desmet",
        "Lemaire",
        "Renard",
        "Vermeulen",
        "Aerts",
        "Declercq",
        "Denis",
        "Leroy",
        "Mathieu",
        "Stevens",
    ),
    "NL": (
        "de Jong",
        "Jansen",
        "de Vries",
        "van den Berg",
        "van Dijk",
        "Bakker",
        "Janssen",
        "Visser",
        "Smit",
        "Meijer",
        "de Boer",
        "Mulder",
        "de Groot",
        "Bos",
        "Vos",
        "Peters",
        "Hendriks",
        "van Leeuwen",
        "Dekker",
        "Brouwer",
        "de Wit",
        "Dijkstra",
        "Smits",
        "de Graaf",
        "van der Meer",
        "Kok",
        "Jacobs",
        "Vermeulen",
    ),
}
STREETS = {
    "nl": (
        "Kerkstraat",
        "Stationsstraat",
        "Dorpsstraat",
        "Molenstraat",
        "Schoolstraat",
        "Nieuwstraat",
        "Kapelstraat",
        "Beukenlaan",
        "Lindenlaan",
        "Julianastraat",
        "Grote Markt",
        "Veldstraat",
        "Brugstraat",
        "Kastanjelaan",
    ),
    "fr": (
        "Rue de la Station",
        "Rue de l'Église",
        "Chaussée de Bruxelles",
        "Rue du Moulin",
        "Avenue des Tilleuls",
        "Rue Haute",
        "Place du Marché",
        "Rue de la Gare",
        "Boulevard d'Avroy",
        "Rue des Écoles",
        "Rue Neuve",
    ),
    "en": ("Rue de la Loi", "Avenue Louise", "Keizersgracht", "Herengracht", "Wetstraat"),
}
COMPANY_SUFFIXES = {"BE": ("BV", "NV", "SRL", "SA"), "NL": ("B.V.", "Holding B.V.", "V.O.F.")}
COMPANY_WORDS = ("Logistics", "Consult", "Bouw", "Transport", "Techniek", "Solutions", "Services", "Installaties")
LOCATION_NAMES = ("Parking", "P+R", "Station", "Centrum", "Supermarkt", "Kantoorpark", "Ziekenhuis", "Sporthal")
TIME_ZONES = {"BE": "Europe/Brussels", "NL": "Europe/Amsterdam"}
ALPHA3 = {"BE": "BEL", "NL": "NLD"}


@dataclass(frozen=True)
class Cpo:
    name: str
    country_code: str
    party_id: str
    via_hub: bool  # reached through the hub (else a direct connection)
    fast: bool  # operates DC fast chargers (else AC street chargers)
    tariff_kinds: tuple[str, ...]


# Fictitious operators with party ids of the form X + 2 letters, which no real party in the shared data uses
# (the generator refuses to run when one of them is taken anyway).
CPOS: tuple[Cpo, ...] = (
    Cpo("Stroomnet Laadpalen", "NL", "XSN", via_hub=False, fast=False, tariff_kinds=("ndw", "energy_vat")),
    Cpo("Volta Charge Belgium", "BE", "XVC", via_hub=False, fast=False, tariff_kinds=("energy_vat", "idle_fee")),
    Cpo("Polder Energie", "NL", "XPE", via_hub=True, fast=False, tariff_kinds=("ndw", "start_fee")),
    Cpo("Wallonie Recharge", "BE", "XWR", via_hub=True, fast=False, tariff_kinds=("start_fee", "idle_fee")),
    Cpo("SnelLaad Express", "NL", "XSL", via_hub=True, fast=True, tariff_kinds=("fast_time", "fast_flat")),
)
HUB = ("Demo roaming hub", "NL", "XHB")


@dataclass(frozen=True)
class Component:
    dimension: str  # ENERGY, FLAT, TIME (charging), PARKING_TIME
    price: Decimal  # excl. VAT, per kWh / session / hour
    vat: Decimal | None
    min_duration: int | None = None  # seconds of session before it applies (a multiple of 36)


@dataclass(frozen=True)
class TariffKind:
    code: str
    description: str
    components: tuple[Component, ...]


def _components(*specs: tuple[str, str, str | None] | tuple[str, str, str | None, int]) -> tuple[Component, ...]:
    return tuple(
        Component(spec[0], Decimal(spec[1]), None if spec[2] is None else Decimal(spec[2]), *spec[3:]) for spec in specs
    )


# The shapes found in the shared NDW tariffs (ocpi-nl-10-cities/tariffs.json.gz): most are "FLAT 0, TIME 0,
# ENERGY p" without VAT; then energy only with VAT, a start fee, an idle fee after a grace period, and the fast
# chargers' time or session fees.
TARIFF_KINDS: dict[str, TariffKind] = {
    kind.code: kind
    for kind in (
        TariffKind(
            "ndw",
            "0.38 EUR per kWh",
            _components(("FLAT", "0", None), ("TIME", "0", None), ("ENERGY", "0.38", None)),
        ),
        TariffKind("energy_vat", "0.45 EUR per kWh excl. VAT", _components(("ENERGY", "0.45", "21"))),
        TariffKind(
            "start_fee",
            "0.42 EUR per kWh + 0.35 EUR per session",
            _components(("ENERGY", "0.42", "21"), ("FLAT", "0.35", "21")),
        ),
        TariffKind(
            "idle_fee",
            "0.39 EUR per kWh, 2.40 EUR per hour parked after 4 hours",
            _components(("ENERGY", "0.39", "21"), ("PARKING_TIME", "2.40", "21", 14_400)),
        ),
        TariffKind(
            "fast_time",
            "0.59 EUR per kWh + 1.20 EUR per hour charging, 6.00 EUR per hour parked after 45 minutes",
            _components(("ENERGY", "0.59", "21"), ("TIME", "1.20", "21"), ("PARKING_TIME", "6.00", "21", 2_700)),
        ),
        TariffKind(
            "fast_flat",
            "0.69 EUR per kWh + 1.00 EUR per session",
            _components(("ENERGY", "0.69", "21"), ("FLAT", "1.00", "21")),
        ),
    )
}


def tariff_object(kind: TariffKind, cpo: Cpo, tariff_id: str, last_updated: str) -> dict[str, Any]:
    """The OCPI 2.2.1 Tariff of ``kind``: the components without restriction in one element, each restricted
    one in its own element after it (the engine takes, per dimension, the first element that applies)."""
    plain = [c for c in kind.components if c.min_duration is None]
    restricted = [c for c in kind.components if c.min_duration is not None]
    elements: list[dict[str, Any]] = []
    if plain:
        elements.append({"price_components": [_price_component(c) for c in plain]})
    for component in restricted:
        elements.append(
            {
                "price_components": [_price_component(component)],
                "restrictions": {"min_duration": component.min_duration},
            }
        )
    return {
        "country_code": cpo.country_code,
        "party_id": cpo.party_id,
        "id": tariff_id,
        "currency": "EUR",
        "type": "REGULAR",
        "tariff_alt_text": [{"language": "en", "text": kind.description}],
        "elements": elements,
        "last_updated": last_updated,
    }


def _price_component(component: Component) -> dict[str, Any]:
    step = 1  # 1 Wh, 1 s: the generated quantities are whole multiples of it
    value: dict[str, Any] = {"type": component.dimension, "price": component.price, "step_size": step}
    if component.vat is not None:
        value["vat"] = component.vat
    return value


def _q4(amount: Decimal) -> Decimal:
    return amount.quantize(FOUR_PLACES, ROUND_HALF_UP)


def session_cost(
    kind: TariffKind, kwh: Decimal, charging_seconds: int, parking_seconds: int
) -> tuple[Decimal, Decimal | None]:
    """The CPO price of a session (excl. VAT, incl. VAT or None when a component has no VAT), as the engine gives
    it: each line rounded to 4 places, the totals their sums. A session charges first, then stays parked."""
    excl = incl = Decimal(0)
    vat_known = True
    for component in kind.components:
        if component.dimension == "ENERGY":
            quantity = kwh
        elif component.dimension == "FLAT":
            quantity = Decimal(1)
        elif component.dimension == "TIME":
            quantity = Decimal(charging_seconds) / 3600
        else:  # PARKING_TIME: the parked part of the session past min_duration
            parked_from = max(charging_seconds, component.min_duration or 0)
            quantity = Decimal(max(0, charging_seconds + parking_seconds - parked_from)) / 3600
        cost = quantity * component.price
        excl += _q4(cost)
        if component.vat is None:
            vat_known = False
            incl += _q4(cost)
        else:
            incl += _q4(cost * (1 + component.vat / HUNDRED))
    return excl, (incl if vat_known else None)

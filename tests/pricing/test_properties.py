"""Property tests: never negative, monotonic in energy for energy-only tariffs, bounded by min/max price,
and independent of how a CPO cuts the same session into periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ._support import D, pricing, session

settings.register_profile("pricing", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pricing")

ZONES = st.sampled_from([None, "Europe/Brussels", "Europe/Amsterdam"])
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
money = st.decimals(min_value=0, max_value=5, places=2)
hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
# Around both 2024 DST changes and an ordinary day.
starts = st.builds(
    lambda day, minute: datetime(2024, 3, 30, tzinfo=UTC) + timedelta(days=day, minutes=minute),
    st.sampled_from([0, 1, 2, 210, 211]),
    st.integers(0, 24 * 60 - 1),
)


def restrictions(kinds: tuple[str, ...]):
    parts = {
        "time": st.fixed_dictionaries({"start_time": hhmm, "end_time": hhmm}),
        "dow": st.fixed_dictionaries({"day_of_week": st.lists(st.sampled_from(DAYS), min_size=1, unique=True)}),
        "date": st.fixed_dictionaries(
            {
                "start_date": st.sampled_from(["2024-03-30", "2024-03-31", "2024-10-27"]),
                "end_date": st.sampled_from(["2024-03-31", "2024-04-01", "2024-10-28"]),
            }
        ),
        "duration": st.one_of(
            st.fixed_dictionaries({"min_duration": st.integers(0, 7200)}),
            st.fixed_dictionaries({"max_duration": st.integers(1, 7200)}),
        ),
        "kwh": st.one_of(
            st.fixed_dictionaries({"min_kwh": st.integers(0, 40)}),
            st.fixed_dictionaries({"max_kwh": st.integers(1, 40)}),
        ),
        "power": st.fixed_dictionaries({"max_power": st.integers(1, 50), "min_power": st.integers(0, 10)}),
        "current": st.fixed_dictionaries({"min_current": st.integers(0, 40)}),
    }

    @st.composite
    def build(draw):
        out = {}
        for kind in draw(st.lists(st.sampled_from(kinds), max_size=2, unique=True)):
            out.update(draw(parts[kind]))
        return out or None

    return build()


def component(dims):
    return st.fixed_dictionaries(
        {
            "type": st.sampled_from(dims),
            "price": money,
            "step_size": st.sampled_from([0, 1, 60, 300, 900, 1000]),
        },
        optional={"vat": st.sampled_from([D(0), D(6), D(21)])},
    )


def tariffs(
    dims=("ENERGY", "TIME", "PARKING_TIME", "FLAT"),
    kinds=("time", "dow", "date", "duration", "kwh", "power", "current"),
    bounds=False,
):
    element = st.fixed_dictionaries(
        {"price_components": st.lists(component(list(dims)), min_size=1, max_size=3)},
        optional={"restrictions": restrictions(kinds)},
    )
    fields = {"currency": st.just("EUR"), "elements": st.lists(element, min_size=1, max_size=3)}
    optional = {}
    if bounds:
        optional = {
            "min_price": st.fixed_dictionaries({"excl_vat": money}, optional={"incl_vat": money}),
            "max_price": st.fixed_dictionaries(
                {"excl_vat": money.map(lambda x: x + 5)}, optional={"incl_vat": money.map(lambda x: x + 6)}
            ),
        }
    return st.fixed_dictionaries(fields, optional=optional).map(pricing.parse_tariff)


period = st.one_of(
    st.tuples(
        st.integers(0, 240),
        st.fixed_dictionaries(
            {"energy": st.decimals(min_value=0, max_value=60, places=3)},
            optional={"max_current": st.integers(6, 64), "min_power": st.integers(0, 20)},
        ),
    ).map(lambda p: (p[0], {**p[1], "time_min": p[0]})),
    st.integers(0, 120).map(lambda m: (m, {"parking_min": m})),
)
sessions = st.builds(lambda start, periods: session(start, *periods), starts, st.lists(period, min_size=1, max_size=5))


@given(tariffs(), sessions, ZONES)
def test_never_negative_and_adds_up(tariff, cdr, zone):
    r = pricing.price_session(tariff, cdr, zone)
    for cost in (r.energy, r.time, r.parking_time, r.flat, r.reservation_time, r.reservation_flat):
        assert cost.excl_vat >= 0 and cost.incl_vat >= cost.excl_vat and cost.quantity >= 0
    assert r.total_excl_vat >= 0 and r.total_incl_vat >= 0
    assert r.subtotal_excl_vat == sum(line.excl_vat for line in r.lines)
    assert r.total_excl_vat == r.subtotal_excl_vat and r.total_incl_vat == r.subtotal_incl_vat


@given(
    tariffs(dims=("ENERGY",), kinds=("time", "dow", "date", "duration")),
    starts,
    st.integers(1, 600),
    st.decimals(min_value=0, max_value=80, places=3),
    st.decimals(min_value=0, max_value=20, places=3),
    ZONES,
)
def test_monotonic_in_energy_for_energy_only_tariffs(tariff, start, minutes, kwh, more, zone):
    # With a step_size above 1 Wh and several energy prices, the spec's rule (round the session total up to the
    # step and charge the surplus at the *last* component's price) is not monotonic: more energy in a cheaper
    # or free first piece leaves a smaller surplus at the dearer last price. That case is pinned down in
    # test_step_rounding_can_make_more_energy_cheaper; the property holds for everything else.
    prices = {c.price for e in tariff.elements for c in e.price_components}
    assume(len(prices) == 1 or all(c.step_size <= 1 for e in tariff.elements for c in e.price_components))
    low = pricing.price_session(tariff, session(start, (minutes, {"energy": kwh, "time_min": minutes})), zone)
    high = pricing.price_session(tariff, session(start, (minutes, {"energy": kwh + more, "time_min": minutes})), zone)
    assert high.total_excl_vat >= low.total_excl_vat
    assert high.total_incl_vat >= low.total_incl_vat


@given(
    tariffs(dims=("ENERGY",), kinds=("kwh",)),
    starts,
    st.lists(st.decimals(0, 40, places=3), min_size=1, max_size=4),
    st.integers(0, 3),
)
def test_monotonic_in_energy_with_kwh_restrictions(tariff, start, energies, bump):
    base = [(30, {"energy": e, "time_min": 30}) for e in energies]
    bigger = [(m, {**d, "energy": d["energy"] + (1 if i == bump else 0)}) for i, (m, d) in enumerate(base)]
    low = pricing.price_session(tariff, session(start, *base))
    high = pricing.price_session(tariff, session(start, *bigger))
    assert high.total_excl_vat >= low.total_excl_vat


@given(tariffs(bounds=True), sessions, ZONES)
def test_within_min_and_max_price(tariff, cdr, zone):
    r = pricing.price_session(tariff, cdr, zone)
    lo, hi = tariff.min_price, tariff.max_price
    if lo is not None and hi is not None:
        assert lo.excl_vat <= r.total_excl_vat <= hi.excl_vat
        if lo.incl_vat is not None and hi.incl_vat is not None:
            assert lo.incl_vat <= r.total_incl_vat <= hi.incl_vat


@given(
    tariffs(kinds=("time", "dow", "date", "duration", "kwh")),
    starts,
    st.integers(2, 600),
    st.decimals(min_value=0, max_value=80, places=3),
    st.floats(0.01, 0.99),
    ZONES,
)
def test_cutting_a_period_in_two_does_not_change_the_price(tariff, start, minutes, kwh, cut, zone):
    whole = session(start, (minutes, {"energy": kwh, "time_min": minutes}))
    seconds = max(1, min(minutes * 60 - 1, int(minutes * 60 * cut)))
    frac = Decimal(seconds) / (minutes * 60)
    first = {"energy": kwh * frac, "time": Decimal(seconds) / 3600}
    second = {"energy": kwh - first["energy"], "time": Decimal(minutes * 60 - seconds) / 3600}
    split = session(start, (Decimal(seconds) / 60, first), (Decimal(minutes * 60 - seconds) / 60, second))
    a = pricing.price_session(tariff, whole, zone)
    b = pricing.price_session(tariff, split, zone)
    # Splitting interpolates energy linearly, so a restriction window may receive a fraction of a Wh more or
    # less; rounding up to the step can then differ by at most one step at the dearest price.
    step_slack = max(
        (
            c.price * c.step_size / (1000 if c.type == "ENERGY" else 3600)
            for e in tariff.elements
            for c in e.price_components
            if c.type != "FLAT"
        ),
        default=Decimal(0),
    )
    assert abs(a.total_excl_vat - b.total_excl_vat) <= Decimal("0.0002") + step_slack


def test_step_rounding_can_make_more_energy_cheaper():
    """Found by hypothesis: free first second, then 1.01/kWh with a 60 Wh step. Following the spec, 1 Wh costs
    0.0606 (59/60 Wh priced + 59 Wh surplus) and 3 Wh costs 0.0605 (2.95 Wh + 57 Wh surplus)."""
    tariff = pricing.parse_tariff(
        {
            "currency": "EUR",
            "country_code": "NL",
            "party_id": "TCP",
            "id": "T",
            "last_updated": "2024-01-01T00:00:00Z",
            "elements": [
                {
                    "price_components": [{"type": "ENERGY", "price": 0, "step_size": 0}],
                    "restrictions": {"max_duration": 1},
                },
                {"price_components": [{"type": "ENERGY", "price": D("1.01"), "step_size": 60}]},
            ],
        }
    )
    start = datetime(2024, 3, 30, tzinfo=UTC)
    low = pricing.price_session(tariff, session(start, (1, {"energy": D("0.001"), "time_min": 1})))
    high = pricing.price_session(tariff, session(start, (1, {"energy": D("0.003"), "time_min": 1})))
    assert low.total_excl_vat == D("0.0606")
    assert high.total_excl_vat == D("0.0605")

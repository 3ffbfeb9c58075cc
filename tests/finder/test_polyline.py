"""Google's encoded polylines: the published example, round trips, and clear refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.finder.route import PolylineError, decode_polyline, encode_polyline

# https://developers.google.com/maps/documentation/utilities/polylinealgorithm
GOOGLE_EXAMPLE = "_p~iF~ps|U_ulLnnqC_mqNvxq`@"


def test_google_published_example():
    assert decode_polyline(GOOGLE_EXAMPLE) == [(38.5, -120.2), (40.7, -120.95), (43.252, -126.453)]
    assert encode_polyline([(38.5, -120.2), (40.7, -120.95), (43.252, -126.453)]) == GOOGLE_EXAMPLE


def test_google_single_value_example():
    # The same page's worked example: -179.9832104 encodes as "`~oia@" (a lone value: latitude).
    with pytest.raises(PolylineError, match="latitude without its longitude"):
        decode_polyline("`~oia@")
    assert encode_polyline([(-179.98321, 0)]).startswith("`~oia@")


points = st.lists(
    st.tuples(
        st.integers(-9_000_000, 9_000_000).map(lambda v: v / 100_000),
        st.integers(-18_000_000, 18_000_000).map(lambda v: v / 100_000),
    ),
    max_size=30,
)


@given(points)
def test_round_trip(route):
    assert decode_polyline(encode_polyline(route)) == route


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("_p~iF~ps|U _ulL", "character 11"),  # a blank is no polyline character
        ("_p~iF~ps|U_ulLnnqC_mqNvxq", "ends in the middle of a value"),
        ("_p~iF~ps|U_ulL", "latitude without its longitude"),
        ("~~~~~~~~~~~~~~~~", "too large"),
        (encode_polyline([(50, 5), (95, 5)]), "point 2 .95.0, 5.0. is not on the Earth"),
    ],
)
def test_refusals_say_what_is_wrong(encoded, message):
    with pytest.raises(PolylineError, match=message):
        decode_polyline(encoded)


def test_length_is_bounded():
    with pytest.raises(PolylineError, match="longer than"):
        decode_polyline("?" * 200_001)

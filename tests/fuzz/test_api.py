"""Issue 12, "Fuzzing in the suite": the app's JSON API door (today only ``GET /api/v1/status``) under odd paths,
methods, query strings, headers and bodies: never a 5xx, every refusal an RFC 9457 problem document."""

from __future__ import annotations

from dataclasses import dataclass

from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import FUZZ_SETTINGS, STATS
from tests.fuzz.strategies import CONTENT_TYPES, URL_ODDITIES, encoded, header_values, hostile_text, query_values

SUFFIXES = ["", "/", "//", "/x", "/%00", "%00", "/..", "/.", "/%2F", ".json", "/status", "?", "%20", "/" + "a" * 300]


@dataclass(frozen=True)
class ApiCase:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    content_type: str | None


@st.composite
def api_cases(draw: st.DrawFn) -> ApiCase:
    """A valid ``GET /api/v1/status`` changed in one respect: path, query, headers, method or body."""
    kind = draw(st.sampled_from(["path", "query", "query", "headers", "method", "body"]))
    method, path, query, headers, body = "GET", "/api/v1/status", "", {}, None
    if kind == "path":
        path += draw(
            st.one_of(
                st.sampled_from(SUFFIXES),
                st.sampled_from(URL_ODDITIES),
                hostile_text(20).map(lambda text: "/" + encoded(text)),
            )
        )
    elif kind == "query":
        names = draw(
            st.lists(
                st.one_of(
                    st.sampled_from(["fields", "limit", "offset", "lang", "%00", "x" * 200]),
                    hostile_text(10).map(encoded),
                ),
                min_size=1,
                max_size=3,
            )
        )
        query = "&".join(f"{name}={draw(query_values())}" for name in names)
    elif kind == "headers":
        headers = {
            name: draw(header_values())
            for name in draw(
                st.lists(
                    st.sampled_from(
                        ["Accept", "Accept-Language", "Authorization", "X-Request-ID", "If-None-Match", "Origin"]
                    ),
                    min_size=1,
                    max_size=3,
                )
            )
        }
    elif kind == "method":
        method = draw(st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]))
    else:
        body = draw(st.one_of(st.binary(max_size=200), st.just(b'{"status": NaN}'), st.just(b"[" * 5000)))
    return ApiCase(
        method,
        path + (f"?{query}" if query else ""),
        headers,
        body,
        draw(st.sampled_from(CONTENT_TYPES)) if body is not None else None,
    )


def test_the_api_door_never_fails_and_answers_problems(client: FlaskClient) -> None:
    tally = STATS["api GET /api/v1/status"]

    @FUZZ_SETTINGS
    @given(case=api_cases())
    def fuzz(case: ApiCase) -> None:
        tally.cases += 1
        response = client.open(
            case.url, method=case.method, headers=case.headers, data=case.body, content_type=case.content_type
        )
        status = response.status_code
        tally.statuses[status] += 1
        tally.server_errors += status >= 500
        assert status < 500, (status, response.data[:500])
        assert not 300 <= status < 400, (status, response.headers.get("Location"))  # answers, never redirects
        answer = response.get_json(silent=True)
        if status >= 400:
            tally.refused += 1
            assert response.mimetype == "application/problem+json", (status, response.data[:300])
            assert isinstance(answer, dict) and answer.get("status") == status and answer.get("title"), answer
            return
        tally.accepted += 1
        assert status == 200 and isinstance(answer, dict) and answer["status"] == "ok", (status, answer)

    fuzz()

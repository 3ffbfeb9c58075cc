"""The SSRF guard on its own (issue 12, item 7): which partner URLs may be fetched, under the strict policy.

The test configuration admits 127.0.0.1 (the fake CPO lives there); these tests build the production policy
themselves, so the guard is checked as it runs in production.
"""

from __future__ import annotations

import pytest

from app.config import ProductionConfig
from app.roaming.ocpi import safe_urls
from app.roaming.ocpi.safe_urls import (
    ADDRESS_NOT_ALLOWED,
    HOST_NOT_FOUND,
    HTTPS_REQUIRED,
    NOT_A_URL,
    AllowedPrivate,
    UrlPolicy,
    UrlRefusedError,
    check_url,
    same_origin,
)

STRICT = UrlPolicy(require_https=True, allowed_private=())
PUBLIC_ADDRESS = "93.184.216.34"


def name_server(answers: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """A resolver answering from ``answers``; any other name does not exist."""

    def resolve(host: str, port: int, timeout: float) -> list[str]:
        if host not in answers:
            raise UrlRefusedError(HOST_NOT_FOUND, f"{host}: unknown in the test")
        return answers[host]

    return resolve


def refusal(url: str, policy: UrlPolicy = STRICT, **options) -> UrlRefusedError:  # type: ignore[no-untyped-def]
    with pytest.raises(UrlRefusedError) as refused:
        check_url(url, policy, **options)
    return refused.value


def test_production_policy_is_strict():
    config = {name: getattr(ProductionConfig, name) for name in dir(ProductionConfig) if name.isupper()}
    assert UrlPolicy.from_config(config) == STRICT


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/ocpi/versions",
        "https://localhost/ocpi/versions",
        "https://LOCALHOST./ocpi/versions",
        "https://0x7f000001/",
        "https://2130706433/",
        "https://127.1/",
        "https://0177.0.0.1/",
        "https://127.0.0.1:5432/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:7f00:1]/",
        "https://[64:ff9b::7f00:1]/",  # NAT64 wrapping of 127.0.0.1
        "https://10.0.0.1/",
        "https://172.16.0.1/",
        "https://172.31.255.254/",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://100.64.0.1/",  # carrier-grade NAT
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://240.0.0.1/",
        "https://[fe80::1]/",
        "https://[fd00::1]/",
        "https://[::]/",
    ],
)
def test_every_spelling_of_an_internal_address_is_refused(url):
    refused = refusal(url)
    assert refused.reason == ADDRESS_NOT_ALLOWED
    assert str(refused) == ADDRESS_NOT_ALLOWED  # the address it resolved to stays in the log detail


def test_plain_http_is_refused_in_production_even_to_a_public_address():
    resolver = name_server({"cpo.example": [PUBLIC_ADDRESS]})
    assert refusal("http://cpo.example/ocpi/versions", resolver=resolver).reason == HTTPS_REQUIRED
    assert check_url("https://cpo.example/ocpi/versions", STRICT, resolver=resolver).address == PUBLIC_ADDRESS


def test_a_name_is_refused_when_any_of_its_addresses_is_internal():
    resolver = name_server({"rebind.example": [PUBLIC_ADDRESS, "10.0.0.7"]})
    assert refusal("https://rebind.example/", resolver=resolver).reason == ADDRESS_NOT_ALLOWED


def test_a_public_name_passes_and_names_the_address_to_connect_to():
    resolver = name_server({"cpo.example": [PUBLIC_ADDRESS, "2606:2800:220:1:248:1893:25c8:1946"]})
    checked = check_url("https://CPO.example:8443/ocpi/versions?x=1", STRICT, resolver=resolver)
    assert (checked.scheme, checked.host, checked.port, checked.address) == (
        "https",
        "cpo.example",
        8443,
        PUBLIC_ADDRESS,
    )


def test_the_real_resolver_normalises_odd_spellings():
    """No stand-in here: the system's getaddrinfo reads 0x7f000001 as 127.0.0.1 and the guard sees that."""
    assert safe_urls.resolve("0x7f000001", 443, 2.0) == ["127.0.0.1"]
    assert safe_urls.resolve("127.1", 443, 2.0) == ["127.0.0.1"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://cpo.example/versions",
        "file:///etc/passwd",
        "gopher://cpo.example/",
        "https:///no-host",
        "https://user:secret@cpo.example/",
        "https://cpo.example:0/",
        "https://cpo.example:99999/",
        "https://[::1/",
        "https://cpo.example/ocpi versions",
        "https://cpo.example/\r\nX-Injected: 1",
        "",
    ],
)
def test_what_is_not_a_plain_url_is_refused(url):
    assert refusal(url, resolver=name_server({"cpo.example": [PUBLIC_ADDRESS]})).reason == NOT_A_URL


def test_unknown_host_is_host_not_found():
    assert refusal("https://nowhere.invalid/", resolver=name_server({})).reason == HOST_NOT_FOUND


def test_a_slow_name_server_hits_the_timeout(monkeypatch):
    def slow_lookup(*args, **kwargs):  # type: ignore[no-untyped-def]
        import time

        time.sleep(2)
        return []

    monkeypatch.setattr(safe_urls.socket, "getaddrinfo", slow_lookup)
    with pytest.raises(TimeoutError):
        safe_urls.resolve("slow.example", 443, 0.1)


# --- the allow-list ----------------------------------------------------------------------------------------------


def test_allow_list_admits_exactly_what_it_names():
    policy = UrlPolicy(
        require_https=False,
        allowed_private=(
            AllowedPrivate.parse("127.0.0.1:8080"),
            AllowedPrivate.parse("10.20.0.0/16"),
            AllowedPrivate.parse("cpo.lan"),
            AllowedPrivate.parse("[::1]:9000"),
        ),
    )
    resolver = name_server(
        {"cpo.lan": ["192.168.7.7"], "other.lan": ["192.168.7.7"], "half.lan": ["127.0.0.1", "10.9.9.9"]}
    )

    assert check_url("http://127.0.0.1:8080/", policy).address == "127.0.0.1"
    assert refusal("http://127.0.0.1:8081/", policy).reason == ADDRESS_NOT_ALLOWED  # another port
    assert refusal("http://half.lan:8080/", policy, resolver=resolver).reason == ADDRESS_NOT_ALLOWED  # 10.9.9.9
    assert check_url("http://10.20.3.4/", policy).address == "10.20.3.4"
    assert refusal("http://10.21.0.1/", policy).reason == ADDRESS_NOT_ALLOWED
    assert check_url("http://cpo.lan/", policy, resolver=resolver).address == "192.168.7.7"
    assert refusal("http://other.lan/", policy, resolver=resolver).reason == ADDRESS_NOT_ALLOWED
    assert check_url("http://[::1]:9000/", policy).address == "::1"
    assert refusal("http://169.254.169.254/", policy).reason == ADDRESS_NOT_ALLOWED


def test_allow_list_from_config_and_bad_entries():
    policy = UrlPolicy.from_config({"OCPI_REQUIRE_HTTPS": False, "OCPI_ALLOWED_PRIVATE_HOSTS": ["127.0.0.1", " "]})
    assert policy.allowed_private == (AllowedPrivate.parse("127.0.0.1"),)
    for bad in ("127.0.0.1:http", "[::1", "[::1]x", ":80", "host:70000"):
        with pytest.raises(ValueError, match="OCPI_ALLOWED_PRIVATE_HOSTS"):
            AllowedPrivate.parse(bad)


def test_same_origin():
    assert same_origin("https://cpo.example/ocpi/a", "https://CPO.example:443/ocpi/b?offset=50")
    assert not same_origin("https://cpo.example/a", "http://cpo.example/a")
    assert not same_origin("https://cpo.example/a", "https://cpo.example:8443/a")
    assert not same_origin("https://cpo.example/a", "https://evil.example/a")

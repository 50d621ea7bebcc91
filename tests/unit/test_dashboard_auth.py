"""The dashboard's pure checks: Host and Origin parsing, the token and the cookie."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from minray.head.dashboard_auth import (
    body_limit,
    check_token,
    cookie_value,
    host_allowed,
    origin_allowed,
    served_names,
    split_host,
    wants_page,
)

NAMES = served_names("127.0.0.1")
TOKEN = bytes(range(32))

labels = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
host_names = st.lists(labels, min_size=1, max_size=4).map(".".join)
ports = st.integers(1, 65535)


def test_split_host_accepts_names_addresses_and_ports():
    assert split_host("localhost") == ("localhost", None)
    assert split_host("LocalHost:8265") == ("localhost", 8265)
    assert split_host("127.0.0.1:80") == ("127.0.0.1", 80)
    assert split_host("[::1]") == ("::1", None)
    assert split_host("[::1]:8265") == ("::1", 8265)
    assert split_host("example.com.") == ("example.com", None)


def test_split_host_refuses_what_is_not_a_host():
    for bad in (None, "", " localhost", "localhost:", "localhost:0", "localhost:65536",
                "localhost:80:80", "user@localhost", "localhost/x", "[::1", "[nothex]",
                "[::1]x", "::1", "a..b", "-a.com", "locälhost", "localhost:８０"):  # fmt: skip
        assert split_host(bad) is None, bad


@given(host_names, st.one_of(st.none(), ports))
def test_split_host_round_trips_any_name_and_port(name, port):
    value = name if port is None else f"{name}:{port}"
    assert split_host(value) == (name, port)
    assert split_host(value.upper()) == (name, port)


@given(st.text(max_size=40))
def test_split_host_never_raises_and_answers_a_lowercase_name(value):
    parsed = split_host(value)
    if parsed is not None:
        assert parsed[0] == parsed[0].lower() and parsed[0]
        assert parsed[1] is None or 0 < parsed[1] < 65536


def test_only_the_names_the_dashboard_serves_pass():
    for host in ("localhost", "localhost:8265", "127.0.0.1:9000", "[::1]:8265", "LOCALHOST"):
        assert host_allowed(host, NAMES), host
    for host in (None, "", "evil.com", "localhost.evil.com", "127.0.0.2", "attacker:8265"):
        assert not host_allowed(host, NAMES), host
    mine = served_names("10.1.2.3", ["myhost", "fe80::1"])
    assert host_allowed("10.1.2.3:8265", mine) and host_allowed("myhost", mine)
    assert host_allowed("[fe80::1]:8265", mine) and not host_allowed("otherhost", mine)


@given(host_names.filter(lambda n: n not in NAMES), st.one_of(st.none(), ports))
def test_a_foreign_host_is_refused_with_any_port(name, port):
    assert not host_allowed(name if port is None else f"{name}:{port}", NAMES)


def test_origin_must_be_the_dashboards_own():
    host = "localhost:8265"
    assert origin_allowed(None, host, NAMES)  # not a browser: the token decides
    assert origin_allowed("http://localhost:8265", host, NAMES)
    assert origin_allowed("HTTP://LOCALHOST:8265", host, NAMES)
    assert origin_allowed("http://localhost", "localhost:80", NAMES)
    assert origin_allowed("https://localhost", "localhost:443", NAMES)
    for origin in ("null", "", "http://evil.com", "http://localhost:3000", "http://127.0.0.1:8265",
                   "file://", "ftp://localhost:8265", "http://localhost:8265/x",
                   "localhost:8265", "http://user@localhost:8265"):  # fmt: skip
        assert not origin_allowed(origin, host, NAMES), origin
    assert not origin_allowed("http://evil.com:8265", "evil.com:8265", NAMES)  # (rebinding)


@given(st.sampled_from(["http", "https"]), host_names, ports, ports)
def test_origin_of_another_site_or_port_is_refused(scheme, name, port, our_port):
    origin = f"{scheme}://{name}:{port}"
    allowed = origin_allowed(origin, f"localhost:{our_port}", NAMES)
    assert allowed == (name == "localhost" and port == our_port)


@given(st.text(max_size=60), st.one_of(st.none(), st.text(max_size=30)))
def test_origin_check_never_raises(origin, host):
    assert origin_allowed(origin, host, NAMES) in (True, False)


def test_token_missing_is_401_wrong_is_403_right_is_200():
    good = TOKEN.hex()
    assert check_token(None, None, TOKEN) == 401
    assert check_token(f"Bearer {good}", None, TOKEN) == 200
    assert check_token(f"bearer {good.upper()}", None, TOKEN) == 200
    assert check_token(f"Bearer {good[:-1]}0", None, TOKEN) == 403
    assert check_token("Bearer ünïcode", None, TOKEN) == 403
    assert check_token("Bearer ", None, TOKEN) == 401
    assert check_token(f"Basic {good}", None, TOKEN) == 401
    assert check_token(None, cookie_value(TOKEN), TOKEN) == 200
    assert check_token(None, good, TOKEN) == 403  # the cookie is not the token itself
    assert check_token(None, cookie_value(b"other"), TOKEN) == 403
    assert cookie_value(TOKEN) != good and len(cookie_value(TOKEN)) == 64


@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=80)))
def test_only_the_token_passes(authorization, cookie):
    status = check_token(authorization, cookie, TOKEN)
    assert status in (200, 401, 403)
    assert status != 200  # (random text is never the token nor its cookie)


def test_only_a_browser_opening_the_page_is_sent_to_login():
    assert wants_page("GET", "/", "text/html,application/xhtml+xml")
    assert wants_page("GET", "/graph", "text/html")
    assert not wants_page("GET", "/metrics", "text/html")
    assert not wants_page("GET", "/", "*/*")
    assert not wants_page("GET", "/api/nodes", "text/html")
    assert not wants_page("POST", "/", "text/html")


def test_a_routes_body_limit_is_the_first_matching_prefix_or_the_default():
    large = (("/api/packages/", 100, "MINRAY_RUNTIME_ENV_MAX_BYTES"),)
    assert body_limit("/api/packages/gcs/x.zip", 10, large) == (100, "MINRAY_RUNTIME_ENV_MAX_BYTES")
    assert body_limit("/api/jobs/", 10, large) == (10, "MINRAY_DASHBOARD_MAX_BODY_BYTES")
    assert body_limit("/api/packages", 10, large)[0] == 10

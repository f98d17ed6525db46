"""Per-client caps (the request rate, the event-stream slots) cannot be dodged by
changing how one client is spelled: behind a trusted proxy the client is the address
the proxy appended to ``X-Forwarded-For`` (a client writes what it likes before it),
and an IPv6 client is its /64, which one subscriber is routed whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from node.api.parts import ApiConfig
from node.api.ratelimit import client_of
from tests.api.harness import LiveNode

BEHIND_PROXY = ApiConfig(trust_forwarded_for=True)


def _client(forwarded: str | None, config: ApiConfig = BEHIND_PROXY) -> str:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    return client_of(make_mocked_request("GET", "/v1/status", headers=headers), config)


def test_the_proxy_s_own_entry_names_the_client() -> None:
    assert _client("198.51.100.1, 203.0.113.7") == _client("10.9.8.7, 203.0.113.7")
    assert _client("198.51.100.1, 203.0.113.7") == _client("203.0.113.7")
    assert _client("203.0.113.7") != _client("203.0.113.8")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:DB8:1:2::1", "2001:db8:1:2:0:0:0:1"),
    ],
)
def test_one_client_has_one_spelling(one: str, other: str) -> None:
    assert _client(one) == _client(other)
    assert _client("2001:db8:1:2::1") != _client("2001:db8:1:3::1")


def test_a_client_rotating_what_it_writes_is_still_rate_limited(tmp_path: Path) -> None:
    node = LiveNode(
        tmp_path, {"requests_per_s": 5.0, "burst_requests": 5, "trust_forwarded_for": True}
    )
    try:
        statuses = []
        for n in range(40):
            forged = f"198.51.100.{n}, 2001:db8:7:7::{n:x}"  # its own prefix, then the proxy's
            statuses.append(
                node.http("GET", "/v1/status", headers={"X-Forwarded-For": forged}).status
            )
        assert statuses.count(200) <= 10 and statuses.count(429) >= 30, statuses
        other = node.http("GET", "/v1/status", headers={"X-Forwarded-For": "2001:db8:8::1"})
        assert other.status == 200
    finally:
        node.close()

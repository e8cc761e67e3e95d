"""Rate limits: per key and scope, per tenant, failed authentications per address; in process
and shared through Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest
from verticals.core.auth import Principal
from verticals.core.errors import RateLimited
from verticals.core.serving.ratelimit import (
    MemoryBuckets,
    Rate,
    RateLimits,
    RedisBuckets,
    parse_rate,
    parse_rates,
)

REDIS_URL = os.environ.get("VERTICALS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({exc}); the shared limits go untested")


def test_rates_parse_with_a_default_and_per_scope_entries():
    assert parse_rate("50/second") == Rate(50, 1.0)
    assert parse_rate("600 / minutes") == Rate(600, 60.0)
    assert parse_rate("off") is None
    assert parse_rates("finance:score=500/second,default=50/second") == {
        "finance:score": Rate(500, 1.0),
        "default": Rate(50, 1.0),
    }
    assert parse_rates("20/hour") == {"default": Rate(20, 3600.0)}
    with pytest.raises(ValueError, match="malformed rate"):
        parse_rate("fast")


def test_a_bucket_allows_its_burst_then_refuses_and_says_when_to_return():
    async def run():
        buckets = MemoryBuckets()
        rate = Rate(3, 60.0)  # one token every 20 s
        decisions = [await buckets.take("k", rate) for _ in range(4)]
        return decisions

    decisions = asyncio.run(run())
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert 19 <= refused.retry_after_s <= 20
    assert refused.headers()["Retry-After"] == str(refused.retry_after_s)
    assert refused.headers()["RateLimit-Limit"] == "3"
    assert 59 <= int(refused.headers()["RateLimit-Reset"]) <= 60


def test_per_scope_rates_and_the_tenant_budget():
    limits = RateLimits(
        MemoryBuckets(),
        key_rates=parse_rates("finance:score=3/minute,default=1/minute"),
        tenant_rate=Rate(5, 60.0),
    )
    a = Principal(name="a", scopes=["*"], key_id=1, tenant="bank")
    b = Principal(name="b", scopes=["*"], key_id=2, tenant="bank")

    async def run():
        for _ in range(3):
            await limits.charge(a, ["finance:score"])
        with pytest.raises(RateLimited) as scored:
            await limits.charge(a, ["finance:score"])
        await limits.charge(a, ["finance:review"])  # its own (default) bucket
        with pytest.raises(RateLimited):
            await limits.charge(a, [])
        await limits.charge(b, [])  # another key, same tenant: 5th request of the tenant
        with pytest.raises(RateLimited) as tenant:
            await limits.charge(b, ["finance:score"])
        return scored.value, tenant.value

    scored, tenant = asyncio.run(run())
    assert scored.status_code == 429 and scored.details["scope"] == "finance:score"
    assert tenant.details["scope"] == "tenant"
    assert "Retry-After" in tenant.headers


@pytest.fixture
def limited_app(db, monkeypatch):
    """An app of the echo plugin alone under tight limits: 5 requests a minute per key."""
    from fastapi.testclient import TestClient
    from verticals.core.config import Settings
    from verticals.core.plugins import discover
    from verticals.core.serving.app import build_app

    def build(**overrides):
        plugins = discover(include_test_plugins=True)
        plugins.domains = {"echo": plugins.domains["echo"]}
        settings = Settings(
            **{
                "rate_limit": "5/minute",
                "tenant_rate_limit": "off",
                "auth_failure_limit": "10/minute",
                **overrides,
            }
        )
        return TestClient(
            build_app(plugins, max_request_bytes=1 << 20, settings=settings),
            raise_server_exceptions=False,
        )

    return build


def test_a_runaway_key_meets_429_with_the_error_body_and_headers(limited_app, make_key):
    key, other = make_key(["echo:score"]), make_key(["echo:score"])
    body = {"values": [1, 2, 3]}
    with limited_app() as client:
        answers = [client.post("/v1/echo/score", json=body, headers=_auth(key)) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        first, refused = answers[0], answers[-1]
        assert first.headers["RateLimit-Limit"] == "5"
        assert first.headers["RateLimit-Remaining"] == "4"
        assert refused.json()["error"]["code"] == "rate_limited"
        assert set(refused.json()["error"]) == {"code", "message", "details"}
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert int(refused.headers["RateLimit-Reset"]) > 0
        # another key keeps its own budget
        assert client.post("/v1/echo/score", json=body, headers=_auth(other)).status_code == 200


def test_300_wrong_keys_from_one_address_meet_429_and_a_known_key_still_works(
    limited_app, make_key
):
    key = make_key(["echo:score"])
    body = {"values": [1, 2, 3]}
    with limited_app() as client:
        assert client.post("/v1/echo/score", json=body, headers=_auth(key)).status_code == 200
        codes = [
            client.post("/v1/echo/score", json=body, headers=_auth(f"vk_guess{i}")).status_code
            for i in range(300)
        ]
        assert codes[:10] == [401] * 10
        assert set(codes[10:]) == {429}
        locked = client.post("/v1/echo/score", json=body, headers=_auth("vk_another"))
        assert locked.json()["error"]["details"]["scope"] == "authentication"
        assert "Retry-After" in locked.headers
        # the key this address authenticated with before is known: it is not locked out
        assert client.post("/v1/echo/score", json=body, headers=_auth(key)).status_code == 200


def test_redis_buckets_are_one_budget_for_two_apps(limited_app, make_key):
    _redis_or_skip()
    key = make_key(["echo:score"])
    body = {"values": [1, 2, 3]}
    prefix_url = REDIS_URL
    with limited_app(redis_url=prefix_url) as one, limited_app(redis_url=prefix_url) as two:
        # a fresh namespace per run: the tests share the Redis server with other runs
        namespace = f"verticals:test:{uuid.uuid4().hex}:"
        for client in (one, two):
            client.app.state.rate_limits.buckets.prefix = namespace
        codes = [
            (one if i % 2 else two).post("/v1/echo/score", json=body, headers=_auth(key))
            for i in range(6)
        ]
    assert [c.status_code for c in codes] == [200] * 5 + [429]
    assert codes[-1].headers["RateLimit-Limit"] == "5"


_WORKER = """
import asyncio, sys
from verticals.core.serving.ratelimit import Rate, RedisBuckets
async def main():
    buckets = RedisBuckets(sys.argv[1], prefix=sys.argv[2])
    allowed = 0
    for _ in range(int(sys.argv[3])):
        allowed += (await buckets.take("shared", Rate(50, 3600.0))).allowed
    print(allowed)
asyncio.run(main())
"""


def test_two_processes_share_one_redis_budget():
    _redis_or_skip()
    prefix = f"verticals:test:{uuid.uuid4().hex}:"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, REDIS_URL, prefix, "40"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    allowed = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(allowed) == 50  # 80 attempts on a budget of 50, from two processes


def test_an_unreachable_redis_lets_requests_through():
    async def run():
        buckets = RedisBuckets("redis://127.0.0.1:1/0")
        return await buckets.take("k", Rate(1, 60.0))

    assert asyncio.run(run()).allowed


def test_a_route_draws_on_the_bucket_of_the_scope_it_requires(limited_app, make_key):
    key = make_key(["echo:*"])
    with limited_app(rate_limit="echo:score=2/minute,default=5/minute") as client:
        scored = [
            client.post("/v1/echo/score", json={"values": [1, 2, 3]}, headers=_auth(key))
            for _ in range(3)
        ]
        listed = client.get("/v1/echo/notes", headers=_auth(key))
    assert [r.status_code for r in scored] == [200, 200, 429]
    assert scored[0].headers["RateLimit-Limit"] == "2"
    assert scored[2].json()["error"]["details"]["scope"] == "echo:score"
    assert listed.status_code == 200 and listed.headers["RateLimit-Limit"] == "5"

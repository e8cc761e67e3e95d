"""Token-bucket rate limits: per API key (optionally per scope), per tenant, and per client
address for failed authentications.

A rate reads ``N/second`` (or ``minute``, ``hour``, ``day``): a bucket of ``N`` tokens, refilled
at ``N`` per period, so a client may burst ``N`` requests and then sustain the rate. A spec maps
scopes to rates: ``finance:score=500/second,default=100/second`` (a bare rate is the default);
``off`` disables a limit.

Buckets live in this process by default. With a Redis URL they live in Redis, updated by one Lua
script per request (atomic: every process and replica draws on the same budget, on Redis's
clock). When Redis cannot be reached the request is let through and the failure logged: a limit
that guards against runaway clients must not take the API down with it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from verticals.core.auth import Principal
from verticals.core.errors import RateLimited

log = logging.getLogger("verticals.ratelimit")

DEFAULT_SCOPE = "default"
_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")
_OFF = {"", "off", "none", "unlimited"}


@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``period_s`` seconds, with a burst of ``limit``."""

    limit: int
    period_s: float

    @property
    def per_second(self) -> float:
        return self.limit / self.period_s

    def __str__(self) -> str:
        unit = next((u for u, s in _PERIODS.items() if s == self.period_s), f"{self.period_s}s")
        return f"{self.limit}/{unit}"


def parse_rate(text: str) -> Rate | None:
    """``"50/second"`` → Rate(50, 1.0); ``"off"`` → None (no limit)."""
    if text.strip().lower() in _OFF:
        return None
    match = _RATE.match(text.lower())
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"malformed rate {text!r}: expected 'N/second' (minute, hour, day) or 'off'"
        )
    return Rate(int(match.group(1)), _PERIODS[match.group(2)])


def parse_rates(text: str) -> dict[str, Rate | None]:
    """``"finance:score=500/second,default=50/second"`` → a rate per scope; a bare rate is the
    default. Scopes without an entry fall back to ``default`` (unlimited when there is none)."""
    rates: dict[str, Rate | None] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        scope, sep, rate = part.rpartition("=")
        rates[scope.strip() if sep else DEFAULT_SCOPE] = parse_rate(rate)
    return rates


@dataclass(frozen=True)
class Decision:
    """One bucket's answer: allowed or not, and what the ``RateLimit-*`` headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the bucket is full again
    retry_after_s: int  # seconds until one request is allowed (0 when allowed now)

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


def _decide(allowed: bool, tokens: float, rate: Rate) -> Decision:
    return Decision(
        allowed=allowed,
        limit=rate.limit,
        remaining=max(0, math.floor(tokens)),
        reset_s=math.ceil(max(0.0, rate.limit - tokens) / rate.per_second),
        retry_after_s=0 if allowed else max(1, math.ceil((1 - tokens) / rate.per_second)),
    )


class Buckets(Protocol):
    async def take(self, name: str, rate: Rate, cost: int = 1) -> Decision:
        """Take ``cost`` tokens from bucket ``name`` if it holds them; ``cost=0`` only looks
        (allowed when at least one token is left)."""
        ...


class MemoryBuckets:
    """Buckets in this process. Full buckets are forgotten once there are many."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}  # name -> (tokens, monotonic time)
        self._max = max_buckets

    async def take(self, name: str, rate: Rate, cost: int = 1) -> Decision:
        now = time.monotonic()
        with self._lock:
            tokens, then = self._state.get(name, (float(rate.limit), now))
            tokens = min(float(rate.limit), tokens + (now - then) * rate.per_second)
            allowed = tokens >= max(cost, 1)
            if allowed and cost:
                tokens -= cost
            if cost:
                self._state[name] = (tokens, now)
                if len(self._state) > self._max:
                    self._forget_full(now, rate)
        return _decide(allowed, tokens, rate)

    def _forget_full(self, now: float, rate: Rate) -> None:
        stale = now - rate.period_s
        for name in [n for n, (_, t) in self._state.items() if t < stale]:
            del self._state[name]


# KEYS[1]: the bucket; ARGV: capacity, tokens per second, cost. Returns {allowed, tokens}.
# Redis's own clock, so processes on different machines agree on time.
_TAKE = """
local capacity = tonumber(ARGV[1])
local per_second = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_second)
local allowed = 0
if tokens >= math.max(cost, 1) then
  allowed = 1
  tokens = tokens - cost
end
if cost > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_second * 1000) + 1000)
end
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Buckets in Redis, shared by every process using the same URL and ``prefix``."""

    def __init__(self, url: str, prefix: str = "verticals:ratelimit:") -> None:
        self.url = url
        self.prefix = prefix
        # One client (and its registered script) per event loop: connections bind to a loop.
        self._clients: dict[int, tuple[Any, Any]] = {}
        self._last_error_log = 0.0

    def _script(self) -> Any:
        import redis.asyncio as aioredis

        loop_id = id(asyncio.get_running_loop())
        entry = self._clients.get(loop_id)
        if entry is None:
            client = aioredis.Redis.from_url(
                self.url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
            entry = (client, client.register_script(_TAKE))
            self._clients = {loop_id: entry}  # a new loop (a restarted test app) replaces it
        return entry[1]

    async def take(self, name: str, rate: Rate, cost: int = 1) -> Decision:
        import redis

        try:
            take = self._script()
            allowed, tokens = await take(
                keys=[self.prefix + name], args=[rate.limit, rate.per_second, cost]
            )
        except (redis.RedisError, OSError) as exc:
            now = time.monotonic()
            if now - self._last_error_log > 10:
                self._last_error_log = now
                log.warning("rate limits not enforced: Redis unreachable (%s)", exc)
            return _decide(True, float(rate.limit), rate)
        return _decide(bool(allowed), float(tokens), rate)


def _who(principal: Principal) -> str:
    if principal.key_id is not None:
        return f"key:{principal.key_id}"
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    return f"name:{principal.name}"


class RateLimits:
    """The API's limits: charged once per request after authentication, and on each failed
    authentication."""

    def __init__(
        self,
        buckets: Buckets,
        *,
        key_rates: dict[str, Rate | None],
        tenant_rate: Rate | None = None,
        auth_failure_rate: Rate | None = None,
    ) -> None:
        self.buckets = buckets
        self.key_rates = key_rates
        self.tenant_rate = tenant_rate
        self.auth_failure_rate = auth_failure_rate

    @classmethod
    def from_settings(cls, settings: Any) -> RateLimits:
        """From :class:`verticals.core.config.Settings` (``rate_limit``, ``tenant_rate_limit``,
        ``auth_failure_limit``, ``redis_url``)."""
        buckets: Buckets = (
            RedisBuckets(settings.redis_url) if settings.redis_url else MemoryBuckets()
        )
        return cls(
            buckets,
            key_rates=parse_rates(settings.rate_limit),
            tenant_rate=parse_rate(settings.tenant_rate_limit),
            auth_failure_rate=parse_rate(settings.auth_failure_limit),
        )

    def rate_for(self, scopes: Sequence[str]) -> tuple[str, Rate | None]:
        """The bucket a request needing ``scopes`` draws on: the first with its own rate,
        else ``default``."""
        for scope in scopes:
            if scope in self.key_rates:
                return scope, self.key_rates[scope]
        return DEFAULT_SCOPE, self.key_rates.get(DEFAULT_SCOPE)

    async def charge(self, principal: Principal, scopes: Sequence[str]) -> Decision | None:
        """One request of ``principal``; raises :class:`RateLimited` (429) when its key's or
        its tenant's bucket is empty. Returns the key bucket's decision (for the headers)."""
        bucket, rate = self.rate_for(scopes)
        decision = None
        if rate is not None:
            decision = await self.buckets.take(f"{_who(principal)}:{bucket}", rate)
            if not decision.allowed:
                raise RateLimited(
                    f"rate limit of {rate} exceeded for this API key",
                    {"scope": bucket, "limit": str(rate), "retry_after_s": decision.retry_after_s},
                    headers=decision.headers(),
                )
        if self.tenant_rate is not None:
            shared = await self.buckets.take(f"tenant:{principal.tenant}", self.tenant_rate)
            if not shared.allowed:
                raise RateLimited(
                    f"rate limit of {self.tenant_rate} exceeded for this tenant",
                    {
                        "scope": "tenant",
                        "limit": str(self.tenant_rate),
                        "retry_after_s": shared.retry_after_s,
                    },
                    headers=shared.headers(),
                )
        return decision

    async def check_address(self, address: str) -> None:
        """Before a key is looked up: 429 if ``address`` has spent its failed attempts."""
        if self.auth_failure_rate is None:
            return
        decision = await self.buckets.take(f"authfail:{address}", self.auth_failure_rate, cost=0)
        if not decision.allowed:
            raise self._locked_out(decision)

    async def failed(self, address: str) -> None:
        """One failed authentication from ``address``."""
        if self.auth_failure_rate is not None:
            await self.buckets.take(f"authfail:{address}", self.auth_failure_rate)

    def _locked_out(self, decision: Decision) -> RateLimited:
        return RateLimited(
            f"too many failed authentications from this address; limit {self.auth_failure_rate}",
            {
                "scope": "authentication",
                "limit": str(self.auth_failure_rate),
                "retry_after_s": decision.retry_after_s,
            },
            headers=decision.headers(),
        )

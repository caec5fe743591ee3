"""Per-key token-bucket rate limiting (per client IP for anonymous calls): 429 + Retry-After.

Buckets live in process memory: right for the embedded single-process default. The key is a hash
of the presented bearer token, so limiting needs no database read and bad tokens are limited too.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from backend.http.errors import TooManyRequests
from backend.http.handlers import send_error

_PRUNE_EVERY = 1024


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(self, *, per_minute: int, burst: int) -> None:
        if per_minute <= 0 or burst <= 0:
            raise ValueError("rate limits must be positive")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}
        self._calls = 0

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        self._calls += 1
        if self._calls % _PRUNE_EVERY == 0:
            self._prune(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=self.burst, updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}


def client_key(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return "key:" + hashlib.sha256(value[7:].strip()).hexdigest()
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


class RateLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, buckets: TokenBuckets, exempt_paths: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.exempt_paths = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_paths):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(client_key(scope))
        if wait > 0:
            error = TooManyRequests(
                "Rate limit exceeded. Retry after the number of seconds in Retry-After.",
                retry_after_seconds=math.ceil(wait),
            )
            await send_error(error, scope, receive, send)
            return
        await self.app(scope, receive, send)

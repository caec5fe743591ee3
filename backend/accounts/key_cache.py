"""Recently verified API keys, so an authenticated request costs no database read for its key.

Every request presents its key, and reading the key's row each time was the largest part of a
cheap call's cost. A good key is remembered for `ttl_seconds`, by the SHA-256 the database stores
(never the secret itself). Revoking a key in this process forgets it at once; a revocation made
by another process (another gateway replica, the CLI) reaches this one within the TTL. Money never
waits for that: the transaction that holds a job's price checks the key again
(backend/jobs/enqueue.py). Unknown keys are not remembered, so a new key works at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from backend.accounts.service import Principal, api_keys, hash_secret
from backend.db.engine import Database


@dataclass(frozen=True)
class _Remembered:
    principal: Principal
    until: float


class KeyCache:
    def __init__(self, *, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, _Remembered] = {}

    async def principal(self, db: Database, secret: str) -> Principal | None:
        """The key's principal, or None for an unknown or revoked key."""
        digest = hash_secret(secret)
        now = time.monotonic()
        remembered = self._entries.get(digest)
        if remembered is not None and remembered.until > now:
            return remembered.principal
        async with db.transaction(write=False) as session:
            found = await api_keys.authenticate(session, secret)
        if found is None:
            self._entries.pop(digest, None)
            return None
        principal, last_used_stale = found
        if last_used_stale:
            async with db.transaction() as session:
                await api_keys.touch(session, principal.api_key_id)
        self._remember(digest, _Remembered(principal, now + self.ttl_seconds), now)
        return principal

    def forget(self, api_key_id: str) -> None:
        """Drop a key revoked in this process, so its next request is refused."""
        self._entries = {
            digest: remembered
            for digest, remembered in self._entries.items()
            if remembered.principal.api_key_id != api_key_id
        }

    def _remember(self, digest: str, remembered: _Remembered, now: float) -> None:
        if self.ttl_seconds <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries = {d: r for d, r in self._entries.items() if r.until > now}
        if len(self._entries) < self.max_entries:
            self._entries[digest] = remembered

"""Verified keys are remembered for a while; revoking in this process forgets them at once."""

from __future__ import annotations

from backend.accounts.key_cache import KeyCache
from backend.accounts.service import api_keys
from backend.db.engine import Database
from tests.conftest import make_customer


async def revoke_elsewhere(db: Database, account_id: str) -> str:
    """Revoke the account's key straight in the database, as another process would."""
    async with db.transaction() as session:
        (key,) = await api_keys.list(session, account_id)
        await api_keys.revoke(session, account_id, key.id)
    return key.id


async def test_a_good_key_is_remembered_until_forgotten(db: Database) -> None:
    customer = await make_customer(db)
    cache = KeyCache(ttl_seconds=60)
    principal = await cache.principal(db, customer.api_key)
    assert principal is not None
    assert principal.account_id == customer.account_id

    key_id = await revoke_elsewhere(db, customer.account_id)
    assert await cache.principal(db, customer.api_key) == principal  # within the TTL
    cache.forget(key_id)
    assert await cache.principal(db, customer.api_key) is None


async def test_without_a_ttl_every_request_reads_the_key(db: Database) -> None:
    customer = await make_customer(db)
    cache = KeyCache(ttl_seconds=0)
    assert await cache.principal(db, customer.api_key) is not None
    await revoke_elsewhere(db, customer.account_id)
    assert await cache.principal(db, customer.api_key) is None


async def test_unknown_keys_are_not_remembered(db: Database) -> None:
    cache = KeyCache(ttl_seconds=60)
    assert await cache.principal(db, "kt_live_not-a-key") is None
    customer = await make_customer(db)
    assert await cache.principal(db, customer.api_key) is not None


async def test_a_full_cache_drops_expired_keys_and_stops_remembering(db: Database) -> None:
    first, second = await make_customer(db), await make_customer(db)
    cache = KeyCache(ttl_seconds=60, max_entries=1)
    assert await cache.principal(db, first.api_key) is not None
    assert await cache.principal(db, second.api_key) is not None  # answered, not remembered
    await revoke_elsewhere(db, second.account_id)
    assert await cache.principal(db, second.api_key) is None

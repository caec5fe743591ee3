"""Account and key rules below the HTTP edge."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.accounts.models import ApiKey
from backend.accounts.service import AccountExists, accounts, api_keys, hash_secret
from backend.db.engine import Database
from backend.http.errors import BadRequest


async def test_emails_are_normalised_and_unique(db: Database) -> None:
    async with db.transaction() as session:
        account = await accounts.create(session, "  Ada@Example.COM ")
    assert account.email == "ada@example.com"
    with pytest.raises(AccountExists):
        async with db.transaction() as session:
            await accounts.create(session, "ada@example.com")


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@nodot", "a b@c.de"])
async def test_invalid_emails_are_refused(db: Database, email: str) -> None:
    with pytest.raises(BadRequest):
        async with db.transaction() as session:
            await accounts.create(session, email)


async def test_only_the_hash_of_a_key_is_stored(db: Database) -> None:
    async with db.transaction() as session:
        account = await accounts.create(session, "hash@example.com")
        issued = await api_keys.issue(session, account.id, label=None)
    async with db.transaction(write=False) as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.id == issued.key.id))
    assert row is not None
    assert row.secret_hash == hash_secret(issued.secret)
    assert issued.secret not in {row.secret_hash, row.prefix, row.label}


async def test_the_writer_sees_which_keys_of_a_batch_are_still_active(db: Database) -> None:
    async with db.transaction() as session:
        account = await accounts.create(session, "keys@example.com")
        issued = [await api_keys.issue(session, account.id, label=None) for _ in range(3)]
        await api_keys.revoke(session, account.id, issued[1].key.id)
    ids = [key.key.id for key in issued]

    active = await db.run_in_writer(lambda connection: api_keys.active_ids(connection, ids))

    assert active == {ids[0], ids[2]}
    unknown = await db.run_in_writer(lambda c: api_keys.active_ids(c, ["key_never_issued"]))
    assert unknown == set()

"""Ledger operations one by one, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.db.engine import Database
from backend.ledger.models import LedgerTransaction
from backend.ledger.service import (
    HoldAlreadySettled,
    IdempotencyKeyReused,
    InsufficientFunds,
    LedgerError,
    ledger,
    request_fingerprint,
)
from tests.conftest import make_customer
from tests.ledger.invariants import invariant_violations


async def test_credit_hold_capture_release_move_the_right_amounts(db: Database) -> None:
    customer = await make_customer(db, usd_micros=5_000_000)
    async with db.transaction() as session:
        first = await ledger.hold(
            session, customer.account_id, 2_000_000, reference="job:1", actor="t"
        )
        second = await ledger.hold(
            session, customer.account_id, 1_000_000, reference="job:2", actor="t"
        )
        balance = await ledger.balance(session, customer.account_id)
    assert (balance.balance_micros, balance.held_micros, balance.available_micros) == (
        5_000_000,
        3_000_000,
        2_000_000,
    )
    async with db.transaction() as session:
        await ledger.capture(session, first.id, 1_500_000, actor="t")
        await ledger.release(session, second.id, actor="t", reason="job failed")
        balance = await ledger.balance(session, customer.account_id)
        assert await invariant_violations(session) == []
    assert (balance.balance_micros, balance.held_micros) == (3_500_000, 0)


async def test_hold_refuses_more_than_available_and_reports_both_amounts(db: Database) -> None:
    customer = await make_customer(db, usd_micros=1_000_000)
    with pytest.raises(InsufficientFunds) as refused:
        async with db.transaction() as session:
            await ledger.hold(session, customer.account_id, 1_000_001, reference="job", actor="t")
    assert refused.value.status == 402
    assert refused.value.details["requiredMicros"] == 1_000_001
    assert refused.value.details["availableMicros"] == 1_000_000
    async with db.transaction(write=False) as session:
        assert (await ledger.balance(session, customer.account_id)).held_micros == 0


async def test_a_hold_ends_exactly_once(db: Database) -> None:
    customer = await make_customer(db, usd_micros=1_000_000)
    async with db.transaction() as session:
        hold = await ledger.hold(session, customer.account_id, 500_000, reference="job", actor="t")
    async with db.transaction() as session:
        await ledger.release(session, hold.id, actor="t", reason="canceled")
    for settle in (
        lambda s: ledger.release(s, hold.id, actor="t", reason="again"),
        lambda s: ledger.capture(s, hold.id, actor="t"),
    ):
        with pytest.raises(HoldAlreadySettled):
            async with db.transaction() as session:
                await settle(session)
    async with db.transaction(write=False) as session:
        assert (await ledger.balance(session, customer.account_id)).available_micros == 1_000_000


async def test_capture_cannot_exceed_the_hold(db: Database) -> None:
    customer = await make_customer(db, usd_micros=1_000_000)
    async with db.transaction() as session:
        hold = await ledger.hold(session, customer.account_id, 300_000, reference="job", actor="t")
    with pytest.raises(LedgerError):
        async with db.transaction() as session:
            await ledger.capture(session, hold.id, 300_001, actor="t")
    async with db.transaction() as session:
        settled = await ledger.capture(session, hold.id, 300_000, actor="t")
    assert settled.status == "captured"


async def test_credit_with_a_repeated_external_reference_credits_nothing(db: Database) -> None:
    customer = await make_customer(db)
    for _ in range(2):
        async with db.transaction() as session:
            result = await ledger.credit(
                session,
                customer.account_id,
                2_000_000,
                source="stripe",
                external_ref="stripe:cs_test_1",
                actor="webhook",
                reason="checkout paid",
            )
    assert result.replayed
    async with db.transaction(write=False) as session:
        assert (await ledger.balance(session, customer.account_id)).balance_micros == 2_000_000


async def test_every_movement_has_an_audit_row(db: Database) -> None:
    customer = await make_customer(db, usd_micros=1_000_000)
    async with db.transaction() as session:
        hold = await ledger.hold(
            session, customer.account_id, 100_000, reference="job:9", actor="jobs"
        )
        await ledger.capture(session, hold.id, 40_000, actor="worker")
    async with db.transaction(write=False) as session:
        rows = (
            await session.scalars(
                select(LedgerTransaction)
                .where(LedgerTransaction.owner_id == customer.account_id)
                .order_by(LedgerTransaction.created_at)
            )
        ).all()
    assert [(r.kind, r.amount_micros, r.actor) for r in rows] == [
        ("credit", 1_000_000, "test"),
        ("hold", 100_000, "jobs"),
        ("capture", 40_000, "worker"),
    ]
    assert all(r.reason for r in rows)


async def test_idempotency_replays_the_first_response_and_refuses_another_body(
    db: Database,
) -> None:
    customer = await make_customer(db)
    first = request_fingerprint("media.jobs", {"task": "image.generate", "prompt": "a cat"})
    other = request_fingerprint("media.jobs", {"task": "image.generate", "prompt": "a dog"})
    async with db.transaction() as session:
        assert (
            await ledger.replay(
                session, customer.account_id, scope="media.jobs", key="k1", fingerprint=first
            )
            is None
        )
        await ledger.remember(
            session,
            customer.account_id,
            scope="media.jobs",
            key="k1",
            fingerprint=first,
            status_code=201,
            body={"externalJobId": "job_1"},
        )
    async with db.transaction() as session:
        stored = await ledger.replay(
            session, customer.account_id, scope="media.jobs", key="k1", fingerprint=first
        )
    assert stored is not None
    assert (stored.status_code, stored.body) == (201, {"externalJobId": "job_1"})
    with pytest.raises(IdempotencyKeyReused) as reused:
        async with db.transaction() as session:
            await ledger.replay(
                session, customer.account_id, scope="media.jobs", key="k1", fingerprint=other
            )
    assert reused.value.status == 409


async def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert request_fingerprint("s", {"a": 1, "b": 2}) == request_fingerprint("s", {"b": 2, "a": 1})
    assert request_fingerprint("s", {"a": 1}) != request_fingerprint("s", {"a": 2})
    assert request_fingerprint("s", {"a": 1}) != request_fingerprint("t", {"a": 1})

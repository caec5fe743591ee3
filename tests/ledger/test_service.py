"""Ledger operations one by one, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.db.engine import Database
from backend.ledger.models import LedgerTransaction
from backend.ledger.service import (
    HoldAlreadySettled,
    HoldRef,
    HoldRequest,
    IdempotencyKeyReused,
    IdempotentResponse,
    InsufficientFunds,
    LedgerError,
    ledger,
    request_fingerprint,
)
from tests.conftest import make_customer
from tests.ledger.holds import take_hold
from tests.ledger.invariants import invariant_violations


async def test_credit_hold_capture_release_move_the_right_amounts(db: Database) -> None:
    customer = await make_customer(db, usd_micros=5_000_000)
    first = await take_hold(db, customer.account_id, 2_000_000, reference="job:1")
    second = await take_hold(db, customer.account_id, 1_000_000, reference="job:2")
    async with db.transaction(write=False) as session:
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
        await take_hold(db, customer.account_id, 1_000_001)
    assert refused.value.status == 402
    assert refused.value.details["requiredMicros"] == 1_000_001
    assert refused.value.details["availableMicros"] == 1_000_000
    async with db.transaction(write=False) as session:
        assert (await ledger.balance(session, customer.account_id)).held_micros == 0


async def test_a_hold_ends_exactly_once(db: Database) -> None:
    customer = await make_customer(db, usd_micros=1_000_000)
    hold = await take_hold(db, customer.account_id, 500_000)
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
    hold = await take_hold(db, customer.account_id, 300_000)
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
    hold = await take_hold(db, customer.account_id, 100_000, reference="job:9", actor="jobs")
    async with db.transaction() as session:
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
    response = IdempotentResponse(
        owner_id=customer.account_id,
        scope="media.jobs",
        key="k1",
        fingerprint=first,
        status_code=201,
        body={"externalJobId": "job_1"},
    )
    await db.run_in_writer(lambda c: ledger.remember_many(c, [response]))
    # The unique key refuses a second first response, whatever its body.
    with pytest.raises(IntegrityError):
        await db.run_in_writer(lambda c: ledger.remember_many(c, [response]))
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


async def test_a_batch_of_holds_refuses_only_what_no_longer_fits(db: Database) -> None:
    """One writer transaction, two accounts: each hold is checked against what the earlier
    holds of the same batch left, and a refusal moves nothing while the others go through."""
    rich = await make_customer(db, usd_micros=1_000_000)
    poor = await make_customer(db, usd_micros=250_000)
    asks = [
        (poor, 100_000),
        (rich, 600_000),
        (poor, 100_000),
        (poor, 100_000),  # 50,000 left: refused
        (rich, 600_000),  # 400,000 left: refused
        (poor, 50_000),  # fits exactly
    ]
    requests = [
        HoldRequest(customer.account_id, amount, f"job:{i}", "t")
        for i, (customer, amount) in enumerate(asks)
    ]
    outcomes = await db.run_in_writer(lambda c: ledger.hold_many(c, requests))

    refused = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, InsufficientFunds)]
    assert refused == [3, 4]
    assert outcomes[3].details["availableMicros"] == 50_000  # type: ignore[union-attr]
    assert outcomes[4].details["availableMicros"] == 400_000  # type: ignore[union-attr]
    last = outcomes[5]
    assert isinstance(last, HoldRef)
    assert (last.balance_after.held_micros, last.balance_after.available_micros) == (250_000, 0)
    async with db.transaction(write=False) as session:
        assert (await ledger.balance(session, poor.account_id)).available_micros == 0
        assert (await ledger.balance(session, rich.account_id)).held_micros == 600_000
        assert await invariant_violations(session) == []


async def test_a_negative_hold_fails_the_whole_batch_and_moves_nothing(db: Database) -> None:
    customer = await make_customer(db, usd_micros=1_000_000)
    requests = [
        HoldRequest(customer.account_id, 10_000, "job:1", "t"),
        HoldRequest(customer.account_id, -1, "job:2", "t"),
    ]
    with pytest.raises(ValueError, match="negative"):
        await db.run_in_writer(lambda c: ledger.hold_many(c, requests))
    async with db.transaction(write=False) as session:
        assert (await ledger.balance(session, customer.account_id)).held_micros == 0

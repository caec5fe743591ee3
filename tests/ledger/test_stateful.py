"""Random credit/hold/capture/release sequences keep every ledger invariant (Hypothesis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from backend.db.engine import Database
from backend.ledger.service import HoldAlreadySettled, InsufficientFunds, ledger
from tests.conftest import make_customer
from tests.ledger.holds import take_hold
from tests.ledger.invariants import invariant_violations

T = TypeVar("T")
amounts = st.integers(min_value=0, max_value=5_000_000)


def make_machine(database_url: str) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        open_holds = Bundle("open_holds")
        ended_holds = Bundle("ended_holds")

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.db = Database(database_url)
            self.available = 0
            self.held: dict[str, int] = {}

        def run(self, work: Callable[[], Awaitable[T]]) -> T:
            return self.loop.run_until_complete(work())

        def in_transaction(self, work: Callable[..., Awaitable[T]]) -> T:
            async def go() -> T:
                async with self.db.transaction() as session:
                    return await work(session)

            return self.run(go)

        @initialize()
        def open_account(self) -> None:
            self.account_id = self.run(lambda: make_customer(self.db)).account_id

        @rule(amount=amounts.filter(lambda a: a > 0))
        def credit(self, amount: int) -> None:
            self.in_transaction(
                lambda s: ledger.credit(
                    s,
                    self.account_id,
                    amount,
                    source="grant",
                    external_ref=f"prop:{uuid.uuid4()}",
                    actor="hypothesis",
                    reason="random credit",
                )
            )
            self.available += amount

        @rule(target=open_holds, amount=amounts)
        def hold(self, amount: int) -> str | None:
            try:
                hold = self.run(
                    lambda: take_hold(
                        self.db, self.account_id, amount, reference="prop", actor="hypothesis"
                    )
                )
            except InsufficientFunds:
                assert amount > self.available
                return None
            assert amount <= self.available
            self.available -= amount
            self.held[hold.id] = amount
            return hold.id

        @rule(target=ended_holds, hold_id=consumes(open_holds), share=st.fractions(0, 1))
        def capture(self, hold_id: str | None, share: object) -> str | None:
            if hold_id is None:
                return None
            amount = self.held.pop(hold_id)
            taken = int(amount * share)  # type: ignore[operator]
            self.in_transaction(lambda s: ledger.capture(s, hold_id, taken, actor="hypothesis"))
            self.available += amount - taken
            return hold_id

        @rule(target=ended_holds, hold_id=consumes(open_holds))
        def release(self, hold_id: str | None) -> str | None:
            if hold_id is None:
                return None
            self.available += self.held.pop(hold_id)
            self.in_transaction(
                lambda s: ledger.release(s, hold_id, actor="hypothesis", reason="random")
            )
            return hold_id

        @rule(hold_id=ended_holds, capture_instead=st.booleans())
        def settle_again(self, hold_id: str | None, capture_instead: bool) -> None:
            if hold_id is None:
                return
            with pytest.raises(HoldAlreadySettled):
                self.in_transaction(
                    lambda s: (
                        ledger.capture(s, hold_id, actor="hypothesis")
                        if capture_instead
                        else ledger.release(s, hold_id, actor="hypothesis", reason="again")
                    )
                )

        @invariant()
        def matches_the_model_and_the_books_balance(self) -> None:
            async def check() -> tuple[int, int, list[str]]:
                async with self.db.transaction(write=False) as session:
                    balance = await ledger.balance(session, self.account_id)
                    return (
                        balance.available_micros,
                        balance.held_micros,
                        await invariant_violations(session),
                    )

            if not hasattr(self, "account_id"):
                return
            available, held, problems = self.run(check)
            assert problems == []
            assert available == self.available >= 0
            assert held == sum(self.held.values())

        def teardown(self) -> None:
            self.run(self.db.dispose)
            self.loop.close()

    return LedgerMachine


def test_random_ledger_sequences_keep_the_invariants(database_url: str, backend_kind: str) -> None:
    machine = make_machine(database_url)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40 if backend_kind == "sqlite" else 15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )

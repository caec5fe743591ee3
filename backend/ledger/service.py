"""The only code that moves money.

Every movement is one `LedgerTransaction` (the audit row) with entries that sum to zero, written
in the caller's transaction by one function. Services flush; the caller's `Database.transaction()`
commits. Holds are written in batches on the writer's plain connection (`hold_many`), because a
submit's hold rides in a group-committed transaction (backend/db/group_commit.py); its commit is
`Database.run_in_writer`'s. Amounts are integer USD micros.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.base import utcnow
from backend.db.bulk import BulkIncrement, BulkInsert, BulkWrites
from backend.db.ids import new_id
from backend.http.errors import Conflict, GatewayError, NotFound, PaymentRequired
from backend.ledger.models import (
    Hold,
    IdempotencyRecord,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from backend.ledger.money import format_usd, format_usd_display

AVAILABLE = "available"
HELD = "held"
REVENUE_ACCOUNT = "house:revenue"


class LedgerError(GatewayError):
    status = 500
    code = "LEDGER_ERROR"


class InsufficientFunds(PaymentRequired):
    def __init__(self, *, required: int, available: int) -> None:
        super().__init__(
            f"Insufficient balance: this costs {format_usd_display(required)}, "
            f"available {format_usd_display(available)}. Top up your balance and retry.",
            details={
                "requiredMicros": required,
                "required": format_usd(required),
                "availableMicros": available,
                "available": format_usd(available),
                "shortfallMicros": required - available,
            },
        )


class HoldNotFound(NotFound):
    code = "HOLD_NOT_FOUND"


class HoldAlreadySettled(Conflict):
    code = "HOLD_ALREADY_SETTLED"


class IdempotencyKeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency key {key!r} was already used with a different request body. "
            "Use a new key for a new request.",
            details={"idempotencyKey": key},
        )


@dataclass(frozen=True)
class Balance:
    balance_micros: int
    held_micros: int

    @property
    def available_micros(self) -> int:
        return self.balance_micros - self.held_micros

    def to_json(self) -> dict[str, Any]:
        return {
            "usdBalanceMicros": self.balance_micros,
            "usdBalance": format_usd(self.balance_micros),
            "usdHeldMicros": self.held_micros,
            "usdHeld": format_usd(self.held_micros),
            "usdAvailableMicros": self.available_micros,
            "usdAvailable": format_usd(self.available_micros),
        }


@dataclass(frozen=True)
class HoldRequest:
    owner_id: str
    amount_micros: int
    reference: str
    actor: str


@dataclass(frozen=True)
class Movement:
    """One movement of money: its legs (ledger account, amount) must sum to zero."""

    kind: str  # credit | hold | capture | release
    owner_id: str
    amount_micros: int
    legs: list[tuple[str, int]]
    actor: str
    reason: str
    hold_id: str | None = None
    external_ref: str | None = None
    details: dict[str, Any] | None = None

    def rows(self, now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Its audit row (`ledger_transactions`) and its legs (`ledger_entries`)."""
        if sum(amount for _, amount in self.legs) != 0:
            raise LedgerError(f"unbalanced {self.kind}: legs {self.legs}")
        transaction_id = new_id("txn")
        transaction = {
            "id": transaction_id,
            "kind": self.kind,
            "owner_id": self.owner_id,
            "amount_micros": self.amount_micros,
            "hold_id": self.hold_id,
            "external_ref": self.external_ref,
            "actor": self.actor,
            "reason": self.reason,
            "details": self.details or {},
            "created_at": now,
        }
        entries = [
            {
                "transaction_id": transaction_id,
                "ledger_account_id": account_id,
                "amount_micros": amount,
                "created_at": now,
            }
            for account_id, amount in self.legs
        ]
        return transaction, entries


@dataclass(frozen=True)
class HoldRef:
    id: str
    owner_id: str
    amount_micros: int
    balance_after: Balance


@dataclass(frozen=True)
class CreditResult:
    transaction_id: str
    amount_micros: int
    replayed: bool


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class IdempotentResponse:
    """The first response to a request, to replay for its key (see `LedgerService.replay`)."""

    owner_id: str
    scope: str
    key: str
    fingerprint: str
    status_code: int
    body: dict[str, Any]


def request_fingerprint(scope: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{scope}\n{canonical}".encode()).hexdigest()


# The writer's statements, built once: building a statement costs more than running it.
_LOCK_BUCKETS = (
    select(LedgerAccount.id, LedgerAccount.balance_micros)
    .where(LedgerAccount.owner_id.in_(bindparam("owners", expanding=True)))
    # PostgreSQL sorts, then locks: rows are locked in id order ("…:available" before "…:held",
    # owner after owner), the order every movement takes, so two batches never wait crosswise.
    .order_by(LedgerAccount.id)
    # FOR NO KEY UPDATE, the lock an UPDATE of the balance takes anyway: it does not conflict
    # with the key-share locks that inserting entries (their foreign keys) takes on these rows.
    .with_for_update(key_share=True)
)
_MOVE_BUCKET = (
    update(LedgerAccount)
    .where(LedgerAccount.id == bindparam("bucket"))
    .values(balance_micros=LedgerAccount.balance_micros + bindparam("delta"))
)
_MOVE_BUCKETS = BulkIncrement(LedgerAccount, "balance_micros")
_INSERT_HOLDS = BulkInsert(Hold)
_INSERT_TRANSACTIONS = BulkInsert(LedgerTransaction)
_INSERT_ENTRIES = BulkInsert(LedgerEntry)
_INSERT_IDEMPOTENCY_RECORDS = BulkInsert(IdempotencyRecord)


def _bucket_id(owner_id: str, kind: str) -> str:
    return f"{owner_id}:{kind}"


class LedgerService:
    async def open_customer(self, session: AsyncSession, owner_id: str) -> None:
        session.add_all(
            LedgerAccount(
                id=_bucket_id(owner_id, kind), owner_id=owner_id, kind=kind, balance_micros=0
            )
            for kind in (AVAILABLE, HELD)
        )
        await session.flush()

    async def balance(self, session: AsyncSession, owner_id: str) -> Balance:
        rows = await session.execute(
            select(LedgerAccount.kind, LedgerAccount.balance_micros).where(
                LedgerAccount.owner_id == owner_id
            )
        )
        buckets = {kind: amount or 0 for kind, amount in rows}
        return Balance(
            balance_micros=buckets.get(AVAILABLE, 0) + buckets.get(HELD, 0),
            held_micros=buckets.get(HELD, 0),
        )

    async def credit(
        self,
        session: AsyncSession,
        owner_id: str,
        amount_micros: int,
        *,
        source: str,
        external_ref: str,
        actor: str,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> CreditResult:
        """Add money from `source`. A repeated `external_ref` credits nothing (replayed=True)."""
        if amount_micros <= 0:
            raise ValueError("a credit must be positive")
        existing = await self._transaction_by_ref(session, external_ref)
        if existing is not None:
            return CreditResult(existing.id, existing.amount_micros, replayed=True)
        funding = await self._house_account(session, f"house:funding:{source}")
        try:
            async with session.begin_nested():
                txn_id = await self._post(
                    session,
                    Movement(
                        kind="credit",
                        owner_id=owner_id,
                        amount_micros=amount_micros,
                        legs=[
                            (funding, -amount_micros),
                            (_bucket_id(owner_id, AVAILABLE), amount_micros),
                        ],
                        external_ref=external_ref,
                        actor=actor,
                        reason=reason,
                        details=details,
                    ),
                )
        except IntegrityError:
            # Another transaction recorded the same external reference first.
            existing = await self._transaction_by_ref(session, external_ref)
            if existing is None:
                raise
            return CreditResult(existing.id, existing.amount_micros, replayed=True)
        return CreditResult(txn_id, amount_micros, replayed=False)

    def hold_many(
        self,
        connection: Connection,
        requests: Sequence[HoldRequest],
        *,
        writes: BulkWrites | None = None,
    ) -> list[HoldRef | InsufficientFunds]:
        """Set money aside for each request, in order, in the caller's (writer) transaction.

        A request the available balance cannot cover gets `InsufficientFunds` in its place and
        moves nothing; the others still go through. One write per table for the whole batch:
        now, or with the caller's other `writes` when it executes them (before its commit).
        """
        if any(request.amount_micros < 0 for request in requests):
            raise ValueError("a hold cannot be negative")
        owners = sorted({request.owner_id for request in requests})
        bucket_ids = [_bucket_id(owner, kind) for owner in owners for kind in (AVAILABLE, HELD)]
        # Lock every owner's buckets before reading them, in one statement whatever the number
        # of owners: PostgreSQL row locks, while SQLite's writer transaction already excludes
        # every other writer. Funds are then checked against locked values.
        balances: dict[str, int] = {
            bucket: amount or 0
            for bucket, amount in connection.execute(_LOCK_BUCKETS, {"owners": owners})
        }
        if missing := set(bucket_ids) - balances.keys():
            raise LedgerError(f"no ledger buckets {sorted(missing)}")
        before = dict(balances)
        now = utcnow()
        outcomes: list[HoldRef | InsufficientFunds] = []
        holds: list[dict[str, Any]] = []
        transactions: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        for request in requests:
            owner, amount = request.owner_id, request.amount_micros
            available, held = _bucket_id(owner, AVAILABLE), _bucket_id(owner, HELD)
            if balances[available] < amount:
                outcomes.append(InsufficientFunds(required=amount, available=balances[available]))
                continue
            balances[available] -= amount
            balances[held] += amount
            hold_id = new_id("hold")
            holds.append(
                {
                    "id": hold_id,
                    "owner_id": owner,
                    "amount_micros": amount,
                    "status": "held",
                    "reference": request.reference,
                    "created_at": now,
                }
            )
            transaction, legs = Movement(
                kind="hold",
                owner_id=owner,
                amount_micros=amount,
                legs=[(available, -amount), (held, amount)],
                hold_id=hold_id,
                actor=request.actor,
                reason=f"hold for {request.reference}",
            ).rows(now)
            transactions.append(transaction)
            entries.extend(legs)
            outcomes.append(
                HoldRef(
                    id=hold_id,
                    owner_id=owner,
                    amount_micros=amount,
                    balance_after=Balance(
                        balance_micros=balances[available] + balances[held],
                        held_micros=balances[held],
                    ),
                )
            )
        batch = BulkWrites() if writes is None else writes
        # Holds of zero move nothing, but are still recorded.
        batch.add(
            _MOVE_BUCKETS,
            [
                {"id": bucket, "delta": balances[bucket] - before[bucket]}
                for bucket in bucket_ids
                if balances[bucket] != before[bucket]
            ],
        )
        batch.add(_INSERT_HOLDS, holds)
        batch.add(_INSERT_TRANSACTIONS, transactions)
        batch.add(_INSERT_ENTRIES, entries)
        if writes is None:
            batch.execute(connection)
        return outcomes

    async def capture(
        self, session: AsyncSession, hold_id: str, amount_micros: int | None = None, *, actor: str
    ) -> Hold:
        """Take `amount_micros` (default: all) of the hold as revenue; the rest goes back."""
        hold = await self._settle(session, hold_id, "captured")
        captured = hold.amount_micros if amount_micros is None else amount_micros
        if not 0 <= captured <= hold.amount_micros:
            raise LedgerError(f"cannot capture {captured} micros of a {hold.amount_micros} hold")
        hold.captured_micros = captured
        revenue = await self._house_account(session, REVENUE_ACCOUNT)
        legs = [(_bucket_id(hold.owner_id, HELD), -hold.amount_micros), (revenue, captured)]
        if hold.amount_micros - captured:
            legs.append((_bucket_id(hold.owner_id, AVAILABLE), hold.amount_micros - captured))
        await self._post(
            session,
            Movement(
                kind="capture",
                owner_id=hold.owner_id,
                amount_micros=captured,
                legs=legs,
                hold_id=hold.id,
                actor=actor,
                reason=f"capture for {hold.reference}",
            ),
        )
        return hold

    async def release(
        self, session: AsyncSession, hold_id: str, *, actor: str, reason: str
    ) -> Hold:
        """Give the whole hold back. Raises `HoldAlreadySettled` on a second settlement."""
        hold = await self._settle(session, hold_id, "released")
        await self._post(
            session,
            Movement(
                kind="release",
                owner_id=hold.owner_id,
                amount_micros=hold.amount_micros,
                legs=[
                    (_bucket_id(hold.owner_id, HELD), -hold.amount_micros),
                    (_bucket_id(hold.owner_id, AVAILABLE), hold.amount_micros),
                ],
                hold_id=hold.id,
                actor=actor,
                reason=reason,
            ),
        )
        return hold

    async def get_hold(self, session: AsyncSession, hold_id: str) -> Hold | None:
        return await session.get(Hold, hold_id, populate_existing=True)

    # Idempotency: the caller looks up before doing the work and stores the response after it,
    # both in the same transaction as the money movement, so a rollback forgets both.

    async def replay(
        self, session: AsyncSession, owner_id: str, *, scope: str, key: str, fingerprint: str
    ) -> StoredResponse | None:
        record = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.owner_id == owner_id,
                IdempotencyRecord.scope == scope,
                IdempotencyRecord.key == key,
            )
        )
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(key)
        return StoredResponse(record.status_code, record.response)

    def remember_many(
        self,
        connection: Connection,
        responses: Sequence[IdempotentResponse],
        *,
        writes: BulkWrites | None = None,
    ) -> None:
        """Store first responses in the caller's (writer) transaction, beside the money they
        moved: now, or with the caller's `writes`. A key stored meanwhile breaks the unique
        key: the transaction then fails."""
        batch = BulkWrites() if writes is None else writes
        batch.add(
            _INSERT_IDEMPOTENCY_RECORDS,
            [
                {
                    "owner_id": response.owner_id,
                    "scope": response.scope,
                    "key": response.key,
                    "fingerprint": response.fingerprint,
                    "status_code": response.status_code,
                    "response": response.body,
                    "created_at": utcnow(),
                }
                for response in responses
            ],
        )
        if writes is None:
            batch.execute(connection)

    # Internals

    async def _settle(self, session: AsyncSession, hold_id: str, status: str) -> Hold:
        settled = await session.execute(
            update(Hold)
            .where(Hold.id == hold_id, Hold.status == "held")
            .values(status=status, settled_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        hold = await session.get(Hold, hold_id, populate_existing=True)
        if hold is None:
            raise HoldNotFound(f"hold {hold_id} does not exist")
        if settled.rowcount != 1:  # type: ignore[attr-defined]
            raise HoldAlreadySettled(f"hold {hold_id} was already {hold.status}")
        return hold

    async def _post(self, session: AsyncSession, movement: Movement) -> str:
        transaction, entries = movement.rows(utcnow())
        # Core inserts, not ORM objects: the unit of work's bookkeeping costs more than the
        # statements themselves.
        await session.execute(insert(LedgerTransaction).values(transaction))
        await session.execute(insert(LedgerEntry), entries)
        # Row locks are always taken in id order ("…:available" before "…:held", which is also
        # the order `hold_many` locks them in), so a hold and a capture on one account can't
        # deadlock.
        for account_id, amount in sorted(movement.legs):
            if account_id.startswith("house:") or not amount:
                continue
            await session.execute(
                _MOVE_BUCKET.execution_options(synchronize_session=False),
                {"bucket": account_id, "delta": amount},
            )
        return str(transaction["id"])

    async def _house_account(self, session: AsyncSession, account_id: str) -> str:
        if await session.get(LedgerAccount, account_id) is None:
            try:
                async with session.begin_nested():
                    session.add(LedgerAccount(id=account_id, owner_id=None, kind=account_id))
            except IntegrityError:
                pass  # created concurrently: it exists, which is all we need
        return account_id

    async def _transaction_by_ref(
        self, session: AsyncSession, external_ref: str
    ) -> LedgerTransaction | None:
        return await session.scalar(
            select(LedgerTransaction).where(LedgerTransaction.external_ref == external_ref)
        )

    async def sum_of_entries(self, session: AsyncSession, ledger_account_id: str) -> int:
        total = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_micros), 0)).where(
                LedgerEntry.ledger_account_id == ledger_account_id
            )
        )
        return int(total or 0)


ledger = LedgerService()

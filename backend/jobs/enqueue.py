"""The write half of a submit: for many concurrent submits at once, in one group-committed
transaction (backend/db/group_commit.py), each job's hold, its row and its idempotency record.

A job row exists exactly when its hold does: both are written here, in the same transaction, and
a rollback drops both. Per job, the outcome is the submit response or the error its caller gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from backend.accounts.service import ApiKeyInvalid, Principal, api_keys
from backend.db.bulk import BulkInsert, BulkWrites
from backend.db.group_commit import GroupCommit, Outcome
from backend.jobs.models import MediaJob
from backend.jobs.schemas import render_submit
from backend.ledger.service import HoldRef, HoldRequest, IdempotentResponse, ledger

ACTOR = "jobs"
IDEMPOTENCY_SCOPE = "media.jobs"


_INSERT_JOBS = BulkInsert(MediaJob)


@dataclass(frozen=True)
class PendingJob:
    principal: Principal
    row: dict[str, Any]  # the `media_jobs` row, but for the hold it is queued under
    expected_urls: list[str]
    idempotency: tuple[str, str] | None  # (key, request fingerprint)


def enqueue(connection: Connection, pending: Sequence[PendingJob]) -> list[Outcome[dict[str, Any]]]:
    outcomes: dict[int, Outcome[dict[str, Any]]] = {}
    # Keys are cached between requests (backend/accounts/key_cache.py); money moves only on a
    # key that is still good now.
    active = api_keys.active_ids(connection, {job.principal.api_key_id for job in pending})
    admitted = []
    for i, job in enumerate(pending):
        if job.principal.api_key_id in active:
            admitted.append(i)
        else:
            outcomes[i] = ApiKeyInvalid(note=" Nothing was charged.")
    # Every row of the batch goes in one round trip to PostgreSQL (backend/db/bulk.py).
    writes = BulkWrites()
    holds = ledger.hold_many(
        connection,
        [
            HoldRequest(
                owner_id=pending[i].principal.account_id,
                amount_micros=pending[i].row["price_micros"],
                reference=f"job:{pending[i].row['id']}",
                actor=ACTOR,
            )
            for i in admitted
        ],
        writes=writes,
    )
    rows: list[dict[str, Any]] = []
    responses: list[IdempotentResponse] = []
    for i, hold in zip(admitted, holds, strict=True):
        if not isinstance(hold, HoldRef):
            outcomes[i] = hold
            continue
        job = pending[i]
        row = {**job.row, "hold_id": hold.id}
        body = render_submit(row, hold.balance_after, job.expected_urls)
        rows.append(row)
        outcomes[i] = body
        if job.idempotency is not None:
            key, fingerprint = job.idempotency
            responses.append(
                IdempotentResponse(
                    owner_id=job.principal.account_id,
                    scope=IDEMPOTENCY_SCOPE,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=201,
                    body=body,
                )
            )
    writes.add(_INSERT_JOBS, rows)
    ledger.remember_many(connection, responses, writes=writes)
    writes.execute(connection)
    return [outcomes[i] for i in range(len(pending))]


JobQueue = GroupCommit[PendingJob, dict[str, Any]]

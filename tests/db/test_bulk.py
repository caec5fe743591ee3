"""`BulkInsert` writes exactly what SQLAlchemy's own INSERT writes, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select

from backend.db.bulk import BulkInsert
from backend.db.engine import Database
from backend.jobs.models import MediaJob
from tests.conftest import make_customer


def job_row(job_id: str, owner_id: str, **changes: object) -> dict[str, object]:
    created = datetime(2026, 12, 5, 9, 30, 1, 123456, tzinfo=timezone(timedelta(hours=2)))
    return {
        "id": job_id,
        "owner_id": owner_id,
        "task": "audio.speak",
        "status": "queued",
        "request": {"task": "audio.speak", "input": {"text": "héllo ✓"}},
        "effective_input": {"text": "héllo ✓", "quality": "128k"},
        "input_adjustments": [],
        "price_micros": 2_000,
        "pricing_meta": {"totalMicros": 2_000, "exactBill": False},
        "hold_id": None,
        "staged_input_count": 0,
        "estimated_duration_seconds": 2.5,
        "duration_estimate_meta": {},
        "progress": 0,
        "progress_message": "queued",
        "output_token": f"token-{job_id}",
        "completion_callback_url": None,
        "attempts": 0,
        "cancel_requested": False,
        "created_at": created,
        "updated_at": created,
        **changes,
    }


def as_read(job: MediaJob) -> dict[str, object]:
    return {column.key: getattr(job, column.key) for column in MediaJob.__table__.columns}


async def test_rows_read_back_exactly_as_sqlalchemy_writes_them(db: Database) -> None:
    owner = (await make_customer(db)).account_id
    rows = [job_row(f"job_bulk_{i}", owner, progress=i, cancel_requested=i == 1) for i in range(3)]
    reference = job_row("job_reference", owner)

    await db.run_in_writer(lambda connection: BulkInsert(MediaJob)(connection, rows))
    async with db.transaction() as session:
        await session.execute(insert(MediaJob).values(reference))

    async with db.transaction(write=False) as session:
        jobs = {job.id: as_read(job) for job in await session.scalars(select(MediaJob))}
    for row in rows:
        read = jobs[str(row["id"])]
        assert read["created_at"] == row["created_at"]
        created_at = read["created_at"]
        assert isinstance(created_at, datetime)
        assert created_at.tzinfo == UTC
        assert (read["progress"], read["cancel_requested"]) == (
            row["progress"],
            row["cancel_requested"],
        )
    written = {k: v for k, v in jobs["job_bulk_0"].items() if k not in ("id", "output_token")}
    expected = {k: v for k, v in jobs["job_reference"].items() if k not in ("id", "output_token")}
    assert written == expected


async def test_rows_must_share_their_keys(db: Database) -> None:
    owner = (await make_customer(db)).account_id
    rows = [job_row("job_a", owner), {**job_row("job_b", owner), "charged_micros": 5}]
    with pytest.raises(ValueError, match="same keys"):
        await db.run_in_writer(lambda connection: BulkInsert(MediaJob)(connection, rows))
    async with db.transaction(write=False) as session:
        assert list(await session.scalars(select(MediaJob.id))) == []


async def test_values_that_json_might_bend_come_back_unchanged(db: Database) -> None:
    """On PostgreSQL the batch travels as one JSON document: key order in JSON columns, quotes,
    control characters (NUL too, which only JSON columns can hold), 64-bit integers, float
    precision and NULLs must survive it."""
    owner = (await make_customer(db)).account_id
    request = {"zeta": 1, "alpha": {"b": [1, 2.5, None], "a": 'quote " back\\ \t\x00'}, "m": "✓"}
    row = job_row(
        "job_odd",
        owner,
        request=request,
        price_micros=2**62 + 1,
        estimated_duration_seconds=0.1 + 0.2,
        completion_callback_url=None,
        progress_message="line one\nline two\x01",
    )

    await db.run_in_writer(lambda connection: BulkInsert(MediaJob)(connection, [row]))

    async with db.transaction(write=False) as session:
        job = await session.get(MediaJob, "job_odd")
    assert job is not None
    assert job.request == request
    assert list(job.request) == ["zeta", "alpha", "m"]
    assert list(job.request["alpha"]) == ["b", "a"]
    assert job.price_micros == 2**62 + 1
    assert job.estimated_duration_seconds == 0.1 + 0.2
    assert job.completion_callback_url is None
    assert job.progress_message == "line one\nline two\x01"

"""Run-time estimates that learn from measured runs.

A job's work is measured in the same units as its price (the quote's standard micros before
premiums, times the premium factor): pricing already scales with pixels, steps, frames, seconds
and characters, so seconds-per-priced-micro is a good per-task rate. Each finished job moves the
task's rate toward what it measured (exponential moving average).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.base import utcnow
from backend.db.engine import Database
from backend.jobs.models import TaskRunStats

# Learning rate of the moving average: recent runs matter most, one outlier does not dominate.
SMOOTHING = 0.3
# Before any run is measured: a rough rate for a single mid-range GPU, and a fixed start-up cost.
PRIOR_SECONDS_PER_MICRO = {
    "image.generate": 0.0004,
    "image.edit": 0.0004,
    "video.generate": 0.0006,
    "video.combine": 0.002,
    "video.resize": 0.002,
    "audio.speak": 0.0005,
    "audio.annotation.reference": 0.0005,
    "ace.step.create": 0.0004,
    "moss.sound.effect": 0.0004,
    "trellis.generate": 0.0003,
}
PRIOR_OVERHEAD_SECONDS = 2.0
# How stale the learned rates may be: runs finished by other processes show up within this time
# (this process's own are seen at once, see `RunTimeModel.forget`).
REFRESH_SECONDS = 30.0


@dataclass(frozen=True)
class DurationEstimate:
    seconds: float
    meta: dict[str, Any]


def work_units(pricing_meta: dict[str, Any]) -> int:
    return int(pricing_meta.get("totalMicros") or 0)


@dataclass(frozen=True)
class _Rate:
    seconds_per_unit: float
    overhead_seconds: float
    samples: int


class RunTimeModel:
    """The learned rates of every task, read from the database at most every `refresh_seconds`:
    an estimate is a hint, and a submit should not pay a database read for it."""

    def __init__(self, *, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.refresh_seconds = refresh_seconds
        self._rates: dict[str, _Rate] = {}
        self._read_at = -float("inf")
        self._reading = asyncio.Lock()

    async def estimate(
        self, db: Database, task: str, pricing_meta: dict[str, Any]
    ) -> DurationEstimate:
        rate = (await self._current(db)).get(task)
        units = work_units(pricing_meta)
        if rate is None:
            rate, source = _Rate(PRIOR_SECONDS_PER_MICRO[task], PRIOR_OVERHEAD_SECONDS, 0), "prior"
        else:
            source = "measured"
        return DurationEstimate(
            seconds=round(rate.overhead_seconds + rate.seconds_per_unit * units, 2),
            meta={
                "model": "overhead + secondsPerUnit x units",
                "source": source,
                "samples": rate.samples,
                "units": units,
                "unit": "priced micro",
                "secondsPerUnit": rate.seconds_per_unit,
                "overheadSeconds": rate.overhead_seconds,
            },
        )

    def forget(self) -> None:
        """Read the rates again before the next estimate (this process just learned one)."""
        self._read_at = -float("inf")

    async def _current(self, db: Database) -> dict[str, _Rate]:
        if time.monotonic() - self._read_at < self.refresh_seconds:
            return self._rates
        async with self._reading:
            if time.monotonic() - self._read_at >= self.refresh_seconds:
                read_at = time.monotonic()
                async with db.transaction(write=False) as session:
                    rows = await session.scalars(select(TaskRunStats))
                    self._rates = {
                        row.task: _Rate(row.seconds_per_unit, row.overhead_seconds, row.samples)
                        for row in rows
                    }
                self._read_at = read_at
        return self._rates


async def learn(
    session: AsyncSession, task: str, pricing_meta: dict[str, Any], seconds: float
) -> None:
    units = work_units(pricing_meta)
    if units <= 0 or seconds <= 0:
        return
    stats = await session.get(TaskRunStats, task, with_for_update=True)
    if stats is None:
        overhead = min(PRIOR_OVERHEAD_SECONDS, seconds / 2)
        # Two first runs of a task may finish together: the loser's sample is simply dropped.
        with contextlib.suppress(IntegrityError):
            async with session.begin_nested():
                session.add(
                    TaskRunStats(
                        task=task,
                        samples=1,
                        seconds_per_unit=(seconds - overhead) / units,
                        overhead_seconds=overhead,
                    )
                )
        return
    observed = max(seconds - stats.overhead_seconds, 0.0) / units
    stats.seconds_per_unit += SMOOTHING * (observed - stats.seconds_per_unit)
    stats.samples += 1
    stats.updated_at = utcnow()
    await session.flush()

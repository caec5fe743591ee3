"""Whether the event loop kept running while a test waited on a database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

TICK_SECONDS = 0.005


@dataclass
class Ticks:
    count: int = 0


@asynccontextmanager
async def loop_ticks() -> AsyncIterator[Ticks]:
    """`async with loop_ticks() as ticks:` counts the loop's turns, one every 5 ms; a loop
    blocked meanwhile counts next to none."""
    ticks = Ticks()

    async def tick() -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            ticks.count += 1

    ticking = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        ticking.cancel()

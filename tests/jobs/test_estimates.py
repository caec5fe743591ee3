"""Duration estimates come from rates read at most every `refresh_seconds`, and at once after a
run of this process (`forget`)."""

from __future__ import annotations

from backend.db.engine import Database
from backend.jobs import estimates
from backend.jobs.estimates import RunTimeModel

META = {"totalMicros": 10_000}


async def test_a_rate_learned_elsewhere_shows_after_a_refresh(db: Database) -> None:
    model = RunTimeModel(refresh_seconds=3600)
    prior = await model.estimate(db, "audio.speak", META)
    assert prior.meta["source"] == "prior"

    async with db.transaction() as session:
        await estimates.learn(session, "audio.speak", META, 7.0)
    assert await model.estimate(db, "audio.speak", META) == prior  # read less than an hour ago

    model.forget()
    measured = await model.estimate(db, "audio.speak", META)
    assert (measured.meta["source"], measured.meta["samples"]) == ("measured", 1)
    assert measured.seconds == 7.0
    fresh = RunTimeModel(refresh_seconds=0)
    assert await fresh.estimate(db, "audio.speak", META) == measured

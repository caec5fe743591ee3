from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backend.storage.expiry import (
    OutputBlob,
    cleanup_after,
    cleanup_cutoff,
    guaranteed_until,
    purge_expired,
    url_lifetime,
)
from backend.storage.local import LocalBlobStore

COMPLETED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_retention_windows() -> None:
    assert guaranteed_until(COMPLETED) == datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    assert cleanup_after(COMPLETED) == datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
    assert cleanup_cutoff(datetime(2026, 11, 4, 12, 0, tzinfo=UTC)) == COMPLETED


def test_url_lifetime_runs_to_cleanup() -> None:
    # Past the 48 h guarantee the link still works while the file is there.
    assert url_lifetime(COMPLETED, now=COMPLETED + timedelta(hours=50)) == timedelta(hours=22)
    assert url_lifetime(COMPLETED, now=COMPLETED + timedelta(hours=72)) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        guaranteed_until(datetime(2026, 11, 1, 12, 0))


class FailingStore(LocalBlobStore):
    async def delete(self, key: str) -> None:
        if key == "outputs/broken/0.png":
            raise OSError("disk on fire")
        await super().delete(key)


async def test_purge_deletes_only_due_outputs_and_reports(tmp_path: Path) -> None:
    store = FailingStore(tmp_path, "http://testserver", b"s" * 32)
    for key in ("outputs/old/0.png", "outputs/new/0.png", "outputs/broken/0.png"):
        await store.put_bytes(key, b"x", "image/png")
    now = COMPLETED + timedelta(hours=72)

    report = await purge_expired(
        store,
        [
            OutputBlob("outputs/old/0.png", COMPLETED),
            OutputBlob("outputs/new/0.png", COMPLETED + timedelta(seconds=1)),
            OutputBlob("outputs/broken/0.png", COMPLETED),
            OutputBlob("outputs/gone/0.png", COMPLETED),  # already deleted on an earlier run
        ],
        now=now,
    )

    assert report.deleted == ["outputs/old/0.png", "outputs/gone/0.png"]
    assert report.not_due == ["outputs/new/0.png"]
    assert report.failed == {"outputs/broken/0.png": "OSError('disk on fire')"}
    assert not await store.exists("outputs/old/0.png")
    assert await store.exists("outputs/new/0.png")
    assert await store.exists("outputs/broken/0.png")

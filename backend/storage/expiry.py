"""Output retention, as the spec promises it: downloadable for 48 h after a job completes
(guaranteed), deleted by a background cleanup from 72 h on.

The policy lives here and nowhere else; `jobs/` selects due outputs with `cleanup_cutoff` and hands
them to `purge_expired` from its periodic task. (moto and most S3-compatible servers do not enforce
lifecycle rules, and the local store has none, so cleanup is our code on every backend.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from backend.storage.blobs import BlobStore

GUARANTEED_FOR = timedelta(hours=48)
CLEANUP_AFTER = timedelta(hours=72)

logger = logging.getLogger(__name__)


def guaranteed_until(completed_at: datetime) -> datetime:
    return _aware(completed_at) + GUARANTEED_FOR


def cleanup_after(completed_at: datetime) -> datetime:
    return _aware(completed_at) + CLEANUP_AFTER


def cleanup_cutoff(now: datetime) -> datetime:
    """Outputs of jobs completed at or before this instant are due for deletion."""
    return _aware(now) - CLEANUP_AFTER


def url_lifetime(completed_at: datetime, *, now: datetime) -> timedelta | None:
    """How long a download URL made `now` should live: until cleanup, so links keep working
    past the guarantee while the file is still there. None once the output is due for cleanup."""
    left = cleanup_after(completed_at) - _aware(now)
    return left if left > timedelta(0) else None


@dataclass(frozen=True)
class OutputBlob:
    key: str
    completed_at: datetime


@dataclass
class PurgeReport:
    deleted: list[str] = field(default_factory=list)  # gone now (deleting a missing key counts)
    not_due: list[str] = field(default_factory=list)  # handed in before their cleanup time
    failed: dict[str, str] = field(default_factory=dict)  # key -> error, worth retrying later


async def purge_expired(
    store: BlobStore, blobs: Iterable[OutputBlob], *, now: datetime | None = None
) -> PurgeReport:
    """Delete the blobs whose cleanup time has come; one failure does not stop the rest."""
    now = _aware(now) if now is not None else datetime.now(UTC)
    report = PurgeReport()
    for blob in blobs:
        if cleanup_after(blob.completed_at) > now:
            report.not_due.append(blob.key)
            continue
        try:
            await store.delete(blob.key)
        except Exception as exc:  # reported, not raised: the caller retries on its next run
            logger.warning("could not delete expired output %s: %r", blob.key, exc)
            report.failed[blob.key] = repr(exc)
        else:
            report.deleted.append(blob.key)
    return report


def _aware(moment: datetime) -> datetime:
    # A naive datetime compared with an aware one raises at best and is hours off at worst.
    if moment.tzinfo is None:
        raise ValueError(f"retention times must be timezone-aware, got {moment!r}")
    return moment

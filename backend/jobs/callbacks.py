"""completionCallbackUrl delivery: Standard Webhooks signatures, retries with exponential backoff
that survive restarts (the schedule lives in the database), SSRF rules, every attempt recorded.

Each account verifies with its own signing secret (`GET /api/v1/media/jobs/callback-secret`),
derived from the server secret so nothing extra is stored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta

import httpcore
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from backend.db.base import utcnow
from backend.db.engine import Database
from backend.jobs.models import CallbackAttempt, CallbackDelivery, MediaJob
from backend.jobs.runtime import JobsRuntime
from backend.storage.fetch import BlockedAddress, PinnedNetworkBackend

logger = logging.getLogger(__name__)

# Delay before attempt n+1 after n failures: 30 s, 2 min, 8 min, 32 min, ~2 h, ~8.5 h; then give up.
FIRST_RETRY = timedelta(seconds=30)
BACKOFF_FACTOR = 4
MAX_ATTEMPTS = 7
TIMEOUT_SECONDS = 10.0
IDLE_POLL_SECONDS = 5.0
EVENT_TYPE = "media.job.completed"


def signing_secret(server_secret: bytes, account_id: str) -> str:
    """The account's `whsec_…` secret for verifying callbacks (Standard Webhooks format)."""
    key = hmac.new(server_secret, f"callbacks:{account_id}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(key).decode()


def retry_delay(failures: int) -> timedelta:
    factor: int = BACKOFF_FACTOR ** (failures - 1)
    return FIRST_RETRY * factor


class CallbackSender:
    def __init__(self, db: Database, runtime: JobsRuntime) -> None:
        self.db = db
        self.runtime = runtime
        self._wake = asyncio.Event()
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=PinnedNetworkBackend(runtime.settings.fetch_allowed_hosts), retries=0
        )

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    while await self.deliver_due():
                        pass
                except Exception:
                    logger.exception("callback delivery loop error; retrying")
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # lands as the wait ends, and then stop() would wait forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_POLL_SECONDS):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            await self._pool.aclose()

    async def deliver_due(self, *, now: datetime | None = None) -> int:
        """Attempt every delivery whose time has come; returns how many were attempted."""
        now = now or utcnow()
        async with self.db.transaction(write=False) as session:
            due = list(
                await session.scalars(
                    select(CallbackDelivery)
                    .where(
                        CallbackDelivery.status == "pending",
                        CallbackDelivery.next_attempt_at <= now,
                    )
                    .order_by(CallbackDelivery.next_attempt_at)
                    .limit(20)
                )
            )
        for delivery in due:
            await self._attempt(delivery)
        return len(due)

    async def _attempt(self, delivery: CallbackDelivery) -> None:
        from backend.jobs.service import jobs

        async with self.db.transaction(write=False) as session:
            job = await session.get(MediaJob, delivery.job_id)
        if job is None:
            return
        payload = {
            "type": EVENT_TYPE,
            "timestamp": utcnow().isoformat().replace("+00:00", "Z"),
            "data": await jobs.render(self.runtime, job, include_details=False),
        }
        body = json.dumps(payload, separators=(",", ":"))
        sent_at = utcnow()
        secret = signing_secret(self.runtime.settings.resolved_secret_key, job.owner_id)
        headers = {
            "content-type": "application/json",
            "user-agent": "KillaTamata-Callbacks/1",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(secret).sign(delivery.id, sent_at, body),
        }
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await self._pool.request(
                "POST",
                delivery.url,
                headers=list(headers.items()),
                content=body.encode(),
                extensions={
                    "timeout": dict.fromkeys(("connect", "read", "write", "pool"), TIMEOUT_SECONDS)
                },
            )
            status_code = response.status
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except BlockedAddress as exc:
            error = f"refused: {exc}"
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        except httpcore.UnsupportedProtocol as exc:
            error = f"unsupported URL: {exc}"
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        async with self.db.transaction() as session:
            current = await session.get(CallbackDelivery, delivery.id, with_for_update=True)
            if current is None or current.status != "pending":
                return
            current.attempts += 1
            session.add(
                CallbackAttempt(
                    delivery_id=current.id,
                    attempt=current.attempts,
                    status_code=status_code,
                    error=error,
                    duration_ms=elapsed_ms,
                    attempted_at=sent_at,
                )
            )
            if error is None:
                current.status = "delivered"
            elif current.attempts >= MAX_ATTEMPTS or error.startswith(("refused", "unsupported")):
                current.status = "failed"
                logger.warning("callback %s for job %s gave up: %s", current.id, job.id, error)
            else:
                current.next_attempt_at = utcnow() + retry_delay(current.attempts)

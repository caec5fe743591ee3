"""completionCallbackUrl deliveries (signed, retried, recorded) and the 72-hour output cleanup."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.app import create_app
from backend.db.base import utcnow
from backend.db.engine import Database
from backend.jobs.callbacks import MAX_ATTEMPTS, retry_delay
from backend.jobs.cleanup import purge_expired_outputs
from backend.jobs.models import CallbackAttempt, CallbackDelivery, MediaJob
from backend.settings import Settings
from tests.conftest import Customer
from tests.jobs.conftest import MediaHost, wait_for_job
from tests.servers import serving


class Receiver:
    def __init__(self) -> None:
        self.fail_next = 0
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        if self.fail_next:
            self.fail_next -= 1
            return Response("try later", status_code=500)
        return Response(status_code=204)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    target = Receiver()
    with serving(Starlette(routes=[Route("/hook", target.handle, methods=["POST"])])) as address:
        yield target, address


@pytest.fixture
async def hooked(
    settings: Settings, db: Database, receiver: tuple[Receiver, str], media_host: MediaHost
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(
        settings.model_copy(update={"fetch_allowed_hosts": [media_host.address, receiver[1]]}),
        database=db,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://gateway.test"
        ) as client,
    ):
        yield app, client


def combine(media_host: MediaHost, **extra: Any) -> dict[str, Any]:
    return {
        "task": "video.combine",
        "input": {"videoUrls": [media_host.url("red.mp4"), media_host.url("blue.mp4")]},
        **extra,
    }


async def deliveries(
    db: Database, job_id: str
) -> list[tuple[CallbackDelivery, list[CallbackAttempt]]]:
    async with db.transaction(write=False) as session:
        found = list(
            await session.scalars(select(CallbackDelivery).where(CallbackDelivery.job_id == job_id))
        )
        return [
            (
                delivery,
                list(
                    await session.scalars(
                        select(CallbackAttempt)
                        .where(CallbackAttempt.delivery_id == delivery.id)
                        .order_by(CallbackAttempt.attempt)
                    )
                ),
            )
            for delivery in found
        ]


async def until(predicate: Any, within: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_callback_is_signed_retried_with_backoff_and_every_attempt_recorded(
    hooked: tuple[Starlette, httpx.AsyncClient],
    customer: Customer,
    db: Database,
    receiver: tuple[Receiver, str],
    media_host: MediaHost,
) -> None:
    app, client = hooked
    target, address = receiver
    target.received.clear()
    target.fail_next = 1
    job = (
        await client.post(
            "/api/v1/media/jobs",
            headers=customer.headers,
            json=combine(media_host, completionCallbackUrl=f"http://{address}/hook"),
        )
    ).json()
    await wait_for_job(client, customer, job["externalJobId"])

    async def attempted(count: int) -> bool:
        found = await deliveries(db, job["externalJobId"])
        return bool(found) and len(found[0][1]) >= count

    await until(lambda: attempted(1))
    [(delivery, attempts)] = await deliveries(db, job["externalJobId"])
    assert delivery.status == "pending"
    assert attempts[0].status_code == 500
    assert delivery.next_attempt_at > utcnow() + timedelta(seconds=20)  # backing off, not hammering

    sender = app.state.jobs.dispatcher.callbacks
    assert await sender.deliver_due(now=utcnow() + retry_delay(1)) == 1
    [(delivery, attempts)] = await deliveries(db, job["externalJobId"])
    assert delivery.status == "delivered"
    assert [a.status_code for a in attempts] == [500, 204]

    secret = (
        await client.get("/api/v1/media/jobs/callback-secret", headers=customer.headers)
    ).json()["signingSecret"]
    headers, body = target.received[-1]
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "media.job.completed"
    assert payload["data"]["externalJobId"] == job["externalJobId"]
    assert payload["data"]["status"] == "succeeded"
    assert headers["webhook-id"] == delivery.id
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"succeeded", b"failed"), headers)


async def test_callbacks_to_blocked_addresses_are_refused_once_and_recorded(
    hooked: tuple[Starlette, httpx.AsyncClient],
    customer: Customer,
    db: Database,
    media_host: MediaHost,
) -> None:
    _, client = hooked
    job = (
        await client.post(
            "/api/v1/media/jobs",
            headers=customer.headers,
            json=combine(media_host, completionCallbackUrl="http://169.254.169.254/latest"),
        )
    ).json()
    await wait_for_job(client, customer, job["externalJobId"])

    async def settled() -> bool:
        found = await deliveries(db, job["externalJobId"])
        return bool(found) and found[0][0].status == "failed"

    await until(settled)
    [(_, attempts)] = await deliveries(db, job["externalJobId"])
    assert len(attempts) == 1
    assert attempts[0].error is not None
    assert "refused" in attempts[0].error


def test_backoff_grows_exponentially_and_is_bounded() -> None:
    delays = [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert delays[0] == timedelta(seconds=30)
    assert all(later == earlier * 4 for earlier, later in itertools.pairwise(delays))
    assert sum(delays, timedelta()) < timedelta(hours=12)


async def test_outputs_are_deleted_after_72_hours_and_the_status_says_so(
    client: httpx.AsyncClient,
    app: Starlette,
    customer: Customer,
    db: Database,
    media_host: MediaHost,
) -> None:
    old = (
        await client.post("/api/v1/media/jobs", headers=customer.headers, json=combine(media_host))
    ).json()
    recent = (
        await client.post("/api/v1/media/jobs", headers=customer.headers, json=combine(media_host))
    ).json()
    for job in (old, recent):
        await wait_for_job(client, customer, job["externalJobId"])
    async with db.transaction() as session:
        for job_id, age in ((old["externalJobId"], 73), (recent["externalJobId"], 47)):
            await session.execute(
                update(MediaJob)
                .where(MediaJob.id == job_id)
                .values(finished_at=utcnow() - timedelta(hours=age))
            )
    recent_status = await wait_for_job(client, customer, recent["externalJobId"])
    assert recent_status["downloadableOutputUrls"], "47 h old outputs are still guaranteed"

    purged = await purge_expired_outputs(db, app.state.jobs)
    assert purged == [old["externalJobId"]]

    status = await wait_for_job(client, customer, old["externalJobId"])
    assert status["outputsExpired"] is True
    assert status["downloadableOutputUrls"] == []
    assert "72-hour" in status["outputsNotice"]
    gone = await client.get(old["expectedOutputUrls"][0])
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "OUTPUT_EXPIRED"
    async with db.transaction(write=False) as session:
        row = await session.get(MediaJob, old["externalJobId"])
        assert row is not None
        assert row.output_files
        assert not await app.state.jobs.blobs.exists(row.output_files[0]["key"])
    still = await client.get(recent_status["downloadableOutputUrls"][0])
    assert still.status_code == 200
    assert json.dumps(still.headers.get("content-type")) == '"video/mp4"'

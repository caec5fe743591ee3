"""Money around jobs: nothing moves on bad input, 402 when short, idempotent submits, cancel."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from backend.db.engine import Database
from backend.jobs.models import MediaJob
from tests.conftest import Customer, make_customer
from tests.jobs.conftest import MediaHost, balance, wait_for_job
from tests.ledger.invariants import invariant_violations


def combine(media_host: MediaHost, *names: str) -> dict[str, object]:
    return {
        "task": "video.combine",
        "input": {"videoUrls": [media_host.url(n) for n in names or ("red.mp4", "blue.mp4")]},
    }


async def job_count(db: Database) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(MediaJob)) or 0)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"input": {}}, "task", "VALIDATION_ERROR"),
        ({"task": "image.paint", "input": {}}, "task", "VALIDATION_ERROR"),
        ({"task": 7, "input": {}}, "task", "VALIDATION_ERROR"),
        (
            {"task": "video.combine", "input": {"videoUrls": ["https://a.example/1.mp4"]}},
            "input.videoUrls",
            "VALIDATION_ERROR",
        ),
        (
            {
                "task": "video.resize",
                "input": {"sourceVideoUrl": "https://a.example/1.mp4", "width": 33, "height": 32},
            },
            "input.width",
            "VALIDATION_ERROR",
        ),
        (
            {
                "task": "video.combine",
                "input": {"videoUrls": ["https://a/1.mp4", "https://a/2.mp4"]},
                "extra": 1,
            },
            "extra",
            "VALIDATION_ERROR",
        ),
    ],
)
async def test_invalid_bodies_are_400_naming_the_field_and_move_nothing(
    client: httpx.AsyncClient,
    customer: Customer,
    db: Database,
    body: dict[str, object],
    field: str,
    code: str,
) -> None:
    response = await client.post("/api/v1/media/jobs", headers=customer.headers, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"]["errors"][0]["field"] == field
    assert (await balance(client, customer))["usdAvailableMicros"] == 10_000_000
    assert await job_count(db) == 0


async def test_inputs_that_cannot_be_fetched_are_400_and_move_nothing(
    client: httpx.AsyncClient, customer: Customer, db: Database, media_host: MediaHost
) -> None:
    for names, rule in (
        (("red.mp4", "missing.mp4"), "http_status"),
        (("red.mp4", "page.html"), "content_type"),
    ):
        response = await client.post(
            "/api/v1/media/jobs", headers=customer.headers, json=combine(media_host, *names)
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["details"]["rule"] == rule
        assert "videoUrls[1]" in response.json()["error"]["message"]
    blocked = await client.post(
        "/api/v1/media/jobs",
        headers=customer.headers,
        json={
            "task": "video.combine",
            "input": {"videoUrls": ["http://127.0.0.1:9/a.mp4", "http://169.254.169.254/b.mp4"]},
        },
    )
    assert blocked.status_code == 400
    assert blocked.json()["error"]["details"]["rule"] == "blocked_address"
    assert await job_count(db) == 0
    assert (await balance(client, customer))["usdHeldMicros"] == 0


async def test_short_balance_is_402_with_required_and_available(
    client: httpx.AsyncClient, db: Database, media_host: MediaHost
) -> None:
    poor = await make_customer(db, usd_micros=1_000)
    response = await client.post(
        "/api/v1/media/jobs", headers=poor.headers, json=combine(media_host)
    )
    assert response.status_code == 402
    details = response.json()["error"]["details"]
    assert details["availableMicros"] == 1_000
    assert details["requiredMicros"] > 1_000
    assert await job_count(db) == 0


async def test_same_idempotency_key_and_body_returns_the_first_response_once_charged(
    idle_client: httpx.AsyncClient, customer: Customer, db: Database, media_host: MediaHost
) -> None:
    body = {**combine(media_host), "idempotencyKey": "order-42"}
    first = await idle_client.post("/api/v1/media/jobs", headers=customer.headers, json=body)
    again = await idle_client.post("/api/v1/media/jobs", headers=customer.headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await job_count(db) == 1
    assert (await balance(idle_client, customer))["usdHeldMicros"] == first.json()[
        "usdChargedMicros"
    ]

    other = await idle_client.post(
        "/api/v1/media/jobs",
        headers=customer.headers,
        json={**body, "input": {**body["input"], "frameRate": 30}},
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await job_count(db) == 1


async def test_idempotency_key_header_and_concurrent_duplicates_charge_once(
    idle_client: httpx.AsyncClient, customer: Customer, db: Database, media_host: MediaHost
) -> None:
    headers = {**customer.headers, "Idempotency-Key": "k-7"}
    responses = await asyncio.gather(
        *(
            idle_client.post("/api/v1/media/jobs", headers=headers, json=combine(media_host))
            for _ in range(5)
        )
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["externalJobId"] for r in responses}) == 1
    assert await job_count(db) == 1
    async with db.transaction(write=False) as session:
        assert await invariant_violations(session) == []


async def test_canceling_a_queued_job_releases_its_hold_exactly_once(
    idle_client: httpx.AsyncClient, customer: Customer, media_host: MediaHost
) -> None:
    job = (
        await idle_client.post(
            "/api/v1/media/jobs", headers=customer.headers, json=combine(media_host)
        )
    ).json()
    assert (await balance(idle_client, customer))["usdHeldMicros"] == job["usdChargedMicros"]
    canceled = await idle_client.post(
        "/api/v1/media/jobs/cancel", headers=customer.headers, json={"jobId": job["externalJobId"]}
    )
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["billing"]["usdChargedMicros"] == 0
    again = await idle_client.post(
        "/api/v1/media/jobs/cancel", headers=customer.headers, json={"jobId": job["externalJobId"]}
    )
    assert again.status_code == 409
    after = await balance(idle_client, customer)
    assert (after["usdBalanceMicros"], after["usdHeldMicros"]) == (10_000_000, 0)


async def test_canceling_a_running_job_stops_it_and_releases_the_hold(
    client: httpx.AsyncClient, customer: Customer, media_host: MediaHost, db: Database
) -> None:
    long_clip = media_host.folder / "long.mp4"
    if not long_clip.exists():
        from tests.engines.media import write_clip

        write_clip(long_clip, frames=720, fps=24, width=320, height=240)
    body = {"task": "video.combine", "input": {"videoUrls": [media_host.url("long.mp4")] * 3}}
    job = (await client.post("/api/v1/media/jobs", headers=customer.headers, json=body)).json()
    job_id = job["externalJobId"]
    for _ in range(400):
        status = (
            await client.get(
                "/api/v1/media/jobs", params={"jobId": job_id}, headers=customer.headers
            )
        ).json()
        if status["status"] == "running" and status["progress"]["percent"] > 0:
            break
        await asyncio.sleep(0.025)
    assert status["status"] == "running", status
    response = await client.post(
        "/api/v1/media/jobs/cancel", headers=customer.headers, json={"jobId": job_id}
    )
    assert response.status_code == 200
    done = await wait_for_job(client, customer, job_id)
    assert done["status"] == "canceled"
    assert done["progress"]["percent"] < 100
    assert done["downloadableOutputUrls"] == []
    after = await balance(client, customer)
    assert (after["usdBalanceMicros"], after["usdHeldMicros"]) == (10_000_000, 0)
    async with db.transaction(write=False) as session:
        assert await invariant_violations(session) == []

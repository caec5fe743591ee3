"""Money around jobs: nothing moves on bad input, 402 when short, idempotent submits, cancel."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from backend.accounts.service import api_keys
from backend.db.engine import Database
from backend.jobs.models import MediaJob
from backend.ledger.service import ledger
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


SPEECH = {"task": "audio.speak", "input": {"text": "Group commit keeps every hold exact."}}


async def test_concurrent_submits_share_transactions_and_only_what_fits_is_held(
    idle_client: httpx.AsyncClient, db: Database
) -> None:
    """Submits are group-committed (many holds per transaction): racing 30 submits against two
    balances, exactly what each balance covers goes through, the rest are 402, all-or-nothing
    per job, and the books still balance."""
    price = (
        await idle_client.post(
            "/api/v1/media/jobs/quote",
            headers=(await make_customer(db)).headers,
            json=SPEECH,
        )
    ).json()["usdPriceMicros"]
    tight = await make_customer(db, usd_micros=price * 7 + price - 1)
    roomy = await make_customer(db, usd_micros=price * 100)
    callers = [tight] * 20 + [roomy] * 10
    responses = await asyncio.gather(
        *(idle_client.post("/api/v1/media/jobs", headers=c.headers, json=SPEECH) for c in callers)
    )
    by_caller = {
        c.account_id: sorted(
            r.status_code for cc, r in zip(callers, responses, strict=True) if cc is c
        )
        for c in (tight, roomy)
    }
    assert by_caller[tight.account_id] == [201] * 7 + [402] * 13
    assert by_caller[roomy.account_id] == [201] * 10
    assert await job_count(db) == 17
    assert (await balance(idle_client, tight))["usdAvailableMicros"] == price - 1
    assert (await balance(idle_client, roomy))["usdHeldMicros"] == price * 10
    async with db.transaction(write=False) as session:
        assert await invariant_violations(session) == []


async def test_one_key_with_different_bodies_at_once_charges_the_first_only(
    idle_client: httpx.AsyncClient, customer: Customer, db: Database
) -> None:
    """The racers land in one group-committed batch: the unique key fails it, each is retried in
    a transaction of its own, and only the first one's job and hold remain."""
    responses = await asyncio.gather(
        *(
            idle_client.post(
                "/api/v1/media/jobs",
                headers={**customer.headers, "Idempotency-Key": "race"},
                json={"task": "audio.speak", "input": {"text": f"take {n}"}},
            )
            for n in range(6)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 5
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "IDEMPOTENCY_KEY_REUSED"
    }
    assert await job_count(db) == 1
    held = (await balance(idle_client, customer))["usdHeldMicros"]
    assert held == next(r for r in responses if r.status_code == 201).json()["usdChargedMicros"]


async def test_a_key_revoked_by_another_process_moves_no_money_while_still_remembered(
    idle_client: httpx.AsyncClient, customer: Customer, db: Database
) -> None:
    """Verified keys are remembered for a few seconds (backend/accounts/key_cache.py); a revocation
    made elsewhere (the CLI, another replica) reaches this process within that time, but the
    transaction that would hold money checks the key itself."""
    first = await idle_client.post("/api/v1/media/jobs", headers=customer.headers, json=SPEECH)
    assert first.status_code == 201
    async with db.transaction() as session:
        (key,) = await api_keys.list(session, customer.account_id)
        await api_keys.revoke(session, customer.account_id, key.id)

    assert (await idle_client.get("/api/v1/balance", headers=customer.headers)).status_code == 200
    refused = await idle_client.post("/api/v1/media/jobs", headers=customer.headers, json=SPEECH)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "API_KEY_INVALID"
    assert await job_count(db) == 1
    async with db.transaction(write=False) as session:
        assert (await ledger.balance(session, customer.account_id)).held_micros == first.json()[
            "usdChargedMicros"
        ]

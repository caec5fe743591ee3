"""Media jobs end to end through the HTTP API: submit, hold, run, store, settle."""

from __future__ import annotations

from pathlib import Path

import httpx
import jsonschema
import pytest
from pydantic import SecretStr

from backend.app import create_app
from backend.db.engine import Database
from backend.settings import Settings
from tests.conftest import S3_CREDENTIALS, Customer, make_customer
from tests.engines.media import decode_video
from tests.jobs.conftest import MediaHost, balance, wait_for_job
from tests.spec import spec_schema


def combine_body(media_host: MediaHost, **input_fields: object) -> dict[str, object]:
    return {
        "task": "video.combine",
        "input": {
            "videoUrls": [media_host.url("red.mp4"), media_host.url("blue.mp4")],
            **input_fields,
        },
    }


async def test_combine_runs_end_to_end_and_captures_the_hold(
    client: httpx.AsyncClient, customer: Customer, media_host: MediaHost, tmp_path
) -> None:
    submitted = await client.post(
        "/api/v1/media/jobs",
        headers=customer.headers,
        json=combine_body(media_host, overlapFrames=4, frameRate=24),
    )
    assert submitted.status_code == 201, submitted.text
    body = submitted.json()
    jsonschema.validate(body, spec_schema("MediaJobSubmitResponse"))
    price = body["usdChargedMicros"]
    assert price == body["pricingMeta"]["totalMicros"] > 0
    assert body["pricingMeta"]["durationSource"] == "measured"
    assert body["stagedInputCount"] == 2
    assert body["billing"]["stagedInputCount"] == 2
    assert body["usdBalanceMicros"] == 10_000_000
    assert body["usdAvailableMicros"] == 10_000_000 - price
    assert body["effectiveInput"]["overlapFrames"] == 4
    assert body["estimatedDurationSeconds"] > 0
    assert body["expectedOutputUrls"][0].startswith("https://gateway.test/outputs/")

    done = await wait_for_job(client, customer, body["externalJobId"])
    jsonschema.validate(done, spec_schema("MediaJobStatusResponse"))
    assert done["status"] == "succeeded", done
    assert done["progress"]["percent"] == 100
    assert done["billing"]["usdChargedMicros"] == price
    assert done["durationMs"] >= 0

    download = await client.get(done["downloadableOutputUrls"][0])
    assert download.status_code == 200
    assert download.headers["content-type"] == "video/mp4"
    output = tmp_path / "combined.mp4"
    output.write_bytes(download.content)
    facts = decode_video(output)
    assert (facts.width, facts.height) == (64, 48)
    assert facts.frames == 24 + 24 - 4
    assert facts.fps == 24
    assert done["outputFiles"][0]["sizeBytes"] == len(download.content)

    promised = await client.get(body["expectedOutputUrls"][0])
    assert promised.status_code == 307
    assert (await client.get(promised.headers["location"])).content == download.content

    after = await balance(client, customer)
    assert after["usdBalanceMicros"] == 10_000_000 - price
    assert after["usdHeldMicros"] == 0


async def test_resize_scales_to_the_requested_even_size(
    client: httpx.AsyncClient, customer: Customer, media_host: MediaHost, tmp_path
) -> None:
    submitted = await client.post(
        "/api/v1/media/jobs",
        headers=customer.headers,
        json={
            "task": "video.resize",
            "input": {"sourceVideoUrl": media_host.url("tone.mp4"), "width": 48, "height": 32},
        },
    )
    assert submitted.status_code == 201, submitted.text
    done = await wait_for_job(client, customer, submitted.json()["externalJobId"])
    assert done["status"] == "succeeded", done
    output = tmp_path / "resized.mp4"
    output.write_bytes((await client.get(done["downloadableOutputUrls"][0])).content)
    facts = decode_video(output)
    assert (facts.width, facts.height) == (48, 32)
    assert facts.frames == 48
    assert facts.audio_codec == "aac"


async def test_a_job_the_engine_cannot_process_fails_and_releases_the_hold(
    client: httpx.AsyncClient, customer: Customer, media_host: MediaHost
) -> None:
    submitted = await client.post(
        "/api/v1/media/jobs",
        headers=customer.headers,
        json={
            "task": "video.resize",
            "input": {
                "sourceVideoUrl": media_host.url("not-a-video.mp4"),
                "width": 32,
                "height": 32,
            },
        },
    )
    if submitted.status_code == 400:
        # Refused while staging (the bytes are not a decodable video): nothing was held either.
        assert (await balance(client, customer))["usdHeldMicros"] == 0
        return
    done = await wait_for_job(client, customer, submitted.json()["externalJobId"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "ENGINE_ERROR"
    assert done["billing"]["usdChargedMicros"] == 0
    after = await balance(client, customer)
    assert (after["usdBalanceMicros"], after["usdHeldMicros"]) == (10_000_000, 0)


async def test_quote_prices_like_submit_without_charging(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    body = {
        "task": "video.resize",
        "input": {"sourceVideoUrl": "https://example.com/a.mp4", "width": 640, "height": 360},
    }
    quote = await client.post("/api/v1/media/jobs/quote", headers=customer.headers, json=body)
    assert quote.status_code == 200, quote.text
    quoted = quote.json()
    assert quoted["usdPriceMicros"] == quoted["pricingMeta"]["totalMicros"] > 0
    assert quoted["charged"] is False
    assert quoted["estimatedDurationSeconds"] > 0
    assert (await balance(client, customer))["usdAvailableMicros"] == 10_000_000


async def test_only_the_owner_sees_a_job(
    client: httpx.AsyncClient, customer: Customer, db: Database, media_host: MediaHost
) -> None:
    submitted = (
        await client.post(
            "/api/v1/media/jobs", headers=customer.headers, json=combine_body(media_host)
        )
    ).json()
    other = await make_customer(db)
    for request in (
        client.get(
            "/api/v1/media/jobs",
            params={"jobId": submitted["externalJobId"]},
            headers=other.headers,
        ),
        client.post(
            "/api/v1/media/jobs/cancel",
            json={"jobId": submitted["externalJobId"]},
            headers=other.headers,
        ),
    ):
        response = await request
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "JOB_NOT_FOUND"
    await wait_for_job(client, customer, submitted["externalJobId"])


async def test_list_pages_with_a_cursor(
    idle_client: httpx.AsyncClient, customer: Customer, media_host: MediaHost
) -> None:
    ids = []
    for _ in range(5):
        response = await idle_client.post(
            "/api/v1/media/jobs", headers=customer.headers, json=combine_body(media_host)
        )
        ids.append(response.json()["externalJobId"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (
            await idle_client.get(
                "/api/v1/media/jobs/list", params=params, headers=customer.headers
            )
        ).json()
        seen += [job["externalJobId"] for job in page["jobs"]]
        if not page["hasMore"]:
            break
        cursor = page["nextCursor"]
    assert seen == list(reversed(ids))
    bad = await idle_client.get(
        "/api/v1/media/jobs/list", params={"cursor": "garbage"}, headers=customer.headers
    )
    assert bad.status_code == 400
    too_many = await idle_client.get(
        "/api/v1/media/jobs/list", params={"limit": "500"}, headers=customer.headers
    )
    assert too_many.status_code == 400
    assert too_many.json()["error"]["details"]["errors"][0]["field"] == "limit"


async def test_capabilities_say_which_tasks_can_run(client: httpx.AsyncClient) -> None:
    tasks = {row["task"]: row for row in (await client.get("/api/v1/capabilities")).json()["tasks"]}
    assert len(tasks) == 10
    assert tasks["video.combine"]["available"] is True
    assert tasks["image.generate"]["available"] is False


@pytest.mark.parametrize("task", ["image.generate", "trellis.generate"])
async def test_a_task_without_its_model_is_refused_with_no_charge(
    client: httpx.AsyncClient, customer: Customer, task: str
) -> None:
    body = {
        "image.generate": {"task": "image.generate", "input": {"prompt": "a red fox"}},
        "trellis.generate": {
            "task": "trellis.generate",
            "input": {"sourceImageUrl": "https://example.com/a.png"},
        },
    }[task]
    response = await client.post("/api/v1/media/jobs", headers=customer.headers, json=body)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "MODEL_UNAVAILABLE"
    assert (await balance(client, customer))["usdAvailableMicros"] == 10_000_000
    listed = (await client.get("/api/v1/media/jobs/list", headers=customer.headers)).json()
    assert listed["jobs"] == []


async def test_duration_estimates_learn_from_measured_runs(
    client: httpx.AsyncClient, customer: Customer, media_host: MediaHost
) -> None:
    body = {
        "task": "video.combine",
        "input": {"videoUrls": [media_host.url("red.mp4"), media_host.url("blue.mp4")]},
    }
    first = (await client.post("/api/v1/media/jobs", headers=customer.headers, json=body)).json()
    assert first["durationEstimateMeta"]["source"] == "prior"
    await wait_for_job(client, customer, first["externalJobId"])
    second = (await client.post("/api/v1/media/jobs", headers=customer.headers, json=body)).json()
    meta = second["durationEstimateMeta"]
    assert (meta["source"], meta["samples"]) == ("measured", 1)
    assert second["estimatedDurationSeconds"] != first["estimatedDurationSeconds"]
    await wait_for_job(client, customer, second["externalJobId"])
    third = (await client.post("/api/v1/media/jobs", headers=customer.headers, json=body)).json()
    assert third["durationEstimateMeta"]["samples"] == 2


async def test_outputs_go_to_s3_compatible_storage_when_configured(
    settings: Settings,
    db: Database,
    customer: Customer,
    media_host: MediaHost,
    s3_endpoint: str,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    app = create_app(
        settings.model_copy(
            update={
                "storage_backend": "s3",
                "s3_bucket": s3_bucket,
                "s3_endpoint_url": s3_endpoint,
                "s3_access_key_id": S3_CREDENTIALS["access_key"],
                "s3_secret_access_key": SecretStr(S3_CREDENTIALS["secret_key"]),
                "s3_prefix": "outputs",
                "fetch_allowed_hosts": [media_host.address],
            }
        ),
        database=db,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as client,
    ):
        body = {
            "task": "video.combine",
            "input": {"videoUrls": [media_host.url("red.mp4"), media_host.url("blue.mp4")]},
        }
        job = (await client.post("/api/v1/media/jobs", headers=customer.headers, json=body)).json()
        done = await wait_for_job(client, customer, job["externalJobId"])
        assert done["status"] == "succeeded", done
        url = done["downloadableOutputUrls"][0]
        assert url.startswith(f"{s3_endpoint}/{s3_bucket}/outputs/jobs/")
        assert "X-Amz-Signature=" in url
        promised = await client.get(job["expectedOutputUrls"][0])
        assert promised.status_code == 307
    async with httpx.AsyncClient() as outside:
        download = await outside.get(url)
    assert download.status_code == 200
    output = tmp_path / "from-s3.mp4"
    output.write_bytes(download.content)
    assert decode_video(output).frames == done["outputFiles"][0]["properties"]["frames"]

"""One error shape everywhere, request ids, body limits, rate limits, JSON bodies, access logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette

from backend.app import create_app
from backend.db.engine import Database
from backend.http.rate_limit import TokenBuckets
from backend.settings import Settings
from tests.conftest import Customer


def assert_error_shape(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "requestId"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["requestId"] == response.headers["x-request-id"]


async def test_unknown_route_and_wrong_method_use_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    assert_error_shape(await client.get("/api/v1/nope"), 404, "NOT_FOUND")
    wrong = await client.delete("/api/v1/health")
    assert_error_shape(wrong, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in wrong.json()["error"]["details"]["allowedMethods"]


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/api/v1/health", headers={"X-Request-Id": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    generated = await client.get("/api/v1/health", headers={"X-Request-Id": "bad id with spaces"})
    assert generated.headers["x-request-id"].startswith("req_")
    error = await client.get("/api/v1/nope", headers={"X-Request-Id": "trace-456"})
    assert error.json()["requestId"] == "trace-456"


async def _app_client(
    settings: Settings, db: Database, **overrides: object
) -> tuple[Starlette, httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=overrides), database=db)
    return app, httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://gateway.test"
    )


async def test_oversize_bodies_are_413_whether_declared_or_streamed(
    settings: Settings, db: Database, customer: Customer
) -> None:
    _, client = await _app_client(settings, db, max_body_bytes=1024)
    async with client:
        declared = await client.post("/api/v1/keys", headers=customer.headers, content=b"x" * 2048)
        assert_error_shape(declared, 413, "PAYLOAD_TOO_LARGE")

        async def chunks():  # no Content-Length: the limit must count bytes as they arrive
            for _ in range(4):
                yield b"y" * 512

        streamed = await client.post("/api/v1/keys", headers=customer.headers, content=chunks())
        assert_error_shape(streamed, 413, "PAYLOAD_TOO_LARGE")
        assert declared.json()["error"]["details"]["maxBytes"] == 1024


async def test_rate_limit_answers_429_with_retry_after_per_key(
    settings: Settings, db: Database, customer: Customer
) -> None:
    _, client = await _app_client(settings, db, rate_limit_per_minute=60, rate_limit_burst=3)
    async with client:
        statuses = [
            (await client.get("/api/v1/balance", headers=customer.headers)).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        limited = await client.get("/api/v1/balance", headers=customer.headers)
        assert_error_shape(limited, 429, "RATE_LIMITED")
        assert int(limited.headers["retry-after"]) >= 1
        # Another key has its own bucket; health is never limited.
        other = await client.get("/api/v1/balance", headers={"Authorization": "Bearer other"})
        assert other.status_code == 401
        assert (await client.get("/api/v1/health")).status_code == 200


def test_token_bucket_refills_at_the_configured_rate() -> None:
    buckets = TokenBuckets(per_minute=60, burst=2)
    assert buckets.take("k", now=0.0) == 0
    assert buckets.take("k", now=0.0) == 0
    assert buckets.take("k", now=0.0) == pytest.approx(1.0)
    assert buckets.take("k", now=1.0) == 0


async def test_cors_allows_only_configured_origins(settings: Settings, db: Database) -> None:
    _, client = await _app_client(settings, db, cors_origins=["https://app.example"])
    async with client:
        allowed = await client.options(
            "/api/v1/balance",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        refused = await client.options(
            "/api/v1/balance",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in refused.headers


async def test_json_beyond_the_fast_parser_is_still_read_as_json(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    # An integer beyond 64 bits is valid JSON: it reaches validation and is refused there by
    # field and rule, not as unreadable JSON.
    huge = b'{"task": "image.generate", "input": {"prompt": "x", "seed": 123456789012345678901234}}'
    response = await client.post(
        "/api/v1/media/jobs",
        content=huge,
        headers={**customer.headers, "content-type": "application/json"},
    )
    assert_error_shape(response, 400, "VALIDATION_ERROR")
    assert response.json()["error"]["details"]["errors"][0]["field"] == "input.seed"

    broken = await client.post(
        "/api/v1/media/jobs",
        content=b'{"task": ',
        headers={**customer.headers, "content-type": "application/json"},
    )
    assert_error_shape(broken, 400, "INVALID_JSON")


async def test_access_log_records_each_request_only_when_enabled(
    client: httpx.AsyncClient, customer: Customer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="killa.access"):
        await client.get("/api/v1/balance", headers=customer.headers)
    [record] = [r for r in caplog.records if r.name == "killa.access"]
    assert (record.method, record.path, record.status) == ("GET", "/api/v1/balance", 200)
    assert record.accountId == customer.account_id
    assert record.durationMs >= 0

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="killa.access"):
        await client.get("/api/v1/balance", headers=customer.headers)
    assert [r for r in caplog.records if r.name == "killa.access"] == []

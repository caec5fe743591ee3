"""Keys and balance endpoints: auth, shapes and errors."""

from __future__ import annotations

import httpx
import pytest

from backend.db.engine import Database
from tests.conftest import Customer, make_customer


async def test_balance_reports_micros_and_usd_strings(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    response = await client.get("/api/v1/balance", headers=customer.headers)
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "usdBalanceMicros": 10_000_000,
        "usdBalance": "10.000000",
        "usdHeldMicros": 0,
        "usdHeld": "0.000000",
        "usdAvailableMicros": 10_000_000,
        "usdAvailable": "10.000000",
    }


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "API_KEY_MISSING"),
        ({"Authorization": "Basic abc"}, "API_KEY_MISSING"),
        ({"Authorization": "Bearer kt_live_not-a-real-key"}, "API_KEY_INVALID"),
    ],
)
async def test_protected_routes_refuse_missing_or_bad_keys(
    client: httpx.AsyncClient, headers: dict[str, str], code: str
) -> None:
    for method, path in [
        ("GET", "/api/v1/balance"),
        ("GET", "/api/v1/keys"),
        ("POST", "/api/v1/keys/revoke"),
    ]:
        response = await client.request(method, path, headers=headers, json={"keyId": "key_x"})
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == code
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_created_key_is_shown_once_stored_hashed_and_works(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    created = await client.post("/api/v1/keys", headers=customer.headers, json={"label": "laptop"})
    assert created.status_code == 201
    body = created.json()
    secret = body["apiKey"]
    assert secret.startswith("kt_live_")
    assert body["key"]["label"] == "laptop"
    assert secret.startswith(body["key"]["prefix"])
    assert len(body["key"]["prefix"]) < len(secret)

    listed = await client.get("/api/v1/keys", headers={"Authorization": f"Bearer {secret}"})
    assert listed.status_code == 200
    keys = listed.json()["keys"]
    assert [k["label"] for k in keys] == ["test", "laptop"]
    assert all(secret not in str(k) for k in keys)
    assert all(k["createdAt"].endswith("Z") for k in keys)
    # The key just used is marked as used.
    assert keys[1]["lastUsedAt"] is not None


async def test_revoked_key_is_refused_at_once(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    created = (await client.post("/api/v1/keys", headers=customer.headers, json={})).json()
    second = {"Authorization": f"Bearer {created['apiKey']}"}
    assert (await client.get("/api/v1/balance", headers=second)).status_code == 200

    revoked = await client.post(
        "/api/v1/keys/revoke", headers=customer.headers, json={"keyId": created["key"]["id"]}
    )
    assert revoked.status_code == 200
    assert revoked.json()["key"]["status"] == "revoked"

    refused = await client.get("/api/v1/balance", headers=second)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "API_KEY_INVALID"


async def test_cannot_revoke_another_accounts_key(
    client: httpx.AsyncClient, customer: Customer, db: Database
) -> None:
    other = await make_customer(db)
    their_keys = (await client.get("/api/v1/keys", headers=other.headers)).json()["keys"]
    response = await client.post(
        "/api/v1/keys/revoke", headers=customer.headers, json={"keyId": their_keys[0]["id"]}
    )
    assert response.status_code == 404
    assert (await client.get("/api/v1/balance", headers=other.headers)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": ""}, "label"),
        ({"label": "x" * 65}, "label"),
        ({"label": "ok", "extra": 1}, "extra"),
        ({"label": 5}, "label"),
    ],
)
async def test_create_key_validation_names_the_field(
    client: httpx.AsyncClient, customer: Customer, body: dict[str, object], field: str
) -> None:
    response = await client.post("/api/v1/keys", headers=customer.headers, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["errors"][0]["field"] == field
    assert field in error["message"]


async def test_revoke_needs_a_key_id(client: httpx.AsyncClient, customer: Customer) -> None:
    response = await client.post("/api/v1/keys/revoke", headers=customer.headers, json={})
    assert response.status_code == 400
    assert response.json()["error"]["details"]["errors"][0]["field"] == "keyId"


async def test_create_key_without_any_credential_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/keys", json={"label": "x"})
    assert response.status_code == 401


async def test_malformed_json_is_a_clear_400(client: httpx.AsyncClient, customer: Customer) -> None:
    response = await client.post(
        "/api/v1/keys",
        headers={**customer.headers, "Content-Type": "application/json"},
        content=b"{nope",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_JSON"


@pytest.mark.parametrize(
    ("method", "path", "replacement"),
    [
        ("GET", "/api/v1/credits/balance", "/api/v1/balance"),
        ("POST", "/api/v1/credits/consume", "/api/v1/media/jobs"),
    ],
)
async def test_deprecated_credit_routes_are_gone(
    client: httpx.AsyncClient, customer: Customer, method: str, path: str, replacement: str
) -> None:
    for headers in ({}, customer.headers):
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 410
        error = response.json()["error"]
        assert error["details"]["replacement"]["path"] == replacement
        assert replacement in error["message"]

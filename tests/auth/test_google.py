"""Google ID tokens: the real google-auth verification against a local key and certificate."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from backend.db.engine import Database
from tests.auth.conftest import ClientFactory
from tests.auth.fakes import OTHER_CLIENT_ID, FakeGoogle
from tests.auth.helpers import pre_session_csrf
from tests.conftest import make_customer


async def test_a_google_token_mints_a_working_key(
    client: httpx.AsyncClient, google: FakeGoogle
) -> None:
    token = google.token(email="Ada@Gmail.test")
    response = await client.post("/api/v1/auth/google", json={"idToken": token, "keyLabel": "ci"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["account"]["email"] == "ada@gmail.test"
    assert body["key"]["label"] == "ci"
    headers = {"Authorization": f"Bearer {body['apiKey']}"}
    assert (await client.get("/api/v1/balance", headers=headers)).status_code == 200


async def test_post_keys_bootstraps_a_first_key_from_a_google_token(
    client: httpx.AsyncClient, google: FakeGoogle, db: Database
) -> None:
    existing = await make_customer(db, email="boot@gmail.test")
    token = google.token(email="boot@gmail.test", aud=OTHER_CLIENT_ID)
    response = await client.post("/api/v1/keys", json={"idToken": token, "label": "phone"})
    assert response.status_code == 201, response.text
    assert response.json()["account"]["id"] == existing.account_id
    assert response.json()["key"]["label"] == "phone"


FORGERIES: dict[str, dict[str, Any]] = {
    "another audience": {"aud": "someone-else.apps.googleusercontent.com"},
    "another issuer": {"iss": "https://evil.example"},
    "expired": {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600},
    "issued in the future": {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200},
    "unverified email": {"email_verified": False},
    "no email": {"email": None},
}


@pytest.mark.parametrize("claims", FORGERIES.values(), ids=FORGERIES.keys())
async def test_tokens_with_bad_claims_are_refused(
    client: httpx.AsyncClient, google: FakeGoogle, claims: dict[str, Any]
) -> None:
    response = await client.post("/api/v1/auth/google", json={"idToken": google.token(**claims)})
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "GOOGLE_TOKEN_INVALID"


async def test_a_token_signed_by_another_key_is_refused(
    client: httpx.AsyncClient, google: FakeGoogle, attacker_key_pem: bytes
) -> None:
    forged = google.token(private_pem=attacker_key_pem)  # claims Google's key id
    response = await client.post("/api/v1/auth/google", json={"idToken": forged})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "GOOGLE_TOKEN_INVALID"


async def test_a_tampered_payload_is_refused(client: httpx.AsyncClient, google: FakeGoogle) -> None:
    header, _, signature = google.token(email="me@gmail.test").split(".")
    other_payload = google.token(email="victim@gmail.test").split(".")[1]
    response = await client.post(
        "/api/v1/auth/google", json={"idToken": f"{header}.{other_payload}.{signature}"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("token", ["x" * 40, "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "a.b.c" * 10])
async def test_garbage_tokens_are_401_not_500(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post("/api/v1/auth/google", json={"idToken": token})
    assert response.status_code == 401


async def test_an_unknown_key_id_is_refused(client: httpx.AsyncClient, google: FakeGoogle) -> None:
    response = await client.post(
        "/api/v1/auth/google", json={"idToken": google.token(key_id="rotated-away")}
    )
    assert response.status_code == 401


async def test_certificates_are_fetched_once_and_cached(
    make_client: ClientFactory, google: FakeGoogle
) -> None:
    client = await make_client()  # a fresh app, so a fresh certificate cache
    before = google.certificate_fetches
    for _ in range(3):
        response = await client.post("/api/v1/auth/google", json={"idToken": google.token()})
        assert response.status_code == 201
    assert google.certificate_fetches == before + 1


async def test_without_client_ids_google_sign_in_is_off(
    make_client: ClientFactory, google: FakeGoogle
) -> None:
    client = await make_client(google_client_ids=[])
    response = await client.post("/api/v1/auth/google", json={"idToken": google.token()})
    assert response.status_code == 501
    assert response.json()["error"]["code"] == "GOOGLE_SIGN_IN_DISABLED"


async def test_browser_google_sign_in_sets_a_session_and_needs_csrf(
    client: httpx.AsyncClient, google: FakeGoogle
) -> None:
    token = google.token(email="web@gmail.test")
    refused = await client.post("/api/v1/auth/browser/google", json={"idToken": token})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "CSRF_TOKEN_INVALID"

    csrf = await pre_session_csrf(client)
    response = await client.post(
        "/api/v1/auth/browser/google", json={"idToken": token}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 200, response.text
    assert "__Host-killa_session=" in response.headers["set-cookie"]
    session = (await client.get("/api/v1/auth/browser/session")).json()
    assert session["account"]["email"] == "web@gmail.test"

"""Steps that many sign-in tests take."""

from __future__ import annotations

from typing import Any

import httpx

from tests.auth.fakes import Inbox

CLI_USER_AGENT = "killa-cli/0.7.0 (test-laptop; Linux)"


async def emailed_code(client: httpx.AsyncClient, inbox: Inbox, email: str) -> str:
    response = await client.post("/api/v1/auth/email/start", json={"email": email})
    assert response.status_code == 200, response.text
    return inbox.code_for(email)


async def pre_session_csrf(client: httpx.AsyncClient) -> str:
    response = await client.get("/api/v1/auth/browser/session")
    assert response.json()["authenticated"] is False
    return str(response.json()["csrfToken"])


async def sign_in_browser(client: httpx.AsyncClient, inbox: Inbox, email: str) -> str:
    """Signs the client's cookie jar in; returns the session's CSRF token."""
    csrf = await pre_session_csrf(client)
    code = await emailed_code(client, inbox, email)
    response = await client.post(
        "/api/v1/auth/browser/email/verify",
        json={"email": email, "code": code},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["csrfToken"])


async def start_link(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/device/link/start", json=body, headers={"User-Agent": CLI_USER_AGENT}
    )
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


async def poll(client: httpx.AsyncClient, device_code: str) -> httpx.Response:
    return await client.post("/api/v1/device/link/poll", json={"deviceCode": device_code})

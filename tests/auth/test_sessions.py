"""Browser sessions: cookie attributes, server-side revocation and expiry, CSRF."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie

import httpx
from sqlalchemy import update

from backend.auth.models import BrowserSession
from backend.db.base import utcnow
from backend.db.engine import Database
from tests.auth.conftest import ClientFactory
from tests.auth.fakes import Inbox
from tests.auth.helpers import emailed_code, pre_session_csrf, sign_in_browser


def cookie_attributes(response: httpx.Response, name: str) -> dict[str, str | bool]:
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            morsel = cookie[name]
            return {
                key: morsel[key] for key in ("httponly", "secure", "samesite", "path", "max-age")
            }
    raise AssertionError(f"no {name} cookie set")


async def test_email_sign_in_sets_a_hardened_cookie_and_the_session_names_the_account(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    csrf = await pre_session_csrf(client)
    code = await emailed_code(client, inbox, "browser@example.com")
    response = await client.post(
        "/api/v1/auth/browser/email/verify",
        json={"email": "browser@example.com", "code": code},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 200, response.text
    assert "apiKey" not in response.json()
    attributes = cookie_attributes(response, "__Host-killa_session")
    assert attributes == {
        "httponly": True,
        "secure": True,
        "samesite": "lax",
        "path": "/",
        "max-age": str(7 * 24 * 3600),
    }
    session = await client.get("/api/v1/auth/browser/session")
    assert session.json()["authenticated"] is True
    assert session.json()["account"]["email"] == "browser@example.com"
    assert session.json()["csrfToken"] == response.json()["csrfToken"] != csrf


async def test_on_a_plain_http_url_cookies_are_not_secure(
    make_client: ClientFactory, inbox: Inbox
) -> None:
    client = await make_client(public_base_url="http://127.0.0.1:8000")
    response = await client.get("/api/v1/auth/browser/session")
    attributes = cookie_attributes(response, "killa_csrf")
    assert attributes["secure"] == ""
    assert attributes["httponly"] is True
    await sign_in_browser(client, inbox, "plain@example.com")
    assert (await client.get("/api/v1/auth/browser/session")).json()["authenticated"] is True


async def test_browser_sign_in_without_or_with_a_wrong_csrf_token_is_refused(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    csrf = await pre_session_csrf(client)
    code = await emailed_code(client, inbox, "csrf@example.com")
    body = {"email": "csrf@example.com", "code": code}
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        response = await client.post(
            "/api/v1/auth/browser/email/verify", json=body, headers=headers
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "CSRF_TOKEN_INVALID"
    assert (await client.get("/api/v1/auth/browser/session")).json()["authenticated"] is False
    # Refused before the code was looked at: it still works with the right token.
    response = await client.post(
        "/api/v1/auth/browser/email/verify", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 200


async def test_sign_out_needs_csrf_and_revokes_the_session_server_side(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    csrf = await sign_in_browser(client, inbox, "out@example.com")
    stolen_cookies = httpx.Cookies(client.cookies)

    refused = await client.delete("/api/v1/auth/browser/session")
    assert refused.status_code == 403
    assert (await client.get("/api/v1/auth/browser/session")).json()["authenticated"] is True

    response = await client.delete("/api/v1/auth/browser/session", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "authenticated": False}
    # Replaying the old cookie does not bring the session back: it is revoked in the database.
    client.cookies = stolen_cookies
    assert (await client.get("/api/v1/auth/browser/session")).json()["authenticated"] is False


async def test_an_expired_session_is_signed_out(
    client: httpx.AsyncClient, inbox: Inbox, db: Database
) -> None:
    await sign_in_browser(client, inbox, "expire@example.com")
    async with db.transaction() as session:
        await session.execute(
            update(BrowserSession).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (await client.get("/api/v1/auth/browser/session")).json()["authenticated"] is False


async def test_a_forged_session_cookie_is_anonymous(client: httpx.AsyncClient) -> None:
    client.cookies.set("__Host-killa_session", "made-up", domain="gateway.test")
    response = await client.get("/api/v1/auth/browser/session")
    assert response.json()["authenticated"] is False


async def test_signing_out_without_a_session_is_a_harmless_no_op(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/auth/browser/session")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "authenticated": False}

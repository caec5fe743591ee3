"""The sign-in and device-link pages, driven as a browser without JavaScript would: forms only."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.auth.conftest import ClientFactory
from tests.auth.fakes import GOOGLE_CLIENT_ID, FakeGoogle, Inbox
from tests.auth.helpers import CLI_USER_AGENT, poll, start_link


def hidden(page: httpx.Response, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert match, f"no hidden {name} field in:\n{page.text}"
    return html.unescape(match.group(1))


def alert(page: httpx.Response) -> str:
    match = re.search(r'role="alert">(.*?)</div>', page.text, re.S)
    assert match, f"no alert in:\n{page.text}"
    return " ".join(re.sub(r"<[^>]+>", " ", html.unescape(match.group(1))).split())


async def sign_in_with_forms(
    client: httpx.AsyncClient, inbox: Inbox, email: str, next_path: str = "/login"
) -> httpx.Response:
    page = await client.get("/login", params={"next": next_path})
    sent = await client.post(
        "/login/email",
        data={"csrf_token": hidden(page, "csrf_token"), "next": next_path, "email": email},
    )
    assert sent.status_code == 200, sent.text
    assert "Check your email" in sent.text
    return await client.post(
        "/login/verify",
        data={
            "csrf_token": hidden(sent, "csrf_token"),
            "next": hidden(sent, "next"),
            "email": hidden(sent, "email"),
            "code": inbox.code_for(email),
        },
    )


async def test_a_person_links_a_device_with_forms_alone(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    started = await start_link(client, keyLabel="studio laptop")
    url = urlsplit(started["verificationUrlComplete"])

    visit = await client.get(f"{url.path}?{url.query}")
    assert visit.status_code == 303
    assert visit.headers["location"] == (f"/login?next=%2Fdevice%3Fcode%3D{started['userCode']}")
    login_page = await client.get(visit.headers["location"])
    assert "Sign in to approve the device" in login_page.text
    next_path = hidden(login_page, "next")

    signed_in = await sign_in_with_forms(client, inbox, "person@example.com", next_path)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == f"/device?code={started['userCode']}"

    confirm = await client.get(signed_in.headers["location"])
    assert confirm.status_code == 200
    assert "Approve this device?" in confirm.text
    for shown in (started["userCode"], html.escape(CLI_USER_AGENT), "studio laptop", "127.0.0.1"):
        assert shown in confirm.text
    assert "person@example.com" in confirm.text

    done = await client.post(
        "/device",
        data={
            "csrf_token": hidden(confirm, "csrf_token"),
            "code": hidden(confirm, "code"),
            "decision": "approve",
        },
    )
    assert done.status_code == 200
    assert "Device linked" in done.text

    collected = (await poll(client, started["deviceCode"])).json()
    assert collected["status"] == "approved"
    assert collected["account"]["email"] == "person@example.com"


async def test_deny_from_the_page(client: httpx.AsyncClient, inbox: Inbox) -> None:
    started = await start_link(client)
    await sign_in_with_forms(client, inbox, "denier@example.com")
    confirm = await client.get("/device", params={"code": started["userCode"]})
    done = await client.post(
        "/device",
        data={
            "csrf_token": hidden(confirm, "csrf_token"),
            "code": started["userCode"],
            "decision": "deny",
        },
    )
    assert "Request denied" in done.text
    assert (await poll(client, started["deviceCode"])).json()["status"] == "denied"


async def test_forms_without_the_csrf_token_are_refused(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    await client.get("/login")
    refused = await client.post("/login/email", data={"email": "x@example.com", "next": "/login"})
    assert refused.status_code == 403
    assert "security token" in alert(refused)
    assert inbox.messages == []

    started = await start_link(client)
    await sign_in_with_forms(client, inbox, "victim@example.com")
    forged = await client.post("/device", data={"code": started["userCode"], "decision": "approve"})
    assert forged.status_code == 403
    shown = await client.get(
        "/api/v1/device/link/request", params={"userCode": started["userCode"]}
    )
    assert shown.json()["request"]["status"] == "pending"

    sign_out = await client.post("/logout", data={})
    assert sign_out.status_code == 403
    assert (await client.get("/api/v1/auth/browser/session")).json()["authenticated"] is True


async def test_the_device_form_needs_an_explicit_decision(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    started = await start_link(client)
    await sign_in_with_forms(client, inbox, "undecided@example.com")
    confirm = await client.get("/device", params={"code": started["userCode"]})
    response = await client.post(
        "/device", data={"csrf_token": hidden(confirm, "csrf_token"), "code": started["userCode"]}
    )
    assert response.status_code == 400
    assert "Choose Approve or Deny" in alert(response)
    assert (await poll(client, started["deviceCode"])).json()["status"] == "pending"


async def test_sign_out_form(client: httpx.AsyncClient, inbox: Inbox) -> None:
    await sign_in_with_forms(client, inbox, "leaver@example.com")
    page = await client.get("/login")
    assert "You're signed in" in page.text
    response = await client.post("/logout", data={"csrf_token": hidden(page, "csrf_token")})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert (await client.get("/api/v1/auth/browser/session")).json()["authenticated"] is False


async def test_a_wrong_code_says_how_many_tries_are_left(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    page = await client.get("/login")
    sent = await client.post(
        "/login/email",
        data={"csrf_token": hidden(page, "csrf_token"), "email": "typo@example.com"},
    )
    code = inbox.code_for("typo@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    form = {"csrf_token": hidden(sent, "csrf_token"), "email": "typo@example.com"}
    answer = await client.post("/login/verify", data={**form, "code": wrong})
    assert answer.status_code == 400
    assert "4 attempt(s) left" in alert(answer)
    assert hidden(answer, "email") == "typo@example.com"  # still on the code step

    not_digits = await client.post("/login/verify", data={**form, "code": "12ab"})
    assert "6 digits" in alert(not_digits)
    # That typo cost no attempt: the right code still works.
    right = await client.post("/login/verify", data={**form, "code": code})
    assert right.status_code == 303


async def test_an_unknown_device_code_is_explained(client: httpx.AsyncClient, inbox: Inbox) -> None:
    await sign_in_with_forms(client, inbox, "reader@example.com")
    page = await client.get("/device", params={"code": "BBBB-CCCC"})
    assert page.status_code == 404
    assert "No device is waiting for this code" in alert(page)
    assert 'name="code"' in page.text  # and the form to try again


@pytest.mark.parametrize(
    "next_path", ["//evil.test/x", "https://evil.test/", "/\\evil.test", "javascript:alert(1)"]
)
async def test_next_never_leaves_the_site(
    client: httpx.AsyncClient, inbox: Inbox, next_path: str
) -> None:
    response = await sign_in_with_forms(client, inbox, "safe@example.com", next_path)
    assert response.headers["location"] == "/login"


async def test_pages_load_only_their_own_assets_and_refuse_framing(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/login")
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    assert not re.search(r'(src|href)="(https?:)?//', page.text)
    css = await client.get("/static/web/killa.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


async def test_the_google_button_shows_only_when_configured(make_client: ClientFactory) -> None:
    with_google = await (await make_client()).get("/login")
    assert "Continue with Google" in with_google.text
    without = await (await make_client(google_client_ids=[])).get("/login")
    assert "Continue with Google" not in without.text


async def google_start(client: httpx.AsyncClient, next_path: str) -> dict[str, str]:
    response = await client.get("/auth/google/start", params={"next": next_path})
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "https://accounts.google.com/o/oauth2/v2/auth"
    )
    return {key: values[0] for key, values in parse_qs(location.query).items()}


async def test_google_sign_in_round_trip(
    client: httpx.AsyncClient, make_client: ClientFactory, google: FakeGoogle
) -> None:
    asked = await google_start(client, "/device")
    assert asked["client_id"] == GOOGLE_CLIENT_ID
    assert asked["redirect_uri"] == "https://gateway.test/auth/google/callback"
    assert asked["response_type"] == "id_token"
    assert asked["response_mode"] == "form_post"

    # Google's cross-site form post: it carries no cookies and signs nobody in by itself.
    token = google.token(email="g@gmail.test", nonce=asked["nonce"])
    from_google = await make_client()
    callback = await from_google.post(
        "/auth/google/callback", data={"id_token": token, "state": asked["state"]}
    )
    assert callback.status_code == 200
    assert 'action="/auth/google/finish"' in callback.text
    assert "/static/web/continue.js" in callback.text

    finish = await client.post(
        "/auth/google/finish",
        data={"id_token": hidden(callback, "id_token"), "state": hidden(callback, "state")},
    )
    assert finish.status_code == 303
    assert finish.headers["location"] == "/device"
    session = (await client.get("/api/v1/auth/browser/session")).json()
    assert session["account"]["email"] == "g@gmail.test"


async def test_google_answers_meant_for_another_browser_are_refused(
    client: httpx.AsyncClient, make_client: ClientFactory, google: FakeGoogle
) -> None:
    # The attacker starts a sign-in in their browser and feeds the answer to the victim's.
    attacker = await make_client()
    asked = await google_start(attacker, "/login")
    token = google.token(email="attacker@gmail.test", nonce=asked["nonce"])
    await google_start(client, "/login")  # the victim has a state cookie of their own
    forced = await client.post(
        "/auth/google/finish", data={"id_token": token, "state": asked["state"]}
    )
    assert forced.status_code == 403
    assert (await client.get("/api/v1/auth/browser/session")).json()["authenticated"] is False


async def test_a_google_token_minted_for_another_attempt_is_refused(
    client: httpx.AsyncClient, google: FakeGoogle
) -> None:
    asked = await google_start(client, "/login")
    token = google.token(email="replay@gmail.test", nonce="some-other-attempt")
    response = await client.post(
        "/auth/google/finish", data={"id_token": token, "state": asked["state"]}
    )
    assert response.status_code == 401
    assert "another sign-in attempt" in alert(response)

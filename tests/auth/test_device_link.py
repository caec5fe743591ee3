"""Device linking over the JSON API: start, describe, approve or deny, poll for the key once."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from backend.accounts.models import ApiKey
from backend.auth.device_link import (
    USER_CODE_ALPHABET,
    format_user_code,
    normalize_user_code,
)
from backend.auth.models import DeviceLink
from backend.db.base import utcnow
from backend.db.engine import Database
from tests.auth.conftest import ClientFactory
from tests.auth.fakes import Inbox
from tests.auth.helpers import CLI_USER_AGENT, poll, sign_in_browser, start_link
from tests.conftest import Customer

USER_CODE = re.compile(rf"^[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}$")


async def approve(
    client: httpx.AsyncClient, user_code: str, headers: dict[str, str], **body: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/device/link/approve", json={"userCode": user_code, **body}, headers=headers
    )


async def allow_next_poll(db: Database) -> None:
    """Pretend the client waited its interval (instead of sleeping in the test)."""
    async with db.transaction() as session:
        await session.execute(
            update(DeviceLink).values(last_polled_at=utcnow() - timedelta(minutes=1))
        )


async def test_start_returns_rfc_8628_style_codes_and_urls(client: httpx.AsyncClient) -> None:
    started = await start_link(client, keyLabel="laptop")
    assert len(started["deviceCode"]) >= 43  # 256 bits
    assert USER_CODE.match(started["userCode"])
    assert started["verificationUrl"] == "https://gateway.test/device"
    assert started["verificationUrlComplete"] == (
        f"https://gateway.test/device?code={started['userCode']}"
    )
    assert started["expiresIn"] == 600
    assert started["interval"] == 5


async def test_start_takes_no_body_too(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/device/link/start")
    assert response.status_code == 201


async def test_request_shows_what_is_being_linked(client: httpx.AsyncClient) -> None:
    started = await start_link(client, keyLabel="build box")
    typed = started["userCode"].lower().replace("-", " ")  # as a person might type it
    response = await client.get("/api/v1/device/link/request", params={"userCode": typed})
    assert response.status_code == 200
    shown = response.json()["request"]
    assert shown["userCode"] == started["userCode"]
    assert shown["status"] == "pending"
    assert shown["clientName"] == CLI_USER_AGENT
    assert shown["keyLabel"] == "build box"
    assert shown["requestedFromIp"] == "127.0.0.1"
    assert shown["requestedAt"].endswith("Z")


async def test_approved_link_hands_out_a_working_key_exactly_once(
    client: httpx.AsyncClient, customer: Customer, db: Database
) -> None:
    started = await start_link(client, keyLabel="laptop")
    pending = await poll(client, started["deviceCode"])
    assert pending.json()["status"] == "pending"
    assert "apiKey" not in pending.json()

    approved = await approve(client, started["userCode"], customer.headers)
    assert approved.status_code == 200
    assert approved.json()["request"]["status"] == "approved"

    await allow_next_poll(db)
    response = await poll(client, started["deviceCode"])
    body = response.json()
    assert body["status"] == "approved"
    assert body["account"]["id"] == customer.account_id
    assert body["key"]["label"] == "laptop"
    headers = {"Authorization": f"Bearer {body['apiKey']}"}
    assert (await client.get("/api/v1/balance", headers=headers)).status_code == 200

    await allow_next_poll(db)
    replay = await poll(client, started["deviceCode"])
    assert replay.status_code == 410
    assert replay.json()["error"]["code"] == "DEVICE_CODE_USED"
    async with db.transaction(write=False) as session:
        keys = list(await session.scalars(select(ApiKey).where(ApiKey.label == "laptop")))
    assert len(keys) == 1


async def test_racing_polls_get_one_key_between_them(
    client: httpx.AsyncClient, customer: Customer, db: Database
) -> None:
    started = await start_link(client)
    await approve(client, started["userCode"], customer.headers, keyLabel="raced")
    answers = await asyncio.gather(*(poll(client, started["deviceCode"]) for _ in range(5)))
    keys = [a.json()["apiKey"] for a in answers if a.status_code == 200 and "apiKey" in a.json()]
    assert len(keys) == 1
    async with db.transaction(write=False) as session:
        issued = list(await session.scalars(select(ApiKey).where(ApiKey.label == "raced")))
    assert len(issued) == 1


async def test_polling_faster_than_the_interval_is_told_to_slow_down(
    client: httpx.AsyncClient, customer: Customer, db: Database
) -> None:
    started = await start_link(client)
    assert (await poll(client, started["deviceCode"])).json()["status"] == "pending"
    fast = (await poll(client, started["deviceCode"])).json()
    assert fast["status"] == "slow_down"
    assert fast["interval"] == 10
    faster = (await poll(client, started["deviceCode"])).json()
    assert faster == {**faster, "status": "slow_down", "interval": 15}

    # Even once approved, a too-fast poll gets no key.
    await approve(client, started["userCode"], customer.headers)
    assert (await poll(client, started["deviceCode"])).json()["status"] == "slow_down"
    await allow_next_poll(db)
    assert (await poll(client, started["deviceCode"])).json()["status"] == "approved"


async def test_a_denied_link_never_yields_a_key(
    client: httpx.AsyncClient, customer: Customer, db: Database
) -> None:
    started = await start_link(client)
    denied = await approve(client, started["userCode"], customer.headers, decision="deny")
    assert denied.json()["request"]["status"] == "denied"
    assert (await poll(client, started["deviceCode"])).json()["status"] == "denied"

    again = await approve(client, started["userCode"], customer.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "DEVICE_LINK_ALREADY_DECIDED"
    await allow_next_poll(db)
    assert (await poll(client, started["deviceCode"])).json()["status"] == "denied"


async def test_an_expired_link_cannot_be_approved_or_collected(
    client: httpx.AsyncClient, customer: Customer, db: Database
) -> None:
    started = await start_link(client)
    async with db.transaction() as session:
        await session.execute(update(DeviceLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await poll(client, started["deviceCode"])).json()["status"] == "expired"
    shown = await client.get(
        "/api/v1/device/link/request", params={"userCode": started["userCode"]}
    )
    assert shown.status_code == 410
    refused = await approve(client, started["userCode"], customer.headers)
    assert refused.status_code == 410
    assert refused.json()["error"]["code"] == "DEVICE_LINK_EXPIRED"


async def test_approval_after_expiry_of_an_approved_link_gives_no_key(
    client: httpx.AsyncClient, customer: Customer, db: Database
) -> None:
    started = await start_link(client)
    await approve(client, started["userCode"], customer.headers)
    async with db.transaction() as session:
        await session.execute(update(DeviceLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await poll(client, started["deviceCode"])).json()["status"] == "expired"


async def test_an_unknown_device_code_is_404(client: httpx.AsyncClient) -> None:
    response = await poll(client, "x" * 43)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "DEVICE_CODE_INVALID"


async def test_approving_needs_an_api_key_or_a_session_with_its_csrf_token(
    client: httpx.AsyncClient, inbox: Inbox, db: Database
) -> None:
    started = await start_link(client)
    anonymous = await approve(client, started["userCode"], {})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "SIGN_IN_REQUIRED"
    bad_key = await approve(client, started["userCode"], {"Authorization": "Bearer kt_live_nope"})
    assert bad_key.status_code == 401

    csrf = await sign_in_browser(client, inbox, "approver@example.com")
    no_csrf = await approve(client, started["userCode"], {})
    assert no_csrf.status_code == 403
    assert no_csrf.json()["error"]["code"] == "CSRF_TOKEN_INVALID"

    approved = await approve(client, started["userCode"], {"X-CSRF-Token": csrf}, keyLabel="web")
    assert approved.status_code == 200
    await allow_next_poll(db)
    body = (await poll(client, started["deviceCode"])).json()
    assert body["account"]["email"] == "approver@example.com"
    assert body["key"]["label"] == "web"


async def test_guessing_user_codes_is_rate_limited(
    make_client: ClientFactory, customer: Customer
) -> None:
    client = await make_client(user_code_lookups_per_minute=3)
    started = await start_link(client)
    guesses = [
        await client.get("/api/v1/device/link/request", params={"userCode": guess})
        for guess in ("BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD")
    ]
    assert [g.status_code for g in guesses] == [404, 404, 404]
    assert guesses[0].json()["error"]["code"] == "USER_CODE_NOT_FOUND"
    # The fourth try is refused before it is checked, even with the right code.
    blocked = await client.get(
        "/api/v1/device/link/request", params={"userCode": started["userCode"]}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    also_blocked = await approve(client, started["userCode"], customer.headers)
    assert also_blocked.status_code == 429


async def test_request_needs_a_user_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/device/link/request")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["errors"][0]["field"] == "userCode"


@given(st.text(alphabet=USER_CODE_ALPHABET, min_size=8, max_size=8))
def test_user_codes_survive_the_ways_people_type_them(code: str) -> None:
    shown = format_user_code(code)
    for typed in (shown, shown.lower(), code, f" {shown[:4]} {shown[5:]} "):
        assert normalize_user_code(typed.strip()) == code


@given(st.text(min_size=1, max_size=12))
def test_anything_else_is_not_a_user_code(text: str) -> None:
    normalized = normalize_user_code(text)
    assert normalized is None or (
        len(normalized) == 8 and set(normalized) <= set(USER_CODE_ALPHABET)
    )


def test_the_alphabet_has_no_vowels_and_no_digits() -> None:
    # No vowels (no words can form) and letters only (no 0/O or 1/I confusion).
    assert not set(USER_CODE_ALPHABET) & set("AEIOUY")
    assert USER_CODE_ALPHABET.isalpha()

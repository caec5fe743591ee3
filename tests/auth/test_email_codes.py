"""Emailed one-time codes over the real SMTP client, against a local SMTP server."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from backend.auth.models import EmailCode
from backend.db.base import utcnow
from backend.db.engine import Database
from tests.auth.conftest import ClientFactory
from tests.auth.fakes import Inbox, free_port
from tests.auth.helpers import emailed_code
from tests.conftest import make_customer


async def verify(client: httpx.AsyncClient, email: str, code: str, **extra: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/email/verify", json={"email": email, "code": code, **extra}
    )


async def test_a_mailed_code_mints_a_working_key_for_a_new_account(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    started = await client.post(
        "/api/v1/auth/email/start", json={"email": "New.Person@Example.com"}
    )
    assert started.status_code == 200
    assert started.json()["expiresIn"] == 600

    message = inbox.wait_for("new.person@example.com")
    assert "sign-in code" in message["Subject"]
    assert message["From"] == "Killa Tamata <no-reply@localhost>"
    code = inbox.code_for("new.person@example.com")
    assert code in message["Subject"]
    assert "expires in 10 minutes" in message.get_content()

    response = await verify(client, "new.person@example.com", code, keyLabel="laptop")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["account"]["email"] == "new.person@example.com"
    assert body["key"]["label"] == "laptop"
    balance = await client.get(
        "/api/v1/balance", headers={"Authorization": f"Bearer {body['apiKey']}"}
    )
    assert balance.status_code == 200


async def test_an_existing_account_signs_in_to_itself_and_start_does_not_tell_which(
    client: httpx.AsyncClient, inbox: Inbox, db: Database
) -> None:
    existing = await make_customer(db, email="known@example.com")
    known = await client.post("/api/v1/auth/email/start", json={"email": "known@example.com"})
    unknown = await client.post("/api/v1/auth/email/start", json={"email": "nobody@example.com"})
    # No account enumeration: the answers are identical byte for byte.
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content

    response = await verify(client, "known@example.com", inbox.code_for("known@example.com"))
    assert response.json()["account"]["id"] == existing.account_id


async def test_the_code_is_stored_only_as_a_keyed_hash(
    client: httpx.AsyncClient, inbox: Inbox, db: Database
) -> None:
    code = await emailed_code(client, inbox, "hash@example.com")
    async with db.transaction(write=False) as session:
        row = await session.scalar(select(EmailCode).where(EmailCode.email == "hash@example.com"))
    assert row is not None
    assert code not in row.code_hash
    assert len(row.code_hash) == 64


async def test_five_wrong_codes_kill_the_code_even_the_right_one_after(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    code = await emailed_code(client, inbox, "guess@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = [await verify(client, "guess@example.com", wrong) for _ in range(5)]
    assert [a.status_code for a in answers] == [400] * 5
    assert [a.json()["error"]["details"].get("attemptsLeft") for a in answers[:4]] == [4, 3, 2, 1]
    assert answers[4].json()["error"]["code"] == "EMAIL_CODE_EXHAUSTED"

    right = await verify(client, "guess@example.com", code)
    assert right.status_code == 400
    assert right.json()["error"]["code"] == "EMAIL_CODE_EXHAUSTED"


async def test_an_expired_code_is_refused(
    client: httpx.AsyncClient, inbox: Inbox, db: Database
) -> None:
    code = await emailed_code(client, inbox, "late@example.com")
    async with db.transaction() as session:
        await session.execute(update(EmailCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = await verify(client, "late@example.com", code)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "EMAIL_CODE_EXPIRED"


async def test_a_code_works_once(client: httpx.AsyncClient, inbox: Inbox) -> None:
    code = await emailed_code(client, inbox, "once@example.com")
    assert (await verify(client, "once@example.com", code)).status_code == 201
    replay = await verify(client, "once@example.com", code)
    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "EMAIL_CODE_INVALID"


async def test_a_new_code_replaces_the_old_one(client: httpx.AsyncClient, inbox: Inbox) -> None:
    first = await emailed_code(client, inbox, "twice@example.com")
    inbox.messages.clear()
    second = await emailed_code(client, inbox, "twice@example.com")
    if first != second:
        assert (await verify(client, "twice@example.com", first)).status_code == 400
    assert (await verify(client, "twice@example.com", second)).status_code == 201


async def test_a_code_for_one_address_does_not_open_another(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    code = await emailed_code(client, inbox, "mine@example.com")
    await emailed_code(client, inbox, "theirs@example.com")
    response = await verify(client, "theirs@example.com", code)
    if response.status_code != 400:  # the two 6-digit codes collided (1 in a million)
        pytest.skip("codes collided")
    assert response.json()["error"]["code"] == "EMAIL_CODE_INVALID"


async def test_sends_are_limited_per_address_with_retry_after(
    make_client: ClientFactory, inbox: Inbox
) -> None:
    client = await make_client(email_codes_per_hour_per_address=2)
    for _ in range(2):
        ok = await client.post("/api/v1/auth/email/start", json={"email": "spam@example.com"})
        assert ok.status_code == 200
    refused = await client.post("/api/v1/auth/email/start", json={"email": "SPAM@example.com"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert 1000 < int(refused.headers["Retry-After"]) <= 1800
    assert len(inbox.messages) == 2
    # Another address from the same client is not affected by this address's limit.
    other = await client.post("/api/v1/auth/email/start", json={"email": "other@example.com"})
    assert other.status_code == 200


async def test_sends_are_limited_per_client_ip(make_client: ClientFactory) -> None:
    client = await make_client(email_codes_per_hour_per_ip=3)
    statuses = [
        (
            await client.post("/api/v1/auth/email/start", json={"email": f"u{i}@example.com"})
        ).status_code
        for i in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@example.com", "code": "12345"}, "code"),
        ({"email": "a@example.com", "code": "1234567"}, "code"),
        ({"email": "a@example.com", "code": "123456", "extra": True}, "extra"),
    ],
)
async def test_verify_validation_names_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post("/api/v1/auth/email/verify", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["details"]["errors"][0]["field"] == field


async def test_without_smtp_the_code_goes_to_the_log(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(smtp_host=None)
    with caplog.at_level(logging.WARNING, logger="killa.auth.mail"):
        response = await client.post(
            "/api/v1/auth/email/start", json={"email": "local@example.com"}
        )
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.name == "killa.auth.mail"]
    code = record.getMessage().rsplit(" ", 1)[-1]
    assert (await verify(client, "local@example.com", code)).status_code == 201


async def test_an_unreachable_mail_server_is_a_clear_503(make_client: ClientFactory) -> None:
    client = await make_client(smtp_port=free_port())
    response = await client.post("/api/v1/auth/email/start", json={"email": "x@example.com"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "EMAIL_DELIVERY_FAILED"

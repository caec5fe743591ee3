"""The sign-in use cases, shared by the JSON routes and the browser pages.

Each opens the request's transaction (the one commit) around the services, which only flush, and
does what must happen outside it: abuse limits before, mail and Google's certificates outside
any transaction, and a refused email code raised only after its spent attempt is committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from backend.accounts.models import Account
from backend.accounts.service import IssuedKey, accounts, api_keys, normalize_email
from backend.auth.browser import CSRF_HEADER, current_browser, require_csrf
from backend.auth.device_link import PollResult, StartedLink, device_links
from backend.auth.email_codes import EmailCodeRejected, IssuedCode, email_codes
from backend.auth.google import GoogleIdentity
from backend.auth.models import DeviceLink
from backend.auth.runtime import auth_runtime, client_ip
from backend.auth.sessions import ActiveBrowserSession, NewBrowserSession, browser_sessions
from backend.db.base import utcnow
from backend.http.auth import bearer_token, require_principal
from backend.http.context import app_context
from backend.http.errors import Unauthorized

T = TypeVar("T")


@dataclass(frozen=True)
class SignedInKey:
    account: Account
    issued: IssuedKey


class SignInRequired(Unauthorized):
    code = "SIGN_IN_REQUIRED"


# --- email one-time codes -------------------------------------------------------------------


async def send_email_code(connection: HTTPConnection, email: str) -> IssuedCode:
    """Mail a fresh code. The answer is the same whether or not an account exists."""
    runtime = auth_runtime(connection)
    ip = client_ip(connection)
    email = normalize_email(email)
    runtime.limits.email_send(email, ip)
    async with app_context(connection).db.transaction() as session:
        issued = await email_codes.issue(
            session, email, ip=ip, policy=runtime.email_codes, now=utcnow()
        )
    # After the commit: a mail server that takes seconds must not hold the write lock.
    await runtime.mailer.send_code(issued)
    return issued


async def key_from_email_code(
    connection: HTTPConnection, email: str, code: str, *, label: str | None
) -> SignedInKey:
    return await _with_email_code(connection, email, code, _issue_key(label))


async def session_from_email_code(
    connection: HTTPConnection, email: str, code: str
) -> NewBrowserSession:
    return await _with_email_code(connection, email, code, _open_session(connection))


async def _with_email_code(
    connection: HTTPConnection,
    email: str,
    code: str,
    grant: Callable[[AsyncSession, Account], Awaitable[T]],
) -> T:
    runtime = auth_runtime(connection)
    async with app_context(connection).db.transaction() as session:
        redeemed = await email_codes.redeem(
            session, email, code, policy=runtime.email_codes, now=utcnow()
        )
        if isinstance(redeemed, EmailCodeRejected):
            rejection = redeemed
        else:
            return await grant(session, await accounts.get_or_create(session, redeemed))
    # Raised only now, after the commit, so the wrong guess stays counted.
    raise rejection


# --- Google -----------------------------------------------------------------------------------


async def key_from_google(
    connection: HTTPConnection, id_token: str, *, label: str | None
) -> SignedInKey:
    identity = await auth_runtime(connection).google.verify(id_token)
    return await _with_identity(connection, identity, _issue_key(label))


async def session_from_google(
    connection: HTTPConnection, id_token: str, *, nonce: str | None = None
) -> NewBrowserSession:
    identity = await auth_runtime(connection).google.verify(id_token, nonce=nonce)
    return await _with_identity(connection, identity, _open_session(connection))


async def _with_identity(
    connection: HTTPConnection,
    identity: GoogleIdentity,
    grant: Callable[[AsyncSession, Account], Awaitable[T]],
) -> T:
    # A Google-verified address is the same person as an emailed-code sign-in to it.
    async with app_context(connection).db.transaction() as session:
        return await grant(session, await accounts.get_or_create(session, identity.email))


def _issue_key(label: str | None) -> Callable[[AsyncSession, Account], Awaitable[SignedInKey]]:
    async def grant(session: AsyncSession, account: Account) -> SignedInKey:
        return SignedInKey(account, await api_keys.issue(session, account.id, label=label))

    return grant


def _open_session(
    connection: HTTPConnection,
) -> Callable[[AsyncSession, Account], Awaitable[NewBrowserSession]]:
    async def grant(session: AsyncSession, account: Account) -> NewBrowserSession:
        return await browser_sessions.create(
            session,
            account,
            ip=client_ip(connection),
            user_agent=connection.headers.get("user-agent"),
            ttl=auth_runtime(connection).session_ttl,
            now=utcnow(),
        )

    return grant


# --- browser sessions -------------------------------------------------------------------------


async def sign_out(connection: HTTPConnection, browser: ActiveBrowserSession) -> None:
    async with app_context(connection).db.transaction() as session:
        await browser_sessions.revoke(session, browser.row.id, now=utcnow())


# --- device link ------------------------------------------------------------------------------


async def start_device_link(connection: HTTPConnection, *, key_label: str | None) -> StartedLink:
    async with app_context(connection).db.transaction() as session:
        return await device_links.start(
            session,
            # The client names itself in User-Agent (`killa login` sends its version and host).
            client_name=connection.headers.get("user-agent"),
            key_label=key_label,
            ip=client_ip(connection),
            policy=auth_runtime(connection).device_links,
            now=utcnow(),
        )


async def describe_device_link(connection: HTTPConnection, user_code: str) -> DeviceLink:
    auth_runtime(connection).limits.user_code_lookup(client_ip(connection))
    async with app_context(connection).db.transaction(write=False) as session:
        return await device_links.describe(session, user_code, now=utcnow())


async def decide_device_link(
    connection: HTTPConnection,
    user_code: str,
    *,
    account_id: str,
    approve: bool,
    key_label: str | None,
) -> DeviceLink:
    auth_runtime(connection).limits.user_code_lookup(client_ip(connection))
    async with app_context(connection).db.transaction() as session:
        return await device_links.decide(
            session,
            user_code,
            account_id=account_id,
            approve=approve,
            key_label=key_label,
            now=utcnow(),
        )


async def poll_device_link(connection: HTTPConnection, device_code: str) -> PollResult:
    async with app_context(connection).db.transaction() as session:
        return await device_links.poll(session, device_code, now=utcnow())


async def require_approver(connection: HTTPConnection) -> str:
    """The approving account: by API key, or by browser session plus its CSRF token."""
    if bearer_token(connection) is not None:
        return (await require_principal(connection)).account_id
    browser = await current_browser(connection)
    if browser is None:
        raise SignInRequired(
            "Approving a device needs an API key (Authorization: Bearer) or a signed-in "
            "browser session."
        )
    require_csrf(connection, connection.headers.get(CSRF_HEADER), browser=browser)
    return browser.account.id

"""Browser-facing plumbing: the session and CSRF cookies, and the CSRF check.

CSRF defence is a synchronizer token. A signed-in browser must echo its session's token (header
`X-CSRF-Token` or form field `csrf_token`) on every state-changing request. Before sign-in there
is no session, so the sign-in requests themselves (which would otherwise allow login CSRF) echo a
random token that was set in an HttpOnly cookie — a double submit. SameSite=Lax on every cookie
is a second layer, not the defence.

With an https public URL the cookies are Secure and carry the `__Host-` prefix, which browsers
only accept from a secure origin, for path /, without a Domain — so a sibling subdomain cannot
plant one.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import HTTPConnection
from starlette.responses import Response

from backend.auth.runtime import AuthRuntime, auth_runtime
from backend.auth.sessions import ActiveBrowserSession, NewBrowserSession, browser_sessions
from backend.db.base import utcnow
from backend.http.context import app_context
from backend.http.errors import Forbidden

CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "csrf_token"
# The pre-sign-in CSRF cookie outlives a slow sign-in, no more.
CSRF_COOKIE_SECONDS = 3600
GOOGLE_STATE_COOKIE_SECONDS = 600


class CsrfTokenInvalid(Forbidden):
    code = "CSRF_TOKEN_INVALID"


def cookie_name(base: str, runtime: AuthRuntime) -> str:
    return f"__Host-{base}" if runtime.secure_cookies else base


def session_cookie(runtime: AuthRuntime) -> str:
    return cookie_name("killa_session", runtime)


def csrf_cookie(runtime: AuthRuntime) -> str:
    return cookie_name("killa_csrf", runtime)


def google_state_cookie(runtime: AuthRuntime) -> str:
    return cookie_name("killa_google", runtime)


def set_cookie(
    response: Response, runtime: AuthRuntime, name: str, value: str, *, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=runtime.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, runtime: AuthRuntime, name: str) -> None:
    response.delete_cookie(
        name, path="/", secure=runtime.secure_cookies, httponly=True, samesite="lax"
    )


def set_session_cookie(
    response: Response, connection: HTTPConnection, new: NewBrowserSession
) -> None:
    runtime = auth_runtime(connection)
    set_cookie(
        response,
        runtime,
        session_cookie(runtime),
        new.token,
        max_age=int(runtime.session_ttl.total_seconds()),
    )


def pre_session_csrf_token(connection: HTTPConnection) -> str:
    """The browser's pre-sign-in CSRF token; a new one when it has none (see `remember_csrf`)."""
    existing = connection.cookies.get(csrf_cookie(auth_runtime(connection)))
    return existing or secrets.token_urlsafe(32)


def remember_csrf(response: Response, connection: HTTPConnection, token: str) -> None:
    runtime = auth_runtime(connection)
    set_cookie(response, runtime, csrf_cookie(runtime), token, max_age=CSRF_COOKIE_SECONDS)


def require_csrf(
    connection: HTTPConnection, submitted: str | None, *, browser: ActiveBrowserSession | None
) -> None:
    if browser is not None:
        expected: str | None = browser.row.csrf_token
    else:
        expected = connection.cookies.get(csrf_cookie(auth_runtime(connection)))
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise CsrfTokenInvalid(
            "The security token of this request is missing or out of date. Reload the page "
            "and try again.",
            details={
                "hint": "API clients: send the csrfToken from GET /api/v1/auth/browser/session "
                "in the X-CSRF-Token header."
            },
        )


async def check_csrf(
    connection: HTTPConnection, submitted: str | None
) -> ActiveBrowserSession | None:
    """For state-changing browser requests: the expected token is the signed-in session's, or
    before sign-in the CSRF cookie's. Returns the session, if any."""
    browser = await current_browser(connection)
    require_csrf(connection, submitted, browser=browser)
    return browser


async def current_browser(connection: HTTPConnection) -> ActiveBrowserSession | None:
    token = connection.cookies.get(session_cookie(auth_runtime(connection)))
    if not token:
        return None
    async with app_context(connection).db.transaction(write=False) as session:
        found = await browser_sessions.find_active(session, token, now=utcnow())
    if found is not None:
        connection.scope.setdefault("state", {})["account_id"] = found.account.id
    return found

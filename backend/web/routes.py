"""Browser pages: sign-in (emailed code or Google) and the device-link approval page.

Plain HTML forms, no JavaScript needed. Every state-changing form carries a CSRF token; errors
are shown on the page they came from, with the status the JSON API would give.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from backend.auth import flows
from backend.auth.browser import (
    CSRF_FORM_FIELD,
    GOOGLE_STATE_COOKIE_SECONDS,
    check_csrf,
    clear_cookie,
    current_browser,
    google_state_cookie,
    require_csrf,
    session_cookie,
    set_cookie,
    set_session_cookie,
)
from backend.auth.device_link import VERIFICATION_PATH, format_user_code
from backend.auth.google import GoogleSignInDisabled
from backend.auth.models import DeviceLink
from backend.auth.runtime import auth_runtime
from backend.auth.schemas import iso, link_status
from backend.auth.sessions import ActiveBrowserSession
from backend.db.base import utcnow
from backend.http.context import app_context
from backend.http.errors import BadRequest, Forbidden, GatewayError
from backend.web.pages import (
    HERE,
    SIGN_IN_PATH,
    STATIC_PATH,
    form_text,
    redirect,
    render,
    safe_next,
)

GOOGLE_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_CALLBACK_PATH = "/auth/google/callback"


class GoogleStateMismatch(Forbidden):
    code = "GOOGLE_STATE_MISMATCH"


class GoogleSignInFailed(BadRequest):
    code = "GOOGLE_SIGN_IN_FAILED"


# --- sign-in ------------------------------------------------------------------------------------


def _sign_in_page(
    request: Request, browser: ActiveBrowserSession | None, *, next_path: str, **context: Any
) -> Response:
    context.setdefault("step", "email")
    return render(
        request,
        "sign_in.html",
        browser,
        next=next_path,
        linking=next_path.startswith(VERIFICATION_PATH),
        google_enabled=auth_runtime(request).google.enabled,
        **context,
    )


async def sign_in(request: Request) -> Response:
    browser = await current_browser(request)
    asked_next = request.query_params.get("next")
    if browser is not None and asked_next:
        return redirect(safe_next(asked_next))
    step = "signed_in" if browser is not None else "email"
    return _sign_in_page(request, browser, next_path=safe_next(asked_next), step=step)


async def send_code(request: Request) -> Response:
    form = await request.form()
    next_path = safe_next(form_text(form, "next"))
    email = form_text(form, "email")
    browser = None
    try:
        browser = await check_csrf(request, form_text(form, CSRF_FORM_FIELD))
        issued = await flows.send_email_code(request, email)
    except GatewayError as exc:
        return _sign_in_page(request, browser, next_path=next_path, email=email, error=exc)
    minutes = round(issued.valid_for.total_seconds() / 60)
    return _sign_in_page(
        request, browser, next_path=next_path, step="code", email=issued.email, minutes=minutes
    )


async def verify_code(request: Request) -> Response:
    form = await request.form()
    next_path = safe_next(form_text(form, "next"))
    email = form_text(form, "email")
    code = form_text(form, "code").replace(" ", "")
    browser = None
    try:
        browser = await check_csrf(request, form_text(form, CSRF_FORM_FIELD))
        if len(code) != 6 or not code.isdigit():
            # Caught here so a typo does not spend one of the code's attempts.
            raise BadRequest("Enter the 6 digits from the email.")
        new = await flows.session_from_email_code(request, email, code)
    except GatewayError as exc:
        minutes = round(auth_runtime(request).email_codes.ttl.total_seconds() / 60)
        return _sign_in_page(
            request,
            browser,
            next_path=next_path,
            step="code",
            email=email,
            minutes=minutes,
            error=exc,
        )
    response = redirect(next_path)
    set_session_cookie(response, request, new)
    return response


async def sign_out(request: Request) -> Response:
    form = await request.form()
    browser = await current_browser(request)
    if browser is not None:
        try:
            require_csrf(request, form_text(form, CSRF_FORM_FIELD), browser=browser)
        except GatewayError as exc:
            return _sign_in_page(
                request, browser, next_path=SIGN_IN_PATH, step="signed_in", error=exc
            )
        await flows.sign_out(request, browser)
    response = redirect(SIGN_IN_PATH)
    runtime = auth_runtime(request)
    clear_cookie(response, runtime, session_cookie(runtime))
    return response


# --- Google (OpenID Connect implicit flow, form_post; no Google script on our pages) -----------


def _google_nonce(state: str) -> str:
    # The ID token must carry this, binding it to the state cookie of the browser that started.
    return hashlib.sha256(state.encode()).hexdigest()


def _pack_state(state: str, next_path: str) -> str:
    return f"{state}.{base64.urlsafe_b64encode(next_path.encode()).decode().rstrip('=')}"


def _unpack_state(value: str) -> tuple[str, str]:
    state, _, packed = value.partition(".")
    try:
        next_path = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        next_path = SIGN_IN_PATH
    return state, safe_next(next_path)


async def google_start(request: Request) -> Response:
    runtime = auth_runtime(request)
    next_path = safe_next(request.query_params.get("next"))
    if not runtime.google.enabled:
        error = GoogleSignInDisabled("Google sign-in is not available here; use an email code.")
        return _sign_in_page(request, None, next_path=next_path, error=error)
    state = secrets.token_urlsafe(32)
    query = urlencode(
        {
            "client_id": runtime.google.web_client_id,
            "redirect_uri": app_context(request).settings.absolute_url(GOOGLE_CALLBACK_PATH),
            "response_type": "id_token",
            "response_mode": "form_post",
            "scope": "openid email",
            "nonce": _google_nonce(state),
            "state": state,
            "prompt": "select_account",
        }
    )
    response = redirect(f"{GOOGLE_AUTHORIZE_URL}?{query}")
    set_cookie(
        response,
        runtime,
        google_state_cookie(runtime),
        _pack_state(state, next_path),
        max_age=GOOGLE_STATE_COOKIE_SECONDS,
    )
    return response


async def google_callback(request: Request) -> Response:
    """Google's cross-site form post. It changes nothing: it hands the answer to a same-site
    form (`/auth/google/finish`), where the SameSite=Lax state cookie is sent and checked."""
    form = await request.form()
    if form_text(form, "error") or not form_text(form, "id_token"):
        error = GoogleSignInFailed("Google sign-in was cancelled or failed. Try again.")
        return _sign_in_page(request, None, next_path=SIGN_IN_PATH, error=error)
    return render(
        request,
        "google_continue.html",
        None,
        id_token=form_text(form, "id_token"),
        state=form_text(form, "state"),
    )


async def google_finish(request: Request) -> Response:
    form = await request.form()
    runtime = auth_runtime(request)
    state, next_path = _unpack_state(request.cookies.get(google_state_cookie(runtime), ""))
    try:
        if not state or not hmac.compare_digest(state, form_text(form, "state")):
            raise GoogleStateMismatch(
                "This Google sign-in was not started in this browser, or took too long. Try again."
            )
        new = await flows.session_from_google(
            request, form_text(form, "id_token"), nonce=_google_nonce(state)
        )
    except GatewayError as exc:
        return _sign_in_page(request, None, next_path=next_path, error=exc)
    response = redirect(next_path)
    set_session_cookie(response, request, new)
    clear_cookie(response, runtime, google_state_cookie(runtime))
    return response


# --- device link ---------------------------------------------------------------------------------


def _when(value: datetime) -> str:
    return value.strftime("%d %b %Y, %H:%M:%S UTC")


def _device_page(
    request: Request,
    browser: ActiveBrowserSession,
    link: DeviceLink | None = None,
    **context: Any,
) -> Response:
    if link is not None:
        user_code = format_user_code(link.user_code)
        context.update(
            link=link,
            user_code=user_code,
            user_code_spoken=" ".join(user_code.replace("-", "")),
            status=link_status(link, utcnow()),
            requested_at=_when(link.created_at),
            requested_iso=iso(link.created_at),
            expires_at=_when(link.expires_at),
            expires_iso=iso(link.expires_at),
        )
    return render(request, "device.html", browser, **context)


async def device(request: Request) -> Response:
    code = request.query_params.get("code", "").strip()
    browser = await current_browser(request)
    if browser is None:
        here = f"{VERIFICATION_PATH}?{urlencode({'code': code})}" if code else VERIFICATION_PATH
        return redirect(f"{SIGN_IN_PATH}?{urlencode({'next': here})}")
    if not code:
        return _device_page(request, browser)
    try:
        link = await flows.describe_device_link(request, code)
    except GatewayError as exc:
        return _device_page(request, browser, code=code, error=exc)
    return _device_page(request, browser, link)


async def decide(request: Request) -> Response:
    form = await request.form()
    code = form_text(form, "code")
    browser = await current_browser(request)
    if browser is None:
        here = f"{VERIFICATION_PATH}?{urlencode({'code': code})}"
        return redirect(f"{SIGN_IN_PATH}?{urlencode({'next': here})}")
    decision = form_text(form, "decision")
    try:
        require_csrf(request, form_text(form, CSRF_FORM_FIELD), browser=browser)
        if decision not in ("approve", "deny"):
            raise BadRequest("Choose Approve or Deny.")
        link = await flows.decide_device_link(
            request,
            code,
            account_id=browser.account.id,
            approve=decision == "approve",
            key_label=None,
        )
    except GatewayError as exc:
        return _device_page(request, browser, code=code, error=exc)
    return render(
        request,
        "device_done.html",
        browser,
        approved=decision == "approve",
        client_name=link.client_name,
    )


routes = [
    Route(SIGN_IN_PATH, sign_in, methods=["GET"]),
    Route(f"{SIGN_IN_PATH}/email", send_code, methods=["POST"]),
    Route(f"{SIGN_IN_PATH}/verify", verify_code, methods=["POST"]),
    Route("/logout", sign_out, methods=["POST"]),
    Route("/auth/google/start", google_start, methods=["GET"]),
    Route(GOOGLE_CALLBACK_PATH, google_callback, methods=["POST"]),
    Route("/auth/google/finish", google_finish, methods=["POST"]),
    Route(VERIFICATION_PATH, device, methods=["GET"]),
    Route(VERIFICATION_PATH, decide, methods=["POST"]),
    Mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="web-static"),
]

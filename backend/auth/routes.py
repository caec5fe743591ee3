"""`/api/v1/auth/*` and `/api/v1/device/link/*`: parse, one sign-in flow, render."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from backend.auth import flows
from backend.auth.browser import (
    CSRF_HEADER,
    check_csrf,
    clear_cookie,
    current_browser,
    pre_session_csrf_token,
    remember_csrf,
    require_csrf,
    session_cookie,
    set_session_cookie,
)
from backend.auth.runtime import auth_runtime
from backend.auth.schemas import (
    DeviceLinkApproveRequest,
    DeviceLinkPollRequest,
    DeviceLinkStartRequest,
    EmailAuthStartRequest,
    EmailAuthVerifyRequest,
    GoogleAuthRequest,
    render_browser_session,
    render_link,
    render_poll,
    render_signed_in_key,
    render_started_link,
)
from backend.auth.sessions import NewBrowserSession
from backend.db.base import utcnow
from backend.http.bodies import parse_body
from backend.http.context import app_context
from backend.http.errors import BadRequest
from backend.http.responses import JSONResponse


def _session_response(new: NewBrowserSession, request: Request) -> JSONResponse:
    response = JSONResponse(render_browser_session(new.row, new.account))
    set_session_cookie(response, request, new)
    return response


async def google_key(request: Request) -> JSONResponse:
    body = await parse_body(request, GoogleAuthRequest)
    signed_in = await flows.key_from_google(request, body.id_token, label=body.key_label)
    return JSONResponse(render_signed_in_key(signed_in), status_code=201)


async def google_browser(request: Request) -> JSONResponse:
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    body = await parse_body(request, GoogleAuthRequest)
    return _session_response(await flows.session_from_google(request, body.id_token), request)


async def email_start(request: Request) -> JSONResponse:
    body = await parse_body(request, EmailAuthStartRequest)
    issued = await flows.send_email_code(request, body.email)
    return JSONResponse(
        {
            "ok": True,
            "sent": True,
            "expiresIn": int(issued.valid_for.total_seconds()),
            "message": "A 6-digit code is on its way if this address can receive mail.",
        }
    )


async def email_verify(request: Request) -> JSONResponse:
    body = await parse_body(request, EmailAuthVerifyRequest)
    signed_in = await flows.key_from_email_code(
        request, body.email, body.code, label=body.key_label
    )
    return JSONResponse(render_signed_in_key(signed_in), status_code=201)


async def browser_email_verify(request: Request) -> JSONResponse:
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    body = await parse_body(request, EmailAuthVerifyRequest)
    new = await flows.session_from_email_code(request, body.email, body.code)
    return _session_response(new, request)


async def get_browser_session(request: Request) -> JSONResponse:
    browser = await current_browser(request)
    if browser is not None:
        return JSONResponse(render_browser_session(browser.row, browser.account))
    # Not signed in: hand out the token the sign-in calls must echo.
    token = pre_session_csrf_token(request)
    response = JSONResponse({"ok": True, "authenticated": False, "csrfToken": token})
    remember_csrf(response, request, token)
    return response


async def delete_browser_session(request: Request) -> JSONResponse:
    browser = await current_browser(request)
    if browser is not None:
        require_csrf(request, request.headers.get(CSRF_HEADER), browser=browser)
        await flows.sign_out(request, browser)
    response = JSONResponse({"ok": True, "authenticated": False})
    runtime = auth_runtime(request)
    clear_cookie(response, runtime, session_cookie(runtime))
    return response


async def device_link_start(request: Request) -> JSONResponse:
    body = await parse_body(request, DeviceLinkStartRequest, required=False)
    started = await flows.start_device_link(request, key_label=body.key_label)
    return JSONResponse(
        render_started_link(started, app_context(request).settings), status_code=201
    )


async def device_link_request(request: Request) -> JSONResponse:
    user_code = request.query_params.get("userCode", "")
    if len(user_code) < 4:
        raise BadRequest(
            "userCode: give the code shown by the device (at least 4 characters).",
            details={"errors": [{"field": "userCode", "rule": "string_too_short"}]},
        )
    link = await flows.describe_device_link(request, user_code)
    return JSONResponse({"ok": True, "request": render_link(link, utcnow())})


async def device_link_approve(request: Request) -> JSONResponse:
    body = await parse_body(request, DeviceLinkApproveRequest)
    account_id = await flows.require_approver(request)
    link = await flows.decide_device_link(
        request,
        body.user_code,
        account_id=account_id,
        approve=body.decision == "approve",
        key_label=body.key_label,
    )
    return JSONResponse({"ok": True, "request": render_link(link, utcnow())})


async def device_link_poll(request: Request) -> JSONResponse:
    body = await parse_body(request, DeviceLinkPollRequest)
    return JSONResponse(render_poll(await flows.poll_device_link(request, body.device_code)))


routes = [
    Route("/api/v1/auth/google", google_key, methods=["POST"]),
    Route("/api/v1/auth/browser/google", google_browser, methods=["POST"]),
    Route("/api/v1/auth/email/start", email_start, methods=["POST"]),
    Route("/api/v1/auth/email/verify", email_verify, methods=["POST"]),
    Route("/api/v1/auth/browser/email/verify", browser_email_verify, methods=["POST"]),
    Route("/api/v1/auth/browser/session", get_browser_session, methods=["GET"]),
    Route("/api/v1/auth/browser/session", delete_browser_session, methods=["DELETE"]),
    Route("/api/v1/device/link/start", device_link_start, methods=["POST"]),
    Route("/api/v1/device/link/request", device_link_request, methods=["GET"]),
    Route("/api/v1/device/link/approve", device_link_approve, methods=["POST"]),
    Route("/api/v1/device/link/poll", device_link_poll, methods=["POST"]),
]

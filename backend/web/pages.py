"""Rendering the browser pages: templates, security headers, the CSRF token every form carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from backend.auth.browser import pre_session_csrf_token, remember_csrf
from backend.auth.device_link import VERIFICATION_PATH
from backend.auth.sessions import ActiveBrowserSession
from backend.http.errors import GatewayError

HERE = Path(__file__).parent
STATIC_PATH = "/static/web"
SIGN_IN_PATH = "/login"

templates = Jinja2Templates(directory=HERE / "templates")

# Pages only ever load their own stylesheet and script and only post to themselves; they may not
# be framed (an approve button in a hidden frame would be clickjacking).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def render(
    request: Request,
    template: str,
    browser: ActiveBrowserSession | None,
    *,
    status_code: int = 200,
    error: GatewayError | None = None,
    **context: Any,
) -> Response:
    """A page whose forms carry the right CSRF token: the session's, or before sign-in the
    browser's pre-session token (set as a cookie here)."""
    csrf_token = browser.row.csrf_token if browser else pre_session_csrf_token(request)
    headers = dict(PAGE_HEADERS)
    if error is not None:
        status_code = error.status
        headers.update(error.headers)
        headers.pop("WWW-Authenticate", None)  # a page, not an API challenge
    response = templates.TemplateResponse(
        request,
        template,
        {
            "static_path": STATIC_PATH,
            "device_path": VERIFICATION_PATH,
            "csrf_token": csrf_token,
            "account_email": browser.account.email if browser else None,
            "error": error.message if error else None,
            **context,
        },
        status_code=status_code,
        headers=headers,
    )
    if browser is None:
        remember_csrf(response, request, csrf_token)
    return response


def redirect(path: str) -> RedirectResponse:
    # 303: the follow-up is a GET whatever the method of the form that led here.
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


def safe_next(value: object, default: str = SIGN_IN_PATH) -> str:
    """Only a path on this site: never `//host`, `https://…` or `\\host` (open redirects)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return default
    parts = urlsplit(value)
    if "\\" in value or parts.scheme or parts.netloc:
        return default
    return value


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""

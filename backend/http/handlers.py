"""Render every error — ours, the router's 404/405, and unexpected ones — in the one error shape."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from backend.http.errors import GatewayError, MethodNotAllowed, NotFound
from backend.http.responses import JSONResponse

logger = logging.getLogger("killa.errors")


def error_response(exc: GatewayError, request_id: str | None) -> JSONResponse:
    return JSONResponse(exc.to_body(request_id), status_code=exc.status, headers=exc.headers)


async def send_error(exc: GatewayError, scope: Scope, receive: Receive, send: Send) -> None:
    """For middleware, which sits outside Starlette's exception handlers."""
    request_id = scope.get("state", {}).get("request_id")
    await error_response(exc, request_id)(scope, receive, send)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def handle_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if exc.status >= 500:
        logger.error("gateway error %s: %s", exc.code, exc.message)
    return error_response(exc, _request_id(request))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: GatewayError
    if exc.status_code == 404:
        error = NotFound(f"No route for {request.method} {request.url.path}.")
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        error = MethodNotAllowed(
            f"{request.method} is not allowed on {request.url.path}.",
            details={"allowedMethods": [m.strip() for m in allowed.split(",") if m.strip()]},
            headers={"Allow": allowed} if allowed else None,
        )
    else:
        error = GatewayError(str(exc.detail), code=f"HTTP_{exc.status_code}")
        error.status = exc.status_code
    return error_response(error, _request_id(request))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    error = GatewayError(
        "Internal error. It has been logged; retry later or contact support with the request id."
    )
    return error_response(error, _request_id(request))


EXCEPTION_HANDLERS = {
    GatewayError: handle_gateway_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}

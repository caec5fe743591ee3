"""`/api/v1/keys*`, `/api/v1/balance` and the deprecated credits routes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from backend.accounts.schemas import CreateKeyRequest, RevokeKeyRequest, render_key
from backend.accounts.service import api_keys
from backend.auth.flows import key_from_google
from backend.auth.schemas import render_signed_in_key
from backend.http.auth import bearer_token, require_principal
from backend.http.bodies import parse_body
from backend.http.context import app_context
from backend.http.errors import Gone, Unauthorized
from backend.http.responses import JSONResponse
from backend.ledger.service import ledger


async def list_keys(request: Request) -> JSONResponse:
    principal = await require_principal(request)
    async with app_context(request).db.transaction(write=False) as session:
        keys = await api_keys.list(session, principal.account_id)
    return JSONResponse({"ok": True, "keys": [render_key(key) for key in keys]})


async def create_key(request: Request) -> JSONResponse:
    body = await parse_body(request, CreateKeyRequest, required=False)
    if bearer_token(request) is None:
        if body.id_token is not None:
            signed_in = await key_from_google(request, body.id_token, label=body.label)
            return JSONResponse(render_signed_in_key(signed_in), status_code=201)
        raise Unauthorized(
            "Creating a key needs an existing API key (Authorization: Bearer) or a Google idToken.",
            code="API_KEY_MISSING",
        )
    principal = await require_principal(request)
    async with app_context(request).db.transaction() as session:
        issued = await api_keys.issue(session, principal.account_id, label=body.label)
    return JSONResponse(
        {
            "ok": True,
            "apiKey": issued.secret,
            "key": render_key(issued.key),
            "notice": "Store this key now: it is shown only once.",
        },
        status_code=201,
    )


async def revoke_key(request: Request) -> JSONResponse:
    principal = await require_principal(request)
    body = await parse_body(request, RevokeKeyRequest)
    ctx = app_context(request)
    async with ctx.db.transaction() as session:
        key = await api_keys.revoke(session, principal.account_id, body.key_id)
    ctx.keys.forget(key.id)
    return JSONResponse({"ok": True, "key": render_key(key)})


async def get_balance(request: Request) -> JSONResponse:
    principal = await require_principal(request)
    async with app_context(request).db.transaction(write=False) as session:
        balance = await ledger.balance(session, principal.account_id)
    return JSONResponse({"ok": True, **balance.to_json()})


async def deprecated_credits_balance(request: Request) -> JSONResponse:
    raise Gone(
        "This route was removed. Use GET /api/v1/balance.",
        code="ROUTE_DEPRECATED",
        details={"replacement": {"method": "GET", "path": "/api/v1/balance"}},
    )


async def deprecated_credits_consume(request: Request) -> JSONResponse:
    raise Gone(
        "This route was removed. Submit work with POST /api/v1/media/jobs; it is billed from "
        "your USD balance.",
        code="ROUTE_DEPRECATED",
        details={"replacement": {"method": "POST", "path": "/api/v1/media/jobs"}},
    )


routes = [
    Route("/api/v1/keys", list_keys, methods=["GET"]),
    Route("/api/v1/keys", create_key, methods=["POST"]),
    Route("/api/v1/keys/revoke", revoke_key, methods=["POST"]),
    Route("/api/v1/balance", get_balance, methods=["GET"]),
    Route("/api/v1/credits/balance", deprecated_credits_balance, methods=["GET"]),
    Route("/api/v1/credits/consume", deprecated_credits_consume, methods=["POST"]),
]

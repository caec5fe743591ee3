"""Bearer API-key authentication for routes: `principal = await require_principal(request)`."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from backend.accounts.service import ApiKeyInvalid, Principal
from backend.http.context import app_context
from backend.http.errors import Unauthorized


def bearer_token(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def require_principal(connection: HTTPConnection) -> Principal:
    token = bearer_token(connection)
    if token is None:
        raise Unauthorized(
            "Missing API key. Send 'Authorization: Bearer <key>'; get a key with `killa login`.",
            code="API_KEY_MISSING",
        )
    principal = await authenticate_token(connection, token)
    if principal is None:
        raise ApiKeyInvalid()
    return principal


async def authenticate_token(connection: HTTPConnection, token: str) -> Principal | None:
    ctx = app_context(connection)
    principal = await ctx.keys.principal(ctx.db, token)
    if principal is not None:
        connection.scope.setdefault("state", {})["account_id"] = principal.account_id
    return principal

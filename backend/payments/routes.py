"""`GET /api/v1/packages`. Checkout, claims and x402 purchases arrive with the payments issue."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from backend.http.responses import JSONResponse
from backend.payments.packages import credit_packages


async def list_packages(request: Request) -> JSONResponse:
    return JSONResponse(
        {"ok": True, "currency": "USD", "packages": [p.to_json() for p in credit_packages()]}
    )


routes = [Route("/api/v1/packages", list_packages, methods=["GET"])]

"""`create_app(settings)`: assembles every domain's routes — the only place that does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from backend.accounts import routes as accounts_routes
from backend.db.engine import Database
from backend.discovery import routes as discovery_routes
from backend.discovery.skill import Skill
from backend.http.body_limit import BodySizeLimitMiddleware
from backend.http.context import AppContext
from backend.http.handlers import EXCEPTION_HANDLERS
from backend.http.logging import AccessLogMiddleware
from backend.http.rate_limit import RateLimitMiddleware, TokenBuckets
from backend.http.request_id import RequestIdMiddleware
from backend.payments import routes as payments_routes
from backend.settings import Settings


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Starlette:
    settings = settings or Settings()
    db = database or Database(settings.resolved_database_url)
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owns_database:
                await db.dispose()

    app = Starlette(
        routes=[
            *discovery_routes.routes,
            *accounts_routes.routes,
            *payments_routes.routes,
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(AccessLogMiddleware),
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
                expose_headers=["X-Request-Id", "Retry-After"],
            ),
            Middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes),
            Middleware(
                RateLimitMiddleware,
                buckets=TokenBuckets(
                    per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst
                ),
                exempt_paths=("/api/v1/health",),
            ),
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.ctx = AppContext(settings=settings, db=db)
    app.state.skill = Skill()
    return app

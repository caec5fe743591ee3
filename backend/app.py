"""`create_app(settings)`: assembles every domain's routes — the only place that does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from backend.accounts import routes as accounts_routes
from backend.accounts.key_cache import KeyCache
from backend.auth import routes as auth_routes
from backend.auth.runtime import AuthRuntime
from backend.db.engine import Database
from backend.discovery import routes as discovery_routes
from backend.discovery.skill import Skill
from backend.http.body_limit import BodySizeLimitMiddleware
from backend.http.context import AppContext
from backend.http.handlers import EXCEPTION_HANDLERS
from backend.http.logging import AccessLogMiddleware
from backend.http.rate_limit import RateLimitMiddleware, TokenBuckets
from backend.http.request_id import RequestIdMiddleware
from backend.jobs import routes as jobs_routes
from backend.jobs.dispatcher import Dispatcher
from backend.jobs.runtime import build_runtime
from backend.payments import routes as payments_routes
from backend.settings import Settings
from backend.storage.files_route import files_route
from backend.storage.local import LocalBlobStore
from backend.storage.s3 import S3BlobStore
from backend.web import routes as web_routes
from server.mcp_http import hosted_mcp


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Starlette:
    settings = settings or Settings()
    db = database or Database(settings.resolved_database_url)
    owns_database = database is None

    ctx = AppContext(
        settings=settings, db=db, keys=KeyCache(ttl_seconds=settings.api_key_cache_seconds)
    )
    runtime = build_runtime(settings, db)
    dispatcher = Dispatcher(db, runtime)
    runtime.dispatcher = dispatcher
    # The MCP tools call this very app in process; `app` is bound below, before any call.
    mcp = hosted_mcp(ctx, gateway_app=lambda: app)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if owns_database:
                stack.push_async_callback(db.dispose)
            stack.push_async_callback(runtime.fetcher.aclose)
            if isinstance(runtime.blobs, S3BlobStore):
                await stack.enter_async_context(runtime.blobs)
            await stack.enter_async_context(mcp.run())
            await dispatcher.start()
            stack.push_async_callback(dispatcher.stop)
            yield

    app = Starlette(
        routes=[
            # Starlette tries routes in order: the most-called API first.
            *jobs_routes.routes,
            *accounts_routes.routes,
            *discovery_routes.routes,
            *payments_routes.routes,
            *auth_routes.routes,
            *web_routes.routes,
            *([files_route(runtime.blobs)] if isinstance(runtime.blobs, LocalBlobStore) else []),
            *mcp.routes,  # last: /mcp and its OAuth protected-resource metadata
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(AccessLogMiddleware),
            # Without allowed origins there is nothing for CORS to answer or add.
            *(
                [
                    Middleware(
                        CORSMiddleware,
                        allow_origins=settings.cors_origins,
                        allow_methods=["GET", "POST", "PATCH", "DELETE"],
                        allow_headers=[
                            "Authorization",
                            "Content-Type",
                            "Idempotency-Key",
                            "X-Request-Id",
                        ],
                        expose_headers=["X-Request-Id", "Retry-After"],
                    )
                ]
                if settings.cors_origins
                else []
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
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.skill = Skill()
    app.state.auth = AuthRuntime.from_settings(settings)
    app.state.jobs = runtime
    return app

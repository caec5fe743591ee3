"""What routes reach through `request.app.state.ctx`: settings and the shared resources."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from backend.accounts.key_cache import KeyCache
from backend.db.engine import Database
from backend.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    db: Database
    keys: KeyCache


def app_context(connection: HTTPConnection) -> AppContext:
    ctx: AppContext = connection.app.state.ctx
    return ctx

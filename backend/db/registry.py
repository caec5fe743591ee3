"""Imports every domain's tables so `Base.metadata` is complete (for Alembic and tests)."""

from backend.accounts import models as accounts_models
from backend.auth import models as auth_models
from backend.db.base import Base
from backend.jobs import models as jobs_models
from backend.ledger import models as ledger_models

__all__ = ["Base", "accounts_models", "auth_models", "jobs_models", "ledger_models"]

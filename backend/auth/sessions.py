"""Server-side browser sessions: revocable, expiring, looked up by the hash of the cookie."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.accounts.models import Account
from backend.auth.models import BrowserSession
from backend.db.ids import new_id

# Expired and revoked rows are kept this long (for support questions), then purged.
RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class NewBrowserSession:
    row: BrowserSession
    account: Account
    token: str  # the cookie value; only its hash is stored


@dataclass(frozen=True)
class ActiveBrowserSession:
    row: BrowserSession
    account: Account


def hash_token(token: str) -> str:
    # 256-bit random tokens: a plain SHA-256 is as strong as a slow hash, and one index lookup.
    return hashlib.sha256(token.encode()).hexdigest()


class BrowserSessionService:
    async def create(
        self,
        session: AsyncSession,
        account: Account,
        *,
        ip: str | None,
        user_agent: str | None,
        ttl: timedelta,
        now: datetime,
    ) -> NewBrowserSession:
        await session.execute(
            delete(BrowserSession).where(BrowserSession.expires_at < now - RETENTION)
        )
        token = secrets.token_urlsafe(32)
        row = BrowserSession(
            id=new_id("bsess"),
            token_hash=hash_token(token),
            account_id=account.id,
            csrf_token=secrets.token_urlsafe(32),
            ip=ip,
            user_agent=(user_agent or "")[:256] or None,
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(row)
        await session.flush()
        return NewBrowserSession(row=row, account=account, token=token)

    async def find_active(
        self, session: AsyncSession, token: str, *, now: datetime
    ) -> ActiveBrowserSession | None:
        found = (
            await session.execute(
                select(BrowserSession, Account)
                .join(Account, Account.id == BrowserSession.account_id)
                .where(
                    BrowserSession.token_hash == hash_token(token),
                    BrowserSession.revoked_at.is_(None),
                    BrowserSession.expires_at > now,
                )
            )
        ).first()
        if found is None:
            return None
        row, account = found
        return ActiveBrowserSession(row=row, account=account)

    async def revoke(self, session: AsyncSession, session_id: str, *, now: datetime) -> None:
        await session.execute(
            update(BrowserSession)
            .where(BrowserSession.id == session_id, BrowserSession.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )


browser_sessions = BrowserSessionService()

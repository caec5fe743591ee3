"""Accounts and API keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from backend.accounts.models import Account, ApiKey
from backend.db.base import utcnow
from backend.db.ids import new_id
from backend.http.errors import BadRequest, Conflict, NotFound, Unauthorized
from backend.ledger.service import ledger

KEY_PREFIX = "kt_live_"
# last_used_at is a hint for people, not an audit trail: writing it once a minute keeps every
# authenticated read from becoming a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


# Built once: the submit writer runs it for every batch, one statement however many keys the
# batch carries (the IN list is expanded per run, about 10 µs; a round trip per key costs more).
_ACTIVE_KEYS = select(ApiKey.id).where(
    ApiKey.id.in_(bindparam("ids", expanding=True)), ApiKey.revoked_at.is_(None)
)


class ApiKeyInvalid(Unauthorized):
    code = "API_KEY_INVALID"

    def __init__(self, *, note: str = "") -> None:
        super().__init__(f"Invalid or revoked API key.{note} Create a new one with `killa login`.")


class AccountExists(Conflict):
    code = "ACCOUNT_EXISTS"


class AccountNotFound(NotFound):
    code = "ACCOUNT_NOT_FOUND"


class ApiKeyNotFound(NotFound):
    code = "API_KEY_NOT_FOUND"


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once; only its hash is stored


@dataclass(frozen=True)
class Principal:
    account_id: str
    api_key_id: str


def hash_secret(secret: str) -> str:
    # Keys carry 256 bits of entropy, so a plain SHA-256 is as strong as a slow hash here and
    # lets authentication be a single indexed lookup.
    return hashlib.sha256(secret.encode()).hexdigest()


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or " " in value or len(value) > 320:
        raise BadRequest(
            f"email: {email!r} is not a valid email address",
            details={"errors": [{"field": "email", "rule": "format: email"}]},
        )
    return value


class AccountService:
    async def create(self, session: AsyncSession, email: str) -> Account:
        email = normalize_email(email)
        if await self.get_by_email(session, email) is not None:
            raise AccountExists(f"an account with email {email} already exists")
        account = Account(id=new_id("acct"), email=email)
        session.add(account)
        await session.flush()
        await ledger.open_customer(session, account.id)
        return account

    async def get_or_create(self, session: AsyncSession, email: str) -> Account:
        account = await self.get_by_email(session, email)
        return account if account is not None else await self.create(session, email)

    async def get(self, session: AsyncSession, account_id: str) -> Account | None:
        return await session.get(Account, account_id)

    async def get_by_email(self, session: AsyncSession, email: str) -> Account | None:
        return await session.scalar(select(Account).where(Account.email == normalize_email(email)))

    async def require_by_email(self, session: AsyncSession, email: str) -> Account:
        account = await self.get_by_email(session, email)
        if account is None:
            raise AccountNotFound(f"no account with email {normalize_email(email)}")
        return account


class ApiKeyService:
    async def issue(
        self, session: AsyncSession, account_id: str, *, label: str | None
    ) -> IssuedKey:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=new_id("key"),
            account_id=account_id,
            label=label,
            prefix=secret[: len(KEY_PREFIX) + 6],
            secret_hash=hash_secret(secret),
        )
        session.add(key)
        await session.flush()
        return IssuedKey(key=key, secret=secret)

    async def list(self, session: AsyncSession, account_id: str) -> list[ApiKey]:
        rows = await session.scalars(
            select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.created_at)
        )
        return list(rows)

    async def revoke(self, session: AsyncSession, account_id: str, key_id: str) -> ApiKey:
        key = await session.get(ApiKey, key_id)
        # Another account's key is reported as missing so ids cannot be probed.
        if key is None or key.account_id != account_id:
            raise ApiKeyNotFound(f"no API key {key_id} on this account")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            await session.flush()
        return key

    async def authenticate(
        self, session: AsyncSession, secret: str
    ) -> tuple[Principal, bool] | None:
        """The key's principal and whether its last_used_at is stale enough to rewrite."""
        row = (
            await session.execute(
                select(ApiKey.id, ApiKey.account_id, ApiKey.last_used_at).where(
                    ApiKey.secret_hash == hash_secret(secret), ApiKey.revoked_at.is_(None)
                )
            )
        ).first()
        if row is None:
            return None
        key_id, account_id, last_used_at = row
        stale = last_used_at is None or last_used_at < utcnow() - LAST_USED_RESOLUTION
        return Principal(account_id=account_id, api_key_id=key_id), stale

    def active_ids(self, connection: Connection, key_ids: Collection[str]) -> set[str]:
        """Which of `key_ids` are not revoked, read in the caller's (writer) transaction."""
        return set(connection.execute(_ACTIVE_KEYS, {"ids": list(key_ids)}).scalars())

    async def touch(self, session: AsyncSession, key_id: str) -> None:
        now = utcnow()
        await session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                (ApiKey.last_used_at.is_(None))
                | (ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )


accounts = AccountService()
api_keys = ApiKeyService()

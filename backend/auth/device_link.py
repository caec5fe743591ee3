"""Device linking, RFC 8628 style: a CLI starts a link and polls with a secret device code
while a signed-in person approves the short user code in a browser. The API key is minted when
the CLI collects it, exactly once, so its secret is never stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.accounts.models import Account
from backend.accounts.service import IssuedKey, accounts, api_keys
from backend.auth.models import DeviceLink
from backend.db.ids import new_id
from backend.http.errors import Conflict, Gone, NotFound

# RFC 8628 §6.1: consonants only (no words, no 0/O or 1/I confusion); 20^8 ≈ 2.6e10 codes.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
# RFC 8628 §3.5: each slow_down adds 5 seconds to the interval.
SLOW_DOWN_STEP_SECONDS = 5
# Finished links are kept a day (so a late poll gets a clear answer), then purged.
RETENTION = timedelta(days=1)
DEFAULT_CLIENT_NAME = "Unnamed client"
# The browser page where the person enters or confirms the user code (served by backend/web).
VERIFICATION_PATH = "/device"

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
CONSUMED = "consumed"

PollStatus = Literal["pending", "slow_down", "expired", "denied", "approved"]


class DeviceCodeInvalid(NotFound):
    code = "DEVICE_CODE_INVALID"


class DeviceCodeUsed(Gone):
    code = "DEVICE_CODE_USED"


class UserCodeNotFound(NotFound):
    code = "USER_CODE_NOT_FOUND"


class DeviceLinkExpired(Gone):
    code = "DEVICE_LINK_EXPIRED"


class DeviceLinkDecided(Conflict):
    code = "DEVICE_LINK_ALREADY_DECIDED"


@dataclass(frozen=True)
class DeviceLinkPolicy:
    ttl: timedelta
    interval_seconds: int


@dataclass(frozen=True)
class StartedLink:
    link: DeviceLink
    device_code: str  # handed to the client once; only its hash is stored


@dataclass(frozen=True)
class PollResult:
    status: PollStatus
    link: DeviceLink
    issued: IssuedKey | None = None
    account: Account | None = None


def format_user_code(normalized: str) -> str:
    half = len(normalized) // 2
    return f"{normalized[:half]}-{normalized[half:]}"


def normalize_user_code(raw: str) -> str | None:
    """`wdjb mjht`, `WDJB-MJHT` -> `WDJBMJHT`; None when it cannot be a code."""
    value = raw.upper().replace("-", "").replace(" ", "")
    if len(value) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in value):
        return None
    return value


def _hash_device_code(device_code: str) -> str:
    return hashlib.sha256(device_code.encode()).hexdigest()


def _new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


class DeviceLinkService:
    async def start(
        self,
        session: AsyncSession,
        *,
        client_name: str | None,
        key_label: str | None,
        ip: str | None,
        policy: DeviceLinkPolicy,
        now: datetime,
    ) -> StartedLink:
        await session.execute(delete(DeviceLink).where(DeviceLink.expires_at < now - RETENTION))
        user_code = _new_user_code()
        # A clash among live codes is ~1e-10 per start; redraw rather than rely on the unique
        # index, whose violation would abort the whole transaction.
        while await session.scalar(select(DeviceLink.id).where(DeviceLink.user_code == user_code)):
            user_code = _new_user_code()
        device_code = secrets.token_urlsafe(32)
        link = DeviceLink(
            id=new_id("dlink"),
            device_code_hash=_hash_device_code(device_code),
            user_code=user_code,
            status=PENDING,
            client_name=(client_name or "").strip()[:128] or DEFAULT_CLIENT_NAME,
            key_label=key_label,
            requested_ip=ip,
            interval_seconds=policy.interval_seconds,
            created_at=now,
            expires_at=now + policy.ttl,
        )
        session.add(link)
        await session.flush()
        return StartedLink(link=link, device_code=device_code)

    async def describe(self, session: AsyncSession, user_code: str, *, now: datetime) -> DeviceLink:
        return await self._by_user_code(session, user_code, now=now, for_update=False)

    async def decide(
        self,
        session: AsyncSession,
        user_code: str,
        *,
        account_id: str,
        approve: bool,
        key_label: str | None,
        now: datetime,
    ) -> DeviceLink:
        link = await self._by_user_code(session, user_code, now=now, for_update=True)
        if link.status != PENDING:
            raise DeviceLinkDecided(
                f"This request was already {'approved' if link.status != DENIED else 'denied'}."
            )
        link.status = APPROVED if approve else DENIED
        link.account_id = account_id
        link.decided_at = now
        if approve and key_label:
            link.key_label = key_label
        await session.flush()
        return link

    async def poll(self, session: AsyncSession, device_code: str, *, now: datetime) -> PollResult:
        link = await session.scalar(
            select(DeviceLink)
            .where(DeviceLink.device_code_hash == _hash_device_code(device_code))
            .with_for_update()
        )
        if link is None:
            raise DeviceCodeInvalid("Unknown device code. Start a new link.")
        if link.status == CONSUMED:
            raise DeviceCodeUsed(
                "This device code was already exchanged for an API key. Start a new link."
            )
        if link.status == DENIED:
            return PollResult(status="denied", link=link)
        if link.expires_at <= now:
            return PollResult(status="expired", link=link)
        too_fast = link.last_polled_at is not None and (
            now - link.last_polled_at < timedelta(seconds=link.interval_seconds)
        )
        link.last_polled_at = now
        if too_fast:
            link.interval_seconds += SLOW_DOWN_STEP_SECONDS
            await session.flush()
            return PollResult(status="slow_down", link=link)
        if link.status == PENDING:
            await session.flush()
            return PollResult(status="pending", link=link)
        return await self._hand_out_key(session, link, now=now)

    async def _hand_out_key(
        self, session: AsyncSession, link: DeviceLink, *, now: datetime
    ) -> PollResult:
        # The conditional update is what makes "exactly once" hold even if two polls race.
        claimed = await session.execute(
            update(DeviceLink)
            .where(DeviceLink.id == link.id, DeviceLink.status == APPROVED)
            .values(status=CONSUMED, consumed_at=now, last_polled_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise DeviceCodeUsed(
                "This device code was already exchanged for an API key. Start a new link."
            )
        assert link.account_id is not None
        account = await accounts.get(session, link.account_id)
        assert account is not None
        issued = await api_keys.issue(session, account.id, label=link.key_label)
        link.status = CONSUMED
        link.consumed_at = now
        link.api_key_id = issued.key.id
        await session.flush()
        return PollResult(status="approved", link=link, issued=issued, account=account)

    async def _by_user_code(
        self, session: AsyncSession, user_code: str, *, now: datetime, for_update: bool
    ) -> DeviceLink:
        normalized = normalize_user_code(user_code)
        link = None
        if normalized is not None:
            query = select(DeviceLink).where(DeviceLink.user_code == normalized)
            link = await session.scalar(query.with_for_update() if for_update else query)
        if link is None:
            raise UserCodeNotFound(
                "No device is waiting for this code. Check it against your terminal."
            )
        if link.status == PENDING and link.expires_at <= now:
            raise DeviceLinkExpired("This code has expired. Run `killa login` again for a new one.")
        return link


device_links = DeviceLinkService()

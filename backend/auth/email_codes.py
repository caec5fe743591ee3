"""Emailed one-time sign-in codes: 6 digits, short-lived, stored keyed-hashed, few guesses."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.accounts.service import normalize_email
from backend.auth.models import EmailCode
from backend.db.ids import new_id
from backend.http.errors import BadRequest

CODE_DIGITS = 6


class EmailCodeRejected(BadRequest):
    """Every failure names what the person can do next; none says whether an account exists."""

    code = "EMAIL_CODE_INVALID"


class EmailCodeExpired(EmailCodeRejected):
    code = "EMAIL_CODE_EXPIRED"


class EmailCodeExhausted(EmailCodeRejected):
    code = "EMAIL_CODE_EXHAUSTED"


@dataclass(frozen=True)
class EmailCodePolicy:
    secret: bytes
    ttl: timedelta
    max_attempts: int


@dataclass(frozen=True)
class IssuedCode:
    email: str
    code: str  # mailed once; only its keyed hash is stored
    expires_at: datetime
    valid_for: timedelta


def _hash(secret: bytes, code_id: str, email: str, code: str) -> str:
    # The row id salts the hash, so equal codes never share a hash.
    return hmac.new(secret, f"{code_id}:{email}:{code}".encode(), hashlib.sha256).hexdigest()


class EmailCodeService:
    async def issue(
        self,
        session: AsyncSession,
        email: str,
        *,
        ip: str | None,
        policy: EmailCodePolicy,
        now: datetime,
    ) -> IssuedCode:
        """A fresh code for `email`; any earlier code for it dies, so only the latest mail works."""
        email = normalize_email(email)
        await session.execute(
            delete(EmailCode).where(or_(EmailCode.email == email, EmailCode.expires_at < now))
        )
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        row = EmailCode(
            id=new_id("ecode"),
            email=email,
            requested_ip=ip,
            created_at=now,
            expires_at=now + policy.ttl,
            attempts=0,
        )
        row.code_hash = _hash(policy.secret, row.id, email, code)
        session.add(row)
        await session.flush()
        return IssuedCode(email=email, code=code, expires_at=row.expires_at, valid_for=policy.ttl)

    async def redeem(
        self,
        session: AsyncSession,
        email: str,
        code: str,
        *,
        policy: EmailCodePolicy,
        now: datetime,
    ) -> str | EmailCodeRejected:
        """The normalised email when `code` is right, else the rejection to raise.

        A wrong guess must still be counted, so the rejection is returned rather than raised:
        the caller commits first, then raises.
        """
        email = normalize_email(email)
        row = await session.scalar(
            select(EmailCode)
            .where(EmailCode.email == email, EmailCode.consumed_at.is_(None))
            .order_by(EmailCode.created_at.desc())
            .limit(1)
        )
        if row is None:
            return EmailCodeRejected(
                "No sign-in code is waiting for this address. Request a new code."
            )
        if row.expires_at <= now:
            return EmailCodeExpired("This code has expired. Request a new code.")
        # Spend the attempt before checking it, atomically, so concurrent guesses cannot
        # share one attempt.
        spent = await session.execute(
            update(EmailCode)
            .where(
                EmailCode.id == row.id,
                EmailCode.consumed_at.is_(None),
                EmailCode.attempts < policy.max_attempts,
            )
            .values(attempts=EmailCode.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            return EmailCodeExhausted(
                "Too many wrong codes: this code no longer works. Request a new code."
            )
        expected = _hash(policy.secret, row.id, email, code)
        if not hmac.compare_digest(expected, row.code_hash):
            attempts_left = policy.max_attempts - row.attempts - 1
            if attempts_left <= 0:
                return EmailCodeExhausted(
                    "Too many wrong codes: this code no longer works. Request a new code."
                )
            return EmailCodeRejected(
                f"That code is not right. {attempts_left} attempt(s) left.",
                details={"attemptsLeft": attempts_left},
            )
        consumed = await session.execute(
            update(EmailCode)
            .where(EmailCode.id == row.id, EmailCode.consumed_at.is_(None))
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
        if consumed.rowcount != 1:  # type: ignore[attr-defined]
            return EmailCodeRejected("This code was already used. Request a new code.")
        return email


email_codes = EmailCodeService()

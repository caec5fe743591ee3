"""Sign-in state: emailed one-time codes, browser sessions and device-link requests.

Every secret a client holds (a code, a session cookie, a device code) is stored only as a hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow


class EmailCode(Base):
    """A 6-digit code mailed to `email`; dies when used, expired or guessed wrong too often."""

    __tablename__ = "email_codes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    # HMAC-SHA256 under the server secret: a leaked table cannot be brute-forced through the
    # million possible codes without the key.
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BrowserSession(Base):
    """A signed-in browser: the cookie carries a random token, the row its SHA-256."""

    __tablename__ = "browser_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    # Synchronizer token for state-changing requests made with this session's cookie.
    csrf_token: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeviceLink(Base):
    """An RFC 8628-style device authorization: a CLI waits on `device_code_hash` while a
    signed-in person approves `user_code` in a browser.

    status: pending -> approved | denied; approved -> consumed once the key was handed out.
    Expiry is read from `expires_at`, not stored as a status.
    """

    __tablename__ = "device_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Normalised: the 8 letters without the dash.
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    client_name: Mapped[str] = mapped_column(String(128))
    key_label: Mapped[str | None] = mapped_column(String(64))
    requested_ip: Mapped[str | None] = mapped_column(String(64))
    interval_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

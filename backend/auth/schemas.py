"""Request bodies (as the spec's auth and device-link schemas) and response renderers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from backend.accounts.models import Account
from backend.accounts.schemas import render_key
from backend.auth.device_link import (
    CONSUMED,
    PENDING,
    VERIFICATION_PATH,
    PollResult,
    StartedLink,
    format_user_code,
)
from backend.auth.flows import SignedInKey
from backend.auth.models import BrowserSession, DeviceLink
from backend.settings import Settings

# Shape only; deliverability is proven by the emailed code itself.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _check_email(value: str) -> str:
    if len(value) > 320 or not _EMAIL.match(value.strip()):
        raise ValueError("not a valid email address")
    return value.strip()


Email = Annotated[str, AfterValidator(_check_email)]
KeyLabel = Annotated[str | None, Field(alias="keyLabel", min_length=1, max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class GoogleAuthRequest(_Body):
    id_token: str = Field(alias="idToken", min_length=20)
    key_label: KeyLabel = None


class EmailAuthStartRequest(_Body):
    email: Email


class EmailAuthVerifyRequest(_Body):
    email: Email
    code: str = Field(min_length=6, max_length=6)
    key_label: KeyLabel = None


class DeviceLinkStartRequest(_Body):
    key_label: KeyLabel = None


class DeviceLinkApproveRequest(_Body):
    user_code: str = Field(alias="userCode", min_length=4, max_length=32)
    key_label: KeyLabel = None
    # Not in the v0.7.0 spec (which only approves): lets the same call refuse a request.
    decision: Literal["approve", "deny"] = "approve"


class DeviceLinkPollRequest(_Body):
    device_code: str = Field(alias="deviceCode", min_length=20, max_length=256)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def render_account(account: Account) -> dict[str, Any]:
    return {"id": account.id, "email": account.email}


def render_signed_in_key(signed_in: SignedInKey) -> dict[str, Any]:
    return {
        "ok": True,
        "apiKey": signed_in.issued.secret,
        "key": render_key(signed_in.issued.key),
        "account": render_account(signed_in.account),
        "notice": "Store this key now: it is shown only once.",
    }


def render_browser_session(row: BrowserSession, account: Account) -> dict[str, Any]:
    return {
        "ok": True,
        "authenticated": True,
        "account": render_account(account),
        "csrfToken": row.csrf_token,
        "expiresAt": iso(row.expires_at),
    }


def verification_urls(settings: Settings, user_code: str) -> tuple[str, str]:
    base = settings.absolute_url(VERIFICATION_PATH)
    return base, f"{base}?{urlencode({'code': format_user_code(user_code)})}"


def render_started_link(started: StartedLink, settings: Settings) -> dict[str, Any]:
    link = started.link
    url, complete = verification_urls(settings, link.user_code)
    return {
        "ok": True,
        "deviceCode": started.device_code,
        "userCode": format_user_code(link.user_code),
        "verificationUrl": url,
        "verificationUrlComplete": complete,
        "expiresIn": int((link.expires_at - link.created_at).total_seconds()),
        "expiresAt": iso(link.expires_at),
        "interval": link.interval_seconds,
    }


def link_status(link: DeviceLink, now: datetime) -> str:
    if link.status == PENDING and link.expires_at <= now:
        return "expired"
    return "approved" if link.status == CONSUMED else link.status


def render_link(link: DeviceLink, now: datetime) -> dict[str, Any]:
    return {
        "userCode": format_user_code(link.user_code),
        "status": link_status(link, now),
        "clientName": link.client_name,
        "keyLabel": link.key_label,
        "requestedAt": iso(link.created_at),
        "requestedFromIp": link.requested_ip,
        "expiresAt": iso(link.expires_at),
    }


def render_poll(result: PollResult) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ok": True,
        "status": result.status,
        "interval": result.link.interval_seconds,
        "expiresAt": iso(result.link.expires_at),
    }
    if result.issued is not None and result.account is not None:
        body.update(render_signed_in_key(SignedInKey(result.account, result.issued)))
    return body

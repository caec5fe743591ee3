"""Request and response bodies of the keys and balance routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from backend.accounts.models import ApiKey


class CreateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    label: str | None = Field(default=None, min_length=1, max_length=64)
    id_token: str | None = Field(default=None, alias="idToken", min_length=20)


class RevokeKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    key_id: str = Field(alias="keyId", min_length=1, max_length=64)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def render_key(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "label": key.label,
        "prefix": key.prefix,
        "createdAt": _iso(key.created_at),
        "lastUsedAt": _iso(key.last_used_at),
        "revokedAt": _iso(key.revoked_at),
        "status": "revoked" if key.revoked_at else "active",
    }

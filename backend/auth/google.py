"""Google ID-token verification with google-auth, over certificates fetched and cached here.

google-auth's `id_token.verify_token` fetches the certificates synchronously on every call; we
fetch them with httpx (async, honouring Cache-Control) and hand them to the same `jwt.decode`
it uses, so signature, expiry and audience are checked by google-auth itself. Issuer,
`email_verified` and the optional nonce are checked here, as `verify_oauth2_token` would.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
from google.auth import exceptions as google_exceptions
from google.auth import jwt

from backend.accounts.service import normalize_email
from backend.http.errors import BadRequest, NotImplementedYet, ServiceUnavailable, Unauthorized

logger = logging.getLogger("killa.auth.google")

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
# Tolerated clock difference between Google and us for `iat` and `exp`.
CLOCK_SKEW_SECONDS = 10
# Used when the certificate response carries no max-age.
DEFAULT_CERTS_TTL_SECONDS = 3600
# A token naming an unknown key id triggers a refetch (Google rotated its keys), but at most
# this often, so forged key ids cannot make us hammer the certificate endpoint.
MIN_REFETCH_SECONDS = 60
_MAX_AGE = re.compile(r"max-age=(\d+)")


class GoogleTokenInvalid(Unauthorized):
    code = "GOOGLE_TOKEN_INVALID"


class GoogleSignInDisabled(NotImplementedYet):
    code = "GOOGLE_SIGN_IN_DISABLED"


class GoogleCertsUnavailable(ServiceUnavailable):
    code = "GOOGLE_CERTS_UNAVAILABLE"


@dataclass(frozen=True)
class GoogleIdentity:
    subject: str
    email: str


def _token_key_id(token: str) -> str | None:
    header_b64 = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise GoogleTokenInvalid("The Google ID token is malformed.") from exc
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


class GoogleVerifier:
    def __init__(self, *, client_ids: list[str], certs_url: str) -> None:
        self.client_ids = list(client_ids)
        self.certs_url = certs_url
        self._certs: dict[str, str] = {}
        self._fresh_until = 0.0
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.client_ids)

    @property
    def web_client_id(self) -> str | None:
        return self.client_ids[0] if self.client_ids else None

    async def verify(self, token: str, *, nonce: str | None = None) -> GoogleIdentity:
        if not self.enabled:
            raise GoogleSignInDisabled(
                "Google sign-in is not configured on this server (KILLA_GOOGLE_CLIENT_IDS). "
                "Sign in with an emailed code or `killa login` instead."
            )
        certs = await self._certs_for(_token_key_id(token))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                certs=certs,
                audience=self.client_ids,
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except (ValueError, google_exceptions.GoogleAuthError) as exc:
            raise GoogleTokenInvalid(f"The Google ID token was refused: {exc}") from exc
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise GoogleTokenInvalid("The Google ID token was not issued by Google.")
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise GoogleTokenInvalid("The Google ID token belongs to another sign-in attempt.")
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is not True:
            raise GoogleTokenInvalid(
                "Google has not verified this account's email address; sign in with an "
                "emailed code instead."
            )
        try:
            email = normalize_email(email)
        except BadRequest as exc:
            raise GoogleTokenInvalid("The Google ID token carries no usable email.") from exc
        return GoogleIdentity(subject=str(claims.get("sub", "")), email=email)

    async def _certs_for(self, kid: str | None) -> dict[str, str]:
        async with self._lock:
            now = time.monotonic()
            stale = now >= self._fresh_until
            unknown_kid = kid is not None and kid not in self._certs
            if stale or (unknown_kid and now - self._fetched_at >= MIN_REFETCH_SECONDS):
                await self._fetch(now)
            return self._certs

    async def _fetch(self, now: float) -> None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(self.certs_url)
            response.raise_for_status()
            certs = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.error("fetching Google certificates from %s failed: %s", self.certs_url, exc)
            if self._certs:  # keep verifying with the last good set rather than lock people out
                return
            raise GoogleCertsUnavailable(
                "Google sign-in is temporarily unavailable. Try again shortly."
            ) from exc
        if not isinstance(certs, dict) or not all(isinstance(v, str) for v in certs.values()):
            raise GoogleCertsUnavailable("Google's certificate endpoint answered nonsense.")
        match = _MAX_AGE.search(response.headers.get("cache-control", ""))
        ttl = int(match.group(1)) if match else DEFAULT_CERTS_TTL_SECONDS
        self._certs = certs
        self._fetched_at = now
        self._fresh_until = now + ttl

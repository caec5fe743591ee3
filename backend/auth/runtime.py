"""What the sign-in routes share per app: policies from settings, the mailer, the Google
verifier (with its certificate cache) and the in-memory abuse limits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import HTTPConnection

from backend.auth.device_link import DeviceLinkPolicy
from backend.auth.email_codes import EmailCodePolicy
from backend.auth.google import GoogleVerifier
from backend.auth.mailer import Mailer, mailer_for
from backend.http.errors import TooManyRequests
from backend.http.rate_limit import TokenBuckets
from backend.settings import Settings


class HourlyBuckets(TokenBuckets):
    """`per_hour` tokens, all of which may be spent at once, refilled evenly over the hour."""

    def __init__(self, *, per_hour: int) -> None:
        super().__init__(per_minute=per_hour, burst=per_hour)
        self.rate = per_hour / 3600.0


class SignInLimits:
    """Abuse limits kept in process memory, like the global rate limiter. The hard limits that
    protect codes (5 guesses, expiry) live in the database; these stop mail bombing and
    user-code scanning."""

    def __init__(self, settings: Settings) -> None:
        self.sends_per_address = HourlyBuckets(per_hour=settings.email_codes_per_hour_per_address)
        self.sends_per_ip = HourlyBuckets(per_hour=settings.email_codes_per_hour_per_ip)
        self.user_code_lookups = TokenBuckets(
            per_minute=settings.user_code_lookups_per_minute,
            burst=settings.user_code_lookups_per_minute,
        )

    def email_send(self, email: str, ip: str) -> None:
        wait = self.sends_per_ip.take(ip)
        if wait > 0:
            raise TooManyRequests(
                "Too many sign-in codes requested from your network. Retry later.",
                retry_after_seconds=math.ceil(wait),
            )
        wait = self.sends_per_address.take(email)
        if wait > 0:
            raise TooManyRequests(
                "Too many sign-in codes sent to this address. Use the latest email, or retry "
                "later.",
                retry_after_seconds=math.ceil(wait),
            )

    def user_code_lookup(self, ip: str) -> None:
        wait = self.user_code_lookups.take(ip)
        if wait > 0:
            raise TooManyRequests(
                "Too many device codes tried. Wait, then check the code in your terminal.",
                retry_after_seconds=math.ceil(wait),
            )


@dataclass(frozen=True)
class AuthRuntime:
    email_codes: EmailCodePolicy
    device_links: DeviceLinkPolicy
    session_ttl: timedelta
    secure_cookies: bool
    mailer: Mailer
    google: GoogleVerifier
    limits: SignInLimits

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthRuntime:
        return cls(
            email_codes=EmailCodePolicy(
                secret=settings.resolved_secret_key,
                ttl=timedelta(seconds=settings.email_code_seconds),
                max_attempts=settings.email_code_attempts,
            ),
            device_links=DeviceLinkPolicy(
                ttl=timedelta(seconds=settings.device_link_seconds),
                interval_seconds=settings.device_link_interval_seconds,
            ),
            session_ttl=timedelta(seconds=settings.browser_session_seconds),
            secure_cookies=settings.is_https,
            mailer=mailer_for(settings),
            google=GoogleVerifier(
                client_ids=settings.google_client_ids, certs_url=settings.google_certs_url
            ),
            limits=SignInLimits(settings),
        )


def auth_runtime(connection: HTTPConnection) -> AuthRuntime:
    runtime: AuthRuntime = connection.app.state.auth
    return runtime


def client_ip(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"

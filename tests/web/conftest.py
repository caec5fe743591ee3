"""The browser pages use the sign-in fakes and settings of tests/auth."""

from __future__ import annotations

from tests.auth.conftest import (  # noqa: F401  (fixtures)
    attacker_key_pem,
    client,
    google,
    inbox,
    make_client,
    settings,
    smtp_server,
)

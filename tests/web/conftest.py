"""The browser pages use the sign-in fakes and settings of tests/auth."""

from __future__ import annotations

from tests.auth.conftest import client, make_client, settings  # noqa: F401  (fixtures)
from tests.auth.fakes import (  # noqa: F401  (fixtures)
    _google_server,
    _smtp_server,
    attacker_key_pem,
    google,
    inbox,
)

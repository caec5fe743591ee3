"""Local stand-ins for the outside world of sign-in: an SMTP server that keeps what it receives
(aiosmtpd) and a Google that signs ID tokens with a local RSA key and serves its certificate over
HTTP, so the real mailer and the real google-auth verification run against them."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

GOOGLE_CLIENT_ID = "1234567890-web.apps.googleusercontent.com"
OTHER_CLIENT_ID = "1234567890-android.apps.googleusercontent.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- SMTP -----------------------------------------------------------------------------------------


@dataclass
class Inbox:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, to: str, *, timeout: float = 10) -> EmailMessage:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for message in reversed(self.messages):
                    if to.lower() in str(message["To"]).lower():
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail to {to} arrived")
                self._arrived.wait(left)

    def code_for(self, to: str) -> str:
        body = self.wait_for(to).get_content()
        match = re.search(r"\b(\d{6})\b", body)
        assert match, body
        return match.group(1)


# --- Google ---------------------------------------------------------------------------------------


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _self_signed_certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class FakeGoogle:
    """Signs ID tokens like accounts.google.com and serves the certificate like googleapis.com."""

    certs_url: str
    key_id: str
    private_pem: bytes
    certificate_fetches: int = 0

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": "https://accounts.google.com",
            "aud": GOOGLE_CLIENT_ID,
            "azp": GOOGLE_CLIENT_ID,
            "sub": "1" + uuid.uuid4().hex[:20],
            "email": f"g-{uuid.uuid4().hex[:8]}@gmail.test",
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self, *, private_pem: bytes | None = None, key_id: str | None = None, **claims: Any
    ) -> str:
        signer = crypt.RSASigner.from_string(
            private_pem or self.private_pem, key_id=key_id or self.key_id
        )
        return jwt.encode(signer, self.claims(**claims)).decode()


def new_private_key_pem() -> bytes:
    return _pem(_rsa_key())


@contextmanager
def running_smtp_server() -> Iterator[Inbox]:
    inbox = Inbox(port=free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@contextmanager
def running_google() -> Iterator[FakeGoogle]:
    key = _rsa_key()
    key_id = uuid.uuid4().hex
    body = json.dumps({key_id: _self_signed_certificate(key)}).encode()
    fake: FakeGoogle

    class Certificates(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.certificate_fetches += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=3600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Certificates)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake = FakeGoogle(
        certs_url=f"http://127.0.0.1:{server.server_address[1]}/oauth2/v1/certs",
        key_id=key_id,
        private_pem=_pem(key),
    )
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()

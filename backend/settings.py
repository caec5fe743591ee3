"""Every knob of the gateway, read from the environment with the KILLA_ prefix."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KILLA_", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("killa", appauthor=False)),
        description="Where the embedded SQLite file and the local blob folder live.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL. Default: sqlite+aiosqlite:///<data dir>/killa.db. "
            "Production: postgresql+psycopg://user:pass@host/db."
        ),
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Absolute URL clients reach the gateway at; advertised URLs are built on it.",
    )
    model_dir: Path | None = Field(
        default=None,
        description="Model weights, one sub-folder per task family. Default: <data dir>/models.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the API (JSON list)."
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, description="Largest request body accepted, in bytes (413 above)."
    )
    rate_limit_per_minute: int = Field(
        default=600,
        description="Requests per minute per API key (or per client IP when anonymous).",
    )
    rate_limit_burst: int = Field(
        default=60,
        description="Requests a key may send at once before the per-minute rate applies.",
    )
    api_key_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a verified API key is remembered in process (0: read it on every "
        "request). A key revoked by another process is refused within this time; money never "
        "moves on a revoked key.",
    )
    log_level: str = Field(default="INFO", description="Python log level of the JSON logs.")
    secret_key: str | None = Field(
        default=None,
        description="Signs file URLs and session cookies. Default: a random key in the data dir.",
    )

    # Sign-in: email one-time codes, Google, browser sessions and device linking (backend/auth).
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server for sign-in codes. Unset: codes are written to the log instead.",
    )
    smtp_port: int = Field(default=587, description="SMTP port.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if it needs one.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (port 587), tls (implicit, port 465) or none (a local relay).",
    )
    smtp_from: str = Field(
        default="Killa Tamata <no-reply@localhost>", description="From address of sign-in mail."
    )
    google_client_ids: list[str] = Field(
        default_factory=list,
        description="Google OAuth client IDs accepted as ID-token audiences (JSON list); the "
        "first one drives the sign-in page's Google button. Empty: Google sign-in is off.",
    )
    google_certs_url: str = Field(
        default="https://www.googleapis.com/oauth2/v1/certs",
        description="Where Google's ID-token signing certificates are fetched from.",
    )
    browser_session_seconds: int = Field(
        default=7 * 24 * 3600, gt=0, description="Lifetime of a browser sign-in session."
    )
    email_code_seconds: int = Field(
        default=600, gt=0, description="How long an emailed sign-in code stays valid."
    )
    email_code_attempts: int = Field(
        default=5, gt=0, description="Wrong guesses after which an emailed code is dead."
    )
    email_codes_per_hour_per_address: int = Field(
        default=5, gt=0, description="Sign-in emails one address may receive per hour."
    )
    email_codes_per_hour_per_ip: int = Field(
        default=30, gt=0, description="Sign-in emails one client IP may request per hour."
    )
    device_link_seconds: int = Field(
        default=600, gt=0, description="How long a device-link request waits for approval."
    )
    device_link_interval_seconds: int = Field(
        default=5, gt=0, description="Poll interval handed to device-link clients."
    )
    user_code_lookups_per_minute: int = Field(
        default=10, gt=0, description="Device-link user-code lookups per client IP per minute."
    )

    # Media jobs: execution, storage and input fetching (backend/jobs, backend/storage).
    worker_concurrency: int = Field(
        default=1,
        gt=0,
        description="Jobs run at once by the in-process dispatcher (worker processes).",
    )
    worker_mode: Literal["process", "thread"] = Field(
        default="process",
        description="Run engines in worker processes (isolated; default) or threads (debugging).",
    )
    device: Literal["auto", "cuda", "cpu"] = Field(
        default="auto", description="Where engines run: auto picks CUDA when torch sees a GPU."
    )
    job_max_attempts: int = Field(
        default=2,
        gt=0,
        description="Runs a job gets when its worker dies mid-job (crash, restart).",
    )
    storage_backend: Literal["local", "s3"] = Field(
        default="local", description="Job outputs in <data dir>/blobs (local) or an S3 bucket."
    )
    s3_bucket: str | None = Field(default=None, description="S3 bucket for job outputs.")
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, R2, ...); unset for AWS."
    )
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    s3_access_key_id: str | None = Field(default=None, description="S3 access key id.")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="S3 secret key.")
    s3_prefix: str = Field(default="", description="Key prefix inside the bucket.")
    gemini_api_key: SecretStr | None = Field(
        default=None,
        description="Google AI API key for audio.speak provider gemini (unset: gemini is refused).",
    )
    gemini_base_url: str = Field(
        default="https://generativelanguage.googleapis.com",
        description="Gemini API base URL.",
    )
    gemini_tts_model: str = Field(
        default="gemini-3.1-flash-tts-preview", description="Gemini text-to-speech model."
    )
    fetch_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (host or host:port) that URL inputs and callbacks may reach even on "
        "private or loopback addresses (JSON list). For tests and private deployments only.",
    )

    # MCP over streamable HTTP (/mcp; server/mcp_http.py).
    mcp_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host headers /mcp accepts besides the public base URL's host and loopback "
        "(JSON list; host:port, or host:* for any port). Others get 421: DNS-rebinding guard.",
    )
    mcp_allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins /mcp accepts besides the public base URL's, the CORS "
        "origins and loopback (JSON list; http://host:* for any port).",
    )

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'killa.db'}"

    @cached_property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @cached_property
    def resolved_secret_key(self) -> bytes:
        """`secret_key`, else a random key created once in the data dir (0600).

        Every process on one data dir shares the file; several machines need KILLA_SECRET_KEY.
        """
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret.key"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        key = secrets.token_hex(32).encode()
        with os.fdopen(fd, "wb") as file:
            file.write(key)
        return key

    @property
    def is_https(self) -> bool:
        return self.public_base_url.lower().startswith("https://")

    @property
    def base_url(self) -> str:
        return self.public_base_url.rstrip("/")

    def absolute_url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

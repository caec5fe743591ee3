"""Every knob of the gateway, read from the environment with the KILLA_ prefix."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
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
        description="Absolute URL clients reach the gateway at; every advertised URL is built on it.",
    )
    model_dir: Path | None = Field(
        default=None,
        description="Folder holding model weights (one sub-folder per task family). Default: <data dir>/models.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the API (JSON list)."
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, description="Largest request body accepted, in bytes (413 above)."
    )
    rate_limit_per_minute: int = Field(
        default=600, description="Requests per minute per API key (or per client IP when anonymous)."
    )
    rate_limit_burst: int = Field(
        default=60, description="Requests a key may send at once before the per-minute rate applies."
    )
    log_level: str = Field(default="INFO", description="Python log level of the JSON logs.")
    secret_key: str | None = Field(
        default=None,
        description="Signs file URLs and session cookies. Default: a random key kept in the data dir.",
    )

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'killa.db'}"

    @cached_property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def base_url(self) -> str:
        return self.public_base_url.rstrip("/")

    def absolute_url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

"""`killa login` / `whoami` / `logout` as subprocesses against a live gateway on loopback."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from backend.app import create_app
from backend.db.engine import Database
from backend.settings import Settings
from server.cli import main
from server.login import Credentials, credentials_path, save_credentials
from tests.auth.fakes import free_port
from tests.conftest import Customer, make_customer

KILLA = Path(sys.executable).with_name("killa")
USER_CODE = re.compile(r"\b([B-Z]{4}-[B-Z]{4})\b")


@dataclass(frozen=True)
class Gateway:
    url: str


@pytest.fixture
def gateway(settings: Settings) -> Iterator[Gateway]:
    """The app served by uvicorn in a thread with its own event loop and database engine."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    served = settings.model_copy(update={"public_base_url": url, "device_link_interval_seconds": 1})
    holder: dict[str, uvicorn.Server] = {}

    async def serve() -> None:
        db = Database(served.resolved_database_url)
        config = uvicorn.Config(
            create_app(served, database=db),
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="off",
        )
        server = holder["server"] = uvicorn.Server(config)
        try:
            await server.serve()
        finally:
            await db.dispose()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    while "server" not in holder or not holder["server"].started:
        time.sleep(0.05)
        assert thread.is_alive(), "the gateway thread died"
    yield Gateway(url)
    holder["server"].should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    return tmp_path / "config"


def cli_env(config_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILLA_")}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return {**env, "XDG_CONFIG_HOME": str(config_home), **extra}


def login_until_code(
    gateway: Gateway, config_home: Path, *args: str
) -> tuple[subprocess.Popen[str], str, list[str]]:
    process = subprocess.Popen(
        [str(KILLA), "login", "--api-url", gateway.url, "--no-browser", *args],
        env=cli_env(config_home),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line)
        if match := USER_CODE.search(line):
            return process, match.group(1), seen
    raise AssertionError("killa login printed no user code:\n" + "".join(seen))


def login_and_decide(
    gateway: Gateway, config_home: Path, approver: Customer, decision: str
) -> tuple[int, str]:
    process, user_code, seen = login_until_code(gateway, config_home, "--label", "ci box")
    assert f"{gateway.url}/device" in "".join(seen)
    decided = httpx.post(
        f"{gateway.url}/api/v1/device/link/approve",
        json={"userCode": user_code, "decision": decision},
        headers=approver.headers,
    )
    assert decided.status_code == 200, decided.text
    _, rest = process.communicate(timeout=30)
    return process.returncode, "".join(seen) + rest


def invoke(config_home: Path, *args: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=cli_env(config_home, **env))
    return result.exit_code, result.stdout, result.stderr


async def test_login_stores_a_private_working_key_and_logout_revokes_it(
    gateway: Gateway, config_home: Path, db: Database
) -> None:
    approver = await make_customer(db, usd_micros=12_500_000, email="owner@example.com")
    code, output = await asyncio.to_thread(
        login_and_decide, gateway, config_home, approver, "approve"
    )
    assert code == 0, output
    assert "Linked as owner@example.com" in output

    stored = config_home / "killa" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    key = re.search(r'"apiKey": "([^"]+)"', stored.read_text())
    assert key
    headers = {"Authorization": f"Bearer {key.group(1)}"}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/api/v1/balance", headers=headers)).status_code == 200

    exit_code, out, err = await asyncio.to_thread(invoke, config_home, "whoami")
    assert exit_code == 0, err
    assert "owner@example.com" in out
    assert "$12.50" in out
    assert "ci box" in out

    exit_code, _, err = await asyncio.to_thread(invoke, config_home, "logout")
    assert exit_code == 0, err
    assert not stored.exists()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/api/v1/balance", headers=headers)).status_code == 401


async def test_login_reports_a_denied_request_and_stores_nothing(
    gateway: Gateway, config_home: Path, db: Database
) -> None:
    approver = await make_customer(db)
    code, output = await asyncio.to_thread(login_and_decide, gateway, config_home, approver, "deny")
    assert code == 1
    assert "denied" in output
    assert not (config_home / "killa" / "credentials.json").exists()


async def test_whoami_prefers_killa_api_key(
    gateway: Gateway, config_home: Path, db: Database
) -> None:
    other = await make_customer(db, usd_micros=3_000_000)
    exit_code, out, err = await asyncio.to_thread(
        invoke, config_home, "whoami", "--api-url", gateway.url, KILLA_API_KEY=other.api_key
    )
    assert exit_code == 0, err
    assert "$3.00" in out
    assert "KILLA_API_KEY" in out


def test_whoami_without_a_key_says_how_to_log_in(config_home: Path) -> None:
    exit_code, _, err = invoke(config_home, "whoami")
    assert exit_code == 1
    assert "killa login" in err


def test_the_credentials_file_stays_private_when_replaced(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    path = credentials_path()
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    path.chmod(0o644)
    save_credentials(Credentials(api_url="http://x", api_key="kt_live_secret"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "kt_live_secret" in path.read_text()

"""The `killa` operator commands and `killa serve` as a newcomer runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from server.cli import main


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"KILLA_DATA_DIR": str(tmp_path / "data")}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_accounts_create_prints_a_key_once_and_grant_is_audited_and_replay_safe(
    env: dict[str, str],
) -> None:
    code, out, err = run(env, "accounts", "create", "--email", "Op@Example.com")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("kt_live_")
    assert "op@example.com" in err

    code, _, err = run(env, "accounts", "create", "--email", "op@example.com")
    assert code == 1
    assert "already exists" in err

    code, _, err = run(
        env,
        "credits",
        "grant",
        "--email",
        "op@example.com",
        "--usd",
        "12.5",
        "--reason",
        "welcome",
        "--reference",
        "w1",
    )
    assert code == 0, err
    assert "$12.50" in err
    code, _, err = run(
        env,
        "credits",
        "grant",
        "--email",
        "op@example.com",
        "--usd",
        "12.5",
        "--reason",
        "welcome",
        "--reference",
        "w1",
    )
    assert code == 0
    assert "nothing credited" in err
    assert "Available balance: $12.50" in err


@pytest.mark.parametrize(
    ("usd", "message"),
    [
        ("abc", "not a USD amount"),
        ("0", "more than 0"),
        ("-1", "more than 0"),
        ("0.0000001", "6 decimal"),
    ],
)
def test_grant_refuses_bad_amounts(env: dict[str, str], usd: str, message: str) -> None:
    run(env, "accounts", "create", "--email", "x@example.com")
    code, _, err = run(
        env, "credits", "grant", "--email", "x@example.com", "--usd", usd, "--reason", "r"
    )
    assert code == 1
    assert message in err


def test_grant_to_an_unknown_email_says_so(env: dict[str, str]) -> None:
    code, _, err = run(
        env, "credits", "grant", "--email", "ghost@example.com", "--usd", "1", "--reason", "r"
    )
    assert code == 1
    assert "no account" in err


def test_serve_help_documents_every_setting() -> None:
    code, out, _ = run({}, "serve", "--help")
    assert code == 0
    for name in (
        "KILLA_DATABASE_URL",
        "KILLA_PUBLIC_BASE_URL",
        "KILLA_DATA_DIR",
        "KILLA_MODEL_DIR",
        "KILLA_CORS_ORIGINS",
        "KILLA_MAX_BODY_BYTES",
        "KILLA_RATE_LIMIT_PER_MINUTE",
    ):
        assert name in out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_killa_serve_migrates_and_serves_on_the_embedded_default(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "KILLA_DATA_DIR": str(tmp_path / "data")}
    env.pop("KILLA_DATABASE_URL", None)
    env.pop("KILLA_PUBLIC_BASE_URL", None)
    killa = Path(sys.executable).with_name("killa")
    process = subprocess.Popen(
        [str(killa), "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "killa serve exited"
                assert time.monotonic() < deadline, "killa serve did not start"
                time.sleep(0.2)
        assert health.json()["version"]["skill"]["entrypointUrl"] == (
            f"http://127.0.0.1:{port}/skills/killa-tamata/SKILL.md"
        )
        assert (tmp_path / "data" / "killa.db").is_file()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert f"http://127.0.0.1:{port}" in stderr

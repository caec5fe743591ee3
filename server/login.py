"""`killa login`, `killa logout`, `killa whoami`: sign a terminal in through the device link.

`killa login` starts a link, shows the code and the URL, waits while the person approves in a
browser, and stores the one-time API key in the user config dir, readable by the owner only.
Every command that needs a key takes `KILLA_API_KEY` first, then that file.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import tempfile
import time
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx
from platformdirs import user_config_dir
from rich.console import Console

from backend import __version__
from backend.ledger.money import format_usd_display

DEFAULT_API_URL = "http://127.0.0.1:8000"
API_KEY_ENV = "KILLA_API_KEY"
API_URL_ENV = "KILLA_API_URL"
HTTP_TIMEOUT_SECONDS = 30

console = Console(stderr=True)
report = Console()  # whoami's answer goes to stdout, for scripts


@dataclass(frozen=True)
class Credentials:
    api_url: str
    api_key: str
    key_id: str | None = None
    account_email: str | None = None


def credentials_path() -> Path:
    return Path(user_config_dir("killa", appauthor=False)) / "credentials.json"


def load_credentials() -> Credentials | None:
    try:
        data = json.loads(credentials_path().read_text())
        return Credentials(
            api_url=str(data["apiUrl"]),
            api_key=str(data["apiKey"]),
            key_id=data.get("keyId"),
            account_email=data.get("accountEmail"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_credentials(credentials: Credentials) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps(
        {
            "apiUrl": credentials.api_url,
            "apiKey": credentials.api_key,
            "keyId": credentials.key_id,
            "accountEmail": credentials.account_email,
        },
        indent=2,
    )
    # mkstemp creates the file 0600 before any byte of the key is written; the rename then
    # replaces an older file atomically, whatever its mode was.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".credentials-")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(body + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def api_key_from_environment_or_file() -> tuple[str, str] | None:
    """(key, where it came from), `KILLA_API_KEY` first."""
    if key := os.environ.get(API_KEY_ENV, "").strip():
        return key, API_KEY_ENV
    stored = load_credentials()
    if stored is not None:
        return stored.api_key, str(credentials_path())
    return None


def user_agent(program: str = "killa-cli") -> str:
    # The approval page shows this as the client asking for access, so say which machine.
    return f"{program}/{__version__} ({socket.gethostname()}; {platform.system()})"


def approved_credentials(api_url: str, approved: dict[str, Any]) -> Credentials:
    """What an approved device-link poll stores (`killa login` and `killa mcp` alike)."""
    return Credentials(
        api_url=api_url,
        api_key=approved["apiKey"],
        key_id=approved["key"].get("id"),
        account_email=approved["account"]["email"],
    )


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    sys.exit(1)


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code} from {response.request.url}"


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {client.base_url}: {exc}")
    if response.is_error:
        _fail(_error_message(response))
    body: dict[str, Any] = response.json()
    return body


def _can_open_browser() -> bool:
    # On Linux without a display, webbrowser would fall back to a console browser (lynx, w3m)
    # and take over this terminal.
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _client(api_url: str, api_key: str | None = None) -> httpx.Client:
    headers = {"User-Agent": user_agent()}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return httpx.Client(base_url=api_url, headers=headers, timeout=HTTP_TIMEOUT_SECONDS)


@click.command()
@click.option(
    "--api-url",
    envvar=API_URL_ENV,
    default=DEFAULT_API_URL,
    show_default=True,
    help=f"The gateway to sign in to (or {API_URL_ENV}).",
)
@click.option("--label", default=None, help="Label of the new API key. Default: this host name.")
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
def login(api_url: str, label: str | None, no_browser: bool) -> None:
    """Link this machine to your account: approve in a browser, get an API key."""
    api_url = api_url.rstrip("/")
    label = label or f"killa-cli on {socket.gethostname()}"[:64]
    with _client(api_url) as client:
        started = _call(client, "POST", "/api/v1/device/link/start", json={"keyLabel": label})
        console.print("To link this machine, open this page in a browser:", soft_wrap=True)
        console.print(f"  [bold]{started['verificationUrl']}[/bold]", soft_wrap=True)
        console.print(f"and confirm the code  [bold cyan]{started['userCode']}[/bold cyan]")
        console.print(f"(direct link: {started['verificationUrlComplete']})", soft_wrap=True)
        if not no_browser and _can_open_browser():
            webbrowser.open(started["verificationUrlComplete"])
        result = _wait_for_approval(client, started)
    key = result["key"]
    path = save_credentials(approved_credentials(api_url, result))
    console.print(
        f"[green]Linked[/green] as [bold]{result['account']['email']}[/bold] "
        f"(key {key['prefix']}…, “{key['label']}”). Key stored in {path}.",
        soft_wrap=True,
    )


def _wait_for_approval(client: httpx.Client, started: dict[str, Any]) -> dict[str, Any]:
    interval = float(started["interval"])
    deadline = time.monotonic() + float(started["expiresIn"])
    try:
        with console.status("Waiting for approval in the browser…") as status:
            while True:
                time.sleep(interval)
                left = max(0, int(deadline - time.monotonic()))
                status.update(
                    f"Waiting for approval in the browser… ({left // 60}:{left % 60:02d})"
                )
                polled = _call(
                    client,
                    "POST",
                    "/api/v1/device/link/poll",
                    json={"deviceCode": started["deviceCode"]},
                )
                match polled["status"]:
                    case "approved":
                        return polled
                    case "slow_down" | "pending":
                        interval = float(polled["interval"])
                    case "denied":
                        _fail("the request was denied in the browser.")
                    case "expired":
                        _fail("the code expired before it was approved. Run `killa login` again.")
                    case other:
                        _fail(f"unexpected answer from the server: {other!r}")
    except KeyboardInterrupt:
        _fail("cancelled.")


@click.command()
def logout() -> None:
    """Revoke and forget the API key `killa login` stored."""
    stored = load_credentials()
    path = credentials_path()
    if stored is None:
        path.unlink(missing_ok=True)
        console.print("Not logged in: no stored key.")
        return
    if stored.key_id:
        # Best effort: the key is forgotten here even when the server cannot be reached.
        try:
            with _client(stored.api_url, stored.api_key) as client:
                client.post("/api/v1/keys/revoke", json={"keyId": stored.key_id})
        except httpx.HTTPError as exc:
            console.print(
                f"[yellow]warning:[/yellow] could not revoke the key on the server: {exc}"
            )
    path.unlink(missing_ok=True)
    console.print(f"Logged out: removed {path}.")
    if os.environ.get(API_KEY_ENV):
        console.print(f"Note: {API_KEY_ENV} is still set in this environment.")


@click.command()
@click.option(
    "--api-url",
    envvar=API_URL_ENV,
    default=None,
    help=f"The gateway (default: {API_URL_ENV}, the one `killa login` used, or {DEFAULT_API_URL}).",
)
def whoami(api_url: str | None) -> None:
    """Show the account, key and balance this machine uses."""
    found = api_key_from_environment_or_file()
    if found is None:
        _fail(f"not logged in. Run `killa login` or set {API_KEY_ENV}.")
    api_key, source = found
    stored = load_credentials()
    api_url = (api_url or (stored.api_url if stored else None) or DEFAULT_API_URL).rstrip("/")
    with _client(api_url, api_key) as client:
        balance = _call(client, "GET", "/api/v1/balance")
        keys = _call(client, "GET", "/api/v1/keys")["keys"]
    key = next((k for k in keys if api_key.startswith(k["prefix"])), None)
    email = stored.account_email if stored and stored.api_key == api_key else None
    report.print(f"Account  [bold]{email or 'unknown (key from ' + source + ')'}[/bold]")
    if key is not None:
        report.print(f"Key      {key['prefix']}… “{key['label'] or ''}” ({source})", soft_wrap=True)
    report.print(
        f"Balance  [bold]{format_usd_display(balance['usdAvailableMicros'])}[/bold] available"
        f" ({format_usd_display(balance['usdHeldMicros'])} held)"
    )
    report.print(f"Server   {api_url}")

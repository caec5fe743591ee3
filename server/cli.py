"""The `killa` command: serve the gateway, migrate, and operator tasks."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import click
from rich.console import Console

from backend.db.engine import Database
from backend.ledger.money import format_usd_display, parse_usd
from backend.settings import Settings
from server.bundle import bundle
from server.login import login, logout, whoami
from server.mcp_server import mcp_command
from server.skill import skill

console = Console(stderr=True)


def _settings_help() -> str:
    lines = ["\b", "Environment variables (all optional):"]
    for name, field in Settings.model_fields.items():
        lines.append(f"  KILLA_{name.upper():<24} {field.description or ''}")
    return "\n".join(lines)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    sys.exit(1)


@click.group()
@click.version_option(package_name="killa")
def main() -> None:
    """Killa Tamata: the agent-facing media gateway."""


main.add_command(login)
main.add_command(logout)
main.add_command(whoami)
main.add_command(mcp_command)
main.add_command(skill)
main.add_command(bundle)


@main.command(epilog=_settings_help())
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
def serve(host: str, port: int) -> None:
    """Run the gateway (SQLite + local files in the data dir by default; migrations run first)."""
    import uvicorn

    from backend.app import create_app
    from backend.db.migrate import upgrade_database
    from backend.http.logging import configure_logging

    overrides: dict[str, Any] = {}
    if "KILLA_PUBLIC_BASE_URL" not in os.environ:
        overrides["public_base_url"] = f"http://{host}:{port}"
    settings = Settings(**overrides)
    configure_logging(settings.log_level)
    with console.status("Applying database migrations…"):
        upgrade_database(settings.resolved_database_url)
    console.print(
        f"[bold green]Killa Tamata[/bold green] gateway on [bold]{settings.base_url}[/bold]"
    )
    console.print(f"  data dir   {settings.data_dir}")
    console.print(f"  database   {settings.resolved_database_url}")
    console.print(f"  health     {settings.absolute_url('/api/v1/health')}")
    console.print(f"  models     {settings.resolved_model_dir}  (killa models: what can run)")
    console.print(f"  mcp        {settings.absolute_url('/mcp')}")
    console.print(f"  first key  killa login --api-url {settings.base_url}")
    console.print("             or: killa accounts create --email you@example.com")
    if not settings.smtp_host:
        console.print("  sign-in    no SMTP configured: sign-in codes are written to this log")
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all pending migrations to KILLA_DATABASE_URL (or the embedded SQLite file)."""
    from backend.db.migrate import upgrade_database

    settings = Settings()
    with console.status("Applying database migrations…"):
        upgrade_database(settings.resolved_database_url)
    console.print(f"Database is up to date: {settings.resolved_database_url}")


@main.group()
def accounts() -> None:
    """Operator commands for customer accounts."""


@accounts.command("create")
@click.option("--email", required=True, help="The account's email address.")
@click.option("--label", default="operator", show_default=True, help="Label of the first API key.")
def accounts_create(email: str, label: str) -> None:
    """Create an account and print its first API key (shown once)."""
    from backend.accounts.models import Account
    from backend.accounts.service import accounts as account_service
    from backend.accounts.service import api_keys
    from backend.http.errors import GatewayError

    async def run() -> tuple[Account, str]:
        db = await _open_database()
        try:
            async with db.transaction() as session:
                account = await account_service.create(session, email)
                issued = await api_keys.issue(session, account.id, label=label)
            return account, issued.secret
        finally:
            await db.dispose()

    try:
        account, secret = asyncio.run(run())
    except GatewayError as exc:
        _fail(exc.message)
    console.print(f"Created account [bold]{account.id}[/bold] for {account.email}.")
    console.print("API key (store it now, it is not shown again):")
    click.echo(secret)


@main.group()
def credits() -> None:
    """Operator commands for balances."""


@credits.command("grant")
@click.option("--email", required=True, help="Account to credit.")
@click.option("--usd", required=True, help="Amount in USD, e.g. 10 or 2.50.")
@click.option("--reason", required=True, help="Why: recorded in the ledger's audit row.")
@click.option("--reference", default=None, help="Unique reference; a repeat credits nothing.")
def credits_grant(email: str, usd: str, reason: str, reference: str | None) -> None:
    """Credit an account (an audited ledger movement from the grant source)."""
    import getpass
    import uuid

    from backend.accounts.service import accounts as account_service
    from backend.http.errors import GatewayError
    from backend.ledger.service import ledger

    try:
        micros = parse_usd(usd)
    except ValueError as exc:
        _fail(f"--usd: {exc}")
    if micros <= 0:
        _fail("--usd must be more than 0")

    async def run() -> tuple[bool, int]:
        db = await _open_database()
        try:
            async with db.transaction() as session:
                account = await account_service.require_by_email(session, email)
                result = await ledger.credit(
                    session,
                    account.id,
                    micros,
                    source="grant",
                    external_ref=f"grant:{reference or uuid.uuid4()}",
                    actor=f"operator:{getpass.getuser()}",
                    reason=reason,
                )
                balance = await ledger.balance(session, account.id)
            return result.replayed, balance.available_micros
        finally:
            await db.dispose()

    try:
        replayed, available = asyncio.run(run())
    except GatewayError as exc:
        _fail(exc.message)
    if replayed:
        console.print(f"Reference {reference!r} was already granted; nothing credited.")
    else:
        console.print(f"Granted {format_usd_display(micros)} to {email}.")
    console.print(f"Available balance: {format_usd_display(available)}")


async def _open_database() -> Database:
    from backend.db.migrate import upgrade_database

    settings = Settings()
    await asyncio.to_thread(upgrade_database, settings.resolved_database_url)
    return Database(settings.resolved_database_url)


@main.command()
def models() -> None:
    """Show, per task, the engine that serves it, the folder it expects and whether it is there."""
    from rich.table import Table

    from backend.engines.registry import EngineRegistry

    settings = Settings()
    registry = EngineRegistry(settings.resolved_model_dir, settings.device)
    with console.status("Checking model folders…"):
        rows = registry.availability()
    table = Table(title=f"Model dir: {settings.resolved_model_dir}")
    for column in ("task", "engine", "expected folder", "present", "device"):
        table.add_column(column)
    for row in rows:
        folder = (
            str(settings.resolved_model_dir / row.folder) if row.folder else "(no weights needed)"
        )
        present = "[green]yes[/green]" if row.present else f"[red]no[/red] — {row.reason}"
        table.add_row(row.task, row.family, folder, present, row.device or "-")
    Console().print(table)
    missing = [row for row in rows if not row.present]
    if missing:
        console.print(
            f"{len(missing)} task(s) unavailable: they are refused at submit with "
            "MODEL_UNAVAILABLE. Fill the folders above (see README, 'Model folders')."
        )

"""`killa bundle`: the MCPB bundle (`.mcpb`) for one-click install in Claude Desktop.

The bundle is a zip of `manifest.json` and the project's source: the manifest says `server.type:
uv`, so the host installs the project's dependencies from `pyproject.toml` itself and runs
`killa mcp`. The manifest's tool list is generated from the server (`--update-manifest`), and a
test keeps the checked-in one in step.
"""

from __future__ import annotations

import asyncio
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from backend import __version__
from server.mcp_server import build_server
from tools.gateway_client import GatewayClient

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = PROJECT_ROOT / "manifest.json"
# Next to manifest.json: what the host needs to install and run the project (pyproject's
# packages, and the skill the server reads its instructions from).
BUNDLED = ("pyproject.toml", "README.md", "LICENSE", "backend", "server", "tools", "skill")
_SKIPPED_NAMES = (".DS_Store",)
# Fixed zip timestamps: the same tree always packs to the same bytes.
_EPOCH = (1980, 1, 1, 0, 0, 0)

console = Console(stderr=True)


def server_tools() -> list[dict[str, str]]:
    """The tools as the MCP server lists them, in the manifest's shape."""

    async def listed() -> list[dict[str, str]]:
        # Listing tools calls no gateway: the client is never opened.
        server = build_server(
            GatewayClient(base_url="http://unused.invalid", api_key=lambda: None, sign_in_hint="")
        )
        return [
            {"name": tool.name, "description": tool.description or ""}
            for tool in await server.list_tools()
        ]

    return asyncio.run(listed())


def synced_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` with the version and tool list the code has now."""
    return {**manifest, "version": __version__, "tools": server_tools()}


def read_manifest() -> dict[str, Any]:
    if not MANIFEST.is_file():
        raise click.ClickException(
            f"no {MANIFEST.name} in {PROJECT_ROOT}: run `killa bundle` from a source checkout"
        )
    manifest: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return manifest


def bundle_files() -> list[Path]:
    files: list[Path] = []
    for name in BUNDLED:
        path = PROJECT_ROOT / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p
                for p in path.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.name not in _SKIPPED_NAMES
            )
    return sorted(files)


def write_bundle(output: Path, manifest: dict[str, Any]) -> int:
    output.parent.mkdir(parents=True, exist_ok=True)
    files = bundle_files()
    with zipfile.ZipFile(output, "w") as archive:
        archive.writestr(_entry("manifest.json", 0o644), json.dumps(manifest, indent=2) + "\n")
        for path in files:
            name = path.relative_to(PROJECT_ROOT).as_posix()
            archive.writestr(_entry(name, path.stat().st_mode & 0o777), path.read_bytes())
    return len(files) + 1


def _entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


@click.command("bundle")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the bundle. Default: dist/killa-tamata-<version>.mcpb.",
)
@click.option(
    "--update-manifest",
    is_flag=True,
    help="First rewrite manifest.json's version and tool list from the server.",
)
def bundle(output: Path | None, update_manifest: bool) -> None:
    """Pack the Claude Desktop extension (.mcpb): manifest.json plus the project's source."""
    manifest = read_manifest()
    synced = synced_manifest(manifest)
    if synced != manifest:
        if not update_manifest:
            console.print(
                "[red]error:[/red] manifest.json's tools or version differ from the server's. "
                "Run `killa bundle --update-manifest`."
            )
            sys.exit(1)
        MANIFEST.write_text(json.dumps(synced, indent=2) + "\n", encoding="utf-8")
        console.print(f"Updated {MANIFEST} from the server.")
    output = output or PROJECT_ROOT / "dist" / f"{manifest['name']}-{__version__}.mcpb"
    count = write_bundle(output, synced)
    console.print(f"Wrote [bold]{output}[/bold] ({count} files, {output.stat().st_size:,} bytes).")
    console.print("Install it in Claude Desktop: Settings > Extensions > Install Extension.")

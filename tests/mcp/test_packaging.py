"""What ships around the server: the MCPB manifest and bundle, the skill (its generated references,
its validator, its installer) and the gateway's Agent Skills discovery index."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner
from mcp import Client, StdioServerParameters

from backend import API_VERSION
from backend.discovery.skill import DEFAULT_SKILL_DIR
from server.bundle import MANIFEST, PROJECT_ROOT, synced_manifest
from server.cli import main
from server.skill import stale_references
from tools.toolkit import MEDIA_TOOL_TASKS

AGENTSKILLS = str(Path(sys.executable).with_name("agentskills"))
MCPB = "@anthropic-ai/mcpb@2.1.2"
needs_npx = pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed")


def test_the_manifest_lists_the_servers_tools_and_version() -> None:
    manifest = json.loads(MANIFEST.read_text())
    assert manifest == synced_manifest(manifest), "run `killa bundle --update-manifest`"
    assert [tool["name"] for tool in manifest["tools"]][: len(MEDIA_TOOL_TASKS)] == list(
        MEDIA_TOOL_TASKS
    )


def test_the_manifest_runs_killa_mcp_with_the_users_gateway_and_key() -> None:
    manifest = json.loads(MANIFEST.read_text())
    assert manifest["manifest_version"] == "0.4"
    assert manifest["server"]["type"] == "uv"
    config = manifest["server"]["mcp_config"]
    assert config["args"][-2:] == ["killa", "mcp"]
    assert config["env"] == {
        "KILLA_API_URL": "${user_config.api_url}",
        "KILLA_API_KEY": "${user_config.api_key}",
    }
    key = manifest["user_config"]["api_key"]
    assert key["sensitive"] is True
    # Hosts leave an unset variable as literal `${...}` text: an empty default means "no key".
    assert key["default"] == ""
    assert (PROJECT_ROOT / manifest["server"]["entry_point"]).is_file()


@pytest.mark.slow
@needs_npx
def test_mcpb_validates_the_manifest() -> None:
    ran = subprocess.run(
        ["npx", "-y", MCPB, "validate", str(MANIFEST)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "validation passes" in ran.stdout


def test_killa_bundle_packs_the_manifest_and_the_source_reproducibly(tmp_path: Path) -> None:
    runner = CliRunner()
    first, second = tmp_path / "a.mcpb", tmp_path / "b.mcpb"
    for output in (first, second):
        result = runner.invoke(main, ["bundle", "--output", str(output)])
        assert result.exit_code == 0, result.output
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as bundle:
        names = bundle.namelist()
        assert json.loads(bundle.read("manifest.json")) == json.loads(MANIFEST.read_text())
    for expected in (
        "pyproject.toml",
        "server/mcp_server.py",
        "tools/media.py",
        "backend/media/tasks.py",
        "skill/killa-tamata/SKILL.md",
        "skill/killa-tamata/references/video_combine.md",
    ):
        assert expected in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert not [name for name in names if name.startswith(("tests/", ".venv/"))]


@pytest.mark.slow
async def test_the_bundles_entry_point_serves_from_the_unpacked_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "killa.mcpb"
    # `killa bundle` runs its own event loop: keep it off this test's.
    result = await asyncio.to_thread(CliRunner().invoke, main, ["bundle", "--output", str(bundle)])
    assert result.exit_code == 0, result.output
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(unpacked)
    # Marks the bundle's copy of the skill, whose body the server sends as its instructions.
    skill_md = unpacked / "skill" / "killa-tamata" / "SKILL.md"
    skill_md.write_text(skill_md.read_text() + "\nFrom the bundle.\n")
    manifest = json.loads((unpacked / "manifest.json").read_text())
    parameters = StdioServerParameters(
        command=sys.executable,
        args=[manifest["server"]["entry_point"]],
        cwd=unpacked,
        env={"PYTHONPATH": str(unpacked), "XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    async with Client(parameters) as session:
        assert len((await session.list_tools()).tools) == len(manifest["tools"])
        assert session.instructions is not None
        assert session.instructions.endswith("From the bundle.")


def test_killa_bundle_refuses_a_stale_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = json.loads(MANIFEST.read_text())
    stale["tools"] = stale["tools"][1:]
    copy = tmp_path / "manifest.json"
    copy.write_text(json.dumps(stale))
    monkeypatch.setattr("server.bundle.MANIFEST", copy)
    result = CliRunner().invoke(main, ["bundle", "--output", str(tmp_path / "x.mcpb")])
    assert result.exit_code == 1
    assert "--update-manifest" in result.output
    assert not (tmp_path / "x.mcpb").exists()
    result = CliRunner().invoke(
        main, ["bundle", "--update-manifest", "--output", str(tmp_path / "x.mcpb")]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(copy.read_text()) == json.loads(MANIFEST.read_text())


# --- the skill -----------------------------------------------------------------------------------


def test_the_skill_references_are_generated_from_the_task_models() -> None:
    assert stale_references() == [], "run `killa skill references`"
    result = CliRunner().invoke(main, ["skill", "references", "--check"])
    assert result.exit_code == 0, result.output


def test_skill_md_points_every_media_tool_at_its_reference() -> None:
    text = (DEFAULT_SKILL_DIR / "SKILL.md").read_text()
    frontmatter = yaml.safe_load(text.split("---")[1])
    assert set(frontmatter) == {"name", "description", "license", "compatibility", "metadata"}
    assert frontmatter["metadata"]["compatibleApiVersion"] == API_VERSION
    for tool in MEDIA_TOOL_TASKS:
        assert f"`{tool}` | [references/{tool}.md](references/{tool}.md)" in text
    for tool in ("cost_quote", "job_wait", "packages_list"):
        assert f"`{tool}`" in text


@pytest.mark.slow
def test_agentskills_validates_the_skill() -> None:
    ran = subprocess.run(
        [AGENTSKILLS, "validate", str(DEFAULT_SKILL_DIR)], capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr


@pytest.mark.parametrize(
    ("target", "project", "folder"),
    [
        ("claude", False, "home/.claude/skills"),
        ("claude", True, "work/.claude/skills"),
        ("codex", False, "home/.agents/skills"),
        ("codex", True, "work/.agents/skills"),
    ],
)
def test_skill_install_copies_the_skill_where_the_agent_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, project: bool, folder: str
) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "work")
    installed = tmp_path / folder / "killa-tamata"
    installed.mkdir(parents=True)
    (installed / "old.md").write_text("from an older version")
    args = ["skill", "install", "--target", target, *(["--project"] if project else [])]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    copied = sorted(p.relative_to(installed) for p in installed.rglob("*") if p.is_file())
    shipped = sorted(
        p.relative_to(DEFAULT_SKILL_DIR) for p in DEFAULT_SKILL_DIR.rglob("*") if p.is_file()
    )
    assert copied == shipped, "an install replaces the older copy"
    assert [p.name for p in installed.parent.iterdir()] == ["killa-tamata"]


async def test_the_gateway_publishes_an_agent_skills_index(client: httpx.AsyncClient) -> None:
    index = (await client.get("/.well-known/agent-skills/index.json")).json()
    assert index["$schema"] == "https://schemas.agentskills.io/discovery/0.2.0/schema.json"
    (entry,) = index["skills"]
    assert (entry["name"], entry["type"]) == ("killa-tamata", "skill-md")
    skill_md = await client.get(entry["url"])
    assert skill_md.status_code == 200
    assert entry["digest"] == f"sha256:{hashlib.sha256(skill_md.content).hexdigest()}"
    reference = await client.get(entry["url"].replace("SKILL.md", "references/video_combine.md"))
    assert reference.status_code == 200

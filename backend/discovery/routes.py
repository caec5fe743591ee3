"""Health with the skill advertisement, the skill's files, and the API specs at stable URLs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from backend import API_VERSION, __version__
from backend.discovery.skill import ENTRYPOINT, Skill
from backend.http.context import app_context
from backend.http.errors import NotFound
from backend.http.responses import JSONResponse
from backend.settings import Settings

SERVICE_NAME = "killa-tamata"
AGENT_SKILLS_PATH = "/.well-known/agent-skills"
AGENT_SKILLS_SCHEMA = "https://schemas.agentskills.io/discovery/0.2.0/schema.json"
SPECS_DIR = Path(__file__).parent / "specs"
SPEC_FILES = {
    "killa-tamata-api-v0.7.0.openapi.json",
    "killa-tamata-extensions.openapi.json",
    "blab-api-v1.0.0.openapi.json",
}


def skill_base_path(skill: Skill) -> str:
    return f"/skills/{skill.name}"


def skill_urls(settings: Settings, skill: Skill) -> dict[str, str]:
    base = skill_base_path(skill)
    return {
        "manifestUrl": settings.absolute_url(f"{base}/manifest.json"),
        "metadataUrl": settings.absolute_url(f"{base}/metadata.json"),
        "rootUrl": settings.absolute_url(f"{base}/"),
        "entrypointUrl": settings.absolute_url(f"{base}/{ENTRYPOINT}"),
    }


def _skill(request: Request) -> Skill:
    skill: Skill = request.app.state.skill
    name = request.path_params.get("name", skill.name)
    if name != skill.name:
        raise NotFound(f"No skill named {name!r}; this server distributes {skill.name!r}.")
    return skill


async def health(request: Request) -> JSONResponse:
    settings = app_context(request).settings
    skill = _skill(request)
    return JSONResponse(
        {
            "status": "ok",
            "service": SERVICE_NAME,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "version": {
                "release": __version__,
                "api": API_VERSION,
                "skill": {
                    "name": skill.name,
                    "version": skill.version,
                    "compatibleApiVersion": skill.compatible_api_version,
                    "compatibilityPolicy": "exact",
                    "autoUpdate": True,
                    **skill_urls(settings, skill),
                },
            },
        }
    )


async def skill_manifest(request: Request) -> JSONResponse:
    settings = app_context(request).settings
    skill = _skill(request)
    base = skill_base_path(skill)
    return JSONResponse(
        {
            "name": skill.name,
            "version": skill.version,
            "compatibleApiVersion": skill.compatible_api_version,
            "entrypoint": ENTRYPOINT,
            "files": [
                {
                    "path": f.path,
                    "sha256": f.sha256,
                    "size": f.size,
                    "mediaType": f.media_type,
                    "url": settings.absolute_url(f"{base}/{f.path}"),
                }
                for f in skill.files
            ],
        }
    )


async def skill_metadata(request: Request) -> JSONResponse:
    skill = _skill(request)
    return JSONResponse(
        {
            "name": skill.name,
            "description": skill.description,
            "version": skill.version,
            "compatibleApiVersion": skill.compatible_api_version,
            "compatibilityPolicy": "exact",
            "frontmatter": skill.frontmatter,
            **skill_urls(app_context(request).settings, skill),
        }
    )


async def skill_file(request: Request) -> Response:
    skill = _skill(request)
    relative = request.path_params["path"]
    if relative in ("", "/"):
        return await skill_manifest(request)
    found = skill.file(relative)
    if found is None:
        raise NotFound(f"The skill has no file {relative!r}.")
    return FileResponse(
        skill.root / found.path,
        media_type=f"{found.media_type}; charset=utf-8"
        if found.media_type.startswith("text/")
        else found.media_type,
        headers={"ETag": f'"{found.sha256}"'},
    )


async def agent_skills_index(request: Request) -> JSONResponse:
    """Agent Skills Discovery (v0.2.0): the skill's SKILL.md with its digest; the files it links
    to (references/) are served next to it."""
    settings = app_context(request).settings
    skill = _skill(request)
    entrypoint = skill.file(ENTRYPOINT)
    assert entrypoint is not None  # Skill() refuses a folder without one
    return JSONResponse(
        {
            "$schema": AGENT_SKILLS_SCHEMA,
            "skills": [
                {
                    "name": skill.name,
                    "type": "skill-md",
                    "description": skill.description,
                    "url": settings.absolute_url(f"{AGENT_SKILLS_PATH}/{skill.name}/{ENTRYPOINT}"),
                    "digest": f"sha256:{entrypoint.sha256}",
                }
            ],
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


async def spec_file(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in SPEC_FILES:
        raise NotFound(f"No spec {name!r}. Available: {', '.join(sorted(SPEC_FILES))}.")
    return FileResponse(SPECS_DIR / name, media_type="application/json")


async def killa_openapi(request: Request) -> Response:
    return FileResponse(
        SPECS_DIR / "killa-tamata-api-v0.7.0.openapi.json", media_type="application/json"
    )


routes = [
    Route("/api/v1/health", health, methods=["GET"]),
    Route("/api/v1/openapi.json", killa_openapi, methods=["GET"]),
    Route("/specs/{name}", spec_file, methods=["GET"]),
    Route("/skills/{name}/manifest.json", skill_manifest, methods=["GET"]),
    Route("/skills/{name}/metadata.json", skill_metadata, methods=["GET"]),
    Route("/skills/{name}/{path:path}", skill_file, methods=["GET"]),
    Route(f"{AGENT_SKILLS_PATH}/index.json", agent_skills_index, methods=["GET"]),
    Route(f"{AGENT_SKILLS_PATH}/{{name}}/{{path:path}}", skill_file, methods=["GET"]),
]

"""Health matches the spec's HealthResponse exactly and every URL it advertises is served."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import jsonschema
import yaml

from backend import __version__
from tests.spec import spec_schema

SKILL_DIR = Path(__file__).resolve().parents[2] / "skill" / "killa-tamata"


async def test_health_matches_the_spec_schema_exactly(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    jsonschema.validate(
        body, spec_schema("HealthResponse"), format_checker=jsonschema.FormatChecker()
    )
    assert body["version"]["release"] == __version__
    assert body["version"]["api"] == "0.7.0"
    frontmatter = yaml.safe_load((SKILL_DIR / "SKILL.md").read_text().split("---")[1])
    skill = body["version"]["skill"]
    assert skill["version"] == frontmatter["metadata"]["version"]
    assert skill["compatibleApiVersion"] == body["version"]["api"]
    assert skill["compatibilityPolicy"] == "exact"


async def test_every_advertised_skill_url_is_served(client: httpx.AsyncClient) -> None:
    skill = (await client.get("/api/v1/health")).json()["version"]["skill"]
    for field in ("manifestUrl", "metadataUrl", "rootUrl", "entrypointUrl"):
        assert skill[field].startswith("https://gateway.test/")
        assert (await client.get(skill[field])).status_code == 200, field

    entrypoint = await client.get(skill["entrypointUrl"])
    assert entrypoint.headers["content-type"].startswith("text/markdown")
    assert entrypoint.content == (SKILL_DIR / "SKILL.md").read_bytes()

    manifest = (await client.get(skill["manifestUrl"])).json()
    assert manifest["name"] == skill["name"]
    assert manifest["version"] == skill["version"]
    on_disk = sorted(
        p.relative_to(SKILL_DIR).as_posix() for p in SKILL_DIR.rglob("*") if p.is_file()
    )
    assert sorted(f["path"] for f in manifest["files"]) == on_disk
    for entry in manifest["files"]:
        served = await client.get(entry["url"])
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == entry["sha256"]

    metadata = (await client.get(skill["metadataUrl"])).json()
    assert metadata["version"] == skill["version"]
    assert metadata["description"]


async def test_unknown_skill_files_and_names_are_404(client: httpx.AsyncClient) -> None:
    for path in (
        "/skills/killa-tamata/nope.md",
        "/skills/other/SKILL.md",
        "/skills/other/manifest.json",
    ):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"
    assert (await client.get("/skills/killa-tamata/../../pyproject.toml")).status_code == 404


async def test_specs_are_served_at_stable_urls(client: httpx.AsyncClient) -> None:
    killa = await client.get("/specs/killa-tamata-api-v0.7.0.openapi.json")
    assert killa.json()["info"]["version"] == "0.7.0"
    blab = await client.get("/specs/blab-api-v1.0.0.openapi.json")
    assert blab.json()["info"]["version"] == "1.0.0"
    assert (await client.get("/api/v1/openapi.json")).json() == killa.json()
    assert (await client.get("/specs/secrets.json")).status_code == 404


async def test_packages_come_from_the_catalog(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/packages")).json()
    codes = [p["code"] for p in body["packages"]]
    assert codes == ["starter", "creator", "studio"]
    for package in body["packages"]:
        assert package["creditMicros"] >= package["priceMicros"] > 0
        assert package["bonusMicros"] == package["creditMicros"] - package["priceMicros"]


async def test_the_extensions_addendum_is_valid_openapi_and_served(
    client: httpx.AsyncClient,
) -> None:
    from openapi_spec_validator import validate

    from backend.discovery.routes import SPECS_DIR

    addendum = (await client.get("/specs/killa-tamata-extensions.openapi.json")).json()
    # Its $refs point into the base spec beside it: resolve them from the shipped files.
    validate(addendum, base_uri=(SPECS_DIR / "killa-tamata-extensions.openapi.json").as_uri())
    assert "/api/v1/media/jobs/quote" in addendum["paths"]

"""Every tool through an in-process MCP session, in both protocol eras: schemas, annotations,
valid and invalid calls, progress, resource links that download the real file, and resources."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp_types import CallToolResult, ResourceLink
from starlette.applications import Starlette

from backend import __version__
from backend.media.tasks import TASK_INPUT_MODELS, TASK_MODELS
from server.mcp_server import build_server
from tests.conftest import Customer, make_customer
from tests.engines.media import write_clip, write_image
from tests.jobs.conftest import MediaHost
from tests.mcp.conftest import error_text, in_process_gateway, structured
from tools.toolkit import MEDIA_TOOL_TASKS

pytestmark = pytest.mark.usefixtures("media_host")

READ_ONLY = (True, False, True, False)
SUBMITS = (False, False, False, True)
# (readOnly, destructive, idempotent, openWorld) per tool.
ANNOTATIONS = {
    **dict.fromkeys(MEDIA_TOOL_TASKS, SUBMITS),
    **dict.fromkeys(
        ("cost_quote", "job_get", "job_wait", "jobs_list", "balance_get", "packages_list"),
        READ_ONLY,
    ),
    "job_cancel": (False, True, True, False),
}
START = 10_000_000  # the `customer` fixture's balance


def valid_arguments(tool: str, media: MediaHost) -> dict[str, Any]:
    square = media.folder / "square.png"
    if not square.exists():
        write_image(square)
    arguments: dict[str, dict[str, Any]] = {
        "image_generate": {"prompt": "a red fox in the snow"},
        "image_edit": {"prompt": "make it blue", "sourceImageUrl": media.url("square.png")},
        "video_generate": {"prompt": "waves", "durationFrames": 9, "width": 64, "height": 64},
        "video_combine": {"videoUrls": [media.url("red.mp4"), media.url("blue.mp4")]},
        "video_resize": {"sourceVideoUrl": media.url("tone.mp4"), "width": 48, "height": 32},
        "audio_speak": {"text": "Hello there. This is a test."},
        "audio_annotate_reference": {"sourceAudioUrl": media.url("tone.mp4")},
        "music_create": {"tags": "lofi, piano", "lyrics": "la la la", "durationSeconds": 15},
        "sound_effect_create": {"prompt": "a door slams", "durationSeconds": 1},
        "model3d_generate": {"sourceImageUrl": media.url("square.png")},
    }
    return arguments[tool]


# tool -> (arguments breaking one rule, the argument the error must name)
INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "image_generate": ({"prompt": "x", "width": 64}, "height"),
    "image_edit": ({"prompt": "x"}, "sourceImageUrl"),
    "video_generate": ({"prompt": "x", "durationFrames": 10}, "durationFrames"),
    "video_combine": ({"videoUrls": ["https://example.com/a.mp4"]}, "videoUrls"),
    "video_resize": (
        {"sourceVideoUrl": "https://example.com/a.mp4", "width": 33, "height": 32},
        "width",
    ),
    "audio_speak": ({"text": ""}, "text"),
    "audio_annotate_reference": ({"transcript": "hello"}, "sourceAudioUrl"),
    "music_create": ({"tags": "x", "lyrics": "y", "bpm": 10}, "bpm"),
    "sound_effect_create": ({"prompt": "x", "durationSeconds": 99}, "durationSeconds"),
    "model3d_generate": ({"sourceImageUrl": "not a url"}, "sourceImageUrl"),
}


async def balance(client: httpx.AsyncClient, customer: Customer) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/api/v1/balance", headers=customer.headers)).json()
    return body


async def assert_links_download(client: httpx.AsyncClient, result: CallToolResult) -> None:
    job = structured(result)
    links = [block for block in result.content if isinstance(block, ResourceLink)]
    assert [str(link.uri) for link in links] == [item["url"] for item in job["outputs"]]
    assert links, "a finished job sends its files as resource links"
    for link, item in zip(links, job["outputs"], strict=True):
        assert link.name == item["name"]
        assert link.mime_type == item["mimeType"]
        assert link.size == item["sizeBytes"]
        download = await client.get(str(link.uri))
        assert download.status_code == 200
        assert len(download.content) == link.size
        assert download.headers["content-type"] == link.mime_type
    # The files travel as links, never as inline data.
    assert all(block.type in ("text", "resource_link") for block in result.content)


# --- listing ------------------------------------------------------------------------------------


async def test_lists_every_tool_with_annotations_and_output_schemas(mcp: Client) -> None:
    tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    assert set(tools) == set(ANNOTATIONS)
    for name, tool in tools.items():
        hints = tool.annotations
        assert hints is not None
        assert (
            hints.read_only_hint,
            hints.destructive_hint,
            hints.idempotent_hint,
            hints.open_world_hint,
        ) == ANNOTATIONS[name], name
        assert tool.output_schema is not None, name
        assert tool.output_schema["type"] == "object", name
        assert tool.title, name
        assert tool.description, name
        assert len(tool.description) < 400, f"{name}: keep descriptions short"
    for name in MEDIA_TOOL_TASKS:
        assert "cost_quote" in (tools[name].description or ""), "costly tools point at the price"


async def test_media_tool_schemas_are_their_task_models_schemas(mcp: Client) -> None:
    tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    for name, task in MEDIA_TOOL_TASKS.items():
        published = tools[name].input_schema
        model = TASK_INPUT_MODELS[task].model_json_schema(by_alias=True)
        envelope = TASK_MODELS[task].model_json_schema(by_alias=True)["properties"]
        for field, spec in model["properties"].items():
            assert published["properties"][field] == spec, (name, field)
        assert published["properties"]["idempotencyKey"] == envelope["idempotencyKey"]
        assert published.get("$defs", {}) == model.get("$defs", {})
        assert published.get("required") == model.get("required")
        assert {"wait", "timeoutSeconds"} <= published["properties"].keys()


async def test_the_server_names_itself_after_the_package_and_the_skill(mcp: Client) -> None:
    assert mcp.server_info is not None
    assert mcp.server_info.name == "killa-tamata"
    assert mcp.server_info.version == __version__
    assert mcp.instructions is not None
    assert "cost_quote" in mcp.instructions
    assert "job_wait" in mcp.instructions
    assert not mcp.instructions.startswith("---"), "frontmatter stays out of the instructions"


# --- media tools ---------------------------------------------------------------------------------


async def test_video_combine_waits_with_progress_and_its_link_downloads_the_file(
    mcp: Client, client: httpx.AsyncClient, customer: Customer, media_host: MediaHost
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    arguments = {**valid_arguments("video_combine", media_host), "frameRate": 24, "wait": True}
    result = await mcp.call_tool("video_combine", arguments, progress_callback=on_progress)
    job = structured(result)
    assert job["status"] == "succeeded", job
    assert (job["task"], job["tool"]) == ("video.combine", "video_combine")
    assert job["outputs"][0]["mimeType"] == "video/mp4"
    assert job["usdChargedMicros"] > 0
    assert job["usdAvailableMicros"] == START - job["usdChargedMicros"]
    assert job["usdAvailableMicros"] == (await balance(client, customer))["usdAvailableMicros"]
    await assert_links_download(client, result)
    # Notifications arrived, grew, and ended at 100 of 100.
    assert seen, "no progress notifications"
    assert [p for p, _, _ in seen] == sorted({p for p, _, _ in seen})
    assert seen[-1][:2] == (100, 100)
    # The text block is the structured result, for clients that only read text.
    assert json.loads(result.content[0].text) == job  # type: ignore[union-attr]


async def test_a_submit_returns_at_once_then_job_wait_and_job_get_see_it_through(
    mcp: Client, client: httpx.AsyncClient, media_host: MediaHost
) -> None:
    arguments = valid_arguments("video_resize", media_host)
    submitted = structured(await mcp.call_tool("video_resize", arguments))
    assert submitted["status"] in ("queued", "running")
    assert submitted["outputs"] == []
    assert "job_wait" in submitted["next"]
    assert submitted["inputAdjustments"], "the gateway reports what it filled in"

    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    waited = await mcp.call_tool(
        "job_wait", {"jobId": submitted["jobId"]}, progress_callback=on_progress
    )
    assert structured(waited)["status"] == "succeeded"
    assert seen[-1] == 100
    await assert_links_download(client, waited)

    got = await mcp.call_tool("job_get", {"jobId": submitted["jobId"]})
    await assert_links_download(client, got)

    def unsigned(result: CallToolResult) -> list[dict[str, object]]:
        # Each read signs its own download URLs (the expiry is counted from that moment).
        return [
            {**item, "url": item["url"].split("?")[0]} for item in structured(result)["outputs"]
        ]

    assert unsigned(got) == unsigned(waited)
    resource = await mcp.read_resource(f"killa://jobs/{submitted['jobId']}")
    (contents,) = resource.contents
    assert contents.mime_type == "application/json"
    assert json.loads(contents.text)["status"] == "succeeded"  # type: ignore[union-attr]


@pytest.mark.parametrize("tool", MEDIA_TOOL_TASKS)
async def test_every_media_tool_runs_or_says_its_model_is_missing(
    mcp: Client,
    client: httpx.AsyncClient,
    customer: Customer,
    media_host: MediaHost,
    tool: str,
) -> None:
    capabilities = (await client.get("/api/v1/capabilities")).json()["tasks"]
    available = {row["task"]: row["available"] for row in capabilities}
    arguments = {**valid_arguments(tool, media_host), "wait": True}
    result = await mcp.call_tool(tool, arguments)
    if not available[MEDIA_TOOL_TASKS[tool]]:
        message = error_text(result)
        assert "MODEL_UNAVAILABLE" in message
        assert "Do not retry" in message
        assert (await balance(client, customer))["usdAvailableMicros"] == START
        return
    job = structured(result)
    assert job["status"] in ("succeeded", "failed"), job
    if job["status"] == "succeeded":
        await assert_links_download(client, result)
    else:
        # A failed job is reported as such, with its error and nothing charged.
        assert job["error"]
        assert job["usdChargedMicros"] == 0


@pytest.mark.parametrize("tool", MEDIA_TOOL_TASKS)
async def test_every_media_tool_names_the_argument_it_refuses(mcp: Client, tool: str) -> None:
    arguments, field = INVALID[tool]
    message = error_text(await mcp.call_tool(tool, arguments))
    assert f"Invalid arguments: {field}:" in message, message
    assert "input." not in message, "fields are named as the tool takes them"
    unknown = error_text(await mcp.call_tool(tool, {**arguments, "bogusField": 1}))
    assert "bogusField" in unknown


async def test_tool_options_are_checked_before_anything_is_sent(mcp: Client) -> None:
    message = error_text(
        await mcp.call_tool("video_combine", {"videoUrls": [], "timeoutSeconds": 0})
    )
    assert "timeoutSeconds" in message


async def test_an_idempotency_key_makes_a_retry_return_the_first_job(
    mcp: Client, client: httpx.AsyncClient, customer: Customer, media_host: MediaHost
) -> None:
    arguments = {**valid_arguments("video_combine", media_host), "idempotencyKey": "retry-1"}
    first = structured(await mcp.call_tool("video_combine", arguments))
    again = structured(await mcp.call_tool("video_combine", arguments))
    assert again["jobId"] == first["jobId"]
    assert (await balance(client, customer))["usdAvailableMicros"] == START - first[
        "usdChargedMicros"
    ]


async def test_a_short_balance_says_the_price_and_how_to_top_up(
    client: httpx.AsyncClient, app: Starlette, db: Any, media_host: MediaHost, era: str
) -> None:
    poor = await make_customer(db, usd_micros=1_000)
    async with Client(build_server(in_process_gateway(app, poor.api_key)), mode=era) as session:
        arguments = valid_arguments("video_combine", media_host)
        quote = structured(
            await session.call_tool("cost_quote", {"tool": "video_combine", "arguments": arguments})
        )
        assert quote["affordable"] is False
        assert "packages_list" in quote["next"]
        message = error_text(await session.call_tool("video_combine", arguments))
        # The quote assumes clip lengths; the submit measures them, so the price may differ.
        assert re.search(r"this costs \$0\.\d+ but only \$0\.001 is available", message)
        assert "Nothing was charged" in message
        assert "packages_list" in message
        assert "/api/v1/packages" in message
        assert structured(await session.call_tool("jobs_list", {}))["jobs"] == []


# --- job tools ----------------------------------------------------------------------------------


async def test_cost_quote_prices_without_charging(
    mcp: Client, client: httpx.AsyncClient, customer: Customer, media_host: MediaHost
) -> None:
    arguments = {**valid_arguments("video_resize", media_host), "wait": True}
    quote = structured(
        await mcp.call_tool("cost_quote", {"tool": "video_resize", "arguments": arguments})
    )
    rest = (
        await client.post(
            "/api/v1/media/jobs/quote",
            json={"task": "video.resize", "input": valid_arguments("video_resize", media_host)},
            headers=customer.headers,
        )
    ).json()
    assert quote["usdPriceMicros"] == rest["usdPriceMicros"] > 0
    assert quote["affordable"] is True
    assert quote["usdAvailableMicros"] == START
    assert quote["inputAdjustments"] == rest["inputAdjustments"]
    assert (await balance(client, customer))["usdHeldMicros"] == 0

    bad = await mcp.call_tool("cost_quote", {"tool": "video_resize", "arguments": {"width": 3}})
    assert "Invalid arguments" in error_text(bad)
    options = {"tool": "video_resize", "arguments": {**arguments, "timeoutSeconds": 0}}
    assert "timeoutSeconds" in error_text(await mcp.call_tool("cost_quote", options))
    unknown = await mcp.call_tool("cost_quote", {"tool": "nope", "arguments": {}})
    assert "tool" in error_text(unknown)


async def test_job_cancel_releases_the_hold(
    mcp: Client, client: httpx.AsyncClient, customer: Customer, media_host: MediaHost
) -> None:
    long_clip = media_host.folder / "long.mp4"
    if not long_clip.exists():
        write_clip(long_clip, frames=720, fps=24, width=320, height=240)
    arguments = {"videoUrls": [media_host.url("long.mp4")] * 3}
    job = structured(await mcp.call_tool("video_combine", arguments))
    canceled = structured(await mcp.call_tool("job_cancel", {"jobId": job["jobId"]}))
    assert canceled["jobId"] == job["jobId"]
    final = structured(await mcp.call_tool("job_wait", {"jobId": job["jobId"]}))
    assert final["status"] == "canceled", final
    assert final["usdChargedMicros"] == 0
    assert (await balance(client, customer))["usdAvailableMicros"] == START
    again = error_text(await mcp.call_tool("job_cancel", {"jobId": job["jobId"]}))
    assert "JOB_ALREADY_FINISHED" in again


async def test_unknown_jobs_and_bad_job_arguments_are_tool_errors(mcp: Client) -> None:
    missing = error_text(await mcp.call_tool("job_get", {"jobId": "job_nope"}))
    assert "job_nope" in missing
    assert "jobs_list" in missing
    assert "jobId" in error_text(await mcp.call_tool("job_wait", {}))
    assert "timeoutSeconds" in error_text(
        await mcp.call_tool("job_wait", {"jobId": "job_x", "timeoutSeconds": 601})
    )
    with pytest.raises(Exception, match="job_nope"):
        await mcp.read_resource("killa://jobs/job_nope")


async def test_jobs_list_pages_and_filters(mcp: Client, media_host: MediaHost) -> None:
    arguments = valid_arguments("video_combine", media_host)
    for _ in range(3):
        structured(await mcp.call_tool("video_combine", arguments))
    first = structured(await mcp.call_tool("jobs_list", {"limit": 2}))
    assert len(first["jobs"]) == 2
    assert first["hasMore"]
    rest = structured(await mcp.call_tool("jobs_list", {"cursor": first["nextCursor"]}))
    assert len(rest["jobs"]) == 1
    assert not rest["hasMore"]
    assert {job["tool"] for job in first["jobs"] + rest["jobs"]} == {"video_combine"}
    assert structured(await mcp.call_tool("jobs_list", {"tool": "image_generate"}))["jobs"] == []
    assert "limit" in error_text(await mcp.call_tool("jobs_list", {"limit": 0}))


# --- account tools and resources ------------------------------------------------------------------


async def test_balance_and_packages(
    mcp: Client, client: httpx.AsyncClient, customer: Customer
) -> None:
    got = structured(await mcp.call_tool("balance_get", {}))
    rest = await balance(client, customer)
    assert got["usdAvailableMicros"] == rest["usdAvailableMicros"] == START
    assert got["usdAvailable"] == "$10.00"
    resource = await mcp.read_resource("killa://balance")
    assert json.loads(resource.contents[0].text) == got  # type: ignore[union-attr]

    packages = structured(await mcp.call_tool("packages_list", {}))
    catalog = (await client.get("/api/v1/packages")).json()["packages"]
    assert [p["code"] for p in packages["packages"]] == [p["code"] for p in catalog]
    assert packages["packages"][0]["price"] == "$5.00"
    assert packages["catalogUrl"] == "https://gateway.test/api/v1/packages"
    assert "bogus" in error_text(await mcp.call_tool("balance_get", {"bogus": 1}))


async def test_resources_are_listed(mcp: Client) -> None:
    resources = (await mcp.list_resources()).resources
    assert [str(r.uri) for r in resources] == ["killa://balance"]
    templates = (await mcp.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["killa://jobs/{jobId}"]


async def test_without_a_key_every_call_says_how_to_sign_in(
    client: httpx.AsyncClient, app: Starlette, era: str
) -> None:
    async with Client(build_server(in_process_gateway(app, None)), mode=era) as session:
        message = error_text(await session.call_tool("balance_get", {}))
        assert "No Killa Tamata API key" in message
        assert "killa login" in message
        with pytest.raises(Exception, match="killa login"):
            await session.read_resource("killa://balance")


async def test_a_revoked_key_says_how_to_sign_in(
    client: httpx.AsyncClient, app: Starlette, era: str
) -> None:
    async with Client(build_server(in_process_gateway(app, "kt_live_nope")), mode=era) as session:
        message = error_text(await session.call_tool("balance_get", {}))
        assert "API_KEY_INVALID" in message
        assert "killa login" in message

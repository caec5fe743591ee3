"""Every one of the ten tasks, submitted through POST /api/v1/media/jobs, runs on CPU to a real
output that decodes (tiny random-weight pipelines loaded through the production registry), and
money settles: captured on success, exactly the measured amount for exact-bill Gemini speech."""

from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
import trimesh
from PIL import Image
from pydantic import SecretStr
from starlette.applications import Starlette

from backend.app import create_app
from backend.db.engine import Database
from backend.settings import Settings
from tests.conftest import Customer
from tests.engines.audio_fixtures import GEMINI_KEY, FakeGemini, fake_gemini_fixture  # noqa: F401
from tests.engines.tiny_audio_models import (
    build_ace_step_pipeline,
    build_pocket_tts_model,
    build_stable_audio_pipeline,
)
from tests.engines.tiny_models import build_model_dir
from tests.jobs.conftest import balance, wait_for_job


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("all-models")
    build_model_dir(folder)
    build_stable_audio_pipeline(folder)
    build_ace_step_pipeline(folder)
    build_pocket_tts_model(folder)
    return folder


@pytest.fixture
async def full(
    settings: Settings, db: Database, model_dir: Path, fake_gemini: FakeGemini
) -> AsyncIterator[httpx.AsyncClient]:
    app: Starlette = create_app(
        settings.model_copy(
            update={
                "model_dir": model_dir,
                "device": "cpu",
                "gemini_api_key": SecretStr(GEMINI_KEY),
                "gemini_base_url": fake_gemini.base_url,
            }
        ),
        database=db,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://gateway.test"
        ) as client,
    ):
        yield client


def png_b64(size: tuple[int, int] = (64, 64)) -> str:
    buffer = io.BytesIO()
    gradient = (
        np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3).astype(np.uint8)
    )
    Image.fromarray(gradient).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def wav_b64(seconds: float = 2.0, rate: int = 24_000) -> str:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return base64.b64encode(buffer.getvalue()).decode()


def audio_facts(data: bytes) -> tuple[float, int, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.sample_rate, stream.sample_rate, stream.channels


CASES: dict[str, dict[str, Any]] = {
    "image.generate": {"prompt": "a red fox", "width": 64, "height": 64, "outputFormat": "png"},
    "image.edit": {
        "prompt": "make it blue",
        "sourceImage": {"dataBase64": png_b64(), "mimeType": "image/png"},
    },
    "video.generate": {
        "prompt": "waves",
        "width": 64,
        "height": 64,
        "durationFrames": 9,
        "interpolationFps": 0,
    },
    "audio.speak": {"text": "Hello there. This is a short test of speech."},
    "audio.annotation.reference": {
        "sourceAudio": {"dataBase64": wav_b64(), "mimeType": "audio/wav"}
    },
    "ace.step.create": {"tags": "lofi, piano", "lyrics": "[instrumental]", "durationSeconds": 15},
    "moss.sound.effect": {"prompt": "a door creaks", "durationSeconds": 2},
    "trellis.generate": {"sourceImage": {"dataBase64": png_b64(), "mimeType": "image/png"}},
}


async def run_task(
    client: httpx.AsyncClient, customer: Customer, task: str, input_: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    submitted = await client.post(
        "/api/v1/media/jobs", headers=customer.headers, json={"task": task, "input": input_}
    )
    assert submitted.status_code == 201, submitted.text
    done = await wait_for_job(client, customer, submitted.json()["externalJobId"], within=180)
    assert done["status"] == "succeeded", done
    download = await client.get(done["downloadableOutputUrls"][0])
    assert download.status_code == 200
    return submitted.json(), done, download.content


@pytest.mark.slow
@pytest.mark.parametrize("task", list(CASES))
async def test_every_model_task_runs_to_a_decodable_output(
    full: httpx.AsyncClient, customer: Customer, task: str
) -> None:
    submitted, done, data = await run_task(full, customer, task, CASES[task])
    if task == "image.generate":
        image = Image.open(io.BytesIO(data))
        assert (image.format, image.size) == ("PNG", (64, 64))
    elif task == "image.edit":
        assert Image.open(io.BytesIO(data)).size == (64, 64)
    elif task == "video.generate":
        with av.open(io.BytesIO(data)) as container:
            frames = sum(1 for _ in container.decode(container.streams.video[0]))
        assert frames == 9
    elif task == "audio.speak":
        seconds, rate, _ = audio_facts(data)
        assert rate == 48_000
        assert 1.0 < seconds < 10.0
        providers = [a for a in done["inputAdjustments"] if a["field"] == "provider"]
        assert providers[-1]["effective"] == "piper"
    elif task == "audio.annotation.reference":
        annotation = json.loads(data)
        assert annotation["duration"] == pytest.approx(2.0, abs=0.05)
        assert done["result"]["duration"] == annotation["duration"]
    elif task in ("ace.step.create", "moss.sound.effect"):
        seconds, _, channels = audio_facts(data)
        assert seconds == pytest.approx(CASES[task]["durationSeconds"], abs=0.05)
        assert channels == 2
    elif task == "trellis.generate":
        mesh = trimesh.load(io.BytesIO(data), file_type="glb", force="mesh")
        assert len(mesh.vertices) > 0
        assert len(mesh.faces) > 0
    assert done["billing"]["usdChargedMicros"] == submitted["usdChargedMicros"]
    assert (await balance(full, customer))["usdHeldMicros"] == 0


@pytest.mark.slow
async def test_voice_clone_falls_back_to_pocket_tts_and_says_so(
    full: httpx.AsyncClient, customer: Customer
) -> None:
    _, done, data = await run_task(
        full,
        customer,
        "audio.speak",
        {
            "text": "Cloned voices speak too.",
            "mode": "voice_clone",
            "referenceAudio": {"dataBase64": wav_b64(3.0), "mimeType": "audio/wav"},
            "referenceTranscript": "a steady tone",
        },
    )
    assert audio_facts(data)[1] == 48_000
    provider = [a for a in done["inputAdjustments"] if a["field"] == "provider"][-1]
    assert provider["effective"] == "pocket-tts"


@pytest.mark.slow
async def test_gemini_speech_captures_the_measured_amount_not_the_hold(
    full: httpx.AsyncClient, customer: Customer, fake_gemini: FakeGemini
) -> None:
    before = await balance(full, customer)
    submitted, done, data = await run_task(
        full, customer, "audio.speak", {"text": "Exact bills for exact work.", "provider": "gemini"}
    )
    assert submitted["pricingMeta"]["exactBill"] is True
    charged = done["billing"]["usdChargedMicros"]
    assert 0 < charged <= submitted["usdChargedMicros"]
    after = await balance(full, customer)
    assert before["usdBalanceMicros"] - after["usdBalanceMicros"] == charged
    assert after["usdHeldMicros"] == 0
    assert fake_gemini.requests[-1]["headers"]["x-goog-api-key"] == GEMINI_KEY
    assert data[:4] == b"RIFF"


async def test_gemini_is_refused_at_submit_when_not_configured(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    response = await client.post(
        "/api/v1/media/jobs",
        headers=customer.headers,
        json={"task": "audio.speak", "input": {"text": "hi", "provider": "gemini"}},
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "MODEL_UNAVAILABLE"
    assert (await balance(client, customer))["usdAvailableMicros"] == 10_000_000

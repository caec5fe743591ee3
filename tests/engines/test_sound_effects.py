"""moss.sound.effect on a tiny random-weight Stable Audio pipeline, loaded from its folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.engines.base import EngineError, JobCanceled
from backend.engines.sound_effects import StableAudioSoundEffectsEngine
from backend.media.tasks import MossSoundEffectInput
from tests.engines.audio_fixtures import (  # noqa: F401 - the *_fixture functions are fixtures
    RecordingProgress,
    decode,
    one_torch_thread_fixture,
    stable_audio_folder_fixture,
)

pytestmark = [
    # Third-party deprecations inside diffusers' Oobleck VAE and torchsde's Brownian interval.
    pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:Should have t[ab]:UserWarning"),
]
STEPS = 4


@pytest.fixture(scope="module")
def engine(stable_audio_folder: Path, one_torch_thread: None) -> StableAudioSoundEffectsEngine:
    return StableAudioSoundEffectsEngine(stable_audio_folder, steps=STEPS)


def test_generates_opus_of_the_requested_length(
    engine: StableAudioSoundEffectsEngine, tmp_path: Path
) -> None:
    task = MossSoundEffectInput.model_validate(
        {
            "prompt": "rain falling on a tin roof",
            "durationSeconds": 2,
            "quality": "96k",
            "temperature": 0.7,
            "topK": 50,
        }
    )
    progress = RecordingProgress()

    result = engine.run(task, tmp_path, progress)

    [output] = result.files
    assert output.path == tmp_path / "outputs" / "sound-effect.ogg"
    assert output.mime_type == "audio/ogg"
    audio = decode(output.path)
    assert (audio.codec, audio.rate, audio.channels) == ("opus", 48_000, 2)
    assert audio.seconds == pytest.approx(2.0, abs=0.01)
    assert np.abs(audio.samples).max() > 0
    assert output.properties["quality"] == "96k"
    assert result.result["steps"] == STEPS
    assert 1 <= result.result["seed"] < 2**31
    # The MOSS sampling knobs do not exist in a diffusion model: reported, not dropped.
    assert [(a.field, a.requested, a.effective) for a in result.adjustments] == [
        ("temperature", 0.7, None),
        ("topK", 50, None),
    ]
    # One report per denoising step, in order, then encoding and done.
    assert [m for _, m in progress.reports].count("generating") == STEPS + 1
    assert progress.percents == sorted(progress.percents)
    assert progress.percents[-1] == 100


def test_longer_than_the_model_window_is_refused(
    engine: StableAudioSoundEffectsEngine, tmp_path: Path
) -> None:
    task = MossSoundEffectInput(prompt="thunder", duration_seconds=5)

    with pytest.raises(EngineError, match=r"longer than this model's window of 2\.97 s"):
        engine.run(task, tmp_path, RecordingProgress())


def test_cancel_raises_from_the_step_callback(
    engine: StableAudioSoundEffectsEngine, tmp_path: Path
) -> None:
    progress = RecordingProgress(cancel_at=3)

    with pytest.raises(JobCanceled):
        engine.run(
            MossSoundEffectInput(prompt="a dog barking", duration_seconds=1), tmp_path, progress
        )
    # Stopped inside the denoising loop, before any decoding or encoding.
    assert [m for _, m in progress.reports] == ["generating"] * 3
    assert not (tmp_path / "outputs" / "sound-effect.ogg").exists()

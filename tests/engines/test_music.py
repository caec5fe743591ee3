"""ace.step.create on a tiny random-weight ACE-Step 1.5 pipeline, loaded from its folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.engines.base import JobCanceled
from backend.engines.music import AceStepMusicEngine
from backend.media.tasks import AceStepCreateInput
from tests.engines.audio_fixtures import (  # noqa: F401 - the *_fixture functions are fixtures
    RecordingProgress,
    ace_step_folder_fixture,
    ace_step_turbo_folder_fixture,
    decode,
    one_torch_thread_fixture,
)

pytestmark = pytest.mark.filterwarnings(
    # A third-party deprecation inside diffusers' Oobleck VAE.
    "ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning"
)
SONG = {"tags": "upbeat pop, piano, warm female voice", "lyrics": "[verse]\nHello world, we sing"}


@pytest.fixture(scope="module")
def engine(ace_step_folder: Path, one_torch_thread: None) -> AceStepMusicEngine:
    return AceStepMusicEngine(ace_step_folder)


def test_every_spec_field_is_mapped_or_reported(engine: AceStepMusicEngine, tmp_path: Path) -> None:
    task = AceStepCreateInput.model_validate(
        SONG
        | {
            "durationSeconds": 15,
            "bpm": 96,
            "keyScale": "E minor",
            "timeSignature": "3",
            "language": "en",
            "steps": 4,
            "seed": 7,
            "samplerCfg": 5.0,
            "quality": "96k",
            "temperature": 0.9,
            "topP": 0.8,
        }
    )
    progress = RecordingProgress()

    result = engine.run(task, tmp_path, progress)

    [output] = result.files
    assert output.path == tmp_path / "outputs" / "music.ogg"
    audio = decode(output.path)
    assert (audio.codec, audio.rate, audio.channels) == ("opus", 48_000, 2)
    assert audio.seconds == pytest.approx(15.0, abs=0.01)
    assert np.abs(audio.samples).max() > 0
    assert output.properties["quality"] == "96k"
    assert result.result | {"durationSeconds": None} == {
        "durationSeconds": None,
        "seed": 7,
        "steps": 4,
        "guidanceScale": 5.0,
        "qualityPreset": "default",
        "quality": "96k",
        "turbo": False,
        "model": "ace-step-1.5",
    }
    # The 5 Hz language-model planner's knobs: not in the diffusers pipeline, so reported.
    assert [(a.field, a.requested, a.effective) for a in result.adjustments] == [
        ("temperature", 0.9, None),
        ("topP", 0.8, None),
    ]
    assert [m for _, m in progress.reports].count("generating") == 4 + 1
    assert progress.percents == sorted(progress.percents)
    assert progress.percents[-1] == 100


def test_high_quality_preset_defaults_and_explicit_override(
    engine: AceStepMusicEngine, tmp_path: Path
) -> None:
    # samplerCfg 1 turns guidance off, which keeps 32 steps quick on a CPU.
    task = AceStepCreateInput.model_validate(
        SONG | {"qualityPreset": "high_quality", "durationSeconds": 15, "samplerCfg": 1.0}
    )

    result = engine.run(task, tmp_path, RecordingProgress())

    # 192k and 32 steps from the preset; the explicit 15 s and guidance beat its defaults.
    assert result.result["quality"] == "192k"
    assert result.result["steps"] == 32
    assert result.result["guidanceScale"] == 1.0
    assert decode(result.files[0].path).seconds == pytest.approx(15.0, abs=0.01)


def test_turbo_checkpoint_reports_its_fixed_guidance_and_the_seed_decides(
    ace_step_turbo_folder: Path, one_torch_thread: None, tmp_path: Path
) -> None:
    engine = AceStepMusicEngine(ace_step_turbo_folder)
    task = AceStepCreateInput.model_validate(
        SONG | {"durationSeconds": 15, "samplerCfg": 6.0, "seed": 42}
    )

    result = engine.run(task, tmp_path / "a", RecordingProgress())

    assert result.result["turbo"] is True
    assert result.result["steps"] == 8
    assert [(a.field, a.requested, a.effective) for a in result.adjustments] == [
        ("samplerCfg", 6.0, 1.0)
    ]
    again = engine.run(task, tmp_path / "b", RecordingProgress())
    first, second = decode(result.files[0].path), decode(again.files[0].path)
    assert np.array_equal(first.samples, second.samples)


def test_cancel_raises_from_the_step_callback(engine: AceStepMusicEngine, tmp_path: Path) -> None:
    task = AceStepCreateInput.model_validate(SONG | {"durationSeconds": 15, "steps": 8})
    progress = RecordingProgress(cancel_at=3)

    with pytest.raises(JobCanceled):
        engine.run(task, tmp_path, progress)
    assert [m for _, m in progress.reports] == ["generating"] * 3
    assert not (tmp_path / "outputs" / "music.ogg").exists()

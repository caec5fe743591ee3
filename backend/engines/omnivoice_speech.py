"""audio.speak on OmniVoice (k2-fsa): voice design from tags and zero-shot cloning, on a GPU worker.

OmniVoice imports torchaudio at top level, and no torchaudio build works with the CPU torch of the
default install (FACTS.md), so this engine only runs in a GPU worker environment that carries its
own torch/torchaudio pair plus `pip install omnivoice`. The package is imported lazily, in
`__init__`, never at module import. Untested in CI for that reason; the calls follow OmniVoice's
documented API (`OmniVoice.from_pretrained(folder, device_map=, dtype=)`, `generate(text=,
language=, instruct=, ref_audio=(waveform, rate), ref_text=)` -> list of 24 kHz arrays).

Folder (``<model_dir>/speech/omnivoice/``) is a local copy of the k2-fsa/OmniVoice checkpoint
(config.json, weights, tokenizer files) **including** its ``audio_tokenizer/`` sub-folder: without
it OmniVoice would fetch one from the hub. Voice cloning always passes the reference transcript,
since without one OmniVoice would load a Whisper model from the hub to transcribe the clip.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from backend.engines.audio_io import load_audio, speak_reference_path, speech_result
from backend.engines.audio_layout import omnivoice_problem
from backend.engines.base import EngineError, EngineResult, ModelUnavailable, Progress
from backend.engines.torch_runtime import seeded
from backend.media.tasks import AudioSpeakInput

OMNIVOICE_RATE = 24_000


class OmniVoiceSpeechEngine:
    provider = "omnivoice"

    def __init__(
        self,
        folder: Path,
        *,
        device: Literal["cpu", "cuda"] = "cuda",
        dtype: torch.dtype = torch.float16,
    ) -> None:
        """`folder` is ``<model_dir>/speech/omnivoice``."""
        if problem := omnivoice_problem(folder):
            raise ModelUnavailable(problem)
        from omnivoice import OmniVoice

        self._device = torch.device(device)
        self._model: Any = OmniVoice.from_pretrained(str(folder), device_map=device, dtype=dtype)
        self._rate = int(self._model.sampling_rate or OMNIVOICE_RATE)

    def run(self, task: AudioSpeakInput, work_dir: Path, progress: Progress) -> EngineResult:
        kwargs: dict[str, Any] = {"text": task.text, "language": "English"}
        if task.voice_description is not None:
            kwargs["instruct"] = task.voice_description
        if task.mode == "voice_clone":
            if task.reference_transcript is None:
                # Without it OmniVoice would fetch a Whisper model from the hub to transcribe.
                raise EngineError("OmniVoice voice_clone needs referenceTranscript on this gateway")
            reference = load_audio(
                speak_reference_path(task, work_dir), rate=self._rate, channels=1
            )
            kwargs["ref_audio"] = (torch.from_numpy(reference), self._rate)
            kwargs["ref_text"] = task.reference_transcript
        seed = task.seed or secrets.randbelow(2**31 - 1) + 1

        # OmniVoice's generate() has no step callback: progress (and cancel) around the stages.
        progress.report(5, "synthesizing")
        with seeded(seed, self._device):
            audio = np.asarray(self._model.generate(**kwargs)[0], dtype=np.float32)
        return speech_result(
            audio,
            self._rate,
            work_dir,
            progress,
            text=task.text,
            quality=task.quality,
            result={"provider": self.provider, "mode": task.mode, "seed": seed},
        )

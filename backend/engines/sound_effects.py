"""moss.sound.effect: text-to-sound with diffusers' StableAudioPipeline (Stable Audio Open).

The task's API was designed around MOSS, an autoregressive model: its sampling knobs (temperature,
topP, topK, repetitionPenalty, maxNewTokens) have no counterpart in a diffusion model, so each one
that is set comes back as an input adjustment. What the spec and the model share is mapped:
prompt -> prompt, durationSeconds -> audio_end_in_s, quality -> the Opus bitrate. Steps, guidance
and the negative prompt are worker settings (constructor); the seed is drawn per job and returned.

Folder (``<model_dir>/sound-effects/``) holds a ``save_pretrained`` StableAudioPipeline
(model_index.json, transformer/, vae/, text_encoder/, tokenizer/, projection_model/, scheduler/).
Its scheduler, CosineDPMSolverMultistepScheduler, needs the `torchsde` package.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import StableAudioPipeline

from backend.engines.audio_io import ignored_field, opus_output
from backend.engines.base import EngineError, EngineResult, InputAdjustment, Progress, outputs_dir
from backend.media.tasks import MossSoundEffectInput

# MOSS sampling fields of the spec, by attribute name and JSON name.
_MOSS_ONLY = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "repetition_penalty": "repetitionPenalty",
    "max_new_tokens": "maxNewTokens",
}


class StableAudioSoundEffectsEngine:
    def __init__(
        self,
        folder: Path,
        *,
        device: Literal["cpu", "cuda"] = "cpu",
        dtype: torch.dtype = torch.float32,
        steps: int = 100,
        guidance_scale: float = 7.0,
        negative_prompt: str | None = "Low quality.",
    ) -> None:
        self._pipe = StableAudioPipeline.from_pretrained(
            folder, local_files_only=True, dtype=dtype
        ).to(device)
        self._pipe.set_progress_bar_config(disable=True)
        self._steps = steps
        self._guidance_scale = guidance_scale
        self._negative_prompt = negative_prompt
        vae = self._pipe.vae
        self._sample_rate = int(vae.config.sampling_rate)
        window = self._pipe.transformer.config.sample_size * vae.hop_length / self._sample_rate
        # The duration conditioner only knows seconds up to its max_value.
        self.max_seconds = min(window, float(self._pipe.projection_model.config.max_value))

    def run(self, task: MossSoundEffectInput, work_dir: Path, progress: Progress) -> EngineResult:
        duration = task.duration_seconds
        if duration > self.max_seconds:
            raise EngineError(
                f"durationSeconds={duration} is longer than this model's window of "
                f"{self.max_seconds:.2f} s"
            )
        adjustments: list[InputAdjustment] = [
            ignored_field(
                name,
                getattr(task, attribute),
                f"{name} tunes MOSS's autoregressive sampling; this worker runs Stable Audio "
                "Open, a diffusion model with no such setting",
            )
            for attribute, name in _MOSS_ONLY.items()
            if getattr(task, attribute) is not None
        ]
        seed = secrets.randbelow(2**31 - 1) + 1

        def on_step(step: int, _timestep: Any, _latents: torch.Tensor) -> None:
            # Raises JobCanceled on cancel: the exception unwinds out of the pipeline call.
            progress.report(5 + 85 * (step + 1) / self._steps, "generating")

        progress.report(2, "generating")
        with torch.inference_mode():
            audio = self._pipe(
                prompt=task.prompt,
                negative_prompt=self._negative_prompt,
                audio_end_in_s=float(duration),
                num_inference_steps=self._steps,
                guidance_scale=self._guidance_scale,
                generator=torch.Generator("cpu").manual_seed(seed),
                callback=on_step,
                callback_steps=1,
            ).audios[0]

        progress.report(92, "encoding")
        output = opus_output(
            audio.float().cpu().numpy(),
            self._sample_rate,
            outputs_dir(work_dir) / "sound-effect.ogg",
            quality=task.quality,
        )
        progress.report(100, "done")
        return EngineResult(
            files=[output],
            result={
                "durationSeconds": output.properties["durationSeconds"],
                "seed": seed,
                "steps": self._steps,
                "guidanceScale": self._guidance_scale,
                "model": "stable-audio",
            },
            adjustments=adjustments,
        )

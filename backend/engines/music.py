"""ace.step.create: songs from tags + lyrics with diffusers' AceStepPipeline (ACE-Step 1.5).

Mapping of the spec's fields:
    tags -> prompt, lyrics -> lyrics, durationSeconds -> audio_duration, bpm -> bpm,
    keyScale -> keyscale, timeSignature -> timesignature, language -> vocal_language,
    steps -> num_inference_steps, samplerCfg -> guidance_scale (the DiT's guidance),
    seed -> generator, quality -> Opus bitrate, qualityPreset -> the defaults below.
    textCfgScale, temperature, topP, topK and minP tune ACE-Step's 5 Hz language-model planner,
    which the diffusers pipeline does not include: each one set is reported as an adjustment.
A turbo checkpoint has guidance distilled into its weights, so samplerCfg is reported as 1.0 there.

Folder (``<model_dir>/music/``) holds a ``save_pretrained`` AceStepPipeline (model_index.json,
transformer/, condition_encoder/, text_encoder/ (Qwen3), tokenizer/, vae/ (Oobleck, 48 kHz stereo),
scheduler/; audio_tokenizer/ and audio_token_detokenizer/ only serve cover tasks and may be absent).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import AceStepPipeline

from backend.engines.audio_io import ignored_field, opus_output
from backend.engines.base import EngineResult, InputAdjustment, Progress, outputs_dir
from backend.media.tasks import AceStepCreateInput

# The 5 Hz LM planner's sampling fields of the spec, by attribute name and JSON name.
_PLANNER_ONLY = {
    "text_cfg_scale": "textCfgScale",
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "min_p": "minP",
}


@dataclass(frozen=True)
class Preset:
    duration_seconds: int
    quality: str
    steps: int
    guidance_scale: float


# "high_quality applies long-form music defaults (108s, 192k, richer sampler settings)"; explicit
# fields override. Turbo checkpoints are distilled for 8 steps, base checkpoints need more.
PRESETS = {
    ("default", False): Preset(60, "128k", 27, 7.0),
    ("high_quality", False): Preset(108, "192k", 32, 7.0),
    ("default", True): Preset(60, "128k", 8, 1.0),
    ("high_quality", True): Preset(108, "192k", 8, 1.0),
}


class AceStepMusicEngine:
    def __init__(
        self,
        folder: Path,
        *,
        device: Literal["cpu", "cuda"] = "cpu",
        dtype: torch.dtype = torch.float32,
        shift: float = 3.0,
    ) -> None:
        self._pipe = AceStepPipeline.from_pretrained(folder, local_files_only=True, dtype=dtype).to(
            device
        )
        self._pipe.set_progress_bar_config(disable=True)
        self._shift = shift

    def run(self, task: AceStepCreateInput, work_dir: Path, progress: Progress) -> EngineResult:
        turbo = self._pipe.is_turbo
        preset = PRESETS[(task.quality_preset, turbo)]
        duration = task.duration_seconds or preset.duration_seconds
        steps = task.steps or preset.steps
        guidance = preset.guidance_scale
        adjustments: list[InputAdjustment] = [
            ignored_field(
                name,
                getattr(task, attribute),
                f"{name} tunes ACE-Step's language-model planner, which this worker's "
                "diffusers ACE-Step pipeline does not include",
            )
            for attribute, name in _PLANNER_ONLY.items()
            if getattr(task, attribute) is not None
        ]
        if task.sampler_cfg is not None and turbo:
            adjustments.append(
                InputAdjustment(
                    field="samplerCfg",
                    requested=task.sampler_cfg,
                    effective=1.0,
                    reason="this worker runs a turbo (guidance-distilled) ACE-Step checkpoint",
                )
            )
        elif task.sampler_cfg is not None:
            guidance = task.sampler_cfg
        seed = task.seed or secrets.randbelow(2**31 - 1) + 1

        def on_step_end(
            _pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]
        ) -> dict[str, Any]:
            # Raises JobCanceled on cancel. (pipe._interrupt would still decode and return audio.)
            progress.report(5 + 80 * (step + 1) / steps, "generating")
            return tensors

        progress.report(2, "generating")
        with torch.inference_mode():
            audio = self._pipe(
                prompt=task.tags,
                lyrics=task.lyrics,
                audio_duration=float(duration),
                vocal_language=task.language or "en",
                num_inference_steps=steps,
                guidance_scale=guidance,
                shift=self._shift,
                bpm=task.bpm,
                keyscale=task.key_scale,
                timesignature=task.time_signature,
                generator=torch.Generator("cpu").manual_seed(seed),
                callback_on_step_end=on_step_end,
            ).audios[0]

        progress.report(90, "encoding")
        quality = task.quality or preset.quality
        output = opus_output(
            audio.float().cpu().numpy(),
            self._pipe.sample_rate,
            outputs_dir(work_dir) / "music.ogg",
            quality=quality,
        )
        progress.report(100, "done")
        return EngineResult(
            files=[output],
            result={
                "durationSeconds": output.properties["durationSeconds"],
                "seed": seed,
                "steps": steps,
                "guidanceScale": guidance,
                "qualityPreset": task.quality_preset,
                "quality": quality,
                "turbo": turbo,
                "model": "ace-step-1.5",
            },
            adjustments=adjustments,
        )

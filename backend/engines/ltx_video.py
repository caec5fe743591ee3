"""video.generate with LTX-Video (diffusers), from `<model_dir>/video/`.

Three pipelines share one set of weights (`from_pipe`):
    LTXPipeline               text-to-video
    LTXImageToVideoPipeline   a start frame only
    LTXConditionPipeline      overlap frames and/or a final frame (with or without a start frame)

Mapping of the spec's fields:
    durationFrames    -> exactly that many sampled frames (8n + 1, checked before the call: the
                         pipelines silently round other counts down)
    durationSeconds   -> durationSeconds x sampledFps frames, moved to the nearest 8n + 1
    sampledFps        -> the frame rate the model samples at (and its `frame_rate` conditioning)
    width/height      -> the output canvas; else aspectRatio, else the start frame's aspect ratio,
                         at the model's native pixel area. The model samples at this size directly
                         (no half-size first pass: there is no latent upsampler here)
    extremeQuality    -> 50% more denoising steps
    interpolationFps  -> FFmpeg's motion-compensated `minterpolate` to that rate (no RIFE model)
    referenceAudio    -> muxed as the clip's AAC soundtrack, trimmed or padded to its length
    seed              -> the generator seed (drawn and reported when absent)
"""

from __future__ import annotations

import inspect
import math
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from av.video.frame import VideoFrame
from diffusers import LTXConditionPipeline, LTXImageToVideoPipeline, LTXPipeline
from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
from PIL import Image, ImageOps

from backend.engines.base import (
    EngineError,
    EngineResult,
    InputAdjustment,
    Progress,
    outputs_dir,
    staged_input,
)
from backend.engines.diffusion_image import (
    StepProgress,
    default_steps,
    open_rgb,
    size_for_aspect_ratio,
    size_for_ratio,
)
from backend.engines.ffmpeg_video import (
    AUDIO_RATE,
    PROGRESS_EVERY,
    Mp4Writer,
    fit_length,
    interpolate,
    read_audio,
    video_output,
)
from backend.media.tasks import (
    LTX_MAX_FRAMES,
    LTX_MIN_FRAMES,
    MAX_SEED,
    VideoGenerateInput,
    is_ltx_frame_count,
)

# About 4 s at the default 30 fps: the length of one continuation clip.
DEFAULT_FRAMES = 121
DEFAULT_ASPECT_RATIO = "16:9"
EXTREME_QUALITY_FACTOR = 1.5
# The negative prompt LTX-Video's authors recommend for every generation.
NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"
# Progress: denoising takes most of the time; decoding and encoding the rest.
DENOISE_END = 85.0


@dataclass(frozen=True)
class _Frames:
    """The conditioning images of a job, fitted to the output canvas."""

    start: Image.Image | None
    overlap: list[Image.Image]
    final: Image.Image | None

    @property
    def leading(self) -> list[Image.Image]:
        """Frames 0, 1, ... of the clip: the start frame, then the overlap frames."""
        return ([self.start] if self.start is not None else []) + self.overlap


class LtxVideoEngine:
    def __init__(self, folder: Path, *, device: str, dtype: torch.dtype) -> None:
        # Typed Any: diffusers' decorated __call__ is invisible to type checkers.
        self._text2video: Any = LTXPipeline.from_pretrained(
            folder, dtype=dtype, local_files_only=True
        ).to(device)
        # from_pipe casts the shared modules to its `dtype` argument, float32 when omitted: pass
        # it, or a half-precision model silently doubles in memory (for every pipeline).
        self._image2video = LTXImageToVideoPipeline.from_pipe(self._text2video, dtype=dtype)
        self._conditioned = LTXConditionPipeline.from_pipe(self._text2video, dtype=dtype)
        for pipe in (self._text2video, self._image2video, self._conditioned):
            pipe.set_progress_bar_config(disable=True)
        self._default_steps = default_steps(self._text2video)
        # The pipeline's default canvas (704 x 512 for LTX-Video) sets the native pixel area.
        self._native = _native_side(self._text2video)
        # Pipelines keep per-call state (scheduler timesteps, ...): one job at a time per engine.
        self._lock = threading.Lock()

    def run(self, task: VideoGenerateInput, work_dir: Path, progress: Progress) -> EngineResult:
        adjustments: list[InputAdjustment] = []
        fps = task.sampled_fps
        frames = self._frame_count(task, adjustments)
        images = self._read_frames(task, work_dir)
        width, height = self._canvas(task, images)
        images = _Frames(
            start=_fit(images.start, width, height) if images.start else None,
            overlap=[_fit(image, width, height) for image in images.overlap],
            final=_fit(images.final, width, height) if images.final else None,
        )
        if len(images.leading) + (images.final is not None) > frames:
            raise EngineError(
                f"{len(images.leading)} leading frame(s) plus a final frame do not fit in "
                f"{frames} frames; ask for a longer clip"
            )
        audio = self._reference_audio(task, work_dir, adjustments)
        seed = task.seed or secrets.randbelow(MAX_SEED) + 1
        steps = self._default_steps
        if task.extreme_quality:
            steps = math.ceil(steps * EXTREME_QUALITY_FACTOR)

        common: dict[str, Any] = {
            "prompt": task.prompt,
            "negative_prompt": NEGATIVE_PROMPT,
            "width": width,
            "height": height,
            "num_frames": frames,
            "frame_rate": fps,
            "num_inference_steps": steps,
            "generator": torch.Generator("cpu").manual_seed(seed),
            "output_type": "np",
            "callback_on_step_end": StepProgress(progress, steps, end=DENOISE_END),
        }
        with self._lock:
            if images.overlap or images.final is not None:
                mode = "conditioned"
                output = self._conditioned(conditions=_conditions(images, frames), **common)
            elif images.start is not None:
                mode = "image-to-video"
                output = self._image2video(image=images.start, **common)
            else:
                mode = "text-to-video"
                output = self._text2video(**common)
        video = (np.clip(output.frames[0], 0.0, 1.0) * 255).round().astype(np.uint8)
        if len(video) != frames:
            raise EngineError(f"the model returned {len(video)} frames instead of {frames}")

        out_fps = self._output_fps(task, adjustments)
        progress.report(DENOISE_END + 2, "encoding")
        path = outputs_dir(work_dir) / "video.mp4"
        sampled = (VideoFrame.from_ndarray(frame, format="rgb24") for frame in video)
        if out_fps != fps:
            stream = interpolate(
                sampled, width=width, height=height, source_fps=fps, target_fps=out_fps
            )
            out_frames = (frames - 1) * out_fps // fps + 1
        else:
            stream, out_frames = sampled, frames
        with Mp4Writer(
            path, width=width, height=height, rate=out_fps, with_audio=audio is not None
        ) as writer:
            if audio is not None:
                writer.add_audio(fit_length(audio, round(out_frames / out_fps * AUDIO_RATE)))
            for frame in stream:
                writer.write_frame(frame)
                if writer.frames_written % PROGRESS_EVERY == 0:
                    done = writer.frames_written / max(out_frames, 1)
                    progress.report(DENOISE_END + 2 + 12 * min(done, 1.0), "encoding")
        result = video_output(path)
        progress.report(100, "done")
        return EngineResult(
            files=[result],
            result={
                "seed": seed,
                "mode": mode,
                "steps": steps,
                "sampledFrames": frames,
                "sampledFps": fps,
                "fps": out_fps,
                "width": width,
                "height": height,
            },
            adjustments=adjustments,
        )

    @staticmethod
    def _frame_count(task: VideoGenerateInput, adjustments: list[InputAdjustment]) -> int:
        if task.duration_frames is not None:
            if not is_ltx_frame_count(task.duration_frames):
                raise EngineError(f"durationFrames {task.duration_frames} is not 8n + 1")
            return task.duration_frames
        if task.duration_seconds is None:
            return DEFAULT_FRAMES
        implied = task.duration_seconds * task.sampled_fps
        if is_ltx_frame_count(implied):
            return implied
        below = implied - (implied - 1) % 8
        nearest = below if implied - below <= below + 8 - implied else below + 8
        frames = min(max(nearest, LTX_MIN_FRAMES), LTX_MAX_FRAMES)
        adjustments.append(
            InputAdjustment(
                field="durationSeconds",
                requested=task.duration_seconds,
                effective=round(frames / task.sampled_fps, 3),
                reason=f"{implied} frames at {task.sampled_fps} fps is not 8n + 1 (the LTX "
                f"rule); {frames} frames were generated",
            )
        )
        return frames

    @staticmethod
    def _read_frames(task: VideoGenerateInput, work_dir: Path) -> _Frames:
        start = _first_given(
            ("startFrameImage", task.start_frame_image),
            ("startFrameImageUrl", task.start_frame_image_url),
            ("sourceImage", task.source_image),
            ("sourceImageUrl", task.source_image_url),
        )
        final = _first_given(
            ("finalFrameImage", task.final_frame_image),
            ("finalFrameImageUrl", task.final_frame_image_url),
        )
        if task.overlap_frame_images:
            overlap_field, overlap_values = "overlapFrameImages", list(task.overlap_frame_images)
        else:
            overlap_field = "overlapFrameImageUrls"
            overlap_values = list(task.overlap_frame_image_urls or [])
        overlap = [
            open_rgb(staged_input(work_dir, field, value), field)
            for field, value in (
                (f"{overlap_field}[{i}]", value) for i, value in enumerate(overlap_values)
            )
        ]
        return _Frames(
            start=open_rgb(staged_input(work_dir, *start), start[0]) if start else None,
            overlap=overlap,
            final=open_rgb(staged_input(work_dir, *final), final[0]) if final else None,
        )

    def _canvas(self, task: VideoGenerateInput, images: _Frames) -> tuple[int, int]:
        if task.width is not None and task.height is not None:
            return task.width, task.height
        if task.aspect_ratio is not None:
            return size_for_aspect_ratio(task.aspect_ratio, self._native)
        if images.leading:
            first = images.leading[0]
            return size_for_ratio(first.width / first.height, self._native)
        return size_for_aspect_ratio(DEFAULT_ASPECT_RATIO, self._native)

    @staticmethod
    def _reference_audio(
        task: VideoGenerateInput, work_dir: Path, adjustments: list[InputAdjustment]
    ) -> np.ndarray | None:
        given = _first_given(
            ("referenceAudio", task.reference_audio),
            ("referenceAudioUrl", task.reference_audio_url),
        )
        if given is None:
            return None
        field = given[0]
        try:
            samples = read_audio(staged_input(work_dir, *given))
        except av.FFmpegError as exc:
            raise EngineError(f"{field} is not decodable audio: {exc}") from exc
        if samples is None or not samples.shape[1]:
            raise EngineError(f"{field} holds no audio")
        adjustments.append(
            InputAdjustment(
                field=field,
                requested="motion synchronised to the audio",
                effective="audio muxed as the soundtrack",
                reason="the local LTX-Video model cannot condition motion on audio; the "
                "reference audio is the clip's soundtrack, trimmed or padded to its length",
            )
        )
        return samples

    @staticmethod
    def _output_fps(task: VideoGenerateInput, adjustments: list[InputAdjustment]) -> int:
        target, fps = task.interpolation_fps, task.sampled_fps
        if target == 0:
            return fps
        if target <= fps:
            adjustments.append(
                InputAdjustment(
                    field="interpolationFps",
                    requested=target,
                    effective=fps,
                    reason=f"interpolation only raises the frame rate; the clip keeps its "
                    f"sampled {fps} fps",
                )
            )
            return fps
        adjustments.append(
            InputAdjustment(
                field="interpolationFps",
                requested=target,
                effective=target,
                reason="frames were interpolated with FFmpeg's motion-compensated minterpolate: "
                "no RIFE interpolation model is present on this worker",
            )
        )
        return target


def _first_given(*fields: tuple[str, Any]) -> tuple[str, Any] | None:
    """The first (wire name, value) pair whose value is set."""
    return next(((name, value) for name, value in fields if value is not None), None)


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop to the canvas (conditioning frames must match it exactly)."""
    if image.size == (width, height):
        return image
    return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)


def _conditions(images: _Frames, frames: int) -> list[LTXVideoCondition]:
    """Leading frames as one video condition (the longest 8k + 1 prefix, the shape LTX's VAE
    encodes as a clip), any frames after it as single-image conditions at their own indices,
    and the final frame at the last index."""
    leading = images.leading
    clip_length = (len(leading) - 1) // 8 * 8 + 1 if leading else 0
    conditions = []
    if clip_length > 1:
        conditions.append(LTXVideoCondition(video=leading[:clip_length], frame_index=0))
    elif clip_length == 1:
        conditions.append(LTXVideoCondition(image=leading[0], frame_index=0))
    conditions += [
        LTXVideoCondition(image=image, frame_index=index)
        for index, image in enumerate(leading[clip_length:], start=clip_length)
    ]
    if images.final is not None:
        conditions.append(LTXVideoCondition(image=images.final, frame_index=frames - 1))
    return conditions


def _native_side(pipe: Any) -> int:
    parameters = inspect.signature(pipe.__call__).parameters
    return round(math.sqrt(parameters["width"].default * parameters["height"].default))

"""image.generate and image.edit with diffusers' auto pipelines, from `<model_dir>/image/`.

Any text-to-image architecture `AutoPipelineForText2Image` knows (SD 1.x/2.x, SDXL, SD3, Flux,
...) works; the image-to-image pipeline for edits is built with `from_pipe`, sharing the weights.

Mapping of the spec's fields:
    aspectRatio      -> a size of the model's native pixel area at that ratio (multiples of 32)
    width/height     -> exactly that size
    highDetail       -> 50% more denoising steps than the pipeline's default
    upscale          -> a 1.5x second pass: Lanczos-enlarge, then a light image-to-image pass at
                        the new size that redraws the detail (the "hires fix"); no separate
                        upscaler model is needed
    referenceImages  -> not applied (these pipelines have no image-prompt conditioning): reported
    outputFormat     -> webp (default) / png / jpg
The spec's image tasks carry no seed: every job draws one and reports it in `result["seed"]`;
`run(..., seed=)` reproduces a result byte for byte (same weights, device and library versions).
"""

from __future__ import annotations

import inspect
import math
import secrets
import threading
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image, DiffusionPipeline
from PIL import Image

from backend.engines.base import (
    EngineError,
    EngineResult,
    InputAdjustment,
    OutputFile,
    Progress,
    outputs_dir,
    staged_input,
)
from backend.media.tasks import MAX_IMAGE_PIXELS, ImageEditInput, ImageGenerateInput

# Spec sizes are multiples of 32; aspect-ratio sizes follow the same grid.
SIZE_STEP = 32
HIGH_DETAIL_FACTOR = 1.5
UPSCALE_FACTOR = 1.5
# How much the upscale pass may redraw: enough to add detail, too little to change the picture.
UPSCALE_STRENGTH = 0.35
# How far an edit may depart from the source image (diffusers' img2img default is 0.8).
EDIT_STRENGTH = 0.75
DEFAULT_ASPECT_RATIO = "1:1"
MAX_SEED = 2**31 - 1
_FORMATS = {
    "webp": ("WEBP", "image/webp", {"quality": 95, "method": 4}),
    "png": ("PNG", "image/png", {}),
    "jpg": ("JPEG", "image/jpeg", {"quality": 95}),
}


class DiffusionImageEngine:
    def __init__(self, folder: Path, *, device: str, dtype: torch.dtype) -> None:
        # Typed Any: the concrete pipeline class comes from the folder's model_index.json, and
        # DiffusionPipeline declares neither __call__ nor the attributes every pipeline has.
        self._text2image: Any = AutoPipelineForText2Image.from_pretrained(
            folder, dtype=dtype, local_files_only=True
        ).to(device)
        # from_pipe casts the shared modules to its `dtype` argument, float32 when omitted: pass
        # it, or a half-precision model silently doubles in memory (for every pipeline).
        self._image2image: Any = AutoPipelineForImage2Image.from_pipe(self._text2image, dtype=dtype)
        for pipe in (self._text2image, self._image2image):
            pipe.set_progress_bar_config(disable=True)
        self._default_steps = default_steps(self._text2image)
        self._native = _native_size(self._text2image)
        # Pipelines keep per-call state (scheduler timesteps, ...): one job at a time per engine.
        self._lock = threading.Lock()
        # Edits run at multiples of this (VAE downsampling x the denoiser's own downsampling).
        self._edit_step = self._text2image.vae_scale_factor * 8

    def run(
        self,
        task: ImageGenerateInput | ImageEditInput,
        work_dir: Path,
        progress: Progress,
        *,
        seed: int | None = None,
    ) -> EngineResult:
        seed = seed if seed is not None else secrets.randbelow(MAX_SEED) + 1
        generator = torch.Generator("cpu").manual_seed(seed)
        steps = self._default_steps
        if task.high_detail:
            steps = math.ceil(steps * HIGH_DETAIL_FACTOR)
        adjustments = _reference_adjustments(task)

        with self._lock:
            if isinstance(task, ImageEditInput):
                image = self._edit(task, work_dir, steps, generator, progress)
            else:
                image = self._generate(task, steps, generator, progress)

        name, mime, options = _FORMATS[task.output_format]
        path = outputs_dir(work_dir) / f"image.{task.output_format}"
        image.save(path, format=name, **options)
        with Image.open(path) as written:
            properties = {
                "width": written.width,
                "height": written.height,
                "format": task.output_format,
            }
        progress.report(100, "done")
        return EngineResult(
            files=[OutputFile(path, mime, properties)],
            result={"seed": seed, "steps": steps, **properties},
            adjustments=adjustments,
        )

    def _generate(
        self,
        task: ImageGenerateInput,
        steps: int,
        generator: torch.Generator,
        progress: Progress,
    ) -> Image.Image:
        if task.width is not None and task.height is not None:
            width, height = task.width, task.height
        else:
            width, height = size_for_aspect_ratio(
                task.aspect_ratio or DEFAULT_ASPECT_RATIO, self._native
            )
        upscale_steps = int(steps * UPSCALE_STRENGTH) if task.upscale else 0
        counter = StepProgress(progress, steps + upscale_steps)
        image = self._text2image(
            prompt=task.prompt,
            width=width,
            height=height,
            num_inference_steps=steps,
            generator=generator,
            callback_on_step_end=counter,
        ).images[0]
        if task.upscale:
            # Both sides stay multiples of 16 (1.5 x 32), which every VAE here divides.
            larger = (round(width * UPSCALE_FACTOR), round(height * UPSCALE_FACTOR))
            image = self._image2image(
                prompt=task.prompt,
                image=image.resize(larger, Image.Resampling.LANCZOS),
                strength=UPSCALE_STRENGTH,
                num_inference_steps=steps,
                generator=generator,
                callback_on_step_end=counter,
            ).images[0]
        return image

    def _edit(
        self,
        task: ImageEditInput,
        work_dir: Path,
        steps: int,
        generator: torch.Generator,
        progress: Progress,
    ) -> Image.Image:
        field = "sourceImage" if task.source_image is not None else "sourceImageUrl"
        value = task.source_image if task.source_image is not None else task.source_image_url
        assert value is not None  # the task model requires one of the two
        source = open_rgb(staged_input(work_dir, field, value), field)
        # The denoiser works at a size its downsampling divides, and at most 4 MP (what the
        # models were trained near); the result goes back to the source's exact size.
        scale = min(1.0, math.sqrt(MAX_IMAGE_PIXELS / (source.width * source.height)))
        step = self._edit_step
        work_size = (
            max(step, round(source.width * scale / step) * step),
            max(step, round(source.height * scale / step) * step),
        )
        counter = StepProgress(progress, int(steps * EDIT_STRENGTH))
        image = self._image2image(
            prompt=task.prompt,
            image=source.resize(work_size, Image.Resampling.LANCZOS),
            strength=EDIT_STRENGTH,
            num_inference_steps=steps,
            generator=generator,
            callback_on_step_end=counter,
        ).images[0]
        if image.size != source.size:
            image = image.resize(source.size, Image.Resampling.LANCZOS)
        return image


class StepProgress:
    """`callback_on_step_end` that reports progress over every denoising pass of one job,
    mapped onto `start`..`end` percent.

    Raising from here (progress.report raises JobCanceled) is what really stops a pipeline:
    diffusers' own `_interrupt` flag skips the remaining steps but still decodes an output.
    """

    def __init__(
        self, progress: Progress, total: int, *, start: float = 0.0, end: float = 99.0
    ) -> None:
        self._progress, self._total, self._done = progress, max(total, 1), 0
        self._start, self._span = start, end - start

    def __call__(
        self, pipe: DiffusionPipeline, step: int, timestep: Any, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        self._done += 1
        percent = self._start + self._span * min(1.0, self._done / self._total)
        self._progress.report(percent, f"denoising step {self._done}/{self._total}")
        return kwargs


def size_for_aspect_ratio(aspect_ratio: str, native: int) -> tuple[int, int]:
    """A width x height of about `native`^2 pixels at `aspect_ratio` ("16:9"), on the 32 grid."""
    across, down = (int(part) for part in aspect_ratio.split(":"))
    return size_for_ratio(across / down, native)


def size_for_ratio(ratio: float, native: int) -> tuple[int, int]:
    """A width x height of about `native`^2 pixels with width / height = `ratio`."""
    width, height = native * math.sqrt(ratio), native / math.sqrt(ratio)
    return (
        max(SIZE_STEP, round(width / SIZE_STEP) * SIZE_STEP),
        max(SIZE_STEP, round(height / SIZE_STEP) * SIZE_STEP),
    )


def _native_size(pipe: Any) -> int:
    """The side, in pixels, of the square the model was trained at."""
    sample_size = getattr(pipe, "default_sample_size", None)
    if sample_size is None:
        denoiser = getattr(pipe, "unet", None) or pipe.transformer
        sample_size = denoiser.config.sample_size
    return int(sample_size * pipe.vae_scale_factor)


def default_steps(pipe: Any) -> int:
    """The step count the pipeline's authors chose for it (50 for SD, 28 for SD3 and Flux, ...)."""
    default = inspect.signature(pipe.__call__).parameters["num_inference_steps"].default
    return int(default) if isinstance(default, int) else 50


def _reference_adjustments(task: ImageGenerateInput | ImageEditInput) -> list[InputAdjustment]:
    reason = (
        "this worker's image model has no reference-image (image prompt) conditioning; "
        "the prompt alone guides the result"
    )
    return [
        InputAdjustment(field=wire, requested=len(values), effective=0, reason=reason)
        for wire, values in (
            ("referenceImages", task.reference_images),
            ("referenceImageUrls", task.reference_image_urls),
        )
        if values
    ]


def open_rgb(path: Path, field: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "RGBA":
                # Transparent areas become white, as an editor's canvas shows them.
                canvas = Image.new("RGB", image.size, "white")
                canvas.paste(image, mask=image.getchannel("A"))
                return canvas
            return image.convert("RGB")
    except OSError as exc:
        raise EngineError(f"{field} is not a readable image: {exc}") from exc

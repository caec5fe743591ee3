"""What the gateway will run: a task's effective input, and every change from what was asked.

`resolve_input` is pure and deterministic. Its `effective_input` (wire names) is itself a valid
input for the same task, and resolving it again changes nothing more: every default is filled in,
every derived size and frame count is explicit, every alias and spelling is normalised. Each change
is listed in `adjustments`, shaped like the spec's `MediaInputAdjustment`
(`{field, requested, effective, reason}`; `requested` is None for a field that was not sent,
`effective` is None for one the gateway dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.http.bodies import field_path
from backend.media.tasks import (
    AceStepCreateInput,
    AudioAnnotationReferenceInput,
    AudioSpeakInput,
    ImageEditInput,
    ImageGenerateInput,
    MediaTask,
    VideoGenerateInput,
    VideoResizeInput,
    WireModel,
)

IMAGE_SIZES = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "9:7": (1152, 896),
    "7:9": (896, 1152),
}
DEFAULT_IMAGE_ASPECT_RATIO = "1:1"
# Final video canvases, all in the 720p price tier; LTX samples the first pass at half size.
VIDEO_SIZES = {
    "1:1": (960, 960),
    "16:9": (1280, 704),
    "9:16": (704, 1280),
    "9:7": (1024, 800),
    "7:9": (800, 1024),
}
DEFAULT_VIDEO_ASPECT_RATIO = "16:9"
DEFAULT_VIDEO_FRAMES = 121
DEFAULT_RESIZE_SOURCE_SECONDS = 8
DEFAULT_GEMINI_VOICE = "Kore"
DEFAULT_AUDIO_QUALITY = "128k"
ACE_PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "default": {"durationSeconds": 60, "quality": "128k"},
    "high_quality": {"durationSeconds": 108, "quality": "192k"},
}
# OmniVoice-only settings that Gemini has no use for (it reads English and answers WAV).
_OMNIVOICE_SETTINGS_GEMINI_IGNORES = ("language", "quality")


@dataclass(frozen=True)
class ResolvedInput:
    effective_input: dict[str, Any]
    adjustments: list[dict[str, Any]] = field(default_factory=list)


class _Log:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, field: str, requested: Any, effective: Any, reason: str) -> None:
        self.items.append(
            {"field": field, "requested": requested, "effective": effective, "reason": reason}
        )


def resolve_input(task: MediaTask, body: Mapping[str, Any]) -> ResolvedInput:
    """`task` as parsed from `body`, the request as sent (the models normalise some spellings:
    ".png" is "png" once parsed, and only the request still says what was asked)."""
    model = task.input
    effective = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    log = _Log()
    _RESOLVERS.get(task.task, _nothing_to_derive)(model, effective, log)
    _log_defaults(model, effective, log)
    _log_normalised_spellings(model, body.get("input"), (), log)
    return ResolvedInput(effective, log.items)


def nearest_ltx_frame_count(frames: int) -> int:
    """The 8n + 1 count nearest to `frames`; a tie goes to the longer clip."""
    below = frames - (frames - 1) % 8
    return below if frames - below < below + 8 - frames else below + 8


def _nothing_to_derive(model: Any, effective: dict[str, Any], log: _Log) -> None:
    """video.combine, moss.sound.effect and trellis.generate only take defaults."""


def _log_defaults(model: WireModel, effective: dict[str, Any], log: _Log) -> None:
    for name, info in type(model).model_fields.items():
        wire_name = info.alias or name
        if not model.is_given(name) and info.default is not None and wire_name in effective:
            log.add(wire_name, None, effective[wire_name], "not given; the default applies")


def _log_normalised_spellings(
    model: WireModel, requested: Any, location: tuple[str | int, ...], log: _Log
) -> None:
    """Every string the model holds in another spelling than `requested` (the same object as
    sent), at any depth."""
    if not isinstance(requested, Mapping):
        return
    attributes = model.attributes_by_key()
    for key, sent in requested.items():
        name = attributes.get(key)
        if name is None:
            continue
        value = getattr(model, name)
        path = (*location, model.wire_name(name))
        if isinstance(sent, str):
            if sent != value:
                log.add(field_path(path), sent, value, f"normalised {sent!r} to {value!r}")
        elif isinstance(value, WireModel):
            _log_normalised_spellings(value, sent, path, log)
        elif isinstance(value, list) and isinstance(sent, list):
            for index, (item, sent_item) in enumerate(zip(value, sent, strict=False)):
                if isinstance(item, WireModel):
                    _log_normalised_spellings(item, sent_item, (*path, index), log)


def _brief(value: Any) -> Any:
    # Adjustments are read by people and agents: inline base64 is summarised, not repeated.
    if isinstance(value, dict) and isinstance(value.get("dataBase64"), str):
        return value | {"dataBase64": f"<{len(value['dataBase64'])} base64 characters>"}
    return value


def _merge_reference_image_urls(effective: dict[str, Any], log: _Log) -> None:
    urls = effective.pop("referenceImageUrls", None)
    if urls is None:
        return
    effective["referenceImages"] = [*effective.get("referenceImages", []), *urls]
    log.add(
        "referenceImageUrls",
        urls,
        None,
        "legacy alias for reference images: appended to referenceImages",
    )


def _resolve_canvas(
    width: int | None,
    height: int | None,
    aspect_ratio: str | None,
    effective: dict[str, Any],
    log: _Log,
    *,
    sizes: dict[str, tuple[int, int]],
    default_ratio: str,
) -> None:
    if width is not None and height is not None:
        if aspect_ratio is not None and sizes[aspect_ratio] != (width, height):
            del effective["aspectRatio"]
            log.add(
                "aspectRatio",
                aspect_ratio,
                None,
                f"explicit width and height ({width}x{height}) take precedence over aspectRatio",
            )
        return
    ratio = aspect_ratio or default_ratio
    if aspect_ratio is None:
        effective["aspectRatio"] = ratio
        log.add("aspectRatio", None, ratio, "not given; the default applies")
    effective["width"], effective["height"] = sizes[ratio]
    for side in ("width", "height"):
        log.add(side, None, effective[side], f"derived from aspectRatio {ratio}")


def _image_generate(model: ImageGenerateInput, effective: dict[str, Any], log: _Log) -> None:
    _merge_reference_image_urls(effective, log)
    _resolve_canvas(
        model.width,
        model.height,
        model.aspect_ratio,
        effective,
        log,
        sizes=IMAGE_SIZES,
        default_ratio=DEFAULT_IMAGE_ASPECT_RATIO,
    )


def _image_edit(model: ImageEditInput, effective: dict[str, Any], log: _Log) -> None:
    _merge_reference_image_urls(effective, log)


def _video_generate(model: VideoGenerateInput, effective: dict[str, Any], log: _Log) -> None:
    for legacy, preferred in (
        ("sourceImageUrl", "startFrameImageUrl"),
        ("sourceImage", "startFrameImage"),
    ):
        if legacy in effective:
            effective[preferred] = effective.pop(legacy)
            log.add(
                legacy, _brief(effective[preferred]), None, f"legacy alias: used as {preferred}"
            )

    has_start = "startFrameImageUrl" in effective or "startFrameImage" in effective
    for overlap, start in (
        ("overlapFrameImageUrls", "startFrameImageUrl"),
        ("overlapFrameImages", "startFrameImage"),
    ):
        if not has_start and effective.get(overlap):
            effective[start] = effective[overlap][0]
            log.add(
                start,
                None,
                _brief(effective[start]),
                f"no start frame given: the first overlap frame ({overlap}[0]) becomes frame zero",
            )

    fps = model.sampled_fps
    if model.duration_seconds is not None:
        implied = model.duration_seconds * fps
        frames = nearest_ltx_frame_count(implied)
        del effective["durationSeconds"]
        effective["durationFrames"] = frames
        log.add(
            "durationSeconds",
            model.duration_seconds,
            None,
            f"converted to durationFrames at sampledFps {fps}",
        )
        log.add(
            "durationFrames",
            None,
            frames,
            f"{model.duration_seconds} s at {fps} fps is {implied} sampled frames; the nearest "
            "LTX-valid count (8n + 1) is used",
        )
    elif model.duration_frames is None:
        effective["durationFrames"] = DEFAULT_VIDEO_FRAMES
        log.add(
            "durationFrames",
            None,
            DEFAULT_VIDEO_FRAMES,
            f"not given; the default applies ({DEFAULT_VIDEO_FRAMES} frames at {fps} fps)",
        )

    _resolve_canvas(
        model.width,
        model.height,
        model.aspect_ratio,
        effective,
        log,
        sizes=VIDEO_SIZES,
        default_ratio=DEFAULT_VIDEO_ASPECT_RATIO,
    )


def _video_resize(model: VideoResizeInput, effective: dict[str, Any], log: _Log) -> None:
    if model.source_duration_seconds is None:
        effective["sourceDurationSeconds"] = DEFAULT_RESIZE_SOURCE_SECONDS
        log.add(
            "sourceDurationSeconds",
            None,
            DEFAULT_RESIZE_SOURCE_SECONDS,
            "not given; assumed for pricing and ETA (a probed source duration takes precedence)",
        )


def _audio_speak(model: AudioSpeakInput, effective: dict[str, Any], log: _Log) -> None:
    if model.provider == "omnivoice":
        if model.quality is None:
            effective["quality"] = DEFAULT_AUDIO_QUALITY
            log.add("quality", None, DEFAULT_AUDIO_QUALITY, "not given; the default applies")
        return
    # The mode selector is OmniVoice's; a Gemini request only keeps it when it was sent.
    if not model.is_given("mode"):
        del effective["mode"]
    if model.voice_name is None:
        effective["voiceName"] = DEFAULT_GEMINI_VOICE
        log.add("voiceName", None, DEFAULT_GEMINI_VOICE, "not given; Gemini's default voice")
    for wire_name in _OMNIVOICE_SETTINGS_GEMINI_IGNORES:
        if wire_name in effective:
            log.add(
                wire_name,
                effective.pop(wire_name),
                None,
                "an OmniVoice setting; provider gemini does not apply it",
            )


def _audio_annotation_reference(
    model: AudioAnnotationReferenceInput, effective: dict[str, Any], log: _Log
) -> None:
    if model.transcription_model is None:
        anchored = model.transcript is not None
        chosen = "distil-large-v3" if anchored else "large-v3"
        effective["transcriptionModel"] = chosen
        log.add(
            "transcriptionModel",
            None,
            chosen,
            "not given; the default for transcript anchoring"
            if anchored
            else "not given; the default for transcriptless ASR",
        )


def _ace_step_create(model: AceStepCreateInput, effective: dict[str, Any], log: _Log) -> None:
    for wire_name, value in ACE_PRESET_DEFAULTS[model.quality_preset].items():
        if wire_name not in effective:
            effective[wire_name] = value
            log.add(
                wire_name, None, value, f"not given; the {model.quality_preset} preset's default"
            )


_RESOLVERS: dict[str, Callable[[Any, dict[str, Any], _Log], None]] = {
    "image.generate": _image_generate,
    "image.edit": _image_edit,
    "video.generate": _video_generate,
    "video.resize": _video_resize,
    "audio.speak": _audio_speak,
    "audio.annotation.reference": _audio_annotation_reference,
    "ace.step.create": _ace_step_create,
}

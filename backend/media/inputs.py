"""Which fields of a task carry media the gateway must fetch or decode before the job runs."""

from __future__ import annotations

from typing import Any

from backend.storage.staging import MediaKind, MediaRef

# Per task: (wire field, kind). A field may hold one value or a list of them.
MEDIA_FIELDS: dict[str, tuple[tuple[str, MediaKind], ...]] = {
    "image.generate": (("referenceImageUrls", "image"), ("referenceImages", "image")),
    "image.edit": (
        ("sourceImageUrl", "image"),
        ("sourceImage", "image"),
        ("referenceImageUrls", "image"),
        ("referenceImages", "image"),
    ),
    "video.generate": (
        ("startFrameImageUrl", "image"),
        ("startFrameImage", "image"),
        ("sourceImageUrl", "image"),
        ("sourceImage", "image"),
        ("overlapFrameImageUrls", "image"),
        ("overlapFrameImages", "image"),
        ("finalFrameImageUrl", "image"),
        ("finalFrameImage", "image"),
        ("referenceAudioUrl", "audio"),
        ("referenceAudio", "audio"),
    ),
    "video.combine": (("videoUrls", "video"),),
    "video.resize": (("sourceVideoUrl", "video"),),
    "audio.speak": (("referenceAudioUrl", "audio"), ("referenceAudio", "audio")),
    "audio.annotation.reference": (("sourceAudioUrl", "audio"), ("sourceAudio", "audio")),
    "ace.step.create": (),
    "moss.sound.effect": (),
    "trellis.generate": (("sourceImageUrl", "image"), ("sourceImage", "image")),
}


def media_refs(task: str, effective_input: dict[str, Any]) -> list[MediaRef]:
    """Every media value of the (effective, wire-named) input, with its field path."""
    refs = []
    for field, kind in MEDIA_FIELDS[task]:
        value = effective_input.get(field)
        if value is None:
            continue
        if isinstance(value, list):
            refs += [MediaRef(f"{field}[{i}]", kind, item) for i, item in enumerate(value)]
        else:
            refs.append(MediaRef(field, kind, value))
    return refs

"""What each task produces, known at submit time so `expectedOutputUrls` can be promised."""

from __future__ import annotations

from typing import Any

_IMAGE_SUFFIX = {"webp": "webp", "png": "png", "jpg": "jpg", "jpeg": "jpg"}


def expected_output_names(task: str, effective_input: dict[str, Any]) -> list[str]:
    if task in ("image.generate", "image.edit"):
        return [f"image.{_IMAGE_SUFFIX.get(str(effective_input.get('outputFormat')), 'webp')}"]
    if task in ("video.generate", "video.combine", "video.resize"):
        return ["video.mp4"]
    if task in ("audio.speak", "ace.step.create", "moss.sound.effect"):
        return ["audio.ogg"]
    if task == "audio.annotation.reference":
        return ["annotation.json"]
    if task == "trellis.generate":
        return ["model.glb"]
    raise ValueError(f"unknown task {task!r}")

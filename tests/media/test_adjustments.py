"""resolve_input: the effective input and the list of every change made to what was asked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from backend.http.errors import BadRequest
from backend.media.adjustments import (
    IMAGE_SIZES,
    VIDEO_SIZES,
    ResolvedInput,
    nearest_ltx_frame_count,
    resolve_input,
)
from backend.media.tasks import MAX_IMAGE_PIXELS, MAX_VIDEO_PIXELS, MediaTask
from backend.media.validation import parse_media_job
from tests.media.test_spec_conformance import SCHEMAS, VARIANTS, request_strategy

URL = "https://cdn.example.com/a.webp"
ADJUSTMENT_SCHEMA = Draft202012Validator(SCHEMAS["MediaInputAdjustment"])


def resolve(task: str, input_: dict[str, Any]) -> ResolvedInput:
    body = {"task": task, "input": input_}
    return resolve_input(parse_media_job(body), body)


def adjustment(resolved: ResolvedInput, field: str) -> dict[str, Any]:
    [found] = [item for item in resolved.adjustments if item["field"] == field]
    return found


def fields(resolved: ResolvedInput) -> list[str]:
    return [item["field"] for item in resolved.adjustments]


# --- images --------------------------------------------------------------------------------------


def test_image_defaults_and_derived_size_are_listed() -> None:
    resolved = resolve("image.generate", {"prompt": "a cat"})
    assert resolved.effective_input == {
        "prompt": "a cat",
        "outputFormat": "webp",
        "highDetail": False,
        "upscale": False,
        "aspectRatio": "1:1",
        "width": 1024,
        "height": 1024,
    }
    assert adjustment(resolved, "aspectRatio") == {
        "field": "aspectRatio",
        "requested": None,
        "effective": "1:1",
        "reason": "not given; the default applies",
    }
    assert adjustment(resolved, "width")["reason"] == "derived from aspectRatio 1:1"
    assert sorted(fields(resolved)) == sorted(
        ["aspectRatio", "width", "height", "outputFormat", "highDetail", "upscale"]
    )


@pytest.mark.parametrize("ratio", list(IMAGE_SIZES))
def test_aspect_ratio_sizes_fit_the_ratio_and_the_rules(ratio: str) -> None:
    width, height = IMAGE_SIZES[ratio]
    across, down = (int(part) for part in ratio.split(":"))
    assert width % 32 == 0
    assert height % 32 == 0
    assert width * height <= MAX_IMAGE_PIXELS
    assert abs(width / height - across / down) < 0.05
    video_width, video_height = VIDEO_SIZES[ratio]
    assert video_width % 32 == 0
    assert video_height % 32 == 0
    assert abs(video_width / video_height - across / down) < 0.06
    assert video_width * video_height <= MAX_VIDEO_PIXELS


def test_explicit_size_wins_over_a_different_aspect_ratio() -> None:
    resolved = resolve(
        "image.generate", {"prompt": "x", "aspectRatio": "16:9", "width": 512, "height": 512}
    )
    assert "aspectRatio" not in resolved.effective_input
    assert adjustment(resolved, "aspectRatio") == {
        "field": "aspectRatio",
        "requested": "16:9",
        "effective": None,
        "reason": "explicit width and height (512x512) take precedence over aspectRatio",
    }


def test_explicit_size_matching_the_aspect_ratio_changes_nothing() -> None:
    resolved = resolve(
        "image.generate", {"prompt": "x", "aspectRatio": "16:9", "width": 1344, "height": 768}
    )
    assert "aspectRatio" not in fields(resolved)
    assert resolved.effective_input["aspectRatio"] == "16:9"


def test_legacy_reference_urls_are_merged_into_reference_images() -> None:
    resolved = resolve(
        "image.edit",
        {
            "prompt": "x",
            "sourceImageUrl": URL,
            "referenceImages": [{"dataBase64": "aGk=", "mimeType": "image/jpg"}],
            "referenceImageUrls": [URL],
        },
    )
    assert resolved.effective_input["referenceImages"] == [
        {"dataBase64": "aGk=", "mimeType": "image/jpeg"},
        URL,
    ]
    assert "referenceImageUrls" not in resolved.effective_input
    assert adjustment(resolved, "referenceImageUrls")["requested"] == [URL]
    assert adjustment(resolved, "referenceImages[0].mimeType") == {
        "field": "referenceImages[0].mimeType",
        "requested": "image/jpg",
        "effective": "image/jpeg",
        "reason": "normalised 'image/jpg' to 'image/jpeg'",
    }


def test_dot_output_format_is_listed_as_a_normalisation() -> None:
    resolved = resolve("image.generate", {"prompt": "x", "outputFormat": ".png"})
    assert resolved.effective_input["outputFormat"] == "png"
    assert adjustment(resolved, "outputFormat")["requested"] == ".png"


@pytest.mark.parametrize(
    ("task", "input_"),
    [
        ("image.generate", {"prompt": "x", "outputFormat": "png"}),
        (
            "image.edit",
            {"prompt": "x", "sourceImage": {"dataBase64": "aGk=", "mimeType": "image/png"}},
        ),
    ],
)
def test_canonical_spellings_are_not_listed(task: str, input_: dict[str, Any]) -> None:
    assert not [
        item for item in resolve(task, input_).adjustments if "normalised" in item["reason"]
    ]


# --- video ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "fps", "frames"),
    [(10, 25, 249), (8, 30, 241), (5, 24, 121), (5, 25, 129), (3, 3, 9), (5, 50, 249)],
)
def test_duration_seconds_become_ltx_frames(seconds: int, fps: int, frames: int) -> None:
    resolved = resolve(
        "video.generate", {"prompt": "x", "durationSeconds": seconds, "sampledFps": fps}
    )
    assert resolved.effective_input["durationFrames"] == frames
    assert "durationSeconds" not in resolved.effective_input
    assert adjustment(resolved, "durationSeconds")["effective"] is None
    assert adjustment(resolved, "durationFrames")["effective"] == frames


def test_video_defaults() -> None:
    resolved = resolve("video.generate", {"prompt": "x"})
    effective = resolved.effective_input
    assert (effective["durationFrames"], effective["sampledFps"]) == (121, 30)
    assert (effective["aspectRatio"], effective["width"], effective["height"]) == (
        "16:9",
        1280,
        704,
    )
    assert (effective["interpolationFps"], effective["extremeQuality"]) == (60, False)


def test_legacy_start_frame_alias_is_renamed() -> None:
    inline = {"dataBase64": "x" * 5000, "mimeType": "image/webp"}
    resolved = resolve("video.generate", {"prompt": "x", "sourceImage": inline})
    assert resolved.effective_input["startFrameImage"] == inline
    assert "sourceImage" not in resolved.effective_input
    assert adjustment(resolved, "sourceImage") == {
        "field": "sourceImage",
        "requested": {"dataBase64": "<5000 base64 characters>", "mimeType": "image/webp"},
        "effective": None,
        "reason": "legacy alias: used as startFrameImage",
    }


def test_first_overlap_frame_becomes_frame_zero() -> None:
    frames = [URL, "https://cdn.example.com/b.webp"]
    resolved = resolve(
        "video.generate",
        {"prompt": "x", "overlapFrameImageUrls": frames, "referenceAudioUrl": URL},
    )
    assert resolved.effective_input["startFrameImageUrl"] == URL
    assert resolved.effective_input["overlapFrameImageUrls"] == frames
    assert adjustment(resolved, "startFrameImageUrl")["reason"].startswith("no start frame given")


def test_a_given_start_frame_is_kept_with_overlap_frames() -> None:
    resolved = resolve(
        "video.generate",
        {"prompt": "x", "startFrameImage": URL, "overlapFrameImages": [URL]},
    )
    assert "startFrameImageUrl" not in resolved.effective_input
    assert "startFrameImage" not in fields(resolved)


def test_resize_assumes_eight_seconds_until_probed() -> None:
    resolved = resolve("video.resize", {"sourceVideoUrl": URL, "width": 640, "height": 360})
    assert resolved.effective_input["sourceDurationSeconds"] == 8
    assert adjustment(resolved, "frameRate")["effective"] == 60


@given(st.integers(1, 10_000))
def test_nearest_ltx_frame_count(frames: int) -> None:
    nearest = nearest_ltx_frame_count(frames)
    assert nearest % 8 == 1
    assert abs(nearest - frames) <= 4
    if abs(nearest - frames) == 4:
        assert nearest > frames


# --- audio, music, 3D ----------------------------------------------------------------------------


def test_gemini_gets_its_default_voice_and_drops_omnivoice_settings() -> None:
    resolved = resolve(
        "audio.speak", {"text": "hi", "provider": "gemini", "quality": "96k", "language": "en"}
    )
    assert resolved.effective_input == {"text": "hi", "provider": "gemini", "voiceName": "Kore"}
    assert adjustment(resolved, "quality") == {
        "field": "quality",
        "requested": "96k",
        "effective": None,
        "reason": "an OmniVoice setting; provider gemini does not apply it",
    }
    assert "mode" not in fields(resolved)


def test_omnivoice_defaults() -> None:
    resolved = resolve("audio.speak", {"text": "hi"})
    assert resolved.effective_input == {
        "text": "hi",
        "provider": "omnivoice",
        "mode": "voice_design",
        "quality": "128k",
    }


@pytest.mark.parametrize(
    ("extra", "model"), [({"transcript": "hello"}, "distil-large-v3"), ({}, "large-v3")]
)
def test_transcription_model_default_follows_the_transcript(
    extra: dict[str, Any], model: str
) -> None:
    resolved = resolve("audio.annotation.reference", {"sourceAudioUrl": URL, **extra})
    assert resolved.effective_input["transcriptionModel"] == model
    assert adjustment(resolved, "transcriptionModel")["effective"] == model


@pytest.mark.parametrize(
    ("preset", "seconds", "quality"), [("default", 60, "128k"), ("high_quality", 108, "192k")]
)
def test_ace_step_preset_defaults(preset: str, seconds: int, quality: str) -> None:
    resolved = resolve("ace.step.create", {"tags": "pop", "lyrics": "la", "qualityPreset": preset})
    assert resolved.effective_input["durationSeconds"] == seconds
    assert resolved.effective_input["quality"] == quality


def test_explicit_fields_override_ace_step_presets() -> None:
    resolved = resolve(
        "ace.step.create",
        {"tags": "pop", "lyrics": "la", "qualityPreset": "high_quality", "durationSeconds": 30},
    )
    assert resolved.effective_input["durationSeconds"] == 30
    assert "durationSeconds" not in fields(resolved)


def test_trellis_and_moss_defaults() -> None:
    assert resolve("trellis.generate", {"sourceImageUrl": URL}).effective_input == {
        "sourceImageUrl": URL,
        "qualityPreset": "balanced",
    }
    assert resolve("moss.sound.effect", {"prompt": "rain"}).effective_input == {
        "prompt": "rain",
        "durationSeconds": 10,
        "quality": "128k",
    }


# --- properties over schema-shaped random requests -----------------------------------------------


def _accepted(body: dict[str, Any]) -> MediaTask | None:
    try:
        return parse_media_job(body)
    except BadRequest:
        return None


@pytest.mark.parametrize("task", sorted(VARIANTS))
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.filter_too_much,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_effective_input_is_valid_complete_and_stable(task: str, data: st.DataObject) -> None:
    body = data.draw(request_strategy(task))
    parsed = _accepted(body)
    assume(parsed is not None)
    assert parsed is not None
    resolved = resolve_input(parsed, body)

    assert resolve_input(parsed, body) == resolved
    json.dumps(resolved.effective_input)
    for item in resolved.adjustments:
        ADJUSTMENT_SCHEMA.validate(item)
        assert item["requested"] != item["effective"]

    again = resolve(task, resolved.effective_input)
    assert again.adjustments == []
    assert again.effective_input == resolved.effective_input

"""The task models: wire names, defaults, normalisations, prose rules and their error messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from backend.http.errors import BadRequest
from backend.media.tasks import (
    MAX_IMAGE_PIXELS,
    TASK_INPUT_MODELS,
    TASK_MODELS,
    AceStepCreateInput,
    AudioAnnotationReferenceInput,
    AudioSpeakInput,
    ImageEditTask,
    ImageGenerateInput,
    ImageGenerateTask,
    MediaInlineImageSource,
    MediaTask,
    MossSoundEffectInput,
    TrellisGenerateInput,
    VideoCombineInput,
    VideoGenerateInput,
    VideoResizeInput,
    voice_tags,
)
from backend.media.validation import parse_media_job

URL = "https://cdn.example.com/a.webp"
AUDIO_URL = "https://cdn.example.com/a.wav"


def errors_of(body: object) -> list[dict[str, str]]:
    with pytest.raises(BadRequest) as caught:
        parse_media_job(body)
    errors: list[dict[str, str]] = caught.value.details["errors"]
    first = errors[0]
    assert caught.value.message.startswith(f"{first['field']}: {first['message']}")
    assert "pydantic" not in json.dumps(caught.value.details).lower()
    assert "pydantic" not in caught.value.message.lower()
    return errors


def first_error(task: str, input_: dict[str, Any]) -> tuple[str, str]:
    error = errors_of({"task": task, "input": input_})[0]
    return error["field"], error["rule"]


# --- wire names and Python names -----------------------------------------------------------------


def test_wire_names_are_camel_case_and_attributes_snake_case() -> None:
    task = parse_media_job(
        {
            "task": "image.generate",
            "input": {"prompt": "a cat", "outputFormat": "png", "referenceImageUrls": [URL]},
            "idempotencyKey": "k-1",
            "completionCallbackUrl": "https://hooks.example.com/done",
        }
    )
    assert isinstance(task, ImageGenerateTask)
    assert task.input.output_format == "png"
    assert task.input.reference_image_urls == [URL]
    assert task.idempotency_key == "k-1"
    assert task.completion_callback_url == "https://hooks.example.com/done"
    dumped = task.model_dump(by_alias=True, exclude_none=True)
    assert set(dumped) == {"task", "input", "idempotencyKey", "completionCallbackUrl"}
    assert "referenceImageUrls" in dumped["input"]


def test_python_code_may_build_models_by_attribute_name() -> None:
    model = ImageGenerateInput(prompt="a cat", output_format="jpg", high_detail=True)
    assert model.output_format == "jpg"
    assert model.model_dump(by_alias=True)["highDetail"] is True


def test_snake_case_on_the_wire_is_refused_with_a_suggestion() -> None:
    errors = errors_of(
        {"task": "image.generate", "input": {"prompt": "a cat", "output_format": "png"}}
    )
    assert errors == [
        {
            "field": "input.output_format",
            "rule": "unknown_field",
            "message": "is not a known field; did you mean outputFormat?",
        }
    ]


def test_media_task_is_a_union_discriminated_on_task() -> None:
    adapter: TypeAdapter[MediaTask] = TypeAdapter(MediaTask)
    parsed = adapter.validate_python(
        {"task": "image.edit", "input": {"prompt": "x", "sourceImageUrl": URL}}
    )
    assert isinstance(parsed, ImageEditTask)


def test_task_maps_cover_every_task() -> None:
    assert list(TASK_MODELS) == list(TASK_INPUT_MODELS)
    for name, model in TASK_MODELS.items():
        assert model.model_fields["task"].annotation.__args__ == (name,)  # type: ignore[union-attr]
        assert model.model_fields["input"].annotation is TASK_INPUT_MODELS[name]


# --- defaults and normalisations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "input_", "expected"),
    [
        (
            ImageGenerateInput,
            {"prompt": "x"},
            {"output_format": "webp", "high_detail": False, "upscale": False},
        ),
        (
            VideoGenerateInput,
            {"prompt": "x"},
            {"sampled_fps": 30, "interpolation_fps": 60, "extreme_quality": False},
        ),
        (VideoCombineInput, {"videoUrls": [URL, URL]}, {"overlap_frames": 1, "frame_rate": 60}),
        (
            VideoResizeInput,
            {"sourceVideoUrl": URL, "width": 2, "height": 2},
            {"frame_rate": 60, "source_duration_seconds": None},
        ),
        (AudioSpeakInput, {"text": "x"}, {"provider": "omnivoice", "mode": "voice_design"}),
        (
            AudioAnnotationReferenceInput,
            {"sourceAudioUrl": AUDIO_URL},
            {"language": "en", "device": "auto", "transcription_model": None},
        ),
        (AceStepCreateInput, {"tags": "pop", "lyrics": "la"}, {"quality_preset": "default"}),
        (MossSoundEffectInput, {"prompt": "x"}, {"duration_seconds": 10, "quality": "128k"}),
        (TrellisGenerateInput, {"sourceImageUrl": URL}, {"quality_preset": "balanced"}),
    ],
)
def test_defaults(model: Any, input_: dict[str, Any], expected: dict[str, Any]) -> None:
    parsed = model.model_validate(input_)
    assert {name: getattr(parsed, name) for name in expected} == expected
    assert not parsed.model_fields_set & expected.keys()


@pytest.mark.parametrize("spelling", [".webp", ".png", ".jpg", "webp", "png", "jpg"])
def test_output_format_accepts_dot_aliases(spelling: str) -> None:
    model = ImageGenerateInput.model_validate({"prompt": "x", "outputFormat": spelling})
    assert model.output_format == spelling.lstrip(".")


@pytest.mark.parametrize("spelling", ["PNG", "..png", "jpeg", ".gif", "png "])
def test_output_format_refuses_other_spellings(spelling: str) -> None:
    assert first_error("image.generate", {"prompt": "x", "outputFormat": spelling}) == (
        "input.outputFormat",
        "enum",
    )


def test_image_jpg_mime_type_is_normalised_to_image_jpeg() -> None:
    source = MediaInlineImageSource.model_validate({"dataBase64": "aGk=", "mimeType": "image/jpg"})
    assert source.mime_type == "image/jpeg"


def test_integral_floats_count_as_integers_like_json_schema() -> None:
    task = parse_media_job(
        {"task": "image.generate", "input": {"prompt": "x", "width": 1024.0, "height": 512}}
    )
    assert isinstance(task, ImageGenerateTask)
    assert task.input.width == 1024
    assert type(task.input.width) is int


def test_models_are_strict_about_json_types() -> None:
    for bad in ({"width": "1024", "height": 512}, {"width": True, "height": 512}):
        field, rule = first_error("image.generate", {"prompt": "x", **bad})
        assert (field, rule) == ("input.width", "type")
    assert first_error("image.generate", {"prompt": "x", "highDetail": "true"}) == (
        "input.highDetail",
        "type",
    )


def test_null_is_refused_rather_than_read_as_absent() -> None:
    errors = errors_of({"task": "image.generate", "input": {"prompt": "x", "width": None}})
    assert errors[0] == {
        "field": "input.width",
        "rule": "not_null",
        "message": "must not be null; omit the field to use its default",
    }
    assert errors_of({"task": "image.generate", "input": None})[0]["message"] == (
        "must not be null"
    )


# --- prose rules ---------------------------------------------------------------------------------

IMAGE_INLINE = {"dataBase64": "aGk=", "mimeType": "image/png"}


@pytest.mark.parametrize(
    ("task", "input_", "field", "rule"),
    [
        ("image.generate", {"prompt": "x", "width": 1024}, "input.height", "width_height_together"),
        ("image.generate", {"prompt": "x", "height": 1024}, "input.width", "width_height_together"),
        (
            "image.generate",
            {"prompt": "x", "width": 2048, "height": 2080},
            "input.width",
            "max_pixels",
        ),
        (
            "image.generate",
            {"prompt": "x", "referenceImageUrls": [URL] * 3, "referenceImages": [URL] * 3},
            "input.referenceImages",
            "max_reference_images",
        ),
        (
            "image.generate",
            {"prompt": "x", "referenceImages": [URL] * 6},
            "input.referenceImages",
            "maxItems",
        ),
        ("image.edit", {"prompt": "x"}, "input.sourceImageUrl", "exactly_one_of"),
        (
            "image.edit",
            {"prompt": "x", "sourceImageUrl": URL, "sourceImage": URL},
            "input.sourceImage",
            "exactly_one_of",
        ),
        (
            "video.generate",
            {"prompt": "x", "startFrameImageUrl": URL, "sourceImage": URL},
            "input.sourceImage",
            "at_most_one_of",
        ),
        (
            "video.generate",
            {"prompt": "x", "overlapFrameImageUrls": [URL], "overlapFrameImages": [URL]},
            "input.overlapFrameImages",
            "at_most_one_of",
        ),
        (
            "video.generate",
            {"prompt": "x", "finalFrameImageUrl": URL, "finalFrameImage": IMAGE_INLINE},
            "input.finalFrameImage",
            "at_most_one_of",
        ),
        (
            "video.generate",
            {"prompt": "x", "referenceAudioUrl": AUDIO_URL},
            "input.referenceAudioUrl",
            "reference_audio_needs_frames",
        ),
        (
            "video.generate",
            {"prompt": "x", "referenceAudio": AUDIO_URL, "overlapFrameImages": []},
            "input.referenceAudio",
            "reference_audio_needs_frames",
        ),
        (
            "video.generate",
            {"prompt": "x", "durationFrames": 250},
            "input.durationFrames",
            "ltx_frame_count",
        ),
        (
            "video.generate",
            {"prompt": "x", "durationFrames": 258},
            "input.durationFrames",
            "maximum",
        ),
        (
            "video.generate",
            {"prompt": "x", "durationSeconds": 9},
            "input.durationSeconds",
            "ltx_frame_budget",
        ),
        (
            "video.generate",
            {"prompt": "x", "durationSeconds": 3, "sampledFps": 2},
            "input.durationSeconds",
            "ltx_frame_budget",
        ),
        (
            "video.generate",
            {"prompt": "x", "durationSeconds": 4, "durationFrames": 121},
            "input.durationSeconds",
            "at_most_one_of",
        ),
        (
            "video.generate",
            {"prompt": "x", "interpolationFps": 29},
            "input.interpolationFps",
            "interpolation_fps",
        ),
        (
            "video.generate",
            {"prompt": "x", "interpolationFps": 61},
            "input.interpolationFps",
            "interpolation_fps",
        ),
        (
            "video.generate",
            {"prompt": "x", "width": 3840, "height": 2208},
            "input.width",
            "max_pixels",
        ),
        ("video.combine", {"videoUrls": [URL]}, "input.videoUrls", "minItems"),
        ("video.combine", {"videoUrls": [URL] * 25}, "input.videoUrls", "maxItems"),
        (
            "video.resize",
            {"sourceVideoUrl": URL, "width": 7682, "height": 2},
            "input.width",
            "maximum",
        ),
        (
            "video.resize",
            {"sourceVideoUrl": URL, "width": 1921, "height": 2},
            "input.width",
            "multipleOf",
        ),
        ("audio.speak", {"text": "x", "voiceName": "Puck"}, "input.voiceName", "provider_field"),
        (
            "audio.speak",
            {"text": "x", "provider": "gemini", "voiceDescription": "female"},
            "input.voiceDescription",
            "provider_field",
        ),
        (
            "audio.speak",
            {"text": "x", "provider": "gemini", "mode": "voice_clone"},
            "input.mode",
            "provider_mode",
        ),
        (
            "audio.speak",
            {"text": "x", "mode": "voice_clone"},
            "input.referenceAudioUrl",
            "exactly_one_of",
        ),
        (
            "audio.speak",
            {"text": "x", "referenceAudioUrl": AUDIO_URL},
            "input.referenceAudioUrl",
            "voice_clone_field",
        ),
        (
            "audio.speak",
            {"text": "x", "mode": "voice_clone", "referenceAudio": {"mimeType": "audio/wav"}},
            "input.referenceAudio.url",
            "exactly_one_of",
        ),
        (
            "audio.speak",
            {"text": "x", "voiceDescription": "female, purple"},
            "input.voiceDescription",
            "voice_tags",
        ),
        ("audio.annotation.reference", {}, "input.sourceAudioUrl", "exactly_one_of"),
        (
            "ace.step.create",
            {"tags": "x", "lyrics": "y", "keyScale": "H minor"},
            "input.keyScale",
            "pattern",
        ),
        (
            "ace.step.create",
            {"tags": "x", "lyrics": "y", "keyScale": "c minor"},
            "input.keyScale",
            "pattern",
        ),
        (
            "ace.step.create",
            {"tags": "x", "lyrics": "y", "durationSeconds": 241},
            "input.durationSeconds",
            "maximum",
        ),
        (
            "trellis.generate",
            {"sourceImageUrl": URL, "textureResolution": 1536, "textureSize": 1024},
            "input.textureResolution",
            "texture_size_2048",
        ),
        (
            "trellis.generate",
            {"sourceImageUrl": URL, "refinerResolution": 1536},
            "input.refinerResolution",
            "texture_size_2048",
        ),
        (
            "trellis.generate",
            {"sourceImageUrl": URL, "sourceImage": IMAGE_INLINE},
            "input.sourceImage",
            "exactly_one_of",
        ),
        ("trellis.generate", {"sourceImage": URL}, "input.sourceImage", "type"),
    ],
)
def test_rule_is_refused_naming_field_and_rule(
    task: str, input_: dict[str, Any], field: str, rule: str
) -> None:
    assert first_error(task, input_) == (field, rule)


@pytest.mark.parametrize(
    ("task", "input_"),
    [
        ("image.generate", {"prompt": "x", "width": 2048, "height": 2048}),
        (
            "image.generate",
            {"prompt": "x", "referenceImageUrls": [URL] * 2, "referenceImages": [URL] * 3},
        ),
        ("image.edit", {"prompt": "x", "sourceImage": IMAGE_INLINE}),
        ("video.generate", {"prompt": "x", "durationFrames": 257}),
        ("video.generate", {"prompt": "x", "durationSeconds": 8}),
        ("video.generate", {"prompt": "x", "durationSeconds": 10, "sampledFps": 25}),
        ("video.generate", {"prompt": "x", "interpolationFps": 0}),
        ("video.generate", {"prompt": "x", "interpolationFps": 30}),
        ("video.generate", {"prompt": "x", "width": 3840, "height": 2176}),
        (
            "video.generate",
            {"prompt": "x", "overlapFrameImages": [IMAGE_INLINE], "referenceAudio": AUDIO_URL},
        ),
        (
            "video.generate",
            {
                "prompt": "x",
                "sourceImageUrl": URL,
                "referenceAudioUrl": AUDIO_URL,
                "finalFrameImage": URL,
            },
        ),
        ("video.combine", {"videoUrls": [URL] * 24, "overlapFrames": 0, "frameRate": 120}),
        (
            "video.resize",
            {"sourceVideoUrl": URL, "width": 7680, "height": 4320, "sourceDurationSeconds": 0.1},
        ),
        (
            "audio.speak",
            {"text": "x", "provider": "gemini", "voiceName": "Puck", "instructions": "calm"},
        ),
        (
            "audio.speak",
            {
                "text": "x",
                "mode": "voice_clone",
                "referenceAudio": {"dataBase64": "UklGRg==", "mimeType": "audio/x-m4a"},
                "referenceTranscript": "hello",
                "voiceDescription": "Female,  British Accent",
            },
        ),
        (
            "audio.annotation.reference",
            {"sourceAudio": {"url": AUDIO_URL, "mimeType": "audio/flac"}},
        ),
        ("ace.step.create", {"tags": "x", "lyrics": "y", "keyScale": "C# minor"}),
        (
            "ace.step.create",
            {"tags": "x", "lyrics": "y", "keyScale": "Bb major", "timeSignature": "7"},
        ),
        (
            "trellis.generate",
            {"sourceImageUrl": URL, "textureResolution": 1536, "textureSize": 2048},
        ),
    ],
)
def test_valid_input_is_accepted(task: str, input_: dict[str, Any]) -> None:
    parsed = parse_media_job({"task": task, "input": input_})
    assert parsed.task == task


def test_four_megapixels_is_2048_squared() -> None:
    assert MAX_IMAGE_PIXELS == 2048 * 2048


def test_voice_tags_are_trimmed_and_lower_cased() -> None:
    assert voice_tags(" Female, british accent ,") == ["female", "british accent"]


def test_models_refuse_unknown_fields_even_in_python() -> None:
    with pytest.raises(ValidationError):
        ImageGenerateInput.model_validate({"prompt": "x", "steps": 30})


# --- parse_media_job's messages ------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "image.generate", 3, None])
def test_body_must_be_an_object(body: object) -> None:
    assert errors_of(body) == [
        {"field": "(body)", "rule": "type", "message": "the request body must be a JSON object"}
    ]


def test_missing_task_lists_the_valid_ones() -> None:
    [error] = errors_of({"input": {"prompt": "x"}})
    assert (error["field"], error["rule"]) == ("task", "required")
    assert all(name in error["message"] for name in TASK_MODELS)


def test_unknown_task_lists_the_valid_ones() -> None:
    [error] = errors_of({"task": "image.upscale", "input": {}})
    assert (error["field"], error["rule"]) == ("task", "enum")
    assert error["message"].startswith('unknown task "image.upscale"; valid tasks: image.generate')


def test_task_of_the_wrong_type() -> None:
    [error] = errors_of({"task": ["image.generate"], "input": {}})
    assert (error["field"], error["rule"]) == ("task", "type")


def test_parameters_outside_input_are_pointed_inside() -> None:
    errors = errors_of({"task": "image.generate", "prompt": "a cat"})
    assert {"field": "input", "rule": "required", "message": "is required"} in errors
    assert {
        "field": "prompt",
        "rule": "unknown_field",
        "message": "is not an envelope field; image.generate parameters go inside input "
        "(input.prompt)",
    } in errors


def test_unknown_field_lists_the_allowed_ones() -> None:
    [error] = errors_of(
        {"task": "image.edit", "input": {"prompt": "x", "sourceImage": {"url": URL, "zz": 1}}}
    )
    assert error == {
        "field": "input.sourceImage.zz",
        "rule": "unknown_field",
        "message": "is not a known field; allowed: url, dataBase64, mimeType",
    }


def test_nested_paths_use_wire_names_and_indexes() -> None:
    errors = errors_of(
        {
            "task": "image.generate",
            "input": {
                "prompt": "x",
                "referenceImages": [URL, IMAGE_INLINE, {"dataBase64": 5}, 7, "ftp://x/y.png"],
            },
        }
    )
    assert [(e["field"], e["rule"]) for e in errors] == [
        ("input.referenceImages[2].dataBase64", "type"),
        ("input.referenceImages[3]", "type"),
        ("input.referenceImages[4]", "uri"),
    ]
    assert errors[0]["message"] == "must be a string, got the number 5"
    assert errors[1]["message"] == "must be an image URL string or an inline image object"
    assert errors[2]["message"] == "must be an absolute http(s) URL"


def test_all_errors_are_reported_with_the_first_in_the_message() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_media_job(
            {
                "task": "image.generate",
                "input": {"prompt": "", "width": 33, "outputFormat": "gif"},
            }
        )
    error = caught.value
    assert error.status == 400
    assert error.code == "VALIDATION_ERROR"
    assert error.message == "input.prompt: must be at least 1 character, got 0 (and 2 more)"
    assert [e["message"] for e in error.details["errors"]] == [
        "must be at least 1 character, got 0",
        "must be one of 'webp', 'png' or 'jpg', got \"gif\"",
        "must be a multiple of 32, got 33",
    ]


def test_bound_messages_show_the_limit_and_the_value() -> None:
    [error] = errors_of({"task": "video.generate", "input": {"prompt": "x", "seed": 0}})
    assert error == {
        "field": "input.seed",
        "rule": "minimum",
        "message": "must be at least 1, got 0",
    }
    long_prompt = "x" * 4001
    [error] = errors_of({"task": "image.generate", "input": {"prompt": long_prompt}})
    assert error["message"] == "must be at most 4000 characters, got 4001"


def test_durations_message_says_what_would_be_valid() -> None:
    [error] = errors_of({"task": "video.generate", "input": {"prompt": "x", "durationFrames": 250}})
    assert "nearest valid counts are 249 and 257" in error["message"]
    [error] = errors_of({"task": "video.generate", "input": {"prompt": "x", "durationSeconds": 20}})
    assert error["message"].startswith("20 s at 30 fps is 600 sampled frames")


# --- the published JSON Schema -------------------------------------------------------------------


def _walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *(item for value in node.values() for item in _walk(value))]
    if isinstance(node, list):
        return [item for value in node for item in _walk(value)]
    return []


@pytest.mark.parametrize("task", list(TASK_MODELS))
def test_tool_schema_is_clean(task: str) -> None:
    schema = TASK_INPUT_MODELS[task].model_json_schema(by_alias=True)
    nodes = _walk(schema)
    assert {"type": "null"} not in nodes
    for node in nodes:
        properties = node.get("properties", {})
        assert all("title" not in prop for prop in properties.values() if isinstance(prop, dict))
        assert node.get("default", "absent") is not None
    json.dumps(schema)

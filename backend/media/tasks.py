"""One pydantic model per task of `MediaJobRequest` (API v0.7.0): the single source of truth.

The REST layer validates with them (`validation.parse_media_job`), the MCP tools publish their JSON
Schemas, and input adjustments, pricing and the engines read them. Attributes are snake_case; wire
names are exactly the spec's camelCase.

Each request is an envelope `{task, input, idempotencyKey?, completionCallbackUrl?}`; `input` is the
task's own model (`ImageGenerateInput`, ...). Rules the spec writes only in prose are checked in
`model_validator`s and raise `PydanticCustomError`s whose type is the rule's name and whose context
names the offending field, so `validation` can report `input.height` rather than `input`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self, cast
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

# "4MP" counted the way image APIs bill megapixels: 1 MP = 1024 x 1024, so 2048 x 2048 is the cap.
MEGAPIXEL = 1024 * 1024
MAX_IMAGE_PIXELS = 4 * MEGAPIXEL
MAX_REFERENCE_IMAGES = 5
# The spec bounds no video canvas; this is 4K UHD padded to multiples of 32, the largest
# resolution tier the price table has.
MAX_VIDEO_PIXELS = 3840 * 2176
LTX_MIN_FRAMES = 9
LTX_MAX_FRAMES = 257
DEFAULT_SAMPLED_FPS = 30
MAX_SEED = 2_147_483_647
SUPPORTED_VOICE_TAGS = (
    "female",
    "male",
    "child",
    "teenager",
    "young adult",
    "middle-aged",
    "elderly",
    "very low pitch",
    "low pitch",
    "moderate pitch",
    "high pitch",
    "very high pitch",
    "whisper",
    "american accent",
    "british accent",
    "australian accent",
    "canadian accent",
    "indian accent",
    "chinese accent",
    "korean accent",
    "japanese accent",
    "portuguese accent",
    "russian accent",
)
# Loc entries pydantic adds for the branch of a tagged union; they are not wire names.
UNION_BRANCH_TAGS = frozenset({"url-string", "inline-object"})


def rule_error(rule: str, field: str, message: str) -> PydanticCustomError:
    """A prose rule's failure: `rule` becomes the error type, `field` the wire name it is about."""
    return PydanticCustomError(rule, message, {"field": field})


def _drop_null_branches(schema: dict[str, Any]) -> None:
    # Optional fields are "absent or typed" on the wire (null is refused, as in the spec), so the
    # published schema drops pydantic's `anyOf [T, null]` and `default: null`; titles derived from
    # attribute names ("Datab64") only add noise to a tool schema.
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        branches = prop.get("anyOf")
        if branches and {"type": "null"} in branches:
            typed = [branch for branch in branches if branch != {"type": "null"}]
            del prop["anyOf"]
            if len(typed) == 1:
                prop.update(typed[0])
            else:
                prop["anyOf"] = typed
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class WireModel(BaseModel):
    """Base of every request model: strict JSON types, camelCase wire names, no unknown fields."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        # JSON Schema types: no "32" for 32, no 1 for true.
        strict=True,
        json_schema_extra=_drop_null_branches,
    )

    _attributes_by_key: ClassVar[dict[str, str]]

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key, value in data.items():
                if value is None:
                    required = cls.model_fields.get(cls.attributes_by_key().get(key, ""))
                    hint = (
                        ""
                        if required is not None and required.is_required()
                        else "; omit the field to use its default"
                    )
                    raise rule_error("not_null", str(key), f"must not be null{hint}")
        return data

    @classmethod
    def attributes_by_key(cls) -> dict[str, str]:
        """Wire name or attribute name -> attribute name (built once per class: every request
        is checked against it)."""
        cached: dict[str, str] | None = cls.__dict__.get("_attributes_by_key")
        if cached is None:
            cached = {}
            for name, info in cls.model_fields.items():
                cached[name] = name
                cached[info.alias or name] = name
            cls._attributes_by_key = cached
        return cached

    def is_given(self, name: str) -> bool:
        """Whether the client sent this field (attribute name), as opposed to a default."""
        return name in self.model_fields_set

    @classmethod
    def wire_name(cls, name: str) -> str:
        return cls.model_fields[name].alias or name


def _check_http_url(value: str) -> str:
    # The gateway fetches every URL it is given (and posts to the callback URL), so a URI it
    # cannot reach over HTTP(S) is refused here rather than failing the job later.
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise PydanticCustomError("uri", "must be an absolute http(s) URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("uri", "must be an absolute http(s) URL")
    if any(char.isspace() or ord(char) < 0x20 for char in value):
        raise PydanticCustomError("uri", "must be an absolute http(s) URL without spaces")
    return value


HttpUrlString = Annotated[
    str, AfterValidator(_check_http_url), WithJsonSchema({"type": "string", "format": "uri"})
]


def _strip_leading_dot(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("."):
        return value[1:]
    return value


def _normalise_jpg_mime_type(value: Any) -> Any:
    return "image/jpeg" if value == "image/jpg" else value


MediaAspectRatio = Literal["1:1", "16:9", "9:16", "9:7", "7:9"]
MediaImageOutputFormat = Annotated[
    Literal["webp", "png", "jpg"], BeforeValidator(_strip_leading_dot)
]
AudioQuality = Literal["96k", "128k", "192k"]
Seed = Annotated[int, Field(ge=1, le=MAX_SEED)]

_ASPECT_RATIO_DESCRIPTION = "Output aspect ratio. Ignored when explicit width and height are given."
_OUTPUT_FORMAT_DESCRIPTION = (
    "Optional output image format. Defaults to webp when omitted. Dot-prefixed aliases are also "
    "accepted at runtime (.webp, .png, .jpg)."
)
_HIGH_DETAIL_DESCRIPTION = (
    "Optional higher-detail image mode. Defaults to false. Increases inference steps by 50% and "
    "billed cost by 50%."
)
_REFERENCE_IMAGE_URLS_DESCRIPTION = (
    "URL-only legacy alias for reference images. Counts toward the same limit of 5 as "
    "referenceImages."
)
_REFERENCE_IMAGES_DESCRIPTION = (
    "Preferred reference image input (URL strings or inline objects). At most 5 reference images "
    "in total across referenceImages and referenceImageUrls."
)
_QUALITY_DESCRIPTION = "Output Opus quality preset."


def _exactly_one(model: WireModel, first: str, second: str) -> None:
    given = [name for name in (first, second) if getattr(model, name) is not None]
    if len(given) != 1:
        a, b = model.wire_name(first), model.wire_name(second)
        raise rule_error("exactly_one_of", a if not given else b, f"give exactly one of {a} or {b}")


def _at_most_one(model: WireModel, *names: str) -> str | None:
    given = [name for name in names if getattr(model, name) is not None]
    if len(given) > 1:
        wire = [model.wire_name(name) for name in given]
        raise rule_error(
            "at_most_one_of",
            wire[1],
            f"{' and '.join(wire)} are alternatives for the same input: give only one of them",
        )
    return given[0] if given else None


def _check_size_pair(width: int | None, height: int | None) -> None:
    if (width is None) != (height is None):
        missing = "height" if height is None else "width"
        other = "width" if missing == "height" else "height"
        raise rule_error(
            "width_height_together", missing, f"{other} must be provided together with {missing}"
        )


def _check_max_pixels(width: int | None, height: int | None, limit: int, note: str) -> None:
    if width is not None and height is not None and width * height > limit:
        raise rule_error(
            "max_pixels",
            "width",
            f"width x height is {width * height:,} pixels; the maximum is {limit:,} ({note})",
        )


def _check_reference_count(urls: list[str] | None, images: list[Any] | None) -> None:
    urls, images = urls or [], images or []
    if len(urls) + len(images) > MAX_REFERENCE_IMAGES:
        raise rule_error(
            "max_reference_images",
            "referenceImages",
            f"at most {MAX_REFERENCE_IMAGES} reference images in total across referenceImages "
            f"and referenceImageUrls; got {len(images)} + {len(urls)}",
        )


class MediaInlineImageSource(WireModel):
    """An image given inline (base64 or data URI) or by URL: exactly one of url or dataBase64."""

    url: HttpUrlString | None = Field(default=None, description="Image URL.")
    data_base64: str | None = Field(
        default=None,
        description=(
            "Raw image bytes encoded as base64 (or data URI). Input is staged on CDN, with "
            "best-effort WebP conversion when encoder support is available."
        ),
    )
    mime_type: (
        Annotated[
            Literal["image/webp", "image/png", "image/jpeg", "image/jpg"],
            AfterValidator(_normalise_jpg_mime_type),
        ]
        | None
    ) = Field(
        default=None,
        description=(
            "Supported inline MIME types. image/jpg is accepted and normalized to image/jpeg at "
            "runtime."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        _exactly_one(self, "url", "data_base64")
        return self


class MediaInlineAudioSource(WireModel):
    """Audio given inline (base64 or data URI) or by URL: exactly one of url or dataBase64."""

    url: HttpUrlString | None = Field(default=None, description="Audio URL.")
    data_base64: str | None = Field(
        default=None,
        description=(
            "Raw audio bytes encoded as base64 (or data URI). Input is staged on CDN before "
            "provider submission."
        ),
    )
    mime_type: (
        Literal[
            "audio/ogg",
            "audio/opus",
            "audio/wav",
            "audio/x-wav",
            "audio/wave",
            "audio/mpeg",
            "audio/mp3",
            "audio/flac",
            "audio/x-flac",
            "audio/aac",
            "audio/mp4",
            "audio/webm",
        ]
        | None
    ) = Field(default=None, description="MIME type of the inline audio.")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        _exactly_one(self, "url", "data_base64")
        return self


# audio.speak has its own, looser inline shape in the spec (any mimeType string); it still needs
# exactly one of url or dataBase64 to be audio at all.
class SpeakReferenceAudioSource(WireModel):
    """Reference audio given inline (base64 or data URI) or by URL: exactly one of the two."""

    url: HttpUrlString | None = Field(default=None, description="Reference audio URL.")
    data_base64: str | None = Field(
        default=None, description="Raw reference audio bytes encoded as base64 (or data URI)."
    )
    mime_type: str | None = Field(default=None, description="MIME type of the inline audio.")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        _exactly_one(self, "url", "data_base64")
        return self


def _url_or_inline(value: Any) -> str | None:
    if isinstance(value, str):
        return "url-string"
    if isinstance(value, Mapping | BaseModel):
        return "inline-object"
    return None


MediaImageInput = TypeAliasType(
    "MediaImageInput",
    Annotated[
        Annotated[HttpUrlString, Tag("url-string")]
        | Annotated[MediaInlineImageSource, Tag("inline-object")],
        Discriminator(
            _url_or_inline,
            custom_error_type="type",
            custom_error_message="must be an image URL string or an inline image object",
        ),
        Field(description="Provide either a direct image URL string or an inline image object."),
    ],
)
MediaAudioInput = TypeAliasType(
    "MediaAudioInput",
    Annotated[
        Annotated[HttpUrlString, Tag("url-string")]
        | Annotated[MediaInlineAudioSource, Tag("inline-object")],
        Discriminator(
            _url_or_inline,
            custom_error_type="type",
            custom_error_message="must be an audio URL string or an inline audio object",
        ),
        Field(description="Provide either a direct audio URL string or an inline audio object."),
    ],
)
SpeakReferenceAudio = TypeAliasType(
    "SpeakReferenceAudio",
    Annotated[
        Annotated[HttpUrlString, Tag("url-string")]
        | Annotated[SpeakReferenceAudioSource, Tag("inline-object")],
        Discriminator(
            _url_or_inline,
            custom_error_type="type",
            custom_error_message="must be an audio URL string or an inline audio object",
        ),
    ],
)


class _MediaJobEnvelope(WireModel):
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Replaying a submit with the same key returns the first response.",
    )
    completion_callback_url: HttpUrlString | None = Field(
        default=None,
        description=(
            "Optional terminal callback URL. Receives one job-level POST when the job reaches a "
            "terminal state."
        ),
    )


# --- image -------------------------------------------------------------------------------------


class ImageGenerateInput(WireModel):
    """Text-to-image generation."""

    prompt: str = Field(min_length=1, max_length=4000, description="What the image shows.")
    aspect_ratio: MediaAspectRatio | None = Field(
        default=None, description=_ASPECT_RATIO_DESCRIPTION
    )
    output_format: MediaImageOutputFormat = Field(
        default="webp", description=_OUTPUT_FORMAT_DESCRIPTION
    )
    high_detail: bool = Field(default=False, description=_HIGH_DETAIL_DESCRIPTION)
    upscale: bool = Field(
        default=False, description="Optional built-in 1.5x upscale toggle. Defaults to false."
    )
    width: int | None = Field(
        default=None,
        ge=32,
        multiple_of=32,
        description=(
            "Optional explicit output width. Must be provided together with height. Max 4MP total."
        ),
    )
    height: int | None = Field(
        default=None,
        ge=32,
        multiple_of=32,
        description=(
            "Optional explicit output height. Must be provided together with width. Max 4MP total."
        ),
    )
    reference_image_urls: list[HttpUrlString] | None = Field(
        default=None, max_length=MAX_REFERENCE_IMAGES, description=_REFERENCE_IMAGE_URLS_DESCRIPTION
    )
    reference_images: list[MediaImageInput] | None = Field(
        default=None, max_length=MAX_REFERENCE_IMAGES, description=_REFERENCE_IMAGES_DESCRIPTION
    )

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        _check_size_pair(self.width, self.height)
        _check_max_pixels(self.width, self.height, MAX_IMAGE_PIXELS, "4 MP, e.g. 2048 x 2048")
        _check_reference_count(self.reference_image_urls, self.reference_images)
        return self


class ImageEditInput(WireModel):
    """Edit an image following a prompt; the output keeps the source image's size."""

    prompt: str = Field(min_length=1, max_length=4000, description="The edit to make.")
    source_image_url: HttpUrlString | None = Field(
        default=None, description="URL of the image to edit. Give this or sourceImage."
    )
    source_image: MediaImageInput | None = Field(
        default=None,
        description=(
            "The image to edit, as URL string or inline object. Give this or sourceImageUrl."
        ),
    )
    output_format: MediaImageOutputFormat = Field(
        default="webp", description=_OUTPUT_FORMAT_DESCRIPTION
    )
    high_detail: bool = Field(default=False, description=_HIGH_DETAIL_DESCRIPTION)
    reference_image_urls: list[HttpUrlString] | None = Field(
        default=None, max_length=MAX_REFERENCE_IMAGES, description=_REFERENCE_IMAGE_URLS_DESCRIPTION
    )
    reference_images: list[MediaImageInput] | None = Field(
        default=None, max_length=MAX_REFERENCE_IMAGES, description=_REFERENCE_IMAGES_DESCRIPTION
    )

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        _exactly_one(self, "source_image_url", "source_image")
        _check_reference_count(self.reference_image_urls, self.reference_images)
        return self


# --- video -------------------------------------------------------------------------------------


def is_ltx_frame_count(frames: int) -> bool:
    """LTX samples 8n + 1 frames."""
    return frames % 8 == 1


def _check_interpolation_fps(value: int) -> int:
    if value != 0 and not 30 <= value <= 60:
        raise PydanticCustomError(
            "interpolation_fps", "must be 0 (no interpolation) or between 30 and 60"
        )
    return value


InterpolationFps = Annotated[
    int,
    AfterValidator(_check_interpolation_fps),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "const": 0},
                {"type": "integer", "minimum": 30, "maximum": 60},
            ]
        }
    ),
]

_REFERENCE_AUDIO_DESCRIPTION = (
    "Requires a start frame or overlap frames and may be combined with finalFrameImage* when you "
    "need both audio sync and final-frame steering. Requests are strict: if reference audio cannot "
    "be applied, the request fails. Prompt these shots as anchored performances: honor frame-zero "
    "composition, keep the subject readable, and let mouth articulation, jaw travel, breath "
    "timing, shoulder rhythm, and phrase-timed gestures carry the sync."
)


class VideoGenerateInput(WireModel):
    """Provide startFrameImage/startFrameImageUrl (or sourceImage/sourceImageUrl aliases) for
    image-to-video, or omit them for text-to-video. Seamless extension is supported via
    overlapFrameImageUrls/overlapFrameImages: upload trailing frames from the previous clip in
    chronological order, preferably as lossless or visually lossless WebP extracted on the client at
    sampled/base FPS. If no separate start frame is provided, the first overlap frame becomes frame
    zero automatically. Optional reference audio is supported via referenceAudioUrl/referenceAudio,
    requires either a start frame or overlap frames, and can be combined with
    finalFrameImageUrl/finalFrameImage when you need both audio sync and a closing-frame guide.
    Reference-audio requests are strict and are not silently downgraded to non-audio conditioning.
    Prefer durationFrames for exact continuation timing; it uses sampled/base FPS and must satisfy
    the LTX rule 8n + 1. durationSeconds is accepted only when its implied sampled-frame count stays
    within the same valid LTX frame budget. Width/height define the final output canvas. Set
    extremeQuality=true only when you explicitly want the higher-fidelity path, which bills 50%
    more. Image-to-video output is probabilistic and may be frozen/warped/unusable on some runs, so
    clients should run multiple candidates and select winners."""

    prompt: str = Field(min_length=1, max_length=4000, description="What the clip shows.")
    start_frame_image_url: HttpUrlString | None = Field(
        default=None,
        description=(
            "Optional start-frame image URL. Omit for text-to-video mode. Equivalent to "
            "sourceImageUrl."
        ),
    )
    start_frame_image: MediaImageInput | None = Field(
        default=None,
        description=(
            "Optional start-frame image as URL string or inline object. Equivalent to sourceImage."
        ),
    )
    source_image_url: HttpUrlString | None = Field(
        default=None, description="Legacy alias for startFrameImageUrl."
    )
    source_image: MediaImageInput | None = Field(
        default=None, description="Legacy alias for startFrameImage."
    )
    overlap_frame_image_urls: list[HttpUrlString] | None = Field(
        default=None,
        max_length=12,
        description=(
            "Optional ordered overlap-frame URLs for seamless clip extension. Upload "
            "client-extracted trailing frames from the previous clip in chronological order. "
            "Default to lossless or visually lossless WebP for continuation work. If no separate "
            "start frame is provided, the first overlap frame becomes frame zero automatically. "
            "Give overlap frames in one list: this or overlapFrameImages."
        ),
    )
    overlap_frame_images: list[MediaImageInput] | None = Field(
        default=None,
        max_length=12,
        description=(
            "Optional ordered overlap frames as URL strings or inline objects. Upload "
            "client-extracted trailing frames from the previous clip in chronological order. "
            "Prefer inline or URL-based WebP for efficient continuation payloads; avoid JPEG for "
            "seam-sensitive extension work. Give overlap frames in one list: this or "
            "overlapFrameImageUrls."
        ),
    )
    final_frame_image_url: HttpUrlString | None = Field(
        default=None,
        description=(
            "Optional final-frame steering URL. Can be used with or without "
            "referenceAudioUrl/referenceAudio."
        ),
    )
    final_frame_image: MediaImageInput | None = Field(
        default=None,
        description=(
            "Optional final-frame steering (URL string or inline object). Can be used with or "
            "without referenceAudioUrl/referenceAudio."
        ),
    )
    reference_audio_url: HttpUrlString | None = Field(
        default=None,
        description=(
            "Optional reference audio URL for motion/audio synchronization. "
            + _REFERENCE_AUDIO_DESCRIPTION
        ),
    )
    reference_audio: MediaAudioInput | None = Field(
        default=None,
        description=(
            "Optional reference audio as URL string or inline object. "
            + _REFERENCE_AUDIO_DESCRIPTION
        ),
    )
    duration_seconds: int | None = Field(
        default=None,
        ge=3,
        le=20,
        description=(
            "Optional whole-second duration. Use only when the implied sampled-frame count "
            "(durationSeconds x sampledFps) remains inside the LTX-valid frame budget (9..257) for "
            "the chosen sampledFps. Prefer durationFrames for exact continuation timing. Give "
            "durationSeconds or durationFrames, not both."
        ),
    )
    duration_frames: int | None = Field(
        default=None,
        ge=LTX_MIN_FRAMES,
        le=LTX_MAX_FRAMES,
        description=(
            "Optional sampled/base frame count for exact-duration video generation. Must satisfy "
            "the LTX rule 8n + 1 (for example 9, 17, 25, ...). Prefer this over durationSeconds "
            "for extension-video work."
        ),
    )
    aspect_ratio: MediaAspectRatio | None = Field(
        default=None, description=_ASPECT_RATIO_DESCRIPTION
    )
    sampled_fps: int = Field(
        default=DEFAULT_SAMPLED_FPS,
        ge=1,
        le=50,
        description=(
            "Optional sampled/base FPS used for duration-frame math and overlap timing. At 25fps, "
            "exact continuation-friendly durations use valid durationFrames such as 249 or 257 "
            "rather than 250. Defaults to 30."
        ),
    )
    width: int | None = Field(
        default=None,
        ge=32,
        multiple_of=32,
        description=(
            "Optional final output width. Must be provided together with height. The workflow "
            "always runs the first sampling pass at half of the requested final width. "
            f"width x height at most {MAX_VIDEO_PIXELS:,} pixels (3840 x 2176)."
        ),
    )
    height: int | None = Field(
        default=None,
        ge=32,
        multiple_of=32,
        description=(
            "Optional final output height. Must be provided together with width. The workflow "
            "always runs the first sampling pass at half of the requested final height."
        ),
    )
    interpolation_fps: InterpolationFps = Field(
        default=60,
        description=(
            "Optional output FPS target for interpolation. Omit to keep the default 60 FPS "
            "interpolation. Use 0 to disable interpolation and keep sampled/base FPS. Default "
            "pipeline is 30fps sampled + RIFE interpolation to 60fps. Allowed values: 0 or 30..60."
        ),
    )
    seed: Seed | None = Field(
        default=None,
        description=(
            "Optional deterministic seed. Keep this fixed across clip-B continuation variants when "
            "comparing seam quality, color continuity, or overlap strategies."
        ),
    )
    extreme_quality: bool = Field(
        default=False,
        description=(
            "Optional higher-fidelity video path. Defaults to false. Set true only when you "
            "explicitly want the extreme-quality path; it bills 50% more than standard video "
            "generation."
        ),
    )

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        start = _at_most_one(
            self, "start_frame_image_url", "start_frame_image", "source_image_url", "source_image"
        )
        overlap = _at_most_one(self, "overlap_frame_image_urls", "overlap_frame_images")
        _at_most_one(self, "final_frame_image_url", "final_frame_image")
        audio = _at_most_one(self, "reference_audio_url", "reference_audio")
        if audio is not None and start is None and not (overlap and getattr(self, overlap)):
            raise rule_error(
                "reference_audio_needs_frames",
                self.wire_name(audio),
                "reference audio requires a start frame (startFrameImageUrl/startFrameImage) or "
                "overlap frames",
            )
        self._check_duration()
        _check_size_pair(self.width, self.height)
        _check_max_pixels(self.width, self.height, MAX_VIDEO_PIXELS, "3840 x 2176")
        return self

    def _check_duration(self) -> None:
        if self.duration_frames is not None:
            if self.duration_seconds is not None:
                raise rule_error(
                    "at_most_one_of",
                    "durationSeconds",
                    "give durationFrames or durationSeconds, not both (durationFrames is exact)",
                )
            if not is_ltx_frame_count(self.duration_frames):
                below = self.duration_frames - (self.duration_frames - 1) % 8
                raise rule_error(
                    "ltx_frame_count",
                    "durationFrames",
                    f"must satisfy the LTX rule 8n + 1 (9, 17, 25, ..., 257); nearest valid counts "
                    f"are {below} and {below + 8}",
                )
        if self.duration_seconds is not None:
            implied = self.duration_seconds * self.sampled_fps
            if not LTX_MIN_FRAMES <= implied <= LTX_MAX_FRAMES:
                raise rule_error(
                    "ltx_frame_budget",
                    "durationSeconds",
                    f"{self.duration_seconds} s at {self.sampled_fps} fps is {implied} sampled "
                    f"frames, outside the LTX frame budget {LTX_MIN_FRAMES}..{LTX_MAX_FRAMES}; use "
                    "durationFrames or a shorter duration",
                )


class VideoCombineInput(WireModel):
    """Combines one or more existing video clips into a single output clip while concatenating
    their embedded audio. This path is designed for stitching continuation outputs without loading
    every frame into a large in-memory graph. `overlapFrames` trims duplicated head frames from
    every clip after the first and trims the corresponding leading audio duration before
    concatenation. `frameRate` defaults to 60 and is used to convert overlap frames into trim
    seconds inside the streaming concat node."""

    video_urls: list[HttpUrlString] = Field(
        min_length=2,
        max_length=24,
        description=(
            "Ordered source clip URLs. At least two clips are required. Each clip is appended "
            "after the previous one. The API submits them to the streaming concat node as direct "
            "HTTPS entries."
        ),
    )
    overlap_frames: int = Field(
        default=1,
        ge=0,
        le=120,
        description=(
            "Optional number of duplicated head frames to remove from every clip after the first. "
            "Use 1 for current `video_ltx23` continuation clips, or raise it if a future workflow "
            "carries a longer overlap region."
        ),
    )
    frame_rate: int = Field(
        default=60,
        ge=1,
        le=120,
        description=(
            "Optional frame rate used when loading source clips and converting overlap frames into "
            "an audio trim duration. Keep this aligned with the actual clip FPS; current "
            "`video_ltx23` outputs are expected to use 60 FPS."
        ),
    )


class VideoResizeInput(WireModel):
    """Deterministically rescales an existing remote video to explicit even output dimensions. The
    gateway probes the source clip at submit time and bills from output resolution plus billable
    frame count. Provide sourceDurationSeconds only as a fallback when remote probing is
    unavailable."""

    source_video_url: HttpUrlString = Field(description="Remote source clip URL to resize.")
    width: int = Field(
        ge=2, le=7680, multiple_of=2, description="Required even output width in pixels."
    )
    height: int = Field(
        ge=2, le=7680, multiple_of=2, description="Required even output height in pixels."
    )
    frame_rate: int = Field(
        default=60,
        ge=1,
        le=120,
        description=(
            "Optional source/output frame rate hint. Defaults to 60 and is used for submit-time "
            "billing and duration estimates."
        ),
    )
    source_duration_seconds: float | None = Field(
        default=None,
        ge=0.1,
        le=600,
        description=(
            "Optional source clip duration hint in seconds. Defaults to 8 when omitted for pricing "
            "and ETA estimation."
        ),
    )


# --- audio -------------------------------------------------------------------------------------


def voice_tags(description: str) -> list[str]:
    """The comma-separated tags of a voiceDescription, trimmed and lower-cased."""
    return [tag.strip().lower() for tag in description.split(",") if tag.strip()]


def _check_voice_description(value: str) -> str:
    tags = voice_tags(value)
    unknown = [tag for tag in tags if tag not in SUPPORTED_VOICE_TAGS]
    if not tags or unknown:
        raise PydanticCustomError(
            "voice_tags",
            "unsupported voice tag(s) {unknown}; supported: {supported}",
            {
                "unknown": ", ".join(unknown) or "(none)",
                "supported": ", ".join(SUPPORTED_VOICE_TAGS),
            },
        )
    return value


_GEMINI_ONLY = ("voice_name", "instructions")
_OMNIVOICE_ONLY = (
    "voice_description",
    "reference_audio_url",
    "reference_audio",
    "reference_transcript",
    "seed",
)
_VOICE_CLONE_ONLY = ("reference_audio_url", "reference_audio", "reference_transcript")


class AudioSpeakInput(WireModel):
    """Text to speech with OmniVoice (default; voice design or voice clone) or Gemini."""

    text: str = Field(
        min_length=1,
        max_length=6000,
        description=(
            "TTS synthesis text. Both providers accept 1..6000 chars. Gemini settles to an exact "
            "completion-time bill after a submit-time hold; OmniVoice remains submit-time billed."
        ),
    )
    provider: Literal["omnivoice", "gemini"] = Field(
        default="omnivoice",
        description=(
            "Optional TTS provider selector. Omit to use OmniVoice. Use gemini for direct Gemini "
            "3.1 Flash TTS single-speaker WAV output."
        ),
    )
    mode: Literal["voice_design", "voice_clone"] = Field(
        default="voice_design",
        description=(
            "Optional OmniVoice mode selector. Omit for voice design, or set voice_clone when "
            "supplying reference audio. Gemini does not support voice_clone."
        ),
    )
    voice_description: (
        Annotated[
            str, Field(min_length=4, max_length=240), AfterValidator(_check_voice_description)
        ]
        | None
    ) = Field(
        default=None,
        description=(
            "OmniVoice-only comma-separated voice tags. Supported English tags in this API "
            "release: " + ", ".join(SUPPORTED_VOICE_TAGS) + ". In voice design mode it defines "
            "the synthetic voice; in voice clone mode it can add light steering on top of the "
            "reference voice."
        ),
    )
    voice_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description=(
            "Gemini-only voice name. Defaults to Kore when omitted. Keep this as a non-empty "
            "string because Google's preview voice inventory can change over time."
        ),
    )
    instructions: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description=(
            "Gemini-only delivery/style guidance. When present, the gateway prepends it ahead of "
            "the literal spoken text using 'Read the following text exactly as written:'."
        ),
    )
    reference_audio_url: HttpUrlString | None = Field(
        default=None, description="OmniVoice-only reference audio URL for voice clone mode."
    )
    reference_audio: SpeakReferenceAudio | None = Field(
        default=None,
        description="OmniVoice-only inline or URL-based reference audio for voice clone mode.",
    )
    reference_transcript: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description=(
            "OmniVoice-only transcript matching the reference audio clip for voice clone mode."
        ),
    )
    language: Literal["English", "en"] | None = Field(
        default=None,
        description="OmniVoice language selection for this v1 release (English only).",
    )
    quality: AudioQuality | None = Field(
        default=None, description="OmniVoice output Opus quality preset."
    )
    seed: Seed | None = Field(default=None, description="OmniVoice-only seed.")

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        wrong_provider = _GEMINI_ONLY if self.provider == "omnivoice" else _OMNIVOICE_ONLY
        for name in wrong_provider:
            if getattr(self, name) is not None:
                owner = "Gemini" if self.provider == "omnivoice" else "OmniVoice"
                raise rule_error(
                    "provider_field",
                    self.wire_name(name),
                    f"{self.wire_name(name)} is {owner}-only; provider is {self.provider}",
                )
        if self.provider == "gemini" and self.mode == "voice_clone":
            raise rule_error(
                "provider_mode", "mode", "Gemini does not support voice_clone; use omnivoice"
            )
        if self.mode == "voice_clone":
            _exactly_one(self, "reference_audio_url", "reference_audio")
        else:
            for name in _VOICE_CLONE_ONLY:
                if getattr(self, name) is not None:
                    raise rule_error(
                        "voice_clone_field",
                        self.wire_name(name),
                        f"{self.wire_name(name)} is only for mode voice_clone",
                    )
        return self


class AudioAnnotationReferenceInput(WireModel):
    """Word-timed annotation of an audio clip, anchored to a transcript or by transcriptless ASR."""

    source_audio_url: HttpUrlString | None = Field(
        default=None, description="Source audio URL to annotate. Give this or sourceAudio."
    )
    source_audio: MediaAudioInput | None = Field(
        default=None,
        description=(
            "Source audio as URL string or inline base64 object. Give this or sourceAudioUrl."
        ),
    )
    transcript: str | None = Field(
        default=None,
        min_length=1,
        max_length=24000,
        description=(
            "Optional transcript used for reference anchoring, section recovery, and stronger word "
            "timings. If omitted, the gateway switches to transcriptless ASR."
        ),
    )
    language: Literal["en"] = Field(
        default="en", description="Language code for transcript anchoring or transcriptless ASR."
    )
    transcription_model: Literal["distil-large-v3", "large-v3"] | None = Field(
        default=None,
        description=(
            "Whisper model selection for transcription. The default is distil-large-v3 when "
            "transcript anchoring is used, and large-v3 when transcriptless ASR is used."
        ),
    )
    device: Literal["auto", "cuda", "cpu"] = Field(
        default="auto", description="Worker execution target hint for the annotation node."
    )

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        _exactly_one(self, "source_audio_url", "source_audio")
        return self


class AceStepCreateInput(WireModel):
    """Song generation with ACE-Step 1.5 from style tags and lyrics."""

    tags: str = Field(
        min_length=1, max_length=2000, description="Comma-separated style tags (genre, mood, ...)."
    )
    lyrics: str = Field(min_length=1, max_length=12000, description="The song's lyrics.")
    quality_preset: Literal["default", "high_quality"] = Field(
        default="default",
        description=(
            "Optional recipe preset. high_quality applies long-form music defaults tuned from Ace "
            "Step QA rounds (108s, 192k, richer sampler settings). Explicit fields still override "
            "preset defaults."
        ),
    )
    duration_seconds: int | None = Field(
        default=None,
        ge=15,
        le=240,
        description="Song length in seconds. Defaults to 60 (108 with the high_quality preset).",
    )
    bpm: int | None = Field(default=None, ge=40, le=240, description="Tempo in beats per minute.")
    quality: AudioQuality | None = Field(
        default=None,
        description="Output Opus quality preset. Defaults to 128k (192k with high_quality).",
    )
    seed: Seed | None = Field(default=None, description="Optional deterministic seed.")
    steps: int | None = Field(default=None, ge=4, le=32, description="Diffusion steps.")
    text_cfg_scale: float | None = Field(
        default=None, ge=1, le=8, description="Text classifier-free guidance scale."
    )
    sampler_cfg: float | None = Field(
        default=None, ge=1, le=12, description="Sampler classifier-free guidance scale."
    )
    temperature: float | None = Field(
        default=None, ge=0.1, le=2, description="Language-model sampling temperature."
    )
    top_p: float | None = Field(default=None, ge=0, le=1, description="Nucleus sampling mass.")
    top_k: int | None = Field(default=None, ge=0, le=200, description="Top-k sampling (0 = off).")
    min_p: float | None = Field(default=None, ge=0, le=0.5, description="Min-p sampling floor.")
    time_signature: Literal["2", "3", "4", "5", "6", "7"] | None = Field(
        default=None, description="Beats per bar."
    )
    language: Literal["en"] | None = Field(
        default=None, description="Ace Step 1.5 language code (currently English only)."
    )
    key_scale: str | None = Field(
        default=None,
        pattern=r"^[A-G](?:#|b)?\s(?:major|minor)$",
        description="Musical key, for example 'E minor' or 'C major'.",
    )


class MossSoundEffectInput(WireModel):
    """Sound-effect generation from a text prompt."""

    prompt: str = Field(min_length=1, max_length=2000, description="The sound to generate.")
    duration_seconds: int = Field(
        default=10, ge=1, le=30, description="Length in seconds. Defaults to 10."
    )
    quality: AudioQuality = Field(default="128k", description=_QUALITY_DESCRIPTION)
    temperature: float | None = Field(
        default=None, ge=0.1, le=3, description="Sampling temperature."
    )
    top_p: float | None = Field(default=None, ge=0, le=1, description="Nucleus sampling mass.")
    top_k: int | None = Field(default=None, ge=1, le=200, description="Top-k sampling.")
    repetition_penalty: float | None = Field(
        default=None, ge=0.8, le=2.5, description="Penalty for repeated tokens."
    )
    max_new_tokens: int | None = Field(
        default=None, ge=64, le=4096, description="Upper bound on generated audio tokens."
    )


# --- 3D ----------------------------------------------------------------------------------------

_NEEDS_TEXTURE_SIZE_2048 = ("texture_resolution", "refiner_resolution")


class TrellisGenerateInput(WireModel):
    """Image-to-3D: one textured GLB asset from one image."""

    source_image_url: HttpUrlString | None = Field(
        default=None, description="URL of the object image. Give this or sourceImage."
    )
    source_image: MediaInlineImageSource | None = Field(
        default=None,
        description="The object image as an inline object. Give this or sourceImageUrl.",
    )
    quality_preset: Literal["performance", "balanced", "fidelity"] = Field(
        default="balanced",
        description="Preset defaults tuned for speed, balanced quality, or fidelity.",
    )
    target_face_count: int | None = Field(
        default=None, ge=1000, le=500000, description="Target face count of the mesh."
    )
    texture_size: Literal[512, 1024, 2048] | None = Field(
        default=None, description="Texture image size in pixels."
    )
    texture_resolution: Literal[512, 1024, 1536] | None = Field(
        default=None,
        description=(
            "Texture bake resolution. 1536 requires textureSize=2048 and works best with "
            "maxViews<=5 and textureSteps<=16."
        ),
    )
    max_views: int | None = Field(default=None, ge=2, le=6, description="Views used for texturing.")
    sparse_structure_steps: int | None = Field(
        default=None, ge=8, le=20, description="Sparse-structure sampling steps."
    )
    shape_steps: int | None = Field(default=None, ge=8, le=20, description="Shape sampling steps.")
    texture_steps: int | None = Field(
        default=None, ge=8, le=20, description="Texture sampling steps."
    )
    mesh_resolution: Literal[128, 256, 512, 1024] | None = Field(
        default=None, description="Mesh extraction resolution."
    )
    remove_background: bool | None = Field(
        default=None, description="Remove the source image's background first."
    )
    padding: int | None = Field(
        default=None, ge=0, le=64, description="Padding around the object, in pixels."
    )
    refiner_resolution: Literal[512, 1024, 1536] | None = Field(
        default=None,
        description="Optional low-poly refiner resolution. 1536 requires textureSize=2048.",
    )
    refiner_downsampling: Literal[16, 32, 64] | None = Field(
        default=None, description="Low-poly refiner downsampling factor."
    )
    remesh_fill_holes: bool | None = Field(default=None, description="Fill holes when remeshing.")
    remesh_fill_holes_max_perimeter: float | None = Field(
        default=None, ge=0.005, le=0.2, description="Largest hole perimeter to fill."
    )
    remesh_remove_floaters: bool | None = Field(
        default=None, description="Remove disconnected floaters when remeshing."
    )
    remesh_remove_inner_faces: bool | None = Field(
        default=None, description="Remove inner faces when remeshing."
    )
    mesh_cluster_cone_half_angle_rad: float | None = Field(
        default=None, ge=35, le=85, description="Cone half-angle for mesh clustering."
    )
    postprocess_position_epsilon: float | None = Field(
        default=None,
        ge=1e-06,
        le=0.001,
        description=(
            "Optional normal-postprocess epsilon used in low-poly Trellis mesh postprocess."
        ),
    )
    postprocess_normal_crease_deg: float | None = Field(
        default=None,
        ge=1,
        le=180,
        description="Optional normal crease angle used in low-poly Trellis mesh postprocess.",
    )
    seed: Seed | None = Field(default=None, description="Optional deterministic seed.")

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        _exactly_one(self, "source_image_url", "source_image")
        for name in _NEEDS_TEXTURE_SIZE_2048:
            if getattr(self, name) == 1536 and self.texture_size != 2048:
                raise rule_error(
                    "texture_size_2048",
                    self.wire_name(name),
                    f"{self.wire_name(name)} 1536 requires textureSize=2048",
                )
        return self


# --- the request envelopes -----------------------------------------------------------------------


class ImageGenerateTask(_MediaJobEnvelope):
    task: Literal["image.generate"]
    input: ImageGenerateInput


class ImageEditTask(_MediaJobEnvelope):
    task: Literal["image.edit"]
    input: ImageEditInput


class VideoGenerateTask(_MediaJobEnvelope):
    task: Literal["video.generate"]
    input: VideoGenerateInput


class VideoCombineTask(_MediaJobEnvelope):
    task: Literal["video.combine"]
    input: VideoCombineInput


class VideoResizeTask(_MediaJobEnvelope):
    task: Literal["video.resize"]
    input: VideoResizeInput


class AudioSpeakTask(_MediaJobEnvelope):
    task: Literal["audio.speak"]
    input: AudioSpeakInput


class AudioAnnotationReferenceTask(_MediaJobEnvelope):
    task: Literal["audio.annotation.reference"]
    input: AudioAnnotationReferenceInput


class AceStepCreateTask(_MediaJobEnvelope):
    task: Literal["ace.step.create"]
    input: AceStepCreateInput


class MossSoundEffectTask(_MediaJobEnvelope):
    task: Literal["moss.sound.effect"]
    input: MossSoundEffectInput


class TrellisGenerateTask(_MediaJobEnvelope):
    task: Literal["trellis.generate"]
    input: TrellisGenerateInput


MediaTask = Annotated[
    ImageGenerateTask
    | ImageEditTask
    | VideoGenerateTask
    | VideoCombineTask
    | VideoResizeTask
    | AudioSpeakTask
    | AudioAnnotationReferenceTask
    | AceStepCreateTask
    | MossSoundEffectTask
    | TrellisGenerateTask,
    Field(discriminator="task"),
]

TASK_MODELS: dict[str, type[_MediaJobEnvelope]] = {
    "image.generate": ImageGenerateTask,
    "image.edit": ImageEditTask,
    "video.generate": VideoGenerateTask,
    "video.combine": VideoCombineTask,
    "video.resize": VideoResizeTask,
    "audio.speak": AudioSpeakTask,
    "audio.annotation.reference": AudioAnnotationReferenceTask,
    "ace.step.create": AceStepCreateTask,
    "moss.sound.effect": MossSoundEffectTask,
    "trellis.generate": TrellisGenerateTask,
}

TASK_INPUT_MODELS: dict[str, type[WireModel]] = {
    name: cast(type[WireModel], model.model_fields["input"].annotation)
    for name, model in TASK_MODELS.items()
}

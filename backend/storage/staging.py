"""Turn a task's media inputs (URL or inline base64, per the spec's Media*Source schemas) into
files in the job's work folder, ready for an engine.

The bytes decide what a file is, never the declared `mimeType` or the server's Content-Type:
images are decoded with Pillow (which also refuses what is not PNG, JPEG or WebP), turned upright
by their EXIF orientation, stripped of metadata and written as WebP; audio and video are checked
by their container signature and kept byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import AnyUrl

# The file layout is the engines' contract (they find inputs by field path): one definition.
from backend.engines.base import INPUTS_DIR, input_file_stem
from backend.http.errors import BadRequest, PayloadTooLarge
from backend.storage.fetch import SafeFetcher
from backend.storage.sniff import sniff_audio, sniff_video

MediaKind = Literal["image", "audio", "video"]

MB = 1024 * 1024
WEBP_MAX_SIDE = 16383  # the WebP format cannot encode a wider or taller image

_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
# Servers label media loosely (S3's default is binary/octet-stream, Ogg is often
# application/ogg); the label only has to be plausible, the bytes are checked after.
_OCTET_STREAM = ("application/octet-stream", "binary/octet-stream")
_FETCH_CONTENT_TYPES: dict[MediaKind, tuple[str, ...]] = {
    "image": ("image/", *_OCTET_STREAM),
    "audio": ("audio/", "video/", "application/ogg", *_OCTET_STREAM),
    "video": ("video/", *_OCTET_STREAM),
}
_SNIFFERS = {"audio": sniff_audio, "video": sniff_video}


@dataclass(frozen=True)
class StagingLimits:
    image_bytes: int = 20 * MB
    audio_bytes: int = 50 * MB
    video_bytes: int = 200 * MB
    # Decoded size is what a decompression bomb inflates: 40 MP is ~160 MB as RGBA.
    max_pixels: int = 40_000_000

    def max_bytes(self, kind: MediaKind) -> int:
        limits = {"image": self.image_bytes, "audio": self.audio_bytes, "video": self.video_bytes}
        return limits[kind]


@dataclass(frozen=True)
class MediaRef:
    """One media input of a task: where it sits in the request, what it must be, its value."""

    field: str  # the request's field path, e.g. "sourceImage" or "referenceImages[0]"
    kind: MediaKind
    value: object  # a URL string, or an inline source as a dict or a model


@dataclass(frozen=True)
class StagedInput:
    field: str
    path: Path
    mime_type: str
    size_bytes: int
    # "source": "url" | "inline"; "url" (after redirects); images add "width" and "height".
    properties: dict[str, Any]


class InputStager:
    def __init__(self, *, fetcher: SafeFetcher, limits: StagingLimits | None = None) -> None:
        self._fetcher = fetcher
        self._limits = limits or StagingLimits()

    async def stage(self, work_dir: Path, refs: Sequence[MediaRef]) -> list[StagedInput]:
        """Stage every input as ``work_dir/inputs/<field path as file stem>.<ext>``.

        One at a time, so errors come in request order and the first bad input, named by its
        field, stops the rest.
        """
        inputs_dir = work_dir / INPUTS_DIR
        inputs_dir.mkdir(parents=True, exist_ok=True)
        return [await self._stage_one(inputs_dir, ref) for ref in refs]

    async def _stage_one(self, inputs_dir: Path, ref: MediaRef) -> StagedInput:
        source = _source(ref)
        max_bytes = self._limits.max_bytes(ref.kind)
        if source.is_url:
            fetched = await self._fetcher.fetch(
                source.text,
                field=source.field,
                max_bytes=max_bytes,
                content_types=_FETCH_CONTENT_TYPES[ref.kind],
            )
            data, properties = fetched.content, {"source": "url", "url": fetched.url}
        else:
            data = _decode_base64(source.text, source.field, max_bytes)
            properties = {"source": "inline"}

        stem = inputs_dir / input_file_stem(ref.field)
        if ref.kind == "image":
            path = stem.with_name(f"{stem.name}.webp")
            size_bytes, dimensions = await asyncio.to_thread(
                _write_webp, data, path, ref.field, self._limits.max_pixels
            )
            return StagedInput(ref.field, path, "image/webp", size_bytes, properties | dimensions)
        sniffed = _SNIFFERS[ref.kind](data)
        if sniffed is None:
            raise BadRequest(
                f"{ref.field}: not a supported {ref.kind} file.",
                details={"field": ref.field, "rule": "media_type"},
            )
        path = stem.with_name(f"{stem.name}{sniffed.extension}")
        await asyncio.to_thread(_write_new, path, data)
        return StagedInput(ref.field, path, sniffed.mime_type, len(data), properties)


@dataclass(frozen=True)
class _Source:
    is_url: bool
    text: str  # the URL, or the inline base64 payload
    field: str  # the path to it, for error details


def _source(ref: MediaRef) -> _Source:
    """Read a URL, a JSON dict or a model with snake_case attributes."""
    value = ref.value
    if isinstance(value, str | AnyUrl):  # pydantic URL types are not str subclasses
        # A data: URI is a URI too, so the plain string form may carry inline bytes.
        is_url = str(value)[:5].lower() != "data:"
        return _Source(is_url=is_url, text=str(value), field=ref.field)
    if isinstance(value, Mapping):
        url, data = value.get("url"), value.get("dataBase64", value.get("data_base64"))
    else:
        url = getattr(value, "url", None)
        data = getattr(value, "data_base64", getattr(value, "dataBase64", None))
    if (url is None) == (data is None):
        raise BadRequest(
            f"{ref.field}: give exactly one of url or dataBase64.",
            details={"field": ref.field, "rule": "one_of"},
        )
    if url is not None:
        return _Source(is_url=True, text=str(url), field=f"{ref.field}.url")
    if not isinstance(data, str):
        raise BadRequest(
            f"{ref.field}.dataBase64: must be a string.",
            details={"field": f"{ref.field}.dataBase64", "rule": "type"},
        )
    return _Source(is_url=False, text=data, field=f"{ref.field}.dataBase64")


def _decode_base64(text: str, field: str, max_bytes: int) -> bytes:
    if text[:5].lower() == "data:":
        header, comma, text = text.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise _bad_base64(field, "a data URI must be base64 (data:<type>;base64,<data>).")
    # Line breaks every 76 characters are common (MIME); any other stray character is an error.
    text = "".join(text.split())
    # Refused before decoding, so an oversize payload costs no second copy in memory.
    if len(text) > 4 * math.ceil(max_bytes / 3):
        raise _too_large(field, max_bytes)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad_base64(field, f"not valid base64 ({exc}).") from exc
    if len(data) > max_bytes:
        raise _too_large(field, max_bytes)
    if not data:
        raise _bad_base64(field, "no data.")
    return data


def _write_webp(data: bytes, path: Path, field: str, max_pixels: int) -> tuple[int, dict[str, int]]:
    """Decode, turn upright, re-encode as WebP at `path`; returns its size, width and height."""
    try:
        with Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS) as image:
            width, height = image.size
            # Checked from the header, before a single pixel is decoded.
            if width * height > max_pixels:
                raise _too_many_pixels(field, max_pixels)
            if max(width, height) > WEBP_MAX_SIDE:
                raise BadRequest(
                    f"{field}: images may be at most {WEBP_MAX_SIDE} pixels on a side.",
                    details={"field": field, "rule": "max_side", "limit": WEBP_MAX_SIDE},
                )
            # PNG sources stay lossless; JPEG (and most WebP) sources were lossy already.
            lossless = image.format == "PNG"
            icc_profile = image.info.get("icc_profile")
            # Animated inputs keep their first frame: every engine takes a still image.
            upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own process-wide ceiling, hit in open() before our check can run (the
        # warning arrives as an exception only where warnings are errors, as in the tests).
        raise _too_many_pixels(field, max_pixels) from None
    except UnidentifiedImageError:
        raise BadRequest(
            f"{field}: not a PNG, JPEG or WebP image.",
            details={"field": field, "rule": "media_type"},
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt pixel data
        raise BadRequest(
            f"{field}: the image could not be decoded ({exc}).",
            details={"field": field, "rule": "decode"},
        ) from exc
    if upright.mode not in ("RGB", "RGBA"):
        upright = upright.convert("RGBA" if upright.has_transparency_data else "RGB")
    with path.open("xb") as out:
        # Saved without `exif=`: GPS and camera metadata do not travel on to engines or outputs.
        upright.save(
            out, format="WEBP", lossless=lossless, quality=95, method=4, icc_profile=icc_profile
        )
        size_bytes = out.tell()
    return size_bytes, {"width": upright.width, "height": upright.height}


def _write_new(path: Path, data: bytes) -> None:
    # "x": two fields that map to one file name fail loudly instead of overwriting each other.
    with path.open("xb") as out:
        out.write(data)


def _bad_base64(field: str, message: str) -> BadRequest:
    return BadRequest(f"{field}: {message}", details={"field": field, "rule": "base64"})


def _too_large(field: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{field}: the decoded file is over {max_bytes} bytes.",
        details={"field": field, "rule": "max_bytes", "limitBytes": max_bytes},
    )


def _too_many_pixels(field: str, max_pixels: int) -> BadRequest:
    return BadRequest(
        f"{field}: the image has more than {max_pixels} pixels.",
        details={"field": field, "rule": "max_pixels", "limit": max_pixels},
    )

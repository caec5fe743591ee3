from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from pydantic import BaseModel, Field, HttpUrl

from backend.engines.base import staged_input
from backend.http.errors import BadRequest, PayloadTooLarge
from backend.storage.fetch import SafeFetcher
from backend.storage.staging import InputStager, MediaKind, MediaRef, StagingLimits

from .conftest import png_bytes, wav_bytes


@pytest.fixture
def stager(fetcher: SafeFetcher) -> InputStager:
    limits = StagingLimits(image_bytes=100_000, audio_bytes=50_000, max_pixels=1_000_000)
    return InputStager(fetcher=fetcher, limits=limits)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def stage_one(
    stager: InputStager, tmp_path: Path, value: object, kind: MediaKind = "image"
) -> tuple[Path, str, int, dict[str, object]]:
    [staged] = await stager.stage(tmp_path, [MediaRef("sourceImage", kind, value)])
    assert staged.field == "sourceImage"
    return staged.path, staged.mime_type, staged.size_bytes, staged.properties


def jpeg_with_orientation(orientation: int) -> bytes:
    # Stored 40x20: left half red, right half blue.
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def near(pixel: object, expected: tuple[int, int, int]) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) < 40 for a, b in zip(pixel, expected, strict=True))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims huge dimensions: what a decompression bomb looks like up front."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


async def test_png_is_staged_as_lossless_webp(stager: InputStager, tmp_path: Path) -> None:
    source = Image.new("RGBA", (64, 48), (10, 200, 30, 128))
    source.putpixel((5, 7), (255, 0, 0, 255))
    buffer = io.BytesIO()
    source.save(buffer, format="PNG")

    path, mime, size, properties = await stage_one(
        stager, tmp_path, {"dataBase64": b64(buffer.getvalue()), "mimeType": "image/png"}
    )
    assert path == tmp_path / "inputs" / "sourceImage.webp"
    assert mime == "image/webp"
    assert size == path.stat().st_size
    assert properties == {"source": "inline", "width": 64, "height": 48}
    with Image.open(path) as staged:
        assert staged.format == "WEBP"
        assert staged.size == (64, 48)
        assert staged.mode == "RGBA"
        assert staged.getpixel((5, 7)) == (255, 0, 0, 255)
        assert staged.getpixel((0, 0)) == (10, 200, 30, 128)


async def test_exif_orientation_is_applied(stager: InputStager, tmp_path: Path) -> None:
    # Orientation 6: the camera was turned; the picture must be rotated 90° clockwise to view.
    path, _, _, properties = await stage_one(
        stager, tmp_path, {"dataBase64": b64(jpeg_with_orientation(6))}
    )
    assert (properties["width"], properties["height"]) == (20, 40)
    with Image.open(path) as staged:
        assert staged.size == (20, 40)
        assert "exif" not in staged.info  # orientation applied, metadata not carried on
        top, bottom = staged.getpixel((10, 5)), staged.getpixel((10, 35))
    # JPEG is lossy: near, not equal. Red on top (it was the left half), blue below.
    assert near(top, (255, 0, 0))
    assert near(bottom, (0, 0, 255))


@pytest.mark.parametrize("as_string", [False, True], ids=["dataBase64", "uri-string"])
async def test_data_uri_and_line_wrapped_base64_are_accepted(
    stager: InputStager, tmp_path: Path, as_string: bool
) -> None:
    encoded = b64(png_bytes(8, 8))
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    data_uri = f"data:image/png;base64,{wrapped}"
    value = data_uri if as_string else {"dataBase64": data_uri}
    path, _, _, properties = await stage_one(stager, tmp_path, value)
    assert path.suffix == ".webp"
    assert properties == {"source": "inline", "width": 8, "height": 8}


async def test_pydantic_models_and_urls_are_accepted(
    stager: InputStager, tmp_path: Path, http_server: str
) -> None:
    class InlineImage(BaseModel):
        url: HttpUrl | None = None
        data_base64: str | None = Field(default=None, alias="dataBase64")
        mime_type: str | None = Field(default=None, alias="mimeType")

    inline = InlineImage.model_validate({"dataBase64": b64(png_bytes()), "mimeType": "image/png"})
    by_url = InlineImage.model_validate({"url": f"http://{http_server}/image.png"})
    staged = await stager.stage(
        tmp_path,
        [
            MediaRef("sourceImage", "image", inline),
            MediaRef("referenceImages[0]", "image", by_url),
            MediaRef("referenceImages[1]", "image", HttpUrl(f"http://{http_server}/image.png")),
        ],
    )
    assert [s.properties["source"] for s in staged] == ["inline", "url", "url"]


async def test_oversize_base64_is_payload_too_large(stager: InputStager, tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        await stage_one(stager, tmp_path, {"dataBase64": b64(b"\x00" * 100_001)})
    assert caught.value.status == 413
    assert caught.value.details == {
        "field": "sourceImage.dataBase64",
        "rule": "max_bytes",
        "limitBytes": 100_000,
    }


async def test_payload_at_the_limit_is_decoded(stager: InputStager, tmp_path: Path) -> None:
    # Not an image, so it fails later, on its type: the size check let it through.
    with pytest.raises(BadRequest) as caught:
        await stage_one(stager, tmp_path, {"dataBase64": b64(b"\x00" * 100_000)})
    assert caught.value.details["rule"] == "media_type"


@pytest.mark.parametrize(
    "payload",
    ["not base64!", "abc", "YWJj$ZGVm", "data:image/png,rawbytes", "ñandú", ""],
    ids=["symbols", "padding", "stray-char", "non-base64-data-uri", "non-ascii", "empty"],
)
async def test_bad_base64_is_refused(stager: InputStager, tmp_path: Path, payload: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await stage_one(stager, tmp_path, {"dataBase64": payload})
    assert caught.value.details == {"field": "sourceImage.dataBase64", "rule": "base64"}


@pytest.mark.parametrize(
    "data",
    [b"GIF89a" + b"\x00" * 40, wav_bytes(), b"hello world"],
    ids=["gif", "wav", "text"],
)
async def test_non_image_bytes_for_an_image_field_are_refused(
    stager: InputStager, tmp_path: Path, data: bytes
) -> None:
    # The declared type is not believed: the bytes decide.
    with pytest.raises(BadRequest) as caught:
        await stage_one(stager, tmp_path, {"dataBase64": b64(data), "mimeType": "image/png"})
    assert caught.value.details == {"field": "sourceImage", "rule": "media_type"}


async def test_truncated_image_is_refused(stager: InputStager, tmp_path: Path) -> None:
    data = png_bytes(200, 200, (1, 2, 3))
    with pytest.raises(BadRequest) as caught:
        await stage_one(stager, tmp_path, {"dataBase64": b64(data[: len(data) // 2])})
    assert caught.value.details["rule"] == "decode"


async def test_image_over_the_pixel_limit_is_refused(stager: InputStager, tmp_path: Path) -> None:
    with pytest.raises(BadRequest) as caught:
        await stage_one(stager, tmp_path, {"dataBase64": b64(png_bytes(1001, 1000))})
    assert caught.value.details == {
        "field": "sourceImage",
        "rule": "max_pixels",
        "limit": 1_000_000,
    }


@pytest.mark.parametrize(
    ("width", "height"), [(2000, 2000), (100_000, 100_000)], ids=["over-ours", "over-pillows"]
)
async def test_decompression_bomb_is_refused_before_decoding(
    stager: InputStager, tmp_path: Path, width: int, height: int
) -> None:
    bomb = png_header_only(width, height)
    assert len(bomb) < 100
    with pytest.raises(BadRequest) as caught:
        await stage_one(stager, tmp_path, {"dataBase64": b64(bomb)})
    assert caught.value.details["rule"] == "max_pixels"


async def test_image_too_wide_for_webp_is_refused(tmp_path: Path, fetcher: SafeFetcher) -> None:
    stager = InputStager(fetcher=fetcher)
    with pytest.raises(BadRequest) as caught:
        await stage_one(stager, tmp_path, {"dataBase64": b64(png_header_only(20_000, 1))})
    assert caught.value.details["rule"] == "max_side"


@pytest.mark.parametrize(
    "value",
    [{}, {"url": "http://x/a.png", "dataBase64": "AAAA"}, {"mimeType": "image/png"}],
    ids=["empty", "both", "type-only"],
)
async def test_exactly_one_source_is_required(
    stager: InputStager, tmp_path: Path, value: object
) -> None:
    with pytest.raises(BadRequest) as caught:
        await stage_one(stager, tmp_path, value)
    assert caught.value.details == {"field": "sourceImage", "rule": "one_of"}


async def test_url_inputs_are_fetched_and_normalised(
    stager: InputStager, tmp_path: Path, http_server: str
) -> None:
    url = f"http://{http_server}/hops/1"
    path, mime, _, properties = await stage_one(stager, tmp_path, url)
    assert (path.suffix, mime) == (".webp", "image/webp")
    assert properties == {
        "source": "url",
        "url": f"http://{http_server}/hops/0",
        "width": 64,
        "height": 48,
    }


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("http://169.254.169.254/latest/", "sourceImage"),
        ({"url": "http://169.254.169.254/latest/"}, "sourceImage.url"),
    ],
)
async def test_url_errors_name_the_field(
    stager: InputStager, tmp_path: Path, value: object, field: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        await stage_one(stager, tmp_path, value)
    assert caught.value.details["field"] == field
    assert caught.value.details["rule"] == "blocked_address"


async def test_audio_is_kept_byte_for_byte(
    stager: InputStager, tmp_path: Path, http_server: str
) -> None:
    inline = wav_bytes()
    staged = await stager.stage(
        tmp_path,
        [
            MediaRef(
                "referenceAudio", "audio", {"dataBase64": b64(inline), "mimeType": "audio/wav"}
            ),
            # Served as binary/octet-stream: the bytes still say WAV.
            MediaRef("sourceAudio", "audio", f"http://{http_server}/audio"),
        ],
    )
    assert [(s.field, s.path.name, s.mime_type) for s in staged] == [
        ("referenceAudio", "referenceAudio.wav", "audio/wav"),
        ("sourceAudio", "sourceAudio.wav", "audio/wav"),
    ]
    assert staged[0].path.read_bytes() == inline
    assert staged[0].size_bytes == len(inline)


async def test_non_audio_bytes_for_an_audio_field_are_refused(
    stager: InputStager, tmp_path: Path
) -> None:
    with pytest.raises(BadRequest) as caught:
        await stager.stage(
            tmp_path, [MediaRef("referenceAudio", "audio", {"dataBase64": b64(png_bytes())})]
        )
    assert caught.value.details == {"field": "referenceAudio", "rule": "media_type"}


async def test_several_inputs_get_one_file_each(stager: InputStager, tmp_path: Path) -> None:
    refs = [
        MediaRef(f"referenceImages[{i}]", "image", {"dataBase64": b64(png_bytes(8 + i, 8))})
        for i in range(3)
    ]
    staged = await stager.stage(tmp_path, refs)
    assert [s.path.name for s in staged] == [
        "referenceImages-0.webp",
        "referenceImages-1.webp",
        "referenceImages-2.webp",
    ]
    assert [s.properties["width"] for s in staged] == [8, 9, 10]
    # Where the engines will look for them.
    assert staged_input(tmp_path, "referenceImages[1]", "https://x/1.png") == staged[1].path


async def test_video_is_kept_with_its_sniffed_extension(
    stager: InputStager, tmp_path: Path
) -> None:
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00" + b"\x00" * 64
    [staged] = await stager.stage(
        tmp_path, [MediaRef("videoUrls[0]", "video", {"dataBase64": b64(mp4)})]
    )
    assert (staged.path.name, staged.mime_type, staged.size_bytes) == (
        "videoUrls-0.mp4",
        "video/mp4",
        len(mp4),
    )


async def test_non_string_base64_is_refused(stager: InputStager, tmp_path: Path) -> None:
    with pytest.raises(BadRequest) as caught:
        await stage_one(stager, tmp_path, {"dataBase64": 12345})
    assert caught.value.details == {"field": "sourceImage.dataBase64", "rule": "type"}

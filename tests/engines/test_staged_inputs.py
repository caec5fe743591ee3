"""`staged_input`: how an engine finds the local file of a media input field."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from backend.engines.base import EngineError, input_file_stem, staged_input
from backend.media.tasks import MediaInlineImageSource


@pytest.mark.parametrize(
    ("field", "stem"),
    [
        ("sourceImage", "sourceImage"),
        ("videoUrls[2]", "videoUrls-2"),
        ("overlapFrameImages[11]", "overlapFrameImages-11"),
    ],
)
def test_file_stems(field: str, stem: str) -> None:
    assert input_file_stem(field) == stem


def test_the_staged_file_of_the_field_wins(work_dir: Path) -> None:
    inputs = work_dir / "inputs"
    inputs.mkdir()
    (inputs / "videoUrls-1.mp4").write_bytes(b"clip 1")
    (inputs / "videoUrls-10.mp4").write_bytes(b"clip 10")

    found = staged_input(work_dir, "videoUrls[1]", "https://clips.example/1.mp4")

    assert found.read_bytes() == b"clip 1"


def test_a_file_url_inside_the_work_folder_is_accepted(work_dir: Path) -> None:
    inside = work_dir / "downloaded.png"
    inside.write_bytes(b"png")

    assert staged_input(work_dir, "sourceImageUrl", inside.as_uri()) == inside.resolve()


def test_a_file_url_outside_the_work_folder_is_refused(work_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("worker credentials")

    with pytest.raises(EngineError, match="outside"):
        staged_input(work_dir, "sourceImageUrl", outside.as_uri())


def test_a_remote_url_that_was_not_staged_is_refused(work_dir: Path) -> None:
    with pytest.raises(EngineError, match="not staged"):
        staged_input(work_dir, "sourceImageUrl", "https://images.example/a.png")


def test_inline_data_is_decoded_into_inputs(work_dir: Path) -> None:
    data = base64.b64encode(b"\x89PNG fake").decode()
    value = MediaInlineImageSource(data_base64=data, mime_type="image/png")

    found = staged_input(work_dir, "referenceImages[0]", value)

    assert found == work_dir / "inputs" / "referenceImages-0.png"
    assert found.read_bytes() == b"\x89PNG fake"


def test_data_uris_are_decoded(work_dir: Path) -> None:
    uri = "data:image/webp;base64," + base64.b64encode(b"RIFF").decode()

    found = staged_input(work_dir, "startFrameImage", uri)

    assert (found.name, found.read_bytes()) == ("startFrameImage.webp", b"RIFF")

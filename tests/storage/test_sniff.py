from __future__ import annotations

import pytest

from backend.storage.sniff import Sniffed, sniff_audio, sniff_video

from .conftest import png_bytes, wav_bytes


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (wav_bytes(), Sniffed("audio/wav", ".wav")),
        (b"OggS" + b"\x00" * 24 + b"OpusHead" + b"\x00" * 8, Sniffed("audio/opus", ".opus")),
        (b"OggS" + b"\x00" * 24 + b"\x01vorbis" + b"\x00" * 8, Sniffed("audio/ogg", ".ogg")),
        (b"fLaC\x00\x00\x00\x22", Sniffed("audio/flac", ".flac")),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", Sniffed("audio/mpeg", ".mp3")),
        (b"\xff\xfb\x90\x64", Sniffed("audio/mpeg", ".mp3")),  # MPEG-1 layer III frame
        (b"\xff\xf1\x50\x80", Sniffed("audio/aac", ".aac")),  # ADTS
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", Sniffed("audio/mp4", ".m4a")),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", Sniffed("audio/webm", ".webm")),
    ],
)
def test_audio_containers(head: bytes, expected: Sniffed) -> None:
    assert sniff_audio(head) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", Sniffed("video/mp4", ".mp4")),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", Sniffed("video/quicktime", ".mov")),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm", Sniffed("video/webm", ".webm")),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska", Sniffed("video/x-matroska", ".mkv")),
        (b"RIFF\x00\x00\x00\x00AVI LIST", Sniffed("video/x-msvideo", ".avi")),
    ],
)
def test_video_containers(head: bytes, expected: Sniffed) -> None:
    assert sniff_video(head) == expected


@pytest.mark.parametrize("data", [b"", b"\xff", b"hello", png_bytes(), b"RIFF\x00\x00\x00\x00AVI "])
def test_other_bytes_are_not_audio(data: bytes) -> None:
    assert sniff_audio(data) is None


@pytest.mark.parametrize("data", [b"", wav_bytes(), png_bytes(), b"ID3\x04"])
def test_other_bytes_are_not_video(data: bytes) -> None:
    assert sniff_video(data) is None

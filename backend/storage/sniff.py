"""Audio and video container detection from the first bytes, whatever the client declared.

Images are not here: Pillow's own format detection, restricted to the formats we accept, is the
sniff for them (see `staging`). A match here only means "worth handing to the decoder"; the
engine's decoder is the final word.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sniffed:
    mime_type: str
    extension: str


def sniff_audio(data: bytes) -> Sniffed | None:
    head = data[:64]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("audio/wav", ".wav")
    if head[:4] == b"OggS":
        # The first page's packet starts at byte 28; Opus names itself there.
        if head[28:36] == b"OpusHead":
            return Sniffed("audio/opus", ".opus")
        return Sniffed("audio/ogg", ".ogg")
    if head[:4] == b"fLaC":
        return Sniffed("audio/flac", ".flac")
    if head[4:8] == b"ftyp":
        return Sniffed("audio/mp4", ".m4a")
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM / Matroska
        return Sniffed("audio/webm", ".webm")
    if head[:3] == b"ID3":
        return Sniffed("audio/mpeg", ".mp3")
    if len(head) >= 2 and head[0] == 0xFF:
        # Both are frame-sync headers; the two layer bits are 00 for AAC (ADTS), not for MP3.
        if head[1] & 0xF6 == 0xF0:
            return Sniffed("audio/aac", ".aac")
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
            return Sniffed("audio/mpeg", ".mp3")
    return None


def sniff_video(data: bytes) -> Sniffed | None:
    head = data[:64]
    if head[4:8] == b"ftyp":
        if head[8:12] == b"qt  ":
            return Sniffed("video/quicktime", ".mov")
        return Sniffed("video/mp4", ".mp4")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        # The EBML DocType comes within the first few dozen bytes.
        if b"webm" in head:
            return Sniffed("video/webm", ".webm")
        return Sniffed("video/x-matroska", ".mkv")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Sniffed("video/x-msvideo", ".avi")
    return None

"""Test media made on the spot with PyAV, and helpers that read outputs back."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from backend.engines.base import INPUTS_DIR, JobCanceled, input_file_stem


def write_clip(
    path: Path,
    *,
    frames: int,
    fps: int,
    width: int = 64,
    height: int = 48,
    color: tuple[int, int, int] = (200, 40, 40),
    tone_hz: float | None = None,
    audio_rate: int = 44_100,
) -> Path:
    """An H.264 MP4 whose frame i has `color` with a bright bar at column 2*i (so frames differ),
    plus an optional sine tone on an AAC track as long as the video."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"crf": "10"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = None
        if tone_hz is not None:
            audio = container.add_stream("aac", rate=audio_rate, layout="stereo")
        for i in range(frames):
            image = np.empty((height, width, 3), np.uint8)
            image[:] = color
            image[:, (2 * i) % width] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            assert tone_hz is not None
            total = round(frames / fps * audio_rate)
            t = np.arange(total) / audio_rate
            wave = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
            stereo = np.stack([wave, wave])
            for start in range(0, total, 4096):
                chunk = np.ascontiguousarray(stereo[:, start : start + 4096])
                sound = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                sound.sample_rate = audio_rate
                sound.pts = start
                container.mux(audio.encode(sound))
            container.mux(audio.encode(None))
    return path


def write_image(path: Path, *, size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_wav(path: Path, *, seconds: float, rate: int = 22_050) -> Path:
    samples = (0.2 * np.sin(2 * np.pi * 330 * np.arange(round(seconds * rate)) / rate)).astype(
        np.float32
    )
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (samples * 32767).astype(np.int16)[None], format="s16", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@dataclass(frozen=True)
class VideoFacts:
    width: int
    height: int
    frames: int
    fps: Fraction | None
    codec: str
    audio_codec: str | None
    audio_seconds: float
    pixels: list[np.ndarray] = field(repr=False)


def decode_video(path: Path) -> VideoFacts:
    """Decode every frame (and the audio) of a file: facts from the media, not the headers."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pixels = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        fps = stream.average_rate
        codec = stream.codec_context.name
    audio_codec, audio_samples, audio_rate = None, 0, 1
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            audio_codec, audio_rate = audio.codec_context.name, audio.codec_context.sample_rate
            audio_samples = sum(frame.samples for frame in container.decode(audio))
    height, width = pixels[0].shape[:2]
    return VideoFacts(
        width, height, len(pixels), fps, codec, audio_codec, audio_samples / audio_rate, pixels
    )


@dataclass
class RecordingProgress:
    """A `Progress` that records reports and cancels when asked to at a given report."""

    cancel_at: int | None = None
    reports: list[tuple[float, str]] = field(default_factory=list)

    def report(self, percent: float, message: str) -> None:
        self.reports.append((percent, message))
        if self.cancel_at is not None and len(self.reports) >= self.cancel_at:
            raise JobCanceled


def stage_file(work_dir: Path, field: str, source: Path) -> Path:
    """Put `source` where the jobs layer stages the input at request field path `field`."""
    inputs = work_dir / INPUTS_DIR
    inputs.mkdir(parents=True, exist_ok=True)
    target = inputs / f"{input_file_stem(field)}{source.suffix}"
    target.write_bytes(source.read_bytes())
    return target


def output_files(work_dir: Path) -> list[Path]:
    """Everything under the work folder's outputs/, partial files included."""
    return sorted(path for path in (work_dir / "outputs").rglob("*") if path.is_file())

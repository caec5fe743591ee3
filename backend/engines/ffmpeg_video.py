"""video.combine and video.resize with PyAV, plus the MP4 plumbing every video engine shares.

PyAV's wheel bundles FFmpeg with libx264 and the native AAC encoder, so no system ffmpeg is
needed. Frames stream through one at a time: a combine of 24 long clips holds at most the
cross-fade window in memory, never whole clips (the audio tracks, small, are held whole).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import av
import numpy as np
from av.video.format import VideoFormat
from av.video.frame import VideoFrame

from backend.engines.base import (
    EngineError,
    EngineResult,
    InputAdjustment,
    OutputFile,
    Progress,
    outputs_dir,
    staged_input,
)
from backend.media.tasks import VideoCombineInput, VideoResizeInput

MP4_MIME = "video/mp4"
AUDIO_RATE = 48_000
AUDIO_BITRATE = 192_000
# CRF 18 is visually lossless for H.264: outputs are often stitched or resized again later.
# "fast" keeps CPU-only workers usable; slower presets only shrink the file a little.
X264_OPTIONS = {"crf": "18", "preset": "fast"}
# How many frames pass between progress reports (and cancel checks).
PROGRESS_EVERY = 8
# Audio is muxed up to this far ahead of the video, so the two tracks stay interleaved.
AUDIO_LEAD_SECONDS = 0.5


class Mp4Writer:
    """H.264 (yuv420p) video plus an optional AAC stereo track into an MP4.

    Writes under a temporary name and renames on a clean exit: a failed or canceled job never
    leaves a partial file where an output is expected. Audio is queued with `add_audio` and muxed
    alongside the video as frames arrive.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        rate: Fraction | int,
        with_audio: bool,
        time_base: Fraction | None = None,
    ) -> None:
        if width % 2 or height % 2:
            raise EngineError(f"H.264 needs even dimensions, got {width}x{height}")
        self.path = path
        self._partial = path.with_name(f".{path.name}.partial")
        self._container = av.open(
            str(self._partial), "w", format="mp4", options={"movflags": "+faststart"}
        )
        self._video = self._container.add_stream("libx264", rate=rate, options=X264_OPTIONS)
        self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
        if time_base is not None:
            # The encoder's own time base too: left at 1/rate it would round variable-rate
            # timestamps onto a fixed grid, where two frames can land on one tick (and fail).
            self._video.time_base = self._video.codec_context.time_base = time_base
        self._time_base = time_base or Fraction(1) / Fraction(rate)
        self._frames = 0
        self._audio = None
        if with_audio:
            self._audio = self._container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
            self._audio.bit_rate = AUDIO_BITRATE
        self._pending_audio: deque[np.ndarray] = deque()
        self._audio_written = 0

    def add_audio(self, samples: np.ndarray) -> None:
        """Append float32 `(2, n)` samples at 48 kHz to the audio track."""
        if self._audio is None:
            raise ValueError("this writer has no audio track")
        if samples.shape[1]:
            self._pending_audio.append(np.ascontiguousarray(samples, dtype=np.float32))

    def write_frame(self, image: np.ndarray | VideoFrame, pts: int | None = None) -> None:
        """Encode one frame: an RGB `(h, w, 3)` uint8 array or a decoded frame already sized.

        `pts` is in the writer's time base; by default frames follow each other at `rate`.
        """
        frame = image if isinstance(image, VideoFrame) else VideoFrame.from_ndarray(image, "rgb24")
        frame.pts = self._frames if pts is None else pts
        frame.time_base = self._time_base
        self._frames += 1
        self._container.mux(self._video.encode(frame))
        self._drain_audio(until=float(frame.pts * self._time_base) + AUDIO_LEAD_SECONDS)

    @property
    def frames_written(self) -> int:
        return self._frames

    def _drain_audio(self, until: float | None) -> None:
        if self._audio is None:
            return
        limit = math.inf if until is None else round(until * AUDIO_RATE)
        while self._pending_audio and self._audio_written < limit:
            chunk = self._pending_audio.popleft()
            take = int(min(chunk.shape[1], limit - self._audio_written))
            if take < chunk.shape[1]:
                self._pending_audio.appendleft(chunk[:, take:])
                chunk = chunk[:, :take]
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk), format="fltp", layout="stereo"
            )
            frame.sample_rate = AUDIO_RATE
            frame.pts = self._audio_written
            self._audio_written += take
            self._container.mux(self._audio.encode(frame))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._container.mux(self._video.encode(None))
                self._drain_audio(until=None)
                if self._audio is not None:
                    self._container.mux(self._audio.encode(None))
        finally:
            self._container.close()
        if exc_type is None and self._frames:
            self._partial.replace(self.path)
        else:
            self._partial.unlink(missing_ok=True)
            if exc_type is None:
                raise EngineError("no video frames were produced")


def probe_video(path: Path) -> dict[str, Any]:
    """Facts about a written MP4, read back from the file itself (for `OutputFile.properties`)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for packet in container.demux(video) if packet.size)
        fps = video.average_rate or video.guessed_rate
        facts: dict[str, Any] = {
            "width": video.width,
            "height": video.height,
            "frames": frames,
            "fps": float(fps) if fps else None,
            "durationSeconds": round(frames / float(fps), 3) if fps else None,
            "videoCodec": video.codec_context.name,
            "hasAudio": bool(container.streams.audio),
        }
        if container.streams.audio:
            audio = container.streams.audio[0]
            facts["audioCodec"] = audio.codec_context.name
            facts["audioSampleRate"] = audio.codec_context.sample_rate
    return facts


def video_output(path: Path) -> OutputFile:
    return OutputFile(path, MP4_MIME, probe_video(path))


def read_audio(path: Path, *, start: float = 0.0) -> np.ndarray | None:
    """The first audio track as float32 `(2, n)` at 48 kHz, sample 0 at media time `start`
    (the first video frame's time, so video and audio stay in sync). None without audio."""
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    parts: list[np.ndarray] = []
    first_time: float | None = None
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        for frame in container.decode(container.streams.audio[0]):
            if first_time is None and frame.time is not None:
                first_time = frame.time
            parts.extend(out.to_ndarray() for out in resampler.resample(frame))
        parts.extend(out.to_ndarray() for out in resampler.resample(None))
    samples = np.concatenate(parts, axis=1) if parts else np.zeros((2, 0), np.float32)
    offset = round(((first_time or 0.0) - start) * AUDIO_RATE)
    if offset > 0:  # the audio starts after the first frame: lead in with silence
        samples = np.concatenate([np.zeros((2, offset), np.float32), samples], axis=1)
    elif offset < 0:
        samples = samples[:, -offset:]
    return samples.astype(np.float32, copy=False)


def interpolate(
    frames: Iterable[VideoFrame], *, width: int, height: int, source_fps: int, target_fps: int
) -> Iterator[VideoFrame]:
    """Motion-compensated frame-rate conversion with FFmpeg's `minterpolate` filter.

    N frames at `source_fps` become (N - 1) * target / source + 1 frames: the first and last
    frames stay where they were. `tpad` repeats the last frame once so minterpolate (which only
    emits frames between two inputs) reaches it.
    """
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=width,
        height=height,
        format=VideoFormat("yuv420p"),
        time_base=Fraction(1, source_fps),
    )
    pad = graph.add("tpad", "stop_mode=clone:stop=1")
    motion = graph.add("minterpolate", f"fps={target_fps}:mi_mode=mci")
    graph.link_nodes(source, pad, motion, graph.add("buffersink")).configure()

    def pull() -> Iterator[VideoFrame]:
        while True:
            try:
                yield graph.vpull()
            except (av.BlockingIOError, av.EOFError):
                return

    for index, frame in enumerate(frames):
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = index, Fraction(1, source_fps)
        graph.vpush(frame)
        yield from pull()
    graph.vpush(None)
    yield from pull()


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Trim or pad with silence to exactly `length` samples."""
    if samples.shape[1] >= length:
        return samples[:, :length]
    return np.pad(samples, ((0, 0), (0, length - samples.shape[1])))


def even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


class _Clip:
    """One source clip: its video stream's geometry and timing, its frames and its audio."""

    def __init__(self, path: Path, field: str) -> None:
        self.path, self.field = path, field
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise EngineError(f"{field} holds no video stream")
                video = container.streams.video[0]
                self.width, self.height = video.width, video.height
                self.frame_rate = video.average_rate or video.guessed_rate
                self.rate = float(self.frame_rate) if self.frame_rate else None
                self.time_base = video.time_base
                if video.duration is not None and video.time_base is not None:
                    self.duration = float(video.duration * video.time_base)
                else:
                    self.duration = (container.duration or 0) / av.time_base
            self.start = self._first_frame_time()
        except av.FFmpegError as exc:
            raise EngineError(f"{field} is not a decodable video: {exc}") from exc

    def _first_frame_time(self) -> float:
        with av.open(str(self.path)) as container:
            for frame in container.decode(video=0):
                return frame.time or 0.0
        raise EngineError(f"{self.field} holds no video frames")

    def audio(self) -> np.ndarray | None:
        """The clip's audio, in step with its first frame (see `read_audio`)."""
        try:
            return read_audio(self.path, start=self.start)
        except av.FFmpegError as exc:
            raise EngineError(f"{self.field}: its audio could not be decoded: {exc}") from exc

    def frames(self) -> Iterator[VideoFrame]:
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                yield from container.decode(stream)
        except av.FFmpegError as exc:
            raise EngineError(f"{self.field} could not be decoded: {exc}") from exc

    def frames_at(self, fps: int) -> Iterator[VideoFrame]:
        """The clip resampled to a constant `fps`: output frame k shows whatever source frame is
        on screen at time k / fps (frames are repeated or dropped, as FFmpeg's fps filter does)."""
        previous: VideoFrame | None = None
        previous_time = 0.0
        index = 0
        for frame in self.frames():
            time = frame.time - self.start if frame.time is not None else previous_time
            while previous is not None and index / fps < time - 1e-6:
                yield previous
                index += 1
            previous, previous_time = frame, time
        if previous is None:
            raise EngineError(f"{self.field} holds no video frames")
        # The last frame stays on screen for one source frame duration.
        end = previous_time + (1 / self.rate if self.rate else 1 / fps)
        while index / fps < end - 1e-6:
            yield previous
            index += 1


def _letterbox(frame: VideoFrame, width: int, height: int) -> np.ndarray:
    """Scale into a `width` x `height` canvas, aspect ratio kept (black bars where it differs)."""
    if (frame.width, frame.height) == (width, height):
        return frame.to_ndarray(format="rgb24")
    scale = min(width / frame.width, height / frame.height)
    inner_w, inner_h = even(frame.width * scale), even(frame.height * scale)
    inner = frame.reformat(inner_w, inner_h, "rgb24", interpolation="BICUBIC").to_ndarray()
    if (inner_w, inner_h) == (width, height):
        return inner
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - inner_h) // 2, (width - inner_w) // 2
    canvas[top : top + inner_h, left : left + inner_w] = inner
    return canvas


class VideoCombineEngine:
    """video.combine: concatenate 2-24 clips on one canvas at `frameRate`.

    The spec's `overlapFrames` are the head frames of every clip after the first that duplicate
    the previous clip's tail (continuation clips start on the previous clip's last frames): they
    are removed, as the spec says, picture and sound alike, so the seams do not stutter. Clips
    without audio contribute silence.
    """

    def run(self, task: VideoCombineInput, work_dir: Path, progress: Progress) -> EngineResult:
        overlap, fps = task.overlap_frames, task.frame_rate
        fields = [f"videoUrls[{i}]" for i in range(len(task.video_urls))]
        clips = [
            _Clip(staged_input(work_dir, field, url), field)
            for field, url in zip(fields, task.video_urls, strict=True)
        ]
        width, height = even(clips[0].width), even(clips[0].height)
        adjustments = [
            InputAdjustment(
                field=clip.field,
                requested=f"{clip.width}x{clip.height}",
                effective=f"{width}x{height}",
                reason="clips are combined on the first clip's canvas, scaled to fit (aspect "
                "ratio kept, black bars where it differs)",
            )
            for clip in clips[1:]
            if (clip.width, clip.height) != (width, height)
        ]
        audio = [clip.audio() for clip in clips]
        with_audio = any(track is not None for track in audio)
        estimated = sum(max(1, math.ceil(clip.duration * fps)) for clip in clips)

        path = outputs_dir(work_dir) / "combined.mp4"
        progress.report(0, f"combining {len(clips)} clips at {fps} fps")
        with Mp4Writer(path, width=width, height=height, rate=fps, with_audio=with_audio) as out:
            processed = 0
            for number, clip in enumerate(clips):
                head = overlap if number else 0
                count = 0
                for count, frame in enumerate(clip.frames_at(fps), start=1):
                    if count > head:
                        out.write_frame(_letterbox(frame, width, height))
                    processed += 1
                    if processed % PROGRESS_EVERY == 0:
                        progress.report(
                            min(99.0, 100 * processed / max(estimated, 1)),
                            f"clip {number + 1}/{len(clips)}, frame {out.frames_written}",
                        )
                if count <= head:
                    raise EngineError(
                        f"{clip.field} has {count} frame(s) at {fps} fps: nothing is left after "
                        f"removing overlapFrames ({overlap}) duplicated head frames"
                    )
                if with_audio:
                    out.add_audio(self._clip_audio(audio[number], count, head, fps))
        output = video_output(path)
        progress.report(100, "combined")
        return EngineResult(
            files=[output],
            result={"clips": len(clips), "overlapFrames": overlap, "frameRate": fps},
            adjustments=adjustments,
        )

    @staticmethod
    def _clip_audio(track: np.ndarray | None, frames: int, head: int, fps: int) -> np.ndarray:
        """The clip's audio for the frames it adds to the timeline: its head (the overlap) cut."""
        start = round(head * AUDIO_RATE / fps)
        length = round(frames * AUDIO_RATE / fps) - start
        if track is None:
            return np.zeros((2, length), np.float32)
        return fit_length(track[:, start:], length)


class VideoResizeEngine:
    """video.resize: scale every frame to exactly `width` x `height` (the spec asks for explicit
    even dimensions, so the picture is stretched if the aspect ratio changes; nothing is cropped
    or padded). Timing is the source's own: frame timestamps are kept, audio re-encoded to AAC."""

    def run(self, task: VideoResizeInput, work_dir: Path, progress: Progress) -> EngineResult:
        field = "sourceVideoUrl"
        clip = _Clip(staged_input(work_dir, field, task.source_video_url), field)
        width, height = task.width, task.height
        track = clip.audio()
        estimated = max(1, round(clip.duration * (clip.rate or 30)))

        path = outputs_dir(work_dir) / "resized.mp4"
        progress.report(0, f"resizing {clip.width}x{clip.height} to {width}x{height}")
        with Mp4Writer(
            path,
            width=width,
            height=height,
            rate=clip.frame_rate or 30,
            with_audio=track is not None,
            time_base=clip.time_base,
        ) as out:
            if track is not None:
                out.add_audio(track)
            origin: int | None = None
            last_pts = -1
            for frame in clip.frames():
                pts = frame.pts if frame.pts is not None else last_pts + 1
                origin = pts if origin is None else origin
                # Timestamps must increase strictly; a broken source must not abort the encode.
                last_pts = max(pts - origin, last_pts + 1)
                scaled = frame.reformat(width, height, "yuv420p", interpolation="BICUBIC")
                out.write_frame(scaled, pts=last_pts)
                if out.frames_written % PROGRESS_EVERY == 0:
                    done = min(99.0, 100 * out.frames_written / estimated)
                    progress.report(done, f"frame {out.frames_written}")
        output = video_output(path)
        progress.report(100, "resized")
        return EngineResult(
            files=[output],
            result={"width": width, "height": height, "frames": output.properties["frames"]},
        )

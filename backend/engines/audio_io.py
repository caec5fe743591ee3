"""Audio plumbing shared by the audio engines: decode staged inputs, write Ogg Opus / WAV outputs.

Everything goes through PyAV (its wheel bundles FFmpeg with libopus), so no system ffmpeg is needed.
Inputs are found with `base.staged_input`; outputs are written under a temporary name and renamed
when complete, so a failed or canceled job never leaves a half-written file where an output goes.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from backend.engines.base import (
    EngineError,
    EngineResult,
    InputAdjustment,
    OutputFile,
    Progress,
    outputs_dir,
    staged_input,
)
from backend.media.tasks import AudioSpeakInput

# The spec's `quality` presets for Opus outputs.
OPUS_BITRATES: dict[str, int] = {"96k": 96_000, "128k": 128_000, "192k": 192_000}
DEFAULT_OPUS_QUALITY = "128k"
# libopus takes only 8/12/16/24/48 kHz (it rejects piper's 22,050 Hz): Opus always goes out at 48k.
OPUS_RATE = 48_000
# Leave headroom below 0 dBFS so the lossy encode does not clip inter-sample peaks.
PEAK_CEILING = 10 ** (-1.0 / 20)


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def speak_reference_path(task: AudioSpeakInput, work_dir: Path) -> Path:
    """The staged reference clip of a voice_clone task (the task model guarantees one)."""
    if task.reference_audio is not None:
        return staged_input(work_dir, "referenceAudio", task.reference_audio)
    assert task.reference_audio_url is not None, "voice_clone requires reference audio"
    return staged_input(work_dir, "referenceAudioUrl", task.reference_audio_url)


def load_audio(path: Path, *, rate: int, channels: int) -> np.ndarray:
    """Decode any container/codec FFmpeg knows into float32 `(channels, samples)` at `rate`."""
    layout = "mono" if channels == 1 else "stereo"
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    parts: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise EngineError(f"{path.name} holds no audio stream")
            for frame in container.decode(container.streams.audio[0]):
                parts.extend(out.to_ndarray() for out in resampler.resample(frame))
            parts.extend(out.to_ndarray() for out in resampler.resample(None))
    except av.FFmpegError as exc:
        raise EngineError(f"{path.name} is not decodable audio: {exc}") from exc
    if not parts:
        raise EngineError(f"{path.name} holds no audio samples")
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


def limit_peak(samples: np.ndarray) -> np.ndarray:
    """Scale down (never up) so the peak sits at -1 dBFS; silence and quiet audio pass unchanged."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak <= PEAK_CEILING:
        return samples
    return (samples * (PEAK_CEILING / peak)).astype(np.float32)


def write_ogg_opus(samples: np.ndarray, rate: int, path: Path, *, bitrate: int) -> None:
    """Encode float32 `(channels, samples)` to Ogg Opus at 48 kHz.

    Constrained VBR: plain VBR overshoots the requested rate by ~25% on speech; constrained VBR
    lands within a few percent of it (measured on piper output), as a "192k" preset promises.
    """
    channels = samples.shape[0]
    layout = "mono" if channels == 1 else "stereo"
    interleaved = np.ascontiguousarray(limit_peak(samples).T.reshape(1, -1), dtype=np.float32)
    frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=layout)
    frame.sample_rate = rate
    # libopus wants 20 ms frames (960 samples at 48 kHz); the resampler cuts them.
    resampler = av.AudioResampler(format="flt", layout=layout, rate=OPUS_RATE, frame_size=960)
    partial = partial_path(path)
    with av.open(str(partial), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=OPUS_RATE, layout=layout)
        stream.bit_rate = bitrate
        stream.codec_context.options = {"vbr": "constrained"}
        for chunk in (*resampler.resample(frame), *resampler.resample(None), None):
            for packet in stream.encode(chunk):
                container.mux(packet)
    partial.replace(path)


def write_wav(samples: np.ndarray, rate: int, path: Path) -> None:
    """Write float32 `(channels, samples)` as 16-bit PCM WAV."""
    pcm = np.clip(limit_peak(samples), -1.0, 1.0)
    interleaved = (pcm.T * 32767.0).round().astype("<i2")
    write_wav_pcm16(interleaved.tobytes(), rate, samples.shape[0], path)


def write_wav_pcm16(pcm: bytes, rate: int, channels: int, path: Path) -> None:
    """Wrap interleaved little-endian 16-bit PCM in a WAV header, sample for sample."""
    partial = partial_path(path)
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    partial.replace(path)


def opus_output(samples: np.ndarray, rate: int, path: Path, *, quality: str | None) -> OutputFile:
    """Encode at the `quality` preset's bitrate and describe the file as it decodes."""
    bitrate = OPUS_BITRATES[quality or DEFAULT_OPUS_QUALITY]
    write_ogg_opus(samples, rate, path, bitrate=bitrate)
    properties = probe_audio(path).as_properties()
    properties["quality"] = quality or DEFAULT_OPUS_QUALITY
    return OutputFile(path, "audio/ogg", properties)


def speech_result(
    samples: np.ndarray,
    rate: int,
    work_dir: Path,
    progress: Progress,
    *,
    text: str,
    quality: str | None,
    result: dict[str, Any],
    adjustments: list[InputAdjustment] | None = None,
) -> EngineResult:
    """What every speech family ends with: mono samples encoded as `speech.ogg`, described."""
    progress.report(92, "encoding")
    output = opus_output(
        samples[None, :], rate, outputs_dir(work_dir) / "speech.ogg", quality=quality
    )
    progress.report(100, "done")
    return EngineResult(
        files=[output],
        result={
            **result,
            "durationSeconds": output.properties["durationSeconds"],
            "characters": len(text),
        },
        adjustments=adjustments or [],
    )


def ignored_field(field: str, requested: Any, reason: str) -> InputAdjustment:
    """A field the engine that ran does not support: reported, never silently dropped."""
    return InputAdjustment(field=field, requested=requested, effective=None, reason=reason)


@dataclass(frozen=True)
class AudioFacts:
    duration_seconds: float
    sample_rate: int
    channels: int
    bit_rate: int

    def as_properties(self) -> dict[str, Any]:
        return {
            "durationSeconds": round(self.duration_seconds, 3),
            "sampleRate": self.sample_rate,
            "channels": self.channels,
            "bitRate": self.bit_rate,
        }


def probe_audio(path: Path) -> AudioFacts:
    """Decode the written file to report its true duration (headers of Ogg files are not enough)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        samples = sum(frame.samples for frame in container.decode(stream))
        channels = stream.codec_context.channels
    duration = samples / rate
    bit_rate = round(path.stat().st_size * 8 / duration) if duration else 0
    return AudioFacts(duration, rate, channels, bit_rate)

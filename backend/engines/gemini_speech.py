"""audio.speak provider=gemini: Google's Gemini TTS over its REST API, billed exactly per character.

One `POST {base_url}/v1beta/models/{model}:generateContent` with `responseModalities: ["AUDIO"]`
and a prebuilt voice; the answer carries base64 16-bit PCM (`audio/L16;codec=pcm;rate=24000`),
written out unchanged as a mono WAV (the spec promises "single-speaker WAV output").

Billing: the job holds a quote at submit and captures the exact bill here: the characters of the
user's content actually sent (text plus instructions; our fixed preamble is not billed), at the
unit price the operator configured. The jobs layer caps the capture at the hold.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

import httpx

from backend.engines.audio_io import probe_audio, write_wav_pcm16
from backend.engines.base import EngineError, EngineResult, OutputFile, Progress, outputs_dir
from backend.media.tasks import AudioSpeakInput

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
GEMINI_TTS_MODEL = "gemini-3.1-flash-tts-preview"
DEFAULT_VOICE = "Kore"
# The spec's wording for prepending delivery instructions to the literal text.
INSTRUCTIONS_PREAMBLE = "Read the following text exactly as written:"
_RATE = re.compile(r"rate=(\d+)")


class GeminiSpeechEngine:
    provider = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        price_micros_per_1k_chars: int,
        base_url: str = GEMINI_BASE_URL,
        model: str = GEMINI_TTS_MODEL,
        timeout_seconds: float = 120.0,
    ) -> None:
        if not api_key:
            raise ValueError("a Gemini API key is required")
        self._api_key = api_key
        self._price = price_micros_per_1k_chars
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._timeout = timeout_seconds

    def billed_characters(self, task: AudioSpeakInput) -> int:
        return len(task.text) + len(task.instructions or "")

    def cost_micros(self, characters: int) -> int:
        # Integer ceiling: a partial thousand is billed pro rata, rounded up to the micro.
        return -(-characters * self._price // 1000)

    def run(self, task: AudioSpeakInput, work_dir: Path, progress: Progress) -> EngineResult:
        voice = task.voice_name or DEFAULT_VOICE
        prompt = task.text
        if task.instructions:
            prompt = f"{task.instructions}\n\n{INSTRUCTIONS_PREAMBLE}\n{task.text}"
        speech_config: dict[str, Any] = {
            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}
        }
        if task.language is not None:
            speech_config["languageCode"] = "en-US"
        body = {
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"responseModalities": ["AUDIO"], "speechConfig": speech_config},
        }

        progress.report(5, "requesting speech from Gemini")
        answer = self._generate(body)
        pcm, rate = _audio_of(answer)
        progress.report(90, "writing audio")
        path = outputs_dir(work_dir) / "speech.wav"
        write_wav_pcm16(pcm, rate, 1, path)
        facts = probe_audio(path)
        characters = self.billed_characters(task)
        progress.report(100, "done")
        return EngineResult(
            files=[OutputFile(path, "audio/wav", facts.as_properties())],
            result={
                "provider": self.provider,
                "model": answer.get("modelVersion") or self._model,
                "voiceName": voice,
                "durationSeconds": round(facts.duration_seconds, 3),
                "billedCharacters": characters,
                "usage": answer.get("usageMetadata", {}),
            },
            measured_cost_micros=self.cost_micros(characters),
        )

    def _generate(self, body: dict[str, Any]) -> dict[str, Any]:
        # One client per job: a job makes one request, and nothing is left open between jobs.
        try:
            with httpx.Client(
                base_url=self._base_url,
                headers={"x-goog-api-key": self._api_key},
                timeout=self._timeout,
            ) as client:
                response = client.post(f"/v1beta/models/{self._model}:generateContent", json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"Gemini TTS could not be reached: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            message = _error_message(response)
            raise EngineError(f"Gemini TTS refused the request ({response.status_code}): {message}")
        try:
            answer: dict[str, Any] = response.json()
        except ValueError as exc:
            raise EngineError("Gemini TTS answered with something that is not JSON") from exc
        return answer


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase


def _audio_of(answer: dict[str, Any]) -> tuple[bytes, int]:
    """The concatenated PCM of every audio part of the first candidate, and its sample rate."""
    candidates = answer.get("candidates") or [{}]
    parts = (candidates[0].get("content") or {}).get("parts") or []
    pcm = bytearray()
    rate = 24_000
    for part in parts:
        inline = part.get("inlineData") or {}
        mime = str(inline.get("mimeType", ""))
        if not mime.startswith("audio/"):
            continue
        if "l16" not in mime.lower() and "pcm" not in mime.lower():
            raise EngineError(f"Gemini TTS returned {mime}, expected 16-bit PCM")
        if match := _RATE.search(mime):
            rate = int(match.group(1))
        try:
            pcm += base64.b64decode(inline.get("data", ""), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EngineError("Gemini TTS returned audio that is not valid base64") from exc
    if not pcm:
        reason = candidates[0].get("finishReason") or answer.get("promptFeedback", {}).get(
            "blockReason", "unknown"
        )
        raise EngineError(f"Gemini TTS returned no audio (finish reason: {reason})")
    return bytes(pcm), rate

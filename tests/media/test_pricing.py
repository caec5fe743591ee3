"""quote_price: the documented table, exact integer micros, the +50% premiums and the minimum."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backend.http.errors import BadRequest
from backend.media.adjustments import resolve_input
from backend.media.pricing import PriceQuote, price_table, quote_price
from backend.media.tasks import MAX_VIDEO_PIXELS, TASK_MODELS, MediaTask
from backend.media.validation import parse_media_job
from tests.media.test_spec_conformance import VARIANTS, request_strategy

URL = "https://cdn.example.com/a.webp"
MINIMUM = price_table()["minimumChargeMicros"]


def quote(
    task: str, input_: dict[str, Any], durations: Sequence[float] | None = None
) -> PriceQuote:
    body = {"task": task, "input": input_}
    parsed = parse_media_job(body)
    return quote_price(parsed, resolve_input(parsed, body), input_durations_seconds=durations)


# --- the table -----------------------------------------------------------------------------------


def _unit_prices(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [
            item for key, value in node.items() for item in _unit_prices(value, f"{path}.{key}")
        ]
    if isinstance(node, list):
        return [
            item
            for index, value in enumerate(node)
            for item in _unit_prices(value, f"{path}[{index}]")
        ]
    return [(path, node)] if "micros" in path.lower() else []


def test_table_documents_every_task_and_prices_every_task() -> None:
    table = price_table()
    assert set(table["tasks"]) == set(TASK_MODELS)
    assert set(table["_doc"]) >= set(TASK_MODELS) | {"units", "rounding"}
    for task, prices in table["tasks"].items():
        assert prices["formula"] in table["_doc"][task], task


def test_every_price_is_a_positive_integer_of_micros() -> None:
    prices = _unit_prices(price_table())
    for task in TASK_MODELS:
        assert any(path.startswith(f".tasks.{task}.") for path, _ in prices), task
    for key, value in prices:
        assert type(value) is int, key
        assert value > 0, key


def test_multipliers_are_exact_fractions() -> None:
    table = price_table()
    assert Fraction(table["highDetailMultiplier"]) == Fraction(3, 2)
    assert Fraction(table["extremeQualityMultiplier"]) == Fraction(3, 2)


def test_video_tiers_ascend_and_cover_the_largest_canvas() -> None:
    tiers = price_table()["tasks"]["video.generate"]["tiers"]
    caps = [tier["maxPixels"] for tier in tiers]
    rates = [tier["microsPerSecond"] for tier in tiers]
    assert caps == sorted(caps)
    assert rates == sorted(rates)
    assert caps[-1] == MAX_VIDEO_PIXELS


# --- worked examples -----------------------------------------------------------------------------


def test_one_megapixel_image() -> None:
    quoted = quote("image.generate", {"prompt": "a cat"})
    assert quoted.micros == 28 * 900
    assert quoted.meta["formula"] == "megapixelSteps"
    assert quoted.meta["units"] == {"pixels": 1024 * 1024, "megapixels": "1", "steps": 28}
    assert quoted.meta["totalMicros"] == quoted.micros
    assert quoted.meta["exactBill"] is False


def test_high_detail_costs_exactly_half_again() -> None:
    standard = quote("image.generate", {"prompt": "a cat"})
    detailed = quote("image.generate", {"prompt": "a cat", "highDetail": True})
    assert detailed.micros == standard.micros * 3 // 2
    assert detailed.meta["multipliers"] == [{"name": "highDetail", "factor": "3/2"}]
    assert detailed.meta["inferenceSteps"] == 42


def test_upscale_adds_the_upscaled_output_megapixels() -> None:
    quoted = quote("image.generate", {"prompt": "x", "upscale": True})
    upscale = quoted.meta["components"][1]
    assert upscale["outputMegapixels"] == "9/4"
    assert quoted.micros == 25_200 + 9 * 2000 // 4


def test_edits_are_billed_at_the_nominal_megapixel() -> None:
    quoted = quote("image.edit", {"prompt": "x", "sourceImageUrl": URL})
    assert quoted.micros == 25_200


def test_video_by_generated_second_and_tier() -> None:
    quoted = quote("video.generate", {"prompt": "x"})
    # 121 frames at 30 fps on a 1280x704 (720p) canvas.
    assert quoted.meta["resolutionTier"] == "720p"
    assert quoted.meta["units"]["seconds"] == "121/30"
    assert quoted.micros == math.ceil(Fraction(121, 30) * 40_000)
    extreme = quote("video.generate", {"prompt": "x", "extremeQuality": True})
    assert extreme.micros == math.ceil(quoted.micros * Fraction(3, 2))


@pytest.mark.parametrize(
    ("width", "height", "tier"),
    [(864, 480, "480p"), (896, 480, "720p"), (1920, 1088, "1080p"), (3840, 2176, "2160p")],
)
def test_video_tier_boundaries(width: int, height: int, tier: str) -> None:
    quoted = quote("video.generate", {"prompt": "x", "width": width, "height": height})
    assert quoted.meta["resolutionTier"] == tier


def test_combine_uses_measured_durations_minus_overlap() -> None:
    urls = [URL, URL, URL]
    measured = quote("video.combine", {"videoUrls": urls, "overlapFrames": 6}, [4.0, 4.5, 3.5])
    # 12 s of clips less 2 x 6 frames at 60 fps = 11.8 s, at 300 micros a second.
    assert measured.meta["units"]["outputSeconds"] == "59/5"
    assert measured.micros == 3540
    assumed = quote("video.combine", {"videoUrls": urls})
    assert assumed.meta["durationSource"] == "assumed"
    assert assumed.micros == math.ceil((30 - Fraction(2, 60)) * 300)


def test_resize_by_output_megapixel_frames() -> None:
    input_ = {"sourceVideoUrl": URL, "width": 7680, "height": 4320}
    assumed = quote("video.resize", input_)
    # 8 s x 60 fps = 480 frames of 7680 x 4320 = 33,177,600 pixels, at 2 micros a megapixel-frame.
    assert assumed.meta["units"]["frames"] == 480
    assert assumed.micros == math.ceil(Fraction(480 * 33_177_600, 1024 * 1024) * 2)
    probed = quote("video.resize", input_, [2.5])
    assert probed.meta["units"]["frames"] == 150
    assert probed.meta["durationSource"] == "measured"


def test_speech_per_thousand_characters() -> None:
    assert quote("audio.speak", {"text": "x" * 6000}).micros == 6 * 15_000
    gemini = quote(
        "audio.speak", {"text": "x" * 6000, "provider": "gemini", "instructions": "y" * 2000}
    )
    assert gemini.micros == 8 * 25_000
    assert gemini.meta["exactBill"] is True


def test_annotation_per_audio_minute() -> None:
    measured = quote(
        "audio.annotation.reference",
        {"sourceAudioUrl": URL, "transcriptionModel": "large-v3"},
        [90],
    )
    assert measured.micros == 9000
    assert measured.meta["exactBill"] is False
    assumed = quote("audio.annotation.reference", {"sourceAudioUrl": URL, "transcript": "hi"})
    assert assumed.meta["durationSource"] == "assumedMaximum"
    assert assumed.meta["exactBill"] is True
    assert assumed.micros == 10 * 3000


@pytest.mark.parametrize(
    ("task", "input_", "micros"),
    [
        ("ace.step.create", {"tags": "pop", "lyrics": "la"}, 60 * 400),
        (
            "ace.step.create",
            {"tags": "pop", "lyrics": "la", "qualityPreset": "high_quality"},
            108 * 400,
        ),
        ("moss.sound.effect", {"prompt": "rain"}, 10 * 1500),
        ("moss.sound.effect", {"prompt": "rain", "durationSeconds": 30}, 30 * 1500),
        ("trellis.generate", {"sourceImageUrl": URL}, 30_000),
        ("trellis.generate", {"sourceImageUrl": URL, "qualityPreset": "fidelity"}, 50_000),
    ],
)
def test_per_second_and_per_asset(task: str, input_: dict[str, Any], micros: int) -> None:
    assert quote(task, input_).micros == micros


def test_minimum_charge() -> None:
    quoted = quote("audio.speak", {"text": "hi"})
    assert quoted.micros == MINIMUM
    assert quoted.meta["formulaMicros"] == "30"
    assert quoted.meta["standardMicros"] == MINIMUM


def test_premium_applies_to_the_standard_price_including_the_minimum() -> None:
    tiny = {"prompt": "x", "width": 32, "height": 32}
    assert quote("image.generate", tiny).micros == MINIMUM
    assert quote("image.generate", tiny | {"highDetail": True}).micros == MINIMUM * 3 // 2


@pytest.mark.parametrize(
    ("task", "input_", "durations", "message"),
    [
        ("video.combine", {"videoUrls": [URL, URL]}, [1.0], "takes 2 input duration"),
        ("video.resize", {"sourceVideoUrl": URL, "width": 2, "height": 2}, [-1], "negative"),
        ("image.generate", {"prompt": "x"}, [1.0], "not priced from input durations"),
    ],
)
def test_bad_durations_are_a_programming_error(
    task: str, input_: dict[str, Any], durations: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        quote(task, input_, durations)


# --- properties over schema-shaped random requests -----------------------------------------------


def _floats_in(node: Any) -> list[float]:
    if isinstance(node, float):
        return [node]
    if isinstance(node, dict):
        return [item for value in node.values() for item in _floats_in(value)]
    if isinstance(node, list):
        return [item for value in node for item in _floats_in(value)]
    return []


def _accepted(body: dict[str, Any]) -> MediaTask | None:
    try:
        return parse_media_job(body)
    except BadRequest:
        return None


@pytest.mark.parametrize("task", sorted(VARIANTS))
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.filter_too_much,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_every_quote_is_whole_micros_explained_without_floats(
    task: str, data: st.DataObject
) -> None:
    body = data.draw(request_strategy(task))
    parsed = _accepted(body)
    assume(parsed is not None)
    assert parsed is not None
    quoted = quote_price(parsed, resolve_input(parsed, body))
    assert type(quoted.micros) is int
    assert quoted.micros >= MINIMUM
    assert quoted.meta["totalMicros"] == quoted.micros
    assert quoted.meta["task"] == task
    assert _floats_in(quoted.meta) == []

    for flag in ("highDetail", "extremeQuality"):
        if _snake(flag) in type(parsed.input).model_fields:
            standard = _requote(parsed, {flag: False})
            premium = _requote(parsed, {flag: True})
            assert premium == math.ceil(standard * Fraction(3, 2))


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name)


def _requote(parsed: MediaTask, change: dict[str, Any]) -> int:
    body = parsed.model_dump(by_alias=True, exclude_none=True)
    body["input"] |= change
    again = parse_media_job(body)
    return quote_price(again, resolve_input(again, body)).micros

"""Quote a media job's price in integer USD micros from the one price table, `prices.json`.

`quote_price` reads the resolved (effective) input, so derived sizes and preset defaults are billed
exactly as they will run, and explains itself in `meta` (the job's `pricingMeta`): the formula,
its units, the unit price, the standard price, any multiplier and the total. Arithmetic is exact
(`Fraction`); the only rounding is up, to whole micros. The formulas are written out in the table's
`_doc`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib.resources import files
from typing import Any

from backend.media.adjustments import ResolvedInput
from backend.media.tasks import MediaTask


@dataclass(frozen=True)
class PriceQuote:
    micros: int
    meta: dict[str, Any]


@dataclass(frozen=True)
class _Amount:
    """A formula's exact, unrounded price and how it was reached."""

    micros: Fraction
    meta: dict[str, Any]
    # A maximum to hold now and settle from a measurement later, not a final price.
    exact_bill: bool = False


_PRICED_FROM_DURATIONS = ("video.combine", "video.resize", "audio.annotation.reference")
_Formula = Callable[[Mapping[str, Any], Mapping[str, Any], list[Fraction] | None], _Amount]


@cache
def price_table() -> dict[str, Any]:
    text = files("backend.media").joinpath("prices.json").read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


def quote_price(
    task: MediaTask,
    resolved: ResolvedInput,
    *,
    input_durations_seconds: Sequence[float] | None = None,
) -> PriceQuote:
    """Price `task` as resolved. `input_durations_seconds` are measured durations of its media
    inputs, in request order (video.combine: one per clip; video.resize and
    audio.annotation.reference: the source); without them the quote uses the table's assumptions."""
    table = price_table()
    prices = table["tasks"][task.task]
    durations = _durations(task.task, resolved.effective_input, input_durations_seconds)
    amount = _FORMULAS[task.task](resolved.effective_input, prices, durations)

    minimum = _int(table, "minimumChargeMicros")
    standard = max(math.ceil(amount.micros), minimum)
    total = standard
    multipliers = []
    for flag, key in (
        ("highDetail", "highDetailMultiplier"),
        ("extremeQuality", "extremeQualityMultiplier"),
    ):
        if resolved.effective_input.get(flag) is True:
            factor = _fraction(table, key)
            total = math.ceil(total * factor)
            multipliers.append({"name": flag, "factor": str(factor)})

    meta = {
        "task": task.task,
        **amount.meta,
        "formulaMicros": _exact(amount.micros),
        "minimumChargeMicros": minimum,
        "standardMicros": standard,
        "multipliers": multipliers,
        "totalMicros": total,
        "exactBill": amount.exact_bill,
    }
    return PriceQuote(micros=total, meta=meta)


def _durations(
    task: str, effective: Mapping[str, Any], measured: Sequence[float] | None
) -> list[Fraction] | None:
    if measured is None:
        return None
    if task not in _PRICED_FROM_DURATIONS:
        raise ValueError(f"{task} is not priced from input durations")
    expected = len(effective["videoUrls"]) if task == "video.combine" else 1
    if len(measured) != expected:
        raise ValueError(f"{task} takes {expected} input duration(s), got {len(measured)}")
    # Through str so 0.1 s is 1/10, not the binary float nearest to it.
    durations = [Fraction(str(seconds)) for seconds in measured]
    if any(seconds < 0 for seconds in durations):
        raise ValueError("input durations must not be negative")
    return durations


def _image_megapixel_steps(
    effective: Mapping[str, Any], prices: Mapping[str, Any], _: list[Fraction] | None
) -> _Amount:
    megapixel = _int(price_table(), "megapixelPixels")
    if "nominalPixels" in prices:
        pixels = _int(prices, "nominalPixels")
    else:
        pixels = _int(effective, "width") * _int(effective, "height")
    steps = _int(prices, "baseSteps")
    unit = _int(prices, "microsPerMegapixelStep")
    megapixels = Fraction(pixels, megapixel)
    generation = megapixels * steps * unit
    meta: dict[str, Any] = {
        "formula": "megapixelSteps",
        "unit": "megapixel-step",
        "units": {"pixels": pixels, "megapixels": _exact(megapixels), "steps": steps},
        "unitPriceMicros": unit,
        "components": [{"name": "generation", "micros": _exact(generation)}],
    }
    if effective.get("highDetail") is True:
        meta["inferenceSteps"] = math.ceil(steps * _fraction(price_table(), "highDetailMultiplier"))
    if effective.get("upscale") is True:
        factor = _fraction(prices, "upscaleFactor")
        output_megapixels = megapixels * factor * factor
        upscale = output_megapixels * _int(prices, "upscaleMicrosPerOutputMegapixel")
        meta["components"].append(
            {
                "name": "upscale",
                "factor": str(factor),
                "outputMegapixels": _exact(output_megapixels),
                "unitPriceMicros": _int(prices, "upscaleMicrosPerOutputMegapixel"),
                "micros": _exact(upscale),
            }
        )
        return _Amount(generation + upscale, meta)
    return _Amount(generation, meta)


def _video_seconds_by_tier(
    effective: Mapping[str, Any], prices: Mapping[str, Any], _: list[Fraction] | None
) -> _Amount:
    pixels = _int(effective, "width") * _int(effective, "height")
    tier = next(tier for tier in prices["tiers"] if pixels <= _int(tier, "maxPixels"))
    frames, fps = _int(effective, "durationFrames"), _int(effective, "sampledFps")
    seconds = Fraction(frames, fps)
    unit = _int(tier, "microsPerSecond")
    return _Amount(
        seconds * unit,
        {
            "formula": "secondsByResolutionTier",
            "unit": "second",
            "units": {"frames": frames, "sampledFps": fps, "seconds": _exact(seconds)},
            "resolutionTier": tier["name"],
            "pixels": pixels,
            "unitPriceMicros": unit,
        },
    )


def _video_output_seconds(
    effective: Mapping[str, Any], prices: Mapping[str, Any], measured: list[Fraction] | None
) -> _Amount:
    clips = len(effective["videoUrls"])
    assumed = _int(prices, "assumedClipSeconds")
    durations = measured if measured is not None else [Fraction(assumed)] * clips
    overlap, fps = _int(effective, "overlapFrames"), _int(effective, "frameRate")
    trimmed = Fraction((clips - 1) * overlap, fps)
    seconds = max(sum(durations, Fraction(0)) - trimmed, Fraction(0))
    unit = _int(prices, "microsPerOutputSecond")
    return _Amount(
        seconds * unit,
        {
            "formula": "outputSeconds",
            "unit": "output second",
            "units": {
                "clips": clips,
                "clipSeconds": [_exact(duration) for duration in durations],
                "trimmedSeconds": _exact(trimmed),
                "outputSeconds": _exact(seconds),
            },
            "durationSource": "measured" if measured is not None else "assumed",
            "unitPriceMicros": unit,
        },
    )


def _video_megapixel_frames(
    effective: Mapping[str, Any], prices: Mapping[str, Any], measured: list[Fraction] | None
) -> _Amount:
    megapixel = _int(price_table(), "megapixelPixels")
    if measured is not None:
        seconds = measured[0]
    else:
        seconds = Fraction(str(effective["sourceDurationSeconds"]))
    fps = _int(effective, "frameRate")
    frames = math.ceil(seconds * fps)
    pixels = _int(effective, "width") * _int(effective, "height")
    megapixel_frames = Fraction(pixels * frames, megapixel)
    unit = _int(prices, "microsPerMegapixelFrame")
    return _Amount(
        megapixel_frames * unit,
        {
            "formula": "megapixelFrames",
            "unit": "megapixel-frame",
            "units": {
                "sourceSeconds": _exact(seconds),
                "frameRate": fps,
                "frames": frames,
                "pixels": pixels,
                "megapixelFrames": _exact(megapixel_frames),
            },
            "durationSource": "measured" if measured is not None else "sourceDurationSeconds",
            "unitPriceMicros": unit,
        },
    )


def _speech_per_thousand_characters(
    effective: Mapping[str, Any], prices: Mapping[str, Any], _: list[Fraction] | None
) -> _Amount:
    provider = effective["provider"]
    characters = len(effective["text"]) + len(effective.get("instructions", ""))
    unit = _int(prices["microsPerThousandCharacters"], provider)
    return _Amount(
        Fraction(characters * unit, 1000),
        {
            "formula": "perThousandCharacters",
            "unit": "1,000 characters",
            "units": {"characters": characters},
            "provider": provider,
            "unitPriceMicros": unit,
        },
        exact_bill=provider == "gemini",
    )


def _annotation_per_audio_minute(
    effective: Mapping[str, Any], prices: Mapping[str, Any], measured: list[Fraction] | None
) -> _Amount:
    model = effective["transcriptionModel"]
    if measured is not None:
        seconds = measured[0]
    else:
        seconds = Fraction(_int(prices, "assumedMaximumSeconds"))
    unit = _int(prices["microsPerMinute"], model)
    return _Amount(
        seconds * unit / 60,
        {
            "formula": "perAudioMinute",
            "unit": "audio minute",
            "units": {"seconds": _exact(seconds), "minutes": _exact(seconds / 60)},
            "durationSource": "measured" if measured is not None else "assumedMaximum",
            "transcriptionModel": model,
            "unitPriceMicros": unit,
        },
        exact_bill=measured is None,
    )


def _per_second(
    effective: Mapping[str, Any], prices: Mapping[str, Any], _: list[Fraction] | None
) -> _Amount:
    seconds = _int(effective, "durationSeconds")
    unit = _int(prices, "microsPerSecond")
    return _Amount(
        Fraction(seconds * unit),
        {
            "formula": "perSecond",
            "unit": "second",
            "units": {"seconds": seconds},
            "unitPriceMicros": unit,
        },
    )


def _per_asset(
    effective: Mapping[str, Any], prices: Mapping[str, Any], _: list[Fraction] | None
) -> _Amount:
    preset = effective["qualityPreset"]
    unit = _int(prices["microsPerAsset"], preset)
    return _Amount(
        Fraction(unit),
        {
            "formula": "perAsset",
            "unit": "asset",
            "units": {"assets": 1},
            "qualityPreset": preset,
            "unitPriceMicros": unit,
        },
    )


_FORMULAS: dict[str, _Formula] = {
    "image.generate": _image_megapixel_steps,
    "image.edit": _image_megapixel_steps,
    "video.generate": _video_seconds_by_tier,
    "video.combine": _video_output_seconds,
    "video.resize": _video_megapixel_frames,
    "audio.speak": _speech_per_thousand_characters,
    "audio.annotation.reference": _annotation_per_audio_minute,
    "ace.step.create": _per_second,
    "moss.sound.effect": _per_second,
    "trellis.generate": _per_asset,
}


def _int(mapping: Mapping[str, Any], key: str) -> int:
    value = mapping[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{key} must be an integer, got {value!r}")
    return value


def _fraction(mapping: Mapping[str, Any], key: str) -> Fraction:
    return Fraction(str(mapping[key]))


def _exact(value: Fraction) -> str:
    """An exact quantity for pricingMeta: "4", "121/30" — never a float."""
    return str(value)

"""The task models accept and reject exactly what the spec does.

Every case is generated from the spec's own JSON Schema for `MediaJobRequest` (each task's branch,
$refs resolved): boundary values of every number, string, enum, array and object; required fields
left out; unknown and snake_case properties; wrong types and nulls. The reference verdict is the
`jsonschema` validator run over the spec itself, plus the rules the spec states only in prose (or
that the gateway adds), each listed below by name with its reason and written as an independent
predicate. A hypothesis test then throws schema-shaped random requests at both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from backend.http.errors import BadRequest
from backend.media.tasks import TASK_MODELS
from backend.media.validation import parse_media_job

SPEC_PATH = (
    Path(__file__).resolve().parents[2]
    / "backend/discovery/specs/killa-tamata-api-v0.7.0.openapi.json"
)
SPEC = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
SCHEMAS = SPEC["components"]["schemas"]

# Regex dialects disagree at the edges: Python's `re` (which jsonschema uses) lets `$` match before
# a final newline and counts \x1c-\x1f as `\s`; ECMA-262, the dialect JSON Schema names, and
# pydantic's engine do neither. Generated pattern text keeps to characters all three agree on.
AGREED_ALPHABET = st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t")


def deref(node: Any) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = deref(SCHEMAS[node["$ref"].rsplit("/", 1)[-1]])
            return target | {key: deref(value) for key, value in node.items() if key != "$ref"}
        return {key: deref(value) for key, value in node.items()}
    if isinstance(node, list):
        return [deref(item) for item in node]
    return node


VARIANTS: dict[str, dict[str, Any]] = {
    branch["properties"]["task"]["enum"][0]: deref(branch)
    for branch in SCHEMAS["MediaJobRequest"]["oneOf"]
}


# --- the reference verdict ---------------------------------------------------------------------

_HTTP_URL = re.compile(r"(?i)https?://[^\s/?#]+(?:[/?#]\S*)?")


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return _HTTP_URL.fullmatch(value) is not None and all(ord(char) >= 0x20 for char in value)


# JSON Schema 2020-12 makes `format` an annotation; the gateway asserts `uri`, and asserts it as an
# absolute http(s) URL: it fetches every input URL and posts to the callback URL.
URI_FORMAT = FormatChecker(formats=())
URI_FORMAT.checks("uri")(_is_http_url)
REFERENCE = Draft202012Validator(
    {"$ref": "#/components/schemas/MediaJobRequest", "components": SPEC["components"]},
    format_checker=URI_FORMAT,
)

# Values the companion maps fill with a valid sample of that field's own schema.
SAMPLE = object()

Companions = Callable[[str, Any], dict[str, Any] | None]


@dataclass(frozen=True)
class ProseRule:
    """A rule the schema cannot express. `violated` sees a schema-valid `input` object.
    `companions(field, value)` names other fields that make a case about `field` meaningful
    under this rule (e.g. height next to width); each rule's companions make one extra case."""

    name: str
    tasks: tuple[str, ...]
    reason: str
    violated: Callable[[dict[str, Any]], bool]
    companions: Companions = lambda name, value: None
    # Valid values the prose itself defines, for fields whose schema cannot generate them.
    valid_values: Mapping[str, st.SearchStrategy[Any]] = field(default_factory=dict)


def _given(input_: Mapping[str, Any], *names: str) -> list[str]:
    return [name for name in names if name in input_]


def _pixels(input_: Mapping[str, Any]) -> int:
    return int(input_.get("width", 0)) * int(input_.get("height", 0))


def _spec_voice_tags() -> tuple[str, ...]:
    speak = VARIANTS["audio.speak"]["properties"]["input"]["properties"]
    text = speak["voiceDescription"]["description"]
    listed = re.search(r"Supported English tags in this API release: (.*?)\. ", text)
    assert listed is not None, "the spec's voiceDescription no longer lists its tags"
    return tuple(tag.strip() for tag in listed.group(1).split(","))


SPEC_VOICE_TAGS = _spec_voice_tags()
_START_FRAMES = ("startFrameImageUrl", "startFrameImage", "sourceImageUrl", "sourceImage")
_GEMINI_ONLY = ("voiceName", "instructions")
_OMNIVOICE_ONLY = (
    "voiceDescription",
    "referenceAudioUrl",
    "referenceAudio",
    "referenceTranscript",
    "seed",
)
_VOICE_CLONE_ONLY = ("referenceAudioUrl", "referenceAudio", "referenceTranscript")


def _alternative(*pairs: tuple[str, str]) -> Companions:
    """Companions that add the other half of an either/or pair."""
    partner = dict(pairs) | {b: a for a, b in pairs}
    return lambda field, value: {partner[field]: SAMPLE} if field in partner else None


def _voice_tags_violated(input_: dict[str, Any]) -> bool:
    if "voiceDescription" not in input_:
        return False
    tags = [tag.strip().lower() for tag in input_["voiceDescription"].split(",") if tag.strip()]
    return not tags or any(tag not in SPEC_VOICE_TAGS for tag in tags)


PROSE_RULES = (
    ProseRule(
        "width_height_together",
        ("image.generate", "video.generate"),
        "width/height descriptions: 'Must be provided together with height' (and vice versa)",
        lambda i: ("width" in i) != ("height" in i),
        # A square canvas of the varied size, so the size's own bounds and caps are tested.
        lambda field, value: (
            {"height" if field == "width" else "width": value}
            if field in ("width", "height")
            else None
        ),
    ),
    ProseRule(
        "image_max_4_megapixels",
        ("image.generate",),
        "width/height descriptions: 'Max 4MP total' (1 MP = 1024 x 1024, so 2048 x 2048 fits)",
        lambda i: _pixels(i) > 4 * 1024 * 1024,
    ),
    ProseRule(
        "video_max_canvas",
        ("video.generate",),
        "gateway rule: the spec bounds no video canvas; 3840 x 2176 (4K UHD in multiples of 32) "
        "is the largest the engines run and the price table prices",
        lambda i: _pixels(i) > 3840 * 2176,
    ),
    ProseRule(
        "at_most_5_reference_images",
        ("image.generate", "image.edit"),
        "referenceImageUrls is a 'URL-only legacy alias for reference images', so the limit of 5 "
        "is for both lists together",
        lambda i: len(i.get("referenceImageUrls", [])) + len(i.get("referenceImages", [])) > 5,
        _alternative(("referenceImageUrls", "referenceImages")),
    ),
    ProseRule(
        "exactly_one_source",
        ("image.edit", "audio.annotation.reference", "trellis.generate"),
        "the schema's anyOf allows both the URL and the object form of the one source input; "
        "two sources for one input are ambiguous",
        lambda i: (
            len(_given(i, "sourceImageUrl", "sourceImage", "sourceAudioUrl", "sourceAudio")) > 1
        ),
    ),
    ProseRule(
        "one_start_frame",
        ("video.generate",),
        "startFrameImageUrl/startFrameImage and their legacy aliases sourceImageUrl/sourceImage "
        "('Equivalent to ...') all name the one start frame",
        lambda i: len(_given(i, *_START_FRAMES)) > 1,
        lambda field, value: {"startFrameImageUrl": SAMPLE} if field in _START_FRAMES[1:] else None,
    ),
    ProseRule(
        "one_overlap_list",
        ("video.generate",),
        "overlap frames are 'in chronological order': two lists have no order between them",
        lambda i: len(_given(i, "overlapFrameImageUrls", "overlapFrameImages")) > 1,
        _alternative(("overlapFrameImageUrls", "overlapFrameImages")),
    ),
    ProseRule(
        "one_final_frame",
        ("video.generate",),
        "finalFrameImageUrl and finalFrameImage are the URL and object forms of one input",
        lambda i: len(_given(i, "finalFrameImageUrl", "finalFrameImage")) > 1,
        _alternative(("finalFrameImageUrl", "finalFrameImage")),
    ),
    ProseRule(
        "one_reference_audio",
        ("video.generate",),
        "referenceAudioUrl and referenceAudio are the URL and object forms of one input",
        lambda i: len(_given(i, "referenceAudioUrl", "referenceAudio")) > 1,
        lambda field, value: (
            {
                "referenceAudioUrl" if field == "referenceAudio" else "referenceAudio": SAMPLE,
                "startFrameImageUrl": SAMPLE,
            }
            if field in ("referenceAudioUrl", "referenceAudio")
            else None
        ),
    ),
    ProseRule(
        "reference_audio_needs_frames",
        ("video.generate",),
        "referenceAudio*: 'Requires a start frame or overlap frames'",
        lambda i: (
            bool(_given(i, "referenceAudioUrl", "referenceAudio"))
            and not _given(i, *_START_FRAMES)
            and not (i.get("overlapFrameImageUrls") or i.get("overlapFrameImages"))
        ),
        lambda field, value: (
            {"startFrameImageUrl": SAMPLE}
            if field in ("referenceAudioUrl", "referenceAudio")
            else None
        ),
    ),
    ProseRule(
        "ltx_frames_8n_plus_1",
        ("video.generate",),
        "durationFrames: 'Must satisfy the LTX rule 8n + 1'",
        lambda i: "durationFrames" in i and i["durationFrames"] % 8 != 1,
    ),
    ProseRule(
        "duration_seconds_within_frame_budget",
        ("video.generate",),
        "durationSeconds: 'accepted only when its implied sampled-frame count stays within the "
        "same valid LTX frame budget' (durationFrames' 9..257, at sampledFps; the 'default "
        "pipeline is 30fps sampled')",
        lambda i: (
            "durationSeconds" in i
            and not 9 <= i["durationSeconds"] * i.get("sampledFps", 30) <= 257
        ),
    ),
    ProseRule(
        "one_duration",
        ("video.generate",),
        "durationFrames and durationSeconds are two ways to give the one length; 'prefer "
        "durationFrames' says which to send, not how to reconcile both",
        lambda i: len(_given(i, "durationFrames", "durationSeconds")) > 1,
        _alternative(("durationFrames", "durationSeconds")),
    ),
    ProseRule(
        "speak_provider_fields",
        ("audio.speak",),
        "descriptions mark voiceName and instructions 'Gemini-only', and voiceDescription, "
        "referenceAudio*, referenceTranscript and seed 'OmniVoice-only'",
        lambda i: bool(
            _given(i, *(_OMNIVOICE_ONLY if i.get("provider") == "gemini" else _GEMINI_ONLY))
        ),
        lambda field, value: (
            {"provider": "gemini"} if field in _GEMINI_ONLY + _OMNIVOICE_ONLY else None
        ),
    ),
    ProseRule(
        "gemini_no_voice_clone",
        ("audio.speak",),
        "mode: 'Gemini does not support voice_clone'",
        lambda i: i.get("provider") == "gemini" and i.get("mode") == "voice_clone",
        lambda field, value: {"provider": "gemini"} if field == "mode" else None,
    ),
    ProseRule(
        "voice_clone_needs_reference_audio",
        ("audio.speak",),
        "mode: 'set voice_clone when supplying reference audio' (one reference: URL or object)",
        lambda i: (
            i.get("mode") == "voice_clone"
            and len(_given(i, "referenceAudioUrl", "referenceAudio")) != 1
        ),
        lambda field, value: (
            {"referenceAudioUrl": SAMPLE} if field in ("mode", "referenceTranscript") else None
        ),
    ),
    ProseRule(
        "voice_clone_only_fields",
        ("audio.speak",),
        "referenceAudio*/referenceTranscript are 'for voice clone mode'; mode: 'Omit for voice "
        "design'",
        lambda i: (
            i.get("mode", "voice_design") != "voice_clone" and bool(_given(i, *_VOICE_CLONE_ONLY))
        ),
        lambda field, value: {"mode": "voice_clone"} if field in _VOICE_CLONE_ONLY else None,
    ),
    ProseRule(
        "supported_voice_tags",
        ("audio.speak",),
        "voiceDescription: 'comma-separated voice tags. Supported English tags in this API "
        "release: ...' (the list is read from the spec)",
        _voice_tags_violated,
        valid_values={
            "voiceDescription": st.lists(
                st.sampled_from(SPEC_VOICE_TAGS), min_size=1, max_size=4
            ).map(", ".join)
        },
    ),
    ProseRule(
        "speak_reference_audio_has_audio",
        ("audio.speak",),
        "audio.speak's inline referenceAudio object declares url and dataBase64 but requires "
        "neither; without exactly one of them there is no audio to clone",
        lambda i: (
            isinstance(i.get("referenceAudio"), dict)
            and len(_given(i["referenceAudio"], "url", "dataBase64")) != 1
        ),
    ),
    ProseRule(
        "texture_1536_needs_2048",
        ("trellis.generate",),
        "textureResolution/refinerResolution: '1536 requires textureSize=2048'",
        lambda i: (
            1536 in (i.get("textureResolution"), i.get("refinerResolution"))
            and i.get("textureSize") != 2048
        ),
    ),
)


@dataclass(frozen=True)
class Widening:
    """A spelling the prose accepts and the schema's enum does not; normalised before checking."""

    name: str
    tasks: tuple[str, ...]
    reason: str
    normalise: Callable[[dict[str, Any]], None]


def _strip_output_format_dot(input_: dict[str, Any]) -> None:
    value = input_.get("outputFormat")
    if isinstance(value, str) and value in (".webp", ".png", ".jpg"):
        input_["outputFormat"] = value[1:]


WIDENINGS = (
    Widening(
        "output_format_dot_alias",
        ("image.generate", "image.edit"),
        "MediaImageOutputFormat: 'Dot-prefixed aliases are also accepted at runtime (.webp, "
        ".png, .jpg)'",
        _strip_output_format_dot,
    ),
)


def spec_verdict(body: Any) -> tuple[bool, list[str]]:
    """(accepted, names of the prose rules that refuse it) by the spec and its prose."""
    body = json.loads(json.dumps(body))
    task = body.get("task") if isinstance(body, dict) else None
    input_ = body.get("input") if isinstance(body, dict) else None
    if isinstance(input_, dict):
        for widening in WIDENINGS:
            if task in widening.tasks:
                widening.normalise(input_)
    if not REFERENCE.is_valid(body):
        return False, []
    assert isinstance(input_, dict)
    broken = [rule.name for rule in PROSE_RULES if task in rule.tasks and rule.violated(input_)]
    return not broken, broken


def model_verdict(body: Any) -> tuple[bool, dict[str, Any]]:
    try:
        parse_media_job(body)
    except BadRequest as exc:
        return False, {"message": exc.message, **exc.details}
    return True, {}


# --- generating cases from the schema ------------------------------------------------------------


def _kind(schema: Mapping[str, Any]) -> str:
    for key in ("const", "enum"):
        if key in schema:
            return key
    if "type" in schema:
        return str(schema["type"])
    for key in ("oneOf", "anyOf", "allOf"):
        if key in schema:
            return "union" if key != "allOf" else "allOf"
    raise AssertionError(f"unhandled schema: {schema}")


def _branches(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(schema.get("oneOf", schema.get("anyOf", [])))


def _alternatives(schema: Mapping[str, Any]) -> list[list[str]]:
    """An object's either/or required groups (anyOf/oneOf of `required` lists)."""
    return [branch["required"] for branch in _branches(schema) if "required" in branch]


@cache
def _pattern_sample(pattern: str) -> str:
    strategy = st.from_regex(pattern, fullmatch=True, alphabet=AGREED_ALPHABET)
    return find(strategy, lambda text: True, settings=settings(database=None))


def valid_sample(schema: Mapping[str, Any]) -> Any:
    kind = _kind(schema)
    if kind == "const":
        return schema["const"]
    if kind == "enum":
        return schema["enum"][0]
    if kind in ("union", "allOf"):
        return valid_sample((schema.get("allOf") or _branches(schema))[0])
    if kind == "integer":
        step = schema.get("multipleOf", 1)
        low = schema.get("minimum", 0)
        return -(-low // step) * step
    if kind == "number":
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    if kind == "string":
        if schema.get("format") == "uri":
            return "https://example.com/media/sample.webp"
        if "pattern" in schema:
            return _pattern_sample(schema["pattern"])
        return "a" * max(schema.get("minLength", 1), 1)
    if kind == "array":
        return [valid_sample(schema["items"])] * max(schema.get("minItems", 0), 1)
    if kind == "object":
        required = list(schema.get("required", []))
        groups = _alternatives(schema)
        if groups:
            required += groups[0]
        return {name: valid_sample(schema["properties"][name]) for name in required}
    raise AssertionError(f"unhandled schema kind {kind}")


def _wrong_type(kind: str) -> Any:
    return {"string": 1, "integer": "1", "number": "1.5", "boolean": "true", "array": {}}.get(
        kind, []
    )


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def variations(schema: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(what was varied, value) pairs: the schema's boundary values on both sides."""
    kind = _kind(schema)
    if kind == "const":
        yield "", schema["const"]
        yield "", schema["const"] + 1 if isinstance(schema["const"], int) else "other"
    elif kind == "enum":
        for member in schema["enum"]:
            yield "", member
            if isinstance(member, str):
                yield "", f".{member}"
                yield "", member.upper()
        first = schema["enum"][0]
        yield "", max(schema["enum"]) + 1 if isinstance(first, int) else f"{first}-unknown"
        yield "", str(first) if isinstance(first, int) else 1
        yield "", None
    elif kind == "union":
        for branch in _branches(schema):
            yield from variations(branch)
    elif kind == "allOf":
        yield from variations(schema["allOf"][0])
    elif kind == "integer":
        yield from _integer_variations(schema)
    elif kind == "number":
        yield from _number_variations(schema)
    elif kind == "string":
        yield from _string_variations(schema)
    elif kind == "boolean":
        yield from (("", True), ("", False), ("", "true"), ("", 1), ("", None))
    elif kind == "array":
        yield from _array_variations(schema)
    elif kind == "object":
        yield from _object_variations(schema, companions=None)
    if kind not in ("enum", "boolean", "const", "union", "allOf"):
        yield "", _wrong_type(kind)
        yield "", None


def _integer_variations(schema: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    step = schema.get("multipleOf", 1)
    low = schema.get("minimum", 0)
    high = schema.get("maximum")
    values = [low, low - 1, low + step, low + 0.5, float(low)]
    if step > 1:
        values.append(low + 1)
    values += [high, high + 1, high - step] if high is not None else [low + step * 255]
    for value in values:
        yield "", value


def _number_variations(schema: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    low, high = schema.get("minimum", 0), schema.get("maximum")
    span = (high - low) if high is not None else 1
    values = [low, low - span / 100, (low + high) / 2 if high is not None else low + 1]
    if float(low).is_integer():
        values.append(int(low))
    if high is not None:
        values += [high, high + span / 100]
    for value in values:
        yield "", value


def _string_variations(schema: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if schema.get("format") == "uri":
        for value in (
            "https://example.com/media/a.webp",
            "http://example.com/a?x=1#y",
            "ftp://example.com/a.webp",
            "example.com/a.webp",
            "/relative/a.webp",
            "not a url",
            "https://",
            "",
        ):
            yield "", value
    if "pattern" in schema:
        sample = _pattern_sample(schema["pattern"])
        yield from (("", sample), ("", f"{sample}x"), ("", f"x{sample}"), ("", ""))
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None:
        yield "", "a" * low
        if low > 0:
            yield "", "a" * (low - 1)
    if high is not None:
        yield "", "a" * high
        yield "", "a" * (high + 1)
    if not schema.keys() & {"format", "pattern", "minLength", "maxLength"}:
        yield "", "a"


def _array_variations(schema: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    item = valid_sample(schema["items"])
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    lengths = {low, low + 1} | ({low - 1} if low > 0 else set())
    if high is not None:
        lengths |= {high, high + 1}
    for length in sorted(lengths):
        yield "", [item] * length
    filler = [item] * (max(low, 1) - 1)
    for where, value in variations(schema["items"]):
        yield f"[0]{where}", [value, *filler]


def _object_variations(
    schema: Mapping[str, Any], companions: Companions | None
) -> Iterator[tuple[str, Any]]:
    properties = schema["properties"]
    base = valid_sample(schema)
    groups = _alternatives(schema)
    members = {member for group in groups for member in group}
    yield "", base
    for name, property_schema in properties.items():
        # Varying one of an either/or group drops the other, which the base sample holds.
        rivals = members - {name} if name in members else set()
        start = {key: value for key, value in base.items() if key not in rivals}
        for where, value in variations(property_schema):
            case = start | {name: value}
            yield f".{name}{where}", case
            extra = companions(name, value) if companions is not None else None
            if extra:
                filled = {
                    key: valid_sample(properties[key]) if fill is SAMPLE else fill
                    for key, fill in extra.items()
                    if key != name
                }
                yield f".{name}{where}+{'+'.join(filled)}", case | filled
    for name in schema.get("required", []):
        yield f".{name}(missing)", {key: value for key, value in base.items() if key != name}
    if groups:
        yield (
            f".{'|'.join(sorted(members))}(none)",
            {key: value for key, value in base.items() if key not in members},
        )
        yield (
            f".{'&'.join(sorted(members))}(all)",
            base | {member: valid_sample(properties[member]) for member in members},
        )
    yield ".unknownField", base | {"unknownField": 1}
    for name in properties:
        if _snake_case(name) != name:
            yield (
                f".{_snake_case(name)}(snake_case)",
                base | {_snake_case(name): valid_sample(properties[name])},
            )


def _input_cases(task: str) -> Iterator[tuple[str, Any]]:
    input_schema = VARIANTS[task]["properties"]["input"]
    rules = [rule for rule in PROSE_RULES if task in rule.tasks]
    for rule in [None, *rules]:
        companions = rule.companions if rule is not None else None
        for where, value in _object_variations(input_schema, companions):
            if rule is None or "+" in where:
                yield where, value
    for rule in rules:
        for name, strategy in rule.valid_values.items():
            example = find(strategy, lambda value: True, settings=settings(database=None))
            yield f".{name}(prose)", valid_sample(input_schema) | {name: example}


def all_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    seen: set[str] = set()
    for task, variant in VARIANTS.items():
        minimal_input = valid_sample(variant["properties"]["input"])
        envelope = {"task": task, "input": minimal_input}
        generated: list[tuple[str, Any]] = [
            (f"input{where}", {"task": task, "input": value}) for where, value in _input_cases(task)
        ]
        for name, schema in variant["properties"].items():
            if name not in ("task", "input"):
                generated += [(f"{name}{w}", envelope | {name: v}) for w, v in variations(schema)]
        generated += [
            ("task=unknown", envelope | {"task": f"{task}.unknown"}),
            ("input(missing)", {"task": task}),
            ("input=null", {"task": task, "input": None}),
            ("unknownField", envelope | {"unknownField": 1}),
        ]
        for where, body in generated:
            key = json.dumps(body, sort_keys=True)
            if key not in seen:
                seen.add(key)
                yield f"{task}:{where}"[:120], body


CASES = list(all_cases())


@cache
def case_verdicts() -> tuple[tuple[str, bool, tuple[str, ...]], ...]:
    """(case id, spec verdict, prose rules broken) for every generated case, computed once."""
    return tuple((case_id, *_as_tuple(spec_verdict(body))) for case_id, body in CASES)


def _as_tuple(verdict: tuple[bool, list[str]]) -> tuple[bool, tuple[str, ...]]:
    return verdict[0], tuple(verdict[1])


# --- random requests shaped by the schema --------------------------------------------------------


def value_strategy(
    schema: Mapping[str, Any], prose: Mapping[str, st.SearchStrategy[Any]] | None = None
) -> st.SearchStrategy[Any]:
    """Mostly valid values of `schema`, now and then one of its boundary variations."""
    valid = _valid_strategy(schema, prose or {})
    edges = [value for _, value in variations(schema)]
    return st.one_of(valid, valid, valid, st.sampled_from(edges))


def _valid_strategy(
    schema: Mapping[str, Any], prose: Mapping[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    kind = _kind(schema)
    if kind == "const":
        return st.just(schema["const"])
    if kind == "enum":
        return st.sampled_from(schema["enum"])
    if kind == "union":
        return st.one_of([_valid_strategy(branch, {}) for branch in _branches(schema)])
    if kind == "allOf":
        return _valid_strategy(schema["allOf"][0], {})
    if kind == "integer":
        step = schema.get("multipleOf", 1)
        low = -(-schema.get("minimum", 0) // step)
        high = schema.get("maximum", schema.get("minimum", 0) + step * 300) // step
        return st.integers(low, high).map(lambda n: n * step)
    if kind == "number":
        low = schema.get("minimum", 0)
        return st.floats(low, schema.get("maximum", low + 100), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        if schema.get("format") == "uri":
            return st.builds(
                "https://{}.example.com/{}".format,
                st.sampled_from(["cdn", "media"]),
                st.text("abc/._-", max_size=12),
            )
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True, alphabet=AGREED_ALPHABET)
        low = schema.get("minLength", 0)
        return st.text(
            AGREED_ALPHABET, min_size=low, max_size=min(schema.get("maxLength", 40), low + 40)
        )
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(
            _valid_strategy(schema["items"], {}),
            min_size=low,
            max_size=schema.get("maxItems", low + 3),
        )
    return _object_strategy(schema, prose)


def _object_strategy(
    schema: Mapping[str, Any], prose: Mapping[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema["properties"]
    groups = _alternatives(schema)

    strategies = {name: value_strategy(schema) for name, schema in properties.items()}
    for name, defined_by_prose in prose.items():
        strategies[name] = st.one_of(strategies[name], defined_by_prose)

    @st.composite
    def draw_object(draw: st.DrawFn) -> dict[str, Any]:
        names = list(schema.get("required", []))
        if groups:
            names += draw(st.sampled_from([*groups, sorted({m for g in groups for m in g})]))
        optional = [name for name in properties if name not in names]
        if optional:
            names += draw(st.lists(st.sampled_from(optional), unique=True, max_size=4))
        return {name: draw(strategies[name]) for name in names}

    return draw_object()


@cache
def request_strategy(task: str) -> st.SearchStrategy[dict[str, Any]]:
    variant = VARIANTS[task]
    prose = {
        name: strategy
        for rule in PROSE_RULES
        if task in rule.tasks
        for name, strategy in rule.valid_values.items()
    }
    envelope = {
        name: value_strategy(schema)
        for name, schema in variant["properties"].items()
        if name not in ("task", "input")
    }
    return st.fixed_dictionaries(
        {"task": st.just(task), "input": _object_strategy(variant["properties"]["input"], prose)},
        optional=envelope,
    )


# --- the tests -----------------------------------------------------------------------------------


def _assert_agrees(body: Any) -> tuple[bool, list[str]]:
    expected, broken = spec_verdict(body)
    accepted, error = model_verdict(body)
    assert accepted == expected, (
        f"model {'accepted' if accepted else 'refused'} what the spec "
        f"{'accepts' if expected else 'refuses'}; prose rules broken: {broken}; "
        f"model said: {error}; body: {json.dumps(body)[:600]}"
    )
    if not accepted:
        assert "pydantic" not in json.dumps(error).lower()
        assert error["errors"], error
        for item in error["errors"]:
            assert item.keys() == {"field", "rule", "message"}
            assert error["message"].startswith(error["errors"][0]["field"])
    return expected, broken


def test_every_spec_task_has_a_model() -> None:
    assert set(TASK_MODELS) == set(VARIANTS)


@pytest.mark.parametrize(("case_id", "body"), CASES, ids=[case_id for case_id, _ in CASES])
def test_generated_boundary_case_agrees_with_spec(case_id: str, body: dict[str, Any]) -> None:
    _assert_agrees(body)


def test_cases_cover_both_verdicts_for_every_task() -> None:
    for task in VARIANTS:
        verdicts = {
            accepted for case_id, accepted, _ in case_verdicts() if case_id.startswith(task)
        }
        assert verdicts == {True, False}, task


# A Gemini voice_clone request either lacks reference audio or carries an OmniVoice-only
# reference field, so another rule always fails with this one.
_NEVER_ALONE = {"gemini_no_voice_clone"}


@pytest.mark.parametrize("rule", PROSE_RULES, ids=[rule.name for rule in PROSE_RULES])
def test_every_prose_rule_alone_decides_some_generated_case(rule: ProseRule) -> None:
    decisive = [
        case_id
        for case_id, _, broken in case_verdicts()
        if rule.name in broken and (len(broken) == 1 or rule.name in _NEVER_ALONE)
    ]
    assert decisive, f"no generated case is refused by {rule.name} alone"


def test_every_widening_is_exercised() -> None:
    for widening in WIDENINGS:
        dotted = [
            body
            for _, body in CASES
            if body.get("task") in widening.tasks
            and isinstance(body.get("input"), dict)
            and str(body["input"].get("outputFormat", "")).startswith(".")
        ]
        assert dotted, widening.name
        assert all(model_verdict(body)[0] for body in dotted), widening.name


@pytest.mark.parametrize("task", sorted(VARIANTS))
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_request_agrees_with_spec(task: str, data: st.DataObject) -> None:
    _assert_agrees(data.draw(request_strategy(task)))


# --- the published JSON Schema (MCP tool input) carries the spec's keywords ----------------------

_KEYWORDS = (
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "format",
    "default",
)


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        target = _resolve(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return target | {key: value for key, value in schema.items() if key != "$ref"}
    if len(schema.get("allOf", [])) == 1:
        rest = {key: value for key, value in schema.items() if key != "allOf"}
        return _resolve(schema["allOf"][0], defs) | rest
    return dict(schema)


def _assert_carries(
    spec: Mapping[str, Any], ours: Mapping[str, Any], defs: Any, where: str
) -> None:
    spec, ours = _resolve(spec, {}), _resolve(ours, defs)
    for schema in (spec, ours):
        # `const: x` and `enum: [x]` say the same thing.
        if "const" in schema:
            schema.setdefault("enum", [schema.pop("const")])
    for keyword in _KEYWORDS:
        if keyword in spec:
            assert ours.get(keyword) == spec[keyword], f"{where}: {keyword}"
    if "properties" in spec:
        assert set(ours["properties"]) == set(spec["properties"]), where
        assert set(ours.get("required", [])) == set(spec.get("required", [])), where
        for name, property_schema in spec["properties"].items():
            _assert_carries(property_schema, ours["properties"][name], defs, f"{where}.{name}")
    if "items" in spec:
        _assert_carries(spec["items"], ours["items"], defs, f"{where}[]")
    spec_branches = spec.get("oneOf", spec.get("anyOf"))
    if spec_branches and "properties" not in spec:
        ours_branches = ours.get("oneOf", ours.get("anyOf"))
        assert ours_branches is not None, where
        assert len(ours_branches) == len(spec_branches), where
        for index, (a, b) in enumerate(zip(spec_branches, ours_branches, strict=True)):
            _assert_carries(a, b, defs, f"{where}|{index}")


@pytest.mark.parametrize("task", sorted(VARIANTS))
def test_published_schema_carries_the_spec_keywords(task: str) -> None:
    ours = TASK_MODELS[task].model_json_schema(by_alias=True)
    defs = ours.get("$defs", {})
    _assert_carries(VARIANTS[task], ours, defs, task)
    # A tool schema is read by a model choosing arguments: every parameter says what it is.
    for name, schema in _resolve(ours["properties"]["input"], defs)["properties"].items():
        assert _resolve(schema, defs).get("description"), f"{task}.input.{name}"

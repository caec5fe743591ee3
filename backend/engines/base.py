"""What every engine is: a task model + a work folder + a progress reporter -> output files.

Engines know nothing of money, users, HTTP or the database. `jobs/` is the only glue between
engines, storage and the ledger. Engines run inside worker processes (see `jobs/`), so an engine
may block, use every core and hold a GPU without touching the gateway's event loop.

The work folder (one per job, created and later removed by `jobs/`):

    <work_dir>/inputs/    the job's media inputs, staged before `run` (storage.staging.InputStager)
    <work_dir>/outputs/   what the engine writes; `EngineResult.files` point in here

Staged inputs: engines never open a network connection. Before `run`, the jobs layer stages every
media input of the task (URL or inline) as `<work_dir>/inputs/<stem>.<ext>`, where `<stem>` is the
input's request field path made file-name safe (`input_file_stem`: `sourceImage` -> `sourceImage`,
`videoUrls[2]` -> `videoUrls-2`). The engine still receives the task model as the client sent it
and finds each file with `staged_input(work_dir, field, value)`, which also accepts a `file://`
URL inside the work folder in place of the original URL, and decodes inline data that was not
staged. A `file://` URL outside the work folder is refused, so a request can never make an
engine read the worker's own files.
"""

from __future__ import annotations

import base64
import binascii
import glob
import mimetypes
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlparse

from pydantic import BaseModel


class JobCanceled(Exception):
    """Raised from a progress checkpoint when the job was canceled; the engine stops right there."""


class EngineError(Exception):
    """The engine could not produce an output for a reason the user should see (bad media, ...)."""


class ModelUnavailable(EngineError):
    """The weights this task needs are not in KILLA_MODEL_DIR (or an optional package is absent)."""


class Progress(Protocol):
    def report(self, percent: float, message: str) -> None:
        """Record progress (0-100). Raises `JobCanceled` when a cancel was requested."""


@dataclass(frozen=True)
class OutputFile:
    path: Path
    mime_type: str
    # Decoded facts about the file (width, height, frames, fps, durationSeconds, sampleRate, ...).
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InputAdjustment:
    """A change the engine made to what was asked; surfaces in the job's `inputAdjustments`."""

    field: str
    requested: Any
    effective: Any
    reason: str


@dataclass
class EngineResult:
    files: list[OutputFile]
    # Task-specific result payload for the job status (transcript, words, seed used, ...).
    result: dict[str, Any] = field(default_factory=dict)
    adjustments: list[InputAdjustment] = field(default_factory=list)
    # Exact-bill tasks report the measured billable amount in micros (never above the hold).
    measured_cost_micros: int | None = None


TaskT = TypeVar("TaskT", bound=BaseModel, contravariant=True)


class Engine(Protocol[TaskT]):
    """One class per engine family; weights load once in `__init__` and are reused across jobs.

    Generic in the task model it runs (`Engine[VideoResizeInput]`), so a type checker accepts
    engines whose `run` takes their own task's model; a bare `Engine` runs any task.
    """

    def run(self, task: TaskT, work_dir: Path, progress: Progress) -> EngineResult: ...


INPUTS_DIR = "inputs"
OUTPUTS_DIR = "outputs"


class InlineMedia(Protocol):
    """The spec's inline media object (`MediaInlineImageSource` / `MediaInlineAudioSource`)."""

    @property
    def url(self) -> str | None: ...
    @property
    def data_base64(self) -> str | None: ...
    @property
    def mime_type(self) -> str | None: ...


def outputs_dir(work_dir: Path) -> Path:
    folder = work_dir / OUTPUTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def input_file_stem(field: str) -> str:
    """The file-name stem of a staged input: its field path with every other character run as -."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", field).strip("-") or "input"


def staged_input(work_dir: Path, field: str, value: str | InlineMedia) -> Path:
    """The local file of the media input at request field path `field` (see the module docstring).

    `value` is the field's value in the task model: a URL string or an inline object.
    """
    inputs = work_dir / INPUTS_DIR
    staged = sorted(inputs.glob(f"{glob.escape(input_file_stem(field))}.*"))
    if staged:
        return staged[0]
    url: str | None = value if isinstance(value, str) else value.url
    data = None if isinstance(value, str) else value.data_base64
    mime_type = None if isinstance(value, str) else value.mime_type
    if data is None and url is not None and url.startswith("data:"):
        data = url
    if data is not None:
        return _write_inline(data, mime_type, inputs, field)
    if url is None:
        raise EngineError(f"{field} has neither a url nor dataBase64")
    parsed = urlparse(str(url))
    if parsed.scheme != "file":
        raise EngineError(f"{field} was not staged into the job's work folder")
    path = Path(unquote(parsed.path)).resolve()
    if not path.is_relative_to(work_dir.resolve()):
        raise EngineError(f"{field} points outside the job's work folder")
    if not path.is_file():
        raise EngineError(f"{field}: the staged file {path.name} does not exist")
    return path


def _write_inline(data: str, mime_type: str | None, inputs: Path, field: str) -> Path:
    if data.startswith("data:"):
        header, _, data = data.partition(",")
        mime_type = mime_type or header[5:].split(";")[0] or None
    try:
        payload = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise EngineError(f"{field} is not valid base64") from exc
    if not payload:
        raise EngineError(f"{field} is empty")
    # FFmpeg and Pillow sniff the bytes; the suffix only helps a human reading the folder.
    suffix = (mimetypes.guess_extension(mime_type) if mime_type else None) or ".bin"
    inputs.mkdir(parents=True, exist_ok=True)
    path = inputs / f"{input_file_stem(field)}{suffix}"
    path.write_bytes(payload)
    return path

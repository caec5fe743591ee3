"""What every engine is: a task model + a work folder + a progress reporter -> output files.

Engines know nothing of money, users, HTTP or the database. `jobs/` is the only glue between
engines, storage and the ledger. Engines run inside worker processes (see `jobs/`), so an engine
may block, use every core and hold a GPU without touching the gateway's event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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


class Engine(Protocol):
    """One class per engine family; weights load once in `__init__` and are reused across jobs."""

    def run(self, task: BaseModel, work_dir: Path, progress: Progress) -> EngineResult: ...

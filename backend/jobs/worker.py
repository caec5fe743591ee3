"""What runs inside a worker process: load (once) the engine for a task and run one job.

The gateway and the worker talk through the job's work folder, which survives either side dying:
the worker writes `progress.json` at every checkpoint, and the gateway creates `cancel` to ask the
worker to stop at its next one. Results come back as plain data (no exception objects cross the
process boundary).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter

from backend.engines.base import EngineError, JobCanceled, ModelUnavailable
from backend.engines.registry import EngineOptions, EngineRegistry
from backend.media.tasks import MediaTask

PROGRESS_FILE = "progress.json"
CANCEL_FILE = "cancel"

_task_adapter: TypeAdapter[MediaTask] = TypeAdapter(MediaTask)
_registries: dict[tuple[str, str, EngineOptions], EngineRegistry] = {}
_registries_lock = threading.Lock()


@dataclass
class WorkerOutcome:
    status: Literal["succeeded", "failed", "canceled"]
    files: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    measured_cost_micros: int | None = None
    error_code: str | None = None
    error_message: str | None = None


class FolderProgress:
    """The engine's progress reporter: persists each checkpoint, raises on a cancel request."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self._last: tuple[int, str] | None = None

    def report(self, percent: float, message: str) -> None:
        if (self.work_dir / CANCEL_FILE).exists():
            raise JobCanceled("canceled at the client's request")
        current = (max(0, min(100, round(percent))), message[:500])
        if current != self._last:
            self._last = current
            temporary = self.work_dir / f".{PROGRESS_FILE}.tmp"
            temporary.write_text(json.dumps({"percent": current[0], "message": current[1]}))
            os.replace(temporary, self.work_dir / PROGRESS_FILE)


def read_progress(work_dir: Path) -> tuple[int, str] | None:
    try:
        data = json.loads((work_dir / PROGRESS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return int(data["percent"]), str(data["message"])


def request_cancel(work_dir: Path) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / CANCEL_FILE).touch()


def registry_for(model_dir: str, device: str, options: EngineOptions) -> EngineRegistry:
    """One registry (and so one engine cache) per worker process and configuration."""
    with _registries_lock:
        registry = _registries.get((model_dir, device, options))
        if registry is None:
            registry = EngineRegistry(Path(model_dir), device, options=options)  # type: ignore[arg-type]
            _registries[(model_dir, device, options)] = registry
        return registry


def run_job(
    task_json: dict[str, Any], work_dir: str, model_dir: str, device: str, options: EngineOptions
) -> dict[str, Any]:
    """Entry point submitted to the executor; returns a `WorkerOutcome` as a dict."""
    folder = Path(work_dir)
    try:
        task = _task_adapter.validate_python(task_json)
        engine = registry_for(model_dir, device, options).get_engine(task.task)
        progress = FolderProgress(folder)
        progress.report(0, "starting")
        produced = engine.run(task.input, folder, progress)
    except JobCanceled as exc:
        return asdict(WorkerOutcome("canceled", error_code="CANCELED", error_message=str(exc)))
    except ModelUnavailable as exc:
        return asdict(
            WorkerOutcome("failed", error_code="MODEL_UNAVAILABLE", error_message=str(exc))
        )
    except EngineError as exc:
        return asdict(WorkerOutcome("failed", error_code="ENGINE_ERROR", error_message=str(exc)))
    outcome = WorkerOutcome(
        "succeeded",
        files=[
            {
                "path": str(output.path),
                "mimeType": output.mime_type,
                "properties": output.properties,
            }
            for output in produced.files
        ],
        result=produced.result,
        adjustments=[asdict(adjustment) for adjustment in produced.adjustments],
        measured_cost_micros=produced.measured_cost_micros,
    )
    return asdict(outcome)

"""The in-process dispatcher: claims queued jobs, runs them on worker processes, settles them.

The jobs table is the truth. At start it re-queues the jobs a dead process left `running` (or
fails them, releasing their holds, once they used up their attempts), then runs whatever is
queued. A wake-up only says "look at the table": a claim is a conditional update, so duplicate
wake-ups never run a job twice. A second implementation (procrastinate on PostgreSQL, for GPU
hosts) will share the claim and settle steps in `service.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from pathlib import Path
from typing import Any

from backend.db.engine import Database
from backend.jobs.callbacks import CallbackSender
from backend.jobs.cleanup import purge_expired_outputs
from backend.jobs.runtime import JobsRuntime
from backend.jobs.service import jobs, remove_work_dir
from backend.jobs.worker import PROGRESS_FILE, read_progress, run_job
from backend.media.outputs import expected_output_names

logger = logging.getLogger(__name__)

PROGRESS_POLL_SECONDS = 0.25
IDLE_POLL_SECONDS = 2.0
CLEANUP_EVERY = timedelta(hours=1)


def build_executor(mode: str, workers: int) -> Executor:
    if mode == "thread":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="killa-engine")
    # spawn, not fork: the gateway's threads, sockets and event loop must not leak into workers.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


class Dispatcher:
    def __init__(self, db: Database, runtime: JobsRuntime) -> None:
        self.db = db
        self.runtime = runtime
        settings = runtime.settings
        self.concurrency = settings.worker_concurrency
        self.mode = settings.worker_mode
        self.max_attempts = settings.job_max_attempts
        self.executor = build_executor(self.mode, self.concurrency)
        self.callbacks = CallbackSender(db, runtime)
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        async with self.db.transaction() as session:
            interrupted = await jobs.requeue_interrupted(session, max_attempts=self.max_attempts)
        if interrupted:
            logger.warning("recovered %d interrupted job(s): %s", len(interrupted), interrupted)
        self._loops = [
            asyncio.create_task(self._dispatch_loop(), name="killa-dispatch"),
            asyncio.create_task(self.callbacks.run(), name="killa-callbacks"),
            asyncio.create_task(self._cleanup_loop(), name="killa-cleanup"),
        ]
        self.wake()

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        for task in [*self._loops, *self._running.values()]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Jobs still running are left `running`: the next start re-queues them.
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _dispatch_loop(self) -> None:
        while True:
            try:
                await self._fill_slots()
            except Exception:
                logger.exception("dispatch loop error; retrying")
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # lands as the wait ends, and then stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_POLL_SECONDS):
                    await self._wake.wait()
            self._wake.clear()

    async def _fill_slots(self) -> None:
        free = self.concurrency - len(self._running)
        if free <= 0:
            return
        async with self.db.transaction(write=False) as session:
            candidates = await jobs.queued_ids(session, limit=free)
        for job_id in candidates:
            async with self.db.transaction() as session:
                job = await jobs.claim(session, job_id)
            if job is None:
                continue
            task = asyncio.create_task(self._execute(job.id), name=f"killa-job-{job.id}")
            self._running[job.id] = task
            task.add_done_callback(functools.partial(self._done, job.id))

    def _done(self, job_id: str, _: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self.wake()

    async def _execute(self, job_id: str) -> None:
        work_dir = self.runtime.work_dir(job_id)
        async with self.db.transaction(write=False) as session:
            job = await jobs.claimed(session, job_id)
        # A retried job keeps its staged inputs; only the last attempt's checkpoints go.
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / PROGRESS_FILE).unlink(missing_ok=True)
        task_json = {"task": job.task, "input": job.effective_input}
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self.executor,
            run_job,
            task_json,
            str(work_dir),
            str(self.runtime.settings.resolved_model_dir),
            self.runtime.settings.device,
            self.runtime.registry.options,
        )
        try:
            outcome = await self._follow(job_id, work_dir, future)
        except asyncio.CancelledError:
            raise
        except BrokenProcessPool:
            logger.exception("worker process died running job %s", job_id)
            self.executor = build_executor(self.mode, self.concurrency)
            await self._fail(
                job_id, "WORKER_CRASHED", "The worker process crashed running this job."
            )
            return
        except Exception:
            logger.exception("job %s raised", job_id)
            await self._fail(job_id, "INTERNAL_ERROR", "The job failed with an internal error.")
            remove_work_dir(work_dir)
            return
        try:
            if outcome["status"] == "succeeded":
                await self._succeed(job_id, outcome)
            else:
                await self._fail(job_id, outcome["error_code"], outcome["error_message"])
        finally:
            remove_work_dir(work_dir)

    async def _follow(
        self, job_id: str, work_dir: Path, future: asyncio.Future[Any]
    ) -> dict[str, Any]:
        """Await the worker, copying its progress checkpoints into the job row as they come."""
        last: tuple[int, str] | None = None
        while True:
            done, _ = await asyncio.wait({future}, timeout=PROGRESS_POLL_SECONDS)
            current = read_progress(work_dir)
            if current is not None and current != last:
                last = current
                async with self.db.transaction() as session:
                    await jobs.record_progress(session, job_id, *current)
            if done:
                result: dict[str, Any] = future.result()
                return result

    async def _succeed(self, job_id: str, outcome: dict[str, Any]) -> None:
        async with self.db.transaction(write=False) as session:
            job = await jobs.claimed(session, job_id)
        names = expected_output_names(job.task, job.effective_input)
        outputs = []
        for index, produced in enumerate(outcome["files"]):
            path = Path(produced["path"])
            name = names[index] if index < len(names) else f"output-{index + 1}{path.suffix}"
            key = self.runtime.output_key(job, name)
            stored = await self.runtime.blobs.put_file(key, path, produced["mimeType"])
            outputs.append(
                {
                    "key": key,
                    "name": name,
                    "mimeType": produced["mimeType"],
                    "sizeBytes": stored.size_bytes,
                    "properties": produced["properties"],
                }
            )
        async with self.db.transaction() as session:
            await jobs.succeed(
                session,
                job_id,
                outputs=outputs,
                result=outcome["result"],
                adjustments=outcome["adjustments"],
                measured_cost_micros=outcome["measured_cost_micros"],
            )
        # The run just measured moved its task's rate: estimate from it at once.
        self.runtime.estimates.forget()
        self.callbacks.wake()

    async def _fail(self, job_id: str, code: str, message: str) -> None:
        async with self.db.transaction() as session:
            await jobs.fail(session, job_id, code=code, message=message)
        self.callbacks.wake()

    async def _cleanup_loop(self) -> None:
        while True:
            try:
                await purge_expired_outputs(self.db, self.runtime)
            except Exception:
                logger.exception("output cleanup failed; retrying at the next run")
            await asyncio.sleep(CLEANUP_EVERY.total_seconds())

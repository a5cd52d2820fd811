"""Background training jobs: a process-wide FIFO queue with a cap on concurrent trainings.

Training never runs in a Streamlit script thread. Each job is a child process started with
the multiprocessing ``spawn`` context (one torch thread), so one user's training never freezes
another user's pages. The child calls ``core.train.train`` with

- ``on_progress`` pushing every record onto a multiprocessing ``Queue``;
- ``should_stop`` reading a multiprocessing ``Event`` (polled every optimizer step, so a
  cancel takes effect within one step; a child that does not stop within ``stop_grace``
  seconds is terminated);

and saves a finished run with ``core.runs.save_run`` (temporary folder + rename, so a run
folder is either complete or absent). A cancelled job saves nothing.

The queue's daemon thread (started on the first submit) drains progress messages, starts
waiting jobs in submission order while fewer than ``max_jobs`` run, and is the watchdog: a
job whose owner has not called ``poll``/``touch`` for ``orphan_timeout`` seconds (60 s by
default) is cancelled, so a closed browser tab does not leave work running.

Admission (``refusal``): a job is refused when its ``RunConfig.total_flops`` exceeds
``max_flops`` (env ``ANCHOR_MAX_FLOPS``, default 3x the ``cpu-demo`` preset) or when it uses
the ``paper`` preset on a machine without a GPU. The message says why and gives the CLI
command that trains the same run on a GPU.

This module imports no Streamlit: the child process imports it, and its tests need no
Streamlit runtime. Nor does the child run the app's script: ``spawn`` re-executes the parent's
``__main__`` file in every child, and under ``streamlit run`` that is ``app.py`` (Streamlit
installs the script as ``__main__``), which would draw the whole app in bare mode in every
training process ("missing ScriptRunContext" warnings, seconds of work); ``_main_not_rerun``
prevents it. ``ui.loaders.job_queue`` holds the process-wide instance.
"""
from __future__ import annotations

import importlib.machinery
import json
import multiprocessing as mp
import os
import queue as queue_mod
import shlex
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import RunConfig, pair_key
from core.presets import get_preset

ACTIVE = ("queued", "running", "cancelling")
TERMINAL = ("done", "cancelled", "failed")
ORPHAN_TIMEOUT_S = 60.0


class JobRefused(ValueError):
    """A job the queue will not run (too large for this server); the message says why."""


def default_max_jobs() -> int:
    """Concurrent trainings allowed: env ``ANCHOR_MAX_JOBS`` (default 1, at least 1)."""
    try:
        return max(1, int(os.environ.get("ANCHOR_MAX_JOBS", "1")))
    except ValueError:
        return 1


def default_max_flops() -> float:
    """Per-job FLOP cap: env ``ANCHOR_MAX_FLOPS``, else 3x the cpu-demo preset's total_flops."""
    text = os.environ.get("ANCHOR_MAX_FLOPS")
    if text:
        try:
            return float(text)
        except ValueError:
            pass
    return 3.0 * get_preset("cpu-demo").total_flops


def has_gpu() -> bool:
    import torch
    return bool(torch.cuda.is_available())


def run_name(cfg: RunConfig, preset: str) -> str:
    """Folder name like the CLI's default: ``<preset>_L<layers>_g<γ>_s<seed>``.

    ``_e<epochs>`` is added when the epochs differ from the preset and ``_task`` when the
    task differs, so a custom run is never mistaken for the preset's.
    """
    name = f"{preset}_L{cfg.model.n_layers}_g{cfg.model.gamma:g}_s{cfg.train.seed}"
    try:
        base = get_preset(preset)
    except ValueError:
        return name
    if cfg.train.epochs != base.train.epochs:
        name += f"_e{cfg.train.epochs}"
    if cfg.task != base.task:
        name += "_task"
    return name


def cli_command(cfg: RunConfig, preset: str) -> str:
    """The ``python -m core train`` command that trains ``cfg`` (for a GPU machine)."""
    parts = ["python", "-m", "core", "train", "--preset", preset, "--gamma", f"{cfg.model.gamma:g}",
             "--layers", str(cfg.model.n_layers), "--seed", str(cfg.train.seed)]
    try:
        base = get_preset(preset)
    except ValueError:
        base = RunConfig()
    if cfg.train.epochs != base.train.epochs:
        parts += ["--epochs", str(cfg.train.epochs)]
    t, b = cfg.task, base.task
    if t.held_out != b.held_out:
        if t.held_out:
            for p in t.held_out:
                parts += ["--held-out", pair_key(p)]
        else:
            parts += ["--set", "task.held_out=[]"]
    if t.operations != b.operations:
        parts += ["--set", "task.operations=" + json.dumps([list(o) for o in t.operations], separators=(",", ":"))]
    if t.overrides != b.overrides:
        parts += ["--set", "task.overrides=" + json.dumps([list(o) for o in t.overrides], separators=(",", ":"))]
    return " ".join(shlex.quote(p) for p in parts)


@dataclass
class Job:
    """One training job as the UI sees it (``JobQueue.poll`` returns a copy).

    ``records`` are the evaluation records of ``core.train.train`` (epoch 0 first), ``steps``
    the step records (``step``, ``total_steps``, ``epoch``, ``loss``, ``lr``).
    """

    id: str
    owner: str
    preset: str
    config: RunConfig
    runs_dir: Path
    name: str
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    last_seen: float = field(default_factory=time.monotonic)
    records: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    run_path: str | None = None
    message: str | None = None
    # process plumbing, parent side only
    _proc: Any = field(default=None, repr=False)
    _msgs: Any = field(default=None, repr=False)
    _stop: Any = field(default=None, repr=False)
    _cancel_at: float | None = field(default=None, repr=False)
    _result: str | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def progress(self) -> float:
        """Fraction of optimizer steps done, in [0, 1]."""
        total = self.config.train.total_steps
        done = 0
        if self.steps:
            done = self.steps[-1]["step"]
        if self.records:
            done = max(done, self.records[-1]["step"])
        return 1.0 if self.state == "done" else min(done / max(total, 1), 1.0)

    def snapshot(self) -> "Job":
        return Job(self.id, self.owner, self.preset, self.config, self.runs_dir, self.name, self.state,
                   self.created, self.started, self.finished, self.last_seen, list(self.records),
                   list(self.steps), self.run_path, self.message)


def _save_unique(runs_dir: Path, name: str, cfg: RunConfig, model: Any, metrics: dict[str, Any],
                 device: str) -> Path:
    """Save under ``runs_dir/name`` or, when taken, ``name_2``, ``name_3``, ...: never overwrite."""
    from core.runs import RunError, save_run
    for i in range(1, 1000):
        path = runs_dir / (name if i == 1 else f"{name}_{i}")
        if path.exists():
            continue
        try:
            return save_run(path, cfg, model, metrics, device=device)
        except (RunError, OSError):
            if path.exists():  # another job took the name between the check and the rename
                continue
            raise
    raise RuntimeError(f"no free run folder name for {name} in {runs_dir}")


def _worker(cfg_dict: dict[str, Any], runs_dir: str, name: str, msgs: Any, stop: Any) -> None:
    """Child process body: train, then save atomically; report through ``msgs``."""
    import torch
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    from core.train import Cancelled, build_model, resolve_device, train
    try:
        cfg = RunConfig.from_dict(cfg_dict)
        device = resolve_device(cfg.train.device)
        model = build_model(cfg, torch.Generator().manual_seed(cfg.train.seed))
        if stop.is_set():
            raise Cancelled([])
        history = train(model, cfg, on_progress=msgs.put, should_stop=stop.is_set)
        if stop.is_set():  # cancelled after the last step: still save nothing
            raise Cancelled(history)
        metrics = {"history": history, "seconds": history[-1]["seconds"], "device": str(device)}
        path = _save_unique(Path(runs_dir), name, cfg, model.cpu(), metrics, str(device))
        msgs.put({"event": "done", "path": str(path)})
    except Cancelled:
        msgs.put({"event": "cancelled"})
    except Exception as e:  # reported to the page as a message, never a traceback
        msgs.put({"event": "error", "message": f"{type(e).__name__}: {e}"})


@contextmanager
def _main_not_rerun() -> Iterator[None]:
    """While starting a ``spawn`` child, keep it from re-running the parent's main script.

    ``multiprocessing`` re-executes ``__main__.__file__`` in the child unless ``__main__`` has
    a module spec; one named ``__main__`` makes the child skip that step. The spec is set on
    the current main module (Streamlit's script module: its ``__file__`` stays, which
    Streamlit's own code reads) only while the process starts.
    """
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not getattr(main, "__file__", None):
        yield  # started with python -m ...: the child imports that module by name, guarded
        return
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
    try:
        yield
    finally:
        main.__spec__ = None


class JobQueue:
    """Process-wide training queue shared by every browser session.

    Args:
        max_jobs: trainings that may run at once (default ``default_max_jobs()``).
        max_flops: per-job FLOP cap (default ``default_max_flops()``).
        orphan_timeout: seconds without ``poll``/``touch`` after which a job is cancelled.
        gpu: whether a GPU is present (default: ask torch); without one, ``paper`` is refused.
        tick: seconds between scheduler passes.
        stop_grace: seconds a cancelled child may take to stop before it is terminated.
        keep_finished: seconds a finished job stays visible.
    """

    def __init__(self, max_jobs: int | None = None, max_flops: float | None = None,
                 orphan_timeout: float = ORPHAN_TIMEOUT_S, gpu: bool | None = None, tick: float = 0.2,
                 stop_grace: float = 3.0, keep_finished: float = 3600.0) -> None:
        self.max_jobs = max_jobs if max_jobs is not None else default_max_jobs()
        self.max_flops = max_flops if max_flops is not None else default_max_flops()
        self.orphan_timeout = orphan_timeout
        self.gpu = has_gpu() if gpu is None else gpu
        self.tick = tick
        self.stop_grace = stop_grace
        self.keep_finished = keep_finished
        self._ctx = mp.get_context("spawn")
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._waiting: list[str] = []
        self._exiting: list[tuple[Any, float]] = []
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    # -- admission -------------------------------------------------------------------------
    def refusal(self, cfg: RunConfig, preset: str) -> str | None:
        """Why this job would be refused, or None when it is accepted."""
        cmd = cli_command(cfg, preset)
        if preset == "paper" and not self.gpu:
            return (f"The 'paper' preset is the paper's full setup (≈{cfg.total_flops:.1e} FLOP: days on this"
                    f" server's CPU) and this server has no GPU. Train it with the command line on a GPU"
                    f" machine:\n\n`{cmd}`\n\nthen copy the run folder into this app's runs/ folder (or"
                    " $ANCHOR_RUNS_DIR) and open it under 'Open a saved run'.")
        if cfg.total_flops > self.max_flops:
            return (f"This run needs ≈{cfg.total_flops:.1e} FLOP, more than this server's cap of"
                    f" {self.max_flops:.1e} FLOP per job (3× the cpu-demo preset unless ANCHOR_MAX_FLOPS"
                    " says otherwise). Use fewer epochs or a smaller preset, or train it with the command"
                    f" line on a GPU machine:\n\n`{cmd}`\n\nand copy the run folder into runs/.")
        return None

    def submit(self, cfg: RunConfig, preset: str, owner: str, runs_dir: str | Path) -> Job:
        """Queue a job; returns its snapshot. Raises ``JobRefused`` (see ``refusal``)."""
        why = self.refusal(cfg, preset)
        if why is not None:
            raise JobRefused(why)
        job = Job(uuid.uuid4().hex[:12], owner, preset, cfg, Path(runs_dir), run_name(cfg, preset))
        with self._lock:
            self._jobs[job.id] = job
            self._waiting.append(job.id)
            self._ensure_thread()
            self._schedule()
            return job.snapshot()

    # -- reading ---------------------------------------------------------------------------
    def poll(self, job_id: str) -> Job | None:
        """Heartbeat plus snapshot: what the live fragment calls every second."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            job.last_seen = time.monotonic()
            if job.state in ("running", "cancelling"):
                self._drain(job)
                self._reap(job, job.last_seen)
            return job.snapshot()

    def touch(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._jobs:
                self._jobs[job_id].last_seen = time.monotonic()

    def touch_owner(self, owner: str) -> list[Job]:
        """Heartbeat for every active job of ``owner``; returns snapshots of all of its jobs."""
        now = time.monotonic()
        with self._lock:
            mine = [j for j in self._jobs.values() if j.owner == owner]
            for j in mine:
                if j.active:
                    j.last_seen = now
            return [j.snapshot() for j in mine]

    def get(self, job_id: str) -> Job | None:
        """Snapshot without a heartbeat."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.snapshot()

    def position(self, job_id: str) -> int | None:
        """1-based place among waiting jobs (1 = next to start); None when not waiting."""
        with self._lock:
            return self._waiting.index(job_id) + 1 if job_id in self._waiting else None

    def counts(self) -> tuple[int, int]:
        """(running, waiting) jobs."""
        with self._lock:
            return self._running(time.monotonic()), len(self._waiting)

    # -- control ---------------------------------------------------------------------------
    def cancel(self, job_id: str, reason: str = "cancelled by the user") -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._cancel(job, reason, time.monotonic())

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Poll (with heartbeat) until the job is finished or ``timeout`` passes; returns a snapshot."""
        end = time.monotonic() + timeout
        while True:
            job = self.poll(job_id)
            if job is None or not job.active or time.monotonic() > end:
                return job
            time.sleep(0.05)

    def shutdown(self) -> None:
        """Cancel every job, stop the scheduler thread and reap the children."""
        with self._lock:
            now = time.monotonic()
            for job in self._jobs.values():
                self._cancel(job, "the app is shutting down", now)
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            end = time.monotonic() + self.stop_grace
            for job in self._jobs.values():
                if job._proc is not None:
                    job._proc.join(timeout=max(end - time.monotonic(), 0.1))  # let it stop by itself
                    if job._proc.is_alive():
                        job._proc.terminate()
                        job._proc.join(timeout=2)
                self._reap(job, time.monotonic() + 1e9)
            for proc, _ in self._exiting:
                proc.join(timeout=2)
                if proc.is_alive():
                    proc.kill()
            self._exiting = []

    # -- scheduler (always under the lock) ---------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="anchor-jobs", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._closed.wait(self.tick):
            with self._lock:
                self._schedule()

    def _schedule(self) -> None:
        now = time.monotonic()
        for job in list(self._jobs.values()):
            if job.active and now - job.last_seen > self.orphan_timeout:
                self._cancel(job, f"cancelled: nobody watched this job for {self.orphan_timeout:.0f} s"
                                  " (the browser tab was closed or left)", now)
            if job.state in ("running", "cancelling"):
                self._drain(job)
                self._reap(job, now)
            elif job.state in TERMINAL and job.finished and time.time() - job.finished > self.keep_finished:
                del self._jobs[job.id]
        running = self._running(now)
        while self._waiting and running < self.max_jobs:
            self._start(self._jobs[self._waiting.pop(0)])
            running += 1

    def _start(self, job: Job) -> None:
        job._msgs = self._ctx.Queue()
        job._stop = self._ctx.Event()
        job._proc = self._ctx.Process(
            target=_worker, args=(job.config.to_dict(), str(job.runs_dir), job.name, job._msgs, job._stop),
            name=f"anchor-train-{job.id}", daemon=True)
        job.state, job.started = "running", time.time()
        try:
            with _main_not_rerun():
                job._proc.start()
        except Exception as e:  # e.g. out of processes: report, do not crash the scheduler
            self._finish(job, "failed", f"could not start the training process: {e}")

    def _drain(self, job: Job) -> None:
        if job._msgs is None:
            return
        while True:
            try:
                msg = job._msgs.get_nowait()
            except queue_mod.Empty:
                return
            except Exception:  # a child killed mid-message leaves a torn pickle: stop reading
                return
            event = msg.pop("event", None)
            if event == "step":
                job.steps.append(msg)
            elif event == "eval":
                job.records.append(msg)
            elif event == "done":
                job._result, job.run_path = "done", msg["path"]
            elif event == "cancelled":
                job._result = "cancelled"
            elif event == "error":
                job._result, job.message = "failed", msg.get("message", "training failed")

    def _reap(self, job: Job, now: float) -> None:
        proc = job._proc
        if proc is None:
            return
        alive = proc.is_alive()
        if alive and job._result is None:
            if job.state == "cancelling" and job._cancel_at is not None:
                late = now - job._cancel_at
                if late > self.stop_grace + 2:
                    proc.kill()
                elif late > self.stop_grace:
                    proc.terminate()
            return
        if alive:  # the child has reported (run saved, or stopped) and is only exiting now
            self._exiting.append((proc, now))
        else:
            proc.join(timeout=0.1)
            self._drain(job)
        if job._result == "done":
            self._finish(job, "done", None)
        elif job.state == "cancelling" or job._result == "cancelled":
            self._finish(job, "cancelled", job.message or "cancelled")
        elif job._result == "failed":
            self._finish(job, "failed", job.message)
        else:
            self._finish(job, "failed", f"the training process exited unexpectedly (exit code {proc.exitcode})")

    def _running(self, now: float) -> int:
        """Jobs holding a training slot: running, stopping, or reported but not yet exited."""
        still = []
        for proc, since in self._exiting:
            if proc.is_alive():
                if now - since > 10:
                    proc.kill()
                still.append((proc, since))
            else:
                proc.join(timeout=0.1)
        self._exiting = still
        return len(still) + sum(1 for j in self._jobs.values() if j.state in ("running", "cancelling"))

    def _cancel(self, job: Job, reason: str, now: float) -> None:
        if job.state == "queued":
            if job.id in self._waiting:
                self._waiting.remove(job.id)
            self._finish(job, "cancelled", reason)
        elif job.state == "running":
            job.state, job.message, job._cancel_at = "cancelling", reason, now
            job._stop.set()

    def _finish(self, job: Job, state: str, message: str | None) -> None:
        job.state, job.message, job.finished = state, message, time.time()
        for q in (job._msgs,):
            if q is not None:
                q.close()
                q.cancel_join_thread()
        job._proc, job._msgs, job._stop = None, None, None

"""Background training jobs: a process-wide FIFO queue of ``python -m core train`` subprocesses.

Training never runs in a Streamlit script thread, nor in a forked or spawned copy of the
server: each job is the command line itself,

    python -m core train <cli_args(cfg, preset)> --out RUNS/NAME --unique --threads 1
        --progress jsonl --watch-stdin

so the command the page shows for reproducing a run (``cli_command``) is the one that ran.
The child prints one JSON object per progress event on stdout (``core.cli.cmd_train``); a
reader thread per child parses the lines into the job's message queue, a second one keeps the
tail of its stderr (the CLI's one-line ``error:`` message). Nothing is pickled, so editing a
project file on a running server (Streamlit reloads the modules) cannot break later jobs.

- **Cancel** sends SIGTERM: the CLI stops within one optimizer step and saves nothing (exit
  status 143); a child still alive ``stop_grace`` seconds later is killed.
- **The child dies with the server**: the server holds the child's stdin pipe and the child
  stops when it reaches end of file (``--watch-stdin``), which happens when the server exits
  for any reason, SIGKILL included.
- **Saves** are the CLI's: temporary folder + rename (a run folder is whole or absent), and
  ``--unique`` saves as ``NAME_2``, ``NAME_3``, ... when the name is taken: never overwrites.

The queue's daemon thread (started on the first submit) drains progress messages, starts
waiting jobs in submission order while fewer than ``max_jobs`` run, and is the watchdog: a job
whose owner has not called ``poll``/``touch`` for ``orphan_timeout`` seconds (60 s by default)
is cancelled, so a closed browser tab does not leave work running; a job running longer than
``max_job_seconds`` is stopped. A job holds its training slot until its process has exited.

Admission (``refusal``; ``submit`` raises ``JobRefused`` with the reason, one paragraph):

- per job: ``job_cost`` (training plus evaluation FLOP, optimizer steps) within ``max_flops``
  and ``max_steps``; the ``paper`` preset needs a GPU;
- per browser session (``owner``): at most ``max_per_session`` queued-or-running requests
  (a double-click cannot queue two trainings); jobs submitted inside ``request(owner)`` count
  as one request (the Phase page's seeds of one cell);
- per server: at most ``max_queue`` jobs waiting.

Limits come from the environment (``limits_from_env``): a value that is not a positive finite
number is refused with a warning on stderr and the default is used, never "no limit".

This module imports no Streamlit (its tests need no Streamlit runtime).
``ui.loaders.job_queue`` holds the process-wide instance.
"""
from __future__ import annotations

import json
import math
import os
import queue as queue_mod
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import RunConfig, pair_key
from core.presets import get_preset

REPO = Path(__file__).resolve().parents[1]
ACTIVE = ("queued", "running", "cancelling")
TERMINAL = ("done", "cancelled", "failed")
ORPHAN_TIMEOUT_S = 60.0
STOPPED_EXIT = 143  # core.cli.STOPPED: the CLI stopped on SIGTERM / stdin EOF and saved nothing


class JobRefused(ValueError):
    """A job the queue will not run (too large for this server, or too many queued); the message says why."""


class SessionBusy(JobRefused):
    """This browser session already has a training queued or running."""


class QueueFull(JobRefused):
    """The server's queue holds ``max_queue`` waiting jobs already."""


# -- limits ------------------------------------------------------------------------------------
def _demo_flops() -> float:
    return 3.0 * job_cost(get_preset("cpu-demo"))["flops"]


def _demo_steps() -> int:
    return 3 * get_preset("cpu-demo").train.total_steps


# env name -> (default, whole number?, what it limits)
LIMITS: dict[str, tuple[Any, bool, str]] = {
    "ANCHOR_MAX_JOBS": (lambda: 1, True, "trainings running at once"),
    "ANCHOR_MAX_QUEUE": (lambda: 8, True, "jobs waiting in the queue"),
    "ANCHOR_MAX_JOBS_PER_SESSION": (lambda: 1, True, "queued-or-running trainings per browser session"),
    "ANCHOR_MAX_FLOPS": (_demo_flops, False, "FLOP per job, training plus evaluation"),
    "ANCHOR_MAX_STEPS": (_demo_steps, True, "optimizer steps per job"),
    "ANCHOR_MAX_JOB_SECONDS": (lambda: 900.0, False, "seconds of wall time per job"),
}


def env_limit(name: str) -> tuple[float, str | None]:
    """The limit ``name`` of ``LIMITS`` from the environment: ``(value, warning or None)``.

    A value that is not a positive finite number (``nan``, ``inf``, ``-1``, ``0``, ``abc``; for
    counts also ``2.5``) is refused: the default is returned with a one-line warning saying so.
    """
    default_fn, whole, what = LIMITS[name]
    default = default_fn()
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default, None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0) or (whole and value != int(value)):
        kind = "a whole number ≥ 1" if whole else "a positive finite number"
        return default, (f"{name}={text!r} is not {kind} ({what}); using the default {default:g} instead"
                         " (a limit is never switched off)")
    return (int(value) if whole else value), None


def default_max_jobs() -> int:
    """Concurrent trainings allowed: env ``ANCHOR_MAX_JOBS`` (default 1)."""
    return int(env_limit("ANCHOR_MAX_JOBS")[0])


def default_max_flops() -> float:
    """Per-job FLOP cap: env ``ANCHOR_MAX_FLOPS``, else 3x the cpu-demo preset's ``job_cost`` FLOP."""
    return float(env_limit("ANCHOR_MAX_FLOPS")[0])


def has_gpu() -> bool:
    import torch
    return bool(torch.cuda.is_available())


def job_cost(cfg: RunConfig) -> dict[str, float]:
    """What one training of ``cfg`` really costs, as the queue's caps count it.

    Returns:
        ``steps``: optimizer steps; ``evaluations``: evaluation passes (epoch 0, every
        ``eval_every`` epochs and the last); ``train_flops``: ``cfg.total_flops`` (6 · params ·
        tokens per training sequence); ``eval_flops``: forward passes of the evaluations
        (2 · params · tokens per sequence; each pass scores ``n_eval_per_pair`` test sequences
        of every pair and twice that of every held-out pair, ``core.train.make_eval_set``);
        ``flops``: their sum.
    """
    t, task = cfg.train, cfg.task
    n_params = cfg.n_params
    evaluations = 1 + t.epochs // t.eval_every + (1 if t.epochs % t.eval_every else 0)
    eval_sequences = t.n_eval_per_pair * (len(task.pairs) + 2 * len(task.held_out))
    eval_flops = evaluations * eval_sequences * 2.0 * n_params * task.seq_len
    return {"steps": t.total_steps, "evaluations": evaluations, "train_flops": cfg.total_flops,
            "eval_flops": eval_flops, "flops": cfg.total_flops + eval_flops}


# -- the command line of a job -------------------------------------------------------------------
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


def _number(x: float) -> str:
    return f"{x:g}" if float(f"{x:g}") == x else repr(x)


def _config_of(args: list[str]) -> RunConfig:
    from core.cli import build_parser, config_from_args
    return config_from_args(build_parser().parse_args(["train", *args]))


def cli_args(cfg: RunConfig, preset: str) -> list[str]:
    """The arguments after ``python -m core train`` that rebuild exactly ``cfg``.

    The preset and the shortcut flags the app changes (``--gamma --layers --seed --epochs
    --held-out``), then ``--set section.field=JSON`` for every other field that still differs
    (checked by parsing the arguments with the CLI's own parser).

    Raises:
        ValueError: ``preset`` is unknown, or no command line rebuilds ``cfg``.
    """
    base = get_preset(preset)
    args = ["--preset", preset, "--gamma", _number(cfg.model.gamma), "--layers", str(cfg.model.n_layers),
            "--seed", str(cfg.train.seed)]
    if cfg.train.epochs != base.train.epochs:
        args += ["--epochs", str(cfg.train.epochs)]
    if cfg.task.held_out != base.task.held_out:
        if cfg.task.held_out:
            for p in cfg.task.held_out:
                args += ["--held-out", pair_key(p)]
        else:
            args += ["--set", "task.held_out=[]"]
    want, have = cfg.to_dict(), base.to_dict()
    given = {"task.held_out", "model.gamma", "model.n_layers", "train.seed", "train.epochs",
             "train.warmup_epochs", "train.decay_epochs"}  # flags above, or scaled with --epochs

    def sets(have: dict[str, Any], skip: set[str]) -> list[str]:
        return ["--set" if i % 2 == 0 else f"{section}.{name}=" + json.dumps(value, separators=(",", ":"))
                for section, fields in want.items() for name, value in fields.items()
                if f"{section}.{name}" not in skip and have[section].get(name) != value for i in (0, 1)]

    args += sets(have, given)  # at once: some fields are only valid together (a held-out pair, its override)
    for _ in range(3):  # an explicit decay or warm-up undoes the CLI's epoch scaling: look again
        got = _config_of(args)
        if got == cfg:
            return args
        args += sets(got.to_dict(), set())
    raise ValueError("this configuration cannot be written as a python -m core train command")


def cli_command(cfg: RunConfig, preset: str) -> str:
    """The ``python -m core train`` command that trains ``cfg`` (the one the queue runs, less its
    runtime flags), shell-quoted; without ``--out`` it saves into ``runs/``."""
    return shlex.join(["python", "-m", "core", "train", *cli_args(cfg, preset)])


def reproduce_args(cfg: RunConfig) -> list[str]:
    """The shortest ``python -m core train`` arguments (``cli_args``) that rebuild ``cfg`` from any
    preset; ties go to the first preset in ``core.presets.PRESETS`` order.

    Raises:
        ValueError: no preset's command line rebuilds ``cfg``.
    """
    from core.presets import PRESETS
    best: list[str] | None = None
    for name in PRESETS:
        try:
            args = cli_args(cfg, name)
        except ValueError:
            continue
        if best is None or len(args) < len(best):
            best = args
    if best is None:
        raise ValueError("this configuration cannot be written as a python -m core train command")
    return best


def shell_lines(cmd: str, width: int = 56) -> str:
    """``cmd`` cut into bash continuation lines (`` \\`` + newline + two spaces) only between a
    flag and the previous argument, each line at most ``width`` characters where a flag allows:
    wrapped by the browser instead, a projected command broke inside ``--seed`` ("-" / "-seed")."""
    parts = cmd.replace(" --", "\0--").split("\0")
    lines = [parts[0]]
    for p in parts[1:]:
        if len(lines[-1]) + 1 + len(p) <= width:
            lines[-1] += " " + p
        else:
            lines.append(p)
    return " \\\n  ".join(lines)


def reproduce_command(cfg: RunConfig, name: str, threads: int | None = None, half: bool = False,
                      checkpoint_every: int | None = None) -> str:
    """The command that trains the run ``name`` again from scratch (a run card shows it):
    ``reproduce_args(cfg)``, then ``--out runs/NAME`` (relative: no path of the server is shown),
    ``--threads N`` when the run recorded its CPU thread count (same config, seed, thread count
    and torch build give the same bits; README "Reproducibility"), ``--half`` for fp16 weights,
    ``--checkpoint-every MINUTES`` for a run of hours (resumable). Shell-quoted.

    Raises:
        ValueError: as ``reproduce_args``, or a ``name`` that is not a plain folder name.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name or not name.isprintable():
        raise ValueError(f"{name!r} is not a run folder name")
    args = reproduce_args(cfg) + ["--out", f"runs/{name}"]
    if isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1:
        args += ["--threads", str(threads)]
    if half:
        args.append("--half")
    if checkpoint_every:
        args += ["--checkpoint-every", str(int(checkpoint_every))]
    return shlex.join(["python", "-m", "core", "train", *args])


# -- jobs ----------------------------------------------------------------------------------------
JOB_THREADS = 1  # every queued job trains on one CPU thread (``--threads 1``)

def _shown(arg: str, runs_dir: Path) -> str:
    """``arg`` with an absolute path made presentable (``Job.command``): relative to the working
    directory when the runs folder is inside it, else ``$ANCHOR_RUNS_DIR/...``."""
    if not os.path.isabs(arg):
        return arg
    p, runs, cwd = Path(arg), Path(runs_dir).resolve(), Path.cwd()
    if p.is_relative_to(runs):
        return str(p.relative_to(cwd)) if runs.is_relative_to(cwd) and cwd != Path(cwd.anchor) \
            else str(Path("$ANCHOR_RUNS_DIR") / p.relative_to(runs))
    return arg if arg == sys.executable else p.name


@dataclass
class Job:
    """One training job as the UI sees it (``JobQueue.poll`` returns a copy).

    ``records`` are the evaluation records of ``core.train.train`` (epoch 0 first), ``steps``
    the step records (``step``, ``total_steps``, ``epoch``, ``loss``, ``lr``). ``argv`` is the
    command the job runs (``python`` standing for the server's interpreter).
    """

    id: str
    owner: str
    preset: str
    config: RunConfig
    runs_dir: Path
    name: str
    argv: list[str] = field(default_factory=list)
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
    _lines: Any = field(default=None, repr=False)
    _readers: list[threading.Thread] = field(default_factory=list, repr=False)
    _stderr: Any = field(default=None, repr=False)
    _group: str = field(default="", repr=False)
    _t0: float | None = field(default=None, repr=False)
    _cancel_at: float | None = field(default=None, repr=False)
    _exited_at: float | None = field(default=None, repr=False)
    _result: str | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def command(self) -> str:
        """The command this job runs, shell-quoted, as a visitor may see it: a path inside the
        working directory is shown relative to it, the runs folder elsewhere as
        ``$ANCHOR_RUNS_DIR`` (the server's file layout is not shown on a public demo)."""
        return shlex.join(_shown(a, self.runs_dir) for a in self.argv)

    @property
    def reproduce(self) -> str | None:
        """For a finished job, the command that trains its saved run again from the repository
        root, exactly as the run's card shows it (``reproduce_command``: ``--out runs/NAME``, the
        thread count the job ran with, never a path of the server); None before it is saved."""
        if self.state != "done" or not self.run_path:
            return None
        try:
            return reproduce_command(self.config, Path(self.run_path).name, JOB_THREADS)
        except ValueError:
            return None

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
        return Job(self.id, self.owner, self.preset, self.config, self.runs_dir, self.name, list(self.argv),
                   self.state, self.created, self.started, self.finished, self.last_seen, list(self.records),
                   list(self.steps), self.run_path, self.message)


def _read_stdout(stream: Any, sink: queue_mod.SimpleQueue) -> None:
    """Reader thread: one JSON object per line onto ``sink``; other lines are ignored."""
    try:
        for line in stream:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict):
                sink.put(msg)
    except (OSError, ValueError):  # the pipe was closed under us
        pass


def _read_stderr(stream: Any, tail: deque) -> None:
    try:
        for line in stream:
            text = line.decode("utf-8", "replace").strip()
            if text:
                tail.append(text)
    except (OSError, ValueError):
        pass


class JobQueue:
    """Process-wide training queue shared by every browser session.

    Args (each ``None`` reads its environment variable, see ``LIMITS`` and ``env_limit``):
        max_jobs: trainings that may run at once (``ANCHOR_MAX_JOBS``, default 1).
        max_flops: per-job cap on ``job_cost(cfg)["flops"]`` (``ANCHOR_MAX_FLOPS``, default 3x
            the cpu-demo preset's).
        max_steps: per-job cap on optimizer steps (``ANCHOR_MAX_STEPS``, default 3x cpu-demo's).
        max_queue: jobs that may wait (``ANCHOR_MAX_QUEUE``, default 8).
        max_per_session: queued-or-running requests per owner (``ANCHOR_MAX_JOBS_PER_SESSION``, default 1).
        max_job_seconds: wall time after which a running job is stopped (``ANCHOR_MAX_JOB_SECONDS``,
            default 900 s).
        orphan_timeout: seconds without ``poll``/``touch`` after which a job is cancelled.
        gpu: whether a GPU is present (default: ask torch); without one, ``paper`` is refused.
        tick: seconds between scheduler passes.
        stop_grace: seconds a cancelled child may take to stop before it is killed.
        keep_finished: seconds a finished job stays visible.

    Attributes:
        warnings: one line per refused environment value (also written to stderr).
    """

    def __init__(self, max_jobs: int | None = None, max_flops: float | None = None,
                 orphan_timeout: float = ORPHAN_TIMEOUT_S, gpu: bool | None = None, tick: float = 0.2,
                 stop_grace: float = 3.0, keep_finished: float = 3600.0, max_steps: int | None = None,
                 max_queue: int | None = None, max_per_session: int | None = None,
                 max_job_seconds: float | None = None) -> None:
        self.warnings: list[str] = []

        def limit(given: Any, name: str) -> Any:
            if given is not None:
                return given
            value, warning = env_limit(name)
            if warning:
                self.warnings.append(warning)
                sys.stderr.write(f"warning: {warning}\n")
            return value

        self.max_jobs = limit(max_jobs, "ANCHOR_MAX_JOBS")
        self.max_flops = limit(max_flops, "ANCHOR_MAX_FLOPS")
        self.max_steps = limit(max_steps, "ANCHOR_MAX_STEPS")
        self.max_queue = limit(max_queue, "ANCHOR_MAX_QUEUE")
        self.max_per_session = limit(max_per_session, "ANCHOR_MAX_JOBS_PER_SESSION")
        self.max_job_seconds = limit(max_job_seconds, "ANCHOR_MAX_JOB_SECONDS")
        self.orphan_timeout = orphan_timeout
        self.gpu = has_gpu() if gpu is None else gpu
        self.tick = tick
        self.stop_grace = stop_grace
        self.keep_finished = keep_finished
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._waiting: list[str] = []
        self._requests: dict[tuple[int, str], str] = {}
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    # -- admission -------------------------------------------------------------------------
    def refusal(self, cfg: RunConfig, preset: str) -> str | None:
        """Why this job would be refused by its size, or None when it is accepted."""
        try:
            cmd = cli_command(cfg, preset)
        except ValueError as e:
            return f"This run cannot be started here: {e}."
        cost = job_cost(cfg)
        if preset == "paper" and not self.gpu:
            return (f"The 'paper' preset is the paper's full setup (≈{cost['flops']:.1e} FLOP: days on this"
                    f" server's CPU) and this server has no GPU. Train it with the command line on a GPU"
                    f" machine:\n\n`{cmd}`\n\nthen copy the run folder into this app's runs/ folder (or"
                    " $ANCHOR_RUNS_DIR) and open it under 'Open a saved run'.")
        elsewhere = (" Use fewer epochs or a smaller preset, or train it with the command line on a GPU"
                     f" machine:\n\n`{cmd}`\n\nand copy the run folder into runs/.")
        if cost["flops"] > self.max_flops:
            return (f"This run needs ≈{cost['flops']:.1e} FLOP ({cost['train_flops']:.1e} training,"
                    f" {cost['eval_flops']:.1e} for its {cost['evaluations']:,} evaluations), more than this"
                    f" server's cap of {self.max_flops:.1e} FLOP per job (3× the cpu-demo preset unless"
                    " ANCHOR_MAX_FLOPS says otherwise)." + elsewhere)
        if cost["steps"] > self.max_steps:
            return (f"This run needs {cost['steps']:,} optimizer steps, more than this server's cap of"
                    f" {self.max_steps:,} steps per job (3× the cpu-demo preset unless ANCHOR_MAX_STEPS says"
                    " otherwise): every step takes time, however small the model." + elsewhere)
        return None

    @contextmanager
    def request(self, owner: str) -> Iterator[None]:
        """Jobs ``owner`` submits inside this block (from this thread) count as one request
        against ``max_per_session``: the several seeds of one Phase-diagram cell."""
        key = (threading.get_ident(), owner)
        with self._lock:
            self._requests[key] = uuid.uuid4().hex[:12]
        try:
            yield
        finally:
            with self._lock:
                self._requests.pop(key, None)

    def submit(self, cfg: RunConfig, preset: str, owner: str, runs_dir: str | Path) -> Job:
        """Queue a job; returns its snapshot.

        Raises:
            JobRefused: too large (``refusal``); ``SessionBusy``: ``owner`` has
                ``max_per_session`` requests queued or running; ``QueueFull``: ``max_queue``
                jobs are waiting.
        """
        why = self.refusal(cfg, preset)
        if why is not None:
            raise JobRefused(why)
        job_id = uuid.uuid4().hex[:12]
        with self._lock:
            group = self._requests.get((threading.get_ident(), owner), job_id)
            mine = [j for j in self._jobs.values() if j.owner == owner and j.active]
            others = {j._group for j in mine if j._group != group}
            if len(others) >= self.max_per_session:
                names = ", ".join(j.name for j in mine)
                raise SessionBusy(
                    f"You already have a training queued or running ({names}). This server trains"
                    f" {self.max_per_session} job per visitor at a time: wait for it to finish or cancel it,"
                    " then train again.")
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(
                    f"The server's training queue is full ({len(self._waiting)} jobs waiting, at most"
                    f" {self.max_queue}). Try again in a few minutes, or train on your own machine with"
                    f" the command line:\n\n`{cli_command(cfg, preset)}`")
            job = Job(job_id, owner, preset, cfg, Path(runs_dir), run_name(cfg, preset))
            job._group = group
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
        """(running, waiting) jobs; a job counts as running until its process has exited."""
        with self._lock:
            return self._running(), len(self._waiting)

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
                proc = job._proc
                if proc is None:
                    continue
                try:
                    proc.wait(timeout=max(end - time.monotonic(), 0.1))  # let it stop by itself
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
                for reader in job._readers:  # its last lines
                    reader.join(timeout=2)
                self._reap(job, time.monotonic())

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
            if job.state == "running" and job._t0 is not None and now - job._t0 > self.max_job_seconds:
                self._cancel(job, f"stopped: it ran longer than this server's limit of {self.max_job_seconds:.0f} s"
                                  " per job (ANCHOR_MAX_JOB_SECONDS). Use fewer epochs, or train it with the"
                                  f" command line: `{cli_command(job.config, job.preset)}`", now)
            if job.state in ("running", "cancelling"):
                self._drain(job)
                self._reap(job, now)
            elif job.state in TERMINAL and job.finished and time.time() - job.finished > self.keep_finished:
                del self._jobs[job.id]
        running = self._running()
        while self._waiting and running < self.max_jobs:
            self._start(self._jobs[self._waiting.pop(0)])
            running += 1

    def _start(self, job: Job) -> None:
        args = cli_args(job.config, job.preset)
        runtime = ["--out", str(job.runs_dir / job.name), "--unique", "--threads", str(JOB_THREADS), "--progress", "jsonl",
                   "--watch-stdin"]
        job.argv = ["python", "-m", "core", "train", *args, *runtime]
        job.state, job.started, job._t0 = "running", time.time(), time.monotonic()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        try:
            job._proc = subprocess.Popen([sys.executable, *job.argv[1:]], cwd=REPO, env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:  # e.g. out of processes: report, do not crash the scheduler
            self._finish(job, "failed", f"could not start the training process: {e}")
            return
        job._lines, job._stderr = queue_mod.SimpleQueue(), deque(maxlen=20)
        job._readers = [
            threading.Thread(target=_read_stdout, args=(job._proc.stdout, job._lines), daemon=True,
                             name=f"anchor-job-{job.id}-out"),
            threading.Thread(target=_read_stderr, args=(job._proc.stderr, job._stderr), daemon=True,
                             name=f"anchor-job-{job.id}-err")]
        for t in job._readers:
            t.start()

    def _drain(self, job: Job) -> None:
        if job._lines is None:
            return
        while True:
            try:
                msg = job._lines.get_nowait()
            except queue_mod.Empty:
                return
            event = msg.pop("event", None)
            if event == "step":
                job.steps.append(msg)
            elif event == "eval":
                job.records.append(msg)
            elif event == "done":
                job._result, job.run_path = "done", msg.get("run")
            elif event == "cancelled":
                job._result = "cancelled"
            elif event == "error":
                job._result, job.message = "failed", msg.get("message", "training failed")

    def _reap(self, job: Job, now: float) -> None:
        """Finish ``job`` once its process has exited and its output is read; kill a child that
        ignores a cancel for ``stop_grace`` seconds."""
        proc = job._proc
        if proc is None:
            return
        code = proc.poll()
        if code is None:
            if job.state == "cancelling" and job._cancel_at is not None and now - job._cancel_at > self.stop_grace:
                proc.kill()
            return
        if job._exited_at is None:
            job._exited_at = now
        if any(t.is_alive() for t in job._readers) and now - job._exited_at < 5:
            return  # the last lines are still being read
        self._drain(job)
        if job._result == "done" and job.state != "cancelling":
            self._finish(job, "done", None)
        elif job.state == "cancelling" or job._result == "cancelled" or code == STOPPED_EXIT:
            self._finish(job, "cancelled", job.message or "cancelled")
        elif job._result == "failed":
            self._finish(job, "failed", job.message)
        else:
            errors = [line for line in job._stderr if line.startswith("error:")]
            why = errors[-1] if errors else f"the training process exited unexpectedly (exit code {code})"
            self._finish(job, "failed", why)

    def _running(self) -> int:
        """Jobs holding a training slot: running, or stopping until their process has exited."""
        return sum(1 for j in self._jobs.values() if j.state in ("running", "cancelling"))

    def _cancel(self, job: Job, reason: str, now: float) -> None:
        if job.state == "queued":
            if job.id in self._waiting:
                self._waiting.remove(job.id)
            self._finish(job, "cancelled", reason)
        elif job.state == "running":
            job.state, job.message, job._cancel_at = "cancelling", reason, now
            if job._proc is not None and job._proc.poll() is None:
                job._proc.send_signal(signal.SIGTERM)  # Windows: terminate()

    def _finish(self, job: Job, state: str, message: str | None) -> None:
        job.state, job.message, job.finished = state, message, time.time()
        proc = job._proc
        if proc is not None:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        job._proc, job._lines, job._readers = None, None, []

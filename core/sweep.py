"""Running sweeps: plan which grid points to train, train them on a backend, gather the tables.

A sweep (``core.sweep_spec.SweepSpec``) is trained in three steps, each usable alone:

- ``plan_sweep``: what to train and what to skip, as data (``SweepPlan``); reads run folders,
  writes nothing.
- ``execute_sweep``: trains the planned runs on a backend and yields one event per finished
  or failed run, after saving it as an ordinary run folder ``OUT/runs/<run-id>/``
  (``core.runs.save_run``).
- ``core.sweep_tables.gather``: rebuilds ``results.csv`` and ``summary.csv`` from the folders.

``run_sweep`` does all three and writes ``sweep.json``; ``python -m core sweep`` calls it.

Resumption: a run whose folder holds ``metrics.json`` is finished and never retrained; run
folders are written atomically by the driver, so an interrupted sweep loses at most the runs
in flight.

Backends: ``local`` (in-process for one worker, else spawned worker processes, each limiting
its own torch threads) and ``ray`` (``pip install ray``; workers return metrics and weights to
the driver, so a cluster needs no shared file system). Batching several small models into one
vmapped ensemble step was measured and was not faster on two CPU cores
(bench/sweep_speed.py), so there is no ensemble backend.

Only torch and the standard library: this module runs on a bare GPU box (no pandas).
"""
from __future__ import annotations

import json
import queue
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig
from .fit import fit
from .model import build_model
from .runs import load_config, save_run
from .sweep_spec import Point, SweepSpec
from .sweep_tables import gather, is_finished
from .train import Cancelled
from .verdict import verdict

# Re-exported for the app, which imports these names from here (ui/phase_views.py: run_row;
# ui/phase_data.py: SweepSpec, summarize_cells). Their homes: SweepSpec in core/sweep_spec.py,
# run_row and summarize_cells in core/sweep_tables.py.
from .sweep_tables import run_row, summarize_cells  # noqa: E402,F401

__all__ = ["Backend", "PlannedRun", "SweepPlan", "SweepReport", "execute_sweep", "plan_sweep", "run_sweep", "train_point",
           "SweepSpec", "run_row", "summarize_cells"]

# -- running one point ---------------------------------------------------------------------

def train_point(job: dict[str, Any], on_progress: Callable[[dict[str, Any]], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Train one grid point in this process and return its metrics and weights.

    Touches no file: the driver saves the run, so Ray workers need no shared disk.
    Initialization is seeded with ``Generator(seed)`` exactly as ``python -m core train``.

    Args:
        job: ``{"run_id", "cell_id", "config": RunConfig dict, "threads": int | None}``.

    Returns:
        ``{"run_id", "metrics": {"history", "seconds", "wall_seconds", "cpu_seconds", "device", "threads"},
        "state": {name: numpy array}}``.

    Raises:
        Cancelled: ``should_stop`` returned True.
    """
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    cfg = RunConfig.from_dict(job["config"])
    # cpu_seconds: CPU time of this process (all its threads), the run's cost on a shared machine
    model, metrics = fit(cfg, on_progress=on_progress, should_stop=should_stop)
    metrics["sweep"] = {"run_id": job["run_id"], "cell": job["cell_id"]}
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    return {"run_id": job["run_id"], "metrics": metrics, "state": state}


def _safe_train_point(job: dict[str, Any]) -> dict[str, Any]:
    """Pool entry point: a failed run comes back as ``{"run_id", "error"}`` instead of raising."""
    try:
        return train_point(job)
    except Exception:  # noqa: BLE001 - reported per run by the driver, the sweep goes on
        return {"run_id": job["run_id"], "error": traceback.format_exc(limit=5)}

def _worker(jobs: Any, results: Any, threads: int) -> None:
    """A local worker process: train jobs from ``jobs`` until its ``None``, put each result."""
    torch.set_num_threads(threads)
    for job in iter(jobs.get, None):
        results.put(_safe_train_point(job))


# -- backends: each yields results as runs finish ---------------------------------------------

def _local(jobs: list[dict], workers: int, should_stop: Callable[[], bool] | None,
           on_progress: Callable[[dict[str, Any]], None] | None) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        for job in jobs:
            if should_stop is not None and should_stop():
                return
            prog = None if on_progress is None else (lambda r, j=job: on_progress({**r, "run_id": j["run_id"]}))
            try:
                yield train_point(job, on_progress=prog, should_stop=should_stop)
            except Cancelled:
                return
            except Exception:  # noqa: BLE001
                yield {"run_id": job["run_id"], "error": traceback.format_exc(limit=5)}
        return
    if not jobs:
        return
    import multiprocessing as mp

    # Our own spawned processes (not a ProcessPoolExecutor): we hold their Process objects, so
    # stopping can terminate the runs in flight through public API.
    ctx = mp.get_context("spawn")
    threads = int(jobs[0].get("threads") or 1)
    todo, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(todo, results, threads)) for _ in range(min(workers, len(jobs)))]
    for job in jobs:
        todo.put(job)
    for _ in procs:
        todo.put(None)
    pending = {job["run_id"] for job in jobs}
    for p in procs:
        p.start()
    try:
        while pending:
            try:
                res = results.get(timeout=0.5)
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    # A crashed worker (killed, out of memory): its run and the ones still
                    # queued are reported failed, as a broken process pool would.
                    for rid in sorted(pending):
                        yield {"run_id": rid, "error": f"a worker process died (exit code {dead[0]})"}
                    return
            else:
                pending.discard(res["run_id"])
                yield res
            if pending and should_stop is not None and should_stop():
                return
    finally:
        if pending:
            # Runs in flight are abandoned; they never saved anything. Jobs nobody will read
            # must not keep this process from exiting.
            todo.cancel_join_thread()
            for p in procs:
                p.terminate()
        for p in procs:
            p.join()
        todo.close()
        results.close()


def _ray(jobs: list[dict], workers: int, address: str | None, gpus_per_run: float,
         should_stop: Callable[[], bool] | None) -> Iterator[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise ValueError("the ray backend needs Ray: pip install ray") from None
    started = False
    if not ray.is_initialized():
        root = str(Path(__file__).resolve().parents[1])
        if address:
            # A remote cluster gets the code shipped with the job (no shared disk needed).
            env = {"working_dir": root, "excludes": [".git", "pretrained", "sweeps", "runs", "**/__pycache__"]}
            ray.init(address=address, runtime_env=env, log_to_driver=False)
        else:
            # A local cluster stays on the loopback interface.
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
                     runtime_env={"env_vars": {"PYTHONPATH": root}})
        started = True
    threads = int(jobs[0].get("threads") or 1) if jobs else 1
    remote = ray.remote(num_cpus=threads, num_gpus=gpus_per_run, max_retries=0)(_safe_train_point)
    refs = {remote.remote(job): job for job in jobs}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in done:
                try:
                    yield ray.get(ref)
                except Exception:  # noqa: BLE001 - worker died
                    yield {"run_id": refs[ref]["run_id"], "error": traceback.format_exc(limit=3)}
            if should_stop is not None and should_stop():
                return
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


# -- the sweep --------------------------------------------------------------------------------

@dataclass
class SweepReport:
    """What ``run_sweep`` did: run ids trained, skipped (already finished) and failed."""

    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    stopped: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class PlannedRun:
    """One run to train: its grid point, config, whether a folder is already there (an
    unfinished or changed run, overwritten) and whether its weights are kept."""

    point: Point
    config: RunConfig
    exists: bool
    keep_weights: bool


@dataclass
class SweepPlan:
    """What a sweep would do now (``plan_sweep``), as data.

    Attributes:
        total: grid points considered (after ``only``).
        skipped: run ids already finished with the spec's config.
        changed: run ids finished with a different config (in ``todo`` only when retraining
            changed runs was asked for).
        todo: the runs to train, in grid order, cut to ``max_runs``.
    """

    spec: SweepSpec
    out: Path
    base: RunConfig
    total: int
    skipped: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    todo: list[PlannedRun] = field(default_factory=list)


@dataclass(frozen=True)
class Backend:
    """Where ``execute_sweep`` trains (fields as ``run_sweep``'s arguments ``backend``,
    ``workers``, ``threads``, ``address``, ``gpus_per_run``).

    Raises:
        ValueError: unknown kind, workers < 1, or the ray kind without Ray installed.
    """

    kind: str = "local"
    workers: int = 1
    threads: int | None = 1
    address: str | None = None
    gpus_per_run: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("local", "ray"):
            raise ValueError(f"unknown backend {self.kind!r}; choose local or ray")
        if self.workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {self.workers}")
        if self.kind == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                raise ValueError("the ray backend needs Ray, an optional extra: pip install ray") from None


def plan_sweep(spec: SweepSpec, out: str | Path, *, keep_weights: str = "all", only: Iterable[str] | None = None,
               max_runs: int | None = None, retrain_changed: bool = False) -> SweepPlan:
    """Which grid points of ``spec`` to train into ``out/runs/`` and which to skip. Writes nothing.

    Args: as ``run_sweep``.

    Raises:
        ValueError: unknown ``keep_weights`` policy or ``only`` ids. A changed config is not
            an error here: it is listed in ``changed`` (``run_sweep`` refuses it).
    """
    spec.keeps_weights(spec.points()[0], keep_weights)  # validates the policy
    out = Path(out)
    base = spec.base_config
    points = spec.points()
    if only is not None:
        only = set(only)
        known = {p.run_id for p in points} | {p.cell_id for p in points}
        if only - known:
            raise ValueError(f"unknown cell or run ids: {sorted(only - known)[:5]}")
        points = [p for p in points if p.run_id in only or p.cell_id in only]
    plan = SweepPlan(spec, out, base, total=len(points))
    for p in points:
        cfg = spec.config_for(p, base)
        run_dir = out / "runs" / p.run_id
        if is_finished(run_dir):
            if load_config(run_dir).to_dict() == cfg.to_dict():
                plan.skipped.append(p.run_id)
                continue
            plan.changed.append(p.run_id)
            if not retrain_changed:
                continue
        plan.todo.append(PlannedRun(p, cfg, run_dir.exists(), spec.keeps_weights(p, keep_weights)))
    if max_runs is not None:
        plan.todo = plan.todo[:max(0, max_runs)]
    return plan


def execute_sweep(plan: SweepPlan, backend: Backend = Backend(), *, half: bool = False,
                  on_progress: Callable[[dict[str, Any]], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Iterator[dict[str, Any]]:
    """Train ``plan.todo`` on a backend; save each finished run; yield one event per run.

    Events: ``{"event": "done", "run_id", "index", "todo", "seconds", "seen_test_accuracy",
    "held_out", "outcome"}`` after the run folder is saved, or ``{"event": "failed", "run_id",
    "error"}``. Stops early (yielding fewer events than ``len(plan.todo)``) when
    ``should_stop`` returns True; runs in flight are abandoned. Closing the generator stops
    the backend likewise. ``on_progress`` gets training-step progress (``run_id`` added) when
    one worker trains in this process. ``half``: as ``run_sweep``.
    """
    spec, out = plan.spec, plan.out
    by_id = {r.point.run_id: r for r in plan.todo}
    jobs = [{"run_id": r.point.run_id, "cell_id": r.point.cell_id, "config": r.config.to_dict(), "threads": backend.threads}
            for r in plan.todo]
    if backend.kind == "ray":
        results = _ray(jobs, backend.workers, backend.address, backend.gpus_per_run, should_stop)
    else:
        results = _local(jobs, backend.workers, should_stop, on_progress)
    index = 0
    try:
        for res in results:
            rid = res["run_id"]
            index += 1
            if "error" in res:
                yield {"event": "failed", "run_id": rid, "error": res["error"]}
                continue
            r = by_id[rid]
            _save_result(out / "runs" / rid, r.config, res, half=half, overwrite=r.exists, keep=r.keep_weights)
            h = res["metrics"]["history"][-1]
            held = h["held_out"].get(spec.pair, {})
            yield {"event": "done", "run_id": rid, "index": index,
                   "todo": len(plan.todo), "seconds": res["metrics"]["seconds"],
                   "seen_test_accuracy": h["seen_test_accuracy"], "held_out": held,
                   "outcome": verdict(h["seen_test_accuracy"], held)["outcome"] if held else None}
    finally:
        results.close()


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    backend: str = "local",
    workers: int = 1,
    threads: int | None = 1,
    address: str | None = None,
    gpus_per_run: float = 0.0,
    half: bool = False,
    keep_weights: str = "all",
    only: Iterable[str] | None = None,
    max_runs: int | None = None,
    retrain_changed: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SweepReport:
    """Train every unfinished grid point of ``spec`` into ``out/runs/`` and gather the tables:
    ``plan_sweep``, then ``execute_sweep``, then ``core.sweep_tables.gather``.

    Args:
        out: sweep folder; ``sweep.json`` (the spec), ``runs/<run-id>/``, ``results.csv``,
            ``summary.csv`` are written there.
        backend: ``"local"`` or ``"ray"``.
        workers: parallel runs (local: processes; 1 runs in this process, with step progress).
        threads: torch threads per run (``None`` leaves the process default).
        address: Ray cluster address (``None`` starts a local Ray with ``workers`` CPUs).
        half: store weights as fp16 (loading restores fp32).
        keep_weights: ``"all"``, ``"seed0"`` (runs at the first value of every ``mean_over``
            key) or ``"none"``; runs without weights still count as finished.
        only: restrict to these cell ids or run ids.
        max_runs: train at most this many runs in this call (the rest stay for next time).
        retrain_changed: retrain finished runs whose stored config differs from the spec's;
            otherwise such runs raise ValueError (a changed preset would mix two configs).
        on_event: called with ``{"event": "plan"|"done"|"failed"|"progress", ...}``; progress
            (training steps) only when one worker trains in this process.
        should_stop: polled; True abandons the runs in flight and returns (``stopped``).

    Returns:
        A ``SweepReport``. ``results.csv`` and ``summary.csv`` are rewritten even when the
        sweep was stopped or interrupted (KeyboardInterrupt is re-raised after gathering).

    Raises:
        ValueError: unknown backend, bad worker count, unknown ``only`` ids, changed configs.
    """
    engine = Backend(backend, workers, threads, address, gpus_per_run)
    out = Path(out)
    emit = on_event or (lambda e: None)
    plan = plan_sweep(spec, out, keep_weights=keep_weights, only=only, max_runs=max_runs,
                      retrain_changed=retrain_changed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps({**spec.to_dict(), "base": plan.base.to_dict()}, indent=2))
    if plan.changed and not retrain_changed:
        raise ValueError(
            f"{len(plan.changed)} finished runs in {out} were trained with a different config"
            f" (e.g. {plan.changed[0]}): use another --out, or --retrain-changed to replace them")
    emit({"event": "plan", "total": plan.total, "skipped": len(plan.skipped), "todo": len(plan.todo)})
    report = SweepReport(skipped=list(plan.skipped))
    t0 = time.perf_counter()
    events = execute_sweep(plan, engine, half=half, should_stop=should_stop,
                           on_progress=None if on_event is None else (lambda r: emit({"event": "progress", **r})))
    try:
        for e in events:
            if e["event"] == "failed":
                report.failed[e["run_id"]] = e["error"]
            else:
                report.trained.append(e["run_id"])
            emit(e)
        report.stopped = len(report.trained) + len(report.failed) < len(plan.todo)
    finally:
        events.close()  # stops the backend now when the caller's on_event raised
        report.seconds = time.perf_counter() - t0
        gather(out)
    return report


def _save_result(run_dir: Path, cfg: RunConfig, res: dict[str, Any], *, half: bool, overwrite: bool,
                 keep: bool) -> None:
    model = build_model(cfg)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in res["state"].items()})
    save_run(run_dir, cfg, model, res["metrics"], device=res["metrics"]["device"], overwrite=overwrite, half=half)
    if not keep:
        (run_dir / "weights.safetensors").unlink()

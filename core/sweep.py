"""Sweeps: grids of runs, the paper's selection rule, and the phase-diagram tables.

Implements the phase-diagram protocol of docs/science.md §4 and the tables behind Fig. 2(a,b) and
Fig. 14 (§5): a *sweep spec* is a preset plus a grid over any config fields (dotted keys
such as ``model.gamma``, ``model.n_layers``, ``train.seed``, ``train.lr_peak``). Every grid
point is one run, saved as an ordinary run folder ``OUT/runs/<run-id>/`` with
``core.runs.save_run``; the runs of one *cell* differ only in the fields the paper
selects over (peak learning rate: best of) and averages over (seed: mean and spread).

Selection rule ([INIT] appendix A, docs/science.md §4): for each cell and each seed, keep the best
accuracy of each mapping over the learning rates (separately per mapping, so the best
inferential and the best symmetric accuracy may come from different learning rates); then
average over seeds. The seen-pair accuracy used for the shading (< 0.90) follows the same
rule. We also report the plain per-run mean and the spread (std over seeds, min, max), and
how many runs ended inferential / symmetric / other / not fitted (``core.verdict.verdict``).

Resumption: a run whose folder holds ``metrics.json`` is finished and never retrained; run
folders are written atomically by the driver, so an interrupted sweep loses at most the runs
in flight. ``results.csv`` (one row per run) and ``summary.csv`` (one row per cell) are
regenerated from the run folders, never appended to, so they cannot drift from them.

Backends: ``local`` (in-process for one worker, else a spawn-context process pool, each
worker limiting its own torch threads) and ``ray`` (``pip install ray``; workers return
metrics and weights to the driver, so a cluster needs no shared file system). Batching
several small models into one vmapped ensemble step was measured and was not faster on
two CPU cores (bench/sweep_speed.py), so there is no ensemble backend.

Only torch and the standard library: this module runs on a bare GPU box (no pandas).
"""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import os
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig, pair_key, parse_pair
from .presets import get_preset
from .runs import RunError, atomic_dir, load_config, load_metrics, load_run, save_run
from .fit import fit
from .model import build_model
from .train import Cancelled
from .verdict import FIT_THRESHOLD, summarize, verdict

# Table column for the config fields a phase diagram is drawn over; any other grid key keeps
# its dotted name as its column.
COLUMN = {
    "model.n_layers": "depth", "model.gamma": "gamma", "train.seed": "seed",
    "train.lr_peak": "lr", "train.weight_decay": "weight_decay",
}
# Short prefixes of run and cell ids (``L3_g0.5_lr0.001_s0``).
SHORT = {
    "model.n_layers": "L", "model.gamma": "g", "train.seed": "s", "train.lr_peak": "lr",
    "train.weight_decay": "wd", "model.d_model": "d", "train.epochs": "ep", "train.n_train": "n",
}
OUTCOMES = ("inferential", "symmetric", "other", "not fitted")
KEEP_WEIGHTS = ("all", "seed0", "none")


def column(key: str) -> str:
    """Table column of a dotted config key: ``model.gamma -> gamma``, others unchanged."""
    return COLUMN.get(key, key)


def pair_col(pair: str) -> str:
    """``"3,4" -> "3_4"``: pair suffix of per-pair columns (``inferential_3_4``)."""
    return pair.replace(",", "_")


def _freeze(v: Any) -> Any:
    """JSON values -> hashable values (lists become tuples, recursively)."""
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


def _thaw(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


def _fmt(v: Any) -> str:
    """Value as it appears in a run id: ``0.5``, ``0.001``, ``[[3,4],[4,3]] -> 3-4-4-3``."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        text = json.dumps(_thaw(v), separators=(",", ":"))
        return text.replace("[", "").replace("]", "").replace(",", "-")
    return "".join(c for c in str(v) if c.isalnum() or c in ".+-")


@dataclass(frozen=True)
class Point:
    """One grid point = one run. ``values``: ``((dotted key, value), ...)`` in grid order."""

    values: tuple[tuple[str, Any], ...]
    run_id: str
    cell_id: str

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.values).get(key, default)


@dataclass(frozen=True)
class SweepSpec:
    """A grid of runs over a base config, and how its cells are reduced.

    Attributes:
        name: the sweep's name (default output ``sweeps/<name>``, table ``<name>.csv``).
        preset: the base preset (``core.presets``); ``base`` wins when given.
        grid: ``((dotted key, (values...)), ...)``; every combination is one run.
        fixed: ``((dotted key, value), ...)`` applied to every run before the grid values.
        best_over: grid keys the selection rule maximises over (default the peak lr).
        mean_over: grid keys it averages over (default the seed).
        axes: ``(x, y)`` dotted keys the diagram is drawn over (a subset of the cell keys).
        pair: the held-out pair whose accuracies are the unprefixed columns (``"4,3"``).
        panels: table columns drawn as heatmaps, left to right.
        base: a full ``RunConfig`` dict replacing the preset (so a committed table can be
            recomputed exactly even after the preset changed).
        description: one sentence for humans.

    Raises:
        ValueError: empty or duplicated grid keys, unknown fields, values the config rejects,
            two points with the same run id, unknown axes.
    """

    name: str = "sweep"
    preset: str = "cpu-demo"
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()
    best_over: tuple[str, ...] = ("train.lr_peak",)
    mean_over: tuple[str, ...] = ("train.seed",)
    axes: tuple[str, ...] = ()
    pair: str = "4,3"
    panels: tuple[str, ...] = ("symmetric", "inferential")
    base: dict[str, Any] | None = field(default=None, compare=False)
    description: str = ""

    def __post_init__(self) -> None:
        grid = tuple((str(k), tuple(_freeze(v) for v in vals)) for k, vals in
                     (self.grid.items() if isinstance(self.grid, dict) else self.grid))
        object.__setattr__(self, "grid", grid)
        fixed = self.fixed.items() if isinstance(self.fixed, dict) else self.fixed
        object.__setattr__(self, "fixed", tuple((str(k), _freeze(v)) for k, v in fixed))
        for name in ("best_over", "mean_over", "axes", "panels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "pair", pair_key(parse_pair(self.pair)))
        if not self.grid:
            raise ValueError("a sweep needs at least one grid key, e.g. --grid model.gamma=0.5,0.8")
        keys = [k for k, _ in self.grid]
        if len(set(keys)) != len(keys):
            raise ValueError(f"grid key repeated: {keys}")
        for k, vals in self.grid:
            if not vals:
                raise ValueError(f"grid key {k} has no values")
            if len(set(vals)) != len(vals):
                raise ValueError(f"grid key {k} repeats a value: {list(vals)}")
        if not self.axes:
            cells = self.cell_keys
            pref = [k for k in ("model.gamma", "model.n_layers") if k in cells]
            object.__setattr__(self, "axes", tuple((pref + [k for k in cells if k not in pref])[:2]))
        bad = [a for a in self.axes if a not in self.cell_keys]
        if bad:
            raise ValueError(f"diagram axes {bad} are not cell keys of the grid (cell keys: {self.cell_keys})")
        base = self.base_config  # raises ValueError for an unknown preset or bad base
        points = self.points()
        ids = [p.run_id for p in points]
        if len(set(ids)) != len(ids):
            raise ValueError("two grid points share a run id; give the values distinct spellings")
        for p in points:  # every run must be a valid config: fail before training anything
            try:
                self.config_for(p, base)
            except (ValueError, TypeError) as e:
                raise ValueError(f"grid point {p.run_id}: {e}") from None

    # -- structure ------------------------------------------------------------------------
    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.grid)

    @property
    def cell_keys(self) -> tuple[str, ...]:
        """Grid keys that tell cells apart (all but ``best_over`` and ``mean_over``)."""
        return tuple(k for k in self.keys if k not in self.best_over and k not in self.mean_over)

    @property
    def base_config(self) -> RunConfig:
        if self.base is not None:
            try:
                return RunConfig.from_dict(self.base)
            except (TypeError, AttributeError) as e:
                raise ValueError(f"sweep base config is invalid: {e}") from None
        return get_preset(self.preset)

    def points(self) -> list[Point]:
        """Every grid point, cells in grid order, each cell's runs together."""
        order = (list(self.cell_keys) + [k for k in self.keys if k in self.best_over]
                 + [k for k in self.keys if k in self.mean_over])
        vals = dict(self.grid)
        out = []
        for combo in itertools.product(*(vals[k] for k in order)):
            values = tuple(zip(order, combo))
            run_id = "_".join(f"{SHORT.get(k, k.rpartition('.')[2])}{_fmt(v)}" for k, v in values)
            cell_n = len(self.cell_keys)
            cell_id = "_".join(f"{SHORT.get(k, k.rpartition('.')[2])}{_fmt(v)}" for k, v in values[:cell_n])
            out.append(Point(values, run_id, cell_id or "all"))
        return out

    def config_for(self, point: Point, base: RunConfig | None = None) -> RunConfig:
        """The run config of one grid point: base, then ``fixed``, then the point's values.

        As ``python -m core train --epochs`` does, changing ``train.epochs`` without setting
        ``train.decay_epochs`` rescales warm-up and decay so the schedule keeps its shape.
        """
        base = base or self.base_config
        overrides = {k: _thaw(v) for k, v in self.fixed}
        overrides.update({k: _thaw(v) for k, v in point.values})
        return base.replace(**overrides).with_epochs_scaled(base, overrides)

    def first_values(self) -> dict[str, Any]:
        """The first value of each ``mean_over`` key: the runs ``keep_weights="seed0"`` keeps."""
        g = dict(self.grid)
        return {k: g[k][0] for k in self.mean_over if k in g}

    def keeps_weights(self, point: Point, policy: str) -> bool:
        if policy not in KEEP_WEIGHTS:
            raise ValueError(f"keep-weights must be one of {KEEP_WEIGHTS}, got {policy!r}")
        if policy == "all":
            return True
        if policy == "none":
            return False
        return all(point.get(k) == v for k, v in self.first_values().items())

    def with_grid(self, **changes: Iterable[Any]) -> "SweepSpec":
        """Replace (or add) grid keys: ``spec.with_grid(**{"model.gamma": [0.5, 0.8]})``."""
        grid = dict(self.grid)
        for k, v in changes.items():
            grid[k] = tuple(v)
        return dataclasses.replace(self, grid=tuple(grid.items()), axes=self.axes if all(
            a in grid for a in self.axes) else ())

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "preset": self.preset,
            "grid": {k: [_thaw(v) for v in vals] for k, vals in self.grid},
            "fixed": {k: _thaw(v) for k, v in self.fixed},
            "best_over": list(self.best_over), "mean_over": list(self.mean_over), "axes": list(self.axes),
            "pair": self.pair, "panels": list(self.panels), "base": self.base, "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SweepSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown sweep spec fields: {sorted(unknown)}")
        d = dict(d)
        if isinstance(d.get("grid"), dict):
            d["grid"] = tuple(d["grid"].items())
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> "SweepSpec":
        """A spec from JSON: a spec object, or a published ``<name>.json`` holding ``{"spec": ...}``."""
        try:
            d = json.loads(Path(path).read_text())
            return cls.from_dict(d["spec"] if isinstance(d, dict) and "spec" in d else d)
        except FileNotFoundError:
            raise ValueError(f"sweep spec file {path} does not exist") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"sweep spec file {path} is not valid JSON: {e}") from None


# -- named specs ---------------------------------------------------------------------------

PHASE_GAMMAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def phase_spec(preset: str = "cpu-demo") -> SweepSpec:
    """Fig. 2(a,b): depth 2..6 × γ × 3 seeds at the preset's peak learning rate.

    The paper also takes the best of 9 peak learning rates in [1e-4, 3e-4]; add
    ``--grid train.lr_peak=...`` to do the same (9× the cost). γ spans 0.3..1.0: at the
    cpu-demo width (d_model 64) the weight scale d^(0.5-γ) of the paper's γ = 0.8 at
    d_model 400 is reached near γ = 0.93, so the range is extended past the paper's 0.8.
    """
    return SweepSpec(
        name=f"phase_{preset}", preset=preset,
        grid=(("model.n_layers", (2, 3, 4, 5, 6)), ("model.gamma", PHASE_GAMMAS), ("train.seed", (0, 1, 2))),
        axes=("model.gamma", "model.n_layers"), pair="4,3", panels=("symmetric", "inferential"),
        description="Phase diagram (Fig. 2a,b): depth × initialization rate γ, accuracy on the unseen pair (4,3).",
    )


def appendix_e_spec(preset: str = "cpu-demo") -> SweepSpec:
    """Fig. 14 (Appendix E): peak learning rate × weight decay, 3 layers, γ = 0.5.

    Both (3,4) and (4,3) are unseen and no pair is overridden, so the inferential and the
    symmetric mapping coincide for both: inferential accuracy on them says whether the
    single-anchor operations were learned. Learning rates bracket the preset's peak.
    """
    base_lr = get_preset(preset).train.lr_peak
    lrs = tuple(float(f"{base_lr * f:.3g}") for f in (0.25, 0.5, 1.0, 2.0, 4.0))
    return SweepSpec(
        name=f"appendix-e_{preset}", preset=preset,
        grid=(("train.lr_peak", lrs), ("train.weight_decay", (0.0, 0.01, 0.1, 0.3, 1.0)), ("train.seed", (0, 1))),
        fixed=(("model.n_layers", 3), ("model.gamma", 0.5), ("task.held_out", ((3, 4), (4, 3))), ("task.overrides", ())),
        best_over=(), mean_over=("train.seed",), axes=("train.lr_peak", "train.weight_decay"),
        pair="4,3", panels=("inferential_4_3", "inferential_3_4"),
        description="Appendix E (Fig. 14): learning rate × weight decay, 3 layers, γ = 0.5, (3,4) and (4,3) unseen.",
    )


NAMED_SPECS: dict[str, Callable[[str], SweepSpec]] = {"phase": phase_spec, "appendix-e": appendix_e_spec}


def named_spec(name: str, preset: str = "cpu-demo") -> SweepSpec:
    """A ready-made spec by name (``phase``, ``appendix-e``). Raises ValueError otherwise."""
    try:
        return NAMED_SPECS[name](preset)
    except KeyError:
        raise ValueError(f"unknown sweep spec {name!r}; choose one of {sorted(NAMED_SPECS)} or a JSON file") from None


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


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


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
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = int(jobs[0].get("threads") or 1) if jobs else 1
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,))
    stopped = False
    pending: dict[Any, dict] = {}
    try:
        pending.update({ex.submit(_safe_train_point, job): job for job in jobs})
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                job = pending.pop(fut)
                try:
                    yield fut.result()
                except Exception:  # noqa: BLE001 - a crashed worker (BrokenProcessPool)
                    yield {"run_id": job["run_id"], "error": traceback.format_exc(limit=3)}
            if should_stop is not None and should_stop():
                stopped = True
                return
    finally:
        if stopped or pending:
            # Runs in flight are abandoned; they never saved anything. Python 3.11 has no
            # public way to end running workers, so terminate the pool's own processes.
            procs = list(getattr(ex, "_processes", {}).values())
            ex.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                p.terminate()
        else:
            ex.shutdown(wait=True)


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


def is_finished(run_dir: Path) -> bool:
    """A run folder counts as finished when its metrics hold a training history."""
    try:
        load_config(run_dir)
        load_metrics(run_dir)
    except RunError:
        return False
    return True


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
    """Train every unfinished grid point of ``spec`` into ``out/runs/`` and gather the tables.

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
    if backend not in ("local", "ray"):
        raise ValueError(f"unknown backend {backend!r}; choose local or ray")
    if workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("the ray backend needs Ray, an optional extra: pip install ray") from None
    spec.keeps_weights(spec.points()[0], keep_weights)  # validates the policy
    out = Path(out)
    emit = on_event or (lambda e: None)
    base = spec.base_config
    points = spec.points()
    if only is not None:
        only = set(only)
        known = {p.run_id for p in points} | {p.cell_id for p in points}
        if only - known:
            raise ValueError(f"unknown cell or run ids: {sorted(only - known)[:5]}")
        points = [p for p in points if p.run_id in only or p.cell_id in only]
    out.mkdir(parents=True, exist_ok=True)
    spec_dict = {**spec.to_dict(), "base": base.to_dict()}
    (out / "sweep.json").write_text(json.dumps(spec_dict, indent=2))

    report = SweepReport()
    todo: list[tuple[Point, RunConfig, bool]] = []
    changed = []
    for p in points:
        cfg = spec.config_for(p, base)
        run_dir = out / "runs" / p.run_id
        if is_finished(run_dir):
            if load_config(run_dir).to_dict() == cfg.to_dict():
                report.skipped.append(p.run_id)
                continue
            changed.append(p.run_id)
            if not retrain_changed:
                continue
        todo.append((p, cfg, run_dir.exists()))
    if changed and not retrain_changed:
        raise ValueError(
            f"{len(changed)} finished runs in {out} were trained with a different config (e.g. {changed[0]}):"
            " use another --out, or --retrain-changed to replace them")
    if max_runs is not None:
        todo = todo[:max(0, max_runs)]
    emit({"event": "plan", "total": len(points), "skipped": len(report.skipped), "todo": len(todo)})
    by_id = {p.run_id: (p, cfg, exists) for p, cfg, exists in todo}
    jobs = [{"run_id": p.run_id, "cell_id": p.cell_id, "config": cfg.to_dict(), "threads": threads}
            for p, cfg, _ in todo]
    t0 = time.perf_counter()
    if backend == "ray":
        results = _ray(jobs, workers, address, gpus_per_run, should_stop)
    else:
        results = _local(jobs, workers, should_stop,
                         None if on_event is None else (lambda r: emit({"event": "progress", **r})))
    try:
        for res in results:
            rid = res["run_id"]
            if "error" in res:
                report.failed[rid] = res["error"]
                emit({"event": "failed", "run_id": rid, "error": res["error"]})
                continue
            p, cfg, exists = by_id[rid]
            _save_result(out / "runs" / rid, cfg, res, half=half, overwrite=exists,
                         keep=spec.keeps_weights(p, keep_weights))
            report.trained.append(rid)
            h = res["metrics"]["history"][-1]
            held = h["held_out"].get(spec.pair, {})
            emit({"event": "done", "run_id": rid, "index": len(report.trained) + len(report.failed),
                  "todo": len(todo), "seconds": res["metrics"]["seconds"],
                  "seen_test_accuracy": h["seen_test_accuracy"], "held_out": held,
                  "outcome": verdict(h["seen_test_accuracy"], held)["outcome"] if held else None})
        report.stopped = len(report.trained) + len(report.failed) < len(todo)
    finally:
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


# -- tables ------------------------------------------------------------------------------------

def run_row(run_dir: Path, spec: SweepSpec, point: Point | None = None, rel_to: Path | None = None) -> dict[str, Any]:
    """One results-table row for a finished run folder.

    Columns: ``run_id``, ``cell``, ``run`` (folder relative to ``rel_to``, empty without
    weights), ``has_weights``, the diagram fields ``depth gamma seed lr weight_decay``, sizes,
    ``seen_test_accuracy``, for ``spec.pair`` ``inferential symmetric other best_inferential
    best_symmetric outcome clear``, the same per held-out pair with a ``_a1_a2`` suffix,
    ``seconds`` (training) and ``wall_seconds`` (with evaluation), and every other grid key
    under its dotted name. Accuracies are final-evaluation values; ``best_*`` are maxima over
    training.
    """
    cfg = load_config(run_dir)
    metrics = load_metrics(run_dir)
    s = summarize(str(run_dir), cfg, metrics["history"], metrics.get("seconds"))
    m, t = cfg.model, cfg.train
    has_w = (run_dir / "weights.safetensors").exists()
    row: dict[str, Any] = {
        "run_id": run_dir.name, "cell": point.cell_id if point else "",
        "run": (os.path.relpath(run_dir, rel_to) if rel_to else str(run_dir)) if has_w else "",
        "has_weights": has_w,
        "depth": m.n_layers, "gamma": m.gamma, "seed": t.seed, "lr": t.lr_peak, "weight_decay": t.weight_decay,
        "n_layers": m.n_layers, "d_model": m.d_model, "d_ff": m.d_ff, "d_head": m.d_head, "n_heads": m.n_heads,
        "n_train": t.n_train, "epochs": t.epochs, "batch_size": t.batch_size, "data": t.data,
        "held_out": ";".join(pair_key(p) for p in cfg.task.held_out),
        "pair": spec.pair, "seen_test_accuracy": s["seen_test_accuracy"],
    }
    main = s["held_out"].get(spec.pair)
    for k in ("inferential", "symmetric", "other", "best_inferential", "best_symmetric"):
        row[k] = main[k] if main else None
    row["outcome"] = main["verdict"] if main else None
    row["clear"] = main["clear"] if main else None
    for pk, h in s["held_out"].items():
        sfx = pair_col(pk)
        for k in ("inferential", "symmetric", "other", "best_inferential", "best_symmetric"):
            row[f"{k}_{sfx}"] = h[k]
        row[f"outcome_{sfx}"] = h["verdict"]
    row["seconds"] = metrics.get("seconds")
    row["wall_seconds"] = metrics.get("wall_seconds", metrics.get("seconds"))
    row["cpu_seconds"] = metrics.get("cpu_seconds")
    row["device"] = metrics.get("device", "")
    if point is not None:
        for k, v in point.values:
            if k not in COLUMN:
                row[k] = json.dumps(_thaw(v)) if isinstance(v, tuple) else v
    return row


def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _spread(vals: list[float]) -> tuple[float, float, float, float]:
    """mean, sample std (0 for one value), min, max."""
    mean = statistics.fmean(vals)
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return mean, std, min(vals), max(vals)


SHORT_METRIC = {"seen_test_accuracy": "seen"}


def default_metrics(rows: list[dict[str, Any]]) -> list[str]:
    """Accuracy columns the selection rule reduces: seen, the main pair's mappings, other pairs'."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    base = ["seen_test_accuracy", "inferential", "symmetric", "other"]
    primary = {pair_col(str(r["pair"])) for r in rows if r.get("pair")}
    # Per-pair columns of other held-out pairs; the primary pair's are the unprefixed ones.
    extra = [k for k in keys if k.split("_")[0] in ("inferential", "symmetric", "other") and k not in base
             and k.split("_", 1)[1] not in primary]
    return [k for k in base if k in keys] + extra


def summarize_cells(
    rows: list[dict[str, Any]],
    cell_cols: list[str] | tuple[str, ...],
    best_over: list[str] | tuple[str, ...] = ("lr",),
    mean_over: list[str] | tuple[str, ...] = ("seed",),
    metrics: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Reduce a results table to one row per cell (the paper's rule and plain statistics).

    For every cell (rows sharing ``cell_cols``) and metric ``m``:
      - ``sel_m``: per value of ``mean_over`` (a seed), the maximum of ``m`` over the rows
        that differ only in ``best_over`` (the learning rates); then the mean over seeds
        ([INIT] appendix A). ``sel_m_std`` / ``_min`` / ``_max``: spread of those per-seed bests.
      - ``mean_m``, ``std_m``, ``min_m``, ``max_m``: over every run of the cell.
    ``m`` is shortened for ``seen_test_accuracy`` (``sel_seen``). Also ``n_runs``, ``n_seeds``,
    ``n_<outcome>`` counts (``n_not_fitted``; outcome from each row's ``outcome`` column or
    ``core.verdict.verdict``), ``fitted`` (``sel_seen`` ≥ 0.90, the paper's shading rule),
    ``seconds`` and ``wall_seconds`` summed, and ``run``: a run folder to open for the cell
    (first seed with weights, the best seen accuracy among its learning rates).

    Missing values (None, empty, NaN) are skipped. Rows are returned in first-seen cell order.
    """
    metrics = default_metrics(rows) if metrics is None else list(metrics)
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault(tuple(r.get(c) for c in cell_cols), []).append(r)
    out = []
    for key, rs in cells.items():
        row: dict[str, Any] = dict(zip(cell_cols, key))
        row["cell"] = rs[0].get("cell", "")
        seeds: dict[tuple, list[dict[str, Any]]] = {}
        for r in rs:
            seeds.setdefault(tuple(r.get(c) for c in mean_over), []).append(r)
        row["n_runs"], row["n_seeds"] = len(rs), len(seeds)
        for m in metrics:
            name = SHORT_METRIC.get(m, m)
            best = [max(v) for v in ([_num(r.get(m)) for r in g if _num(r.get(m)) is not None]
                                     for g in seeds.values()) if v]
            allv = [v for v in (_num(r.get(m)) for r in rs) if v is not None]
            for prefix, vals in (("sel", best), ("mean", allv)):
                mean, std, lo, hi = _spread(vals) if vals else (None,) * 4
                if prefix == "sel":
                    row.update({f"sel_{name}": mean, f"sel_{name}_std": std, f"sel_{name}_min": lo,
                                f"sel_{name}_max": hi})
                else:
                    row.update({f"mean_{name}": mean, f"std_{name}": std, f"min_{name}": lo, f"max_{name}": hi})
        counts = dict.fromkeys(OUTCOMES, 0)
        for r in rs:
            counts[_outcome(r)] += 1
        row.update({f"n_{k.replace(' ', '_')}": v for k, v in counts.items()})
        sel_seen = row.get("sel_seen")
        row["fitted"] = sel_seen is not None and sel_seen >= FIT_THRESHOLD
        row["seconds"] = sum(_num(r.get("seconds")) or 0.0 for r in rs)
        row["wall_seconds"] = sum(_num(r.get("wall_seconds")) or 0.0 for r in rs)
        row["run"] = _representative(rs, mean_over)
        out.append(row)
    return out


def _outcome(r: dict[str, Any]) -> str:
    o = r.get("outcome")
    if o in OUTCOMES:
        return o
    seen = _num(r.get("seen_test_accuracy")) or 0.0
    held = {k: _num(r.get(k)) or 0.0 for k in ("inferential", "symmetric", "other")}
    return verdict(seen, held)["outcome"]


def _representative(rs: list[dict[str, Any]], mean_over: Iterable[str]) -> str:
    with_w = [r for r in rs if r.get("run") not in (None, "") and str(r.get("has_weights", True)) != "False"]
    if not with_w:
        return ""
    mean_over = list(mean_over)
    first = min(with_w, key=lambda r: tuple(_sortable(r.get(c)) for c in mean_over))
    same = [r for r in with_w if all(r.get(c) == first.get(c) for c in mean_over)]
    return max(same, key=lambda r: _num(r.get("seen_test_accuracy")) or 0.0)["run"]


def _sortable(v: Any) -> tuple:
    f = _num(v)
    return (0, f, "") if f is not None else (1, 0.0, str(v))


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows (union of keys, first-seen order) atomically."""
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV written by ``write_csv``; numbers come back as int or float."""
    def conv(v: str) -> Any:
        if v == "":
            return None
        for t in (int, float):
            try:
                return t(v)
            except ValueError:
                pass
        return {"True": True, "False": False}.get(v, v)
    with open(path, newline="") as f:
        return [{k: conv(v) for k, v in r.items()} for r in csv.DictReader(f)]


def load_spec(out: str | Path) -> SweepSpec:
    """The spec a sweep folder was run with (``sweep.json``). Raises ValueError when absent."""
    path = Path(out) / "sweep.json"
    if not path.exists():
        raise ValueError(f"{out} is not a sweep folder: sweep.json is missing")
    return SweepSpec.load(path)


def gather(out: str | Path, rel_to: str | Path | None = None) -> tuple[list[dict], list[dict]]:
    """Rebuild ``results.csv`` and ``summary.csv`` of a sweep folder from its run folders.

    Returns:
        ``(rows, cells)``: the per-run rows (finished runs only, grid order) and per-cell rows.
    """
    out = Path(out)
    spec = load_spec(out)
    rows = []
    for p in spec.points():
        run_dir = out / "runs" / p.run_id
        if is_finished(run_dir):
            rows.append(run_row(run_dir, spec, p, rel_to=Path(rel_to) if rel_to else out))
    cells = summarize_cells(rows, [column(k) for k in spec.cell_keys],
                            [column(k) for k in spec.best_over], [column(k) for k in spec.mean_over])
    write_csv(out / "results.csv", rows)
    write_csv(out / "summary.csv", cells)
    return rows, cells


def copy_to(out: str | Path, dest: str | Path, name: str | None = None, weights: str = "seed0",
            half: bool = True) -> Path:
    """Publish a sweep: ``DEST/<name>.csv`` (one row per run), ``DEST/<name>_summary.csv``,
    ``DEST/<name>.json`` (the spec with its base config) and ``DEST/<name>/<run-id>/`` run
    folders for the runs ``weights`` keeps (``seed0``: first seed of every cell), re-saved as
    fp16 with ``half`` (loading restores fp32). The ``run`` column points at those folders
    relative to DEST; it is empty for runs without published weights. The previous
    ``DEST/<name>/`` is replaced as a whole. Returns the CSV's path.
    """
    out, dest = Path(out), Path(dest)
    spec = load_spec(out)
    name = name or spec.name
    rows = []
    with atomic_dir(dest / name) as tmp:
        for p in spec.points():
            src = out / "runs" / p.run_id
            if not spec.keeps_weights(p, weights) or not (src / "weights.safetensors").exists() or not is_finished(src):
                continue
            run = load_run(src)
            save_run(tmp / p.run_id, run.config, run.model, run.metrics,
                     device=run.metrics.get("device", "cpu"), half=half)
        for p in spec.points():
            src = out / "runs" / p.run_id
            if not is_finished(src):
                continue
            row = run_row(src, spec, p)
            published = (tmp / p.run_id).exists()
            row["run"] = f"{name}/{p.run_id}" if published else ""
            row["has_weights"] = published
            rows.append(row)
    cells = summarize_cells(rows, [column(k) for k in spec.cell_keys],
                            [column(k) for k in spec.best_over], [column(k) for k in spec.mean_over])
    write_csv(dest / f"{name}.csv", rows)
    write_csv(dest / f"{name}_summary.csv", cells)
    meta = {"spec": {**json.loads((out / "sweep.json").read_text()), "name": name}, "runs": len(rows),
            "grid_runs": len(spec.points()), "seconds": sum(r["seconds"] or 0 for r in rows),
            "wall_seconds": sum(r["wall_seconds"] or 0 for r in rows),
            "columns": {"cell": [column(k) for k in spec.cell_keys], "best_over": [column(k) for k in spec.best_over],
                        "mean_over": [column(k) for k in spec.mean_over], "axes": [column(k) for k in spec.axes],
                        "panels": list(spec.panels)}}
    (dest / f"{name}.json").write_text(json.dumps(meta, indent=2))
    return dest / f"{name}.csv"

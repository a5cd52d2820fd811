"""One command for a GPU session: the key pair over seeds, then as much phase diagram as fits.

``python -m core suite gpu --out DIR`` runs, within a wall-clock budget (default 8 minutes):

1. **pair**: the ``paper-replica`` preset (the paper model and the authors' logged training,
   docs/science.md "Reference runs") for 30 epochs at γ 0.5 and γ 0.8 × seeds 1, 2, 3: the
   symmetric and the inferential arm with their spread over seeds;
2. **phase**: a depth (2..6) × γ (0.3..0.8) grid of the same training ([INIT] Fig. 2a,b at one
   learning rate), seed 1 in every cell first, then further seeds, for as many runs as the
   time left allows at the throughput measured in step 1.

Both are ordinary sweeps (``core.sweep``): run folders under ``DIR/pair/runs`` and
``DIR/phase/runs``, ``results.csv`` and ``summary.csv`` in each, resumable (finished runs are
never retrained), and ``--copy-to pretrained`` publishes them for the app. Several runs share
the device at once (``--workers``, default 4 on a GPU, 1 on a CPU): with models this small a
GPU is far from busy with one. ``DIR/suite.json`` records the device, the budget and what ran.

At tiny sizes the same code runs on a CPU in seconds (the tests do:
``--preset tiny --epochs 2 --depths 1 --gammas 0.5,0.8 --seeds 1``).
Only torch and the standard library (``core`` runs on a bare GPU box).
"""
from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .sweep import SweepReport, run_sweep
from .sweep_spec import SweepSpec
from .sweep_tables import copy_to
from .train import resolve_device

PAIR_GAMMAS = (0.5, 0.8)
PHASE_DEPTHS = (2, 3, 4, 5, 6)
PHASE_GAMMAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SEEDS = (1, 2, 3)


def suite_specs(preset: str = "paper-replica", epochs: int = 30, seeds: Sequence[int] = SEEDS,
                pair_gammas: Sequence[float] = PAIR_GAMMAS, depths: Sequence[int] = PHASE_DEPTHS,
                gammas: Sequence[float] = PHASE_GAMMAS, fixed: dict[str, Any] | None = None,
                ) -> tuple[SweepSpec, SweepSpec]:
    """The two sweeps of the suite: ``(pair, phase)``.

    ``epochs`` is set without touching the schedule's decay (``train.decay_epochs`` is passed
    through as the preset's), so a 30-epoch run follows the first 30 epochs of the authors'
    200-epoch cosine, as their logs do. ``fixed`` adds overrides for every run.

    Raises:
        ValueError: an unknown preset, or overrides the config rejects.
    """
    from .presets import get_preset
    base = get_preset(preset).train
    common = {"train.epochs": epochs, "train.warmup_epochs": base.warmup_epochs,
              "train.decay_epochs": base.decay_epochs, **(fixed or {})}
    pair = SweepSpec(
        name=f"suite-pair_{preset}", preset=preset,
        grid=(("model.gamma", tuple(pair_gammas)), ("train.seed", tuple(seeds))),
        fixed=tuple(common.items()), best_over=(), mean_over=("train.seed",), axes=("model.gamma",),
        description="The key contrast over seeds: γ 0.5 (symmetric) vs γ 0.8 (inferential), paper model.",
    )
    phase = SweepSpec(
        name=f"suite-phase_{preset}", preset=preset,
        grid=(("model.n_layers", tuple(depths)), ("model.gamma", tuple(gammas)), ("train.seed", tuple(seeds))),
        fixed=tuple(common.items()), best_over=(), mean_over=("train.seed",),
        axes=("model.gamma", "model.n_layers"),
        description="Phase diagram (Fig. 2a,b) of the paper model at one learning rate: depth × γ.",
    )
    return pair, phase


def seed_major(spec: SweepSpec) -> list[str]:
    """Run ids with every cell's first seed before any cell's second (a full grid first)."""
    seeds = dict(spec.grid)["train.seed"]
    pts = spec.points()
    return [p.run_id for s in seeds for p in pts if p.get("train.seed") == s]


def run_suite(out: str | Path, budget_s: float = 480.0, workers: int | None = None, *,
              preset: str = "paper-replica", epochs: int = 30, seeds: Sequence[int] = SEEDS,
              depths: Sequence[int] = PHASE_DEPTHS, gammas: Sequence[float] = PHASE_GAMMAS,
              fixed: dict[str, Any] | None = None, copy_dest: str | Path | None = None,
              copy_weights: str = "seed0", retrain_changed: bool = False, on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the suite into ``out`` (see the module docstring) and return what ``suite.json`` holds.

    Args:
        budget_s: wall-clock budget (s). The pair sweep always runs whole; the phase grid gets
            as many runs as fit in what is left at the pair sweep's measured throughput.
        workers: runs in flight at once (default 4 on CUDA, else 1).
        copy_dest: publish both sweeps there (``core.sweep_tables.copy_to``, fp16 weights).
        retrain_changed: retrain finished runs whose config differs (e.g. other ``epochs``);
            otherwise such runs raise ValueError.
        copy_weights: which runs' weights are published: ``"all"``, ``"seed0"`` (the first seed
            of every cell, default) or ``"none"`` (tables only).

    Raises:
        ValueError: bad settings (unknown preset, impossible overrides, workers < 1).
    """
    out = Path(out)
    dev = resolve_device((fixed or {}).get("train.device", "auto"))
    workers = workers or (4 if dev.type == "cuda" else 1)
    threads = None if dev.type == "cuda" else 1
    pair, phase = suite_specs(preset, epochs, seeds, PAIR_GAMMAS, depths, gammas, fixed)
    t0 = time.perf_counter()
    reports: dict[str, SweepReport] = {}
    reports["pair"] = run_sweep(pair, out / "pair", workers=workers, threads=threads, on_event=on_event,
                                retrain_changed=retrain_changed)
    elapsed = time.perf_counter() - t0
    per_run = _seconds_per_run(out / "pair", reports["pair"], elapsed)
    left = budget_s - elapsed
    n = max(0, int(left / per_run)) if per_run > 0 else 0
    order = seed_major(phase)
    reports["phase"] = run_sweep(phase, out / "phase", workers=workers, threads=threads, on_event=on_event,
                                 only=order[:n] if n < len(order) else None,
                                 retrain_changed=retrain_changed) if n > 0 else None
    summary = {
        "device": str(dev), "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor()
        or platform.machine(), "torch": torch.__version__, "workers": workers, "budget_seconds": budget_s,
        "seconds": round(time.perf_counter() - t0, 1), "seconds_per_run_measured": round(per_run, 2),
        "pair": {"trained": len(reports["pair"].trained), "skipped": len(reports["pair"].skipped),
                 "failed": sorted(reports["pair"].failed)},
        "phase": None if reports["phase"] is None else {
            "planned": min(n, len(order)), "grid_runs": len(order), "trained": len(reports["phase"].trained),
            "skipped": len(reports["phase"].skipped), "failed": sorted(reports["phase"].failed)},
        "command_args": {"preset": preset, "epochs": epochs, "seeds": list(seeds), "depths": list(depths),
                         "gammas": list(gammas), "fixed": fixed or {}},
    }
    (out / "suite.json").write_text(json.dumps(summary, indent=2))
    if copy_dest is not None:
        copy_to(out / "pair", copy_dest, weights=copy_weights)
        if reports["phase"] is not None:
            copy_to(out / "phase", copy_dest, weights=copy_weights)
    return summary


def _seconds_per_run(sweep_dir: Path, report: SweepReport, elapsed: float) -> float:
    """Wall seconds per run at the current parallelism: from this call when it trained runs,
    else from the finished runs' stored ``wall_seconds`` (a resumed suite)."""
    if report.trained:
        return elapsed / len(report.trained)
    walls = []
    for p in (sweep_dir / "runs").glob("*/metrics.json"):
        try:
            walls.append(float(json.loads(p.read_text()).get("wall_seconds") or 0))
        except (OSError, ValueError):
            continue
    walls = [w for w in walls if w > 0]
    return sum(walls) / len(walls) if walls else 0.0


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None


def cmd_suite(args) -> int:
    import sys

    from .cli import parse_sets  # the train command's --set rule (strict JSON; bare words for string settings)
    fixed: dict[str, Any] = parse_sets(args.set)
    if args.device:
        fixed["train.device"] = args.device
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be ≥ 1, got {args.workers}")
    if not (math.isfinite(args.budget_minutes) and args.budget_minutes > 0):
        raise ValueError(f"--budget-minutes must be > 0, got {args.budget_minutes}")

    def show(e: dict[str, Any]) -> None:
        if args.quiet or e.get("event") not in ("plan", "done", "failed"):
            return
        if e["event"] == "plan":
            print(f"plan: {e['todo']} to train, {e['skipped']} already finished", flush=True)
        elif e["event"] == "done":
            h = e.get("held_out") or {}
            print(f"done {e['run_id']}: seen {e['seen_test_accuracy']:.2f}  (4,3) inferential"
                  f" {h.get('inferential', float('nan')):.2f} symmetric {h.get('symmetric', float('nan')):.2f}"
                  f"  -> {e['outcome']}  ({e['seconds']:.0f} s)", flush=True)
        else:
            print(f"FAILED {e['run_id']}: {e['error'].splitlines()[-1]}", file=sys.stderr, flush=True)

    summary = run_suite(args.out, 60.0 * args.budget_minutes, args.workers, preset=args.preset, epochs=args.epochs,
                        seeds=[int(s) for s in _floats(args.seeds)], depths=[int(d) for d in _floats(args.depths)],
                        gammas=_floats(args.gammas), fixed=fixed, copy_dest=args.copy_to,
                        copy_weights=args.copy_weights, retrain_changed=args.retrain_changed, on_event=show)
    print(json.dumps(summary))
    failed = summary["pair"]["failed"] + ((summary["phase"] or {}).get("failed") or [])
    return 1 if failed else 0


def register(subparsers) -> None:
    """Add ``suite`` to ``python -m core``."""
    s = subparsers.add_parser("suite", help="the GPU session: key pair over seeds, then a phase grid in a budget",
                              description=__doc__.split("\n")[0])
    s.add_argument("name", choices=("gpu",), help="the suite to run (gpu)")
    s.add_argument("--out", required=True, help="suite folder (resumable)")
    s.add_argument("--budget-minutes", type=float, default=8.0, help="wall-clock budget (default 8)")
    s.add_argument("--workers", type=int, help="runs in flight at once (default 4 on a GPU, 1 on a CPU)")
    s.add_argument("--preset", default="paper-replica", help="base preset (default paper-replica)")
    s.add_argument("--epochs", type=int, default=30, help="epochs per run (default 30; schedule kept)")
    s.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="seeds (default 1,2,3)")
    s.add_argument("--depths", default=",".join(map(str, PHASE_DEPTHS)), help="phase-grid depths (default 2..6)")
    s.add_argument("--gammas", default=",".join(map(str, PHASE_GAMMAS)), help="phase-grid γ (default 0.3..0.8)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override for every run (value as JSON)")
    s.add_argument("--device", help="torch device (default auto: CUDA, MPS, CPU)")
    s.add_argument("--copy-to", metavar="DIR", help="publish both sweeps there for the app (e.g. pretrained)")
    s.add_argument("--copy-weights", choices=("all", "seed0", "none"), default="seed0",
                   help="weights published by --copy-to (default seed0: the first seed of every cell)")
    s.add_argument("--retrain-changed", action="store_true",
                   help="retrain finished runs whose config differs from this call's (e.g. after changing --epochs)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_suite)

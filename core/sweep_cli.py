"""``python -m core sweep``: run a grid of trainings, resumably, and gather the tables.

Registered by core/cli.py when this module exists. Examples::

    python -m core sweep --spec phase --preset cpu-demo --workers 2 --half --copy-to pretrained/
    python -m core sweep --spec appendix-e --preset cpu-demo --workers 2 --half --copy-to pretrained/
    python -m core sweep --preset tiny --grid model.gamma=0.3,0.5,0.8 --grid train.seed=0,1 --out sweeps/try
    python -m core sweep --spec phase --dry-run                     # list the runs, train nothing
    python -m core sweep --spec phase --gather --copy-to pretrained/  # tables from finished runs only

Rerunning the same command resumes: finished runs are skipped. Bad input raises ValueError,
which the main CLI prints as ``error: ...`` with exit status 2. See docs/sweeps.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .cli import parse_sets  # the train command's --set rule (strict JSON; bare words for string settings)
from .presets import PRESETS
from .sweep import run_sweep
from .sweep_spec import KEEP_WEIGHTS, NAMED_SPECS, SweepSpec, load_spec, named_spec
from .sweep_tables import copy_to, gather


def parse_values(text: str) -> list[Any]:
    """Values of one ``--grid`` key.

    ``0.3,0.5,0.8`` (comma list, each value JSON or a bare string), ``0.3:0.8:0.1`` (inclusive
    range, 12 significant digits), or a JSON list ``[[[4,3]],[[3,4],[4,3]]]`` for values that
    are themselves lists. Raises ValueError on an empty or malformed list.
    """
    text = text.strip()
    if text.startswith("["):
        try:
            vals = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"grid values {text!r} are not a JSON list: {e}") from None
        if not isinstance(vals, list) or not vals:
            raise ValueError(f"grid values {text!r} must be a non-empty JSON list")
        return vals
    if text.count(":") == 2 and "," not in text:
        try:
            a, b, step = (float(x) for x in text.split(":"))
        except ValueError:
            raise ValueError(f"a grid range is start:stop:step, got {text!r}") from None
        if step <= 0 or b < a:
            raise ValueError(f"grid range {text!r} needs step > 0 and stop ≥ start")
        n = int(round((b - a) / step)) + 1
        vals = [float(f"{a + i * step:.12g}") for i in range(n)]
        return [int(v) if all(float(x).is_integer() for x in (a, step)) else v for v in vals]
    vals = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"empty value in grid list {text!r}")
        try:
            vals.append(json.loads(part))
        except json.JSONDecodeError:
            vals.append(part)
    return vals


def _kv(item: str, flag: str) -> tuple[str, str]:
    if "=" not in item:
        raise ValueError(f"{flag} takes section.field=value, got {item!r}")
    k, v = item.split("=", 1)
    return k.strip(), v


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """Named spec or JSON file, then ``--grid`` (replaces or adds keys) and ``--set``."""
    if args.spec and args.spec in NAMED_SPECS:
        spec = named_spec(args.spec, args.preset)
    elif args.spec:
        spec = SweepSpec.load(args.spec)
        if args.preset_given:
            spec = SweepSpec.from_dict({**spec.to_dict(), "preset": args.preset, "base": None})
    else:
        if not args.grid:
            raise ValueError("give --spec NAME (one of %s) or at least one --grid key=values" % sorted(NAMED_SPECS))
        spec = None
    grid = dict(_kv(g, "--grid") for g in args.grid or [])
    grid = {k: parse_values(v) for k, v in grid.items()}
    fixed = parse_sets(args.set)
    d: dict[str, Any] = spec.to_dict() if spec else {"name": f"sweep_{args.preset}", "preset": args.preset,
                                                     "grid": {}, "fixed": {}}
    d["grid"] = {**d["grid"], **grid}
    d["fixed"] = {**d["fixed"], **fixed}
    for k in grid:  # a key swept now is no longer fixed
        d["fixed"].pop(k, None)
    if args.name:
        d["name"] = args.name
    if spec is not None and grid and not all(a in d["grid"] for a in d.get("axes", [])):
        d["axes"] = []
    return SweepSpec.from_dict(d)


def _print_event(e: dict[str, Any], t0: float, quiet: bool) -> None:
    if quiet:
        return
    ev = e["event"]
    if ev == "plan":
        print(f"{e['total']} runs in the grid: {e['skipped']} already finished, {e['todo']} to train", flush=True)
    elif ev == "done":
        h = e.get("held_out") or {}
        held = " ".join(f"{k[:3]} {h.get(k, 0):.2f}" for k in ("inferential", "symmetric", "other"))
        print(f"[{e['index']}/{e['todo']}] {e['run_id']}: seen {e['seen_test_accuracy']:.2f} {held}"
              f" -> {e['outcome']} ({e['seconds']:.0f} s; {time.perf_counter() - t0:.0f} s elapsed)", flush=True)
    elif ev == "failed":
        print(f"FAILED {e['run_id']}:\n{e['error']}", file=sys.stderr, flush=True)


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.list_specs:
        for name, fn in NAMED_SPECS.items():
            s = fn(args.preset)
            print(f"{name}: {s.description} ({len(s.points())} runs with preset {args.preset})")
        return 0
    if args.gather and not (args.spec or args.grid or args.out):
        raise ValueError("--gather needs --out (or --spec) to find the sweep folder")
    spec = None if (args.gather and args.out and not (args.spec or args.grid)) else spec_from_args(args)
    out = Path(args.out) if args.out else Path("sweeps") / spec.name
    if spec is None:
        spec = load_spec(out)
    points = spec.points()
    if args.dry_run:
        print(f"sweep {spec.name}: {len(points)} runs, {len({p.cell_id for p in points})} cells -> {out}")
        print(f"cell keys {list(spec.cell_keys)}; best of {list(spec.best_over)}; mean over {list(spec.mean_over)}")
        for p in points:
            print(" ", p.run_id)
        return 0
    if args.workers < 1:
        raise ValueError(f"--workers must be ≥ 1, got {args.workers}")
    if not args.gather:
        t0 = time.perf_counter()
        try:
            report = run_sweep(spec, out, backend=args.backend, workers=args.workers, threads=args.threads,
                               address=args.address, gpus_per_run=args.gpus_per_run, half=args.half,
                               keep_weights=args.keep_weights, only=args.only, max_runs=args.max_runs,
                               retrain_changed=args.retrain_changed,
                               on_event=lambda e: _print_event(e, t0, args.quiet))
        except KeyboardInterrupt:
            sys.stderr.write(f"\ninterrupted: finished runs are kept in {out}/runs; rerun the command to resume\n")
            return 130
        print(f"trained {len(report.trained)}, skipped {len(report.skipped)} finished, failed {len(report.failed)}"
              f" in {report.seconds:.0f} s -> {out}/results.csv, {out}/summary.csv")
        if report.failed:
            return 1
    else:
        rows, cells = gather(out)
        print(f"gathered {len(rows)} finished runs of {len(points)} into {out}/results.csv, {out}/summary.csv")
    if args.copy_to:
        path = copy_to(out, args.copy_to, name=args.name or spec.name, weights=args.copy_weights, half=True)
        print(f"published {path} (+ _summary.csv, .json, run folders under {path.with_suffix('')})")
    return 0


def register(subparsers: Any) -> None:  # what ArgumentParser.add_subparsers() returned
    """Add the ``sweep`` subcommand to ``python -m core``."""
    s = subparsers.add_parser("sweep", help="run a resumable grid of trainings (phase diagrams)",
                              description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("::")[1])

    class _Preset(argparse.Action):
        def __call__(self, parser, ns, values, option_string=None):
            ns.preset, ns.preset_given = values, True

    s.add_argument("--spec", help=f"named spec ({', '.join(NAMED_SPECS)}) or a JSON spec file")
    s.add_argument("--preset", default="cpu-demo", action=_Preset, help=f"base preset, one of {sorted(PRESETS)}")
    s.set_defaults(preset_given=False)
    s.add_argument("--grid", action="append", metavar="KEY=VALUES",
                   help="grid key and values: model.gamma=0.3,0.5,0.8 | 0.3:0.8:0.1 | JSON list (repeatable)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed override for every run (value as JSON)")
    s.add_argument("--name", help="sweep name (default from the spec, e.g. phase_cpu-demo)")
    s.add_argument("--out", help="sweep folder (default sweeps/<name>)")
    s.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1),
                   help="parallel runs (default: one per core)")
    s.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    s.add_argument("--backend", choices=("local", "ray"), default="local")
    s.add_argument("--address", help="Ray cluster address (ray backend; default: a local Ray)")
    s.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs per run (ray backend)")
    s.add_argument("--half", action="store_true", help="store weights as fp16 (loading restores fp32)")
    s.add_argument("--keep-weights", choices=KEEP_WEIGHTS, default="all",
                   help="weights kept in the sweep folder: all, seed0 (first seed of each cell) or none")
    s.add_argument("--copy-to", metavar="DIR", help="publish DIR/<name>.csv, _summary.csv, .json and seed-0 weights")
    s.add_argument("--copy-weights", choices=KEEP_WEIGHTS, default="seed0", help="weights published by --copy-to")
    s.add_argument("--gather", action="store_true", help="train nothing: rebuild the tables from finished runs")
    s.add_argument("--only", action="append", metavar="ID", help="only this cell or run id (repeatable)")
    s.add_argument("--max-runs", type=int, help="train at most this many runs now")
    s.add_argument("--retrain-changed", action="store_true",
                   help="retrain finished runs whose config differs from the spec (e.g. after a preset change)")
    s.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    s.add_argument("--list-specs", action="store_true", help="list the named specs and exit")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_sweep)

"""Sweep tables: one row per run, one row per cell (the paper's selection rule), publishing.

The tables behind Fig. 2(a,b) and Fig. 14 (docs/science.md §4, §5). ``results.csv`` (one row
per run, ``run_row``) and ``summary.csv`` (one row per cell, ``summarize_cells``) are
regenerated from the run folders by ``gather``, never appended to, so they cannot drift from
them. ``copy_to`` publishes a sweep (tables, spec and fp16 run folders) where the app reads it.

Selection rule ([INIT] appendix A, docs/science.md §4): for each cell and each seed, keep the best
accuracy of each mapping over the learning rates (separately per mapping, so the best
inferential and the best symmetric accuracy may come from different learning rates); then
average over seeds. The seen-pair accuracy used for the shading (< 0.90) follows the same
rule. We also report the plain per-run mean and the spread (std over seeds, min, max), and
how many runs ended inferential / symmetric / other / not fitted (``core.verdict.verdict``).

Only torch and the standard library: this module runs on a bare GPU box (no pandas).
"""
from __future__ import annotations

import csv
import json
import math
import os
import statistics
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .config import pair_key
from .runs import RunError, atomic_dir, load_config, load_metrics, load_run, save_run
from .sweep_spec import COLUMN, Point, SweepSpec, _thaw, column, load_spec, pair_col
from .verdict import FIT_THRESHOLD, summarize, verdict

OUTCOMES = ("inferential", "symmetric", "other", "not fitted")


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



def summarize_spec(rows: list[dict[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """``summarize_cells`` over the spec's cell, best-of and mean-over keys (as table columns)."""
    return summarize_cells(rows, [column(k) for k in spec.cell_keys],
                           [column(k) for k in spec.best_over], [column(k) for k in spec.mean_over])


def is_finished(run_dir: Path) -> bool:
    """A run folder counts as finished when its metrics hold a training history."""
    try:
        load_config(run_dir)
        load_metrics(run_dir)
    except RunError:
        return False
    return True


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
    cells = summarize_spec(rows, spec)
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
    cells = summarize_spec(rows, spec)
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

"""Phase-diagram tables for the Phase diagram page: finding, loading and reducing them.

A committed diagram is ``pretrained/<name>.csv`` (one row per run, written by
``python -m core sweep ... --copy-to pretrained/``), with ``<name>.json`` (the sweep spec,
its base config and which columns are cells, axes and panels) and ``<name>/<run-id>/`` run
folders. Names start with ``phase_`` (Fig. 2a,b: depth × γ) or ``appendix-e_`` (Fig. 14:
learning rate × weight decay). The reductions reuse ``core.sweep.summarize_cells``; this module
only shapes them into long frames for the charts and writes the page's sentences.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.config import RunConfig, parse_pair
from core.presets import get_preset
from core.sweep import SweepSpec, summarize_cells
from core.task import pair_target
from core.verdict import FIT_THRESHOLD

from .lesson import formula

KINDS = {"phase": "Depth × γ (Fig. 2a,b)", "appendix-e": "Learning rate × weight decay (Appendix E, Fig. 14)"}
INTRO = {
    "phase": "Each cell is a depth and an initialization rate γ, trained with several seeds. Colour is the accuracy "
             "on the **unseen pair (4,3)** under the *symmetric* mapping (it copied (3,4): memorizing) and under the "
             "*inferential* mapping (it composed the anchors: reasoning). Notice where the colour moves from one "
             "panel to the other as γ grows, and how often the seeds of one cell disagree.",
    "appendix-e": "A 3-layer model at γ = 0.5, with **both (3,4) and (4,3) unseen** and no overridden pair, trained "
                  "at each peak learning rate and weight decay. Inferential accuracy on the two unseen pairs says "
                  "whether the single-anchor operations were learned. The paper finds that larger learning rates "
                  "and weight decay push the model toward inference; notice whether the colour brightens toward "
                  "the top right.",
}
REDUCTIONS = {  # ?reduction= and the radio: how a cell's runs are reduced to one colour
    "paper": "Paper's rule: best over learning rates, mean over seeds",
    "mean": "Mean over all runs",
    "seed": "Each seed separately",
}
AXIS_TITLES = {"gamma": "initialization rate γ", "depth": "depth (layers)", "lr": "peak learning rate",
               "weight_decay": "weight decay", "seed": "seed"}
OUTCOME_ORDER = ["inferential", "symmetric", "other", "not fitted"]
# The authors' published 2-layer paper-size run took 72 minutes on their GPU (docs/science.md §3,
# "Reference runs"): 2.7e16 FLOP / 4320 s ≈ 6e12 FLOP/s, the GPU rate the time note assumes.
AUTHORS_GPU_SECONDS, AUTHORS_GPU_LAYERS = 72 * 60, 2


def kind_of(name: str) -> str:
    return "appendix-e" if name.startswith("appendix-e") else "phase"


def find_tables(folder: str | Path) -> list[str]:
    """Names of committed diagrams in ``folder`` (``phase_*.csv``, ``appendix-e_*.csv``), phase first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = [p.stem for p in folder.glob("*.csv") if not p.stem.endswith("_summary")
             and (p.stem.startswith("phase_") or p.stem.startswith("appendix-e_"))]
    return sorted(names, key=lambda n: (kind_of(n) != "phase", n))


def _stamp(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_data(max_entries=16, show_spinner=False)
def _read(csv_path: str, json_path: str, stamp: tuple[float, float]) -> tuple[pd.DataFrame, dict[str, Any]]:
    df = pd.read_csv(csv_path)
    meta = json.loads(Path(json_path).read_text()) if Path(json_path).exists() else {}
    return df, meta


def load_table(folder: str | Path, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The per-run table and its metadata (``columns``: cell, best_over, mean_over, axes, panels;
    ``spec``). Metadata missing from an older table is inferred from the columns.

    Raises:
        ValueError: the CSV lacks a column the page needs.
    """
    folder = Path(folder)
    csv_path, json_path = folder / f"{name}.csv", folder / f"{name}.json"
    df, meta = _read(str(csv_path), str(json_path), (_stamp(csv_path), _stamp(json_path)))
    need = {"seen_test_accuracy", "inferential", "symmetric", "other", "seed"}
    if need - set(df.columns):
        raise ValueError(f"{csv_path.name} lacks the columns {sorted(need - set(df.columns))}")
    meta = dict(meta)
    cols = dict(meta.get("columns") or {})
    if not cols:
        axes = ["gamma", "depth"] if kind_of(name) == "phase" else ["lr", "weight_decay"]
        cols = {"axes": axes, "cell": axes[::-1], "mean_over": ["seed"],
                "best_over": ["lr"] if kind_of(name) == "phase" and df["lr"].nunique() > 1 else [],
                "panels": ["symmetric", "inferential"] if kind_of(name) == "phase"
                else [c for c in ("inferential_4_3", "inferential_3_4") if c in df.columns] or ["inferential"]}
    if len(cols["axes"]) == 1:
        cols["axes"] = cols["axes"] + [None]
    meta["columns"] = cols
    return df, meta


def config_of(meta: dict[str, Any]) -> RunConfig:
    """The diagram's base run config (from its spec), or the cpu-demo preset when unknown, with the
    task its runs were trained on (the spec's fixed settings: Appendix E holds out both (3,4) and
    (4,3) with no override), so panel titles and sentences describe the runs' own task."""
    spec = meta.get("spec") or {}
    if spec.get("base"):
        cfg = RunConfig.from_dict(spec["base"])
    else:
        cfg = get_preset(spec.get("preset", "cpu-demo"))
    parsed = spec_of(meta)
    try:
        points = parsed.points() if parsed is not None else []
        if points:
            task = parsed.config_for(points[0]).task
            cfg = cfg.replace(**{"task.held_out": task.held_out, "task.overrides": task.overrides,
                                 "task.operations": task.operations})
    except (ValueError, TypeError):
        pass
    return cfg


def regime_note(cfg: RunConfig) -> str | None:
    """One paragraph, before the chart, saying which training regime the diagram was computed in
    and how it differs from the paper's (docs/science.md §4); ``None`` when it is the paper's own
    (paper width and the paper's peak learning rates). Every number comes from ``cfg``."""
    paper = get_preset("paper")
    m, t, pm, pt = cfg.model, cfg.train, paper.model, paper.train
    same_width = (m.d_model, m.d_ff, m.d_head, m.n_heads) == (pm.d_model, pm.d_ff, pm.d_head, pm.n_heads)
    if same_width and 1e-4 <= t.lr_peak <= 3e-4 and t.batch_size == pt.batch_size:
        return None
    steps = t.total_steps
    return (f"**Which regime this is.** These cells were trained at d_model {m.d_model} (the paper: {pm.d_model}), "
            f"{t.n_train:,} sequences × {t.epochs} epochs in batches of {t.batch_size} ({steps:,} steps) at peak "
            f"learning rate {t.lr_peak:g} (the paper: {pt.n_train:,} × {pt.epochs} epochs in batches of "
            f"{pt.batch_size}, peak 1e-4 to 3e-4). It is a small-scale regime the paper never ran, chosen so a "
            "2-core CPU can compute a diagram; there the symmetric arm is reliable but the inferential one is not "
            "(docs/calibration.md), so this diagram need not look like the paper's Fig. 2. The paper's own regime "
            "and how our runs of it compare with the authors' logs: docs/replication.md.")


def spec_of(meta: dict[str, Any]) -> SweepSpec | None:
    try:
        return SweepSpec.from_dict(meta["spec"])
    except (KeyError, TypeError, ValueError):
        return None


def panel_title(panel: str, cfg: RunConfig, main_pair: str = "4,3") -> str:
    """``"symmetric" -> "(4,3) as x−6: symmetric accuracy"``; per-pair ``inferential_3_4`` too. When
    the pair's two answers coincide (Appendix E: (3,4) and (4,3) both unseen), the title says so:
    ``"(4,3) as x−10: composition only"``."""
    mapping, _, sfx = panel.partition("_")
    pair = parse_pair(sfx.replace("_", ",")) if sfx else parse_pair(main_pair)
    try:
        shift = pair_target(cfg.task, 0, pair, mapping)
        how = f" as {formula(shift)}"
        if mapping in ("inferential", "symmetric") and pair in cfg.task.held_out \
                and pair_target(cfg.task, 0, pair, "inferential") == pair_target(cfg.task, 0, pair, "symmetric"):
            why = "composition only" if (pair[1], pair[0]) in cfg.task.held_out else "either way"
            return f"({pair[0]},{pair[1]}){how}: {why}"
    except (KeyError, ValueError):
        how = ""
    return f"({pair[0]},{pair[1]}){how}: {mapping} accuracy"


def cells(df: pd.DataFrame, meta: dict[str, Any], view: str) -> pd.DataFrame:
    """One row per drawn cell (per cell and seed in the ``seed`` view) with the chosen reduction.

    Columns: the axis columns, ``cell``, ``seed`` (seed view), ``seen`` and per panel
    ``<panel>`` (value), ``<panel>_std``; ``fitted`` (seen ≥ 0.90, the paper's shading),
    outcome counts, ``n_runs``, ``run``, ``seconds``.
    """
    c = meta["columns"]
    rows = df.astype(object).where(df.notna(), None).to_dict("records")
    cell_cols = list(c["cell"]) + (list(c["mean_over"]) if view == "seed" else [])
    red = summarize_cells(rows, cell_cols, c["best_over"], [] if view == "seed" else c["mean_over"],
                          metrics=["seen_test_accuracy", "inferential", "symmetric", "other"]
                          + [p for p in c["panels"] if p not in ("inferential", "symmetric", "other")])
    out = pd.DataFrame(red)
    pre, std = ("mean_", "std_") if view == "mean" else ("sel_", None)
    out["seen"] = out[f"{pre}seen"]
    for p in set(c["panels"]) | {"inferential", "symmetric", "other"}:
        out[p] = out[f"{pre}{p}"]
        out[f"{p}_std"] = out[f"{std}{p}"] if std else out[f"sel_{p}_std"]
    out["fitted"] = out["seen"] >= FIT_THRESHOLD
    out["outcomes"] = out.apply(lambda r: ", ".join(
        f"{int(r['n_' + o.replace(' ', '_')])} {o}" for o in OUTCOME_ORDER if r["n_" + o.replace(" ", "_")]), axis=1)
    return out


def run_frame(df: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """The per-run table with ``slot``: the run's place among its cell's runs (for the dots)."""
    c = meta["columns"]
    order = list(c["cell"]) + list(c["mean_over"]) + list(c["best_over"])
    runs = df.sort_values(order).copy()
    runs["slot"] = runs.groupby(list(c["cell"]) or (lambda _: 0)).cumcount()
    if "outcome" not in runs:
        runs["outcome"] = "other"
    runs["outcome"] = runs["outcome"].fillna("not fitted")
    return runs


def long_frame(cell_df: pd.DataFrame, meta: dict[str, Any], cfg: RunConfig) -> pd.DataFrame:
    """Cells × panels in long form for the faceted heatmap: ``panel``, ``value``, ``std``."""
    c = meta["columns"]
    pair = (meta.get("spec") or {}).get("pair", "4,3")
    frames = []
    for p in c["panels"]:
        f = cell_df.copy()
        f["panel"], f["value"], f["std"] = panel_title(p, cfg, pair), f[p], f[f"{p}_std"]
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


SHORT_AXIS = {"gamma": "γ", "depth": "depth", "lr": "lr", "weight_decay": "weight decay"}


def cell_label(row: dict[str, Any] | pd.Series, axes: list[str | None]) -> str:
    """``γ 0.5 · depth 3``: how a cell is named in the select box."""
    return " · ".join(f"{SHORT_AXIS.get(a, a)} {_fmt(row[a])}" for a in axes if a)


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


# -- sentences ---------------------------------------------------------------------------------

def width_equivalent_gamma(gamma: float, d_model: int, d_paper: int = 400) -> float:
    """γ at width ``d_paper`` whose weight scale d^(0.5-γ) equals γ's at ``d_model``."""
    return 0.5 - (0.5 - gamma) * math.log(d_model) / math.log(d_paper)


def comparison(cell_df: pd.DataFrame, meta: dict[str, Any], cfg: RunConfig) -> list[str]:
    """What the table shows next to the paper, as markdown bullets computed from the numbers."""
    return _phase_text(cell_df, cfg) if "gamma" in meta["columns"]["cell"] else _appendix_text(cell_df, meta)


def _winner(r: pd.Series) -> str:
    if not r["fitted"]:
        return "not fitted"
    return "inferential" if r["inferential"] >= r["symmetric"] else "symmetric"


def _by_winner(c: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The cells of ``c`` by their larger share: symmetric, inferential, not fitted (in this order)."""
    win = c.apply(_winner, axis=1) if len(c) else pd.Series([], dtype=object)
    return {w: c[win == w] for w in ("symmetric", "inferential", "not fitted")}


def _phase_text(c: pd.DataFrame, cfg: RunConfig) -> list[str]:
    n = len(c)
    out = []
    by = _by_winner(c)

    def part(w: str) -> str:
        d = by[w]
        if not len(d):
            return f"0 of {n} cells {'stay' if w == 'not fitted' else 'lean'} **{w}**"
        if w == "not fitted":
            return f"{len(d)} of {n} **not fitted** (γ {d.gamma.min():g}–{d.gamma.max():g})"
        return (f"{len(d)} of {n} lean **{w}** (γ {d.gamma.min():g}–{d.gamma.max():g}; its share of (4,3):"
                f" median {d[w].median():.2f})")
    out.append("Counting each fitted cell by its larger share, however small: " + "; ".join(map(part, by)) + ".")
    sym, inf = by["symmetric"], by["inferential"]
    reversed_here = False
    if len(sym) and len(inf):
        ms, mi = sym.gamma.median(), inf.gamma.median()
        reversed_here = ms > mi
        agree = "as in the paper" if ms < mi else "**the reverse of** the paper"
        out.append(f"Symmetric cells sit at median γ {ms:g}, inferential ones at {mi:g}: {agree}, where small γ"
                   " (large initialization) memorizes and large γ reasons (Fig. 2a,b)."
                   + (" This grid is not the paper's regime; the runs of the paper's own setting follow"
                      " the paper (the Lesson; docs/replication.md)." if reversed_here and cfg.model.d_model != 400
                      else ""))
    elif len(inf) and not len(sym):
        out.append("No cell is symmetric: the paper's symmetric phase at small γ does not show here.")
    elif len(sym) and not len(inf):
        out.append("No cell is inferential: the paper's inferential phase at large γ does not show here.")
    unfit = by["not fitted"]
    if len(unfit):
        deep_small = unfit[(unfit.depth >= c.depth.median()) & (unfit.gamma <= c.gamma.median())]
        where = ("mostly deep models with small γ, as in the paper's shaded corner" if len(deep_small) * 2 >= len(unfit)
                 else "not concentrated in the paper's deep, small-γ corner")
        out.append(f"{len(unfit)} cells stay below 90 % seen-pair accuracy: {where}.")
    else:
        out.append("Every cell fits the seen pairs (≥ 90 %): the paper's failing deep, small-γ corner does not appear.")
    if "n_inferential" in c:
        counts = c[["n_inferential", "n_symmetric", "n_other", "n_not_fitted"]]
        seeds = c["n_seeds"] if "n_seeds" in c else counts.sum(axis=1)
        several = int((seeds > 1).sum())  # cells trained with more than one seed
        mixed = int((((counts > 0).sum(axis=1) > 1) & (seeds > 1)).sum())
        if not several:
            out.append("Each cell has a single seed, so the spread over seeds is not measured yet.")
        elif mixed:
            out.append(f"In {mixed} of {n} cells the runs disagree on the outcome: at this width, the seed"
                       " matters (see the dots below).")
        else:
            out.append(f"In all {several} cells with several seeds the runs agree on the outcome: at this width,"
                       " the seed does not change it.")
    d = cfg.model.d_model
    if d != 400:
        lo, hi = c.gamma.min(), c.gamma.max()
        out.append(f"Width: d_model {d} here, 400 in the paper. Matching the weight scale d^(0.5−γ), γ {lo:g}–{hi:g}"
                   f" here corresponds to γ {width_equivalent_gamma(lo, d):.2f}–{width_equivalent_gamma(hi, d):.2f}"
                   " at the paper's width, so the boundary is expected at a larger γ here"
                   + (": a shift, not the reversal this grid shows." if reversed_here else "."))
    return out


def lesson_sentence(c: pd.DataFrame, cfg: RunConfig) -> str:
    """The Lesson's one sentence on a phase grid (it must fit a projected screen): where each
    fitted cell's larger share sits in γ, and whether that is the paper's direction."""
    by = _by_winner(c)
    sym, inf = by["symmetric"], by["inferential"]
    if not len(sym) or not len(inf):
        return _phase_text(c, cfg)[1]
    ms, mi = sym.gamma.median(), inf.gamma.median()
    rest = len(by["not fitted"])
    head = (f"Copying wins in {len(sym)} of {len(c)} cells (median γ {ms:g}), composing in {len(inf)} (median γ"
            f" {mi:g})" + (f"; {rest} {'is' if rest == 1 else 'are'} not fitted (hatched)" if rest else ""))
    if ms < mi:
        return head + ": the paper's direction."
    return (head + f": **the reverse of** the paper. This {cfg.model.d_model}-wide, {cfg.train.epochs}-epoch grid is"
            " not the paper's regime; the paper-setting runs of the earlier steps follow the paper.")


def _appendix_text(c: pd.DataFrame, meta: dict[str, Any]) -> list[str]:
    panel = meta["columns"]["panels"][0]
    x, y = meta["columns"]["axes"][:2]
    out = []
    for ax in (x, y):
        if ax is None or c[ax].nunique() < 2:
            continue
        lo, hi = c[ax].min(), c[ax].max()
        a, b = c[c[ax] == lo][panel].mean(), c[c[ax] == hi][panel].mean()
        trend = "rises" if b > a + 0.05 else "falls" if b < a - 0.05 else "barely changes"
        agree = "as in the paper" if trend == "rises" else "**unlike** the paper"
        out.append(f"From {AXIS_TITLES.get(ax, ax)} {lo:g} to {hi:g}, mean {panel.replace('_', ' (', 1).replace('_', ',')}"
                   f"{')' if '_' in panel else ''} accuracy {trend} ({a:.2f} → {b:.2f}): {agree}, where larger learning"
                   " rate and weight decay push toward inference (Fig. 14).")
    unfit = int((~c["fitted"]).sum())
    out.append(f"{unfit} of {len(c)} cells stay below 90 % seen-pair accuracy (hatched).")
    return out


def time_note(df: pd.DataFrame, meta: dict[str, Any], workers: int = 2) -> str:
    """How long this diagram took here (summed run times) and an estimate on a GPU with the paper preset."""
    wall = float(df["wall_seconds"].fillna(df["seconds"]).sum()) if "wall_seconds" in df else float(df["seconds"].sum())
    here = (f"Here, the {len(df)} runs of this diagram took {wall / 60:.0f} CPU-minutes in all (training plus"
            f" evaluation): about {wall / workers / 60:.0f} minutes with {workers} workers on {workers} cores.")
    paper = get_preset("paper")
    depths = sorted(df["depth"].unique()) if "depth" in df else [paper.model.n_layers]
    per_depth = {int(L): paper.replace(**{"model.n_layers": int(L)}).total_flops for L in depths}
    rate = per_depth.get(AUTHORS_GPU_LAYERS) or paper.replace(**{"model.n_layers": AUTHORS_GPU_LAYERS}).total_flops
    rate /= AUTHORS_GPU_SECONDS
    n_per_depth = len(df) / max(len(depths), 1)
    flops = sum(f * n_per_depth for f in per_depth.values())
    hours = flops / rate / 3600
    return (here + f" With the paper preset (d_model 400, 900,000 sequences, 210 epochs) each run costs"
            f" {min(per_depth.values()):.1e}–{max(per_depth.values()):.1e} FLOP; at the speed of the authors'"
            f" published 2-layer run (72 minutes on one GPU) the same {len(df)} runs would take about"
            f" {hours:.0f} GPU-hours, and the paper's 9 learning rates per cell multiply that by 9.")


def cell_runs_table(runs: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """The "one cell" table of the Phase page: ``cols`` of the cell's runs, numbers rounded to 3
    places; a seed whose weights were not committed has no run folder, and its ``run`` reads "—"
    (pandas showed Python's ``None``)."""
    out = runs[cols].reset_index(drop=True).round(3)
    if "run" in out:
        out["run"] = [r if isinstance(r, str) and r else "—" for r in out["run"]]
    return out

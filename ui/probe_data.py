"""Cached data for the "Inside the model" page: run choice, labels and every probe.

Runs are found and loaded by ``ui.loaders`` (``saved_runs``, ``load_run_cached``, keyed by
path and modification ``stamp``), so a run folder replaced on disk is read afresh. Every
analysis of ``core.probes`` sits behind ``st.cache_data`` keyed by the same stamp plus its
(hashable) parameters; the model is passed as ``_model`` so it is never hashed. Values are
numpy arrays and plain dicts.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from core import probes
from core.config import Pair
from core.verdict import FIT_THRESHOLD
from core.runs import Run

from .loaders import load_run_cached, pretrained_dir, saved_runs, source_label, stamp  # noqa: F401  (stamp: the views' cache key)


def available_runs() -> list[str]:
    """Paths (strings) of every run folder, in ``ui.loaders.saved_runs`` order: committed
    ``pretrained/`` runs (and the grid runs one level down), then ``runs/``."""
    return [p for _, p in saved_runs()]


_GAMMA = re.compile(r"_g([0-9.]+)")


def gamma_of(path: str) -> float | None:
    """γ read from a run's config (falls back to the ``_g0.5`` part of its name)."""
    try:
        return float(json.loads((Path(path) / "config.json").read_text())["model"]["gamma"])
    except (OSError, ValueError, KeyError, TypeError):
        m = _GAMMA.search(Path(path).name)
        return float(m.group(1).rstrip(".")) if m else None


def is_fitted(path: str) -> bool:
    """Whether the run fits the seen pairs: ``seen_test_accuracy`` ≥ 0.9 in its last history
    record (the paper's shading rule). False when metrics.json is missing or unreadable."""
    try:
        last = json.loads((Path(path) / "metrics.json").read_text())["history"][-1]
        return float(last["seen_test_accuracy"]) >= FIT_THRESHOLD
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False


def _outcome(path: str) -> tuple[dict[str, Any], str, bool] | None:
    """``(config dict without γ and seed, verdict outcome, clear)`` of a run's last record on its
    first held-out pair, or None when unreadable. Read from config.json and metrics.json."""

    from core.verdict import verdict
    try:
        cfg = json.loads((Path(path) / "config.json").read_text())
        last = json.loads((Path(path) / "metrics.json").read_text())["history"][-1]
        held = next(iter(last["held_out"].values()))
        v = verdict(float(last["seen_test_accuracy"]), held)
        same = {k: cfg[k] for k in ("task", "model", "train")}
        same["model"] = {k: v2 for k, v2 in same["model"].items() if k != "gamma"}
        same["train"] = {k: v2 for k, v2 in same["train"].items() if k not in ("seed", "device")}
        return same, v["outcome"], bool(v["clear"])
    except (OSError, ValueError, KeyError, TypeError, IndexError, StopIteration, AttributeError):
        return None


def _seed(path: str) -> int | None:
    """The run's ``train.seed`` from its config.json (None when unreadable)."""
    try:
        return json.loads((Path(path) / "config.json").read_text())["train"]["seed"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def contrast_pair(paths: list[str]) -> tuple[str, str] | None:
    """The best committed pair that shows the result: ``(symmetric run, inferential run)``.

    Both at the top of ``pretrained/``, of the same task, width and schedule (configs equal but
    for γ and seed), the smaller γ symmetric and the larger inferential. Clear verdicts beat
    leaning ones; then the wider model (the paper's width first); then a pair of one seed; then
    the names. None when no such pair is committed.
    """
    top = pretrained_dir().resolve()
    cands = []
    for p in paths:
        if Path(p).resolve().parent != top:
            continue
        o, g = _outcome(p), gamma_of(p)
        if o is not None and g is not None and o[1] in ("symmetric", "inferential"):
            cands.append((p, g, *o))
    best, best_key = None, None
    for ps, gs, cs, outs, clears in cands:
        for pi, gi, ci, outi, cleari in cands:
            if outs != "symmetric" or outi != "inferential" or gs >= gi or cs != ci:
                continue
            key = (-(clears + cleari), -int(cs["model"].get("d_model", 0)), _seed(ps) != _seed(pi),
                   Path(ps).name, Path(pi).name)
            if best_key is None or key < best_key:
                best, best_key = (ps, pi), key
    return best


def default_pair_of_runs(paths: list[str]) -> tuple[str | None, str | None]:
    """The runs to compare by default: ``contrast_pair`` when one is committed, else
    ``(smallest γ, largest γ)``.

    Candidates are the committed runs at the top of ``pretrained/`` (not the phase-diagram
    grids one level down, not the user's ``runs/``); when fewer than two of them have a γ,
    every run with a γ. Several runs at the same γ: a fitted one (``is_fitted``) first, then
    the first by name. ``(path, None)`` when the candidates share one γ; ``(None, None)``
    without runs.
    """
    if not paths:
        return None, None
    contrast = contrast_pair(paths)
    if contrast is not None:
        return contrast
    with_g = [(g, p) for g, p in ((gamma_of(p), p) for p in paths) if g is not None]
    if not with_g:
        return paths[0], None
    top = pretrained_dir().resolve()
    committed = [(g, p) for g, p in with_g if Path(p).resolve().parent == top]
    pool = committed if len(committed) >= 2 else with_g

    def pick(gamma: float) -> str:
        return min((p for g, p in pool if g == gamma), key=lambda p: (not is_fitted(p), Path(p).name, p))

    lo, hi = min(g for g, _ in pool), max(g for g, _ in pool)
    return pick(lo), (pick(hi) if hi != lo else None)


def run_label(path: str) -> str:
    """``"cpu-demo_L2_g0.5_s0 (γ 0.5)"``."""
    g = gamma_of(path)
    return f"{Path(path).name}" + (f" (γ {g:g})" if g is not None else "")


def choice_label(path: str) -> str:
    """``run_label`` for a select box and a chart legend, its source first (``ui.loaders.source_label``):
    ``"committed · cpu-demo_L2_g0.5_s0 (γ 0.5)"``, ``"committed · phase_demo/L2_g0.5_s0 (γ 0.5)"``
    (grids reuse run names), ``"saved · mine_L2_g0.5_s0 (γ 0.5)"``."""
    return source_label(path, run_label(path))


# -- cached probes: key = (path, stamp, parameters) --------------------------------------------
def _run(path: str) -> Run:
    return load_run_cached(path)


@st.cache_data(max_entries=64, show_spinner=False)
def sequence(path: str, stamp_: float, tokens: tuple[int, ...]) -> dict[str, Any]:
    run = _run(path)
    sp = probes.sequence_probe(run.model, run.config.task, np.asarray(tokens))
    return {**sp, "flow": probes.information_flow(sp["attn"], sp["key_pos"])}


@st.cache_data(max_entries=16, show_spinner=False)
def mean_flow(path: str, stamp_: float, pair: Pair) -> dict[str, dict[str, float]]:
    run = _run(path)
    return probes.mean_flow(run.model, run.config.task, pair)


@st.cache_data(max_entries=16, show_spinner=False)
def fused(path: str, stamp_: float, n: int, seed: int, layer: int) -> dict[str, np.ndarray]:
    run = _run(path)
    d = probes.fused_representations(run.model, run.config.task, n=n, seed=seed, layer=layer)
    d["ratio"] = probes.fused_symmetric_ratio(d["X"], d["a1"], d["a2"])
    return d


def subsample(n_total: int, n_max: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``n_max`` of ``n_total`` points (all when it fits), seeded."""
    if n_total <= n_max:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, n_max, replace=False))


@st.cache_data(max_entries=16, show_spinner=False)
def fused_projection(path: str, stamp_: float, n: int, seed: int, layer: int, method: str,
                     n_max: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """``(xy [m, 2], indices [m])``: the projection of at most ``n_max`` of the fused vectors."""
    d = fused(path, stamp_, n, seed, layer)
    idx = subsample(len(d["X"]), n_max, seed)
    return probes.project_2d(d["X"][idx], method, seed=seed), idx


@st.cache_data(max_entries=32, show_spinner=False)
def same_output(path: str, stamp_: float, comparisons: tuple, keys: tuple[int, ...], n_draws: int,
                centre: bool = False) -> dict[str, Any]:
    run = _run(path)
    return probes.same_output_similarity(run.model, run.config.task, comparisons, keys, n_draws=n_draws,
                                         centre=centre)


@st.cache_data(max_entries=32, show_spinner=False)
def single_anchor(path: str, stamp_: float, comparisons: tuple, keys: tuple[int, ...], n_draws: int,
                  centre: bool = False) -> dict[str, Any]:
    run = _run(path)
    return probes.single_anchor_similarity(run.model, run.config.task, comparisons, keys, n_draws=n_draws,
                                           centre=centre)


@st.cache_data(max_entries=64, show_spinner=False)
def condensation(path: str, stamp_: float, weight: str, threshold: float) -> dict[str, Any]:
    run = _run(path)
    return probes.condensation(run.model.weight(weight), threshold)


@st.cache_data(max_entries=16, show_spinner=False)
def embedding(path: str, stamp_: float, method: str) -> dict[str, Any]:
    run = _run(path)
    d = probes.embedding_structure(run.model, run.config.task)
    d["xy"] = d["pca"] if method == "pca" else probes.project_2d(d["E"], method, perplexity=15.0)
    d["eigen"] = probes.embedding_spectrum_from(d["E"])
    return d


@st.cache_data(max_entries=16, show_spinner=False)
def spectra(path: str, stamp_: float) -> dict[str, np.ndarray]:
    run = _run(path)
    return probes.singular_values(run.model)



@st.cache_data(max_entries=32, show_spinner=False)
def answers(path: str, stamp_: float, pair: Pair, seed: int) -> dict[str, Any]:
    run = _run(path)
    return probes.answers_by_key_position(run.model, run.config.task, pair, seed=seed)

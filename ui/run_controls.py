"""The Train page's run controls (preset, γ, depth, seed, epochs and the task) and the
pre-fill that sets them to retrain a given run (the Phase diagram's "Open in Train").

The controls keep their values across pages (``persist_state="session"``); their bounds are
``ui.url_state``'s. Core's ``ValueError`` is shown with ``st.error``, never raised.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.config import RunConfig, pair_key
from core.presets import DESCRIPTIONS, PRESETS, get_preset

from . import glossary, state, url_state
from .task_editor import ANCHORS, DEFAULT_TASK, NO_OVERRIDE, PAIR_KEYS, _task_widget_values, task_editor

def _preset_changed(prefix: str) -> None:
    base = get_preset(st.session_state[f"{prefix}_preset"])
    st.session_state[f"{prefix}_depth"] = base.model.n_layers
    st.session_state[f"{prefix}_epochs"] = base.train.epochs


def run_controls(prefix: str) -> tuple[str, RunConfig | None]:
    """Preset, γ, depth, seed, epochs and the task. Returns (preset, config or None on error)."""
    names = list(PRESETS)
    st.session_state.setdefault(f"{prefix}_preset", "cpu-demo" if "cpu-demo" in names else names[0])
    base = get_preset(st.session_state[f"{prefix}_preset"])
    st.session_state.setdefault(f"{prefix}_depth", base.model.n_layers)
    st.session_state.setdefault(f"{prefix}_epochs", base.train.epochs)
    st.session_state.setdefault(f"{prefix}_gamma", 0.5)
    st.session_state.setdefault(f"{prefix}_seed", 0)
    c1, c2, c3, c4, c5 = st.columns([2, 3, 2, 1, 1])
    keep = {"persist_state": "session"}  # settings survive a visit to another page
    large = state.large_fonts()  # large fonts: the preset's description as help, or it pushes Train below the fold
    preset = c1.selectbox("Preset", names, key=f"{prefix}_preset", on_change=_preset_changed, args=(prefix,),
                          help="\n\n".join(f"**{n}**: {DESCRIPTIONS.get(n, '')}" for n in names) if large else None,
                          **keep)
    if not large:
        c1.caption(DESCRIPTIONS.get(preset, ""))
    # The bounds are url_state's, so a link (?gamma=…&epochs=…) can never go beyond them.
    # With large fonts the long label wrapped and the slider's value was drawn over its second line
    gamma = c2.slider("Initialization rate γ" if large else "Initialization rate γ (weight std = d_in^(−γ))",
                      *url_state.GAMMA[:2], step=url_state.GAMMA[2],
                      key=f"{prefix}_gamma", help=glossary.tip("gamma"), **keep)
    depth = c3.slider("Depth (layers)", *url_state.DEPTH, key=f"{prefix}_depth", **keep)
    seed = c4.number_input("Seed", *url_state.SEED, step=1, key=f"{prefix}_seed", **keep)
    epochs = c5.number_input("Epochs", *url_state.EPOCHS, step=1, key=f"{prefix}_epochs", **keep)
    with st.expander("Task: anchor operations, held-out and overridden pairs"):
        task = task_editor(prefix)
    if task is None:
        st.error("The task settings are impossible, so nothing can be trained: open 'Task' above for the reason.")
        return preset, None
    base = get_preset(preset)
    overrides = {"model.gamma": float(gamma), "model.n_layers": int(depth), "train.seed": int(seed),
                 "train.epochs": int(epochs), "task.operations": task.operations, "task.held_out": task.held_out,
                 "task.overrides": task.overrides}
    try:
        cfg = base.replace(**overrides).with_epochs_scaled(base, overrides)  # same schedule rule as the CLI
    except ValueError as e:
        st.error(f"This configuration is impossible: {e}")
        return preset, None
    return preset, cfg


_CONTROLLED = {("model", "gamma"), ("model", "n_layers"), ("train", "seed"), ("train", "epochs"),
               ("train", "warmup_epochs"), ("train", "decay_epochs"), ("train", "device"),
               ("task", "operations"), ("task", "held_out"), ("task", "overrides")}


def _uncontrolled(cfg: RunConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    return {f"{g}.{k}": v for g in ("task", "model", "train") for k, v in d[g].items() if (g, k) not in _CONTROLLED}


def train_prefill(cfg: RunConfig, preset: str | None = None, prefix: str = "train") -> tuple[dict[str, Any], list[str]]:
    """The Train page's control values that retrain ``cfg`` (the session-state keys of
    ``run_controls`` and ``task_editor`` under ``prefix``), and the settings they cannot reach.

    The preset is the one whose settings outside the controls (width, data, learning rate, …)
    equal ``cfg``'s, else ``preset`` (e.g. a sweep's base), else cpu-demo; every setting of ``cfg``
    that the chosen preset does not share is named in the returned list, so the page can say
    that the retrained run will differ there. γ is snapped to the slider's step and bounds.
    """
    want = _uncontrolled(cfg)
    order = ([preset] if preset in PRESETS else []) + list(PRESETS)
    match = next((n for n in order if _uncontrolled(get_preset(n)) == want), None)
    name = match or (preset if preset in PRESETS else ("cpu-demo" if "cpu-demo" in PRESETS else next(iter(PRESETS))))
    base = _uncontrolled(get_preset(name))
    differ = [f"{k} = {want[k]} (preset {name}: {base.get(k)})" for k in want if want[k] != base.get(k)]
    lo, hi, step = url_state.GAMMA
    gamma = min(max(round(lo + round((cfg.model.gamma - lo) / step) * step, 10), lo), hi)
    if abs(gamma - cfg.model.gamma) > 1e-9:
        differ.append(f"model.gamma = {cfg.model.gamma:g} (the slider's nearest step: {gamma:g})")
    ops = {a: int(cfg.task.shift.get(a, 0)) for a in ANCHORS}
    ovr = cfg.task.overrides[0] if cfg.task.overrides else None
    task_state = {"ops": ops, "held_out": [pair_key(p) for p in cfg.task.held_out if pair_key(p) in PAIR_KEYS],
                  "override_pair": pair_key(ovr[:2]) if ovr else NO_OVERRIDE,
                  "override_shift": int(ovr[2]) if ovr else DEFAULT_TASK.overrides[0][2]}
    values: dict[str, Any] = {f"{prefix}_preset": name, f"{prefix}_gamma": float(gamma),
                              f"{prefix}_depth": int(cfg.model.n_layers), f"{prefix}_seed": int(cfg.train.seed),
                              f"{prefix}_epochs": int(cfg.train.epochs), state.TASK_SETTINGS: task_state}
    values.update({f"{prefix}_{k}": v for k, v in _task_widget_values(task_state).items()})
    return values, differ

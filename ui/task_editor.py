"""The task editor shared by the Puzzle and Train pages: the anchors' operations, the held-out
pairs and the overridden pair.

The task lives under the permanent session key ``ui.state.TASK_SETTINGS``; the editor's widgets
use page-namespaced keys (``<prefix>_...``) that are seeded from it when absent and copied back
after each run, so a change on one page shows on the next even though Streamlit forgets widget
state on a page switch. Core's ``ValueError`` is shown with ``st.error``, never raised.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.config import TaskConfig, pair_key, parse_pair
from core.task import pair_target

from . import charts, glossary, state

DEFAULT_TASK = TaskConfig()
ANCHORS = DEFAULT_TASK.anchors
PAIR_KEYS = [pair_key(p) for p in DEFAULT_TASK.pairs]
NO_OVERRIDE = "none"


def pair_label(key: str) -> str:
    return f"({key})"


def _default_task_state() -> dict[str, Any]:
    ovr = DEFAULT_TASK.overrides[0]
    return {"ops": dict(DEFAULT_TASK.operations), "held_out": [pair_key(p) for p in DEFAULT_TASK.held_out],
            "override_pair": pair_key(ovr[:2]), "override_shift": ovr[2]}


def _task_state() -> dict[str, Any]:
    if state.task_settings() is None:
        state.set_task_settings(_default_task_state())
    return state.task_settings()


def _task_widget_values(settings: dict[str, Any]) -> dict[str, Any]:
    values = {f"op_{a}": settings["ops"][a] for a in ANCHORS}
    values.update(held=list(settings["held_out"]), ovr_pair=settings["override_pair"], ovr_shift=settings["override_shift"])
    return values


def _reset_task(prefix: str) -> None:
    state.set_task_settings(_default_task_state())
    for name, value in _task_widget_values(state.task_settings()).items():
        st.session_state[f"{prefix}_{name}"] = value


def task_from_state(settings: dict[str, Any]) -> TaskConfig:
    """Build the ``TaskConfig`` the editor describes. Raises ValueError (core's message)."""
    overrides = []
    if settings["override_pair"] != NO_OVERRIDE:
        a, b = parse_pair(settings["override_pair"])
        overrides.append((a, b, int(settings["override_shift"])))
    return TaskConfig(operations=tuple((a, int(settings["ops"][a])) for a in ANCHORS),
                      held_out=tuple(parse_pair(k) for k in settings["held_out"]), overrides=tuple(overrides))


def task_editor(prefix: str) -> TaskConfig | None:
    """Edit the anchors' operations, the held-out pairs and the overridden pair.

    Returns the task, or None after showing core's validation message with ``st.error``.
    """
    settings = _task_state()
    for name, value in _task_widget_values(settings).items():
        st.session_state.setdefault(f"{prefix}_{name}", value)
    cols = st.columns(len(ANCHORS))
    for col, a in zip(cols, ANCHORS):
        col.number_input(f"anchor {a}: x +", min_value=-99, max_value=99, step=1, key=f"{prefix}_op_{a}",
                         help=f"single-anchor function g(x; {a}) = x + this shift\n\n" + glossary.tip("anchor"))
    c1, c2, c3 = st.columns([2, 1, 1])
    c1.multiselect("Held-out (unseen) pairs", PAIR_KEYS, key=f"{prefix}_held", format_func=pair_label,
                   help="never shown in training; the model's answers on them are the experiment. Hold out both "
                        "(3,4) and (4,3) and choose no overridden pair for Appendix E's variant.\n\n"
                        + glossary.tip("inferential", "symmetric", "both unseen"))
    c2.selectbox("Overridden pair", [NO_OVERRIDE] + PAIR_KEYS, key=f"{prefix}_ovr_pair",
                 format_func=lambda k: k if k == NO_OVERRIDE else pair_label(k))
    c3.number_input("its rule: x +", min_value=-99, max_value=99, step=1, key=f"{prefix}_ovr_shift",
                    disabled=st.session_state[f"{prefix}_ovr_pair"] == NO_OVERRIDE)
    st.button("Restore the paper's task", key=f"{prefix}_reset", on_click=_reset_task, args=(prefix,))
    settings["ops"] = {a: int(st.session_state[f"{prefix}_op_{a}"]) for a in ANCHORS}
    settings["held_out"] = list(st.session_state[f"{prefix}_held"])
    settings["override_pair"] = st.session_state[f"{prefix}_ovr_pair"]
    settings["override_shift"] = int(st.session_state[f"{prefix}_ovr_shift"])
    try:
        task = task_from_state(settings)
    except ValueError as e:
        st.error(f"These task settings are impossible: {e}")
        return None
    if not task.held_out:
        st.warning("No pair is held out, so nothing tests generalization to an unseen pair.")
    for line in held_out_notes(task):
        (st.info if line.startswith("Both") else st.warning)(line)
    return task


def held_out_notes(task: TaskConfig) -> list[str]:
    """Sentences on held-out pairs whose two candidate answers coincide. With the mirror unseen
    too (Appendix E's both-unseen variant), one sentence per mirror couple says what the variant
    tests (composition only); a pair whose trained mirror has the same value cannot tell reasoning
    from memorizing, and the sentence says so."""
    out, done = [], set()
    for p in task.held_out:
        if not charts.answers_coincide(task, p) or p in done:
            continue
        ans = charts.formula(pair_target(task, 0, p, "inferential"))
        if charts.mirror_unseen(task, p):
            q = (p[1], p[0])
            done.add(q)
            out.append(f"Both ({pair_key(p)}) and ({pair_key(q)}) are unseen (Appendix E's variant): no pair teaches a "
                       f"rule to copy, so ({pair_key(p)}) is {ans} either way — composition only, as its mirror's is. "
                       "Inferential accuracy on both says whether the single steps were learned.")
        else:
            out.append(f"For ({pair_key(p)}) the inferential and symmetric answers coincide ({ans} either way): "
                       "this task cannot tell reasoning from memorizing on that pair.")
    return out

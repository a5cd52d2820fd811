"""Styled tables for the puzzle page: the anchor-pair grid and example sequences.

Roles use the colours of ``ui.charts`` (inferential blue, overridden vermillion, held out
reddish purple); in sequences the key item is yellow and the anchors take their pair's colour.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import TaskConfig
from core.task import pair_target

from .charts import ROLE_COLOURS, formula

KEY_COLOUR = "#F0E442"  # Okabe–Ito yellow


def _tint(hex_colour: str, alpha: float = 0.28) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"background-color: rgba({r}, {g}, {b}, {alpha})"


def _font(large: bool) -> dict[str, str]:
    return {"font-size": "1.3rem" if large else "0.95rem"}


def pair_table(task: TaskConfig, large: bool = False) -> Any:
    """Styler: rows = first anchor, columns = second anchor, cell = ``target · role``."""
    rows, roles = {}, {}
    for a1 in task.anchors:
        label = f"first {a1} ({formula(task.shift[a1])})"
        rows[label], roles[label] = {}, {}
        for a2 in task.anchors:
            col = f"then {a2} ({formula(task.shift[a2])})"
            role = task.pair_type((a1, a2))
            if role == "held out":
                text = f"? · held out (x{pair_target(task, 0, (a1, a2), 'inferential'):+d} or"\
                       f" x{pair_target(task, 0, (a1, a2), 'symmetric'):+d})"
            else:
                text = f"{formula(pair_target(task, 0, (a1, a2)))} · {role}"
            rows[label][col], roles[label][col] = text, role
    df = pd.DataFrame(rows).T
    colours = pd.DataFrame(roles).T.map(lambda r: _tint(ROLE_COLOURS[r]))
    return df.style.apply(lambda _: colours, axis=None).set_properties(**_font(large))


def sequence_frame(task: TaskConfig, batch: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frame of sequences (positions 0..n-1, pair, target, split) and a same-shape CSS frame."""
    tokens = batch["tokens"]
    n, L = tokens.shape
    cols = [f"pos {q}" for q in range(L)]
    df = pd.DataFrame(tokens, columns=cols)
    css = pd.DataFrame("", index=df.index, columns=cols)
    pairs, targets, splits = [], [], []
    for i in range(n):
        p = (int(batch["a1"][i]), int(batch["a2"][i]))
        x, kp = int(batch["key"][i]), int(batch["key_pos"][i])
        role = task.pair_type(p)
        css.iat[i, kp] = _tint(KEY_COLOUR, 0.9)
        css.iat[i, kp + 1] = css.iat[i, kp + 2] = _tint(ROLE_COLOURS[role], 0.45)
        pairs.append(f"({p[0]},{p[1]}) {role}")
        if role == "held out":
            targets.append(f"? ({pair_target(task, x, p, 'inferential')} or {pair_target(task, x, p, 'symmetric')})")
        else:
            targets.append(str(pair_target(task, x, p)))
        splits.append("test" if x % task.modulus == kp % task.modulus else "train")
    df["pair"], df["target"], df["split (x mod m = p?)"] = pairs, targets, splits
    for c in ("pair", "target", "split (x mod m = p?)"):
        css[c] = ""
    return df, css


def sequence_table(task: TaskConfig, batch: dict[str, np.ndarray], large: bool = False) -> Any:
    """Styler of ``sequence_frame``: key item yellow, anchors in their pair's role colour."""
    df, css = sequence_frame(task, batch)
    return df.style.apply(lambda _: css, axis=None).set_properties(**_font(large)).hide(axis="index")

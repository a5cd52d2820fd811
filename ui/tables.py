"""Styled tables for the puzzle page: the anchor-pair grid and example sequences.

Roles use the colours of ``ui.palette`` (inferential blue, overridden vermillion, held out
reddish purple); in sequences the key item is yellow and the anchors take their pair's colour.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import TaskConfig
from core.task import pair_target

from .charts import formula, held_out_answers, mirror_unseen
from .palette import KEY as KEY_COLOUR
from .palette import ROLE_COLOURS


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
                text = f"? · held out ({held_out_answers(task, (a1, a2))})"
            else:
                text = f"{formula(pair_target(task, 0, (a1, a2)))} · {role}"
            rows[label][col], roles[label][col] = text, role
    df = pd.DataFrame(rows).T
    colours = pd.DataFrame(roles).T.map(lambda r: _tint(ROLE_COLOURS[r]))
    return df.style.apply(lambda _: colours, axis=None).set_properties(**_font(large))


def modulus_note(task: TaskConfig) -> str:
    """What m is: ``"m = 7, the sequence length minus 2"`` (or the task's own ``split_modulus``)."""
    why = "the sequence length minus 2" if task.split_modulus is None else "set by the task"
    return f"m = {task.modulus}, {why}"


def puzzle_answers(task: TaskConfig, key: int = 80) -> list[str]:
    """The Puzzle's bullets on each held-out pair: its inferential and symmetric answers, or, when
    they coincide, one bullet that says so (Appendix E's both-unseen variant: composition only),
    never two bullets with the same answer."""
    out = []
    for a1, a2 in task.held_out:
        p = (a1, a2)
        inf, sym = pair_target(task, 0, p, "inferential"), pair_target(task, 0, p, "symmetric")
        steps = f"anchor {a1} ({formula(task.shift[a1])}), then anchor {a2} ({formula(task.shift[a2])})"
        mirror = task.pair_type((a2, a1))
        if inf == sym:
            if mirror_unseen(task, p):
                head, why = "composition only", (f"Its mirror ({a2},{a1}) is unseen too and no rule was changed, so "
                                                 f"there is nothing to copy: only composing {steps} gives it.")
            else:
                head, why = "copy and composition agree", (f"Composing {steps} and copying the mirror pair "
                                                           f"({a2},{a1}), {mirror}, give the same number, so this pair "
                                                           "cannot tell reasoning from memorizing.")
            out.append(f"- **({a1},{a2}): {formula(inf)} either way ({head}).** {why} For key {key}: {key + inf}.")
            continue
        out.append(
            f"- **{formula(inf)}: inferential (composition).** Apply {steps}. A model that learned "
            f"the four single-anchor operations from the other pairs can compose them for ({a1},{a2}) although it "
            f"never saw it. For key {key}: {key + inf}.\n"
            f"- **{formula(sym)}: symmetric (memorizing).** Answer as for the mirror pair ({a2},{a1}), "
            f"{'whose rule was changed to' if mirror == 'overridden' else 'which is ' + mirror + ' with target'} "
            f"{formula(sym)}: the model treats the two anchors as an unordered pair and looks the answer up. "
            f"For key {key}: {key + sym}.")
    return out


def split_column(task: TaskConfig) -> str:
    """The split column's title, with the task's modulus: ``"key split (test: x mod 7 = p)"``."""
    return f"key split (test: x mod {task.modulus} = p)"


def sequence_frame(task: TaskConfig, batch: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frame of sequences (positions 0..n-1, pair, target, split) and a same-shape CSS frame.
    The split column names the modulus m (``split_column``): test where x mod m = p."""
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
            targets.append(f"? ({held_out_answers(task, p, key=x)})")
        else:
            targets.append(str(pair_target(task, x, p)))
        split = "test" if x % task.modulus == kp % task.modulus else "train"
        # a held-out pair is never trained, whatever its key's split (newcomer review: it read "train")
        splits.append(f"{split} key · pair never trained" if role == "held out" else split)
    df["pair"], df["target"], df[split_column(task)] = pairs, targets, splits
    for c in ("pair", "target", split_column(task)):
        css[c] = ""
    return df, css


def sequence_table(task: TaskConfig, batch: dict[str, np.ndarray], large: bool = False) -> Any:
    """Styler of ``sequence_frame``: key item yellow, anchors in their pair's role colour."""
    df, css = sequence_frame(task, batch)
    return df.style.apply(lambda _: css, axis=None).set_properties(**_font(large)).hide(axis="index")

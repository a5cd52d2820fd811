"""Altair chart builders shared by the pages: one function per chart, each returning a chart.

Colours come from ``ui.palette`` and mean the same thing everywhere: inferential (composition,
e.g. x−10) blue, symmetric (copy of the swapped pair, e.g. x−6) vermillion, any other answer
grey, seen-pair accuracy and loss black; the overridden pair shares the symmetric colour,
held-out pairs are reddish purple. Every number says its split: seen pairs are scored on the
test split, held-out pairs on both splits (docs/science.md §2). Every builder takes ``large``
(lecturer mode: bigger fonts; the sizes are ``ui.chart_style``'s).
"""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from core.config import Pair, TaskConfig, pair_key, parse_pair
from core.task import pair_target

from . import chart_style
from .lesson import formula  # noqa: F401  (one home: ``x−10`` with a true minus sign)
from .palette import BATCH, HELD_OUT, INFERENTIAL, MAPPING_COLOURS, OTHER, ROLE_COLOURS, SEEN, SYMMETRIC  # noqa: F401

# Which split each number is on (the card, the curves and the per-pair grid use these words).
SEEN_SPLIT = "test split"
HELD_SPLIT = "both splits"


def answers_coincide(task: TaskConfig, pair: Pair) -> bool:
    """Whether the held-out ``pair``'s inferential and symmetric answers are the same number, as
    in Appendix E (both (3,4) and (4,3) unseen, no override): then only composition can give it."""
    return pair_target(task, 0, pair, "inferential") == pair_target(task, 0, pair, "symmetric")


def mirror_unseen(task: TaskConfig, pair: Pair) -> bool:
    """Whether ``pair``'s mirror (b,a) is held out too (the both-unseen variant of Appendix E)."""
    return pair[0] != pair[1] and (pair[1], pair[0]) in task.held_out


def held_out_answers(task: TaskConfig, pair: Pair, key: int | None = None) -> str:
    """The candidate answers of a held-out pair, for a label: ``"x−10 or x−6"`` (with a key,
    ``"70 or 74"``). When they coincide, never ``"x−10 or x−10"``: with the mirror unseen too
    (Appendix E) ``"x−10 either way: composition only"``, with a trained mirror of the same value
    ``"x+6 either way: copy and composition agree"``."""
    inf, sym = pair_target(task, 0, pair, "inferential"), pair_target(task, 0, pair, "symmetric")
    show = (lambda s: str(key + s)) if key is not None else formula
    if inf != sym:
        return f"{show(inf)} or {show(sym)}"
    why = "composition only" if mirror_unseen(task, pair) else "copy and composition agree"
    return f"{show(inf)} either way: {why}"


# -- frames -----------------------------------------------------------------------------------
def loss_frame(history: list[dict[str, Any]], steps: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """Long frame ``epoch, loss, series``: per-batch loss (live jobs) and the per-epoch mean."""
    rows = [{"epoch": s["epoch"], "loss": s["loss"], "series": "batch"} for s in steps or []]
    rows += [{"epoch": r["epoch"], "loss": r["train_loss"], "series": "epoch mean"}
             for r in history if r.get("train_loss") is not None]
    return pd.DataFrame(rows, columns=["epoch", "loss", "series"])


def accuracy_frame(history: list[dict[str, Any]], task: TaskConfig) -> pd.DataFrame:
    """Long frame ``epoch, accuracy, series, mapping``: seen-pair test accuracy and, for each
    held-out pair, its inferential and symmetric accuracy."""
    rows = []
    for r in history:
        rows.append({"epoch": r["epoch"], "accuracy": r["seen_test_accuracy"],
                     "series": f"seen pairs ({SEEN_SPLIT})", "mapping": "seen"})
        for k, h in r.get("held_out", {}).items():
            p = parse_pair(k)
            if answers_coincide(task, p):  # both-unseen variant: one curve, not two identical ones
                rows.append({"epoch": r["epoch"], "accuracy": h["inferential"], "mapping": "inferential",
                             "series": f"({k}) as {held_out_answers(task, p)} ({HELD_SPLIT})"})
                continue
            for m in ("inferential", "symmetric"):
                rows.append({"epoch": r["epoch"], "accuracy": h[m], "mapping": m,
                             "series": f"({k}) as {formula(pair_target(task, 0, p, m))}: {m} ({HELD_SPLIT})"})
    return pd.DataFrame(rows, columns=["epoch", "accuracy", "series", "mapping"])


# -- charts ------------------------------------------------------------------------------------
def epoch_axis(frame: pd.DataFrame, epochs: float | None = None) -> alt.X:
    """The shared x encoding: epochs from 0 to ``epochs`` (the planned length, so a live chart
    does not rescale as training goes on), else to the last epoch in ``frame`` (at least 1), with
    whole-number ticks. A one-point frame (epoch 0 at the start of training) would otherwise
    get a zero-width axis labelled ``0.000000``."""
    last = float(frame["epoch"].max()) if len(frame) else 0.0
    return epoch_x(max(float(epochs or 0), last, 1.0))


def epoch_x(end: float) -> alt.X:
    """An epoch axis from 0 to ``end`` (at least 1) with whole-number ticks. (Explicit tick
    ``values`` with the integer format lost every inner tick in Streamlit's renderer: 0, 2.)"""
    return alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[0, max(float(end), 1.0)], nice=False),
                 axis=alt.Axis(format="d", tickMinStep=1))


def loss_chart(frame: pd.DataFrame, large: bool = False, epochs: float | None = None) -> alt.Chart:
    """Training loss (cross-entropy at the last position) against epoch, log scale.

    ``epochs``: the planned number of epochs (fixes the x axis of a live chart)."""
    f = chart_style.fonts(large)
    domain = [s for s in ("batch", "epoch mean") if s in set(frame["series"])] or ["epoch mean"]
    rng = [BATCH if s == "batch" else SEEN for s in domain]
    chart = alt.Chart(frame, title="Training loss").mark_line(strokeWidth=3 if large else 2).encode(
        x=epoch_axis(frame, epochs),
        y=alt.Y("loss:Q", title="cross-entropy", scale=alt.Scale(type="log")),
        color=alt.Color("series:N", scale=alt.Scale(domain=domain, range=rng), title=None),
        tooltip=["epoch:Q", alt.Tooltip("loss:Q", format=".3f"), "series:N"],
    ).properties(height=f["height"])
    return chart_style.style(chart, large)


def accuracy_chart(frame: pd.DataFrame, large: bool = False, epochs: float | None = None) -> alt.Chart:
    """Seen-pair test accuracy and the held-out pair's inferential / symmetric accuracy.

    ``epochs``: the planned number of epochs (fixes the x axis of a live chart)."""
    f = chart_style.fonts(large)
    series = list(dict.fromkeys(frame["series"]))
    colour_of = dict(zip(frame["series"], frame["mapping"]))
    rng = [MAPPING_COLOURS[colour_of[s]] for s in series]
    chart = alt.Chart(frame, title="Accuracy during training").mark_line(
        point=len(frame) < 400, strokeWidth=3 if large else 2).encode(
        x=epoch_axis(frame, epochs),
        y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("series:N", scale=alt.Scale(domain=series, range=rng), title=None),
        tooltip=["epoch:Q", alt.Tooltip("accuracy:Q", format=".1%"), "series:N"],
    ).properties(height=f["height"])
    return chart_style.style(chart, large)


def pair_accuracy_rows(per_pair: dict[str, float], task: TaskConfig,
                       held: dict[str, dict[str, float]] | None = None) -> pd.DataFrame:
    """One row per anchor pair: its accuracy and the split it is on. Trained pairs: the test
    split. Held-out pairs: inferential accuracy on both splits from their ``held`` record (the
    verdict card's number), or, for an old run without one, ``per_pair``'s test-split value."""
    rows = []
    for p in task.pairs:
        role, k = task.pair_type(p), pair_key(p)
        acc, split = per_pair.get(k, 0.0), SEEN_SPLIT
        if role == "held out" and held and held.get(k, {}).get("inferential") is not None:
            acc, split = float(held[k]["inferential"]), HELD_SPLIT
        note = {"held out": f"held out · {split}", "overridden": "overridden"}.get(role, "")
        rows.append({"first anchor": str(p[0]), "second anchor": str(p[1]), "accuracy": acc, "split": split,
                     "role": role, "target": formula(pair_target(task, 0, p)), "note": note})
    return pd.DataFrame(rows)


def pair_accuracy_chart(per_pair: dict[str, float], task: TaskConfig, large: bool = False,
                        held: dict[str, dict[str, float]] | None = None) -> alt.Chart:
    """4x4 grid: accuracy of each anchor pair, each on its split (``pair_accuracy_rows``)."""
    f = chart_style.fonts(large)
    df = pair_accuracy_rows(per_pair, task, held)
    order = [str(a) for a in task.anchors]
    splits = (f"seen pairs: {SEEN_SPLIT}; held out: inferential, {HELD_SPLIT}"
              if (df["split"] == HELD_SPLIT).any() else SEEN_SPLIT)
    base = alt.Chart(df, title=alt.TitleParams("Accuracy per anchor pair", subtitle=[splits],
                                               subtitleFontSize=f["label"])).encode(
        x=alt.X("second anchor:O", sort=order, axis=alt.Axis(orient="top", labelAngle=0)),
        y=alt.Y("first anchor:O", sort=order),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("accuracy:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), legend=None),
        tooltip=["first anchor", "second anchor", "role", "target", "split", alt.Tooltip("accuracy:Q", format=".1%")],
    )
    text_colour = alt.condition("datum.accuracy > 0.55", alt.value("white"), alt.value("black"))
    value = base.mark_text(fontSize=f["text"], dy=-8 if not large else -10, fontWeight="bold").encode(
        text=alt.Text("accuracy:Q", format=".0%"), color=text_colour)
    note = base.mark_text(fontSize=f["label"] if large else f["text"] - 3, dy=10 if not large else 14).encode(text="note:N", color=text_colour)
    return chart_style.style(alt.layer(cells, value, note).properties(height=f["height"]), large)


def offsets_chart(offsets: dict[str, float], pair: str, task: TaskConfig, large: bool = False,
                  shares_of: dict[str, float] | None = None) -> alt.Chart:
    """Bar chart of the held-out pair's answers as offsets from the key (the five most common),
    coloured by which mapping the offset matches.

    ``shares_of``: the pair's held-out record (``inferential``, ``symmetric`` shares, as on
    the verdict card). Both candidate answers always get a bar; their heights come from this
    record, so a candidate outside the five most common offsets shows its true share, not 0,
    and the chart agrees with the card.
    """
    f = chart_style.fonts(large)
    p = parse_pair(pair)
    inf, sym = pair_target(task, 0, p, "inferential"), pair_target(task, 0, p, "symmetric")
    shares = {int(o): s for o, s in offsets.items()}
    for o, m in ((inf, "inferential"), (sym, "symmetric")):
        if shares_of is not None and shares_of.get(m) is not None:
            shares[o] = float(shares_of[m])
        else:
            shares.setdefault(o, 0.0)  # always show both candidate answers, even at 0 %
    rows = []
    for o, share in shares.items():
        kind = "inferential" if o == inf else "symmetric" if o == sym else "other"
        rows.append({"answer": formula(o), "share": share, "kind": kind, "offset": o})
    df = pd.DataFrame(rows, columns=["answer", "share", "kind", "offset"])
    kinds = ["inferential", "symmetric", "other"]
    chart = alt.Chart(df, title=f"Answers for ({pair}), final evaluation ({HELD_SPLIT})").mark_bar().encode(
        x=alt.X("answer:N", sort=alt.SortField("offset"), title="answer (key x plus offset)",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("share:Q", title="share of keys", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("kind:N", scale=alt.Scale(domain=kinds, range=[MAPPING_COLOURS[k] for k in kinds]),
                        title=None,  # three short words: one line under the plot with large fonts
                        legend=alt.Legend(direction="horizontal") if large else alt.Legend()),
        tooltip=["answer:N", alt.Tooltip("share:Q", format=".1%"), "kind:N"],
    ).properties(height=f["height"])
    return chart_style.style(chart, large)

"""Altair chart builders shared by the pages: one function per chart, each returning a chart.

Colours are the colour-blind-safe Okabe–Ito palette and mean the same thing everywhere:
inferential (composition, e.g. x-10) is blue, symmetric (copy of the swapped pair, e.g. x-6)
is vermillion, any other answer grey, seen-pair accuracy and loss black. The overridden
pair, whose rule the symmetric solution copies, shares the symmetric colour; held-out pairs
are reddish purple. Every builder takes ``large`` (lecturer mode: bigger fonts).
"""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from core.config import TaskConfig, pair_key, parse_pair
from core.task import pair_target

INFERENTIAL = "#0072B2"  # Okabe–Ito blue
SYMMETRIC = "#D55E00"    # Okabe–Ito vermillion
OTHER = "#999999"        # grey
SEEN = "#000000"         # black
HELD_OUT = "#CC79A7"     # Okabe–Ito reddish purple
MAPPING_COLOURS = {"inferential": INFERENTIAL, "symmetric": SYMMETRIC, "other": OTHER, "seen": SEEN}
ROLE_COLOURS = {"inferential": INFERENTIAL, "overridden": SYMMETRIC, "held out": HELD_OUT}


def fonts(large: bool = False) -> dict[str, int]:
    """Font sizes (px) for normal and lecturer (projector) mode."""
    if large:
        return {"label": 20, "title": 22, "legend": 20, "text": 22, "height": 420}
    return {"label": 12, "title": 13, "legend": 12, "text": 13, "height": 300}


def style(chart: Any, large: bool = False) -> Any:
    """Apply the shared font sizes to a finished chart (must be the outermost chart)."""
    f = fonts(large)
    # Large fonts: legends under the plot, one entry a line. On the right, a long label at 20 px
    # ate the plot of a half-width column (the accuracy chart shrank to ~40 px at 1280 px).
    legend = ({"orient": "bottom", "symbolDirection": "vertical", "gradientDirection": "horizontal"} if large
              else {"orient": "right"})
    return (chart.configure_axis(labelFontSize=f["label"], titleFontSize=f["title"])
            .configure_legend(labelFontSize=f["legend"], titleFontSize=f["title"], labelLimit=0, **legend)
            .configure_header(labelFontSize=f["title"], titleFontSize=f["title"])
            .configure_title(fontSize=f["title"] + 2, anchor="start")
            .configure_view(strokeWidth=0))


def formula(shift: int) -> str:
    """``-10 -> "x-10"``, ``5 -> "x+5"``, ``0 -> "x"``."""
    return "x" if shift == 0 else f"x{shift:+d}"


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
                     "series": "seen pairs (test split)", "mapping": "seen"})
        for k, h in r.get("held_out", {}).items():
            p = parse_pair(k)
            for m in ("inferential", "symmetric"):
                rows.append({"epoch": r["epoch"], "accuracy": h[m], "mapping": m,
                             "series": f"({k}) as {formula(pair_target(task, 0, p, m))}: {m}"})
    return pd.DataFrame(rows, columns=["epoch", "accuracy", "series", "mapping"])


# -- charts ------------------------------------------------------------------------------------
def epoch_axis(frame: pd.DataFrame, epochs: float | None = None) -> alt.X:
    """The shared x encoding: epochs from 0 to ``epochs`` (the planned length, so a live chart
    does not rescale as training goes on), else to the last epoch in ``frame`` (at least 1), with
    whole-number ticks. A one-point frame (epoch 0 at the start of training) would otherwise
    get a zero-width axis labelled ``0.000000``."""
    last = float(frame["epoch"].max()) if len(frame) else 0.0
    end = max(float(epochs or 0), last, 1.0)
    return alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[0, end], nice=False),
                 axis=alt.Axis(format="d", tickMinStep=1))


def loss_chart(frame: pd.DataFrame, large: bool = False, epochs: float | None = None) -> alt.Chart:
    """Training loss (cross-entropy at the last position) against epoch, log scale.

    ``epochs``: the planned number of epochs (fixes the x axis of a live chart)."""
    f = fonts(large)
    domain = [s for s in ("batch", "epoch mean") if s in set(frame["series"])] or ["epoch mean"]
    rng = ["#BBBBBB" if s == "batch" else SEEN for s in domain]
    chart = alt.Chart(frame, title="Training loss").mark_line(strokeWidth=3 if large else 2).encode(
        x=epoch_axis(frame, epochs),
        y=alt.Y("loss:Q", title="cross-entropy", scale=alt.Scale(type="log")),
        color=alt.Color("series:N", scale=alt.Scale(domain=domain, range=rng), title=None),
        tooltip=["epoch:Q", alt.Tooltip("loss:Q", format=".3f"), "series:N"],
    ).properties(height=f["height"])
    return style(chart, large)


def accuracy_chart(frame: pd.DataFrame, large: bool = False, epochs: float | None = None) -> alt.Chart:
    """Seen-pair test accuracy and the held-out pair's inferential / symmetric accuracy.

    ``epochs``: the planned number of epochs (fixes the x axis of a live chart)."""
    f = fonts(large)
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
    return style(chart, large)


def pair_accuracy_chart(per_pair: dict[str, float], task: TaskConfig, large: bool = False) -> alt.Chart:
    """4x4 grid: test-split accuracy of each anchor pair (held-out pairs: inferential accuracy)."""
    f = fonts(large)
    rows = []
    for p in task.pairs:
        role = task.pair_type(p)
        rows.append({"first anchor": str(p[0]), "second anchor": str(p[1]), "accuracy": per_pair.get(pair_key(p), 0.0),
                     "role": role, "target": formula(pair_target(task, 0, p)),
                     "note": {"held out": "held out", "overridden": "overridden"}.get(role, "")})
    df = pd.DataFrame(rows)
    order = [str(a) for a in task.anchors]
    base = alt.Chart(df, title="Accuracy per anchor pair (test split)").encode(
        x=alt.X("second anchor:O", sort=order, axis=alt.Axis(orient="top", labelAngle=0)),
        y=alt.Y("first anchor:O", sort=order),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("accuracy:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), legend=None),
        tooltip=["first anchor", "second anchor", "role", "target", alt.Tooltip("accuracy:Q", format=".1%")],
    )
    text_colour = alt.condition("datum.accuracy > 0.55", alt.value("white"), alt.value("black"))
    value = base.mark_text(fontSize=f["text"], dy=-8 if not large else -10, fontWeight="bold").encode(
        text=alt.Text("accuracy:Q", format=".0%"), color=text_colour)
    note = base.mark_text(fontSize=f["text"] - 3, dy=10 if not large else 14).encode(text="note:N", color=text_colour)
    return style(alt.layer(cells, value, note).properties(height=f["height"]), large)


def offsets_chart(offsets: dict[str, float], pair: str, task: TaskConfig, large: bool = False,
                  shares_of: dict[str, float] | None = None) -> alt.Chart:
    """Bar chart of the held-out pair's answers as offsets from the key (the five most common),
    coloured by which mapping the offset matches.

    ``shares_of``: the pair's held-out record (``inferential``, ``symmetric`` shares, as on
    the verdict card). Both candidate answers always get a bar; their heights come from this
    record, so a candidate outside the five most common offsets shows its true share, not 0,
    and the chart agrees with the card.
    """
    f = fonts(large)
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
    chart = alt.Chart(df, title=f"Answers for ({pair}), final evaluation").mark_bar().encode(
        x=alt.X("answer:N", sort=alt.SortField("offset"), title="answer (key x plus offset)",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("share:Q", title="share of keys", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("kind:N", scale=alt.Scale(domain=kinds, range=[MAPPING_COLOURS[k] for k in kinds]),
                        title=None),
        tooltip=["answer:N", alt.Tooltip("share:Q", format=".1%"), "kind:N"],
    ).properties(height=f["height"])
    return style(chart, large)

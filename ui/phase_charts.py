"""Altair charts of the Phase diagram page: the heatmaps of Fig. 2(a,b) / Fig. 14 and the
per-run outcome dots.

Heatmaps use the colour-blind-safe sequential ``viridis`` scheme on a fixed 0..1 domain, so
equal colours mean equal accuracy in every panel. Cells whose seen-pair test accuracy is below
90 % (the paper's shading) are faded and hatched. Outcome dots take their verdict's colour from
``ui.palette`` (inferential blue, symmetric vermillion, other grey; not fitted hollow). Clicking a cell selects it (selection parameter ``cell``).
"""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from . import chart_style, charts, palette
from .phase_data import AXIS_TITLES, OUTCOME_ORDER

HATCH = "M-1,1L1,-1M-1,0L0,-1M0,1L1,0"  # three diagonal strokes in the unit square
CELL_W, CELL_H = 46, 34


def _axis(field: str, kind: str, large: bool) -> dict[str, Any]:
    values_sort = "descending" if kind == "y" else "ascending"
    fmt = {"seed": "d", "lr": "~e"}.get(field, "~g")  # 2.5e-4 rather than 0.00025: short labels
    return dict(field=field, type="ordinal", sort=values_sort, title=AXIS_TITLES.get(field, field),
                axis=alt.Axis(labelAngle=0, format=fmt))


def heatmap(frame: pd.DataFrame, x: str, y: str | None, selected: str | None, large: bool = False,
            by_seed: bool = False) -> Any:
    """Faceted heatmap: one panel per ``panel`` value (columns), one row per seed with ``by_seed``.

    ``frame``: ``long_frame`` output (``value``, ``std``, ``seen``, ``fitted``, ``cell``, axes).
    """
    f = chart_style.fonts(large)
    scale = 1.35 if large else 1.0
    y_enc = alt.Y(**_axis(y, "y", large)) if y else alt.Y(value=0)
    tooltip = [alt.Tooltip(x, title=AXIS_TITLES.get(x, x))]
    if y:
        tooltip.append(alt.Tooltip(y, title=AXIS_TITLES.get(y, y)))
    if by_seed:
        tooltip.append(alt.Tooltip("seed:O"))
    tooltip += [alt.Tooltip("panel:N", title="panel"), alt.Tooltip("value:Q", title="accuracy", format=".2f"),
                alt.Tooltip("std:Q", title="spread (std)", format=".2f"),
                alt.Tooltip("seen:Q", title="seen-pair test accuracy", format=".2f"),
                alt.Tooltip("inferential:Q", format=".2f"), alt.Tooltip("symmetric:Q", format=".2f"),
                alt.Tooltip("other:Q", format=".2f"), alt.Tooltip("n_runs:Q", title="runs"),
                alt.Tooltip("outcomes:N", title="runs ended"), alt.Tooltip("cell:N", title="cell id")]
    sel = alt.selection_point(name="cell", fields=["cell"], on="click", clear="dblclick")
    base = alt.Chart().encode(x=alt.X(**_axis(x, "x", large)), y=y_enc)
    rect = base.mark_rect().encode(
        color=alt.Color("value:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]),
                        # under the plot with large fonts: a colour bar one line high (chart_style
                        # turns bottom legends vertical, which suits lists of symbols only)
                        legend=alt.Legend(title="accuracy", format=".0%",
                                          **({"direction": "horizontal"} if large else {}))),
        tooltip=tooltip).add_params(sel)
    fade = base.mark_rect(color="white", opacity=0.55).transform_filter("!datum.fitted")
    hatch = base.mark_point(shape=HATCH, size=(min(CELL_W, CELL_H) * scale * 0.85) ** 2, strokeWidth=1,
                            color="#444444", filled=False).transform_filter("!datum.fitted")
    text = base.mark_text(fontSize=f["label"] - (0 if large else 1)).encode(  # projector: ≥ 20 px
        text=alt.Text("value:Q", format=".2f"),
        color=alt.condition("datum.value < 0.55 && datum.fitted", alt.value("white"), alt.value("black")))
    ring = base.mark_rect(fill=None, stroke="#E69F00", strokeWidth=3).transform_filter(
        alt.datum.cell == (selected or "\u0000"))
    layered = alt.layer(rect, fade, hatch, text, ring, data=frame).properties(
        width=alt.Step(CELL_W * scale), height=alt.Step(CELL_H * scale) if y else CELL_H * scale)
    panels = list(dict.fromkeys(frame["panel"]))  # keep the spec's order (symmetric first, as Fig. 2a,b)
    facet = dict(column=alt.Column("panel:N", title=None, sort=panels,
                                   # two lines ("(4,3) as x−6" / "symmetric accuracy"): one line ran into
                                   # the next panel's title over panels three cells wide
                                   header=alt.Header(labelFontWeight="bold", labelFontSize=f["title"],
                                                     labelExpr="split(datum.label, ': ')")))
    if by_seed:
        facet["row"] = alt.Row("seed:O", title="seed")
    return chart_style.style(layered.facet(**facet), large)


def outcome_dots(runs: pd.DataFrame, x: str, y: str | None, large: bool = False) -> Any:
    """Each run's verdict as a dot in its cell, side by side: seed-to-seed variation at a glance."""
    scale = 1.35 if large else 1.0
    colours = [palette.outcome_colour(o) if o != "not fitted" else "#FFFFFF" for o in OUTCOME_ORDER]  # hollow
    tooltip = [alt.Tooltip(x, title=AXIS_TITLES.get(x, x))]
    if y:
        tooltip.append(alt.Tooltip(y, title=AXIS_TITLES.get(y, y)))
    tooltip += [alt.Tooltip("seed:O"), alt.Tooltip("lr:Q", format="g"), alt.Tooltip("outcome:N"),
                alt.Tooltip("seen_test_accuracy:Q", title="seen", format=".2f"),
                alt.Tooltip("inferential:Q", format=".2f"), alt.Tooltip("symmetric:Q", format=".2f")]
    chart = alt.Chart(runs).mark_point(filled=True, size=90 * scale, stroke="black", strokeWidth=0.8).encode(
        x=alt.X(**_axis(x, "x", large)),
        xOffset=alt.XOffset("slot:O"),
        y=alt.Y(**_axis(y, "y", large)) if y else alt.Y(value=CELL_H * scale / 2),
        color=alt.Color("outcome:N", scale=alt.Scale(domain=OUTCOME_ORDER, range=colours),
                        legend=alt.Legend(title="run ended", symbolStrokeColor="black")),
        tooltip=tooltip,
    ).properties(width=alt.Step(CELL_W * scale), height=alt.Step(CELL_H * scale) if y else CELL_H * scale,
                 title="Each run's verdict (one dot per seed and learning rate)")
    return chart_style.style(chart, large)

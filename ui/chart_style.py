"""The one home of the charts' fonts and sizes (colours: ``ui.palette``).

Every chart builder asks ``fonts(large)`` for its sizes and finishes with ``style(chart, large)``;
``large`` is lecturer (projector) mode, where every text is at least 20 px.

Two families of charts keep the sizes they were tuned with:

- the **run** charts (training curves, per-pair grid, answer histogram, phase diagram, class
  answers), drawn one or two to a row: legend on the right, or under the plot with large fonts
  (at 20 px a long label on the right ate a half-width plot);
- the **dense** charts of Inside the model (``dense=True``; probes and replay): small multiples
  with 11 px labels, a base ``size`` and ``mark`` size, and single views that stretch to their
  column (autosize ``fit-x``) while facets and concatenations pad.
"""
from __future__ import annotations

from typing import Any

import altair as alt

# Font sizes (px) and base chart sizes, per family and mode.
FONTS = {
    # run charts: label, title, legend, text sizes and the chart height
    (False, False): {"label": 12, "title": 13, "legend": 12, "text": 13, "height": 300},
    # (large: the plot's own height, its axes and legend below it; normal: the whole chart's)
    (False, True): {"label": 20, "title": 22, "legend": 20, "text": 22, "height": 280},
    # dense (Inside the model): label, title, text sizes, the base chart size and the point size
    (True, False): {"label": 11, "title": 13, "text": 12, "size": 300, "mark": 40},
    (True, True): {"label": 20, "title": 22, "text": 20, "size": 420, "mark": 90},  # ≥ 20 px: a lecture room's back
}


def fonts(large: bool = False, dense: bool = False) -> dict[str, int]:
    """Font sizes (px) and base sizes for normal and lecturer (projector) mode."""
    return dict(FONTS[(bool(dense), bool(large))])


def style(chart: Any, large: bool = False, dense: bool = False) -> Any:
    """Apply the shared fonts to a finished chart (it must be the outermost chart)."""
    f = fonts(large, dense)
    # Single views autosize fit-x with padding: Streamlit stretches their width to the column,
    # while the height stays the plot's own (legends and titles are added to it, not squeezed
    # out of it: a three-line legend under the accuracy chart had shrunk its plot to two thirds
    # of the loss chart's beside it). Facets cannot fit, so they pad.
    # (Run charts with normal fonts keep Streamlit's own sizing: their legends sit on the right.)
    if dense or large:
        kind = "pad" if isinstance(chart, (alt.FacetChart, alt.HConcatChart, alt.VConcatChart, alt.ConcatChart)) \
            else "fit-x"
        chart = chart.properties(autosize=alt.AutoSizeParams(type=kind, contains="padding"))
    if dense:
        legend: dict[str, Any] = {"labelFontSize": f["label"]}
        title = f["title"] + 1
    else:
        # Large fonts: legends under the plot, one entry a line. On the right, a long label at 20 px
        # ate the plot of a half-width column (the accuracy chart shrank to ~40 px at 1280 px).
        legend = {"labelFontSize": f["legend"]}
        legend.update({"orient": "bottom", "direction": "vertical"}
                      if large else {"orient": "right"})
        title = f["title"] + 2
    return (chart.configure_axis(labelFontSize=f["label"], titleFontSize=f["title"])
            .configure_legend(titleFontSize=f["title"], labelLimit=0, **legend)
            .configure_header(labelFontSize=f["title"], titleFontSize=f["title"])
            .configure_title(fontSize=title, anchor="start")
            .configure_view(strokeWidth=0))

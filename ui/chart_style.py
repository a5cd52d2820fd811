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

import textwrap
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


# Large fonts in a half-width column (~430 px at 1280 px): a line of chart text holds about this
# many characters; longer titles, subtitles and legend labels wrap instead of being cut.
WRAP_TITLE, WRAP_LABEL = 34, 28
_LEGEND_CHANNELS = ("color", "fill", "stroke", "shape", "strokeDash", "size", "opacity")


def _cut(line: str, width: int) -> list[str]:
    """``line`` in pieces of at most ``width`` characters, cut at spaces; each piece but the last
    keeps a trailing space (so the pieces joined read as the line: SVG text, screen readers)."""
    if len(line) <= width:
        return [line]
    pieces = textwrap.wrap(line, width) or [line]
    return [p + " " for p in pieces[:-1]] + [pieces[-1] + (" " if line.endswith(" ") else "")]


def _wrap_text(text: Any, width: int) -> Any:
    """A title or subtitle (a string or a list of lines) with every line longer than ``width``
    cut into lines (lines that fit are kept as they are)."""
    if isinstance(text, str):
        return text if len(text) <= width else _cut(text, width)
    if isinstance(text, (list, tuple)):
        return [piece for t in text for piece in _cut(str(t), width)]
    return text


def _label_expr(width: int) -> str:
    """A Vega expression cutting a legend label longer than ``width`` into two or three lines at spaces."""
    def cut(s: str) -> str:
        return f"lastindexof(slice({s}, 0, {width}), ' ')"
    rest = f"slice(datum.label, {cut('datum.label')} + 1)"
    return (f"length(datum.label) <= {width} ? datum.label : "
            f"length({rest}) <= {width} ? [slice(datum.label, 0, {cut('datum.label')}), {rest}] : "
            f"[slice(datum.label, 0, {cut('datum.label')}), slice({rest}, 0, {cut(rest)}), slice({rest}, {cut(rest)} + 1)]")


def _fit_column(chart: Any) -> None:
    """In place, for large fonts: wrap every title and subtitle, give every legend one entry a
    line and wrap its long labels (at 20 px, a 4-column legend or a 40-character label ran past a
    half-width column and was cut: "(4,3) as x−10: inferential (both sp")."""
    title = getattr(chart, "title", alt.Undefined)
    if isinstance(title, (str, list)):
        chart.title = alt.TitleParams(text=_wrap_text(title, WRAP_TITLE))
    elif isinstance(title, alt.TitleParams):
        title.text = _wrap_text(title.text, WRAP_TITLE)
        if title.subtitle is not alt.Undefined:
            title.subtitle = _wrap_text(title.subtitle, WRAP_TITLE + 6)
    enc = getattr(chart, "encoding", alt.Undefined)
    if enc is not alt.Undefined:
        for ch in _LEGEND_CHANNELS:
            e = getattr(enc, ch, alt.Undefined)
            # a channel's ``legend`` attribute is Altair's setter method: read its value from the schema
            kwds = getattr(e, "_kwds", None)
            if kwds is None or "legend" not in kwds or kwds["legend"] is None:
                continue
            current = kwds["legend"]
            legend = current.to_dict() if current is not alt.Undefined else {}
            if legend.get("direction") == "horizontal" and "columns" not in legend:
                continue  # a builder's deliberate one-line legend of short words (a colour bar, 3 kinds)
            legend.update(columns=1, direction="vertical", labelExpr=legend.get("labelExpr", _label_expr(WRAP_LABEL)))
            kwds["legend"] = alt.Legend(**legend)
    for attr in ("layer", "hconcat", "vconcat", "concat"):
        for sub in getattr(chart, attr, None) or []:
            if not isinstance(sub, dict):
                _fit_column(sub)
    spec = getattr(chart, "spec", alt.Undefined)
    if spec is not alt.Undefined and not isinstance(spec, dict):
        _fit_column(spec)


def style(chart: Any, large: bool = False, dense: bool = False) -> Any:
    """Apply the shared fonts to a finished chart (it must be the outermost chart). With large
    fonts, titles and legend labels also wrap to fit a half-width column (``_fit_column``)."""
    f = fonts(large, dense)
    if large:
        chart = chart.copy(deep=True)
        _fit_column(chart)
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

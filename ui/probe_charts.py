"""Altair builders for the "Inside the model" page: one function per chart.

Each builder takes numpy arrays (from ``core.probes``) and returns ``(chart, frame)``: the chart
and the exact data it draws, so the page can offer that data as CSV. Every builder takes
``large`` (projector mode: bigger fonts and marks, sized by ``ui.chart_style``). Colours come
from ``ui.palette`` and mean what they mean on every page: inferential route blue, symmetric
route vermillion, runs by their verdict (``palette.run_colours``), seen pairs black; series of
no outcome (eigenvalue indices, complexity measures) take neutral colours. Viridis for
attention, the blue–orange diverging scheme for cosine similarity. Builders drawn once per run
take shared domains, so two runs compared side by side are read on the same axes.
Data go inline and unlimited (``alt.data_transformers.disable_max_rows``): the largest
frames are a 192×192 similarity matrix (37k rows) and 10,000-point projections, which
Streamlit ships as Arrow anyway.
"""
from __future__ import annotations

import math
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from . import chart_style, palette

alt.data_transformers.disable_max_rows()

INFERENTIAL = palette.INFERENTIAL  # the inferential route
SYMMETRIC = palette.SYMMETRIC      # the symmetric route
OTHER = palette.LIGHT
BLACK = palette.SEEN
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#000000"]
GREYS = ["#333333", "#666666", "#999999", "#BBBBBB", "#555555", "#888888"]


def _lighten(hex_colour: str, amount: float = 0.55) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    mix = [round(c + (255 - c) * amount) for c in (r, g, b)]
    return "#" + "".join(f"{c:02X}" for c in mix)


def pair_palette(anchors: list[int]) -> tuple[list[str], list[str], list[str]]:
    """Pair labels, colours and shapes: (a, b) and (b, a) in two shades of one Okabe–Ito hue
    (a < b dark circle, a > b light triangle), (a, a) in greys as squares."""
    labels, colours, shapes = [], [], []
    k = 0
    for i, a in enumerate(anchors):
        for b in anchors[i + 1:]:
            hue = OKABE_ITO[k % 6]
            labels += [f"({a},{b})", f"({b},{a})"]
            colours += [hue, _lighten(hue)]
            shapes += ["circle", "triangle-up"]
            k += 1
    for j, a in enumerate(anchors):
        labels.append(f"({a},{a})")
        colours.append(GREYS[j % len(GREYS)])
        shapes.append("square")
    return labels, colours, shapes


# -- view 1: attention and information flow ---------------------------------------------------
def token_labels(tokens: list[int], roles: list[str]) -> list[str]:
    short = {"key": "key", "anchor 1": "a1", "anchor 2": "a2"}
    return [f"{q}: {t}" + (f" ({short[r]})" if r in short else "") for q, (t, r) in enumerate(zip(tokens, roles))]


def attention_heatmaps(attn: np.ndarray, tokens: list[int], roles: list[str], large: bool = False,
                       head: int | None = None, columns: int | None = None,
                       size: int | None = None) -> tuple[Any, pd.DataFrame]:
    """One heatmap per layer (``columns`` per row, default all side by side): row = query
    position k, column = attended position j, colour = Attn(l)[k, j] (mean over heads unless
    ``head`` is given)."""
    a = attn.mean(axis=1) if head is None else attn[:, head]
    L, T, _ = a.shape
    labels = token_labels(tokens, roles)
    ll, kk, jj = np.meshgrid(np.arange(L), np.arange(T), np.arange(T), indexing="ij")
    frame = pd.DataFrame({"layer": ll.ravel() + 1, "query": np.array(labels)[kk.ravel()],
                          "key": np.array(labels)[jj.ravel()], "weight": a.ravel().round(4)})
    frame = frame[kk.ravel() >= jj.ravel()]
    f = chart_style.fonts(large, dense=True)
    base = alt.Chart(frame).encode(
        x=alt.X("key:O", sort=labels, title="attends to position j", axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("query:O", sort=labels, title="position k"),
    )
    rect = base.mark_rect().encode(
        color=alt.Color("weight:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]), title="Attn"),
        tooltip=["layer", "query", "key", alt.Tooltip("weight:Q", format=".3f")])
    text = base.mark_text(fontSize=f["text"] - (0 if large else 3)).encode(
        text=alt.Text("weight:Q", format=".2f"),
        color=alt.condition("datum.weight > 0.5", alt.value("black"), alt.value("white")))
    size = size or f["size"]
    chart = alt.layer(rect, text).properties(width=size, height=size).facet(
        facet=alt.Facet("layer:O", title="layer"), columns=columns or L)
    return chart_style.style(chart, large, dense=True), frame


ROUTE_COLOURS = {"inferential route": INFERENTIAL, "symmetric route": SYMMETRIC, "other": OTHER}


def flow_route(layer: int, n_layers: int, src: str, dst: str) -> str:
    """Which solution of [INIT] Fig. 3 uses this edge: inferential (layer 1 key → anchors,
    last layer anchors → last) or symmetric (layer 1 anchors → last, last layer key → last)."""
    anchors = src in ("anchor 1", "anchor 2", "anchor 2 (last)")
    to_last = dst in ("last", "anchor 2 (last)")
    if layer == 1 and src == "key" and dst in ("anchor 1", "anchor 2", "anchor 2 (last)"):
        return "inferential route"
    if layer == n_layers and anchors and to_last and src != dst:
        return "inferential route"
    if layer == 1 and anchors and to_last and src != dst and n_layers > 1:
        return "symmetric route"
    if layer == n_layers and src == "key" and to_last:
        return "symmetric route"
    return "other"


def spaced_labels(lab: pd.DataFrame, gap: float = 1.0) -> list[Any]:
    """The index of the edge labels to print: heaviest first, a label is kept only when no kept
    label of the same layer sits within ``gap`` token rows of it (all labels of a layer share one
    x, so closer ones print on top of each other: "0.83" over "0.15" on a projector). The number
    of every edge stays in its tooltip."""
    kept: list[Any] = []
    rows: dict[Any, list[float]] = {}
    for i, r in lab.sort_values("weight", ascending=False, kind="stable").iterrows():
        near = rows.setdefault(r["layer"], [])
        if all(abs(r["my"] - m) >= gap for m in near):
            near.append(r["my"])
            kept.append(i)
    return kept


def flow_diagram(flow: dict[str, Any], tokens: list[int], large: bool = False,
                 label_min: float = 0.1) -> tuple[Any, pd.DataFrame]:
    """Information flow ([INIT] Fig. 3a,c): tokens in columns (input, after layer 1, …), an
    edge from j (column l-1) to k (column l) as thick as Attn(l)[k, j]. Edges of the two
    routes are coloured and labelled with their weight when ≥ ``label_min`` and no heavier
    label of its layer sits within a token row (``spaced_labels``)."""
    e, roles = flow["edges"], flow["roles"]
    L = int(e["layer"].max())
    T = len(tokens)
    frame = pd.DataFrame({"layer": e["layer"], "src": e["src"], "dst": e["dst"], "weight": e["weight"].round(4)})
    frame["x"], frame["x2"] = frame["layer"] - 1, frame["layer"]
    frame["from"] = [roles[j] for j in frame["src"]]
    frame["to"] = [roles[k] for k in frame["dst"]]
    frame["route"] = [flow_route(l, L, s, d) for l, s, d in zip(frame["layer"], frame["from"], frame["to"])]
    frame["edge"] = [f"layer {l}: {s} → {d}" for l, s, d in zip(frame["layer"], frame["from"], frame["to"])]
    frame = frame.sort_values(["route", "weight"], key=lambda c: c.map({"other": 0}).fillna(1) if c.name == "route" else c)
    f = chart_style.fonts(large, dense=True)
    width, height = f["size"] * 1.6, f["size"] * 1.1
    y = alt.Y("src:Q", scale=alt.Scale(domain=[T - 0.5, -1.2]), axis=None)
    x = alt.X("x:Q", scale=alt.Scale(domain=[-0.7, L + 0.3]), axis=None)
    route_scale = alt.Scale(domain=list(ROUTE_COLOURS), range=list(ROUTE_COLOURS.values()))
    colour = alt.Color("route:N", scale=route_scale, title="edge", legend=alt.Legend(orient="bottom"))
    edges = alt.Chart(frame[frame["weight"] > 0.01]).mark_rule(strokeCap="round").encode(
        x=x, x2="x2:Q", y=y, y2="dst:Q", color=colour,
        strokeWidth=alt.StrokeWidth("weight:Q", scale=alt.Scale(domain=[0, 1], range=[0, 14 if large else 10]),
                                    legend=None),
        opacity=alt.condition("datum.route == 'other'", alt.value(0.55), alt.value(0.95)),
        tooltip=["edge", alt.Tooltip("weight:Q", format=".3f")])
    lab = frame[(frame["route"] != "other") & (frame["weight"] >= label_min)].copy()
    lab["mx"] = lab["x"] + 0.5
    lab["my"] = (lab["src"] + lab["dst"]) / 2
    lab = lab.loc[spaced_labels(lab)]
    lab["text"] = [f"{w:.2f}" for w in lab["weight"]]
    lab_enc = {"x": alt.X("mx:Q", scale=alt.Scale(domain=[-0.7, L + 0.3]), axis=None),
               "y": alt.Y("my:Q", scale=alt.Scale(domain=[T - 0.5, -1.2]), axis=None), "text": "text:N"}
    halo = alt.Chart(lab).mark_text(fontSize=f["text"], fontWeight="bold", dy=-8, stroke="white", strokeWidth=4,
                                    color="white").encode(**lab_enc)
    labels = alt.Chart(lab).mark_text(fontSize=f["text"], fontWeight="bold", dy=-8).encode(
        **lab_enc, color=alt.Color("route:N", scale=route_scale, legend=None))
    nodes = pd.DataFrame([{"x": c, "src": q, "token": str(tokens[q]), "role": roles[q]}
                          for c in range(L + 1) for q in range(T)])
    dots = alt.Chart(nodes).mark_circle(size=f["mark"] * 3, color="white", stroke=BLACK, strokeWidth=1.5,
                                        opacity=1).encode(x=x, y=y, tooltip=["role", "token"])
    names = alt.Chart(nodes[nodes["x"] == 0]).mark_text(align="right", dx=-14, fontSize=f["text"]).encode(
        x=x, y=y, text="label:N").transform_calculate(label="datum.token + '  ' + datum.role")
    heads = pd.DataFrame({"x": list(range(L + 1)), "src": [-0.9] * (L + 1),
                          # large fonts: the short form, or neighbouring headers overlap in a half-width column
                          "label": ["input"] + [f"layer {l}" if large else f"after layer {l}" for l in range(1, L + 1)]})
    header = alt.Chart(heads).mark_text(fontSize=f["text"], fontWeight="bold").encode(
        x=x, y=y, text="label:N")
    # layer order matters: Streamlit 1.67 drew nothing when the text layer came first
    chart = alt.layer(edges, dots, names, header, halo, labels).properties(width=width, height=height)
    return chart_style.style(chart, large, dense=True), frame.drop(columns=["x", "x2"])


def prediction_bars(top: list[tuple[int, float]], inferential: int, symmetric: int, p_inf: float, p_sym: float,
                    large: bool = False) -> tuple[Any, pd.DataFrame]:
    """Top-5 next-token probabilities, the inferential and symmetric targets marked."""
    rows = [{"token": str(t), "probability": p} for t, p in top]
    shown = {r["token"] for r in rows}
    for t, p in ((inferential, p_inf), (symmetric, p_sym)):
        if str(t) not in shown:
            rows.append({"token": str(t), "probability": p})
    frame = pd.DataFrame(rows).sort_values("probability", ascending=False)
    frame["is"] = ["inferential target" if int(t) == inferential else "symmetric target" if int(t) == symmetric
                   else "other" for t in frame["token"]]
    f = chart_style.fonts(large, dense=True)
    colour = alt.Color("is:N", scale=alt.Scale(domain=["inferential target", "symmetric target", "other"],
                                               range=[INFERENTIAL, SYMMETRIC, OTHER]), title=None,
                       legend=alt.Legend(orient="bottom"))
    order = frame["token"].tolist()
    base = alt.Chart(frame).encode(
        y=alt.Y("token:N", sort=order, title="token"),
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1.15]), title="probability",
                axis=alt.Axis(values=[0, 0.2, 0.4, 0.6, 0.8, 1.0])))
    bars = base.mark_bar().encode(color=colour, tooltip=["token", alt.Tooltip("probability:Q", format=".3f"), "is"])
    text = base.mark_text(align="left", dx=3, fontSize=f["text"]).encode(text=alt.Text("probability:Q", format=".2f"))
    chart = alt.layer(bars, text, title="Prediction at the last position").properties(
        width=f["size"] * 0.9, height=alt.Step(f["text"] * 2))
    return chart_style.style(chart, large, dense=True), frame


# -- view 2: fused representations -------------------------------------------------------------
def highlight_palette(anchors: list[int], pair: tuple[int, int] = (4, 3)) -> tuple[list[str], list[str], list[str]]:
    """Labels, colours and shapes that set the held-out ``pair`` (reddish purple, triangles) and its
    mirror (vermillion, the overridden pair's colour, circles) against every other pair (light
    grey): is (4,3) drawn on top of (3,4)?"""
    labels, _, shapes = pair_palette(anchors)
    a, b = pair
    focus = {f"({a},{b})": palette.HELD_OUT, f"({b},{a})": palette.SYMMETRIC}
    colours = [focus.get(lab, palette.LIGHT) for lab in labels]
    return labels, colours, shapes


def pair_scatter(xy: np.ndarray, a1: np.ndarray, a2: np.ndarray, anchors: list[int], title: str,
                 large: bool = False, highlight: tuple[int, int] | None = None,
                 x_domain: list[float] | None = None, y_domain: list[float] | None = None) -> tuple[Any, pd.DataFrame]:
    """2-D projection coloured by anchor pair, symmetric pairs in two shades of one hue; with
    ``highlight`` (a held-out pair), that pair and its mirror against the rest in grey
    (``highlight_palette``), drawn on top. ``x_domain``/``y_domain``: shared axes in compare mode."""
    frame = pd.DataFrame({"x": xy[:, 0].round(4), "y": xy[:, 1].round(4),
                          "pair": [f"({a},{b})" for a, b in zip(a1.tolist(), a2.tolist())]})
    if highlight is not None:
        labels, colours, shapes = highlight_palette(anchors, highlight)
        focus = {f"({highlight[0]},{highlight[1]})", f"({highlight[1]},{highlight[0]})"}
        frame["_on_top"] = frame["pair"].isin(focus).astype(int)
        frame = frame.sort_values("_on_top", kind="stable").drop(columns="_on_top")
    else:
        labels, colours, shapes = pair_palette(anchors)
    f = chart_style.fonts(large, dense=True)
    sx = alt.Scale(domain=x_domain) if x_domain else alt.Scale()
    sy = alt.Scale(domain=y_domain) if y_domain else alt.Scale()
    size = alt.value(f["mark"] * 0.7)
    if highlight is not None:  # the two pairs of interest bigger than the grey rest
        size = alt.condition(alt.FieldOneOfPredicate(field="pair", oneOf=sorted(focus)), alt.value(f["mark"] * 1.6),
                             alt.value(f["mark"] * 0.5))
    chart = alt.Chart(frame, title=title).mark_point(filled=True, opacity=0.8).encode(
        size=size,
        x=alt.X("x:Q", title="component 1", axis=alt.Axis(labels=False, ticks=False), scale=sx),
        y=alt.Y("y:Q", title="component 2", axis=alt.Axis(labels=False, ticks=False), scale=sy),
        color=alt.Color("pair:N", scale=alt.Scale(domain=labels, range=colours), title="anchor pair",
                        legend=alt.Legend(orient="bottom", columns=4, symbolSize=f["mark"] * 2)),
        shape=alt.Shape("pair:N", scale=alt.Scale(domain=labels, range=shapes), title="anchor pair"),
        tooltip=["pair"]).properties(width=f["size"], height=f["size"])  # data order: highlighted pairs last, on top
    return chart_style.style(chart, large, dense=True), frame


def shared_domain(*arrays: np.ndarray, pad: float = 0.05) -> list[float] | None:
    """``[lo, hi]`` over every array (with a margin): one axis for charts compared side by side."""
    vals = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays if np.size(a)]) if arrays else np.array([])
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return None
    lo, hi = float(vals.min()), float(vals.max())
    m = (hi - lo) * pad or 1.0
    return [round(lo - m, 4), round(hi + m, 4)]


# -- view 3: same-output similarity -----------------------------------------------------------
def similarity_triangles(keys: list[int], lower: dict[str, Any], upper: dict[str, Any], lower_name: str,
                         upper_name: str, large: bool = False) -> tuple[Any, pd.DataFrame]:
    """[INIT] Fig. 4 layout: row x1, column x2; below the diagonal the first comparison, above
    it the second; cells whose targets are equal are outlined."""
    K = len(keys)
    ii, jj = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")
    below = ii >= jj
    sim = np.where(below, lower["sim"], upper["sim"])
    eq = np.where(below, lower["equal"], upper["equal"])
    frame = pd.DataFrame({"x1": np.asarray(keys)[ii.ravel()], "x2": np.asarray(keys)[jj.ravel()],
                          "cosine": sim.ravel().round(4), "equal_target": eq.ravel(),
                          "comparison": np.where(below.ravel(), lower_name, upper_name)})
    f = chart_style.fonts(large, dense=True)
    size = f["size"] * 1.1
    base = alt.Chart(frame).encode(
        x=alt.X("x2:O", title="x2 (key of the second vector)"),
        y=alt.Y("x1:O", title="x1 (key of the first vector)"))
    rect = base.mark_rect().encode(
        color=alt.Color("cosine:Q", scale=alt.Scale(scheme="purplegreen", domain=[-1, 1]), title="cos"),
        tooltip=["comparison", "x1", "x2", alt.Tooltip("cosine:Q", format=".3f"), "equal_target"])
    boxes = base.transform_filter("datum.equal_target").mark_rect(
        fill=None, stroke=BLACK, strokeWidth=3 if large else 2)
    diag = pd.DataFrame({"x1": keys, "x2": keys})
    title = alt.TitleParams(f"below diagonal: {lower_name}", subtitle=[f"above: {upper_name}"],
                            subtitleFontSize=f["title"])
    chart = alt.layer(rect, boxes, alt.Chart(diag).mark_point(shape="cross", size=8, color="#777777").encode(
        x="x2:O", y="x1:O"), title=title).properties(width=size, height=size)
    return chart_style.style(chart, large, dense=True), frame


# -- view 4: condensation ---------------------------------------------------------------------
def condensation_heatmap(c: dict[str, Any], title: str, large: bool = False) -> tuple[Any, pd.DataFrame]:
    """Cosine similarity of neuron input-weight vectors, neurons reordered so groups (cos >
    threshold) are adjacent and outlined ([INIT] Fig. 5a,b)."""
    sim, order = c["sim"], c["order"]
    n = sim.shape[0]
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    frame = pd.DataFrame({"row": ii.ravel(), "col": jj.ravel(), "cosine": sim.ravel().round(3),
                          "neuron_row": order[ii.ravel()], "neuron_col": order[jj.ravel()]})
    frame["row2"], frame["col2"] = frame["row"] + 1, frame["col"] + 1
    f = chart_style.fonts(large, dense=True)
    size = f["size"] * 1.1
    sc = alt.Scale(domain=[0, n], nice=False)
    ticks = alt.Axis(format="d", tickMinStep=1)  # neuron positions are whole numbers
    rect = alt.Chart(frame).mark_rect().encode(
        x=alt.X("col:Q", scale=sc, title="neuron (reordered)", axis=ticks), x2="col2:Q",
        y=alt.Y("row:Q", scale=alt.Scale(domain=[n, 0], nice=False), title="neuron (reordered)", axis=ticks),
        y2="row2:Q",
        color=alt.Color("cosine:Q", scale=alt.Scale(scheme="purplegreen", domain=[-1, 1]), title="cos"),
        tooltip=["neuron_row", "neuron_col", alt.Tooltip("cosine:Q", format=".3f")])
    blocks = pd.DataFrame([{"s": s, "e": e, "group": g + 1, "size": e - s} for g, (s, e) in enumerate(c["blocks"])],
                          columns=["s", "e", "group", "size"])
    boxes = alt.Chart(blocks).mark_rect(fill=None, stroke=BLACK, strokeWidth=2).encode(
        x=alt.X("s:Q", scale=sc, axis=ticks), x2="e:Q",
        y=alt.Y("s:Q", scale=alt.Scale(domain=[n, 0], nice=False), axis=ticks), y2="e:Q",
        tooltip=["group:Q", "size:Q"])
    noun = "group" if c["n_groups"] == 1 else "groups"
    # two subtitle lines: one line was cut ("…") in a half-width column at large fonts. The first
    # ends with a space: the SVG's text (copied, read aloud, exported) joins the lines as they are
    sub = [f"{c['n_groups']} {noun} of ≥ 2 neurons at cos > {c['threshold']:g}; ",
           f"{c['share_in_groups']:.0%} of {n} neurons in groups, largest {c['largest_group_share']:.0%}"]
    chart = alt.layer(rect, boxes, title=alt.TitleParams(title, subtitle=sub, subtitleFontSize=f["label"] + 1)
                      ).properties(width=size, height=size)
    return chart_style.style(chart, large, dense=True), frame.drop(columns=["row2", "col2"])


# -- view 5: embeddings -----------------------------------------------------------------------
def embedding_scatter(xy: np.ndarray, tokens: np.ndarray, title: str, subtitle: str,
                      large: bool = False) -> tuple[Any, pd.DataFrame]:
    """Item embeddings in 2-D coloured by token value (viridis), every 10th token labelled."""
    frame = pd.DataFrame({"x": xy[:, 0].round(4), "y": xy[:, 1].round(4), "token": tokens.astype(int)})
    f = chart_style.fonts(large, dense=True)
    base = alt.Chart(frame).encode(x=alt.X("x:Q", title="component 1"), y=alt.Y("y:Q", title="component 2"))
    pts = base.mark_circle(size=f["mark"] * 1.5, opacity=0.9).encode(
        color=alt.Color("token:Q", scale=alt.Scale(scheme="viridis"), title="token value"), tooltip=["token"])
    tens = base.transform_filter("datum.token % 10 == 0")
    # a white halo under each label: on a crowded cloud the numbers were drawn over points and lines
    halo = tens.mark_text(dy=-10, fontSize=f["text"], stroke="white", strokeWidth=3, strokeJoin="round").encode(text="token:Q")
    text = tens.mark_text(dy=-10, fontSize=f["text"]).encode(text="token:Q")
    ring = tens.mark_point(size=f["mark"] * 1.5, filled=False, color=BLACK, strokeWidth=1)  # the labelled points
    path = base.mark_line(color="#999999", strokeWidth=0.7, opacity=0.5).encode(order="token:Q")
    chart = alt.layer(path, pts, ring, halo, text, title=alt.TitleParams(title, subtitle=[subtitle], subtitleFontSize=f["label"] + 1)
                      ).properties(width=f["size"], height=f["size"])
    return chart_style.style(chart, large, dense=True), frame


# -- view 6: spectra --------------------------------------------------------------------------
def _decades(values: pd.Series) -> alt.Axis:
    """A log axis labelled at the powers of ten that span ``values`` (Vega's own ticks on a short
    plot read 0.4, 0.05, 0.01, with no 1 at the top)."""
    v = values[values > 0]
    if not len(v):
        return alt.Axis()
    lo, hi = math.floor(math.log10(float(v.min()))), math.ceil(math.log10(float(v.max())))
    return alt.Axis(values=[10.0 ** k for k in range(lo, hi + 1)], format="~g")


def spectrum_lines(curves: dict[str, np.ndarray], title: str, large: bool = False, top: int | None = None,
                   y_title: str = "eigenvalue", colours: list[str] | None = None,
                   outcomes: list[str | None] | None = None) -> tuple[Any, pd.DataFrame]:
    """One line per run: values against their index (1 = largest), log scale. Each run is coloured
    by its verdict, ``outcomes`` in ``curves`` order (``palette.run_colours``: symmetric vermillion,
    inferential blue, whatever its place); ``colours`` overrides; neither: grey."""
    rows = []
    for run, v in curves.items():
        v = np.asarray(v)[:top] if top else np.asarray(v)
        rows += [{"run": run, "index": i + 1, "value": float(x)} for i, x in enumerate(v) if x > 0]
    frame = pd.DataFrame(rows, columns=["run", "index", "value"])
    f = chart_style.fonts(large, dense=True)
    runs = list(curves)
    chart = alt.Chart(frame, title=title).mark_line(point=True, strokeWidth=3 if large else 2).encode(
        x=alt.X("index:Q", title="index (largest first)"),
        y=alt.Y("value:Q", scale=alt.Scale(type="log"), title=y_title, axis=_decades(frame["value"])),
        color=alt.Color("run:N", scale=alt.Scale(domain=runs, range=_run_range(runs, colours, outcomes)),
                        title="run", legend=alt.Legend(orient="bottom", direction="vertical")),
        strokeDash=alt.StrokeDash("run:N", legend=None),
        tooltip=["run", "index", alt.Tooltip("value:Q", format=".4g")]).properties(
        width=f["size"] * 1.4, height=f["size"])
    return chart_style.style(chart, large, dense=True), frame


def _run_range(runs: list[str], colours: list[str] | None, outcomes: list[str | None] | None) -> list[str]:
    if colours:
        return list(colours)[:len(runs)]
    return palette.run_colours(list(outcomes or [None] * len(runs))[:len(runs)])


def singular_value_grid(per_run: dict[str, dict[str, np.ndarray]], labels: dict[str, str], large: bool = False,
                        columns: int = 3, outcomes: list[str | None] | None = None,
                        y_title: str = "singular value") -> tuple[Any, pd.DataFrame]:
    """Small multiples: singular values of each linear layer, one line per run coloured by its
    verdict (``outcomes``, as ``spectrum_lines``), log scale with ticks at whole decades."""
    rows = []
    for run, svs in per_run.items():
        for name, sv in svs.items():
            rows += [{"run": run, "weight": labels.get(name, name), "index": i + 1, "singular_value": float(s)}
                     for i, s in enumerate(sv) if s > 0]
    frame = pd.DataFrame(rows, columns=["run", "weight", "index", "singular_value"])
    f = chart_style.fonts(large, dense=True)
    runs = list(per_run)
    order = list(dict.fromkeys(frame["weight"]))
    chart = alt.Chart(frame).mark_line(strokeWidth=2.5 if large else 1.8).encode(
        x=alt.X("index:Q", title="index"),
        y=alt.Y("singular_value:Q", scale=alt.Scale(type="log"), title=y_title, axis=_decades(frame["singular_value"])),
        color=alt.Color("run:N", scale=alt.Scale(domain=runs, range=_run_range(runs, None, outcomes)), title="run",
                        legend=alt.Legend(orient="bottom", direction="vertical")),
        strokeDash=alt.StrokeDash("run:N", legend=None),
        tooltip=["run", "weight", "index", alt.Tooltip("singular_value:Q", format=".4g")],
    ).properties(width=f["size"] * 0.75, height=f["size"] * 0.5).facet(
        facet=alt.Facet("weight:N", sort=order, title=None), columns=columns).resolve_scale(x="independent")
    return chart_style.style(chart, large, dense=True), frame


# -- view 7: over training --------------------------------------------------------------------
def snapshot_lines(frame: pd.DataFrame, value: str, series: str, title: str, epoch: float, log: bool = False,
                   large: bool = False, y_title: str | None = None, colours: dict[str, str] | None = None,
                   x_domain: list[float] | None = None, y_domain: list[float] | None = None) -> Any:
    """Lines over epochs (one per ``series``) with a rule at the selected ``epoch``.

    ``colours``: series -> colour (the views pass the mapping colours for accuracies and neutral
    ones for everything else); series without one take neutral colours, never the routes'.
    ``x_domain``/``y_domain``: shared axes when two runs are compared."""
    f = chart_style.fonts(large, dense=True)
    names = list(dict.fromkeys(frame[series]))
    colours = dict(colours or {})
    spare = iter(c for c in palette.NEUTRAL if c not in colours.values())
    rng = [colours.get(n) or next(spare, palette.OTHER) for n in names]
    ys = alt.Scale(type="log") if log else alt.Scale()
    if y_domain:
        ys = alt.Scale(type="log", domain=y_domain) if log else alt.Scale(domain=y_domain)
    line = alt.Chart(frame, title=title).mark_line(strokeWidth=2.5 if large else 1.8).encode(
        x=alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=x_domain, nice=False) if x_domain else alt.Scale()),
        y=alt.Y(f"{value}:Q", scale=ys, title=y_title or value),
        color=alt.Color(f"{series}:N", scale=alt.Scale(domain=names or [""], range=rng or [palette.OTHER]),
                        legend=alt.Legend(orient="bottom", columns=4)),
        tooltip=["epoch", series, alt.Tooltip(f"{value}:Q", format=".4g")])
    rule = alt.Chart(pd.DataFrame({"epoch": [epoch]})).mark_rule(color=BLACK, strokeDash=[4, 3],
                                                                 strokeWidth=2).encode(x="epoch:Q")
    chart = alt.layer(line, rule).properties(width=f["size"] * 1.4, height=f["size"] * 0.8)
    return chart_style.style(chart, large, dense=True)


def eigen_bars(values: list[float], title: str, large: bool = False,
               y_domain: list[float] | None = None) -> tuple[Any, pd.DataFrame]:
    """The top eigenvalues at one epoch, in the eigenvalue lines' grey ramp (not a route colour)."""
    frame = pd.DataFrame({"index": np.arange(1, len(values) + 1), "eigenvalue": values})
    f = chart_style.fonts(large, dense=True)
    ramp = palette.grey_ramp(len(values))
    chart = alt.Chart(frame, title=title).mark_bar().encode(
        x=alt.X("index:O", title="eigenvalue index"),
        y=alt.Y("eigenvalue:Q", title="eigenvalue", scale=alt.Scale(domain=y_domain) if y_domain else alt.Scale()),
        color=alt.Color("index:O", scale=alt.Scale(domain=list(frame["index"]) or [1], range=ramp or ["#000000"]),
                        legend=None),
        tooltip=["index", alt.Tooltip("eigenvalue:Q", format=".4g")]).properties(
        width=f["size"] * 0.9, height=f["size"] * 0.8)
    return chart_style.style(chart, large, dense=True), frame


# -- view: answers by key position -------------------------------------------------------------
def offset_label(offset: int) -> str:
    """``-10`` → ``"x−10"`` (typographic minus), ``0`` → ``"x"``."""
    return "x" if offset == 0 else f"x{offset:+d}".replace("-", "−")


def answer_labels(d: dict[str, Any]) -> list[str]:
    """One legend label per column of ``core.probes.answers_by_key_position``: the inferential
    answer "(composes)", the symmetric one "(copies (b,a))", other named offsets as they are, and
    "any other answer"; an other offset that is a seen pair's answer names it ("x−16 (= (4,4))")."""
    a, b = d["pair"]
    out = []
    for o in d["offsets"]:
        seen = d.get("answer_of", {}).get(o, [])
        role = (" (composes)" if o == d["inferential"] else f" (copies ({b},{a}))" if o == d["symmetric"]
                else " (= " + ", ".join(f"({p},{q})" for p, q in seen[:2]) + ")" if seen else "")
        out.append(offset_label(o) + role)
    return out + ["any other answer"]


ANSWER_GREYS = ["#3D3D3D", "#6E6E6E", "#999999", "#B3B3B3"]  # other named answers, most common first
ANSWER_REST = "#DDDDDD"                                        # any other answer


def answer_greys(ds: list[dict[str, Any]]) -> dict[int, str]:
    """One grey per "other" named offset over every run shown (``answers_by_key_position`` results),
    darker for the more common over all of them, so an answer keeps its grey across side-by-side
    panels (x−16 in one and x−13 in the other no longer share the darkest)."""
    total: dict[int, float] = {}
    for d in ds:
        for o, share in zip(d["offsets"], d["overall"]):
            if o not in (d["inferential"], d["symmetric"]):
                total[o] = total.get(o, 0.0) + share
    order = sorted(total, key=lambda o: (-total[o], o))
    return {o: ANSWER_GREYS[min(i, len(ANSWER_GREYS) - 1)] for i, o in enumerate(order)}


def answer_position_bars(d: dict[str, Any], large: bool = False,
                         greys: dict[int, str] | None = None) -> tuple[Any, pd.DataFrame]:
    """One stacked bar per key position: the share of each answer to the held-out pair
    (``core.probes.answers_by_key_position``). The composed answer is blue, the copy of the mirror
    pair vermillion, other answers greys (``greys``: offset → colour, shared by the runs drawn side
    by side; default ``answer_greys([d])``), the rest light grey; shares ≥ 12 % are written in
    their segment."""
    a, b = d["pair"]
    labels = answer_labels(d)
    greys = answer_greys([d]) if greys is None else greys
    colours = [INFERENTIAL if o == d["inferential"] else SYMMETRIC if o == d["symmetric"]
               else greys.get(o, ANSWER_GREYS[-1]) for o in d["offsets"]] + [ANSWER_REST]
    dark = {INFERENTIAL, SYMMETRIC, *ANSWER_GREYS[:2]}
    rows = []
    for p, counts, total in zip(d["positions"], d["counts"], d["n"]):
        for j, (label, colour) in enumerate(zip(labels, colours)):
            share = float(counts[j]) / total if total else 0.0
            rows.append({"key position": f"key at {p}", "position": p, "answer": label, "order": j,
                         "share": share, "sequences": int(counts[j]), "of": int(total),
                         "text": f"{share:.0%}" if share >= 0.12 else "",
                         "ink": "white" if colour in dark else "black"})
    frame = pd.DataFrame(rows)
    f = chart_style.fonts(large, dense=True)
    y = alt.Y("key position:N", sort=[f"key at {p}" for p in d["positions"]], title="where the key sits")
    base = alt.Chart(frame).transform_stack(stack="share", as_=["lo", "hi"], groupby=["key position"],
                                            sort=[alt.SortField("order")])
    bars = base.mark_bar().encode(
        y=y, x=alt.X("lo:Q", scale=alt.Scale(domain=[0, 1]), title=f"share of ({a},{b}) answers",
                     axis=alt.Axis(format="%", values=[0, 0.5, 1.0] if large else [0, 0.25, 0.5, 0.75, 1.0])),
        x2="hi:Q",
        color=alt.Color("answer:N", scale=alt.Scale(domain=labels, range=colours), sort=labels, title=None,
                        legend=alt.Legend(orient="bottom", columns=2)),  # 3 were cut on a phone
        tooltip=["key position", "answer", alt.Tooltip("share:Q", format=".1%"), "sequences", "of"])
    text = base.transform_calculate(mid="(datum.lo + datum.hi) / 2").mark_text(fontSize=f["text"]).encode(
        y=y, x="mid:Q", text="text:N",
        color=alt.Color("ink:N", scale=None, legend=None))
    chart = alt.layer(bars, text, title=f"Answers to ({a},{b}) by the key's position").properties(
        width=f["size"], height=alt.Step(f["text"] * 2.4))
    return chart_style.style(chart, large, dense=True), frame.drop(columns=["text", "ink", "order"])

"""The nine views of the "Inside the model" page, one ``render_*`` function each.

Each view draws its controls once (page-namespaced keys ``inside_*``), then one column per
chosen run, so two runs are compared under the same, synchronised settings. Every chart
comes with a CSV of its data, its Vega-Lite spec and an SVG (``ui.downloads``; the SVG when
``vl-convert-python`` is installed); Streamlit's own chart toolbar adds "Download as PNG". Each view opens with
two or three sentences of guidance and closes with a reading of the computed numbers
against the paper's direction, saying plainly when a run does not show it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import probes
from core.config import parse_pair, pair_key
from core.runs import Run, RunError
from core.verdict import verdict

from . import downloads, glossary, probe_charts, probe_data, run_report, state, url_state
from .lesson import shown_routes
from .loaders import warn_bad_runs



# -- shared helpers ----------------------------------------------------------------------------
def show(chart: Any, frame: pd.DataFrame, name: str, key: str, stretch: bool = True) -> None:
    """Draw ``chart`` (as wide as its column unless ``stretch`` is False, for faceted charts)
    and offer its data (CSV), its spec (Vega-Lite JSON) and an SVG (``ui.downloads``; SVG only
    when vl-convert-python is installed). Files are built only when clicked."""
    st.altair_chart(chart, width="stretch" if stretch else "content", key=f"{key}_chart")
    downloads.chart_buttons(chart, frame, name, key)


def _load(path: str) -> Run | None:
    try:
        return probe_data.load_run_cached(path)
    except RunError as e:
        st.error(f"cannot load {path}: {e}")
        return None


def loaded(paths: list[str]) -> list[tuple[str, Run]]:
    """``(path, run)`` of each chosen run that loads (``_load`` shows the error of one that does not)."""
    return [(p, r) for p in paths if (r := _load(p)) is not None]


def held_out_verdict(run: Run) -> tuple[str, str] | None:
    """``(pair_key, outcome)`` of the first held-out pair from the run's last evaluation."""
    last = run.metrics["history"][-1]
    for k, h in last.get("held_out", {}).items():
        return k, verdict(last["seen_test_accuracy"], h)["outcome"]
    return None


def outcome_of(run: Run | None) -> str | None:
    """The run's verdict on its first held-out pair (``held_out_verdict``), None without one:
    what a chart colours the run by (``ui.palette.run_colours``)."""
    v = held_out_verdict(run) if run is not None else None
    return v[1] if v else None


def held_pair_of(paths: list[str]) -> tuple[int, int]:
    """The first held-out pair of the first run that has one, (4,3) otherwise."""
    for p in paths:
        run = _load(p)
        if run is not None and run.config.task.held_out:
            return tuple(run.config.task.held_out[0])
    return (4, 3)


def run_header(path: str, run: Run) -> None:
    v = held_out_verdict(run)
    extra = ""
    if v:  # a verdict under the bar (share < 0.9 or seen < 0.95) is "leaning", as on the Train page
        last = run.metrics["history"][-1]
        clear = verdict(last["seen_test_accuracy"], last["held_out"][v[0]])["clear"]
        lean = "" if clear or v[1] == "not fitted" else "leaning "
        extra = f" · ({v[0]}) answered **{lean}{v[1]}**"
    st.markdown(f"**{probe_data.choice_label(path)}**{extra}")


def columns_for(paths: list[str]) -> list[Any]:
    return list(st.columns(len(paths))) if len(paths) > 1 else [st.container()]


def each_run(paths: list[str]) -> Iterator[tuple[str, Run]]:
    """``(path, run)`` of each chosen run, with its own column entered and its header drawn;
    a run that cannot be loaded shows the error in its column and is skipped."""
    for col, path in zip(columns_for(paths), paths):
        with col:
            run = _load(path)
            if run is None:
                continue
            run_header(path, run)
            yield path, run


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


# Every number these sentences compare lies on a 0–1 scale (shares, |ρ|, cosines, ratios); two
# runs closer than this are not read as agreeing or disagreeing with the paper's direction (a
# newcomer read "0.04 vs 0.06: as in the paper" as a result).
CLOSE = 0.05


def compare_sentence(values: dict[str, float], what: str, higher_expected_for: str) -> str:
    """A sentence that checks the paper's direction across two runs.

    ``higher_expected_for`` is ``"larger γ"`` or ``"smaller γ"``: which run the paper
    expects to have the larger value. Values closer than ``CLOSE`` are called too close to tell.
    """
    if len(values) != 2:
        return ""
    (pa, va), (pb, vb) = values.items()
    ga, gb = probe_data.gamma_of(pa), probe_data.gamma_of(pb)
    if ga is None or gb is None or ga == gb or any(v is None or math.isnan(v) for v in (va, vb)):
        return f"{what}: {_fmt(va)} vs {_fmt(vb)}."
    (g_lo, v_lo), (g_hi, v_hi) = sorted([(ga, va), (gb, vb)])
    expect_hi = higher_expected_for == "larger γ"
    agrees = (v_hi > v_lo) if expect_hi else (v_lo > v_hi)
    if abs(v_hi - v_lo) < CLOSE:
        verdict_ = (f"the two differ by only {abs(v_hi - v_lo):.2f}, too little to show its contrast either way"
                    f" (a difference under {CLOSE:g} is not read as a direction)")
    else:
        verdict_ = ("as in the paper" if agrees else
                    "**opposite to the paper**: these runs do not show its contrast here")
    return (f"{what}: γ {g_lo:g} → {_fmt(v_lo)}, γ {g_hi:g} → {_fmt(v_hi)}; the paper expects the "
            f"{higher_expected_for} run to be higher — {verdict_}.")


def show_comparison(values: dict[str, float], what: str, higher_expected_for: str) -> None:
    """``compare_sentence`` below the columns, when two runs were compared."""
    line = compare_sentence(values, what, higher_expected_for)
    if line:
        st.markdown(line)


# (label, threshold, reading when ≥ threshold, reading when below, solution the paper pairs with "≥")
EXPECT = {
    "condensation": ("W_Q(1) condensation (share of neurons in groups)", 0.5, "condensed", "not condensed",
                     "inferential"),
    "order": ("embedding order", 0.9, "in value order", "not clearly in value order", "inferential"),
    "eigen": ("top-2 eigenvalue share", 0.3, "dominated by a few eigenvalues", "not dominated by the top two",
              "inferential"),
    "fused": ("symmetric-pair distance ratio", 0.5, "keeping (a,b) and (b,a) apart", "fusing (a,b) with (b,a)",
              "inferential"),
    "same_output": ("same-output similarity", 0.1, "boxed cells standing out", "boxed cells not standing out",
                    "inferential"),
}


def _a(word: str) -> str:
    """The article before ``word``: "an inferential", "a symmetric"."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def reading(run: Run, kind: str, value: float | None) -> str:
    """One run's number against the paper: is the picture the one its (4,3) answers predict?

    The thresholds in ``EXPECT`` are our rough cut between the two pictures of [INIT] (not
    the paper's), so the sentence says what the number looks like and whether that fits the
    run's own solution; with no clear solution there is nothing to check.
    """
    label, thr, hi, lo, hi_solution = EXPECT[kind]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{label}: n/a."
    looks = hi if value >= thr else lo
    picture = hi_solution if value >= thr else ("symmetric" if hi_solution == "inferential" else "inferential")
    v = held_out_verdict(run)
    if not v or v[1] not in ("inferential", "symmetric"):
        tail = (f"this run has no clear solution on ({v[0]}) yet ({v[1]}), so there is nothing to check it against"
                if v else "this run has no held-out pair to check it against")
    elif v[1] == picture:
        tail = f"the paper's picture for {_a(v[1])} **{v[1]}** solution, which is what this run found"
    else:
        tail = (f"by our own rough cut, the picture of {_a(picture)} **{picture}** solution, though this run answers"
                f" ({v[0]}) **{v[1]}**. The cut is ours, not the paper's: the paper's test is the comparison"
                " between a small and a large γ, which two runs side by side show")
    return f"{label} {_fmt(value)}: {looks} (our cut: {thr:g}) — {tail}."


def guidance(text: str) -> None:
    st.info(text, icon=":material/lightbulb:")


# -- view 1: attention and information flow --------------------------------------------------
def _sequence_controls(run: Run) -> np.ndarray | None:
    task = run.config.task
    c1, c2, c3, c4 = st.columns(4)
    key = c1.number_input("key item x", task.item_min, task.item_max, min(99, task.item_max), key="inside_key")
    pairs = [pair_key(p) for p in task.pairs]
    dp = pair_key(probes.default_pair(task))
    pair = c2.selectbox("anchor pair", pairs, index=pairs.index(dp), key="inside_pair", format_func=lambda k: f"({k})")
    kp = c3.slider("key position", 0, task.seq_len - 3, min(probes.DEFAULT_KEY_POS, task.seq_len - 3),
                   key="inside_keypos")
    seed = c4.number_input("noise seed", 0, 10_000, 0, key="inside_noise")
    typed = st.text_input("…or type a whole sequence (overrides the controls above)", key="inside_typed",
                          max_chars=probes.MAX_TYPED_CHARS,
                          placeholder="e.g. 57 33 80 1 2 64 91 22 45")
    try:
        if typed.strip():
            return probes.parse_sequence(task, typed)
        return probes.default_sequence(task, int(key), parse_pair(pair), int(kp), int(seed), distinct_key=True)
    except ValueError as e:
        st.error(str(e))
        return None




def mean_route_sentence(infm: float, symm: float, v: tuple[str, str] | None, weak: float = 0.3) -> str:
    """The flow view's reading of the mean route strengths (inferential ``infm``, symmetric
    ``symm``) against the held-out verdict ``v`` (``(pair, solution)`` or None). It compares the
    numbers as printed (2 decimals, ``lesson.shown_routes``): 0.2996 is shown as 0.30, which is
    not "below 0.3"."""
    infm, symm = shown_routes(infm, symm)
    if max(infm, symm) < weak:
        return (f"Neither route carries much weight on average (both below {weak:g}): this run does not "
                "show either mechanism of Fig. 3 clearly.")
    if infm == symm:
        return "Its attention gives the two mechanisms the same weight on average: neither is shown clearly."
    shown = "inferential" if infm > symm else "symmetric"
    if v and v[1] in ("inferential", "symmetric"):
        agree = "matches" if v[1] == shown else "**does not match**"
        return f"Its attention follows the **{shown}** mechanism, which {agree} its answers on ({v[0]}) ({v[1]})."
    return (f"Its attention leans to the **{shown}** mechanism; its answers on the held-out pair "
            f"have no clear solution yet ({v[1] if v else 'no held-out pair'}).")


def render_flow(paths: list[str], large: bool) -> None:
    guidance("Read the flow diagram left to right: each line carries attention from a token (left) to a token one "
             "layer up (right), as thick as its weight. The paper's Fig. 3: the **symmetric** solution (larger "
             "initialization) merges the two anchors into the last token in layer 1 and brings the key there in "
             "layer 2 (vermillion edges); the **inferential** one (small initialization) copies the key into both "
             "anchor positions in layer 1 and carries them to the last token in layer 2 (blue edges).")
    runs = loaded(paths)
    if not runs:
        return
    tokens = _sequence_controls(runs[0][1])
    if tokens is None:
        return
    for col, (path, run) in zip(columns_for(paths), runs):
        with col:
            run_header(path, run)
            try:
                d = probe_data.sequence(path, probe_data.stamp(path), tuple(int(t) for t in tokens))
            except ValueError as e:
                st.error(f"this sequence does not fit this run's task: {e}")
                continue
            pred = d["prediction"]
            kind = ("the inferential target" if pred == d["inferential"] else "the symmetric target"
                    if pred == d["symmetric"] else "neither target")
            st.markdown(f"Sequence `{' '.join(map(str, d['tokens']))}` · key {d['key']}, pair {d['pair']} · "
                        f"inferential target **{d['inferential']}**, symmetric **{d['symmetric']}** · "
                        f"the model predicts **{pred}**: {kind}.")
            chart, frame = probe_charts.flow_diagram(d["flow"], d["tokens"], large)
            show(chart, frame, f"flow_{probe_data.run_label(path)}", f"inside_flow_{path}")
            st.markdown("Heaviest paths to the last token: " + " · ".join(
                f"{q['label']} **{q['weight']:.2f}**" for q in d["flow"]["paths"][:3]))
            chart, frame = probe_charts.prediction_bars(d["top"], d["inferential"], d["symmetric"], d["p_inferential"],
                                              d["p_symmetric"], large)
            show(chart, frame, f"prediction_{probe_data.run_label(path)}", f"inside_pred_{path}")
            mean = probe_data.mean_flow(path, probe_data.stamp(path), tuple(d["pair"]))
            inf1, sym1 = probes.route_strengths(d["flow"]["named"])
            infm, symm = probes.route_strengths(mean)
            st.markdown(f"Route strength (weaker edge of the two steps) — this sequence: inferential "
                        f"**{inf1:.2f}**, symmetric **{sym1:.2f}**; mean over 256 random {d['pair']} sequences: "
                        f"inferential **{infm:.2f}**, symmetric **{symm:.2f}**.")
            st.markdown(mean_route_sentence(infm, symm, held_out_verdict(run)))
            with st.expander("Attention heatmaps of every layer, and the heaviest paths"):
                n_heads = d["attn"].shape[1]
                head = None
                if n_heads > 1:
                    choice = st.selectbox("head", ["mean of heads"] + [f"head {h + 1}" for h in range(n_heads)],
                                          key=f"inside_head_{path}")
                    head = None if choice == "mean of heads" else int(choice.split()[1]) - 1
                compact = len(paths) > 1
                chart, frame = probe_charts.attention_heatmaps(d["attn"], d["tokens"], d["roles"], large, head=head,
                                                     columns=1 if compact else None,
                                                     size=(300 if large else 230) if compact else None)
                show(chart, frame, f"attention_{probe_data.run_label(path)}", f"inside_attn_{path}", stretch=False)
                st.dataframe(pd.DataFrame(d["flow"]["paths"])[["label", "weight"]], hide_index=True)


# -- view 2: fused representations -----------------------------------------------------------
def render_fused(paths: list[str], large: bool) -> None:
    guidance("Each point is the last token's vector after layer 1's attention, X_ao(1), for one sequence, coloured "
             "by its anchor pair: (a,b) dark and (b,a) light in the same hue. The paper's Fig. 3b: in the **symmetric** "
             "solution the two shades fall on top of each other — layer 1 has fused the anchors into an "
             "order-free summary, so (4,3) looks like (3,4) and gets its answer. 'Colour: … against the rest' "
             "shows just the held-out pair (purple) and its mirror (vermillion) over the others in grey.")
    c1, c2, c3, c4 = st.columns(4)
    method = c1.radio("projection", ["pca", "tsne"], horizontal=True, key="inside_fused_method",
                      format_func=lambda m: {"pca": "PCA (fast)", "tsne": "t-SNE (slow the first time)"}[m])
    n = c2.select_slider("sequences", [1000, 2000, 5000, 10000], 2000, key="inside_fused_n")
    n_tsne = c3.select_slider("t-SNE points", [500, 1000, 2000, 5000], 1000, key="inside_fused_tsne_n",
                              disabled=method != "tsne",
                              help="t-SNE embeds a random subset: about 3 s for 1000 points, much longer for more")
    layer = c4.number_input("layer", 1, 6, 1, key="inside_fused_layer") - 1
    held = held_pair_of(paths)
    colour_by = st.radio("colour", ["all", "highlight"], horizontal=True, key="inside_fused_colour",
                         format_func=lambda c: {"highlight": f"({pair_key(held)}) and ({held[1]},{held[0]}) against the rest",
                                                "all": "every pair"}[c],
                         help="Highlight: the held-out pair in purple and its mirror in vermillion (the overridden "
                              "pair's colour), every other pair grey, so you see at once whether the two fall on "
                              "top of each other.")
    drawn = []
    for path in paths:
        run = _load(path)
        if run is None or layer >= run.config.model.n_layers:
            drawn.append((path, run, None, None, None))
            continue
        s = probe_data.stamp(path)
        with st.spinner("projecting (t-SNE takes a while the first time, then it is cached)…"):
            d = probe_data.fused(path, s, n, 0, layer)
            xy, idx = probe_data.fused_projection(path, s, n, 0, layer, method,
                                             n_tsne if method == "tsne" else 100_000)
        drawn.append((path, run, d, xy, idx))
    # compare mode, PCA: one scale for both runs (t-SNE coordinates carry no scale to compare)
    share = len(paths) > 1 and method == "pca"
    xs = [xy[:, 0] for *_, xy, _ in drawn if xy is not None]
    ys = [xy[:, 1] for *_, xy, _ in drawn if xy is not None]
    x_dom, y_dom = (probe_charts.shared_domain(*xs), probe_charts.shared_domain(*ys)) if share else (None, None)
    ratios = {}
    for col, (path, run, d, xy, idx) in zip(columns_for(paths), drawn):
        with col:
            if run is None:
                continue
            run_header(path, run)
            if d is None:
                st.warning(f"this run has only {run.config.model.n_layers} layers")
                continue
            title = f"X_ao({layer + 1}) at the last token, {method.upper()}, {len(idx)} sequences"
            chart, frame = probe_charts.pair_scatter(xy, d["a1"][idx], d["a2"][idx], list(run.config.task.anchors),
                                                     title, large, highlight=held if colour_by == "highlight" else None,
                                                     x_domain=x_dom, y_domain=y_dom)
            show(chart, frame, f"fused_{probe_data.run_label(path)}", f"inside_fused_{path}")
            ratios[path] = d["ratio"]
            st.markdown(f"Symmetric-pair distance ratio **{_fmt(d['ratio'])}**: distance between the centres of "
                        f"(a,b) and (b,a), relative to the mean distance between all pair centres (full "
                        f"{d['X'].shape[1]}-d space; 0: (a,b) and (b,a) in one place, 1: as far apart as any two pairs).")
            st.markdown(reading(run, "fused", d["ratio"]))
    if share:
        st.caption("Both runs are drawn on the same axes (PCA coordinates), so the spread of their points compares.")
    show_comparison(ratios, "Symmetric-pair distance ratio", "larger γ")


# -- view 3: same-output similarity ----------------------------------------------------------
def _pair_select(label: str, options: list[str], default: str, key: str, col: Any) -> tuple[int, int]:
    return parse_pair(col.selectbox(label, options, index=options.index(default) if default in options else 0,
                                    key=key, format_func=lambda k: f"({k})"))


def render_similarity(paths: list[str], large: bool) -> None:
    guidance("Each cell compares two vectors by cosine similarity; boxed cells are those whose answers coincide. "
             "Top: the last token's vector after layer 2's attention, v(x; a1, a2), boxed where the inferential "
             "targets are equal. Bottom: the value vector at the first anchor, u(x; a), boxed where the "
             "single-anchor results g(x; a) are equal. The paper's Fig. 4: for the **inferential** solution the boxed "
             "cells stand out (equal results → nearly parallel vectors: the model computes intermediate values); "
             "for the **symmetric** one they do not.")
    run0 = _load(paths[0])
    if run0 is None:
        return
    task = run0.config.task
    opts = [pair_key(p) for p in task.pairs]
    anchors = [str(a) for a in task.anchors]
    lo, hi = st.slider("key range", task.item_min, task.item_max,
                       (max(30, task.item_min), min(40, task.item_max)), key="inside_sim_keys")
    cols = st.columns(4)
    (la, lb), (ua, ub) = probes.DEFAULT_V_PAIRS
    A = _pair_select("below: pair of x1", opts, pair_key(la), "inside_sim_la", cols[0])
    B = _pair_select("below: pair of x2", opts, pair_key(lb), "inside_sim_lb", cols[1])
    C = _pair_select("above: pair of x1", opts, pair_key(ua), "inside_sim_ua", cols[2])
    D = _pair_select("above: pair of x2", opts, pair_key(ub), "inside_sim_ub", cols[3])
    cols = st.columns(4)
    (ula, ulb), (uua, uub) = probes.DEFAULT_U_ANCHORS
    ua_ = [int(cols[i].selectbox(lbl, anchors, index=anchors.index(str(d)) if str(d) in anchors else 0,
                                 key=f"inside_sim_u{i}"))
           for i, (lbl, d) in enumerate([("u below: anchor of x1", ula), ("u below: anchor of x2", ulb),
                                         ("u above: anchor of x1", uua), ("u above: anchor of x2", uub)])]
    centre = st.toggle("centre the vectors (remove the part every vector shares)", value=False,
                       key="inside_sim_centre",
                       help="Post-LayerNorm vectors share a large common component that makes every raw cosine "
                            "high. Off: the paper's raw cosine. On: subtract, per context, the mean vector of the "
                            "comparison first.")
    keys = tuple(range(lo, hi + 1))
    diffs: dict[str, float] = {}
    diffs_alt: dict[str, float] = {}
    for path, run in each_run(paths):
        s = probe_data.stamp(path)
        try:
            v = probe_data.same_output(path, s, ((A, B), (C, D)), keys, 8, centre)
            u = probe_data.single_anchor(path, s, ((ua_[0], ua_[1]), (ua_[2], ua_[3])), keys, 8, centre)
            v_alt = probe_data.same_output(path, s, ((A, B), (C, D)), keys, 8, not centre)["summary"]
            u_alt = probe_data.single_anchor(path, s, ((ua_[0], ua_[1]), (ua_[2], ua_[3])), keys, 8,
                                        not centre)["summary"]
        except ValueError as e:
            st.error(str(e))
            continue
        chart, frame = probe_charts.similarity_triangles(
            v["keys"], v["blocks"][0], v["blocks"][1], f"v(x1; {A[0]},{A[1]}) vs v(x2; {B[0]},{B[1]})",
            f"v(x1; {C[0]},{C[1]}) vs v(x2; {D[0]},{D[1]})", large)
        show(chart, frame, f"same_output_{probe_data.run_label(path)}", f"inside_simv_{path}")
        sv = v["summary"]
        other = "raw" if centre else "centred"
        st.markdown(f"Boxed minus other cells: **{_fmt(sv['difference'])}** (boxed {_fmt(sv['equal_mean'])}, "
                    f"others {_fmt(sv['unequal_mean'])}; {other}: {_fmt(v_alt['difference'])}).")
        st.markdown(reading(run, "same_output", sv["difference"]))
        chart, frame = probe_charts.similarity_triangles(
            u["keys"], u["blocks"][0], u["blocks"][1], f"u(x1; {ua_[0]}) vs u(x2; {ua_[1]})",
            f"u(x1; {ua_[2]}) vs u(x2; {ua_[3]})", large)
        show(chart, frame, f"single_anchor_{probe_data.run_label(path)}", f"inside_simu_{path}")
        su = u["summary"]
        st.markdown(f"Boxed minus other cells: **{_fmt(su['difference'])}** (boxed {_fmt(su['equal_mean'])}, "
                    f"others {_fmt(su['unequal_mean'])}; {other}: {_fmt(u_alt['difference'])}).")
        diffs[path] = sv["difference"]
        diffs_alt[path] = v_alt["difference"]
    show_comparison(diffs, f"Same-output similarity (boxed − other, v, {'centred' if centre else 'raw'})",
                    "larger γ")
    # the other mode too: raw cosines can be too close to tell while centred ones differ clearly
    show_comparison(diffs_alt, f"With the vectors {'raw' if centre else 'centred'} (the toggle above)", "larger γ")
    st.caption("Each cell averages 8 contexts (noise items and key position shared by the two sequences of a cell, "
               "so only key and pair differ). Post-LayerNorm vectors share a large common part, so raw cosines can "
               "all be high; compare boxed cells with their neighbours, or centre the vectors.")


# -- view 4: condensation --------------------------------------------------------------------
def render_condensation(paths: list[str], large: bool) -> None:
    guidance("Each row and column is one neuron of the chosen weight; the colour is the cosine similarity of two "
             "neurons' input-weight vectors, and neurons are reordered so that groups above the threshold sit "
             "together (outlined). The paper's Fig. 5a,b: with **small initialization** W_Q(1) condenses into a few "
             "blocks of near-parallel neurons (a low-complexity solution); with larger initialization there are "
             "no such blocks.")
    run0 = _load(paths[0])
    if run0 is None:
        return
    names = probes.weight_names(run0.model)
    c1, c2 = st.columns(2)
    weight = c1.selectbox("weight", names, index=0, key="inside_cond_weight", format_func=probes.weight_label)
    thr = c2.slider("group threshold (cosine)", 0.5, 0.95, probes.CONDENSATION_THRESHOLD, 0.05, key="inside_cond_thr",
                    help=glossary.tip("condensation"))
    shares: dict[str, float] = {}
    for path, run in each_run(paths):
        if weight not in probes.weight_names(run.model):
            st.warning(f"this run has no {probes.weight_label(weight)}")
            continue
        c = probe_data.condensation(path, probe_data.stamp(path), weight, float(thr))
        chart, frame = probe_charts.condensation_heatmap(c, probes.weight_label(weight), large)
        show(chart, frame, f"condensation_{weight}_{probe_data.run_label(path)}", f"inside_cond_{path}")
        m1, m2, m3 = st.columns(3)
        m1.metric("groups (≥ 2 neurons)", c["n_groups"])
        m2.metric("neurons in groups", f"{c['share_in_groups']:.0%}")
        m3.metric("in the 3 largest", f"{c['top3_group_share']:.0%}")
        shares[path] = c["share_in_groups"]
        if weight == "W_Q.0":
            st.markdown(reading(run, "condensation", c["share_in_groups"]))
        with st.expander("every weight of this run"):
            rows = []
            for nm in probes.weight_names(run.model):
                cc = probe_data.condensation(path, probe_data.stamp(path), nm, float(thr))
                rows.append({"weight": probes.weight_label(nm), "neurons": cc["n_neurons"],
                             "groups": cc["n_groups"], "share in groups": round(cc["share_in_groups"], 3)})
            st.dataframe(pd.DataFrame(rows), hide_index=True)
    show_comparison(shares, f"Share of {probes.weight_label(weight)} neurons in groups", "larger γ")


# -- view 5: embeddings ----------------------------------------------------------------------
def render_embeddings(paths: list[str], large: bool) -> None:
    guidance("Each point is the embedding of one item token (20…99), coloured by its value; a thin line joins "
             "consecutive values. The paper's Fig. 5c,d: with **small initialization** the tokens line up in value "
             "order (with steps along two directions), so nearby numbers get nearby vectors; with larger "
             "initialization there is no order. The number is |Spearman| between a token's value and its position "
             "along the first principal component (1 = perfectly ordered).")
    method = st.radio("projection", ["pca", "tsne"], horizontal=True, key="inside_emb_method",
                      format_func=lambda m: {"pca": "PCA (fast)", "tsne": "t-SNE"}[m])
    orders: dict[str, float] = {}
    for path, run in each_run(paths):
        with st.spinner("projecting…"):
            d = probe_data.embedding(path, probe_data.stamp(path), method)
        sub = (f"order |ρ| {d['order']:.2f}; PC1+PC2 hold {d['explained'].sum():.0%} of the variance")
        chart, frame = probe_charts.embedding_scatter(d["xy"], d["tokens"], f"token embeddings, {method.upper()}", sub,
                                                      large)
        show(chart, frame, f"embeddings_{probe_data.run_label(path)}", f"inside_emb_{path}")
        m1, m2 = st.columns(2)
        m1.metric("order along PC1 (|Spearman|)", f"{d['order']:.2f}")
        m2.metric("top-2 eigenvalue share", f"{probes.top_eigen_share(d['eigen'], 2):.0%}")
        orders[path] = d["order"]
        st.markdown(reading(run, "order", d["order"]))
    show_comparison(orders, "Embedding order", "larger γ")


COLOUR_NOTE = ("Each run is drawn in the colour of its verdict on the held-out pair: blue inferential, vermillion "
               "symmetric, grey other or not fitted (a second run with the same verdict: a lighter shade).")


# -- view 6: spectra -------------------------------------------------------------------------
def render_spectra(paths: list[str], large: bool) -> None:
    guidance("Top: eigenvalues of the covariance of the item embeddings, largest first (log scale). Below: the "
             "singular values of every linear layer. The paper's Fig. 12a and 13: with **small initialization** a few "
             "eigenvalues / singular values dominate and the rest fall away steeply (low effective rank); with "
             "larger initialization the spectrum falls off slowly (flatter).")
    others = [p for p in probe_data.available_runs() if p not in paths]
    extra = st.multiselect("overlay more runs", others, key="inside_spec_extra", format_func=probe_data.choice_label)
    norm = st.toggle("divide each curve by its largest value", value=True, key="inside_spec_norm")
    curves, svs, shares, outcomes = {}, {}, {}, []
    for path in paths + extra:
        run = _load(path)
        if run is None:
            continue
        outcomes.append(outcome_of(run))  # each run coloured by its verdict, not its place
        d = probe_data.embedding(path, probe_data.stamp(path), "pca")
        ev = d["eigen"]
        curves[probe_data.choice_label(path)] = ev / ev[0] if norm and ev[0] > 0 else ev
        shares[path] = probes.top_eigen_share(ev, 2)
        sv = probe_data.spectra(path, probe_data.stamp(path))
        svs[probe_data.choice_label(path)] = {k: (v / v[0] if norm and v[0] > 0 else v) for k, v in sv.items()}
    if not curves:
        return
    top = st.slider("eigenvalues shown", 4, 64, 32, key="inside_spec_top")
    chart, frame = probe_charts.spectrum_lines(curves, "Embedding covariance eigenvalues", large, top=top,
                                     y_title="eigenvalue / largest" if norm else "eigenvalue", outcomes=outcomes)
    st.caption(COLOUR_NOTE)
    show(chart, frame, "embedding_spectrum", "inside_spec_eig")
    for p, share in shares.items():
        st.markdown(f"{probe_data.choice_label(p)}: " + reading(_load(p), "eigen", share))
    show_comparison({p: shares[p] for p in paths if p in shares}, "Top-2 eigenvalue share", "larger γ")
    labels = {n: probes.weight_label(n) for r in svs.values() for n in r}
    chart, frame = probe_charts.singular_value_grid(svs, labels, large, columns=2 if large else 3, outcomes=outcomes,
                                                    y_title="singular value / largest" if norm else "singular value")
    show(chart, frame, "singular_values", "inside_spec_sv", stretch=False)


# -- view 7: over training -------------------------------------------------------------------
def snapshot_frames(history: list[dict[str, Any]], task: Any = None) -> dict[str, pd.DataFrame]:
    """Long frames of the snapshot numbers and held-out accuracies over epochs. With ``task``, a
    held-out pair whose two answers coincide (both (3,4) and (4,3) unseen) gets one series, not two
    identical ones."""
    from . import charts
    snaps = probes.snapshots(history)
    eig = [{"epoch": e, "eigenvalue": f"λ{i + 1}", "value": v} for e, s in snaps
           for i, v in enumerate(s.get("embed_eigen_top", [])) if v > 0]
    cond = []
    for e, s in snaps:
        c = s.get("wq1_condensation", {})
        cond += [{"epoch": e, "measure": "share of neurons in groups", "value": c.get("share_in_groups")},
                 {"epoch": e, "measure": "embedding order |ρ|", "value": s.get("embedding_order")}]
    acc = []
    for r in history:
        for k, h in r.get("held_out", {}).items():
            if task is not None and charts.answers_coincide(task, parse_pair(k)):
                acc.append({"epoch": r["epoch"], "series": f"({k}) {charts.held_out_answers(task, parse_pair(k))}",
                            "accuracy": h["inferential"]})
                continue
            acc += [{"epoch": r["epoch"], "series": f"({k}) {m}", "accuracy": h[m]} for m in ("inferential", "symmetric")]
        acc.append({"epoch": r["epoch"], "series": "seen pairs", "accuracy": r.get("seen_test_accuracy")})
    return {"eigen": pd.DataFrame(eig, columns=["epoch", "eigenvalue", "value"]),
            "condensation": pd.DataFrame(cond, columns=["epoch", "measure", "value"]).dropna(),
            "accuracy": pd.DataFrame(acc, columns=["epoch", "series", "accuracy"]).dropna()}


def snapshot_colours(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, str]]:
    """Series -> colour for each over-training chart: accuracies in the mapping colours (seen pairs
    black, inferential blue, symmetric vermillion; a second held-out pair a lighter shade),
    eigenvalues λ1, λ2, … a grey ramp; the complexity measures get neutral colours (none here)."""
    from . import palette
    acc: dict[str, str] = {}
    kinds = []
    for name in dict.fromkeys(frames["accuracy"]["series"]):
        kinds.append("seen" if name == "seen pairs" else "symmetric" if name.endswith(" symmetric") else "inferential")
    shades = palette.run_colours([k if k != "seen" else None for k in kinds])
    for name, kind, colour in zip(dict.fromkeys(frames["accuracy"]["series"]), kinds, shades):
        acc[name] = palette.SEEN if kind == "seen" else colour
    lam = sorted(set(frames["eigen"]["eigenvalue"]), key=lambda n: int(n[1:]))
    return {"accuracy": acc, "eigen": dict(zip(lam, palette.grey_ramp(len(lam)))), "condensation": {}}


def shared_snapshot_domains(all_frames: list[dict[str, pd.DataFrame]]) -> dict[str, tuple[Any, Any]]:
    """``part -> (x domain, y domain)`` shared by the runs compared: epochs from 0 to the last of
    any run; eigenvalues (log) over every run's range; measures and accuracies on [0, 1]."""
    ends = [float(f[p]["epoch"].max()) for f in all_frames for p in f if len(f[p])]
    x = [0.0, max(ends)] if ends else None
    vals = [v for f in all_frames for v in f["eigen"]["value"] if v > 0]
    eig = [min(vals) * 0.8, max(vals) * 1.25] if vals else None
    return {"eigen": (x, eig), "condensation": (x, [0.0, 1.0]), "accuracy": (x, [0.0, 1.0])}


def render_training(paths: list[str], large: bool) -> None:
    guidance("The trainer stores a few cheap numbers at every evaluation: the top eigenvalues of the embedding "
             "covariance, W_Q(1)'s condensation and the embedding order. Scrub the slider through training. "
             "The paper's Fig. 12b: with **small initialization** the eigenvalues grow one at a time — the model adds "
             "one direction of complexity after another — while the held-out pair is learned by composition.")
    runs = loaded(paths)
    epochs = sorted({e for _, r in runs for e, _ in probes.snapshots(r.metrics["history"])})
    if not epochs:
        for p, _ in runs:
            st.warning(f"{probe_data.run_label(p)} has no training snapshots (it was trained before the trainer "
                       "recorded them); train it again to see this view.")
        return
    epoch = st.select_slider("epoch", epochs, value=epochs[-1], key="inside_train_epoch")
    frames = {p: snapshot_frames(r.metrics["history"], r.config.task) for p, r in runs}
    domains = shared_snapshot_domains(list(frames.values())) if len(runs) > 1 else {}
    for col, (path, run) in zip(columns_for(paths), runs):
        with col:
            run_header(path, run)
            snaps = probes.snapshots(run.metrics["history"])
            if not snaps:
                st.warning("This run has no training snapshots (trained before the trainer recorded them).")
                continue
            e_here, s = max(((e, s) for e, s in snaps if e <= epoch), default=snaps[0], key=lambda x: x[0])
            fr = frames[path]
            colours = snapshot_colours(fr)
            name = probe_data.run_label(path)
            for part, value, series, title, log, y_title in (
                    ("eigen", "value", "eigenvalue", "Top embedding eigenvalues", True, "eigenvalue"),
                    ("condensation", "value", "measure", "Complexity measures", False, "value"),
                    ("accuracy", "accuracy", "series", "Accuracy (seen: test split; held out: both splits)", False,
                     "accuracy")):
                x_dom, y_dom = domains.get(part, (None, None))
                chart = probe_charts.snapshot_lines(fr[part], value, series, title, e_here, log=log, large=large,
                                          y_title=y_title, colours=colours[part], x_domain=x_dom, y_domain=y_dom)
                show(chart, fr[part], f"snapshot_{part}_{name}", f"inside_tr_{part}_{path}")
            eig_dom = None
            if len(runs) > 1:
                tops = [v for f in frames.values() for v in f["eigen"]["value"]]
                eig_dom = [0.0, max(tops) * 1.05] if tops else None
            chart, frame = probe_charts.eigen_bars(s.get("embed_eigen_top", []), f"Eigenvalues at epoch {e_here}", large,
                                         y_domain=eig_dom)
            show(chart, frame, f"eigen_epoch{e_here}_{name}", f"inside_tr_bar_{path}")
            c = s.get("wq1_condensation", {})
            m1, m2 = st.columns(2)
            m1.metric(f"W_Q(1) groups at epoch {e_here}", c.get("n_groups", "n/a"))
            m2.metric("neurons in groups", f"{c.get('share_in_groups', 0):.0%}")
            if len(runs) == 1:
                run_report.authors_comparison(run.config, run.metrics["history"])
    if len(runs) > 1:
        st.caption("The two runs share their axes: the same epochs, the same eigenvalue range.")
        # the authors' tables have seven columns: full width, one under the other (in half a page
        # they scrolled sideways)
        for path, run in runs:
            run_report.authors_comparison(run.config, run.metrics["history"])


# -- view: answers by key position -------------------------------------------------------------
def _positions(ps: list[int]) -> str:
    """[0, 1, 2, 5] → "positions 0–2 and 5"; [6] → "position 6"."""
    runs: list[list[int]] = []
    for p in ps:
        if runs and runs[-1][-1] == p - 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    parts = [f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return ("position " if len(ps) == 1 else "positions ") + text


def position_sentence(d: dict[str, Any]) -> str:
    """The answers view's reading, computed from ``core.probes.answers_by_key_position``: the
    overall shares, then whether one rule holds at every key position or which answer wins where."""
    labels = probe_charts.answer_labels(d)
    overall = sorted(((s, l) for s, l in zip(d["overall"], labels) if s >= 0.01), reverse=True)
    head = "Over all key positions: " + ", ".join(f"{l} **{s:.0%}**" for s, l in overall[:3]) + "."
    rules = probes.position_rules(d)
    name = dict(zip(d["offsets"], labels))
    if len(rules) == 1 and rules[0][1] is not None:
        least = "every sequence" if rules[0][2] >= 1 else f"at least {rules[0][2]:.0%} of the sequences"
        return f"{head} The same answer wins at every key position: {name[rules[0][1]]}, on {least} at each."
    winners: dict[Any, list[int]] = {}
    for ps, offset, _ in rules:
        winners.setdefault(offset, []).extend(ps)
    parts = [f"{name[o]} at {_positions(ps)}" if o is not None else f"no answer above half at {_positions(ps)}"
             for o, ps in winners.items()]
    return (f"{head} **The answer depends on where the key sits**: " + "; ".join(parts) + ". The "
            "paper's composition gives the same answer wherever the key sits.")


def render_answers(paths: list[str], large: bool) -> None:
    guidance("The held-out pair's answers, split by where the key sits before the two anchors. The paper reports "
             "one share per pair; a model can follow one rule at some positions and another elsewhere, which a "
             "single share hides. Blue is the composed answer (the **inferential** solution), vermillion the copy "
             "of the mirror pair (the **symmetric** one), greys any other answer; an answer that is a seen pair's "
             "own (x−16 is (4,4)'s) says so in the legend.")
    runs = loaded(paths)
    if not runs:
        return
    held = sorted({tuple(q) for _, r in runs for q in r.config.task.held_out})
    if not held:
        st.info("These runs hold no pair out, so there is no held-out answer to split.")
        return
    cols = st.columns([1, 1, 2])
    names = [pair_key(q) for q in held]
    pair = held[0]
    if len(held) > 1:
        pair = parse_pair(cols[0].selectbox("held-out pair", names, key="inside_answers_pair",
                                            format_func=lambda k: f"({k})"))
    seed = int(cols[len(held) > 1].number_input("sample seed", 0, 10_000, 0, key="inside_answers_seed",
                               help=f"{probes.ANSWER_N} random sequences of the pair: random keys, key positions "
                                    "and noise tokens"))
    ds = {path: probe_data.answers(path, probe_data.stamp(path), pair, seed)
          for path, run in runs if pair in run.config.task.held_out}
    greys = probe_charts.answer_greys(list(ds.values()))
    for col, (path, run) in zip(columns_for(paths), runs):
        with col:
            run_header(path, run)
            if path not in ds:
                st.info(f"({pair_key(pair)}) is not held out in this run.")
                continue
            chart, frame = probe_charts.answer_position_bars(ds[path], large, greys)
            show(chart, frame, f"answers_by_position_{probe_data.run_label(path)}", f"inside_answers_{path}")
            st.markdown(position_sentence(ds[path]))
    st.caption(f"Each panel answers {probes.ANSWER_N:,} fresh random ({pair_key(pair)}) sequences (random keys of "
               "both splits, key positions and noise; the sample seed above), so its shares can differ by a point "
               "or two from the run's last evaluation, on its own fixed sequences, that other pages show. Greys "
               "mean the same answer in both panels.")


# -- view 8: replay training (ui/replay.py) -------------------------------------------------------
def render_replay(paths: list[str], large: bool) -> None:
    from . import replay
    replay.render_replay(paths, large, _load, run_header, columns_for)


@dataclass(frozen=True)
class View:
    """One tab of the page: its title, its name in a link (``?view=``) and what draws it."""
    name: str
    slug: str
    render: Callable[[list[str], bool], None]


VIEWS = [View("Attention & flow", "flow", render_flow), View("Answers by position", "answers", render_answers),
         View("Fused vectors", "fused", render_fused),
         View("Same-output similarity", "similarity", render_similarity),
         View("Condensation", "condensation", render_condensation), View("Embeddings", "embeddings", render_embeddings),
         View("Spectra", "spectra", render_spectra), View("Over training", "training", render_training),
         View("Replay training", "replay", render_replay)]


# -- run picker ------------------------------------------------------------------------------
def url_roots() -> list:
    """Where a run named in a link may be: the committed runs, then the saved ones."""
    from .loaders import pretrained_dir, runs_dir
    return [pretrained_dir(), runs_dir()]


def pick_runs() -> list[str]:
    """Choose one run, or two to compare (default: ``probe_data.default_pair_of_runs``, the
    smallest- and largest-γ runs committed at the top of pretrained/).

    A run picked on another page (``ui.state.selected_run``, e.g. a Phase diagram
    cell) becomes run A once, as the Train page's ``saved_run_picker`` does.
    """
    paths = probe_data.available_runs()
    warn_bad_runs()  # folders that cannot be opened: one warning (several: listed in an expander)
    if not paths:
        st.warning("No saved runs yet: train one on the Train page, or commit one under pretrained/.")
        return []
    lo, hi = probe_data.default_pair_of_runs(paths)
    selected = state.selected_run()
    if selected and selected != st.session_state.get("inside_applied_selected"):
        st.session_state["inside_applied_selected"] = selected
        if str(selected) in paths:
            state.set_inside_run_a(str(selected))
    # ?runs=A or ?runs=A,B: looked up among the listed runs only (once per distinct value)
    url_state.inside_from_url(paths, url_roots())
    if state.inside_run_a() not in paths:
        state.set_inside_run_a(lo if lo in paths else paths[0])
    # large fonts: one box a row (side by side they showed "committed · paper-replica_bf16_", which
    # does not tell the runs apart)
    c1, c2, c3 = ((st.container(), st.container(), st.container()) if state.large_fonts()
                  else st.columns([4, 2, 4], vertical_alignment="bottom"))
    a = c1.selectbox("run", paths, key=state.INSIDE_RUN_A, format_func=probe_data.choice_label)
    # Defaults go into session state, never as value=/index=: the link (?runs=) and other pages
    # (compare_with) set these keys, and a widget given both warned "created with a default
    # value but also had its value set via the Session State API" in the server log.
    st.session_state.setdefault(state.INSIDE_COMPARE, hi is not None)
    compare = c2.toggle("compare", key=state.INSIDE_COMPARE,
                        help="show a second run side by side, with the same controls")
    if not compare:
        return [a]
    rest = [p for p in paths if p != a]
    if not rest:
        st.caption("Only one run exists: nothing to compare with yet.")
        return [a]
    if st.session_state.get(state.INSIDE_RUN_B) not in rest:
        st.session_state[state.INSIDE_RUN_B] = hi if hi in rest else rest[0]
    b = c3.selectbox("compare with", rest, key=state.INSIDE_RUN_B, format_func=probe_data.choice_label)
    return [a, b]

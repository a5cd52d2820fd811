"""Large fonts and presenter mode: the chart settings that keep a 1280×720 projector readable.
Each test pins one defect seen in large-fonts mode at 1280×720 (the browser checks are in
tests/test_browser_lesson.py)."""
from __future__ import annotations

import numpy as np
import torch

from core import probes
from core.presets import get_preset
from core.model import build_model
from ui import chart_style, charts, probe_charts, sidebar

torch.set_num_threads(1)


def _accuracy_frame():
    history = [{"epoch": e, "seen_test_accuracy": 0.5, "held_out": {"4,3": {"inferential": 0.1, "symmetric": 0.8}}}
               for e in range(3)]
    return charts.accuracy_frame(history, get_preset("tiny").task)


def test_large_font_legends_sit_under_the_plot():
    """On the right, the 20 px legend labels of the accuracy chart ate its plot (~40 px wide in a
    half-width column): with large fonts the legend goes under the plot, one entry a line."""
    large = charts.accuracy_chart(_accuracy_frame(), large=True).to_dict()["config"]["legend"]
    # ``symbolDirection`` (set before) was overridden by Vega-Lite's bottom-legend default and the
    # entries stayed on one line, cut at the chart's edge; ``direction`` is what it reads
    assert large["orient"] == "bottom" and large["direction"] == "vertical"
    # ... which turns a colour bar vertical too: the phase heatmap's keeps it one line high
    import pandas as pd
    from ui import phase_charts
    frame = pd.DataFrame({"gamma": [0.5], "value": [0.5], "std": [0.0], "seen": [1.0], "fitted": [True],
                          "cell": ["c"], "panel": ["(4,3) as x−6: symmetric accuracy"], "inferential": [0.0],
                          "symmetric": [0.5], "other": [0.5], "n_runs": [1], "outcomes": ["x"]})
    spec = phase_charts.heatmap(frame, "gamma", None, None, large=True).to_dict()
    (rect,) = [l for l in spec["spec"]["layer"] if "color" in l.get("encoding", {})
               and l["encoding"]["color"].get("type") == "quantitative"]
    assert rect["encoding"]["color"]["legend"]["direction"] == "horizontal"
    assert charts.accuracy_chart(_accuracy_frame(), large=False).to_dict()["config"]["legend"]["orient"] == "right"


def test_projector_chart_text_is_at_least_20_px():
    for f in (chart_style.fonts(True), chart_style.fonts(True, dense=True)):
        assert min(v for k, v in f.items() if k in ("label", "title", "legend", "text")) >= 20


def _flow(large: bool) -> list[str]:
    cfg = get_preset("tiny").replace(**{"model.n_layers": 3})
    model = build_model(cfg, torch.Generator().manual_seed(0))
    tokens = probes.default_sequence(cfg.task)
    sp = probes.sequence_probe(model, cfg.task, tokens)
    chart, _ = probe_charts.flow_diagram(probes.information_flow(sp["attn"], sp["key_pos"]), sp["tokens"], large)
    spec = chart.to_dict()
    datasets = spec.get("datasets", {})
    return [r["label"] for rows in datasets.values() for r in rows if isinstance(r, dict) and "label" in r
            and str(r.get("label", "")).startswith(("input", "after", "layer"))]


def test_flow_headers_are_short_with_large_fonts():
    """"after layer 1" at 20 px bold overlapped its neighbours in a half-width column."""
    assert _flow(False) == ["input", "after layer 1", "after layer 2", "after layer 3"]
    assert _flow(True) == ["input", "layer 1", "layer 2", "layer 3"]


def test_condensation_subtitle_is_two_lines():
    """One subtitle line was cut with "…" in a half-width column."""
    c = probes.condensation(np.random.default_rng(0).normal(size=(8, 4)), 0.7)
    chart, _ = probe_charts.condensation_heatmap(c, "W_Q(1)", large=True)
    sub = chart.to_dict()["title"]["subtitle"]
    assert isinstance(sub, list) and len(sub) == 2 and all(len(s) < 60 for s in sub)


def test_large_font_css_lets_metric_labels_wrap():
    """Verdict-card labels were cut ("infere…") at large fonts: they wrap instead."""
    assert "stMetricLabel" in sidebar.LARGE_CSS and "white-space: normal" in sidebar.LARGE_CSS


def test_flow_edge_labels_never_print_on_top_of_each_other():
    """Newcomer, lesson step 3 in presenter mode: "0.83" and "0.15" (two edges of layer 1 half a
    row apart) printed over each other. A label is kept only when no heavier one of its layer is
    within a row; every weight stays in the tooltip."""
    import pandas as pd

    lab = pd.DataFrame({"layer": [1, 1, 1, 2], "my": [3.5, 4.0, 5.5, 3.5], "weight": [0.83, 0.15, 0.13, 0.91]})
    assert sorted(probe_charts.spaced_labels(lab)) == [0, 2, 3]
    for large in (False, True):
        cfg = get_preset("tiny").replace(**{"model.n_layers": 3})
        model = build_model(cfg, torch.Generator().manual_seed(0))
        sp = probes.sequence_probe(model, cfg.task, probes.default_sequence(cfg.task))
        chart, _ = probe_charts.flow_diagram(probes.information_flow(sp["attn"], sp["key_pos"]), sp["tokens"], large,
                                             label_min=0.0)
        rows = [r for rows in chart.to_dict().get("datasets", {}).values() for r in rows
                if isinstance(r, dict) and "my" in r]
        assert rows
        for a in rows:
            for b in rows:
                if a is not b and a["layer"] == b["layer"]:
                    assert abs(a["my"] - b["my"]) >= 1.0


def test_condensation_subtitle_reads_as_one_sentence_when_joined():
    """Newcomer: the SVG text read "cos > 0.7;53%": the two subtitle lines are joined as they are."""
    c = probes.condensation(np.random.default_rng(0).normal(size=(8, 4)), 0.7)
    for large in (False, True):
        chart, _ = probe_charts.condensation_heatmap(c, "W_Q(1)", large=large)
        sub = chart.to_dict()["title"]["subtitle"]
        assert "cos > 0.7; 0% of" in "".join(sub)  # "cos > 0.7;0%" before

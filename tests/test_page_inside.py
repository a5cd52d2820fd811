"""AppTest of the "Inside the model" page and its chart builders.

The page reads runs made here (tiny 2-layer models, γ 0.3 and 0.9, with training snapshots,
plus one without), never the committed ones, so the tests do not change when
``pretrained/`` does. One run has a W_Q(1) built to condense: two directions with cosine 0.8,
so the number of groups depends on the threshold slider (1 group at 0.7, 2 at 0.9).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core import probes
from core.config import pair_key
from core.presets import get_preset
from core.runs import save_run
from core.model import build_model

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "3_Inside_the_model.py")
torch.set_num_threads(1)


def _history(cfg, model, snapshots: bool) -> list[dict]:
    held = {pair_key(p): {"inferential": 0.5, "symmetric": 0.1, "other": 0.4, "offsets": {}} for p in cfg.task.held_out}
    out = []
    for epoch in range(3):
        rec = {"epoch": epoch, "seen_test_accuracy": 0.3 * epoch, "held_out": held,
               "per_pair": {pair_key(p): 0.3 * epoch for p in cfg.task.pairs}}
        if snapshots:
            with torch.no_grad():  # make the snapshots differ from epoch to epoch
                model.W_E.mul_(1.0 + 0.5 * epoch)
            rec["snapshot"] = probes.training_snapshot(model, cfg.task)
        out.append(rec)
    return out


def _run(folder: Path, name: str, gamma: float, snapshots: bool = True, condensed: bool = False) -> Path:
    cfg = get_preset("tiny").replace(**{"model.n_layers": 2, "model.gamma": gamma})
    model = build_model(cfg, torch.Generator().manual_seed(0))
    if condensed:
        d, h = cfg.model.d_model, cfg.model.d_head
        u = torch.zeros(d)
        u[0] = 1.0
        v = torch.zeros(d)
        v[0], v[1] = 0.8, 0.6  # cos(u, v) = 0.8
        cols = torch.stack([u if j % 2 == 0 else v for j in range(h)], dim=1)  # [d_model, d_head]
        with torch.no_grad():
            model.blocks[0].attn.W_Q[0] = cols
    return save_run(folder / name, cfg, model, {"history": _history(cfg, model, snapshots)})


@pytest.fixture
def runs_env(tmp_path, monkeypatch):
    import streamlit as st

    pre, mine = tmp_path / "pretrained", tmp_path / "runs"
    small = _run(pre, "tiny_L2_g0.3_s0", 0.3)
    large = _run(pre, "tiny_L2_g0.9_s0", 0.9, condensed=True)
    old = _run(mine, "old_L2_g0.5_s0", 0.5, snapshots=False)
    monkeypatch.setenv("ANCHOR_PRETRAINED_DIR", str(pre))
    monkeypatch.setenv("ANCHOR_RUNS_DIR", str(mine))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield {"small": str(small), "large": str(large), "old": str(old)}
    st.cache_data.clear()
    st.cache_resource.clear()


def _app(view: str | None = None, **state):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=120)
    if view:
        at.session_state["inside_view"] = view
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def _text(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [f"{m.label}: {m.value}" for m in at.metric]
                     + [w.value for w in at.warning] + [e.value for e in at.error])


def test_defaults_compare_smallest_and_largest_gamma(runs_env):
    at = _app()
    assert not at.exception
    assert at.selectbox(key="inside_run_a").value == runs_env["small"]
    assert at.selectbox(key="inside_run_b").value == runs_env["large"]
    text = _text(at)
    assert "tiny_L2_g0.3_s0 (γ 0.3)" in text and "tiny_L2_g0.9_s0 (γ 0.9)" in text
    assert text.count("the model predicts") == 2
    assert "key 99, pair (4, 3)" in text and "inferential target **89**, symmetric **93**" in text


def test_changing_the_key_and_typing_a_sequence(runs_env):
    at = _app()
    at.number_input(key="inside_key").set_value(50).run()
    assert "key 50, pair (4, 3)" in _text(at) and "inferential target **40**" in _text(at)
    at.text_input(key="inside_typed").set_value("57 33 80 1 2 64 91 22 45").run()
    assert "key 80, pair (1, 2)" in _text(at) and "inferential target **86**" in _text(at)
    at.text_input(key="inside_typed").set_value("57 33 80 1 64 2 91 22 45").run()
    assert not at.exception and any("adjacent" in e.value for e in at.error)


@pytest.mark.parametrize("view, expect", [
    ("Answers by position", "Over all key positions"),
    ("Fused vectors", "Symmetric-pair distance ratio"),
    ("Same-output similarity", "Boxed minus other cells"),
    ("Condensation", "groups (≥ 2 neurons)"),
    ("Embeddings", "order along PC1"),
    ("Spectra", "top-2 eigenvalue share"),
    ("Over training", "W_Q(1) groups at epoch"),
])
def test_every_view_renders(runs_env, view, expect):
    at = _app(view)
    assert not at.exception, at.exception
    assert expect in _text(at)
    assert len(at.get("vega_lite_chart")) >= 2  # one chart per run at least


def test_condensation_threshold_slider(runs_env):
    at = _app("Condensation", inside_compare=False, inside_run_a=runs_env["large"])
    assert [m.value for m in at.metric][:2] == ["1", "100%"]
    at.slider(key="inside_cond_thr").set_value(0.9).run()
    assert [m.value for m in at.metric][:2] == ["2", "100%"]


def test_over_training_slider_and_runs_without_snapshots(runs_env):
    at = _app("Over training")
    assert "W_Q(1) groups at epoch 2" in _text(at)  # the last snapshot first
    at.select_slider(key="inside_train_epoch").set_value(1).run()
    assert "W_Q(1) groups at epoch 1" in _text(at) and "W_Q(1) groups at epoch 2" not in _text(at)
    at = _app("Over training", inside_run_a=runs_env["old"], inside_compare=False)
    assert any("no training snapshots" in w.value for w in at.warning)


def test_single_run_and_large_fonts(runs_env):
    at = _app(inside_compare=False)
    assert _text(at).count("the model predicts") == 1
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["config"]["axis"]["labelFontSize"] == 11
    at = _app(inside_compare=False, large_fonts=True)
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["config"]["axis"]["labelFontSize"] == 20  # projector: every chart text ≥ 20 px


# -- chart builders: big data must not hit altair's MaxRowsError ------------------------------
def test_big_charts_serialise():
    from ui import probe_charts

    rng = np.random.default_rng(0)
    c = probes.condensation(rng.standard_normal((64, 128)))
    chart, frame = probe_charts.condensation_heatmap(c, "W", False)
    assert len(frame) == 128 * 128
    chart.to_dict()
    xy = rng.standard_normal((10_000, 2))
    a1, a2 = rng.integers(1, 5, 10_000), rng.integers(1, 5, 10_000)
    chart, frame = probe_charts.pair_scatter(xy, a1, a2, [1, 2, 3, 4], "t", True)
    assert len(frame) == 10_000
    chart.to_dict()


def test_pair_palette_pairs_share_a_hue():
    from ui import probe_charts

    labels, colours, shapes = probe_charts.pair_palette([1, 2, 3, 4])
    assert len(labels) == 16 == len(set(labels))
    c = dict(zip(labels, colours))
    assert c["(3,4)"] == probe_charts.OKABE_ITO[5] and c["(4,3)"] == probe_charts._lighten(probe_charts.OKABE_ITO[5])
    assert len(set(colours)) == 16


def test_flow_routes():
    from ui import probe_charts

    assert probe_charts.flow_route(1, 2, "key", "anchor 1") == "inferential route"
    assert probe_charts.flow_route(2, 2, "anchor 2", "last") == "inferential route"
    assert probe_charts.flow_route(1, 2, "anchor 1", "last") == "symmetric route"
    assert probe_charts.flow_route(2, 2, "key", "last") == "symmetric route"
    assert probe_charts.flow_route(1, 2, "noise 0", "last") == "other"


def test_reading_says_when_a_run_does_not_show_the_paper():
    from types import SimpleNamespace

    from ui.probe_views import reading

    def run(inf: float, sym: float, seen: float = 0.99):
        rec = {"seen_test_accuracy": seen, "held_out": {"4,3": {"inferential": inf, "symmetric": sym, "other": 0.0}}}
        return SimpleNamespace(metrics={"history": [rec]})

    assert "which is what this run found" in reading(run(0.0, 1.0), "condensation", 0.06)
    mismatch = reading(run(1.0, 0.0), "condensation", 0.06)
    assert "by our own rough cut, the picture of a **symmetric** solution" in mismatch
    assert "not the paper's" in mismatch and "comparison between a small and a large γ" in mismatch
    assert "which is what this run found" in reading(run(1.0, 0.0), "order", 0.95)
    assert "fusing (a,b) with (b,a)" in reading(run(0.0, 1.0), "fused", 0.08)
    assert "nothing to check it against" in reading(run(0.5, 0.1, seen=0.5), "eigen", 0.4)


def test_centring_toggle(runs_env):
    at = _app("Same-output similarity")
    assert "; centred: " in _text(at)
    assert "With the vectors centred (the toggle above): γ 0.3 →" in _text(at)  # both modes compared
    at.toggle(key="inside_sim_centre").set_value(True).run()
    assert not at.exception and "; raw: " in _text(at) and "v, centred" in _text(at)
    assert "With the vectors raw (the toggle above): γ 0.3 →" in _text(at)


def test_tsne_projection_of_a_subset(runs_env):
    at = _app("Fused vectors", inside_compare=False, inside_fused_n=1000)
    at.radio(key="inside_fused_method").set_value("tsne").run()
    at.select_slider(key="inside_fused_tsne_n").set_value(500).run()
    assert not at.exception
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "TSNE, 500 sequences" in json.dumps(spec["title"])


def test_compare_with_a_run_of_another_task(runs_env, tmp_path):
    import streamlit as st

    cfg = get_preset("tiny").replace(**{"model.n_layers": 2, "task.item_max": 60})
    other = save_run(Path(runs_env["old"]).parent / "narrow_L2_g0.5_s0", cfg,
                     build_model(cfg, torch.Generator().manual_seed(0)), {"history": _history(cfg, None, False)})
    st.cache_data.clear()
    at = _app(inside_run_b=str(other))
    assert not at.exception
    assert any("does not fit this run's task" in e.value for e in at.error)
    assert _text(at).count("the model predicts") == 1  # the first run still draws


def test_grid_runs_are_offered_and_a_run_selected_elsewhere_opens_as_run_a(runs_env):
    """Committed grid runs (pretrained/<grid>/<run>) are in the picker; ``selected_run`` (set by
    the Phase diagram page) becomes run A once, then the reader's own choice stands."""
    grid_run = str(_run(Path(runs_env["small"]).parent / "phase_demo", "L2_g0.5_s0", 0.5, snapshots=False))
    at = _app("Embeddings")
    assert "committed · phase_demo/L2_g0.5_s0 (γ 0.5)" in at.selectbox(key="inside_run_a").options  # grids reuse names
    assert at.selectbox(key="inside_run_a").value == runs_env["small"]  # the default is unchanged
    at.session_state["selected_run"] = grid_run
    at.run()
    assert not at.exception
    assert at.selectbox(key="inside_run_a").value == grid_run
    at.selectbox(key="inside_run_a").set_value(runs_env["large"]).run()
    assert at.selectbox(key="inside_run_a").value == runs_env["large"]  # not pulled back to selected_run


def _metrics_seen(path: str, seen: float) -> None:
    m = Path(path) / "metrics.json"
    metrics = json.loads(m.read_text())
    metrics["history"][-1]["seen_test_accuracy"] = seen
    m.write_text(json.dumps(metrics))


def test_default_pair_prefers_committed_top_level_fitted_runs(tmp_path, monkeypatch):
    from ui.probe_data import default_pair_of_runs

    pre, mine = tmp_path / "pretrained", tmp_path / "runs"
    monkeypatch.setenv("ANCHOR_PRETRAINED_DIR", str(pre))
    mid = str(_run(pre, "b_L2_g0.6_s0", 0.6, snapshots=False))
    hi_unfit = str(_run(pre, "a_L2_g1_s0", 1.0, snapshots=False))
    hi_fit = str(_run(pre, "z_L2_g1_s1", 1.0, snapshots=False))
    _metrics_seen(hi_fit, 0.95)           # a_… comes first by name, but z_… fits the seen pairs
    grid = str(_run(pre / "phase_demo", "L2_g0.1_s0", 0.1, snapshots=False))  # smaller γ, but a grid run
    mine_lo = str(_run(mine, "mine_L2_g0.2_s0", 0.2, snapshots=False))        # smaller γ, but the user's
    assert default_pair_of_runs([mid, hi_unfit, hi_fit, grid, mine_lo]) == (mid, hi_fit)
    _metrics_seen(hi_unfit, 0.95)         # both fitted: the name decides
    assert default_pair_of_runs([mid, hi_unfit, hi_fit, grid, mine_lo]) == (mid, hi_unfit)
    # fewer than two committed runs: every run counts
    assert default_pair_of_runs([mid, grid, mine_lo]) == (grid, mid)
    assert default_pair_of_runs([mid]) == (mid, None)


def test_condensation_axes_have_whole_number_ticks():
    from ui import probe_charts

    c = probes.condensation(np.random.default_rng(0).standard_normal((16, 6)))
    chart, _ = probe_charts.condensation_heatmap(c, "W", False)
    spec = chart.to_dict()
    layer = spec["layer"][0] if "layer" in spec else spec["hconcat"][0]["layer"][0]
    for ax in ("x", "y"):
        axis = layer["encoding"][ax]["axis"]
        assert axis["format"] == "d" and axis["tickMinStep"] == 1


def test_default_pair_is_the_clearest_symmetric_inferential_contrast(tmp_path, monkeypatch, make_run):
    """A committed symmetric + inferential pair differing only in γ wins over smallest-vs-largest γ;
    clear verdicts beat leaning ones, a wider model beats a narrower one, and a pair whose
    schedules differ is never a contrast."""
    from ui.probe_data import contrast_pair, default_pair_of_runs

    pre = tmp_path / "pretrained"
    monkeypatch.setenv("ANCHOR_PRETRAINED_DIR", str(pre))
    lo = str(make_run(pre, "a_g0.3", inferential=0.0, symmetric=0.5, seen=0.99, **{"model.gamma": 0.3}))
    narrow_sym = str(make_run(pre, "n_g0.5", inferential=0.0, symmetric=0.97, **{"model.gamma": 0.5}))
    narrow_inf = str(make_run(pre, "n_g0.9", inferential=0.7, symmetric=0.0, **{"model.gamma": 0.9}))
    assert default_pair_of_runs([lo, narrow_sym, narrow_inf]) == (narrow_sym, narrow_inf)
    wide = {"model.d_model": 32, "model.d_ff": 64}
    wide_sym = str(make_run(pre, "w_g0.5", inferential=0.0, symmetric=0.97, **{"model.gamma": 0.5}, **wide))
    wide_inf = str(make_run(pre, "w_g0.8", inferential=0.96, symmetric=0.0, **{"model.gamma": 0.8}, **wide))
    other_sched = str(make_run(pre, "w_g0.8_long", inferential=0.99, symmetric=0.0,
                               **{"model.gamma": 0.8, "train.epochs": 3}, **wide))
    paths = [lo, narrow_sym, narrow_inf, wide_sym, wide_inf, other_sched]
    assert contrast_pair(paths) == (wide_sym, wide_inf)              # both clear and wider
    assert contrast_pair([narrow_sym, other_sched]) is None         # different width and schedule
    assert contrast_pair([narrow_inf, narrow_sym]) == (narrow_sym, narrow_inf)
    # at equal clarity and width, a pair of one seed beats a pair of two (the faithful pair's case)
    wide_sym2 = str(make_run(pre, "w_g0.5_s2", inferential=0.0, symmetric=0.97,
                             **{"model.gamma": 0.5, "train.seed": 2}, **wide))
    wide_inf2 = str(make_run(pre, "w_g0.8_s2", inferential=0.96, symmetric=0.0,
                             **{"model.gamma": 0.8, "train.seed": 2}, **wide))
    assert contrast_pair([wide_sym2, wide_inf]) == (wide_sym2, wide_inf)  # seeds differ: still a contrast
    assert contrast_pair([wide_sym2, wide_inf, wide_inf2]) == (wide_sym2, wide_inf2)


def test_readings_use_the_right_article(monkeypatch):
    """Newcomer: the Spectra tab said "a inferential solution"."""
    from ui import probe_views

    monkeypatch.setattr(probe_views, "held_out_verdict", lambda run: ("4,3", "inferential"))
    same = probe_views.reading(None, "eigen", 0.9)  # the inferential picture, and an inferential run
    other = probe_views.reading(None, "eigen", 0.1)  # the symmetric picture
    assert "for an **inferential** solution, which is what" in same
    assert "of a **symmetric** solution, though" in other
    assert "a **inferential**" not in same + other


def test_compare_sentence_calls_a_tiny_difference_too_close():
    """Newcomer: "γ 0.5 → 0.04, γ 0.8 → 0.06 … as in the paper" read a 0.02 difference as a result."""
    from ui.probe_views import compare_sentence
    close = compare_sentence({"a_g0.5_s1": 0.04, "a_g0.8_s1": 0.06}, "same-output similarity", "larger γ")
    assert "too little" in close and "as in the paper" not in close and "opposite" not in close
    assert "as in the paper" in compare_sentence({"a_g0.5_s1": 0.05, "a_g0.8_s1": 0.25}, "share", "larger γ")
    assert "opposite" in compare_sentence({"a_g0.5_s1": 0.25, "a_g0.8_s1": 0.05}, "share", "larger γ")


def test_position_sentence_reads_one_rule_or_a_split():
    from ui.probe_views import position_sentence

    base = {"pair": (4, 3), "offsets": [-10, -6, -16], "inferential": -10, "symmetric": -6,
            "answer_of": {-10: [], -6: [(3, 4)], -16: [(4, 4)]}, "positions": [0, 1, 2], "n": [10, 10, 10]}
    one = position_sentence({**base, "counts": np.array([[10, 0, 0, 0], [9, 0, 1, 0], [10, 0, 0, 0]]),
                             "overall": [29 / 30, 0, 1 / 30, 0]})
    assert "same answer wins at every key position: x−10 (composes), on at least 90%" in one
    split = position_sentence({**base, "counts": np.array([[0, 0, 10, 0], [0, 0, 10, 0], [10, 0, 0, 0]]),
                               "overall": [1 / 3, 0, 2 / 3, 0]})
    assert "x−16 (= (4,4)) **67%**" in split
    assert "depends on where the key sits" in split and "x−16 (= (4,4)) at positions 0, 1" in split
    assert "x−10 (composes) at position 2" in split


def test_answer_greys_keep_an_answer_s_grey_across_panels():
    from ui.probe_charts import ANSWER_GREYS, answer_greys, answer_position_bars

    a = {"pair": (4, 3), "offsets": [-10, -6, -16], "inferential": -10, "symmetric": -6, "overall": [0.1, 0, 0.9, 0],
         "answer_of": {}, "positions": [0], "n": [10], "counts": np.array([[1, 0, 9, 0]])}
    b = {**a, "offsets": [-10, -6, -13, -7], "overall": [0.6, 0, 0.3, 0.1, 0], "counts": np.array([[6, 0, 3, 1, 0]])}
    greys = answer_greys([a, b])
    assert greys == {-16: ANSWER_GREYS[0], -13: ANSWER_GREYS[1], -7: ANSWER_GREYS[2]}
    spec = answer_position_bars(b, greys=greys)[0].to_dict()
    scale = next(l["encoding"]["color"]["scale"] for l in spec["layer"] if "scale" in l["encoding"]["color"])
    assert dict(zip(scale["domain"], scale["range"]))["x−13"] == ANSWER_GREYS[1]


def test_run_header_says_leaning_under_the_bar(tmp_path, monkeypatch, make_run):
    import streamlit as st

    pre = tmp_path / "pretrained"
    lean = make_run(pre, "lean_g0.8", inferential=0.87, symmetric=0.0, **{"model.gamma": 0.8})
    clear = make_run(pre, "clear_g0.5", inferential=0.0, symmetric=0.99, **{"model.gamma": 0.5})
    monkeypatch.setenv("ANCHOR_PRETRAINED_DIR", str(pre))
    monkeypatch.setenv("ANCHOR_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_data.clear()
    at = _app(**{"inside_run_a": str(clear), "inside_run_b": str(lean), "inside_compare": True})
    text = _text(at)
    assert "(4,3) answered **leaning inferential**" in text and "(4,3) answered **symmetric**" in text

"""The consistency fixes of issue 9 (item 6): one colour meaning everywhere, the split of each
number, the both-unseen variant's wording, pickers that tell committed and saved runs apart,
"Open in Train" pre-filling the controls, the Fused-vectors highlight and the glossary."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.config import TaskConfig
from core.presets import get_preset
from ui import charts, glossary, palette, tables

torch.set_num_threads(1)

BOTH_UNSEEN = TaskConfig(held_out=((4, 3), (3, 4)), overrides=())


# -- one colour meaning ------------------------------------------------------------------------
def test_a_run_is_coloured_by_its_verdict_not_its_place():
    assert palette.run_colours(["symmetric", "inferential"]) == [palette.SYMMETRIC, palette.INFERENTIAL]
    assert palette.run_colours(["inferential", "symmetric"]) == [palette.INFERENTIAL, palette.SYMMETRIC]
    # unknown counts as other: a second grey run, a lighter grey
    assert palette.run_colours(["other", "not fitted", None]) == [palette.OTHER, palette.NOT_FITTED,
                                                                   palette.shade(palette.OTHER, 0.45)]
    two = palette.run_colours(["symmetric", "symmetric", "symmetric"])
    assert two[0] == palette.SYMMETRIC and len(set(two)) == 3  # repeats get shades of the same hue
    assert all(c not in (palette.INFERENTIAL,) for c in two)


def _colour_range(spec: dict) -> dict[str, str]:
    """The first colour scale (domain -> range) found in a Vega-Lite spec, layers and facets included."""
    stack = [spec]
    while stack:
        node = stack.pop(0)
        scale = node.get("encoding", {}).get("color", {}).get("scale") if isinstance(node, dict) else None
        if scale and "domain" in scale and "range" in scale:
            return dict(zip(scale["domain"], scale["range"]))
        if isinstance(node, dict):
            stack += [node[k] for k in ("spec",) if k in node] + list(node.get("layer", []))
    raise AssertionError("no colour scale")


def test_spectra_draw_the_symmetric_run_vermillion_whatever_its_place():
    from ui import probe_charts

    curves = {"γ 0.9": np.array([1.0, 0.1]), "γ 0.5": np.array([1.0, 0.5])}  # the symmetric run second
    chart, _ = probe_charts.spectrum_lines(curves, "t", outcomes=["inferential", "symmetric"])
    got = _colour_range(chart.to_dict())
    assert got == {"γ 0.9": palette.INFERENTIAL, "γ 0.5": palette.SYMMETRIC}
    per = {"γ 0.5": {"W_Q.0": np.array([2.0, 1.0])}, "γ 0.9": {"W_Q.0": np.array([3.0, 1.0])}}
    chart, _ = probe_charts.singular_value_grid(per, {}, outcomes=["symmetric", "inferential"])
    got = _colour_range(chart.to_dict())
    assert got == {"γ 0.5": palette.SYMMETRIC, "γ 0.9": palette.INFERENTIAL}


def test_over_training_keeps_route_colours_for_routes_only():
    from ui import probe_charts
    from ui.probe_views import snapshot_colours, snapshot_frames

    snap = {"embed_eigen_top": [3.0, 2.0, 1.0], "wq1_condensation": {"share_in_groups": 0.5}, "embedding_order": 0.9}
    hist = [{"epoch": e, "seen_test_accuracy": 0.9, "snapshot": snap,
             "held_out": {"4,3": {"inferential": 0.5, "symmetric": 0.2, "other": 0.3}}} for e in (0, 1)]
    fr = snapshot_frames(hist, TaskConfig())
    c = snapshot_colours(fr)
    assert c["accuracy"] == {"(4,3) inferential": palette.INFERENTIAL, "(4,3) symmetric": palette.SYMMETRIC,
                             "seen pairs": palette.SEEN}  # seen pairs black, as on the Train page
    assert not set(c["eigen"].values()) & {palette.INFERENTIAL, palette.SYMMETRIC}
    for part, series, value in (("eigen", "eigenvalue", "value"), ("condensation", "measure", "value")):
        spec = probe_charts.snapshot_lines(fr[part], value, series, "t", 1, colours=c[part]).to_dict()
        used = set(_colour_range(spec["layer"][0]).values())
        assert not used & {palette.INFERENTIAL, palette.SYMMETRIC}, part
    # both unseen: one accuracy series for (4,3), not two identical ones
    fr = snapshot_frames(hist, BOTH_UNSEEN)
    assert list(dict.fromkeys(fr["accuracy"]["series"])) == ["(4,3) x−10 either way: composition only", "seen pairs"]


def test_seen_pairs_are_black_on_the_train_curves_and_the_outcome_dots_use_the_palette():
    frame = charts.accuracy_frame([{"epoch": 0, "seen_test_accuracy": 0.5,
                                    "held_out": {"4,3": {"inferential": 0.1, "symmetric": 0.2}}}], TaskConfig())
    spec = charts.accuracy_chart(frame).to_dict()
    got = _colour_range(spec)
    assert got["seen pairs (test split)"] == palette.SEEN
    assert got["(4,3) as x−10: inferential (both splits)"] == palette.INFERENTIAL
    assert got["(4,3) as x−6: symmetric (both splits)"] == palette.SYMMETRIC


def test_fused_vectors_highlight_the_held_out_pair_and_its_mirror():
    from ui import probe_charts

    labels, colours, _ = probe_charts.highlight_palette([1, 2, 3, 4], (4, 3))
    c = dict(zip(labels, colours))
    assert c["(4,3)"] == palette.HELD_OUT and c["(3,4)"] == palette.SYMMETRIC
    assert {c[k] for k in labels if k not in ("(4,3)", "(3,4)")} == {palette.LIGHT}
    rng = np.random.default_rng(0)
    a1, a2 = np.array([4, 1, 3, 2]), np.array([3, 2, 4, 1])
    _, frame = probe_charts.pair_scatter(rng.standard_normal((4, 2)), a1, a2, [1, 2, 3, 4], "t", highlight=(4, 3),
                               x_domain=[-3, 3], y_domain=[-3, 3])
    assert list(frame["pair"])[-2:] in (["(4,3)", "(3,4)"], ["(3,4)", "(4,3)"])  # drawn last, on top


# -- the split of each number ------------------------------------------------------------------
def test_verdict_card_and_pair_grid_name_the_split_of_each_number():
    from ui.run_report import verdict_metrics

    h = {"inferential": 0.04, "symmetric": 0.9, "other": 0.06}
    labels = [lab for lab, _ in verdict_metrics(TaskConfig(), "4,3", 0.99, h)]
    assert labels[0] == "seen pairs, test split"
    assert all(lab.endswith("both splits") for lab in labels[1:]) and len(labels) == 4
    rows = charts.pair_accuracy_rows({"4,3": 0.07, "1,2": 1.0}, TaskConfig(), {"4,3": h})
    held = rows[rows["role"] == "held out"].iloc[0]
    assert held["accuracy"] == pytest.approx(0.04) and held["split"] == "both splits"  # the card's number
    assert (rows[rows["role"] != "held out"]["split"] == "test split").all()
    old = charts.pair_accuracy_rows({"4,3": 0.07}, TaskConfig())  # a run without a held-out record
    assert old[old["role"] == "held out"].iloc[0]["split"] == "test split"


# -- the both-unseen variant --------------------------------------------------------------------
def test_both_unseen_is_never_x10_or_x10():
    assert charts.held_out_answers(TaskConfig(), (4, 3)) == "x−10 or x−6"
    assert charts.held_out_answers(BOTH_UNSEEN, (4, 3)) == "x−10 either way: composition only"
    assert charts.held_out_answers(BOTH_UNSEEN, (4, 3), key=80) == "70 either way: composition only"
    grid = tables.pair_table(BOTH_UNSEEN).data
    assert grid.loc["first 4 (x−8)", "then 3 (x−2)"] == "? · held out (x−10 either way: composition only)"
    bullets = "\n".join(tables.puzzle_answers(BOTH_UNSEEN))
    assert "x−10 or x−10" not in bullets and "x−10: symmetric" not in bullets
    assert bullets.count("either way (composition only)") == 2
    # a held-out pair whose trained mirror has the same value: the copy and composition agree
    agree = TaskConfig(held_out=((2, 1),), overrides=((3, 4, -6),))
    assert charts.held_out_answers(agree, (2, 1)) == "x+6 either way: copy and composition agree"
    frame = charts.accuracy_frame([{"epoch": 0, "seen_test_accuracy": 1.0, "held_out": {
        "4,3": {"inferential": 0.3, "symmetric": 0.3}, "3,4": {"inferential": 0.2, "symmetric": 0.2}}}], BOTH_UNSEEN)
    assert sorted(set(frame["series"]))[:2] == ["(3,4) as x−10 either way: composition only (both splits)",
                                                "(4,3) as x−10 either way: composition only (both splits)"]


def test_task_editor_notes_present_appendix_e_for_what_it_is():
    from ui.run_report import verdict_metrics
    from ui.task_editor import held_out_notes

    notes = held_out_notes(BOTH_UNSEEN)
    assert len(notes) == 1 and notes[0].startswith("Both (4,3) and (3,4) are unseen")
    assert "composition only" in notes[0] and "cannot tell" not in notes[0]
    assert "cannot tell reasoning from memorizing" in held_out_notes(TaskConfig(held_out=((2, 1),)))[0]
    assert held_out_notes(TaskConfig()) == []
    labels = [lab for lab, _ in verdict_metrics(BOTH_UNSEEN, "4,3", 0.99, {"inferential": 0.8, "symmetric": 0.8,
                                                                            "other": 0.2})]
    assert labels == ["seen pairs, test split", "(4,3) as x−10, both splits",  # one number, not "x−10 or x−10"
                      "(4,3) other answers, both splits"]


def test_appendix_e_panels_say_composition_only():
    from ui import phase_data

    spec = {"name": "appendix-e_x", "preset": "tiny", "grid": {"train.seed": [0]},
            "fixed": {"task.held_out": [[3, 4], [4, 3]], "task.overrides": []}}
    cfg = phase_data.config_of({"spec": spec})
    assert cfg.task.overrides == () and (3, 4) in cfg.task.held_out
    assert phase_data.panel_title("inferential_4_3", cfg) == "(4,3) as x−10: composition only"
    assert phase_data.panel_title("symmetric", get_preset("tiny")) == "(4,3) as x−6: symmetric accuracy"


# -- the Puzzle's split column ------------------------------------------------------------------
def test_split_column_names_m():
    assert tables.split_column(TaskConfig()) == "key split (test: x mod 7 = p)"
    assert tables.split_column(TaskConfig(split_modulus=9)) == "key split (test: x mod 9 = p)"
    assert tables.modulus_note(TaskConfig()) == "m = 7, the sequence length minus 2"


# -- run pickers ----------------------------------------------------------------------------------
def test_picker_labels_tell_committed_and_saved_runs_apart(tmp_path, monkeypatch):
    from ui.loaders import run_source, source_label

    pre, mine = tmp_path / "pretrained", tmp_path / "runs"
    monkeypatch.setenv("ANCHOR_PRETRAINED_DIR", str(pre))
    monkeypatch.setenv("ANCHOR_RUNS_DIR", str(mine))
    same = "cpu-demo_L2_g0.5_s0"
    assert run_source(str(pre / same)) == "committed" and run_source(str(mine / same)) == "saved"
    assert source_label(str(pre / same)) == f"committed · {same}"
    assert source_label(str(mine / same)) == f"saved · {same}"
    assert source_label(str(pre / "phase_demo" / "L2_g0.5_s0")) == "committed · phase_demo/L2_g0.5_s0"
    assert source_label(str(pre / same), f"{same} (γ 0.5)") == f"committed · {same} (γ 0.5)"
    assert source_label(str(tmp_path / "elsewhere" / same)).startswith("other · ")


def test_every_picker_shows_the_source(app_env, make_run):
    make_run(app_env.pretrained, "twin_g0.5", inferential=0.9)
    make_run(app_env.runs, "twin_g0.5", inferential=0.0, symmetric=0.9)
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/2_Train.py").run()
    assert not at.exception
    opts = at.selectbox(key="train_run").options
    assert "committed · twin_g0.5" in opts and "saved · twin_g0.5" in opts


# -- Open in Train --------------------------------------------------------------------------------
def test_train_prefill_sets_every_control_from_the_run():
    from ui.run_controls import train_prefill

    cfg = get_preset("cpu-demo").replace(**{"model.gamma": 0.9, "model.n_layers": 3, "train.seed": 4,
                                            "train.lr_peak": 0.002, "task.held_out": ((3, 4), (4, 3)),
                                            "task.overrides": ()})
    state, differ = train_prefill(cfg, "cpu-demo")
    assert (state["train_preset"], state["train_gamma"], state["train_depth"], state["train_seed"],
            state["train_epochs"]) == ("cpu-demo", 0.9, 3, 4, cfg.train.epochs)
    assert state["train_held"] == ["3,4", "4,3"] and state["train_ovr_pair"] == "none"
    assert state["task_settings"]["held_out"] == ["3,4", "4,3"]
    assert differ == ["train.lr_peak = 0.002 (preset cpu-demo: 0.001)"]  # what the controls cannot set
    state, differ = train_prefill(get_preset("tiny").replace(**{"model.gamma": 0.33}))
    assert state["train_preset"] == "tiny" and state["train_gamma"] == 0.35 and "slider" in differ[-1]


def test_open_in_train_from_a_phase_cell_prefills_the_controls(app_env, make_run, tmp_path):
    from tests.test_page_phase import fake_grid

    fake_grid(make_run, tmp_path / "sweeps", app_env.pretrained, depths=(2,), gammas=(0.8,), seeds=(1,))
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/4_Phase_diagram.py").run()
    at.selectbox(key="phase_cell").set_value(at.selectbox(key="phase_cell").options[1]).run()
    assert not at.exception
    at.button(key="phase_open_train").click().run()
    assert not at.exception, at.exception
    assert at.slider(key="train_gamma").value == 0.8 and at.slider(key="train_depth").value == 2
    assert at.number_input(key="train_seed").value == 1 and at.selectbox(key="train_preset").value == "tiny"


# -- glossary -------------------------------------------------------------------------------------
def test_glossary_has_one_home_and_reaches_the_widgets(app_env):
    for name in ("gamma", "anchor", "key item", "inferential", "symmetric", "condensation"):
        assert glossary.definition(name) and glossary.term(name) in glossary.markdown()
    assert glossary.tip("gamma").startswith("**γ (initialization rate)**")
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/2_Train.py").run()
    assert glossary.definition("gamma") in at.slider(key="train_gamma").help
    assert any(e.label == "Glossary" for e in at.sidebar.expander)


def test_a_held_out_pair_is_never_labelled_train_in_the_split_column():
    """Newcomer review: the sequence builder showed "(4,3) held out · ? (70 or 74) · train"."""
    import numpy as np
    task = TaskConfig()
    batch = {"tokens": np.array([[30, 31, 80, 4, 3, 33, 34, 35, 36], [30, 31, 80, 1, 2, 33, 34, 35, 36]]),
             "a1": np.array([4, 1]), "a2": np.array([3, 2]), "key": np.array([80, 80]), "key_pos": np.array([2, 2])}
    df, _ = tables.sequence_frame(task, batch)
    col = df[tables.split_column(task)].tolist()
    assert col[0] == "train key · pair never trained" and col[1] == "train"  # 80 mod 7 = 3 ≠ 2

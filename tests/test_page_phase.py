"""AppTest checks of the Phase diagram page (pages/4_Phase_diagram.py) on a hand-made grid.

The grid is made of untrained ``tiny`` run folders whose metrics say what the test needs
(conftest ``make_run``), published with ``core.sweep_tables.copy_to`` exactly as the committed grid
is, into a temporary pretrained/ folder: the tests never need the committed grid.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.presets import get_preset
from core.sweep_spec import SweepSpec
from core.sweep_tables import copy_to

torch.set_num_threads(1)


def outcome_for(depth: int, gamma: float, seed: int) -> tuple[float, float, float]:
    """(seen, inferential, symmetric) of a made-up phase diagram: symmetric at small γ,
    inferential at large γ, deep models with the smallest γ unfit; seed 2 disagrees at γ 0.8."""
    if depth >= 2 and gamma <= 0.5:
        return 0.4, 0.0, 0.0
    if gamma <= 0.5 or (gamma == 0.8 and seed == 2):
        return 0.99, 0.02, 0.95
    return 0.99, 0.93, 0.01


def fake_grid(make_run, work: Path, dest: Path, depths=(1, 2), gammas=(0.5, 0.8, 1.0), seeds=(0, 1, 2),
              name: str = "phase_tiny") -> Path:
    spec = SweepSpec(name=name, preset="tiny", grid=(("model.n_layers", tuple(depths)),
                                                     ("model.gamma", tuple(gammas)), ("train.seed", tuple(seeds))))
    out = work / name
    (out / "runs").mkdir(parents=True)
    (out / "sweep.json").write_text(json.dumps({**spec.to_dict(), "base": spec.base_config.to_dict()}))
    for p in spec.points():
        L, g, s = p.get("model.n_layers"), p.get("model.gamma"), p.get("train.seed")
        seen, inf, sym = outcome_for(L, g, s)
        make_run(out / "runs", p.run_id, inferential=inf, symmetric=sym, seen=seen,
                 **{"model.n_layers": L, "model.gamma": g, "train.seed": s})
    return copy_to(out, dest, name=name)


def open_page(app_env) -> AppTest:
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/4_Phase_diagram.py").run()
    assert not at.exception, at.exception
    return at


def md(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_message_without_a_committed_grid(app_env):
    at = open_page(app_env)
    assert any("No committed phase diagram" in i.value and "--spec phase" in i.value for i in at.info)
    assert not at.error


@pytest.fixture
def grid(app_env, make_run, tmp_path):
    fake_grid(make_run, tmp_path / "sweeps", app_env.pretrained)
    return app_env


def test_heatmaps_views_and_honest_text(grid):
    at = open_page(grid)
    assert not at.error
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3  # a heatmap per panel (they stack on a phone) + outcome dots
    for c in charts[:2]:
        spec = json.loads(c.proto.spec)
        assert spec["facet"]["column"]["field"] == "panel" and "viridis" in c.proto.spec
    from ui import phase_views
    assert phase_views.chart_key(0) in at.session_state and phase_views.chart_key(1) in at.session_state
    text = md(at)
    # computed from the table: 2 symmetric cells (depth 1, γ 0.5 and 0.8 is 2-1 symmetric? no: 0.8 is inferential
    # by the paper rule mean), the deep small-γ corner unfit
    assert "as in the paper" in text and "below 90 %" in text and "runs disagree" in text
    assert "GPU-hours" in "\n".join(c.value for c in at.caption)
    for view in ("mean", "seed"):
        at.radio(key="phase_view").set_value(view).run()
        assert not at.exception
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["facet"]["row"]["field"] == "seed"  # per-seed small multiples


def test_selecting_a_cell_opens_its_run(grid):
    at = open_page(grid)
    box = at.selectbox(key="phase_cell")
    assert box.value is None and "selected_run" not in at.session_state
    assert "γ 1 · depth 1" in box.options
    box.set_value("L1_g1").run()
    assert not at.exception and not at.error
    path = at.session_state["selected_run"]
    assert Path(path) == grid.pretrained / "phase_tiny" / "L1_g1_s0"
    assert (Path(path) / "weights.safetensors").exists()
    # the cell's runs table lists its three seeds, and the result card says inferential
    frames = [d.value for d in at.dataframe]
    assert sorted(frames[0]["seed"]) == [0, 1, 2]
    assert any("inferential" in h.proto.body for h in at.get("html"))
    assert at.button(key="phase_recompute").disabled is False


def test_recompute_a_cell_queues_jobs(grid, monkeypatch):
    submitted = []

    class FakeJob:
        def __init__(self, i):
            self.id, self.active, self.state, self.progress, self.message, self.run_path = f"j{i}", True, "queued", 0.0, None, None

    from ui import jobs
    monkeypatch.setattr(jobs.JobQueue, "submit",
                        lambda self, cfg, preset, owner, runs_dir: submitted.append(cfg) or FakeJob(len(submitted)))
    at = open_page(grid)
    at.selectbox(key="phase_cell").set_value("L2_g0.8").run()
    at.button(key="phase_recompute").click().run()
    assert not at.exception
    assert [(c.model.n_layers, c.model.gamma, c.train.seed) for c in submitted] == [(2, 0.8, s) for s in (0, 1, 2)]


def test_recompute_a_cell_trains_it_in_the_background(grid):
    """The real queue: three tiny runs train in child processes; the page then compares them."""
    from ui.loaders import job_queue

    at = open_page(grid)
    at.selectbox(key="phase_cell").set_value("L1_g1").run()
    at.button(key="phase_recompute").click().run()
    assert not at.exception
    jobs = at.session_state["phase_jobs::phase_tiny::L1_g1"]
    assert [rid for rid, _ in jobs] == ["L1_g1_s0", "L1_g1_s1", "L1_g1_s2"]
    assert at.button(key="phase_recompute").disabled  # no second submission while they run
    q = job_queue()
    for _, jid in jobs:
        assert q.wait(jid, timeout=180).state == "done"
    at.run()
    table = at.dataframe[-1].value
    assert list(table["run"]) == ["L1_g1_s0", "L1_g1_s1", "L1_g1_s2"]
    assert all(v.startswith("0.93 → ") for v in table["inferential"])  # committed (made up) → recomputed
    assert len(list(grid.runs.iterdir())) == 3  # saved as the user's runs


def test_recompute_refused_by_the_server_cap_says_why(grid, monkeypatch):
    monkeypatch.setenv("ANCHOR_MAX_FLOPS", "1")  # every job is over the cap
    at = open_page(grid)
    at.selectbox(key="phase_cell").set_value("L1_g1").run()
    at.button(key="phase_recompute").click().run()
    assert not at.exception
    assert any("FLOP" in e.value for e in at.error)
    assert at.session_state["phase_jobs::phase_tiny::L1_g1"] == []


def test_the_chosen_cell_is_still_open_after_a_visit_elsewhere(grid):
    at = open_page(grid)
    at.radio(key="phase_view").set_value("mean").run()
    at.selectbox(key="phase_cell").set_value("L1_g1").run()
    at.switch_page("pages/1_The_puzzle.py").run()
    at.switch_page("pages/4_Phase_diagram.py").run()
    assert not at.exception
    assert at.selectbox(key="phase_cell").value == "L1_g1" and at.radio(key="phase_view").value == "mean"


def test_whole_diagram_command_publishes_where_the_app_reads(grid, monkeypatch):
    from ui import loaders
    from ui.phase_views import whole_diagram_command

    at = open_page(grid)
    (code,) = [c.value for c in at.code if "--copy-to" in c.value]
    assert f"--copy-to {grid.pretrained}" in code and "--copy-to pretrained/" not in code
    monkeypatch.setenv("ANCHOR_PRETRAINED_DIR", str(loaders.REPO / "pretrained"))
    cmd = whole_diagram_command("phase_tiny", {})
    assert cmd.endswith("--copy-to pretrained/") and "--spec pretrained/phase_tiny.json" in cmd


def test_seed_sentence_only_claims_what_the_seeds_show(make_run, app_env, tmp_path):
    from ui import phase_data

    def text(seeds, name):
        fake_grid(make_run, tmp_path / name, app_env.pretrained, depths=(1,), gammas=(0.5, 0.8), seeds=seeds,
                  name=name)
        df, meta = phase_data.load_table(app_env.pretrained, name)
        return "\n".join(phase_data.comparison(phase_data.cells(df, meta, "paper"), meta, phase_data.config_of(meta)))

    one = text((0,), "phase_one")
    assert "seed matters" not in one and "spread over seeds is not measured" in one
    agree = text((0, 1), "phase_agree")  # seeds 0 and 1 agree in every cell (only seed 2 differs)
    assert "seed matters" not in agree and "agree on the outcome" in agree
    assert "In 1 of 2 cells the runs disagree" in text((0, 2), "phase_mixed")


def test_finished_recompute_redraws_the_page(monkeypatch):
    """The live fragment reruns the whole page when jobs that were running at the last full draw
    have ended (cancelled here), so 'Recompute this cell' is enabled again."""
    import streamlit as st

    from ui import phase_views

    class Job:
        def __init__(self, state):
            self.state, self.progress, self.message, self.run_path = state, 0.3, "cancelled by the user", None

        @property
        def active(self):
            return self.state in ("queued", "running", "cancelling")

    class Queue:
        state = "cancelled"

        def poll(self, jid):
            return Job(self.state)

    reruns = []
    monkeypatch.setattr(phase_views, "job_queue", lambda: Queue())
    monkeypatch.setattr(st, "rerun", lambda **kw: reruns.append(kw))
    jobs = [("L1_g1_s0", "j1")]
    phase_views.live_body(jobs, [], None, None, drawn_active=False)  # drawn after they ended: nothing to redo
    assert reruns == []
    Queue.state = "running"
    phase_views.live_body(jobs, [], None, None, drawn_active=True)   # still running: the fragment alone updates
    assert reruns == []
    Queue.state = "cancelled"
    phase_views.live_body(jobs, [], None, None, drawn_active=True)   # ended since the page was drawn
    assert reruns == [{"scope": "app"}]


def test_a_small_scale_diagram_says_its_regime_before_the_chart(grid):
    """The tiny-preset grid is far from the paper's regime: the page says so, with the grid's own numbers."""
    at = open_page(grid)
    notes = [i.value for i in at.info if "Which regime this is" in i.value]
    assert len(notes) == 1
    tiny = get_preset("tiny")
    assert f"d_model {tiny.model.d_model}" in notes[0] and "docs/replication.md" in notes[0]


def test_the_paper_regime_needs_no_regime_note():
    from ui.phase_data import regime_note
    assert regime_note(get_preset("paper")) is None and regime_note(get_preset("paper-replica")) is None
    assert regime_note(get_preset("cpu-demo")) is not None


def test_the_one_cell_table_shows_a_dash_not_none_for_a_seed_without_weights():
    """Newcomer: the "One cell" table showed Python's None in the run column."""
    import pandas as pd

    from ui import phase_data

    runs = pd.DataFrame({"seed": [0, 1, 2], "inferential": [0.12345, 0.5, 0.9],
                         "run": ["phase_cpu-demo/L2_g0.3_s0", None, float("nan")]})
    table = phase_data.cell_runs_table(runs, ["seed", "inferential", "run"])
    assert list(table["run"]) == ["phase_cpu-demo/L2_g0.3_s0", "—", "—"]
    assert table["inferential"][0] == 0.123


def test_a_reversed_grid_is_called_reversed_and_pointed_to_the_paper_setting():
    """A small-width grid where copying sits at larger γ than composing is named the reverse of the
    paper, with the shares behind each colour (a cell 'leans' by its larger share, however small)."""
    import pandas as pd

    from ui import phase_data
    cells = pd.DataFrame({"gamma": [0.5, 0.5, 0.7, 0.7], "depth": [2, 3, 2, 3], "fitted": [True] * 4,
                          "inferential": [0.6, 0.7, 0.1, 0.05], "symmetric": [0.1, 0.0, 0.3, 0.25]})
    cfg = get_preset("tiny")
    text = "\n".join(phase_data._phase_text(cells, cfg))
    assert "2 of 4 lean **symmetric** (γ 0.7–0.7; its share of (4,3): median 0.28)" in text
    assert "**the reverse of** the paper" in text and "runs of the paper's own setting follow the paper" in text
    assert "a shift, not the reversal this grid shows" in text
    lesson = phase_data.lesson_sentence(cells, cfg)
    assert lesson.startswith("Copying wins in 2 of 4 cells (median γ 0.7), composing in 2 (median γ 0.5)")
    assert "**the reverse of** the paper" in lesson and f"{cfg.model.d_model}-wide" in lesson
    normal = cells.assign(gamma=[0.7, 0.7, 0.5, 0.5])
    text = "\n".join(phase_data._phase_text(normal, cfg))
    assert "as in the paper" in text and "reverse" not in text and "reversal" not in text
    assert phase_data.lesson_sentence(normal, cfg).endswith("the paper's direction.")
    unfitted = pd.concat([normal, normal.iloc[:1].assign(fitted=False)])  # every cell is counted
    assert "composing in 2 (median γ 0.7); 1 is not fitted (hatched):" in phase_data.lesson_sentence(unfitted, cfg)

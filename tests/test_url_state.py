"""Shareable state (ui/url_state.py): each page restores its settings from the URL, refuses bad or
hostile values with one short warning and the default, never goes beyond its widgets' bounds, and
writes its widgets back into the URL. Pure parsers first (with a hypothesis fuzz), then AppTest."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as hs
from streamlit.testing.v1 import AppTest

from ui import url_state as us

torch.set_num_threads(1)

HOSTILE = "../../etc/passwd" + "A" * 5000


# -- pure parsers ------------------------------------------------------------------------------
def test_parse_float_bounds_step_and_non_numbers():
    assert us.parse_float("gamma", "0.9", *us.GAMMA) == (0.9, None)
    assert us.parse_float("gamma", "0.87", *us.GAMMA)[0] == 0.85  # snapped to the slider's step
    for bad in ["2", "0.05", "-1", "nan", "inf", "1e309", "abc", "", "1_0", "１", "0x1", "0.9 0.8"]:
        value, problem = us.parse_float("gamma", bad, *us.GAMMA)
        assert value is None and problem, bad


def test_parse_int_refuses_what_the_widget_would_not_take():
    assert us.parse_int("epochs", "100000", *us.EPOCHS) == (100_000, None)
    for bad in ["100001", "0", "10" * 30, "3.0", "1e3", "１２", "1_0", " ", "-5"]:
        value, problem = us.parse_int("epochs", bad, *us.EPOCHS)
        assert value is None and problem, bad


def test_runs_are_looked_up_by_name_never_joined_to_a_folder(tmp_path):
    pre, mine = tmp_path / "pretrained", tmp_path / "runs"
    paths = [str(pre / "a_g0.5"), str(pre / "grid" / "L2_g0.5_s0"), str(mine / "b_g0.9"), str(mine / "a_g0.5")]
    tokens = us.run_tokens(paths, [pre, mine])
    assert tokens == {"a_g0.5": paths[0], "grid/L2_g0.5_s0": paths[1], "b_g0.9": paths[2],
                      "pretrained/a_g0.5": paths[0], "pretrained/grid/L2_g0.5_s0": paths[1],
                      "runs/b_g0.9": paths[2], "runs/a_g0.5": paths[3]}
    # a saved run whose name is also committed is written runs/NAME; the others by their bare name
    assert [us.token_of(p, tokens) for p in paths] == ["a_g0.5", "grid/L2_g0.5_s0", "b_g0.9", "runs/a_g0.5"]
    assert us.parse_runs("runs", "runs/a_g0.5,a_g0.5", tokens) == ([paths[3], paths[0]], None)
    # the committed run keeps the bare name whatever the listing order
    assert us.run_tokens(paths[::-1], [pre, mine])["a_g0.5"] == paths[0]
    assert us.parse_runs("runs", "a_g0.5,b_g0.9", tokens) == ([paths[0], paths[2]], None)
    assert us.parse_runs("runs", "grid/L2_g0.5_s0", tokens) == ([paths[1]], None)
    for bad in ["../../etc", "../runs/a_g0.5", str(pre / "a_g0.5"), "a_g0.5,b_g0.9,a_g0.5", ",", "", HOSTILE]:
        value, problem = us.parse_runs("runs", bad, tokens)
        assert value is None and problem, bad


def test_a_message_quotes_at_most_forty_characters():
    for parse in (lambda r: us.parse_float("gamma", r, *us.GAMMA), lambda r: us.parse_int("seed", r, *us.SEED),
                  lambda r: us.parse_choice("preset", r, ["tiny", "cpu-demo"]),
                  lambda r: us.parse_runs("runs", r, {"a": "/x/a"})):
        for raw in ["B" * 41 + "tail", "C" * 1999, "D" * 100_000]:
            value, problem = parse(raw)
            assert value is None and len(problem) < 200 and raw[:41] not in problem


@settings(max_examples=300, deadline=None)
@given(raw=hs.one_of(hs.text(max_size=80), hs.from_regex(r"[+-]?[0-9]{0,4}(\.[0-9]{0,4})?(e[+-]?[0-9]{1,3})?",
                                                          fullmatch=True)))
@example(raw="0\x1f")  # str.strip() drops \x1c-\x1f, float() does not: was a ValueError
@example(raw="\x1c3\x1d")
def test_fuzz_parsers_stay_within_the_widget_bounds(raw):
    tokens = {"a_g0.5": "/p/a_g0.5", "grid/b": "/p/grid/b"}
    for parse, check in [
        (lambda r: us.parse_float("gamma", r, *us.GAMMA), lambda v: us.GAMMA[0] <= v <= us.GAMMA[1]),
        (lambda r: us.parse_int("depth", r, *us.DEPTH), lambda v: us.DEPTH[0] <= v <= us.DEPTH[1]),
        (lambda r: us.parse_int("epochs", r, *us.EPOCHS), lambda v: us.EPOCHS[0] <= v <= us.EPOCHS[1]),
        (lambda r: us.parse_choice("preset", r, ["tiny", "cpu-demo"]), lambda v: v in ("tiny", "cpu-demo")),
        (lambda r: us.parse_runs("runs", r, tokens), lambda v: set(v) <= set(tokens.values()) and 1 <= len(v) <= 2),
    ]:
        value, problem = parse(raw)
        assert (value is None) != (problem is None)
        if problem is None:
            assert check(value)
            if isinstance(value, float):
                assert abs(value / us.GAMMA[2] - round(value / us.GAMMA[2])) < 1e-6  # on the slider's grid
        else:
            assert len(problem) < 200 and (len(raw) <= 40 or raw not in problem)


def test_share_url_uses_the_browser_address_or_the_relative_path():
    assert us.share_url("http://h:8501/Train?x=1", "/Train", {"gamma": "0.9"}) == "http://h:8501/Train?gamma=0.9"
    assert us.share_url(None, "/Train", {"gamma": "0.9", "preset": "a b"}) == "/Train?gamma=0.9&preset=a+b"
    assert us.share_url("", "/", {}) == "/"


# -- the pages -----------------------------------------------------------------------------------
def open_page(app_env, page: str, **params) -> AppTest:
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=90)
    at.run()
    at.query_params.clear()
    at.query_params.update(params)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def warnings(at) -> list[str]:
    return [w.value for w in at.warning]


def share_link(at) -> str:
    return "\n".join(c.value for c in at.code)


def test_train_restores_its_settings_from_the_link(app_env):
    at = open_page(app_env, "pages/2_Train.py", preset="tiny", gamma="0.9", depth="3", seed="4", epochs="7")
    assert at.selectbox(key="train_preset").value == "tiny"
    assert at.slider(key="train_gamma").value == 0.9
    assert at.slider(key="train_depth").value == 3
    assert at.number_input(key="train_seed").value == 4
    assert at.number_input(key="train_epochs").value == 7
    assert not warnings(at)
    assert "/Train?preset=tiny&gamma=0.9&depth=3&seed=4&epochs=7" in share_link(at)
    # the widgets stay editable: the link is applied once, and the change is written back
    at.slider(key="train_gamma").set_value(1.2).run()
    at.number_input(key="train_seed").set_value(11).run()
    assert at.slider(key="train_gamma").value == 1.2 and at.number_input(key="train_seed").value == 11
    assert at.query_params["gamma"] == "1.2" and at.query_params["seed"] == "11"
    assert at.query_params["depth"] == "3"


def test_train_writes_its_defaults_into_a_bare_link(app_env):
    at = open_page(app_env, "pages/2_Train.py")
    assert at.query_params["preset"] == "cpu-demo" and at.query_params["gamma"] == "0.5"
    at.selectbox(key="train_preset").set_value("tiny").run()
    assert at.query_params["preset"] == "tiny" and at.query_params["depth"] == "1"


@pytest.mark.parametrize("param,raw", [
    ("gamma", "2.5"), ("gamma", "nan"), ("gamma", "abc"), ("depth", "60"), ("depth", "3.5"),
    ("seed", "-1"), ("seed", "9" * 400), ("epochs", "100001"), ("epochs", "1e9"), ("preset", "../../etc"),
    ("preset", HOSTILE)])
def test_train_refuses_a_bad_value_with_a_short_warning_and_the_default(app_env, param, raw):
    at = open_page(app_env, "pages/2_Train.py", **{param: raw})
    default = {"gamma": 0.5, "depth": 2, "seed": 0, "epochs": 30, "preset": "cpu-demo"}[param]
    widget = {"gamma": at.slider, "depth": at.slider, "seed": at.number_input, "epochs": at.number_input,
              "preset": at.selectbox}[param](key=f"train_{param}")
    assert widget.value == default
    (warning,) = warnings(at)
    assert f"`{param}`" in warning and len(warning) < 250
    assert raw[:41] not in warning if len(raw) > 40 else raw in warning
    assert at.query_params[param] == str(default)  # the address bar now holds the value in use


def test_a_link_cannot_lift_the_epoch_bound_or_the_job_caps(app_env):
    at = open_page(app_env, "pages/2_Train.py", preset="cpu-demo", epochs="100000", depth="6")
    assert at.number_input(key="train_epochs").value == 100_000  # the widget's own maximum
    # the job's caps (FLOP, steps) still apply: the button is disabled and says why, a link changed nothing
    assert at.button(key="train_start").disabled
    assert any("step" in w.value.lower() or "flop" in w.value.lower() for w in at.warning), [w.value for w in at.warning]
    at2 = open_page(app_env, "pages/2_Train.py", epochs="100001")
    assert at2.number_input(key="train_epochs").value == 30 and warnings(at2)


# Inside the model
def test_inside_restores_runs_and_view_and_writes_changes_back(app_env, make_run):
    a = make_run(app_env.pretrained, "tiny_L1_g0.3_s0", **{"model.gamma": 0.3})
    b = make_run(app_env.pretrained, "tiny_L1_g0.9_s0", **{"model.gamma": 0.9})
    c = make_run(app_env.runs, "mine_L1_g0.6_s0", **{"model.gamma": 0.6})
    at = open_page(app_env, "pages/3_Inside_the_model.py", runs="mine_L1_g0.6_s0,tiny_L1_g0.3_s0", view="spectra")
    assert at.selectbox(key="inside_run_a").value == str(c)
    assert at.toggle(key="inside_compare").value is True
    assert at.selectbox(key="inside_run_b").value == str(a)
    assert at.session_state["inside_view"] == us_view_name("spectra")
    assert not warnings(at)
    assert "runs=mine_L1_g0.6_s0%2Ctiny_L1_g0.3_s0&view=spectra" in share_link(at)
    at.selectbox(key="inside_run_b").set_value(str(b)).run()
    assert at.query_params["runs"] == "mine_L1_g0.6_s0,tiny_L1_g0.9_s0"
    at.toggle(key="inside_compare").set_value(False).run()
    assert at.query_params["runs"] == "mine_L1_g0.6_s0"
    at.session_state["inside_view"] = us_view_name("embeddings")  # what a click on the tab sets
    at.run()
    assert at.query_params["view"] == "embeddings"


def test_a_saved_run_named_like_a_committed_one_keeps_its_link(app_env, make_run):
    """Newcomer: a run trained here with the default settings is saved under the committed run's
    name; ?runs= opened the committed one, and choosing the saved one dropped runs= from the
    link. It is written runs/NAME, and the page raises no Streamlit key warning."""
    a = make_run(app_env.pretrained, "tiny_L1_g0.3_s0", **{"model.gamma": 0.3})
    b = make_run(app_env.pretrained, "tiny_L1_g0.9_s0", **{"model.gamma": 0.9})
    mine = make_run(app_env.runs, "tiny_L1_g0.3_s0", **{"model.gamma": 0.3})
    at = open_page(app_env, "pages/3_Inside_the_model.py", runs="runs/tiny_L1_g0.3_s0,tiny_L1_g0.9_s0")
    assert not warnings(at)
    assert at.selectbox(key="inside_run_a").value == str(mine)
    assert at.selectbox(key="inside_run_b").value == str(b)
    assert at.query_params["runs"] == "runs/tiny_L1_g0.3_s0,tiny_L1_g0.9_s0"
    at.selectbox(key="inside_run_a").set_value(str(a)).run()
    assert at.query_params["runs"] == "tiny_L1_g0.3_s0,tiny_L1_g0.9_s0"
    at.selectbox(key="inside_run_a").set_value(str(mine)).run()
    assert at.query_params["runs"] == "runs/tiny_L1_g0.3_s0,tiny_L1_g0.9_s0"
    at2 = open_page(app_env, "pages/3_Inside_the_model.py", runs="pretrained/tiny_L1_g0.3_s0")
    assert at2.selectbox(key="inside_run_a").value == str(a) and at2.toggle(key="inside_compare").value is False


def us_view_name(slug: str) -> str:
    from ui.probe_views import VIEWS

    return next(v.name for v in VIEWS if v.slug == slug)


def test_inside_one_run_from_the_link(app_env, make_run):
    make_run(app_env.pretrained, "tiny_L1_g0.3_s0", **{"model.gamma": 0.3})
    b = make_run(app_env.pretrained, "tiny_L1_g0.9_s0", **{"model.gamma": 0.9})
    at = open_page(app_env, "pages/3_Inside_the_model.py", runs="tiny_L1_g0.9_s0")
    assert at.selectbox(key="inside_run_a").value == str(b) and at.toggle(key="inside_compare").value is False


@pytest.mark.parametrize("param,raw", [("runs", "../../etc"), ("runs", "../runs/mine_L1_g0.6_s0"),
                                       ("runs", "/etc/passwd"), ("runs", HOSTILE), ("runs", "a,b,c"),
                                       ("view", "nope"), ("view", HOSTILE)])
def test_inside_refuses_unknown_runs_and_views(app_env, make_run, param, raw):
    a = make_run(app_env.pretrained, "tiny_L1_g0.3_s0", **{"model.gamma": 0.3})
    b = make_run(app_env.pretrained, "tiny_L1_g0.9_s0", **{"model.gamma": 0.9})
    at = open_page(app_env, "pages/3_Inside_the_model.py", **{param: raw})
    assert at.selectbox(key="inside_run_a").value == str(a) and at.selectbox(key="inside_run_b").value == str(b)
    (warning,) = warnings(at)
    assert f"`{param}`" in warning and len(warning) < 250
    assert raw[:41] not in warning if len(raw) > 40 else raw in warning
    assert at.query_params["runs"] == "tiny_L1_g0.3_s0,tiny_L1_g0.9_s0"


# Phase diagram
@pytest.fixture
def grid(make_run, app_env, tmp_path):
    from tests.test_page_phase import fake_grid

    fake_grid(make_run, tmp_path / "sweeps", app_env.pretrained)
    return app_env


def test_phase_restores_diagram_reduction_and_cell(grid):
    at = open_page(grid, "pages/4_Phase_diagram.py", diagram="phase_tiny", reduction="mean", cell="L2_g0.8")
    assert at.radio(key="phase_view").value == "mean"
    assert at.selectbox(key="phase_cell").value == "L2_g0.8"
    assert not warnings(at)
    assert "diagram=phase_tiny&reduction=mean&cell=L2_g0.8" in share_link(at)
    at.selectbox(key="phase_cell").set_value("L1_g1").run()
    assert at.selectbox(key="phase_cell").value == "L1_g1" and at.query_params["cell"] == "L1_g1"
    at.radio(key="phase_view").set_value("paper").run()
    assert at.query_params["reduction"] == "paper"


@pytest.mark.parametrize("param,raw", [("diagram", "../../etc"), ("diagram", HOSTILE), ("reduction", "max"),
                                       ("cell", "L9_g9"), ("cell", HOSTILE)])
def test_phase_refuses_unknown_values(grid, param, raw):
    at = open_page(grid, "pages/4_Phase_diagram.py", **{param: raw})
    (warning,) = warnings(at)
    assert f"`{param}`" in warning and len(warning) < 250
    assert raw[:41] not in warning if len(raw) > 40 else raw in warning
    assert at.radio(key="phase_view").value == "paper" and at.selectbox(key="phase_cell").value is None
    assert at.query_params["diagram"] == "phase_tiny" and "cell" not in at.query_params


# the Lesson
def test_lesson_share_link_holds_the_step(app_env):
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=90)
    at.query_params["step"] = "3"
    at.run()
    assert not at.exception
    assert "/?step=3" in share_link(at) or "?step=3" in share_link(at)


def test_parse_on_off():
    assert us.parse_on_off("presenter", "1") == (True, None) and us.parse_on_off("presenter", "OFF") == (False, None)
    value, problem = us.parse_on_off("presenter", "maybe")
    assert value is None and "`presenter`" in problem and "'maybe'" in problem


@pytest.mark.parametrize("raw", ["maybe", "2", HOSTILE], ids=["maybe", "2", "hostile"])
def test_a_bad_presenter_value_warns_once_and_leaves_presenter_mode_off(app_env, raw):
    """Newcomer: ``?presenter=maybe`` was silently ignored; it gets the one-line warning of every
    bad link value, and presenter mode stays off."""
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=90)
    at.query_params["presenter"] = raw
    at.run()
    assert not at.exception, at.exception
    (warning,) = link_warnings(at)  # (an empty runs folder: the lesson also says it has no runs)
    assert warning.startswith("Link setting ignored: `presenter`") and len(warning) < 250
    assert at.session_state["_presenter_toggle"] is False
    at.run()  # once per distinct value
    assert not link_warnings(at)


def link_warnings(at) -> list[str]:
    return [w for w in warnings(at) if w.startswith("Link setting")]


def test_presenter_on_from_the_link(app_env):
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=90)
    at.query_params["presenter"] = "1"
    at.run()
    assert not at.exception and not link_warnings(at) and at.session_state["_presenter_toggle"] is True


def test_large_fonts_alone_from_the_link_and_back_into_it(app_env):
    """``?large=1`` turns large fonts on without presenter mode (a lecturer who keeps the
    normal layout); the toggle writes its state back into the link; a bad value warns once."""
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=90)
    at.query_params["large"] = "1"
    at.run()
    assert not at.exception and not link_warnings(at)
    assert at.session_state["_large_fonts_toggle"] is True and at.session_state["_presenter_toggle"] is False
    at.toggle(key="_large_fonts_toggle").set_value(False).run()
    assert at.session_state["_large_fonts_toggle"] is False and at.query_params["large"] in ("0", ["0"])
    at.run()  # the link's own "0" is not applied again as if new
    assert at.session_state["_large_fonts_toggle"] is False

    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=90)
    at.query_params["large"] = "big"
    at.run()
    (warning,) = link_warnings(at)
    assert warning.startswith("Link setting ignored: `large`")
    assert at.session_state["_large_fonts_toggle"] is False
    assert at.query_params["large"] in ("0", ["0"])  # the bad value is replaced by the one in use


def test_several_bad_values_are_one_box_at_the_top(app_env):
    """Newcomer: six bad values in one Train link were six warning boxes (~400 px) before the controls."""
    at = open_page(app_env, "pages/2_Train.py", preset="../../x", gamma="1e308", depth="-1", seed="abc",
                   epochs="nan", large="2")
    (box,) = warnings(at)
    assert box.startswith("Link settings ignored (the defaults are used):")
    for p in ("preset", "gamma", "depth", "seed", "epochs", "large"):
        assert f"`{p}`" in box
    assert at.slider(key="train_gamma").value == 0.5 and at.number_input(key="train_epochs").value == 30

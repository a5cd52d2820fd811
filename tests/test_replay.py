"""Replay of a stored training (issue 9 item 5): the pure frames and player of ``ui.replay_data``,
and an AppTest of the "Replay training" tab of Inside the model on a committed run (stepping
changes the epoch shown) and on made runs with and without a stored attention map."""
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
from ui import replay_data as rd

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "3_Inside_the_model.py")
torch.set_num_threads(1)


def _rec(epoch, seen, inf, sym, offsets=None, snapshot=None, loss=1.0):
    r = {"epoch": epoch, "step": 10 * epoch, "train_loss": None if epoch == 0 else loss, "seen_test_accuracy": seen,
         "per_pair": {}, "held_out": {"4,3": {"inferential": inf, "symmetric": sym, "other": 1 - inf - sym,
                                              "offsets": offsets or {}}}}
    if snapshot is not None:
        r["snapshot"] = snapshot
    return r


HIST = [_rec(0, 0.0, 0.0, 0.0, {"-27": 0.05}), _rec(2, 0.5, 0.2, 0.1, {"-7": 0.4, "-10": 0.2}, loss=2.0),
        _rec(4, 1.0, 0.9, 0.0, {"-10": 0.9, "-13": 0.05}, loss=0.5)]


# -- frames ------------------------------------------------------------------------------------
def test_frame_at_step_i_and_its_bounds():
    f = rd.frame_at(HIST, 1)
    assert (f.index, f.epoch, f.step, f.train_loss, f.seen, f.pair) == (1, 2, 20, 2.0, 0.5, "4,3")
    assert f.held["inferential"] == 0.2 and f.snapshot is None and f.attention is None
    assert rd.frame_at(HIST, -5).epoch == 0 and rd.frame_at(HIST, 99).epoch == 4  # clamped, never IndexError
    assert rd.frame_at(HIST, 0).train_loss is None


def test_a_shared_timeline_shows_each_run_its_last_record_so_far():
    other = [_rec(0, 0, 0, 0), _rec(3, 0.2, 0.1, 0.1), _rec(6, 0.9, 0.0, 0.9)]
    assert rd.timeline([HIST, other]) == [0, 2, 3, 4, 6]
    assert [rd.record_index(HIST, e) for e in (0, 2, 3, 4, 6)] == [0, 1, 1, 2, 2]
    assert [rd.frame_for_epoch(other, e).epoch for e in (0, 2, 3, 4, 6)] == [0, 0, 3, 3, 6]


@pytest.mark.parametrize("bad", [[], [{"epoch": "x"}], [{"epoch": 2}, {"epoch": 1}], [{"epoch": float("nan")}],
                                 "not a list"])
def test_bad_histories_raise_replay_error(bad):
    with pytest.raises(rd.ReplayError):
        rd.timeline([bad])
    with pytest.raises(rd.ReplayError):
        rd.timeline([])
    with pytest.raises(rd.ReplayError):
        rd.frame_at([{"epoch": 0}], 0)  # no seen-pair accuracy


def test_series_stop_at_the_point_shown():
    s = rd.series_until(HIST, 1)
    assert [r["epoch"] for r in s["loss"]] == [2]  # no loss at epoch 0
    assert {(r["epoch"], r["series"]) for r in s["accuracy"]} == {
        (e, m) for e in (0, 2) for m in ("seen", "inferential", "symmetric")}
    assert max(r["epoch"] for r in rd.series_until(HIST, 99)["accuracy"]) == 4
    assert rd.loss_range([HIST]) == (0.5, 2.0)


# -- the answer histogram ---------------------------------------------------------------------------
def test_answer_categories_are_shared_and_bars_sum_to_one():
    other = [_rec(0, 0, 0, 0, {"-16": 0.3})]
    cats = rd.answer_categories([HIST, other], "4,3", -10, -6)
    assert cats == [-16, -10, -7, -6]  # candidates, and answers that reach 10 % somewhere (not -27, -13)
    bars = rd.answer_bars(HIST[2]["held_out"]["4,3"], cats, -10, -6)
    assert [b["offset"] for b in bars] == [-16, -10, -7, -6, None]
    share = {b["offset"]: b["share"] for b in bars}
    assert share[-10] == 0.9 and share[-6] == 0.0 and share[-7] == 0.0  # -7 is not among this record's answers
    assert share[None] == pytest.approx(0.1) and sum(share.values()) == pytest.approx(1.0)
    assert [b["kind"] for b in bars] == ["other", "inferential", "other", "symmetric", "anything else"]
    # candidates come from the exact shares even when the top-5 offsets miss them
    assert {b["offset"]: b["share"] for b in rd.answer_bars({"inferential": 0.01, "symmetric": 0.3}, cats, -10, -6)}[-6] == 0.3


# -- attention and routes -------------------------------------------------------------------------
def _snap(attn, key_pos=3):
    T = len(attn[0])
    return {"attention": {"tokens": list(range(20, 20 + T)), "key_pos": key_pos, "attn": attn}}


def test_route_from_stored_attention_or_stored_route():
    T = 9
    A = np.zeros((2, T, T))
    A[:, :, 0] = 1.0  # everything attends to position 0
    A[0, 4, 3] = A[0, 5, 3] = 1.0  # layer 1: both anchors read the key (p = 3)
    A[0, 4, 0] = A[0, 5, 0] = 0.0
    A[1, 8, 4], A[1, 8, 5], A[1, 8, 0] = 0.5, 0.5, 0.0  # layer 2: the last token reads the anchors
    snap = _snap(A.tolist())
    inf, sym = rd.route_of(snap)
    assert inf == pytest.approx(1.0) and sym == pytest.approx(0.0)
    assert rd.route_of({"route": {"inferential": 0.3, "symmetric": 0.7}, **snap}) == (0.3, 0.7)  # stored wins
    assert rd.route_of({"embed_eigen_top": [1.0]}) is None and rd.route_of(None) is None


@pytest.mark.parametrize("attention", [
    None, "x", {"tokens": [1, 2], "key_pos": 0, "attn": [[[1.0, 0.0], [0.5, 0.5]]]},           # T < 3
    {"tokens": list(range(9)), "key_pos": 3, "attn": [[[0.1] * 9] * 8]},                        # 8 rows
    {"tokens": list(range(9)), "key_pos": 3, "attn": [[[2.0] * 9] * 9]},                        # > 1
    {"tokens": list(range(9)), "key_pos": 7, "attn": [[[0.1] * 9] * 9]},                        # no anchors after key
])
def test_malformed_attention_is_absent_not_a_crash(attention):
    assert rd.attention_of({"attention": attention}) is None


def test_has_attention():
    assert not rd.has_attention(HIST)
    snap = _snap((np.tril(np.ones((9, 9))) / np.arange(1, 10)[:, None])[None].tolist())
    assert rd.has_attention([_rec(0, 0, 0, 0, snapshot=snap)])


# -- the player ---------------------------------------------------------------------------------------
def test_player_moves_stay_in_bounds():
    p = rd.Player(index=0, n=5)
    assert p.step(-1).index == 0 and p.step(1).index == 1 and p.step(99).index == 4
    assert p.last().index == 4 and p.last().at_end and p.last().first().index == 0
    assert p.seek(-3).index == 0 and p.seek(7).index == 4
    assert rd.Player(index=12, n=5).index == 4  # clamped on creation
    with pytest.raises(rd.ReplayError):
        rd.Player(n=0)


def test_play_ticks_at_the_speed_and_stops_at_the_end():
    p = rd.Player(index=0, n=6).toggle()
    assert p.playing and p.interval == rd.SPEEDS["1×"][0]
    assert p.tick().index == 1 and p.tick().playing
    fast = p.with_speed("4×")
    assert fast.tick().index == rd.SPEEDS["4×"][1] == 4 and fast.interval == rd.SPEEDS["4×"][0] >= 1.0
    assert rd.Player(index=4, n=6, playing=True, speed="8×").tick() == rd.Player(index=5, n=6, playing=False, speed="8×")
    assert rd.Player(index=2, n=6).tick().index == 2  # paused: a tick changes nothing
    assert rd.Player(index=5, n=6).toggle().index == 0  # play at the end starts again
    assert rd.Player(index=0, n=1).toggle().playing is False  # one point: nothing to play
    assert p.step(1).playing is False and p.toggle().interval is None  # stepping or pausing stops the timer
    assert p.with_speed("99×").speed == rd.DEFAULT_SPEED


# -- the page --------------------------------------------------------------------------------------
def _text(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                     + [e.value for e in at.error])


def _shown_epoch(at) -> str:
    line = next(c.value for c in at.caption if c.value.startswith("Epoch **"))
    return line.split("**")[1]


def test_replay_tab_on_a_committed_run_steps_through_epochs():
    """A committed run: the tab renders, Step and Last change the epoch shown, and it says plainly
    that no attention map is stored exactly when the run's history holds none (the lesson's runs
    were retrained on 2026-12-04 with their commands and store one)."""
    from streamlit.testing.v1 import AppTest

    name = json.loads((ROOT / "pretrained" / "lesson.json").read_text())["symmetric"]
    run = ROOT / "pretrained" / name
    history = json.loads((run / "metrics.json").read_text())["history"]
    epochs = [r["epoch"] for r in history]
    stored = any((r.get("snapshot") or {}).get("attention") for r in history)
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.query_params["runs"] = name
    at.query_params["view"] = "replay"
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["inside_view"] == "Replay training"
    assert _shown_epoch(at) == f"{epochs[0]:g}"
    assert len(at.get("vega_lite_chart")) >= 4
    assert ("No attention map is stored for this run" in _text(at)) is not stored
    at.button(key="replay_step").click().run()
    assert not at.exception and _shown_epoch(at) == f"{epochs[1]:g}"
    at.button(key="replay_last").click().run()
    assert _shown_epoch(at) == f"{epochs[-1]:g}"
    at.button(key="replay_back").click().run()
    assert _shown_epoch(at) == f"{epochs[-2]:g}"
    at.select_slider(key="replay_epoch").set_value(epochs[3]).run()
    assert _shown_epoch(at) == f"{epochs[3]:g}"
    assert f"showing its evaluation at epoch {epochs[3]:g}" in _text(at)


def _made_run(folder: Path, name: str, gamma: float, with_attention: bool) -> Path:
    cfg = get_preset("tiny").replace(**{"model.n_layers": 2, "model.gamma": gamma})
    model = build_model(cfg, torch.Generator().manual_seed(0))
    history = []
    for epoch in range(3):
        with torch.no_grad():
            model.blocks[0].attn.W_Q.mul_(1.0 + 2.0 * epoch)  # attention changes from record to record
        snap = probes.training_snapshot(model, cfg.task)
        if not with_attention:
            snap = {k: v for k, v in snap.items() if k not in ("attention", "route")}
        history.append({"epoch": 2 * epoch, "step": epoch, "train_loss": None if epoch == 0 else 3.0 - epoch,
                        "seen_test_accuracy": 0.3 * epoch, "per_pair": {pair_key(p): 0.3 for p in cfg.task.pairs},
                        "held_out": {"4,3": {"inferential": 0.2 * epoch, "symmetric": 0.1, "other": 0.9 - 0.2 * epoch,
                                             "offsets": {"-10": 0.2 * epoch, "-3": 0.5}}},
                        "snapshot": snap})
    return save_run(folder / name, cfg, model, {"history": history})


def test_replay_two_runs_one_with_attention_one_without(app_env):
    from streamlit.testing.v1 import AppTest

    new = _made_run(app_env.pretrained, "tiny_L2_g0.9_s0", 0.9, with_attention=True)
    old = _made_run(app_env.pretrained, "tiny_L2_g0.3_s0", 0.3, with_attention=False)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["runs"] = f"{old.name},{new.name}"
    at.query_params["view"] = "replay"
    at.run()
    assert not at.exception, at.exception
    text = _text(at)
    assert text.count("No attention map is stored for this run") == 1  # the old run only
    assert text.count("Route strength: no attention was stored") == 1
    flow = _flow_specs(at)
    assert len(flow) == 1  # the new run's information flow (Fig. 3)
    at.button(key="replay_step").click().run()
    assert not at.exception and _shown_epoch(at) == "2"
    assert "showing its evaluation at epoch 2" in _text(at)
    after = _flow_specs(at)
    assert len(after) == 1 and after != flow  # the stored attention of epoch 2 is drawn, not epoch 0's


def _flow_specs(at) -> list[str]:
    """Specs of the drawn information-flow charts (rules with round caps); a spec names its
    datasets by a hash of their content, so other edge weights give another spec."""
    return [c.proto.spec for c in at.get("vega_lite_chart") if '"strokeCap": "round"' in c.proto.spec]

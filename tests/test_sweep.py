"""Sweeps (core/sweep_spec.py, core/sweep.py, core/sweep_tables.py, core/sweep_cli.py): specs, resumption, the selection rule, the
local process pool, the Ray backend and publishing a committed grid (docs/science.md §4, §5 Fig. 2, 14).

Every sweep here uses the ``tiny`` preset (a fraction of a second per run, one torch thread).
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.runs import load_run
from core.sweep import execute_sweep, plan_sweep, run_sweep
from core.sweep_spec import SweepSpec, appendix_e_spec, load_spec, named_spec, phase_spec
from core.sweep_tables import copy_to, gather, read_csv, summarize_cells
from core.sweep_cli import parse_values

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ["depth", "gamma", "seed", "lr", "weight_decay", "seen_test_accuracy", "inferential", "symmetric",
            "other", "seconds"]


def tiny_spec(**kw) -> SweepSpec:
    d = dict(name="t", preset="tiny", grid=(("model.gamma", (0.5, 0.8)), ("train.seed", (0, 1))))
    d.update(kw)
    return SweepSpec(**d)


# -- specs -------------------------------------------------------------------------------------

def test_points_ids_and_configs():
    spec = tiny_spec(grid=(("model.gamma", (0.5, 0.8)), ("train.seed", (0, 1)), ("train.lr_peak", (1e-3, 2e-3))))
    pts = spec.points()
    assert len(pts) == 8 and len({p.run_id for p in pts}) == 8
    # cell keys first, then best_over (lr), then mean_over (seed)
    assert pts[0].run_id == "g0.5_lr0.001_s0" and pts[0].cell_id == "g0.5"
    assert spec.cell_keys == ("model.gamma",) and spec.axes == ("model.gamma",)
    cfg = spec.config_for(pts[-1])
    assert (cfg.model.gamma, cfg.train.seed, cfg.train.lr_peak) == (0.8, 1, 2e-3)
    assert SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_epochs_in_grid_rescale_the_schedule_like_the_cli():
    spec = tiny_spec(grid=(("train.epochs", (4,)),))
    cfg = spec.config_for(spec.points()[0])
    assert cfg.train.decay_epochs == 4 and cfg.train.warmup_epochs == 2  # tiny: 1 of 2 -> 2 of 4


@pytest.mark.parametrize("grid, words", [
    ((), "at least one grid key"),
    ((("model.nope", (1,)),), "unknown setting"),
    ((("model.gamma", (0.5, -1.0)),), "g-1"),            # the bad point is named
    ((("model.gamma", ()),), "no values"),
    ((("model.gamma", (0.5, 0.5)),), "repeats"),
])
def test_bad_specs_raise_value_error(grid, words):
    with pytest.raises(ValueError, match=words):
        SweepSpec(name="x", preset="tiny", grid=grid)


def test_named_specs():
    ph = phase_spec("cpu-demo")
    assert dict(ph.grid)["model.n_layers"] == (2, 3, 4, 5, 6) and dict(ph.grid)["train.seed"] == (0, 1, 2)
    assert min(dict(ph.grid)["model.gamma"]) <= 0.3 and max(dict(ph.grid)["model.gamma"]) >= 0.8
    assert ph.axes == ("model.gamma", "model.n_layers")
    ae = appendix_e_spec("cpu-demo")
    cfg = ae.config_for(ae.points()[0])
    assert cfg.model.n_layers == 3 and cfg.model.gamma == 0.5
    assert set(cfg.task.held_out) == {(3, 4), (4, 3)} and cfg.task.overrides == ()
    assert ae.cell_keys == ("train.lr_peak", "train.weight_decay") and ae.best_over == ()
    assert len({ae.config_for(p).train.lr_peak for p in ae.points()}) >= 4
    with pytest.raises(ValueError, match="unknown sweep spec"):
        named_spec("nope")


def test_parse_values():
    assert parse_values("0.3,0.5,0.8") == [0.3, 0.5, 0.8]
    assert parse_values("2:6:1") == [2, 3, 4, 5, 6]
    assert parse_values("0.3:0.6:0.1") == [0.3, 0.4, 0.5, 0.6]
    assert parse_values("[[[4,3]],[[3,4],[4,3]]]") == [[[4, 3]], [[3, 4], [4, 3]]]
    assert parse_values("pool,online") == ["pool", "online"]
    for bad in ("0.3,,0.5", "1:0:1", "[]", "[1,"):
        with pytest.raises(ValueError):
            parse_values(bad)


# -- the selection rule on a hand-made table ---------------------------------------------------

def _row(depth, gamma, seed, lr, seen, inf, sym, run=""):
    return {"depth": depth, "gamma": gamma, "seed": seed, "lr": lr, "seen_test_accuracy": seen,
            "inferential": inf, "symmetric": sym, "other": 1 - max(inf or 0, sym), "seconds": 10.0, "run": run}


def test_selection_rule_best_over_lr_then_mean_over_seeds():
    rows = [
        # cell (2, 0.5): seed 0 best inf 0.6 (lr 2), best sym 0.9 (lr 1): from different lrs
        _row(2, 0.5, 0, 1e-3, 0.95, 0.2, 0.9, "a/s0lr1"), _row(2, 0.5, 0, 2e-3, 0.99, 0.6, 0.3, "a/s0lr2"),
        # seed 1: best inf 0.4, best sym 0.5; seen best 0.85 -> this seed alone would be unfit
        _row(2, 0.5, 1, 1e-3, 0.85, 0.4, 0.5), _row(2, 0.5, 1, 2e-3, 0.70, 0.1, 0.2),
        # cell (2, 0.8): one seed, one lr, unfit
        _row(2, 0.8, 0, 1e-3, 0.5, 0.0, 0.0, "b/s0"),
    ]
    cells = summarize_cells(rows, ["depth", "gamma"], ["lr"], ["seed"])
    a, b = cells
    assert (a["depth"], a["gamma"], a["n_runs"], a["n_seeds"]) == (2, 0.5, 4, 2)
    assert a["sel_inferential"] == pytest.approx((0.6 + 0.4) / 2)
    assert a["sel_symmetric"] == pytest.approx((0.9 + 0.5) / 2)
    assert a["sel_seen"] == pytest.approx((0.99 + 0.85) / 2)  # 0.92: fitted
    assert a["sel_inferential_std"] == pytest.approx(math.sqrt(((0.6 - 0.5) ** 2 + (0.4 - 0.5) ** 2) / 1))
    assert (a["sel_symmetric_min"], a["sel_symmetric_max"]) == (0.5, 0.9)
    # the per-run mean differs from the paper's rule
    assert a["mean_inferential"] == pytest.approx((0.2 + 0.6 + 0.4 + 0.1) / 4)
    assert a["min_seen"] == 0.70 and a["max_seen"] == 0.99
    # outcomes per run via core.verdict: sym 0.9 fitted, inf 0.6 fitted, two unfit
    assert (a["n_symmetric"], a["n_inferential"], a["n_not_fitted"], a["n_other"]) == (1, 1, 2, 0)
    assert a["fitted"] is True and b["fitted"] is False
    assert a["seconds"] == 40.0
    # representative run: first seed, best seen accuracy among its lrs
    assert a["run"] == "a/s0lr2" and b["run"] == "b/s0"
    assert b["sel_inferential_std"] == 0.0


def test_selection_rule_without_best_over_and_missing_values():
    rows = [_row(3, 0.5, 0, 1e-3, 0.9, 0.5, 0.1), _row(3, 0.5, 1, 1e-3, 0.9, None, 0.3)]
    (c,) = summarize_cells(rows, ["depth", "gamma"], [], ["seed"])
    assert c["sel_inferential"] == 0.5 and c["sel_symmetric"] == pytest.approx(0.2)


# -- running, resuming, publishing -------------------------------------------------------------

def _mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/metrics.json")}


def test_interrupted_sweep_resumes_without_recomputing_or_losing(tmp_path):
    spec, out = tiny_spec(), tmp_path / "sw"
    done = []

    def interrupt_after_two(e):
        if e["event"] == "done":
            done.append(e["run_id"])
            if len(done) == 2:
                raise KeyboardInterrupt  # as Ctrl-C between two runs

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, on_event=interrupt_after_two)
    first = _mtimes(out)
    assert sorted(first) == sorted(done)
    assert len(read_csv(out / "results.csv")) == 2  # the tables were gathered on the way out
    events = []
    report = run_sweep(spec, out, on_event=events.append)
    assert sorted(report.skipped) == sorted(done)
    assert not set(report.trained) & set(done) and len(report.trained) == 2
    assert events[0] == {"event": "plan", "total": 4, "skipped": 2, "todo": 2}
    after = _mtimes(out)
    assert {k: after[k] for k in first} == first  # finished runs untouched
    rows = read_csv(out / "results.csv")
    assert [r["run_id"] for r in rows] == [p.run_id for p in spec.points()]
    assert all(set(REQUIRED) <= set(r) for r in rows)
    assert len(read_csv(out / "summary.csv")) == 2
    assert run_sweep(spec, out).trained == []


def test_killed_cli_sweep_loses_only_the_run_in_flight(tmp_path):
    out = tmp_path / "sw"
    cmd = [sys.executable, "-m", "core", "sweep", "--preset", "tiny", "--grid", "model.gamma=0.5,0.6,0.7,0.8",
           "--set", "train.epochs=30", "--out", str(out), "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        # kill as soon as the first run is saved, while the next one trains
        while time.time() < deadline and proc.poll() is None:
            if (out / "runs").exists() and _mtimes(out):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    first = _mtimes(out)
    assert 1 <= len(first) < 4  # killed mid-sweep
    # no half-written run folder: everything visible is complete (temporary folders are hidden)
    visible = [p for p in (out / "runs").iterdir() if not p.name.startswith(".")]
    assert sorted(p.name for p in visible) == sorted(first)
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    after = _mtimes(out)
    assert len(after) == 4 and {k: after[k] for k in first} == first
    assert len(read_csv(out / "results.csv")) == 4


def test_changed_config_is_refused_then_retrained_on_request(tmp_path):
    out = tmp_path / "sw"
    spec = tiny_spec(grid=(("model.gamma", (0.5,)),))
    run_sweep(spec, out)
    changed = tiny_spec(grid=(("model.gamma", (0.5,)),), fixed=(("train.weight_decay", 0.1),))
    with pytest.raises(ValueError, match="different config"):
        run_sweep(changed, out)
    rep = run_sweep(changed, out, retrain_changed=True)
    assert rep.trained == ["g0.5"]
    assert load_run(out / "runs" / "g0.5").config.train.weight_decay == 0.1


def test_keep_weights_policy_and_publishing(tmp_path):
    out = tmp_path / "sw"
    spec = tiny_spec()
    run_sweep(spec, out, keep_weights="seed0", half=True)
    has = {p.name: (p / "weights.safetensors").exists() for p in (out / "runs").iterdir()}
    assert has == {"g0.5_s0": True, "g0.5_s1": False, "g0.8_s0": True, "g0.8_s1": False}
    rows, cells = gather(out)
    assert len(rows) == 4  # runs without weights are still finished runs
    dest = tmp_path / "pretrained"
    csv_path = copy_to(out, dest, name="phase_tiny")
    assert csv_path == dest / "phase_tiny.csv"
    pub = read_csv(csv_path)
    assert [r["run"] for r in pub] == ["phase_tiny/g0.5_s0", None, "phase_tiny/g0.8_s0", None]  # empty cell
    assert all(set(REQUIRED) <= set(r) for r in pub)
    state = load_file(str(dest / "phase_tiny" / "g0.5_s0" / "weights.safetensors"))
    assert all(v.dtype == torch.float16 for v in state.values())
    run = load_run(dest / "phase_tiny" / "g0.5_s0")
    assert next(run.model.parameters()).dtype == torch.float32
    meta = json.loads((dest / "phase_tiny.json").read_text())
    assert meta["columns"]["axes"] == ["gamma"] and meta["runs"] == 4
    assert SweepSpec.from_dict(meta["spec"]).points() == spec.points()
    summary = read_csv(dest / "phase_tiny_summary.csv")
    assert [c["run"] for c in summary] == ["phase_tiny/g0.5_s0", "phase_tiny/g0.8_s0"]


def test_only_one_cell_and_stop(tmp_path):
    out = tmp_path / "sw"
    rep = run_sweep(tiny_spec(), out, only=["g0.8"])
    assert sorted(rep.trained) == ["g0.8_s0", "g0.8_s1"]
    rep = run_sweep(tiny_spec(), out, should_stop=lambda: True)
    assert rep.trained == [] and rep.stopped
    with pytest.raises(ValueError, match="unknown cell"):
        run_sweep(tiny_spec(), out, only=["g9"])


def test_plan_is_data_and_execute_trains_it(tmp_path):
    """plan_sweep says what to train and skip without writing; execute_sweep trains just that."""
    out = tmp_path / "sw"
    spec = tiny_spec()
    assert [r.point.run_id for r in plan_sweep(spec, out).todo] == ["g0.5_s0", "g0.5_s1", "g0.8_s0", "g0.8_s1"]
    assert not out.exists()  # planning writes nothing
    run_sweep(spec, out, only=["g0.5"])
    plan = plan_sweep(spec, out, keep_weights="seed0", max_runs=1)
    assert (plan.total, plan.skipped, plan.changed) == (4, ["g0.5_s0", "g0.5_s1"], [])
    assert [(r.point.run_id, r.exists, r.keep_weights) for r in plan.todo] == [("g0.8_s0", False, True)]
    changed = tiny_spec(fixed=(("train.weight_decay", 0.1),))
    refused = plan_sweep(changed, out)
    assert refused.changed == ["g0.5_s0", "g0.5_s1"] and [r.point.run_id for r in refused.todo] == ["g0.8_s0", "g0.8_s1"]
    retrain = plan_sweep(changed, out, retrain_changed=True)
    assert [(r.point.run_id, r.exists) for r in retrain.todo][:2] == [("g0.5_s0", True), ("g0.5_s1", True)]
    events = list(execute_sweep(plan))
    assert [(e["event"], e["run_id"], e["index"], e["todo"]) for e in events] == [("done", "g0.8_s0", 1, 1)]
    assert (out / "runs" / "g0.8_s0" / "weights.safetensors").exists()
    assert plan_sweep(spec, out).skipped == ["g0.5_s0", "g0.5_s1", "g0.8_s0"]
    with pytest.raises(ValueError, match="keep-weights"):
        plan_sweep(spec, out, keep_weights="some")


def test_stopping_a_pool_ends_its_workers(tmp_path):
    """Stop after the first finished run: the runs in flight are abandoned, no worker outlives the sweep."""
    import multiprocessing as mp
    out = tmp_path / "sw"
    spec = tiny_spec(grid=(("model.gamma", (0.5, 0.6, 0.7, 0.8)),), fixed=(("train.epochs", 30),))
    events = []
    rep = run_sweep(spec, out, workers=2, on_event=events.append,
                    should_stop=lambda: any(e["event"] == "done" for e in events))
    assert rep.stopped and len(rep.trained) == 1 and not rep.failed
    assert mp.active_children() == []
    assert [p.name for p in (out / "runs").iterdir() if not p.name.startswith(".")] == rep.trained
    assert len(read_csv(out / "results.csv")) == 1


def test_local_pool_matches_in_process(tmp_path):
    spec = tiny_spec(grid=(("model.gamma", (0.5, 0.8)),))
    run_sweep(spec, tmp_path / "one", workers=1)
    run_sweep(spec, tmp_path / "pool", workers=2)
    a, b = read_csv(tmp_path / "one" / "results.csv"), read_csv(tmp_path / "pool" / "results.csv")
    for ra, rb in zip(a, b):
        for k in ("seen_test_accuracy", "inferential", "symmetric", "other"):
            assert ra[k] == rb[k]
    assert load_spec(tmp_path / "pool").name == "t"


def test_ray_backend_on_a_local_cluster(tmp_path):
    """Ray is an optional extra (``pip install ray``); this test is skipped without it."""
    ray = pytest.importorskip("ray")
    spec = tiny_spec(grid=(("model.gamma", (0.5, 0.8)),))
    run_sweep(spec, tmp_path / "one", workers=1)
    rep = run_sweep(spec, tmp_path / "ray", backend="ray", workers=2)
    assert sorted(rep.trained) == ["g0.5", "g0.8"] and not ray.is_initialized()
    a, b = read_csv(tmp_path / "one" / "results.csv"), read_csv(tmp_path / "ray" / "results.csv")
    assert [r["inferential"] for r in a] == [r["inferential"] for r in b]
    assert [r["seen_test_accuracy"] for r in a] == [r["seen_test_accuracy"] for r in b]
    assert run_sweep(spec, tmp_path / "ray", backend="ray", workers=2).skipped == ["g0.5", "g0.8"]


# -- CLI ---------------------------------------------------------------------------------------

def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "core", "sweep", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_cli_errors_exit_2():
    for args in (["--grid", "model.nope=1"], ["--spec", "nope"], ["--grid", "model.gamma=0.5,,0.8"], []):
        r = _cli("--preset", "tiny", "--dry-run", *args)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_cli_run_and_copy(tmp_path):
    r = _cli("--preset", "tiny", "--grid", "model.gamma=0.5,0.8", "--grid", "train.seed=0", "--workers", "1",
             "--out", str(tmp_path / "sw"), "--copy-to", str(tmp_path / "pre"), "--name", "phase_tiny")
    assert r.returncode == 0, r.stderr
    assert "trained 2" in r.stdout
    assert len(read_csv(tmp_path / "pre" / "phase_tiny.csv")) == 2
    r = _cli("--gather", "--out", str(tmp_path / "sw"))
    assert r.returncode == 0 and "gathered 2" in r.stdout

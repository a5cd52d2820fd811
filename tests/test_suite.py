"""The GPU suite (issue 10, item 5) end to end at tiny size on the CPU."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.runs import list_runs, load_run
from core.suite import seed_major, suite_specs
from core.sweep_tables import read_csv

ROOT = Path(__file__).resolve().parents[1]


def test_specs_keep_the_authors_schedule_when_epochs_change():
    pair, phase = suite_specs(epochs=30)
    cfg = pair.config_for(pair.points()[0])
    assert (cfg.train.epochs, cfg.train.warmup_epochs, cfg.train.decay_epochs) == (30, 10, 200)
    assert cfg.model.d_model == 400 and cfg.task.modulus == 9 and cfg.train.n_train == 759_375
    assert sorted({p.get("model.gamma") for p in pair.points()}) == [0.5, 0.8]
    assert len(phase.points()) == 5 * 6 * 3


def test_phase_runs_are_ordered_one_seed_over_the_whole_grid_first():
    _, phase = suite_specs(depths=(2, 3), gammas=(0.5, 0.8), seeds=(1, 2))
    order = seed_major(phase)
    assert [r.endswith("_s1") for r in order] == [True] * 4 + [False] * 4


def test_suite_runs_end_to_end_and_publishes_for_the_app(tmp_path):
    out, pub = tmp_path / "suite", tmp_path / "pub"
    cmd = [sys.executable, "-m", "core", "suite", "gpu", "--out", str(out), "--preset", "tiny", "--epochs", "2",
           "--depths", "1,2", "--gammas", "0.5,0.8", "--seeds", "1", "--budget-minutes", "5", "--copy-to", str(pub),
           "--device", "cpu"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["pair"]["trained"] == 2 and summary["phase"]["trained"] == 4
    assert json.loads((out / "suite.json").read_text())["device"] == "cpu"
    rows = read_csv(pub / "suite-pair_tiny.csv")
    assert sorted(r["gamma"] for r in rows) == [0.5, 0.8]
    runs = list_runs(pub / "suite-pair_tiny")
    assert len(runs) == 2 and load_run(runs[0]).final["epoch"] == 2
    assert len(read_csv(pub / "suite-phase_tiny_summary.csv")) == 4
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and json.loads(again.stdout.strip().splitlines()[-1])["pair"]["skipped"] == 2


def test_bad_settings_are_one_error_line():
    r = subprocess.run([sys.executable, "-m", "core", "suite", "gpu", "--out", "/tmp/x", "--gammas", "a,b"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr

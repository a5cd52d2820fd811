"""docs/calibrate.py --collect: a run trained outside a plan (a long faithful run) enters the seed
record the Lesson and the Train page read, under the preset it equals and its differences."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from core.runs import load_config
from ui import lesson

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cal(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("calibrate", ROOT / "docs" / "calibrate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["calibrate"] = mod
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "JSONL", tmp_path / "record.jsonl")
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    return mod


def test_collect_records_a_run_under_its_preset(cal, tmp_path, make_run):
    run = make_run(tmp_path, "tiny_bf16_g0.8_s3", inferential=0.93, symmetric=0.0, seen=0.99,
                   **{"model.gamma": 0.8, "train.precision": "bf16", "train.seed": 3})
    rec = cal.collect(run, "python -m core train ...")
    assert rec["preset"] == "tiny" and rec["overrides"] == {"model.gamma": 0.8, "train.precision": "bf16"}
    assert rec["seed"] == 3 and rec["verdict"] == "inferential" and rec["plan"] == "collected"
    assert rec["run"] == "tiny_bf16_g0.8_s3" and rec["command"] == "python -m core train ..."
    lines = [json.loads(x) for x in (tmp_path / "record.jsonl").read_text().splitlines()]
    assert lines == [rec]
    # the Lesson's seed spread finds it for the run's own config, and only for it
    cfg = load_config(run)
    assert lesson.seed_spread(cfg, lines) == {3: "inferential"}
    assert lesson.seed_spread(cfg.replace(**{"train.precision": "fp32"}), lines) == {}


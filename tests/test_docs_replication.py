"""The scripts that write docs/replication.md's trajectory table and docs/calibration.md's
bf16-against-fp32 table read what is on disk and say what they read (issue 10)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

import precision_check  # noqa: E402
import replication  # noqa: E402


def test_trajectory_table_names_each_runs_vocabulary_and_precision(tmp_path, make_run):
    make_run(tmp_path, "paper-replica_L2_g0.8_s1", inferential=0.5)
    make_run(tmp_path, "paper-replica_bf16_L2_g0.8_s1", inferential=0.9, **{"model.d_vocab": 201,
                                                                          "train.precision": "bf16"})
    make_run(tmp_path, "unrelated_L2_g0.8_s1")
    text = replication.table(tmp_path)
    heads = [line for line in text.splitlines() if line.startswith("**")]
    assert len(heads) == 2, heads
    assert "110 tokens, fp32" in heads[0] and "paper-replica_L2_g0.8_s1" in heads[0]
    assert "201 tokens, bf16" in heads[1] and "paper-replica_bf16_L2_g0.8_s1" in heads[1]
    # the authors' γ 0.8 epochs appear as rows next to ours (tiny has 2 epochs)
    assert "| 18 | 0.56 | x−10 73 %" in text and "| 2 |" in text


def _calib(name: str, seed: int, verdict: str, seen_curve: list[float], inf_curve: list[float]) -> dict:
    return {"plan": "bf16", "name": name, "seed": seed, "verdict": verdict, "clear": True, "seen": seen_curve[-1],
            "inferential": inf_curve[-1], "symmetric": 1 - inf_curve[-1], "offsets": {"-10": inf_curve[-1]},
            "curve_seen": seen_curve, "curve_inferential": inf_curve}


def test_precision_table_pairs_seeds_and_flags_a_flipped_verdict(tmp_path, monkeypatch):
    lines = [_calib("g_fp32", 0, "symmetric", [0.1, 0.9], [0.0, 0.1]),
             _calib("g_bf16", 0, "symmetric", [0.1, 0.95], [0.0, 0.12]),
             _calib("g_fp32", 1, "inferential", [0.1, 0.9], [0.0, 0.9]),
             _calib("g_bf16", 1, "symmetric", [0.2, 0.9], [0.0, 0.2]),
             _calib("g_fp32", 2, "symmetric", [0.1, 0.9], [0.0, 0.1])]  # no bf16 partner: left out
    calib = tmp_path / "calib.jsonl"
    calib.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    monkeypatch.setattr(precision_check, "CALIB", calib)
    text = precision_check.small_table()
    rows = [line for line in text.splitlines() if line.startswith("| g |")]
    assert len(rows) == 2
    assert "| yes | 0.050 | 0.020 |" in rows[0]
    assert "| **no** | 0.100 | 0.700 |" in rows[1]
    assert "same verdict in 1 of 2" in text


def test_precision_faithful_table_reads_the_reference_run(tmp_path, monkeypatch, make_run):
    ref = make_run(tmp_path, "paper-replica_L2_g0.8_s1", inferential=0.4)
    hist = json.loads((ref / "metrics.json").read_text())["history"]
    rec = {"run": "x", "gamma": 0.8, "seed": 1, "precision": "bf16", "d_vocab": None, "command": "python -m core train",
           "reference": str(ref.relative_to(tmp_path)), "history": [precision_check._compact(r) for r in hist]}
    runs = tmp_path / "precision_runs.jsonl"
    runs.write_text(json.dumps(rec) + "\n")
    monkeypatch.setattr(precision_check, "RUNS", runs)
    monkeypatch.setattr(precision_check, "ROOT", tmp_path)
    text = precision_check.faithful_table()
    assert "sized to the task (110)" in text and "(finished)" in text
    assert "| 2 | 1.000 / 1.000 | 0.99 / 0.99 | 0.40 / 0.40 |" in text


def test_precision_collect_with_a_reference_stores_both_histories(tmp_path, monkeypatch, make_run):
    """--collect RUN --reference FP32: both runs' histories go into the record, so the table is
    written after both folders are gone; a reference of another config or seed is refused."""
    bf16 = make_run(tmp_path, "b", inferential=0.0, symmetric=0.9, **{"train.precision": "bf16", "train.seed": 1})
    fp32 = make_run(tmp_path, "f", inferential=0.0, symmetric=0.8, **{"train.seed": 1})
    other = make_run(tmp_path, "o", **{"train.seed": 2})
    runs = tmp_path / "precision_runs.jsonl"
    monkeypatch.setattr(precision_check, "RUNS", runs)
    monkeypatch.setattr(precision_check, "ROOT", tmp_path)
    with pytest.raises(SystemExit):
        precision_check.collect(bf16, "cmd", other)
    assert not runs.exists()
    precision_check.collect(bf16, "cmd", fp32)
    rec = json.loads(runs.read_text())
    assert rec["reference_precision"] == "fp32" and len(rec["reference_history"]) == len(rec["history"])
    for folder in (bf16, fp32, other):
        shutil.rmtree(folder)
    text = precision_check.faithful_table()
    assert "(finished, stored)" in text
    assert "| 2 | 1.000 / 1.000 | 0.99 / 0.99 | 0.00 / 0.00 | 0.80 / 0.90 |" in text


def test_loss_table_puts_the_authors_losses_next_to_the_201_token_runs(tmp_path, make_run):
    make_run(tmp_path, "paper-replica_bf16_L2_g0.8_s2", **{"model.d_vocab": 201, "train.precision": "bf16"})
    make_run(tmp_path, "paper-replica_L2_g0.8_s1")  # 110 tokens: its losses are not comparable, left out
    text = replication.loss_table(tmp_path)
    head, _, *rows = text.splitlines()
    assert head == "| epoch | γ 0.8 authors | γ 0.8 ours, seed 2 (bf16) |"
    assert rows[0] == "| 1 | 4.77 | 2.00 |" and rows[1] == "| 2 | 4.51 | 1.00 |"  # tiny: loss 2 / epoch
    assert rows[5] == "| 6 | 3.25 |  |" and len(rows) == 6


def test_key_table_sets_training_split_keys_against_test_split_keys(tmp_path, make_run, monkeypatch):
    """A model right exactly on the keys of the training split reads 1.000 / 0.000: the table's
    columns are the splits it names (key x with x mod m ≠ its position, and = its position)."""
    import core.task
    from core.presets import get_preset
    make_run(tmp_path, "paper-replica_L2_g0.8_s1")
    (tmp_path / "paper-replica_L2_g0.5_s1.checkpoint.safetensors").write_bytes(b"")  # unfinished: left out
    task, last = get_preset("tiny").task, {}
    real_generate = core.task.generate

    def spy(*a, **k):
        last["batch"] = real_generate(*a, **k)
        return last["batch"]

    def oracle(model, tokens, batch_size=4096):
        b = last["batch"]
        assert torch.equal(tokens, b.tokens)
        return torch.where(core.task.split_of(task, b.key, b.key_pos), b.target + 1, b.target)

    monkeypatch.setattr(core.task, "generate", spy)
    monkeypatch.setattr(sys.modules["core.train"], "predict", oracle)
    rows = [line for line in replication.key_table(tmp_path, n=50).splitlines() if line.startswith("| γ")]
    assert rows == ["| γ 0.8 seed 1 (110 tokens, fp32; `paper-replica_L2_g0.8_s1`) | 1.000 | 0.000 |"], rows


@pytest.mark.parametrize("env, stop", [({}, []), ({"EPOCHS": "30"}, ["--epochs", "30"])])
def test_replicate_sh_starts_the_authors_schedule_and_epochs_moves_only_the_stop(tmp_path, env, stop):
    """docs/replicate.sh, run with a stand-in python3 that prints its arguments: a fresh run gets
    the preset, γ, seed, precision and the authors' schedule (warm-up 10, cosine to 200), and
    EPOCHS adds --epochs and nothing else."""
    import os
    import subprocess
    shim = tmp_path / "python3"
    shim.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    shim.chmod(0o755)
    r = subprocess.run(["bash", str(ROOT / "docs" / "replicate.sh"), "0.8", "97"], capture_output=True, text=True,
                       env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PRECISION": "bf16", **env},
                       timeout=60)
    assert r.returncode == 0, r.stderr
    args = r.stdout.split("\n")
    assert args[:9] == ["-m", "core", "train", "--preset", "paper-replica", "--gamma", "0.8", "--seed", "97"]
    assert "train.warmup_epochs=10" in args and "train.decay_epochs=200" in args
    assert args[args.index("--out") + 1] == "pretrained/paper-replica_bf16_L2_g0.8_s97"
    assert ("--epochs" in args) == bool(stop)
    if stop:
        assert args[args.index("--epochs"):args.index("--epochs") + 2] == stop


def test_pair_table_sets_two_runs_side_by_side_epoch_by_epoch(tmp_path, make_run):
    a = make_run(tmp_path, "a", inferential=0.9, **{"train.epochs": 3})
    b = make_run(tmp_path, "b", inferential=0.3, **{"train.epochs": 2})
    text = replication.pair_table(a, b)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "finished" in text.splitlines()[0]
    assert "| 0.6667 | 0.99 / 0.90 | x−10 90 %" in rows["3"] and rows["3"].endswith("| | | |")  # b has no epoch 3
    assert "| 1.0000 | 0.66 / 0.60 |" in rows["2"] and "| 1.0000 | 0.99 / 0.30 |" in rows["2"]
    assert "0" not in rows                                                                # untrained row left out


def test_precision_collect_accepts_a_reference_stopped_earlier_on_the_same_schedule(tmp_path, monkeypatch,
                                                                                     make_run):
    """The fp32 control of the faithful γ 0.8 run is that run stopped at epoch 6 (``--epochs 6`` with
    the schedule given): the same run up to its stop, so it is accepted; another decay is not."""
    bf16 = make_run(tmp_path, "b", **{"train.precision": "bf16", "train.epochs": 3, "train.decay_epochs": 30})
    short = make_run(tmp_path, "s", **{"train.epochs": 2, "train.decay_epochs": 30})
    other = make_run(tmp_path, "o", **{"train.epochs": 2, "train.decay_epochs": 20})
    monkeypatch.setattr(precision_check, "RUNS", tmp_path / "precision_runs.jsonl")
    monkeypatch.setattr(precision_check, "ROOT", tmp_path)
    with pytest.raises(SystemExit):
        precision_check.collect(bf16, "cmd", other)
    precision_check.collect(bf16, "cmd", short)
    rec = json.loads((tmp_path / "precision_runs.jsonl").read_text())
    assert len(rec["reference_history"]) == 3 and len(rec["history"]) == 4


def test_seed_table_gives_one_row_per_run_with_its_last_epoch_and_verdict(tmp_path, make_run):
    make_run(tmp_path, "paper-replica_bf16_L2_g0.5_s2", inferential=0.0, symmetric=0.98,
             **{"model.d_vocab": 201, "train.precision": "bf16", "train.seed": 2})
    make_run(tmp_path, "paper-replica_bf16_L2_g0.8_s1", inferential=0.6, symmetric=0.0,
             **{"model.d_vocab": 201, "train.precision": "bf16", "train.seed": 1})
    make_run(tmp_path, "unrelated_L2_g0.8_s1")
    rows = [line for line in replication.seed_table(tmp_path, at=(1,)).splitlines() if line.startswith("| 0.")]
    assert len(rows) == 2
    assert rows[0].startswith("| 0.5 | 2 | `paper-replica_bf16_L2_g0.5_s2` (201 tokens, bf16, finished)")
    assert rows[0].endswith("| symmetric 98 % |")
    assert rows[1].endswith("| leaning inferential 60 % |")


def test_a_stashed_history_keeps_a_stopped_run_in_the_tables(tmp_path, monkeypatch):
    """--stash copies a checkpoint's config and history into a small JSON file; with the
    checkpoint gone, the tables still read the run (as "stopped")."""
    from core.presets import get_preset
    from core.model import build_model
    from core.runs import checkpoint_path, save_checkpoint
    from core.train import TrainState
    cfg = get_preset("tiny")
    rec = {"epoch": 1, "train_loss": 2.0, "seen_test_accuracy": 0.97,
           "held_out": {"4,3": {"inferential": 0.0, "symmetric": 0.6, "other": 0.4, "offsets": {"-6": 0.6, "-16": 0.4}}}}
    model = build_model(cfg)
    state = TrainState(epoch=1, batch=0, step=4, seconds=1.0, loss_sum=torch.zeros(()), epoch_rng=torch.Generator().get_state(),
                       optimizer={"state": {}, "param_groups": []}, history=[rec])
    root = tmp_path / "pretrained"
    folder = root / "paper-replica_bf16_L2_g0.5_s5"
    save_checkpoint(checkpoint_path(folder), cfg, model, state)
    monkeypatch.setattr(replication, "ROOT", tmp_path)
    monkeypatch.setattr(replication, "STASH", tmp_path / "docs" / "replication_histories")
    assert replication.main(["--stash", str(folder)]) == 0
    checkpoint_path(folder).unlink()
    rows = [line for line in replication.seed_table(root, at=(1,)).splitlines() if line.startswith("| 0.5")]
    assert len(rows) == 1 and "stopped" in rows[0] and rows[0].endswith("| leaning symmetric 60 % |")
    assert replication.main(["--stash", str(folder)]) == 2  # no checkpoint any more: one line, no traceback

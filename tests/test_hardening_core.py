"""Hosted-demo hardening of the core (issue 11): reproducible training with several threads,
evaluation samples independent of list order, every layer in the probe report, ``| head``
safety of the CLI, and saves that lose nothing when killed at any step."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_threads():
    """``python -m core train --threads N`` sets torch's threads for the whole process: restore them."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


# -- #6 reproducibility with more than one thread ------------------------------------------------

# batch 512 x 9 positions x d_model 16 = 73,728 embedding-gradient entries per step: above torch's
# grain size (32,768), so the embedding backward really runs on several threads
TINY_PARALLEL = ["--preset", "tiny", "--set", "train.batch_size=512", "--set", "train.n_train=4096",
                 "--epochs", "3", "--quiet"]


def _trained(tmp_path: Path, name: str, *flags: str) -> tuple[dict, dict[str, torch.Tensor]]:
    out = tmp_path / name
    assert main(["train", *TINY_PARALLEL, *flags, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for rec in metrics["history"]:
        rec.pop("seconds")  # wall time, the one thing allowed to differ
    metrics.pop("seconds")
    return metrics, load_file(str(out / "weights.safetensors"))


@pytest.mark.parametrize("flags", [(), ("--threads", "2")], ids=["default-threads", "threads-2"])
def test_same_seed_same_threads_gives_identical_run(tmp_path, restore_threads, flags):
    m1, w1 = _trained(tmp_path, "a", *flags)
    m2, w2 = _trained(tmp_path, "b", *flags)
    assert m1 == m2
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert m1["threads"] == torch.get_num_threads()  # recorded with the run


# -- #8 evaluation samples independent of list order ----------------------------------------------

def test_eval_sample_is_independent_of_list_order():
    """Same weights, same seed: the order of held_out, overrides and operations changes nothing."""
    import dataclasses

    from core.runs import load_run
    from core.train import evaluate, make_eval_set

    run = load_run(ROOT / "pretrained" / "cpu-demo_L2_g0.9_s0")  # not fitted: accuracies far from 0 and 1
    task = run.config.task
    a = dataclasses.replace(task, held_out=((4, 3), (1, 2)), overrides=((3, 4, -6), (2, 1, 3)))
    b = dataclasses.replace(task, held_out=((1, 2), (4, 3)), overrides=((2, 1, 3), (3, 4, -6)),
                            operations=tuple(reversed(task.operations)))
    assert a.pairs != b.pairs  # the lists really are in another order
    ra, rb = (evaluate(run.model, t, make_eval_set(t, 64, seed=0)) for t in (a, b))
    assert ra["per_pair"] == rb["per_pair"]
    assert ra["held_out"] == rb["held_out"]
    assert ra["seen_test_accuracy"] == pytest.approx(rb["seen_test_accuracy"], abs=1e-12)
    assert 0.1 < ra["held_out"]["4,3"]["inferential"] < 0.9  # a sample-sensitive number, not 0 or 1


# -- #9 the probe report prints every layer -------------------------------------------------------

def test_probe_report_prints_every_layer_of_a_three_layer_run(capsys, restore_threads):
    assert main(["probe", str(ROOT / "pretrained" / "cpu-deep_L3_g0.5_s0"), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for layer in (1, 2, 3):
        for edge in ("key→anchors", "anchors→last", "key→last"):
            assert out.count(f"layer {layer} {edge} ") == 1, (layer, edge, out)
    assert "layer 4" not in out


# -- #10 a reader that closes stdout early --------------------------------------------------------

@pytest.mark.parametrize("args", [["probe", "pretrained/cpu-demo_L2_g0.5_s0", "--threads", "1"],
                                  ["eval", "pretrained/cpu-demo_L2_g0.5_s0"]], ids=["probe", "eval"])
def test_stdout_closed_by_the_reader_ends_quietly_with_status_141(args):
    """Like ``python -m core probe RUN | head -0``: the reader closes the pipe before the first
    write, so every write fails (deterministically, unlike a real ``head -8``)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "core", *args], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()  # the reader goes away before reading anything
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert err == ""  # no traceback, no "Exception ignored ... BrokenPipeError"

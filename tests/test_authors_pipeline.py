"""docs/authors_pipeline.py: the re-implementation of the authors' pipeline computes what ``core``
computes where the two are meant to agree (model function, split rule, schedule), so a difference
between their trajectories is a difference of the settings listed in its docstring."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import ModelConfig
from core.model import AnchorTransformer
from core.presets import get_preset
from core.train import lr_at as core_lr_at

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ap(doc_script):
    return doc_script("authors_pipeline")


def _copy_ours_into_theirs(ours: AnchorTransformer, theirs) -> None:
    with torch.no_grad():
        theirs.tok.weight.copy_(ours.W_E)
        theirs.pos.weight.copy_(ours.W_pos)
        for block, (attn, ffn) in zip(ours.blocks, theirs.layers):
            a = block.attn
            # ours [head, d_model, d_head] -> nn.Linear weight [head·d_head, d_model]
            for src, dst in ((a.W_Q, attn.W_Q), (a.W_K, attn.W_K), (a.W_V, attn.W_V)):
                dst.weight.copy_(src.permute(1, 0, 2).reshape(src.shape[1], -1).T)
            attn.fc.weight.copy_(a.W_O.reshape(-1, a.W_O.shape[-1]).T)
            attn.ln.load_state_dict(block.ln1.state_dict())
            ffn.fc1.weight.copy_(block.mlp.W_in.T)
            ffn.fc2.weight.copy_(block.mlp.W_out.T)
            ffn.ln.load_state_dict(block.ln2.state_dict())
        theirs.proj.weight.copy_(ours.W_U.T)
        theirs.proj.bias.copy_(ours.b_U)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_same_function_as_core_model(ap, layers):
    cfg = ModelConfig(n_layers=layers, d_model=24, d_ff=40, d_head=12, n_heads=1, gamma=0.5)
    ours = AnchorTransformer(cfg, d_vocab=110, n_ctx=9, generator=torch.Generator().manual_seed(0)).double()
    theirs = ap.TheirGPT(110, 9, 24, 40, 1, 12, layers, 0.5).double()
    _copy_ours_into_theirs(ours, theirs)
    tokens = torch.randint(1, 110, (32, 9), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(theirs(tokens), ours(tokens), rtol=1e-10, atol=1e-10)
    # and different weights give a different function (the comparison can fail)
    with torch.no_grad():
        theirs.layers[0][1].fc1.weight.mul_(1.5)
    assert not torch.allclose(theirs(tokens), ours(tokens))


def test_initial_scales_follow_gamma(ap):
    torch.manual_seed(0)
    m = ap.TheirGPT(201, 20, 400, 1200, 1, 200, 2, 0.8)
    for w, d_in in ((m.tok.weight, 400), (m.layers[0][0].W_Q.weight, 400), (m.layers[0][0].fc.weight, 200),
                    (m.layers[0][1].fc2.weight, 1200), (m.proj.weight, 400)):
        assert w.std().item() == pytest.approx(d_in ** -0.8, rel=0.05)


def test_data_groups_obey_the_split_and_targets(ap):
    rng = np.random.default_rng(0)
    for test_keys in (True, False):
        seq = ap.make_group(rng, (3, 4), 2000, test_keys)
        assert seq.shape == (2000, 10)
        inp = seq[:, :9]
        # the anchor pair sits at p+1, p+2 with p in 0..6; the key before it
        pos = np.array([np.flatnonzero((row[:-1] == 3) & (row[1:] == 4))[0] - 1 for row in inp])
        assert pos.min() >= 0 and pos.max() <= 6
        key = inp[np.arange(2000), pos]
        assert np.all((key % 9 == pos) == test_keys)
        assert np.all(seq[:, -1] == key - 6)  # (3,4) is overridden to x - 6
    seq = ap.make_group(rng, (4, 3), 500, False)
    key = np.array([row[np.flatnonzero((row[:-2] == 4) & (row[1:-1] == 3))[0] - 1] for row in seq])
    assert np.all(seq[:, -1] == key - 10)


def test_group_sizes_match_their_config(ap):
    groups = ap.make_data(0, 16_000)
    assert len(groups) == 32
    assert len(groups["12_train"]) == math.ceil(16_000 * 0.05625)
    assert len(groups["12_test"]) == math.ceil(16_000 * 0.00625)


def test_schedules(ap):
    spe = 371
    tc = get_preset("paper-replica").train
    for step in (0, 100, spe * 10, spe * 10 + 1, spe * 57, spe * 199, spe * 220):
        assert ap.lr_at(step, spe, "ours") == pytest.approx(core_lr_at(tc, step / spe), rel=1e-9)
    assert ap.lr_at(spe * 10, spe, "theirs") == pytest.approx(2e-4)
    assert ap.lr_at(spe * 210, spe, "theirs") == pytest.approx(1e-5)
    assert ap.lr_at(spe * 200, spe, "theirs") > 1.01e-5  # their cosine ends at 210, ours at 200
    assert ap.lr_at(spe * 10 + 1, spe, "drop") == 1e-5


def test_tiny_run_writes_one_record_per_epoch(ap, tmp_path):
    out = tmp_path / "ap.jsonl"
    args = ap.parse(["--data-size", "3200", "--d-model", "16", "--d-ff", "32", "--d-head", "8", "--batch", "128",
                     "--epochs", "2", "--quiet", "--log-every", "5", "--out", str(out), "--threads", "1"])
    hist = ap.run(args)
    assert [r["epoch"] for r in hist] == [0, 1, 2]
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["epoch"] for r in lines if "seen" in r] == [0, 1, 2]
    assert any("loss" in r for r in lines)
    assert all(0 <= r["seen"] <= 1 and math.isfinite(r["train_loss"]) for r in hist[1:])
    assert sum(hist[-1]["held_out_train_keys"].values()) <= 1.0 + 1e-9
    assert all(math.isfinite(r["test_loss"]) and 0 <= r["seen_train_keys"] <= 1 for r in hist)


def test_test_loss_is_their_test_loss(ap):
    """``test_loss`` is their "Test Loss": the mean cross-entropy over the 16 test-key groups and
    (4,3)'s training-key group. Checked against a direct computation on all of those sequences,
    and at a small init (logits ≈ 0) against ln(vocab), the loss of a uniform guess."""
    torch.manual_seed(0)
    groups = {k: torch.from_numpy(v) for k, v in ap.make_data(1, 3200).items()}
    model = ap.TheirGPT(201, 20, 16, 32, 1, 8, 2, 1.5)
    rec = ap.evaluate(model, groups)
    seqs = torch.cat([groups[f"{a}{b}_test"] for a, b in ap.PAIRS] + [groups["43_train"]])
    with torch.no_grad():
        direct = torch.nn.functional.cross_entropy(model(seqs[:, :-1])[:, -1], seqs[:, -1]).item()
    assert rec["test_loss"] == pytest.approx(direct, abs=1e-4)
    assert rec["test_loss"] == pytest.approx(math.log(201), abs=0.05)
    assert 0 <= rec["seen_train_keys"] <= 1


def test_bf16_run_follows_fp32(ap):
    """bf16 autocast (for CPU runs of their pipeline; labelled, not theirs) trains the same model:
    same init and data, losses within bf16 rounding of fp32's over two epochs, and the weights stay
    fp32 (master weights)."""
    base = ["--data-size", "3200", "--d-model", "16", "--d-ff", "32", "--d-head", "8", "--batch", "128",
            "--epochs", "2", "--quiet", "--threads", "1", "--gamma", "0.5"]
    fp32 = ap.run(ap.parse(base))
    bf16 = ap.run(ap.parse(base + ["--precision", "bf16"]))
    assert bf16[0]["seen"] == fp32[0]["seen"]  # evaluation before training is fp32 in both
    for a, b in zip(fp32[1:], bf16[1:]):
        assert b["precision"] == "bf16" and abs(a["train_loss"] - b["train_loss"]) < 0.02
    model = ap.TheirGPT(201, 20, 16, 32, 1, 8, 2, 0.5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.randint(20, 100, (4, 9)))
    assert logits.dtype == torch.float32 and all(p.dtype == torch.float32 for p in model.parameters())


def test_bad_vocab_is_refused(ap):
    with pytest.raises(SystemExit):
        ap.parse(["--vocab", "100"])


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(ap, tmp_path):
    """``--checkpoint``: a run stopped mid-epoch (and one stopped at an epoch end) and continued
    with the same command ends with the same records as one never stopped; a checkpoint of other
    settings is refused with a sentence."""
    base = ["--data-size", "3200", "--d-model", "16", "--d-ff", "32", "--d-head", "8", "--batch", "128",
            "--epochs", "3", "--quiet", "--threads", "1", "--log-every", "4"]
    whole = ap.run(ap.parse(base + ["--out", str(tmp_path / "whole.jsonl")]))
    spe = (15 * (3200 // 16)) // 128  # their groups: 15 seen pairs × data_size/16 training keys each
    for stop in (spe + 7, 2 * spe):
        ck, out = tmp_path / f"ck{stop}.safetensors", tmp_path / f"part{stop}.jsonl"
        first = ap.run(ap.parse(base + ["--out", str(out), "--checkpoint", str(ck), "--stop-at-step", str(stop)]))
        assert ck.exists() and len(first) == 1 + stop // spe
        ap.run(ap.parse(base + ["--out", str(out), "--checkpoint", str(ck)]))
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        epochs = [r for r in lines if "seen" in r]
        assert [r["epoch"] for r in epochs] == [0, 1, 2, 3]  # no record twice, none missing
        for a, b in zip(whole, epochs):
            assert a["train_loss"] == b["train_loss"] and a["seen"] == b["seen"], (stop, a["epoch"])
            assert {str(k): v for k, v in a["held_out_train_keys"].items()} == b["held_out_train_keys"]
        steps = [r["step"] for r in lines if "step" in r]
        assert steps == sorted(set(steps))
    with pytest.raises(SystemExit, match="other settings"):
        ap.run(ap.parse(base + ["--gamma", "0.5", "--checkpoint", str(ck)]))
    assert ap.run(ap.parse(base + ["--checkpoint", str(ck)])) == []  # finished: nothing left to do


def test_compare_table_sets_both_losses_next_to_the_authors(tmp_path, capsys):
    """docs/authors_compare.py: an epoch record's train loss, test loss and both seen accuracies
    appear in that epoch's row, next to the authors' numbers of the same epoch."""
    spec = importlib.util.spec_from_file_location("authors_compare", ROOT / "docs" / "authors_compare.py")
    cmp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cmp)
    log = tmp_path / "run.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"step": 100, "epoch": 0.27, "loss": 4.9},
        {"epoch": 3, "train_loss": 4.2244, "test_loss": 4.0001, "seen": 0.0243, "seen_train_keys": 0.0405},
        {"event": "eval", "epoch": 4, "train_loss": 3.5, "seen_test_accuracy": 0.1}]) + "\n")
    cmp.main([str(log)])
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    assert "4.22 / 4.00 (seen 0.024 / 0.041)" in rows["3"] and "4.12 / 4.12 (seen 0.02 / 0.041)" in rows["3"]
    assert "3.50 (seen 0.100)" in rows["4"] and "3.86 / 3.81" in rows["4"]
    assert rows["100"].endswith("| 4.90 |")
    cmp.main([str(log)], gamma=0.5)                 # their γ 0.5 log: fitted by epoch 3
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    assert "1.20 / 2.07 (seen 0.96 / 0.973)" in rows["3"] and "4.22 / 4.00" in rows["3"]

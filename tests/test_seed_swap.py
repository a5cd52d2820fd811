"""docs/seed_swap.py: a run with the weights of one seed and the data of another is, for equal
seeds, exactly ``core.fit.fit`` of the base config; for different seeds, fit with the weights of
the first and the data and batch order of the second. Results are rewritten, not duplicated."""
from __future__ import annotations

import json

import pytest
import torch

from core.fit import fit
from core.model import build_model
from core.presets import get_preset
from core.runs import save_run


@pytest.fixture
def ss(doc_script):
    return doc_script("seed_swap")


@pytest.fixture
def base(tmp_path):
    cfg = get_preset("tiny")
    folder = tmp_path / "base"
    save_run(folder, cfg, build_model(cfg), {"history": []})
    return folder


def _losses(history):
    return [r["train_loss"] for r in history]


def test_equal_seeds_are_a_plain_run_and_unequal_seeds_take_weights_from_the_first(ss, base, tmp_path):
    torch.set_num_threads(1)
    kw = dict(base=base, epochs=2, threads=1, every=5.0, workdir=tmp_path / "work", results=tmp_path / "r.jsonl")
    plain = ss.run(3, 3, **kw)
    cfg3 = ss.swapped_config(get_preset("tiny"), 3, 2)
    _, ref = fit(cfg3, model=build_model(cfg3, torch.Generator().manual_seed(3)))
    assert _losses(plain) == _losses(ref["history"])

    mixed = ss.run(5, 3, **kw)
    _, ref_mixed = fit(cfg3, model=build_model(cfg3, torch.Generator().manual_seed(5)))
    assert _losses(mixed) == _losses(ref_mixed["history"])
    assert _losses(mixed) != _losses(plain)  # other initial weights, same data

    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert sorted((r["weights_seed"], r["data_seed"], r["epoch"]) for r in rows) == [(3, 3, 0), (3, 3, 1), (3, 3, 2), (5, 3, 0), (5, 3, 1), (5, 3, 2)]
    ss.run(5, 3, **kw)  # again: its lines are replaced, not added
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    assert not list((tmp_path / "work").glob("*.checkpoint.safetensors"))  # removed once the run ended
    text = ss.table(tmp_path / "r.jsonl", at=(1, 2))
    assert text.count("\n") == 4 and "| 5 | 3 |" in text


def test_bad_input_is_one_line(ss, base, tmp_path, capsys):
    assert ss.main(["--weights-seed", "1", "--data-seed", "1", "--base", str(tmp_path / "nope"),
                    "--workdir", str(tmp_path / "w"), "--results", str(tmp_path / "r.jsonl")]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ss.main(["--weights-seed", "1"])

"""docs/answers_by_position.py: every (4,3) answer is counted once, under its key's position."""
from __future__ import annotations

from core.fit import fit
from core.model import build_model
from core.presets import get_preset
from core.runs import save_run


def test_counts_cover_every_sequence_and_every_key_position(tmp_path, capsys, doc_script):
    abp = doc_script("answers_by_position")
    cfg = get_preset("tiny")
    counts = abp.by_position(build_model(cfg), cfg.task, n=700, seed=1)
    positions = range(cfg.task.seq_len - 2)  # the key sits before the two anchors
    assert set(counts) == set(positions)
    assert sum(sum(c.values()) for c in counts.values()) == 700
    model, metrics = fit(cfg)
    save_run(tmp_path / "r", cfg, model, metrics)
    assert abp.main([str(tmp_path / "r"), "--n", "140"]) == 0
    assert "`r` (finished)" in capsys.readouterr().out
    assert abp.main([str(tmp_path / "missing")]) == 2  # one line, no traceback

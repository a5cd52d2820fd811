"""docs/answers_by_position.py: one row per run, one cell per key position, clean errors.
(The probe itself is tested by construction in tests/test_probes.py.)"""
from __future__ import annotations

from core.fit import fit
from core.presets import get_preset
from core.runs import save_run


def test_one_cell_per_key_position_and_clean_errors(tmp_path, capsys, doc_script):
    abp = doc_script("answers_by_position")
    cfg = get_preset("tiny")
    model, metrics = fit(cfg)
    save_run(tmp_path / "r", cfg, model, metrics)
    assert abp.main([str(tmp_path / "r"), "--n", "140"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].count("key at") == cfg.task.n_key_positions
    assert out[2].startswith("| `r` (finished) |") and out[2].count("|") == cfg.task.n_key_positions + 2
    assert "%" in out[2]
    assert abp.main([str(tmp_path / "missing")]) == 2  # one line, no traceback

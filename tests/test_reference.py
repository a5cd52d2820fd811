"""The authors' logged runs (core/reference.py) and the table that puts a run of their setting
next to them (ui/run_report.authors_frame; issue 10: the app tells the story from runs)."""
from __future__ import annotations

import math

from streamlit.testing.v1 import AppTest

from core.presets import get_preset
from core.reference import AUTHORS_LOG, authors_log_for


def _replica(**overrides):
    return get_preset("paper-replica").replace(**overrides) if overrides else get_preset("paper-replica")


def test_the_authors_setting_is_recognised_whatever_the_vocabulary_precision_or_seed():
    assert authors_log_for(_replica()) == AUTHORS_LOG[0.5]
    assert authors_log_for(_replica(**{"model.gamma": 0.8, "model.d_vocab": None, "model.n_ctx": None,
                                       "train.precision": "bf16", "train.seed": 7, "train.epochs": 30})) \
        == AUTHORS_LOG[0.8]


def test_any_other_setting_has_no_logged_run():
    assert authors_log_for(_replica(**{"model.gamma": 0.6})) is None
    assert authors_log_for(_replica(**{"model.d_model": 256, "model.d_ff": 768, "model.d_head": 128})) is None
    assert authors_log_for(_replica(**{"train.lr_peak": 1e-3})) is None
    assert authors_log_for(_replica(**{"task.held_out": [(2, 3)]})) is None
    assert authors_log_for(get_preset("cpu-demo")) is None
    assert authors_log_for(get_preset("paper")) is None  # 900k sequences, lr 2.5e-4: not their logged runs


def test_the_logged_numbers_are_the_science_documents():
    """docs/science.md §3's table, read from the file: every logged seen accuracy appears there."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "science.md").read_text()
    rows = {int(line.split("|")[1]): line for line in text.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    for gamma, col in ((0.5, 2), (0.8, 4)):
        for e in AUTHORS_LOG[gamma]:
            if e.epoch in rows:
                assert float(rows[e.epoch].split("|")[col]) == e.seen, (gamma, e)


def _history(epochs: int) -> list[dict]:
    return [{"epoch": e, "seen_test_accuracy": e / epochs,
             "held_out": {"4,3": {"inferential": 0.5, "symmetric": 0.25, "other": 0.25,
                                  "offsets": {"-10": 0.5, "-6": 0.25, "-7": 0.1}}}}
            for e in range(epochs + 1)]


def test_frame_puts_this_runs_evaluations_under_the_logged_epochs():
    from ui.run_report import authors_frame
    cfg = _replica(**{"model.gamma": 0.8, "train.epochs": 25})
    frame = authors_frame(cfg, _history(10))  # a run stopped at epoch 10 of 25
    assert list(frame["epoch"]) == [3, 6, 9, 12, 18, 24]  # epoch 30 is past the planned 25
    assert list(frame["authors: seen"]) == [0.02, 0.05, 0.11, 0.24, 0.56, 0.99]
    assert math.isclose(frame["this run: seen"][2], 0.9) and math.isnan(frame["this run: seen"][3])
    assert frame["this run: top answers"][0] == "x−10 50%, x−6 25%"
    assert authors_frame(get_preset("cpu-demo"), _history(3)) is None


def test_run_report_shows_the_table_only_for_the_authors_setting():
    def script():
        from core.presets import get_preset
        from ui.run_report import authors_comparison

        hist = [{"epoch": e, "seen_test_accuracy": 0.1 * e, "held_out": {"4,3": {"inferential": 0.1, "symmetric": 0.0,
                                                                                 "offsets": {"-10": 0.1}}}}
                for e in range(4)]
        authors_comparison(get_preset("paper-replica").replace(**{"model.gamma": 0.8}), hist)
        authors_comparison(get_preset("cpu-demo"), hist)

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception
    assert len(at.dataframe) == 1
    assert "Next to the authors' logged run" in at.markdown[0].value and "201 tokens" in at.markdown[0].value

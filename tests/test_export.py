"""Export for researchers (issue 9 item 7): a run folder as one zip archive (``core.export``),
its round trip, and the hostile folders it refuses; the command that reproduces a run
(``ui.jobs.reproduce_command``)."""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

from core import export
from core.presets import get_preset
from core.runs import load_run, save_run
from core.model import build_model

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def _run(folder: Path, name: str = "tiny_L1_g0.5_s0", **overrides) -> Path:
    cfg = get_preset("tiny").replace(**overrides) if overrides else get_preset("tiny")
    model = build_model(cfg, torch.Generator().manual_seed(0))
    held = {"4,3": {"inferential": 0.1, "symmetric": 0.2, "other": 0.7, "offsets": {"-7": 0.3}}}
    hist = [{"epoch": 0, "seen_test_accuracy": 0.1, "per_pair": {f"{a},{b}": 0.1 for a, b in cfg.task.pairs},
             "held_out": held}]
    return save_run(folder / name, cfg, model, {"history": hist, "threads": 1})


def test_round_trip_gives_the_same_run(tmp_path):
    run = _run(tmp_path)
    data = export.run_archive(run)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert sorted(z.namelist()) == sorted(f"{run.name}/{f}" for f in export.RUN_FILES)
        for f in export.RUN_FILES:
            assert z.read(f"{run.name}/{f}") == (run / f).read_bytes()
        z.extractall(tmp_path / "unpacked")
    back = load_run(tmp_path / "unpacked" / run.name)
    orig = load_run(run)
    assert back.config == orig.config and back.metrics == orig.metrics
    for k, v in orig.model.state_dict().items():
        assert torch.equal(back.model.state_dict()[k], v)
    assert export.run_archive(run) == data  # deterministic: same files, same bytes
    assert export.archive_name(run) == f"{run.name}.zip"


def test_a_committed_run_exports(tmp_path):
    name = json.loads((ROOT / "pretrained" / "lesson.json").read_text())["inferential"]
    data = export.run_archive(ROOT / "pretrained" / name)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert len(z.namelist()) == 3 and z.testzip() is None


def test_an_extra_file_is_refused(tmp_path):
    run = _run(tmp_path)
    (run / "notes.txt").write_text("secret")
    with pytest.raises(export.ExportError, match="notes.txt"):
        export.run_archive(run)
    (run / "notes.txt").unlink()
    (run / ".hidden").mkdir()
    with pytest.raises(export.ExportError, match=".hidden"):
        export.run_archive(run)


def test_symlinks_are_refused(tmp_path):
    run = _run(tmp_path)
    outside = tmp_path / "outside.json"
    outside.write_text((run / "metrics.json").read_text())
    (run / "metrics.json").unlink()
    (run / "metrics.json").symlink_to(outside)  # a valid run through the link: still refused
    with pytest.raises(export.ExportError, match="symbolic link"):
        export.run_archive(run)
    other = _run(tmp_path, "other")
    link = tmp_path / "link_to_run"
    link.symlink_to(other, target_is_directory=True)
    with pytest.raises(export.ExportError, match="symbolic link"):
        export.run_archive(link)


def test_oversize_is_refused(tmp_path):
    run = _run(tmp_path)
    size = sum((run / f).stat().st_size for f in export.RUN_FILES)
    assert export.check_exportable(run, max_bytes=size) == size
    with pytest.raises(export.ExportError, match="MiB"):
        export.run_archive(run, max_bytes=size - 1)


def test_invalid_or_missing_runs_are_refused(tmp_path):
    run = _run(tmp_path)
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(export.ExportError, match="not a valid run"):
        export.run_archive(run)
    assert export.check_exportable(run, validate=False) > 0  # layout only: the page's cheap check
    with pytest.raises(export.ExportError):
        export.run_archive(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(export.ExportError, match="not a folder"):
        export.run_archive(tmp_path / "file")
    partial = _run(tmp_path, "partial")
    (partial / "weights.safetensors").unlink()
    with pytest.raises(export.ExportError, match="weights.safetensors"):
        export.run_archive(partial)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_in_place_of_a_file_is_refused_without_blocking(tmp_path):
    run = _run(tmp_path)
    (run / "metrics.json").unlink()
    os.mkfifo(run / "metrics.json")
    with pytest.raises(export.ExportError, match="not a regular file"):
        export.run_archive(run)


# -- the command that reproduces a run ---------------------------------------------------------------
def _committed_runs() -> list[Path]:
    from core.runs import list_runs
    top = ROOT / "pretrained"
    grids = [p for p in top.iterdir() if p.is_dir() and not (p / "config.json").exists()]
    return list_runs(top) + [r for g in grids for r in list_runs(g)]


def test_every_committed_run_has_a_command_that_rebuilds_its_config():
    import shlex

    from core.cli import build_parser, config_from_args
    from core.runs import load_config
    from ui.jobs import reproduce_command

    runs = _committed_runs()
    assert len(runs) >= 5
    for run in runs:
        cfg = load_config(run)
        cmd = reproduce_command(cfg, run.name, threads=2)
        argv = shlex.split(cmd)
        assert argv[:4] == ["python", "-m", "core", "train"]
        args = build_parser().parse_args(argv[3:])
        assert config_from_args(args) == cfg, run
        assert args.out == f"runs/{run.name}" and args.threads == 2 and not args.half
        assert str(ROOT) not in cmd and not any(a.startswith("/") for a in argv)


def test_reproduce_command_flags_and_refusals():
    from ui.jobs import reproduce_command

    cfg = get_preset("tiny").replace(**{"model.gamma": 0.75, "train.lr_peak": 0.003})
    cmd = reproduce_command(cfg, "x", half=True)
    assert "--preset tiny" in cmd and "--gamma 0.75" in cmd and "train.lr_peak=0.003" in cmd and cmd.endswith("--half")
    assert "--threads" not in reproduce_command(cfg, "x", threads=None)
    long = reproduce_command(cfg, "x", checkpoint_every=5)
    assert long.endswith("--checkpoint-every 5") and "--checkpoint-every" not in cmd
    for bad in ("", "..", "a/b", "/etc", "a\nb"):
        with pytest.raises(ValueError):
            reproduce_command(cfg, bad)


def test_stored_dtype(tmp_path):
    from core.runs import load_run as _load
    run = _run(tmp_path)
    assert export.stored_dtype(run) == "F32"
    r = _load(run)
    half = save_run(tmp_path / "half", r.config, r.model, r.metrics, half=True)
    assert export.stored_dtype(half) == "F16"


def test_the_run_card_shows_the_command_and_the_archive_button(app_env):
    from streamlit.testing.v1 import AppTest

    run = _run(app_env.pretrained, "tiny_L1_g0.5_s0")
    at = AppTest.from_file(str(ROOT / "pages" / "2_Train.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    codes = [c.value.replace(" \\\n  ", " ") for c in at.code]  # shown in continuation lines (ui.jobs.shell_lines)
    assert f"python -m core train --preset tiny --gamma 0.5 --layers 1 --seed 0 --out runs/{run.name} --threads 1" in codes
    assert not any(str(app_env.pretrained) in c for c in codes)  # no server path
    labels = [b.proto.label for b in at.get("download_button")]
    assert any(label.startswith("Download the run") for label in labels)
    assert labels.count("SVG") == labels.count("CSV") == 3  # accuracy, per pair, answers (one record: no loss curve)
    (run / "extra.txt").write_text("x")  # a folder that holds more than a run: no download, a sentence
    at = AppTest.from_file(str(ROOT / "pages" / "2_Train.py"), default_timeout=120).run()
    assert not at.exception
    assert not any(b.proto.label.startswith("Download the run") for b in at.get("download_button"))
    assert any("cannot be downloaded" in c.value and "extra.txt" in c.value for c in at.caption)


def test_svg_export_and_its_graceful_absence(app_env, monkeypatch):
    import altair as alt
    import pandas as pd
    from streamlit.testing.v1 import AppTest

    from ui import downloads

    chart = alt.Chart(pd.DataFrame({"a": [1, 2]})).mark_bar().encode(x="a:Q")
    if downloads.svg_available():  # requirements.txt pins vl-convert-python
        assert downloads.chart_svg(chart).lstrip().startswith("<svg")
    _run(app_env.pretrained, "tiny_L1_g0.5_s0")
    monkeypatch.setattr(downloads, "svg_available", lambda: False)  # as without vl-convert-python
    at = AppTest.from_file(str(ROOT / "pages" / "2_Train.py"), default_timeout=120).run()
    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert "SVG" not in labels and labels.count("CSV") == 3


def test_run_card_of_a_long_bf16_run_promises_the_outcome_not_the_bits(tmp_path, make_run):
    """Newcomer review: the card of a bf16 run said 'give the same weights' and its command had
    no --checkpoint-every, unlike the README's command for the same run."""
    import json

    from streamlit.testing.v1 import AppTest
    folder = make_run(tmp_path, "long_bf16", **{"train.precision": "bf16"})
    m = json.loads((folder / "metrics.json").read_text())
    m["seconds"] = 7200.0
    (folder / "metrics.json").write_text(json.dumps(m))

    def script(path):
        from core.runs import load_run
        from ui.downloads import run_card_export
        run_card_export(load_run(path), "card")

    at = AppTest.from_function(script, args=(str(folder),), default_timeout=60).run()
    assert not at.exception
    caption = "\n".join(c.value for c in at.caption)
    assert "expect the same outcome, not the same weights" in caption and "give the same weights" not in caption
    assert "--checkpoint-every 5" in at.code[0].value and "--resume" in caption


def test_svg_of_a_column_sized_chart_is_drawn_at_its_own_width():
    """Charts stretch to their Streamlit column (autosize fit-x); vl-convert has no column and
    drew the accuracy chart's plot a few pixels wide. The SVG is drawn at the chart's own size."""
    import re

    import pandas as pd

    from ui import charts, downloads

    if not downloads.svg_available():
        pytest.skip("vl-convert-python not installed")
    frame = pd.DataFrame({"epoch": [0, 1, 2] * 2, "accuracy": [0.1, 0.5, 0.9] * 2,
                          "series": ["seen pairs (test split)"] * 3 + ["(4,3) as x−10: inferential (both splits)"] * 3,
                          "mapping": ["seen"] * 3 + ["inferential"] * 3})
    for large in (False, True):
        chart = charts.accuracy_chart(frame, large=large)
        if large:
            assert chart.to_dict()["autosize"]["type"] == "fit-x"  # in the app: the column's width
        svg = downloads.chart_svg(chart)
        # the x axis line (the first axis domain drawn) spans the plot's width
        plot = float(re.search(r'role-axis-domain"[^>]*><line[^>]*x2="([\d.]+)"', svg).group(1))
        assert plot >= 250, plot

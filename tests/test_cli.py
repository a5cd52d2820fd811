"""``python -m core train|eval``: the JSON contract, consistency of eval, clean errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.cli import build_parser, config_from_args, main
from core.config import RunConfig
from core.presets import get_preset
from core.runs import load_run

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
EPS = 1e-9


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "tiny_run"
    p = cli("train", "--preset", "tiny", "--out", str(out), "--json", "--threads", "1")
    assert p.returncode == 0, p.stderr
    return out, p


def test_train_json_contract(trained):
    out, p = trained
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stdout            # exactly one JSON object, nothing else on stdout
    s = json.loads(lines[0])
    assert {"run", "config", "seen_test_accuracy", "seconds", "held_out"} <= set(s)
    assert s["run"] == str(out)
    assert RunConfig.from_dict(s["config"]) == get_preset("tiny")
    assert 0.0 <= s["seen_test_accuracy"] <= 1.0
    assert isinstance(s["seconds"], (int, float)) and s["seconds"] >= 0
    assert set(s["held_out"]) == {"4,3"}
    h = s["held_out"]["4,3"]
    shares = [h["inferential"], h["symmetric"], h["other"]]
    assert all(0.0 <= v <= 1.0 for v in shares)
    assert sum(shares) >= 1 - EPS
    # (4,3): x-10 and x-6 differ, so no answer can count twice
    assert sum(shares) == pytest.approx(1.0)
    assert "Traceback" not in p.stderr
    assert sorted(q.name for q in out.iterdir()) == ["config.json", "metrics.json", "weights.safetensors"]
    assert load_run(out).config == get_preset("tiny")


def test_eval_json_is_consistent_with_train(trained, capsys):
    out, p = trained
    s = json.loads(p.stdout)
    q = cli("eval", str(out), "--json")
    assert q.returncode == 0, q.stderr
    outputs = [q.stdout]
    assert main(["eval", str(out), "--json", "--recompute"]) == 0  # re-evaluates the saved weights
    outputs.append(capsys.readouterr().out)
    for text in outputs:
        e = json.loads(text)
        assert e["run"] == str(out) and e["config"] == s["config"]
        assert e["seen_test_accuracy"] == pytest.approx(s["seen_test_accuracy"])
        for k in ("inferential", "symmetric", "other"):
            assert e["held_out"]["4,3"][k] == pytest.approx(s["held_out"]["4,3"][k])
        assert e["per_pair"] == pytest.approx(s["per_pair"])


def test_eval_table(trained, capsys):
    out, _ = trained
    assert main(["eval", str(out)]) == 0
    text = capsys.readouterr().out
    assert "held out" in text and "overridden" in text and "x-6" in text and "verdict:" in text
    assert len([ln for ln in text.splitlines() if ln.strip().startswith(("1,", "2,", "3,", "4,"))]) == 16


def test_train_text_output_and_no_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--out", str(out), "--threads", "1", "--quiet", "--epochs", "1"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "seen-pair test accuracy" in text and "held-out (4,3)" in text and "verdict:" in text
    assert f"saved {out}" in text
    assert main(args) == 2  # refuses to overwrite
    err = capsys.readouterr().err
    assert err.startswith("error:") and "already exists" in err
    assert main(args + ["--overwrite", "--seed", "3"]) == 0
    assert load_run(out).config.train.seed == 3


def _err_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.strip()]


@pytest.mark.parametrize("args, words", [
    (["train", "--preset", "tiny", "--gamma", "5"], "γ"),
    (["train", "--preset", "tiny", "--set", "task.item_min=2"], "inside the item range"),
    (["train", "--preset", "tiny", "--set", "nonsense=1"], "unknown setting"),
    (["train", "--preset", "tiny", "--set", "model.d_modle=8"], "unknown setting"),
    (["train", "--preset", "tiny", "--set", "novalue"], "--set"),
    (["train", "--preset", "nope"], "unknown preset"),
    (["train", "--preset", "tiny", "--held-out", "3,4"], "both held out and overridden"),
    (["train", "--preset", "tiny", "--held-out", "4"], "pair"),
    (["train", "--preset", "tiny", "--device", "cuda:7" if torch.cuda.is_available() else "cuda"], ""),
    (["eval", "/definitely/not/a/run"], "does not exist"),
    (["eval", str(ROOT / "README.md")], "not a folder"),
    (["train", "--preset", "tiny", "--gamma", "abc"], "--gamma"),
    (["train", "--preset", "tiny", "--threads", "0"], "at least 1"),
    (["train", "--preset", "tiny", "--nonsense"], "unrecognized"),
    (["eval"], "run"),
    (["train", "--preset", "tiny", "--set", "model.gamma=garbage"], "model.gamma"),
    (["train", "--preset", "tiny", "--set", 'task.overrides="x"'], "task.overrides"),
    (["train", "--preset", "tiny", "--set", "task.held_out=5"], "task.held_out"),
])
def test_bad_input_exits_2_with_one_error_line(tmp_path, capsys, args, words):
    if args[0] == "train":
        args = args + ["--out", str(tmp_path / "r"), "--threads", "1", "--quiet"]
    try:
        rc = main(args)
    except Exception as e:  # a traceback would reach the user
        pytest.fail(f"uncaught {type(e).__name__}: {e}")
    cap = capsys.readouterr()
    lines = _err_lines(cap.err)
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], cap.err
    assert cap.out == ""
    assert not (tmp_path / "r").exists()


def test_usage_errors_are_one_line_with_a_help_hint(capsys):
    assert main(["train", "--gamma", "abc"]) == 2
    err = capsys.readouterr().err
    assert _err_lines(err) == [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert "usage:" not in err and "--help" in err and "invalid float value: 'abc'" in err
    assert main(["train", "--help"]) == 0  # help still prints the usage
    assert "usage:" in capsys.readouterr().out


def test_set_errors_name_the_setting(capsys):
    # a value that is not JSON is refused for a number setting (no longer taken as the string 'garbage')
    with pytest.raises(ValueError, match=r"^model\.gamma \(--gamma\): expected a number.*'garbage'"):
        _cfg("--preset", "tiny", "--set", "model.gamma=garbage")
    with pytest.raises(ValueError, match=r"^task\.overrides.*wrong type or shape.*\[\[3,4,-6\]\]"):
        _cfg("--preset", "tiny", "--set", 'task.overrides="x"')
    # settings that are only valid together still are (held-out (3,4) once no override uses it)
    assert _cfg("--preset", "tiny", "--held-out", "3,4", "--set", "task.overrides=[]").task.held_out == ((3, 4),)


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "x.txt").write_text("keep me")
    afile = tmp_path / "afile"
    afile.write_text("keep me too")
    for out, words in ((notes, "not a run folder"), (afile, "is a file")):
        rc = main(["train", "--preset", "tiny", "--epochs", "1", "--out", str(out), "--overwrite", "--quiet",
                   "--threads", "1"])
        lines = _err_lines(capsys.readouterr().err)
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert (notes / "x.txt").read_text() == "keep me" and afile.read_text() == "keep me too"


def test_bad_input_in_a_real_process(tmp_path):
    p = cli("train", "--preset", "tiny", "--gamma", "5", "--out", str(tmp_path / "r"))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert len(_err_lines(p.stderr)) == 1 and p.stderr.startswith("error: ")


def test_eval_of_corrupt_run_exits_2(trained, tmp_path, capsys):
    out, _ = trained
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in out.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "weights.safetensors").write_bytes(b"garbage")
    assert main(["eval", str(bad)]) == 2
    lines = _err_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "weights" in lines[0]


@pytest.mark.parametrize("setting", ["task.item_min=abc", "model.gamma=null", "task.held_out=5"])
def test_wrong_type_set_value_exits_2(tmp_path, capsys, setting):
    try:
        rc = main(["train", "--preset", "tiny", "--set", setting, "--out", str(tmp_path / "r"), "--quiet"])
    except Exception as e:
        pytest.fail(f"uncaught {type(e).__name__}: {e}")
    assert rc == 2 and capsys.readouterr().err.startswith("error: ")


# -- argument handling ---------------------------------------------------------------------------

def _cfg(*argv):
    return config_from_args(build_parser().parse_args(["train", *argv]))


def test_flags_and_set_build_the_config():
    cfg = _cfg("--preset", "tiny", "--gamma", "0.8", "--layers", "3", "--seed", "4", "--lr", "2e-3",
               "--set", "task.split_noise=true", "--set", "model.embed_fan_in=vocab",
               "--held-out", "3,4", "--held-out", "(4, 3)", "--set", "task.overrides=[]")
    assert cfg.model.gamma == 0.8 and cfg.model.n_layers == 3 and cfg.train.seed == 4
    assert cfg.train.lr_peak == 2e-3 and cfg.task.split_noise is True and cfg.model.embed_fan_in == "vocab"
    assert cfg.task.held_out == ((3, 4), (4, 3)) and cfg.task.overrides == ()
    assert cfg.model.d_model == get_preset("tiny").model.d_model  # untouched fields keep the preset


def test_epochs_flag_keeps_the_schedule_shape():
    base = get_preset("cpu-demo").train
    cfg = _cfg("--preset", "cpu-demo", "--epochs", "60")
    assert cfg.train.epochs == 60
    assert cfg.train.warmup_epochs == pytest.approx(base.warmup_epochs * 2)
    assert cfg.train.decay_epochs == pytest.approx(base.decay_epochs * 2)
    cfg = _cfg("--preset", "cpu-demo", "--epochs", "60", "--set", "train.decay_epochs=40")
    assert cfg.train.decay_epochs == 40 and cfg.train.warmup_epochs == base.warmup_epochs

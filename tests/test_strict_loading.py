"""Hosted-demo hardening (issue 11): the strict run-folder loader, strict configs and strict ``--set``.

One test (or parametrized case) per finding, each reproduced from a copy of a committed run as
the issue did (``cp -r pretrained/cpu-demo_L2_g1.0_s0 ...``): 1 config.json that is a folder,
2 metrics.json that is not UTF-8, 3 a config claiming a huge model, 4 missing / unknown /
mis-versioned config keys, 5 weights of the wrong dtype, 7 ``--set`` values that are not JSON
or do not fit, 18 the fuzzers' named examples. CLI checks go through ``core.cli.main`` (status
2, one ``error:`` line, no traceback); app checks through Streamlit's AppTest.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from core import runs
from core.cli import build_parser, config_from_args, main
from core.config import BOUNDS, ModelConfig, RunConfig, TaskConfig, TrainConfig
from core.runs import RunError, check_run, list_runs, load_config, load_run

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "pretrained" / "cpu-demo_L2_g1.0_s0"  # γ 1.0, fp32 weights
GRID_RUN = ROOT / "pretrained" / "phase_cpu-demo" / "L2_g0.5_s0"  # fp16 weights (--half)
torch.set_num_threads(1)


@pytest.fixture
def run_copy(tmp_path):
    """A copy of a committed run (the issue's reproduction), plus a second, untouched one."""
    good = tmp_path / "runs" / "good"
    bad = tmp_path / "runs" / "bad"
    shutil.copytree(COMMITTED, good)
    shutil.copytree(COMMITTED, bad)
    return bad


def _edit_config(run: Path, edit) -> None:
    meta = json.loads((run / "config.json").read_text())
    edit(meta)
    (run / "config.json").write_text(json.dumps(meta, indent=2))


def _cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one ``error:`` line and no traceback."""
    try:
        rc = main(argv)
    except BaseException as e:  # noqa: BLE001 - any escape is the bug under test
        pytest.fail(f"uncaught {type(e).__name__}: {e}")
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# -- the committed runs still load -------------------------------------------------------------

def test_every_committed_run_passes_the_strict_loader():
    folders = sorted(p.parent for p in (ROOT / "pretrained").rglob("config.json"))
    assert len(folders) >= 5
    for folder in folders:
        cfg, _ = check_run(folder)
        # precision written out in the file, nothing defaulted (fp32 for the migrated runs; the
        # faithful-width replication states its bf16)
        written = json.loads((folder / "config.json").read_text())["train"]["precision"]
        assert written == cfg.train.precision and written in ("fp32", "bf16")
    assert load_run(COMMITTED).config.model.gamma == 1.0


# -- finding 1: config.json that is a folder ---------------------------------------------------

def test_config_json_that_is_a_folder(run_copy, capsys):
    (run_copy / "config.json").unlink()
    (run_copy / "config.json").mkdir()
    with pytest.raises(RunError, match="config.json is not a regular file"):
        load_run(run_copy)
    line = _cli_error(capsys, ["eval", str(run_copy)])
    assert "config.json" in line and "not a regular file" in line
    assert list_runs(run_copy.parent) == [run_copy.parent / "good"]  # not listed
    assert list_runs(run_copy.parent, include_bad=True) == [run_copy, run_copy.parent / "good"]


# -- finding 2: metrics.json with bytes that are not UTF-8 --------------------------------------

def test_metrics_json_that_is_not_utf8(run_copy, capsys):
    data = (run_copy / "metrics.json").read_bytes()
    (run_copy / "metrics.json").write_bytes(data[:100] + b"\xff\xfe" + data[100:])
    with pytest.raises(RunError, match=r"metrics.json is not UTF-8 text \(byte 0xff at offset 100\)"):
        load_run(run_copy)
    assert "metrics.json is not UTF-8" in _cli_error(capsys, ["eval", str(run_copy)])
    assert "metrics.json is not UTF-8" in _cli_error(capsys, ["probe", str(run_copy)])


# -- finding 3: a config claiming a huge model is refused before anything is allocated ----------

def _no_build(*args, **kwargs):
    raise AssertionError("a model was built before the config and the weights header were checked")


@pytest.mark.parametrize("model", [
    {"d_model": 10_000_000, "d_ff": 1_000_000_000, "n_heads": 1_000_000},  # the example
    {"d_model": 4096, "d_ff": 16384, "n_layers": 24},  # within each bound, over ANCHOR_MAX_PARAMS
])
def test_huge_model_config_is_refused_before_building(run_copy, monkeypatch, capsys, model):
    _edit_config(run_copy, lambda m: m["model"].update(model))
    monkeypatch.setattr(runs, "build_model", _no_build)
    with pytest.raises(RunError, match="config.json is corrupt or invalid: .*(between|ANCHOR_MAX_PARAMS)"):
        load_run(run_copy)
    assert "config.json" in _cli_error(capsys, ["eval", str(run_copy)])


def test_max_params_comes_from_the_environment(run_copy, monkeypatch):
    monkeypatch.setattr(runs, "build_model", _no_build)
    monkeypatch.setenv("ANCHOR_MAX_PARAMS", "1000")  # the committed run has 80,814
    with pytest.raises(RunError, match=r"80,814 parameters, more than the 1,000 allowed .*ANCHOR_MAX_PARAMS"):
        load_run(run_copy)
    monkeypatch.setenv("ANCHOR_MAX_PARAMS", "lots")
    with pytest.raises(ValueError, match="ANCHOR_MAX_PARAMS must be a positive whole number"):
        RunConfig()


def test_weights_header_bigger_than_the_config_is_refused_unread(run_copy, monkeypatch):
    state = load_file(str(run_copy / "weights.safetensors"))
    state["W_E"] = torch.zeros(4000, 64, dtype=torch.float16)  # the header claims a bigger embedding
    save_file(state, str(run_copy / "weights.safetensors"))
    monkeypatch.setattr(runs, "build_model", _no_build)
    monkeypatch.setattr(runs, "load_file", _no_build)
    with pytest.raises(RunError, match=r"weight W_E has shape \(4000, 64\), the config needs \(110, 64\)"):
        load_run(run_copy)


def test_a_tensor_over_the_tensor_limit_is_refused_from_the_header(run_copy, monkeypatch):
    monkeypatch.setattr(runs, "load_file", _no_build)
    monkeypatch.setattr(runs, "max_tensor", lambda: 1000)  # the header check, not the config check
    with pytest.raises(RunError, match="more than the 1,000 allowed"):
        runs.check_weights(run_copy / "weights.safetensors", load_config(run_copy))


# -- finding 4: nothing is filled with defaults; unknown keys and other formats are refused -----

@pytest.mark.parametrize("edit, words", [
    (lambda m: m["model"].pop("gamma"), r"ModelConfig lacks the field\(s\) \['gamma'\]"),
    (lambda m: m["task"].pop("overrides"), r"TaskConfig lacks the field\(s\) \['overrides'\]"),
    (lambda m: m.pop("task"), r"missing key\(s\) \['task'\]"),
    (lambda m: m.update(extra=1), r"unknown key\(s\) \['extra'\]"),
    (lambda m: m["train"].update(momentum=0.9), "unknown TrainConfig fields"),
    (lambda m: m.update(format=99), "format 99 is not a format this version reads"),
    (lambda m: m.pop("format"), r"missing key\(s\) \['format'\]"),
    (lambda m: m.update(seed=7), "differs from train.seed"),
])
def test_config_json_is_strict(run_copy, capsys, edit, words):
    _edit_config(run_copy, edit)
    with pytest.raises(RunError, match=words):
        load_run(run_copy)
    line = _cli_error(capsys, ["eval", str(run_copy)])
    assert "config.json" in line and "γ 0.5" not in line


def test_missing_gamma_is_not_shown_as_the_default(run_copy, capsys):
    _edit_config(run_copy, lambda m: m["model"].pop("gamma"))
    assert main(["eval", str(run_copy)]) == 2
    out = capsys.readouterr()
    assert "γ=0.5" not in out.out and "gamma" in out.err


def test_strict_from_dict_and_the_lenient_one_for_presets():
    full = RunConfig().to_dict()
    assert RunConfig.from_dict(full, strict=True) == RunConfig()
    assert RunConfig.from_dict({"model": {"gamma": 0.8}}).model.gamma == 0.8  # presets and sweeps
    with pytest.raises(ValueError, match="lacks"):
        RunConfig.from_dict({**full, "model": {"gamma": 0.8}}, strict=True)


# -- finding 5: weight dtypes come from the header -----------------------------------------------

@pytest.mark.parametrize("dtype, name", [(torch.int32, "I32"), (torch.float64, "F64"), (torch.bool, "BOOL")])
def test_weights_of_the_wrong_dtype_are_refused(run_copy, capsys, dtype, name):
    state = load_file(str(run_copy / "weights.safetensors"))
    save_file({k: (v * 1000).to(dtype) for k, v in state.items()}, str(run_copy / "weights.safetensors"))
    with pytest.raises(RunError, match=f"is stored as {name}; run weights are F32 or F16"):
        load_run(run_copy)
    assert f"stored as {name}" in _cli_error(capsys, ["eval", str(run_copy)])


def test_fp32_and_fp16_weights_both_load():
    assert load_file(str(COMMITTED / "weights.safetensors"))["W_E"].dtype == torch.float32
    assert load_file(str(GRID_RUN / "weights.safetensors"))["W_E"].dtype == torch.float16
    assert load_run(COMMITTED).model.W_E.dtype == torch.float32
    assert load_run(GRID_RUN).model.W_E.dtype == torch.float32


# -- finding 7 and the named examples of finding 18: --set is strict JSON, errors name the setting

def _cfg(*argv):
    return config_from_args(build_parser().parse_args(["train", "--preset", "tiny", *argv]))


@pytest.mark.parametrize("setting, words", [
    ("task.operations={bad", r'^task\.operations: expected a JSON object like \{"1": 5, .*got \'\{bad\''),
    ("task.overrides=[1,2]", r"^task\.overrides: .*\[anchor1, anchor2, shift\] triples.*got the entry 1"),
    ("model.n_ctx=4", r"^model\.n_ctx: model\.n_ctx = 4 positions cannot hold sequences of task\.seq_len = 9"),
    ("train.seed=1.5", r"^train\.seed \(--seed\): .*must be an integer, got 1\.5"),
    ("model.n_ctx=-3", r"^model\.n_ctx: model\.n_ctx must be between 1 and 1024, got -3"),
    ('train.device="meta"', r"^train\.device \(--device\): train\.device must be 'auto', 'cpu'"),
    ("train.device=meta", r"^train\.device \(--device\): train\.device must be 'auto', 'cpu'"),
    ("task.item_min=-Infinity", r"^task\.item_min: expected an integer \(as JSON\), got '-Infinity'"),
    ("train.betas=[]", r"^train\.betas: .*a pair of numbers like \[0\.9, 0\.999\], got \[\]"),
    ("train.grad_clip=NaN", r"^train\.grad_clip: expected a number \(as JSON\), got 'NaN'"),
    ("train.grad_clip=-1", r"^train\.grad_clip: train\.grad_clip must be between"),
    ("train.grad_clip=0", r"^train\.grad_clip: train\.grad_clip must be between"),
    ("train.decay_epochs=Infinity", r"^train\.decay_epochs: expected a number \(as JSON\), got 'Infinity'"),
    ("train.decay_epochs=1e309", r"^train\.decay_epochs: .*must be a finite number"),
    ("task.held_out=[[4,3],[4,3]]", r"^task\.held_out \(--held-out\): task\.held_out lists a pair twice"),
    ("task.overrides=[[3,4,-6],[3,4,-5]]", r"^task\.overrides: task\.overrides lists a pair twice"),
    ("model.gamma=true", r"^model\.gamma \(--gamma\): initialization rate γ must be a number in \(0, 3\], got True"),
    ("model.d_model=1e9", r"^model\.d_model \(--d-model\): model\.d_model must be between 1 and 4096"),
    ("train.weight_decay=200", r"^train\.weight_decay \(--weight-decay\): .*between 0 and 100"),
    ("task.split_noise=1", r"^task\.split_noise: .*must be true or false.*task\.split_noise=false"),
    ("model.embed_fan_in=5", r"^model\.embed_fan_in: embed_fan_in must be 'd_model' or 'vocab', got 5"),
    ("train.nope=1", r"unknown setting 'train\.nope'"),
])
def test_set_values_are_strict_and_errors_name_the_setting(setting, words):
    with pytest.raises(ValueError, match=words):
        _cfg("--set", setting)


@pytest.mark.parametrize("argv, words", [
    (["--set", "task.operations={bad"], "task.operations: expected a JSON object"),
    (["--set", "train.seed=1.5"], "train.seed"),
    (["--weight-decay", "1e309"], "train.weight_decay (--weight-decay): train.weight_decay must be a finite number"),
    (["--set", "train.betas=[]"], "train.betas"),
    (["--set", 'train.device="meta"'], "train.device"),
    (["--set", "model.n_ctx=4"], "model.n_ctx"),
])
def test_cli_refuses_before_training(tmp_path, capsys, argv, words):
    line = _cli_error(capsys, ["train", "--preset", "tiny", "--quiet", "--out", str(tmp_path / "r"), *argv])
    assert words in line
    assert not (tmp_path / "r").exists()


def test_bare_words_only_for_string_settings():
    cfg = _cfg("--set", "train.device=cpu", "--set", "train.data=online", "--set", "model.embed_fan_in=vocab",
               "--set", "train.precision=bf16")
    assert (cfg.train.device, cfg.train.data, cfg.model.embed_fan_in, cfg.train.precision) == \
        ("cpu", "online", "vocab", "bf16")
    assert _cfg("--set", 'train.device="cuda:0"').train.device == "cuda:0"
    with pytest.raises(ValueError, match=r"expected a number \(as JSON\), got 'abc'"):
        _cfg("--set", "model.gamma=abc")
    with pytest.raises(ValueError, match=r"expected a string \(as JSON\), got 'two words'"):
        _cfg("--set", "train.device=two words")


@pytest.mark.parametrize("command", [["sweep", "--grid", "model.gamma=0.5,0.8", "--dry-run"],
                                     ["suite", "gpu", "--preset", "tiny"]])
def test_sweep_and_suite_use_the_same_value_rule(tmp_path, capsys, command):
    line = _cli_error(capsys, [*command, "--out", str(tmp_path / "s"), "--set", "task.operations={bad"])
    assert 'task.operations: expected a JSON object like {"1": 5' in line
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("value", [None, [], "x", 3, {"task": None}, {"task": []}, {"model": "x"},
                                   {"train": {"betas": None}}, {"task": {"operations": None}}])
def test_from_dict_on_non_objects_raises_value_error(value):
    with pytest.raises(ValueError):
        RunConfig.from_dict(value)
    with pytest.raises(ValueError):
        RunConfig.from_dict(value, strict=True)


def test_documented_bounds_accept_the_paper_and_refuse_beyond():
    paper = RunConfig(model=ModelConfig(n_layers=6, d_model=400, d_ff=1200, d_head=200))
    assert paper.n_params < 10_000_000
    for key, (lo, hi) in BOUNDS.items():
        section, name = key.split(".")
        if section == "model" and name != "n_ctx":
            with pytest.raises(ValueError):
                ModelConfig(**{name: int(hi) + 1})
        if section == "train" and isinstance(hi, int) and name != "seed":
            with pytest.raises(ValueError):
                TrainConfig(**{name: hi + 1})
    with pytest.raises(ValueError):
        TaskConfig(seq_len=1025)
    with pytest.raises(ValueError):
        TrainConfig(seed=2**63)


# -- the app: one clear line per bad folder, the other runs listed and usable -------------------

def _bad_folders(folder: Path, make_run) -> list[str]:
    """Next to good runs: the findings' bad folders (1: config.json a folder, 2: metrics.json not
    UTF-8, 3: a huge model, 4: gamma missing, 5: int32 weights)."""
    names = ["dir_config", "not_utf8", "huge_model", "no_gamma", "int_weights"]
    for name in names:
        make_run(folder, name)
    (folder / "dir_config" / "config.json").unlink()
    (folder / "dir_config" / "config.json").mkdir()
    (folder / "not_utf8" / "metrics.json").write_bytes(b"\xff" + (folder / "not_utf8" / "metrics.json").read_bytes())
    _edit_config(folder / "huge_model", lambda m: m["model"].update(d_model=10_000_000, d_ff=10**9, n_heads=10**6))
    _edit_config(folder / "no_gamma", lambda m: m["model"].pop("gamma"))
    w = folder / "int_weights" / "weights.safetensors"
    save_file({k: v.to(torch.int32) for k, v in load_file(str(w)).items()}, str(w))
    return names


def _one_warning_each(at, names: list[str], tmp: Path | None = None) -> None:
    """Several bad folders: one warning, and an expander listing each folder once by its name
    relative to runs/ or pretrained/, never the server's absolute path (the newcomer saw one
    warning per folder above the picker, each with /home/... in it)."""
    warnings = [w.value for w in at.warning]
    (warning,) = [w for w in warnings if w.startswith("Skipped")]
    assert warning.startswith(f"Skipped {len(names)} run folders") and "\n" not in warning
    (listing,) = [e for e in at.expander if e.label.startswith(f"The {len(names)} skipped run folders")]
    text = "\n".join(m.value for m in listing.markdown)
    for name in names:
        assert len([line for line in text.splitlines() if f"/{name}`:" in line]) == 1, text
    if tmp is not None:
        assert str(tmp) not in text and str(tmp) not in warning, text
        assert str(tmp.resolve()) not in text


def test_train_page_skips_bad_folders_with_one_line_each(app_env, make_run):
    from streamlit.testing.v1 import AppTest

    make_run(app_env.pretrained, "good_g0.8", inferential=0.97, symmetric=0.01)
    names = _bad_folders(app_env.runs, make_run)
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/2_Train.py").run()
    assert not at.exception and not at.error
    _one_warning_each(at, names, app_env.runs.parent)
    labels = at.selectbox(key="train_run").options
    assert len(labels) == 1 and labels[0].endswith("good_g0.8")
    assert any("inferential" in h.proto.body for h in at.get("html"))  # the good run still opens
    assert (app_env.runs / "dir_config" / "config.json").is_dir()  # nothing repaired or deleted


def test_inside_page_skips_bad_folders_with_one_line_each(app_env, make_run):
    from streamlit.testing.v1 import AppTest

    make_run(app_env.pretrained, "tiny_g0.3", **{"model.gamma": 0.3})
    make_run(app_env.pretrained, "tiny_g0.9", **{"model.gamma": 0.9})
    names = _bad_folders(app_env.pretrained, make_run)
    at = AppTest.from_file(str(app_env.root / "pages" / "3_Inside_the_model.py"), default_timeout=180)
    at.run()
    assert not at.exception and not at.error
    _one_warning_each(at, names, app_env.runs.parent)
    assert [o for o in at.selectbox(key="inside_run_a").options if "tiny_g" not in o] == []


def test_symlinks_in_a_run_folder_are_refused_unread(tmp_path, make_run):
    """Newcomer: a config.json that is a link to another file was read. Any link inside a run
    folder, and a run folder that is itself a link, is refused (lstat, never followed)."""
    good = make_run(tmp_path / "a", "good")
    linked = make_run(tmp_path / "a", "linked_config")
    (linked / "config.json").unlink()
    (linked / "config.json").symlink_to(good / "config.json")
    with pytest.raises(runs.RunError, match="symbolic link"):
        runs.check_run(linked)
    with pytest.raises(runs.RunError, match="symbolic link"):
        runs.load_config(linked)
    extra = make_run(tmp_path / "a", "linked_extra")
    (extra / "notes.txt").symlink_to("/etc/hostname")
    with pytest.raises(runs.RunError, match="symbolic link"):
        runs.check_run(extra)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "folder_link").symlink_to(good, target_is_directory=True)
    with pytest.raises(runs.RunError, match="symbolic link"):
        runs.check_run(tmp_path / "b" / "folder_link")
    assert runs.list_runs(tmp_path / "b") == []
    assert runs.list_runs(tmp_path / "b", include_bad=True) == [tmp_path / "b" / "folder_link"]
    runs.check_run(good)


def test_a_linked_run_folder_in_runs_is_not_listed_as_committed(app_env, make_run):
    """A link in runs/ to a committed run was labelled "committed"; it is refused with a warning
    that names it relative to runs/."""
    from streamlit.testing.v1 import AppTest
    from ui import loaders

    good = make_run(app_env.pretrained, "tiny_g0.3", **{"model.gamma": 0.3})
    make_run(app_env.pretrained, "tiny_g0.9", **{"model.gamma": 0.9})
    (app_env.runs / "sneaky").symlink_to(good, target_is_directory=True)
    assert loaders.run_source(str(app_env.runs / "sneaky")) == "saved"
    assert str(app_env.runs / "sneaky") not in [p for _, p in loaders.saved_runs()]
    at = AppTest.from_file(str(app_env.root / "pages" / "3_Inside_the_model.py"), default_timeout=180)
    at.run()
    assert not at.exception
    (warning,) = [w.value for w in at.warning if w.value.startswith("Skipped")]
    assert warning.startswith("Skipped run folder runs/sneaky:") and "symbolic link" in warning
    assert str(app_env.runs) not in warning
    assert all("sneaky" not in o for o in at.selectbox(key="inside_run_a").options)


# -- train --resume: a checkpoint's config is read strictly and bounded before anything is built --

def _checkpoint(path: Path, config: dict, tensors: dict | None = None) -> Path:
    meta = {"format": str(runs.FORMAT_VERSION), "config": json.dumps(config), "position": json.dumps({"epoch": 0, "batch": 0, "step": 0,
                                                                                "seconds": 0.0}),
            "param_groups": "[]", "history": "[]"}
    save_file(tensors or {"model.W_E": torch.zeros(2, 2)}, str(path), metadata=meta)
    return path


@pytest.mark.parametrize("edit, words", [
    (lambda c: c["model"].update(d_model=10_000_000, d_ff=10**9, n_heads=10**6), "between"),
    (lambda c: c["model"].pop("gamma"), "lacks"),
    (lambda c: c["train"].update(grad_clip=-1), "grad_clip"),
])
def test_resume_refuses_a_crafted_checkpoint_before_building(tmp_path, monkeypatch, capsys, edit, words):
    cfg = RunConfig().to_dict()
    edit(cfg)
    _checkpoint(tmp_path / "r.checkpoint.safetensors", cfg)
    monkeypatch.setattr(runs, "build_model", _no_build)
    monkeypatch.setattr(runs, "load_file", _no_build)
    with pytest.raises(RunError, match=words):
        runs.load_checkpoint(tmp_path / "r.checkpoint.safetensors")
    assert words in _cli_error(capsys, ["train", "--resume", str(tmp_path / "r")])


def test_resume_refuses_checkpoint_weights_that_do_not_fit_unread(tmp_path, monkeypatch):
    cfg = RunConfig.from_dict({"model": {"n_layers": 1, "d_model": 16, "d_ff": 32, "d_head": 8}})
    _checkpoint(tmp_path / "r.checkpoint.safetensors", cfg.to_dict(),
                {"model.W_E": torch.zeros(5000, 16, dtype=torch.int32)})
    monkeypatch.setattr(runs, "load_file", _no_build)  # refused from the header alone
    with pytest.raises(RunError, match=r"tensor model.W_E \(I32, shape \[5000, 16\]\) does not match"):
        runs.load_checkpoint(tmp_path / "r.checkpoint.safetensors")


def test_format_1_is_read_with_the_tasks_vocabulary_and_d_vocab_sizes_the_model(run_copy):
    """Format 2 added model.d_vocab; a format-1 config.json (every committed run before 2026-12-04)
    is read with d_vocab null, its only meaning there, and one that already holds d_vocab is refused.
    A run saved with d_vocab 201 builds W_E and W_U with 201 tokens and loads back."""
    meta = json.loads((run_copy / "config.json").read_text())
    meta["format"] = 1
    meta["model"].pop("d_vocab", None)
    (run_copy / "config.json").write_text(json.dumps(meta))
    cfg = load_config(run_copy)
    assert cfg.model.d_vocab is None and cfg.d_vocab == cfg.task.vocab_size
    meta["model"]["d_vocab"] = 201
    (run_copy / "config.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="format 1 has no model.d_vocab"):
        load_config(run_copy)
    meta["format"] = 2
    meta["model"].pop("d_vocab")
    (run_copy / "config.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match=r"lacks the field\(s\) \['d_vocab'\]"):
        load_config(run_copy)  # format 2 fills nothing in
    from core.fit import train_run
    from core.presets import get_preset
    big = get_preset("tiny").replace(**{"model.d_vocab": 201, "train.epochs": 1})
    out = train_run(big, run_copy.parent / "big")
    back = load_run(out)
    assert back.config.d_vocab == 201 and back.model.W_E.shape[0] == 201
    assert back.model.W_U.shape == (big.model.d_model, 201)
    assert json.loads((out / "config.json").read_text())["format"] == 2
    with pytest.raises(ValueError, match="cannot hold the task's tokens"):
        cfg.replace(**{"model.d_vocab": 100})

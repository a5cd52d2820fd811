"""Run folders: save/load round trip, refusal to overwrite, rejection of corrupt folders."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from core.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from core.runs import RunError, atomic_dir, list_runs, load_config, load_metrics, load_run, save_run
from core.task import generate
from core.model import build_model

torch.set_num_threads(1)

CFG = RunConfig(TaskConfig(), ModelConfig(n_layers=2, d_model=8, d_ff=12, d_head=3, n_heads=2, gamma=0.7),
                TrainConfig(n_train=64, epochs=1, batch_size=32, warmup_epochs=0, decay_epochs=1, seed=5))
# a record covers every pair of the task, as core.train.evaluate writes it (the loader checks that)
METRICS = {"history": [{"epoch": 0, "seen_test_accuracy": 0.25, "per_pair": {f"{a},{b}": 0.25 for a in range(1, 5)
                                                                           for b in range(1, 5)},
                         "held_out": {"4,3": {"inferential": 0.1, "symmetric": 0.2, "other": 0.7}}}], "seconds": 1.5}
TOKENS = generate(CFG.task, 32, "any", torch.Generator().manual_seed(0)).tokens


def model():
    return build_model(CFG, torch.Generator().manual_seed(5))


@pytest.fixture
def saved(tmp_path):
    m = model()
    path = save_run(tmp_path / "runA", CFG, m, METRICS)
    return path, m


def test_round_trip(saved):
    path, m = saved
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "metrics.json", "weights.safetensors"]
    run = load_run(path)
    assert run.config == CFG and run.name == "runA" and run.path == path
    # save_run adds the thread count the run was trained with (core.runs.save_run)
    assert run.metrics == {**METRICS, "threads": torch.get_num_threads()} and run.final == METRICS["history"][-1]
    assert not run.model.training
    sd = run.model.state_dict()
    for k, v in m.state_dict().items():
        assert sd[k].dtype == torch.float32 and torch.equal(sd[k], v), k
    m.eval()
    assert torch.equal(run.model(TOKENS), m(TOKENS))
    meta = json.loads((path / "config.json").read_text())
    assert meta["seed"] == 5 and "torch" in meta["versions"] and meta["device"] == "cpu"
    assert load_config(path) == CFG and load_metrics(path) == {**METRICS, "threads": torch.get_num_threads()}


def test_half_restores_fp32_with_small_error(tmp_path):
    m = model()
    path = save_run(tmp_path / "half", CFG, m, METRICS, half=True)
    raw = load_file(str(path / "weights.safetensors"))
    assert all(v.dtype == torch.float16 for v in raw.values())
    full = save_run(tmp_path / "full", CFG, m, METRICS)
    assert (path / "weights.safetensors").stat().st_size < 0.6 * (full / "weights.safetensors").stat().st_size
    run = load_run(path)
    for k, v in m.state_dict().items():
        w = run.model.state_dict()[k]
        assert w.dtype == torch.float32
        assert torch.allclose(w, v, rtol=1e-3, atol=1e-4), k
    m.eval()
    assert torch.allclose(run.model(TOKENS), m(TOKENS), atol=1e-2)
    assert not torch.equal(run.model.W_E, m.W_E)  # fp16 really rounded something


def test_save_refuses_to_overwrite(saved):
    path, _ = saved
    other = model()
    with torch.no_grad():
        other.W_E.add_(1.0)
    with pytest.raises(RunError, match="already exists"):
        save_run(path, CFG, other, METRICS)
    assert torch.equal(load_run(path).model.W_E, model().W_E)  # untouched
    save_run(path, CFG, other, {"history": [{**METRICS["history"][0], "epoch": 3}]}, overwrite=True)
    run = load_run(path)
    assert torch.equal(run.model.W_E, other.W_E) and run.final["epoch"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["runA"]  # no temporary leftovers


def test_overwrite_replaces_only_a_run_folder(saved, tmp_path):
    path, m = saved
    other = tmp_path / "notes"
    other.mkdir()
    (other / "x.txt").write_text("keep me")
    with pytest.raises(RunError, match="not a run folder"):
        save_run(other, CFG, m, METRICS, overwrite=True)
    assert (other / "x.txt").read_text() == "keep me"  # a folder that is not a run is never deleted
    afile = tmp_path / "afile"
    afile.write_text("keep me too")
    with pytest.raises(RunError, match="is a file"):
        save_run(afile, CFG, m, METRICS, overwrite=True)
    assert afile.read_text() == "keep me too"
    with pytest.raises(RunError, match="is a file"):
        with atomic_dir(afile):
            pass
    assert afile.read_text() == "keep me too"
    save_run(path, CFG, m, METRICS, overwrite=True)  # a run folder is still replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "notes", "runA"]


def test_saved_files_are_readable_by_everyone(saved):
    path, _ = saved
    for f in path.iterdir():
        assert f.stat().st_mode & 0o044 == 0o044, f.name  # safetensors' save_file writes 0600


def test_load_run_of_a_file_says_it_is_not_a_folder(tmp_path):
    f = tmp_path / "some.json"
    f.write_text("{}")
    with pytest.raises(RunError, match="not a folder") as e:
        load_run(f)
    assert "does not exist" not in str(e.value)
    with pytest.raises(RunError, match="does not exist"):
        load_run(tmp_path / "missing")


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    dest = tmp_path / "grids" / "g"
    with atomic_dir(dest) as tmp:
        (tmp / "a.txt").write_text("1")
        assert not dest.exists()  # nothing visible while it is being written
    assert [p.name for p in dest.iterdir()] == ["a.txt"] and dest.stat().st_mode & 0o055 == 0o055
    with pytest.raises(OSError):
        with atomic_dir(dest) as tmp:
            (tmp / "b.txt").write_text("2")
            raise OSError("disk full")
    assert [p.name for p in dest.iterdir()] == ["a.txt"]  # a failed write leaves the old folder
    with atomic_dir(dest) as tmp:
        (tmp / "b.txt").write_text("2")
    assert [p.name for p in dest.iterdir()] == ["b.txt"]  # replaced as a whole, not merged
    assert [p.name for p in dest.parent.iterdir()] == ["g"]  # no temporary leftovers


# -- corrupt folders ------------------------------------------------------------------------------

def _truncate(path):
    w = path / "weights.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])


def _garbage(path):
    (path / "weights.safetensors").write_bytes(b"\x00\x01 this is not safetensors" * 10)


def _tiny_garbage(path):
    (path / "weights.safetensors").write_bytes(b"abc")


def _rm_weights(path):
    (path / "weights.safetensors").unlink()


def _rm_config(path):
    (path / "config.json").unlink()


def _rm_metrics(path):
    (path / "metrics.json").unlink()


def _config_garbage(path):
    (path / "config.json").write_text("{not json")


def _config_list(path):
    (path / "config.json").write_text("[1, 2, 3]")


def _config_invalid_value(path):
    meta = json.loads((path / "config.json").read_text())
    meta["model"]["gamma"] = 5.0
    (path / "config.json").write_text(json.dumps(meta))


def _config_other_width(path):
    meta = json.loads((path / "config.json").read_text())
    meta["model"]["d_model"] = 16
    (path / "config.json").write_text(json.dumps(meta))


def _config_other_depth(path):
    meta = json.loads((path / "config.json").read_text())
    meta["model"]["n_layers"] = 3
    (path / "config.json").write_text(json.dumps(meta))


def _metrics_garbage(path):
    (path / "metrics.json").write_text("nope")


def _metrics_no_history(path):
    (path / "metrics.json").write_text(json.dumps({"history": []}))


def _edit_weights(fn):
    def edit(path):
        state = load_file(str(path / "weights.safetensors"))
        fn(state)
        save_file(state, str(path / "weights.safetensors"))
    return edit


def _nan(state):
    state["blocks.1.mlp.W_out"][0, 0] = float("nan")


def _inf(state):
    state["W_E"][3, 1] = float("inf")


def _drop(state):
    del state["W_pos"]


def _extra(state):
    state["W_extra"] = torch.zeros(2)


def _reshape(state):
    state["W_U"] = state["W_U"].T.contiguous()


@pytest.mark.parametrize("corrupt, words", [
    (_truncate, "corrupt"), (_garbage, "corrupt"), (_tiny_garbage, "corrupt"), (_rm_weights, "weights.safetensors"),
    (_rm_config, "config.json"), (_rm_metrics, "metrics.json"), (_config_garbage, "config.json"),
    (_config_list, "config.json"), (_config_invalid_value, "γ"), (_config_other_width, "shape"),
    (_config_other_depth, "missing"), (_metrics_garbage, "metrics.json"), (_metrics_no_history, "history"),
    (_edit_weights(_nan), "NaN"), (_edit_weights(_inf), "infinite"), (_edit_weights(_drop), "W_pos"),
    (_edit_weights(_extra), "W_extra"), (_edit_weights(_reshape), "shape"),
], ids=lambda v: getattr(v, "__name__", v) if callable(v) else "")
def test_corrupt_folders_raise_run_error(saved, corrupt, words):
    path, _ = saved
    corrupt(path)
    with pytest.raises(RunError) as e:
        load_run(path)
    assert words in str(e.value)
    assert isinstance(e.value, ValueError)  # callers that catch ValueError also catch it


def test_missing_folder(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError):
        load_run(tmp_path / "file")


def test_list_runs(tmp_path):
    assert list_runs(tmp_path / "absent") == []
    m = model()
    for name in ("zeta", "alpha", "mid"):
        save_run(tmp_path / name, CFG, m, METRICS)
    (tmp_path / "not_a_run").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "config.json").write_text("{}")
    (tmp_path / "loose.json").write_text("{}")
    assert [p.name for p in list_runs(tmp_path)] == ["alpha", "mid", "zeta"]


def test_committed_pretrained_runs_are_the_documented_ones_and_reevaluate_to_their_metrics():
    """The runs at the top of pretrained/ are exactly those docs/pretrained.py says how to make;
    each loads, and evaluating its weights again gives its stored final metrics up to the
    evaluation sample (stored with the per-list-order sampling of before 2026-12-02; now each
    pair's sample is seeded by the pair, so agreement is within sampling noise of 256 per pair)."""
    import importlib.util
    from pathlib import Path

    from core.train import evaluate, make_eval_set
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("pretrained_doc", root / "docs" / "pretrained.py")
    doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc)
    runs = list_runs(root / "pretrained")
    assert sorted(p.name for p in runs) == sorted(doc.RUNS)
    for p in runs:
        run = load_run(p)
        assert run.model.d_vocab == (run.config.model.d_vocab or run.config.task.vocab_size)  # 201: the authors'
        cfg, final = run.config, run.metrics["history"][-1]
        rec = evaluate(run.model, cfg.task, make_eval_set(cfg.task, cfg.train.n_eval_per_pair, cfg.train.seed))
        assert abs(rec["seen_test_accuracy"] - final["seen_test_accuracy"]) < 0.03, p.name
        for mapping in ("inferential", "symmetric"):
            assert abs(rec["held_out"]["4,3"][mapping] - final["held_out"]["4,3"][mapping]) < 0.1, (p.name, mapping)
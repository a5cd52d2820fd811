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
    for timing in ("seconds", "wall_seconds", "cpu_seconds"):  # times: allowed to differ
        metrics.pop(timing, None)
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


# -- #13 saves that lose nothing --------------------------------------------------------------------

KILLER = r'''
import os, shutil, signal, sys, tempfile
from pathlib import Path
import torch
import core.runs as runs
from core.presets import get_preset
from core.model import build_model

path, k, mode, metrics_json = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
steps, names = [0], []

def hook(name, real):
    def wrapped(*args, **kwargs):
        if steps[0] == k:
            if mode == "during" and name == "rmtree" and Path(args[0]).is_dir():
                first = sorted(Path(args[0]).iterdir())[0]
                first.unlink() if first.is_file() else shutil.rmtree(first)  # half deleted
            os.kill(os.getpid(), signal.SIGKILL)
        steps[0] += 1
        names.append(name)
        return real(*args, **kwargs)
    return wrapped

for mod, name in ((os, "replace"), (os, "rename"), (os, "chmod"), (os, "unlink"), (shutil, "rmtree"),
                  (tempfile, "mkdtemp")):
    setattr(mod, name, hook(name, getattr(mod, name)))
runs.save_file = hook("save_file", runs.save_file)
Path.write_text = hook("write_text", Path.write_text)
Path.unlink = hook("unlink", Path.unlink)
cfg = get_preset("tiny")
import json
runs.save_run(path, cfg, build_model(cfg, torch.Generator().manual_seed(1)), json.loads(metrics_json),
              overwrite=True)
print(" ".join(names))
'''


def _metrics(tag: str) -> dict:
    from core.presets import get_preset
    from core.model import build_model
    from core.train import evaluate, make_eval_set

    cfg = get_preset("tiny")
    rec = evaluate(build_model(cfg, torch.Generator().manual_seed(0)), cfg.task, make_eval_set(cfg.task, 2, 0))
    return {"history": [{"epoch": 0, "step": 0, "sequences": 0, "lr": 0.0, "train_loss": None, "seconds": 0.0,
                         **rec}], "seconds": 0.0, "tag": tag}


def _kill_save(tmp_path: Path, run: Path, k: int, mode: str):
    import subprocess
    import sys

    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    return subprocess.run([sys.executable, str(script), str(run), str(k), mode, json.dumps(_metrics("new"))],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def _age_leftovers(root: Path) -> None:
    """Make the killed writer's leftovers older than the staleness delay (its pid is dead)."""
    import os

    from core.runs import STALE_SECONDS

    for e in root.iterdir():
        if e.name.startswith("."):
            t = e.lstat().st_mtime - STALE_SECONDS - 1
            os.utime(e, (t, t), follow_symlinks=False)


def test_overwrite_killed_at_every_step_keeps_the_old_or_the_new_run(tmp_path):
    from core.presets import get_preset
    from core.runs import list_runs, load_run, save_run
    from core.model import build_model

    cfg = get_preset("tiny")
    root = tmp_path / "runs"
    run = root / "r"
    probe = tmp_path / "probe" / "r"
    save_run(probe, cfg, build_model(cfg, torch.Generator().manual_seed(0)), _metrics("old"))
    p = _kill_save(tmp_path, probe, -1, "before")  # an overwrite not killed: lists its steps
    assert p.returncode == 0, p.stderr
    steps = p.stdout.split()
    # the temporary, weights, config, metrics, the two renames, the old run's removal
    assert {"mkdtemp", "save_file", "write_text", "rmtree"} <= set(steps) and steps.count("replace") >= 2
    cases = [(k, "before") for k in range(len(steps))] + [(k, "during") for k, s in enumerate(steps) if s == "rmtree"]
    seen = set()
    for k, mode in cases:
        if root.exists():
            import shutil
            shutil.rmtree(root)
        save_run(run, cfg, build_model(cfg, torch.Generator().manual_seed(0)), _metrics("old"))
        p = _kill_save(tmp_path, run, k, mode)
        assert p.returncode == -9, (k, mode, p.stdout, p.stderr)  # really killed at that step
        _age_leftovers(root)
        assert list_runs(root) == [run], (k, mode, sorted(x.name for x in root.iterdir()))  # the next start
        loaded = load_run(run)  # whole and loadable
        tag = loaded.metrics["tag"]
        assert tag in ("old", "new")
        want = build_model(cfg, torch.Generator().manual_seed(0 if tag == "old" else 1)).state_dict()
        assert all(torch.equal(v, want[n]) for n, v in loaded.model.state_dict().items())
        assert sorted(x.name for x in root.iterdir()) == ["r"], (k, mode)  # no leftovers
        seen.add(tag)
    assert seen == {"old", "new"}


def test_stale_temporaries_go_but_live_ones_stay(tmp_path):
    import os

    from core.runs import ABANDONED_SECONDS, recover_saves

    live = tmp_path / f".r.tmp-{os.getpid()}-abcd"      # this process: saving now
    dead = tmp_path / ".r.tmp-999999999-abcd"            # no such process
    legacy = tmp_path / ".r.k2j4_x9a"                    # an older version's mkdtemp name
    fresh_dead = tmp_path / ".s.tmp-999999999-efgh"      # dead owner but just written: kept a while
    for d in (live, dead, legacy, fresh_dead):
        d.mkdir()
        (d / "weights.safetensors").write_bytes(b"x")
    old = __import__("time").time() - ABANDONED_SECONDS - 1
    for d in (dead, legacy):
        os.utime(d, (old, old))
    recover_saves(tmp_path)
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted([live.name, fresh_dead.name])


def test_train_into_a_name_a_killed_overwrite_left_as_old_is_refused_before_training(tmp_path, capsys, monkeypatch):
    """A run that a killed --overwrite left as .NAME.old is put back before training starts, so
    a plain train into NAME is refused at once instead of after the whole training."""
    import shutil

    import core.cli as cli

    src = Path(__file__).resolve().parents[1] / "pretrained" / "cpu-demo_L2_g0.5_s0"
    shutil.copytree(src, tmp_path / ".run.old")
    monkeypatch.setattr(cli, "fit", lambda *a, **k: pytest.fail("trained before refusing"))
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path / "run"), "--threads", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "run" / "config.json").is_file() and not (tmp_path / ".run.old").exists()

"""The exact last-position path and resumable training (issue 10, items 1 and 2).

``forward_last`` must equal the full forward's last position, logits and gradients; a run
interrupted at any step and resumed from its checkpoint file must give the same history as a
run never interrupted (CPU, one thread).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from core.model import AnchorTransformer
from core.runs import checkpoint_path, list_runs, load_checkpoint, load_run, save_checkpoint
from core.model import build_model
from core.train import train

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("n_heads", [1, 2, 3])
def test_forward_last_equals_full_forward(n_layers, n_heads):
    cfg = ModelConfig(n_layers=n_layers, d_model=24, d_ff=40, d_head=8, n_heads=n_heads, gamma=0.5)
    model = AnchorTransformer(cfg, 110, 9, torch.Generator().manual_seed(n_layers * 10 + n_heads)).double()
    with torch.no_grad():  # LayerNorm weights away from their init, so they are tested too
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn(p.shape, dtype=p.dtype))
    tokens = torch.randint(0, 110, (13, 9))
    full = model(tokens)[:, -1]
    last = model.forward_last(tokens)
    torch.testing.assert_close(last, full, rtol=1e-10, atol=1e-10)
    params = list(model.parameters())
    weights = torch.randn(full.shape, dtype=full.dtype)
    g_full = torch.autograd.grad((full * weights).sum() + full.logsumexp(-1).sum(), params)
    g_last = torch.autograd.grad((last * weights).sum() + last.logsumexp(-1).sum(), params)
    for (name, _), a, b in zip(model.named_parameters(), g_full, g_last):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10, msg=f"gradient of {name}")


def test_forward_last_differs_when_a_weight_differs():
    """The equality above can fail: a model whose last block differs gives other logits."""
    cfg = ModelConfig(n_layers=2, d_model=16, d_ff=24, d_head=8)
    a = AnchorTransformer(cfg, 110, 9, torch.Generator().manual_seed(0))
    b = AnchorTransformer(cfg, 110, 9, torch.Generator().manual_seed(0))
    with torch.no_grad():
        b.blocks[1].attn.W_Q.mul_(1.5)
    tokens = torch.randint(0, 110, (5, 9))
    assert not torch.allclose(a.forward_last(tokens), b.forward_last(tokens))


def tiny_cfg(data: str = "pool") -> RunConfig:
    return RunConfig(TaskConfig(), ModelConfig(n_layers=2, d_model=8, d_ff=16, d_head=4, gamma=0.7),
                     TrainConfig(n_train=300, data=data, epochs=3, batch_size=64, warmup_epochs=1, decay_epochs=3,
                                 n_eval_per_pair=8, device="cpu", seed=5))


class Killed(Exception):
    pass


def checkpoint_until_killed(cfg: RunConfig, ckpt: Path, kill_at: int) -> list[int]:
    """Train a fresh model of ``cfg``, checkpointing into ``ckpt`` at every step, and 'kill' it
    (raise ``Killed``) once a checkpoint at step ≥ ``kill_at`` is written. Returns the steps saved."""
    model = build_model(cfg, torch.Generator().manual_seed(cfg.train.seed))
    calls = []

    def on_checkpoint(state):
        save_checkpoint(ckpt, cfg, model, state)
        calls.append(state.step)
        if state.step >= kill_at:
            raise Killed

    with pytest.raises(Killed):
        train(model, cfg, on_checkpoint=on_checkpoint, checkpoint_every=0)
    return calls


def strip_seconds(history):
    return [{k: v for k, v in rec.items() if k != "seconds"} for rec in history]


@pytest.mark.parametrize("data", ["pool", "online"])
@pytest.mark.parametrize("kill_at", [1, 5, 9, 12])   # mid-epoch, at epoch ends (5, 10 steps per epoch) and late
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, data, kill_at):
    cfg = tiny_cfg(data)
    model = build_model(cfg, torch.Generator().manual_seed(cfg.train.seed))
    reference = train(model, cfg)
    ref_weights = {k: v.clone() for k, v in model.state_dict().items()}

    ckpt = tmp_path / "run.checkpoint.safetensors"
    checkpoint_until_killed(cfg, ckpt, kill_at)
    cfg2, model2, state = load_checkpoint(ckpt)
    assert cfg2 == cfg and state.step == kill_at
    resumed = train(model2, cfg2, resume=state)
    assert strip_seconds(resumed) == strip_seconds(reference)
    for k, v in model2.state_dict().items():
        torch.testing.assert_close(v, ref_weights[k], rtol=0, atol=0)


@pytest.mark.parametrize("kill_at", [3, 7])
def test_a_bf16_run_resumed_on_the_same_machine_equals_uninterrupted(tmp_path, kill_at):
    """bf16 autocast resumes bit for bit on one machine; across machines it does not (another CPU
    runs other bf16 kernels: docs/replication.md, "a bf16 run resumed on another machine")."""
    cfg = tiny_cfg().replace(**{"train.precision": "bf16"})
    model = build_model(cfg, torch.Generator().manual_seed(cfg.train.seed))
    reference = train(model, cfg)
    ckpt = tmp_path / "run.checkpoint.safetensors"
    checkpoint_until_killed(cfg, ckpt, kill_at)
    cfg2, model2, state = load_checkpoint(ckpt)
    assert cfg2 == cfg
    assert strip_seconds(train(model2, cfg2, resume=state)) == strip_seconds(reference)


def test_resume_from_a_wrong_state_is_detected(tmp_path):
    """The comparison above can fail: resuming with the batch position off by one changes the run."""
    cfg = tiny_cfg()
    model = build_model(cfg, torch.Generator().manual_seed(cfg.train.seed))
    reference = train(model, cfg)
    ckpt = tmp_path / "c.safetensors"
    checkpoint_until_killed(cfg, ckpt, 2)
    _, model2, state = load_checkpoint(ckpt)
    state.batch += 1
    assert strip_seconds(train(model2, cfg, resume=state)) != strip_seconds(reference)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    from core.runs import RunError
    bad = tmp_path / "x.checkpoint.safetensors"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(RunError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(RunError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent.safetensors")


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_cli_killed_run_resumes_and_the_app_never_sees_a_half_run(tmp_path):
    """A real process killed mid-run leaves the old state or a checkpoint file next to the folder
    (never a half folder); ``--resume`` finishes the run and removes the checkpoint."""
    out = tmp_path / "r"
    args = ["train", "--preset", "tiny", "--epochs", "40", "--n-train", "2048", "--threads", "1", "--quiet",
            "--out", str(out), "--checkpoint-every", "0"]
    proc = subprocess.Popen([sys.executable, "-m", "core", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    ckpt = checkpoint_path(out)
    for _ in range(600):
        if ckpt.exists() or proc.poll() is not None:
            break
        subprocess.run(["sleep", "0.1"])
    proc.kill()
    proc.wait()
    assert ckpt.exists(), "no checkpoint was written before the kill"
    assert not out.exists() and list_runs(tmp_path) == []
    again = cli(*args)
    assert again.returncode == 2 and "--resume" in again.stderr
    done = cli("train", "--resume", str(out), "--threads", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    assert not ckpt.exists()
    run = load_run(out)
    assert run.final["epoch"] == 40
    assert cli("train", "--resume", str(out)).returncode == 2


def test_bf16_autocast_keeps_fp32_weights_and_stays_close():
    """precision="bf16": matmuls in bf16, weights, logits and loss in fp32; logits near the fp32 ones."""
    cfg = ModelConfig(n_layers=2, d_model=32, d_ff=48, d_head=16, gamma=0.5)
    model = AnchorTransformer(cfg, 110, 9, torch.Generator().manual_seed(0))
    tokens = torch.randint(0, 110, (64, 9))
    ref = model.forward_last(tokens)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model.forward_last(tokens)
    assert low.dtype == torch.float32 and all(p.dtype == torch.float32 for p in model.parameters())
    assert not torch.equal(low, ref)                       # bf16 really ran
    torch.testing.assert_close(low, ref, rtol=0.05, atol=0.05)
    run = tiny_cfg().replace(**{"train.precision": "bf16", "train.epochs": 1})
    history = train(build_model(run, torch.Generator().manual_seed(0)), run)
    assert history[-1]["train_loss"] == history[-1]["train_loss"]  # finite, not NaN


def test_tf32_is_plain_fp32_off_cuda_and_switches_tf32_on_cuda_only():
    """precision="tf32" trains bit-identically to fp32 on a CPU (TF32 is a CUDA tensor-core mode), and
    its context turns ``allow_tf32`` on for CUDA and restores it afterwards."""
    from core.train import matmul_precision
    runs = {p: tiny_cfg().replace(**{"train.precision": p, "train.epochs": 1}) for p in ("fp32", "tf32")}
    weights = {}
    for p, run in runs.items():
        model = build_model(run, torch.Generator().manual_seed(0))
        train(model, run, snapshots=False)
        weights[p] = [w.detach().clone() for w in model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(weights["fp32"], weights["tf32"]))
    before = torch.backends.cuda.matmul.allow_tf32
    with matmul_precision(runs["tf32"].train, torch.device("cuda")):
        assert torch.backends.cuda.matmul.allow_tf32 is True
    assert torch.backends.cuda.matmul.allow_tf32 == before
    with matmul_precision(runs["fp32"].train, torch.device("cuda")):
        assert torch.backends.cuda.matmul.allow_tf32 == before


def test_resume_after_a_kill_between_save_and_cleanup_finishes_cleanly(tmp_path):
    out = tmp_path / "done"
    r = cli("train", "--preset", "tiny", "--epochs", "1", "--threads", "1", "--quiet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    checkpoint_path(out).write_bytes(b"stale")          # as if killed right after save_run
    r = cli("train", "--resume", str(out))
    assert r.returncode == 0 and "already finished" in r.stderr
    assert not checkpoint_path(out).exists() and load_run(out).final["epoch"] == 1


@pytest.mark.parametrize("args, message", [
    (["--resume", ""], "empty path"),
    (["--resume", "/tmp/x", "--gamma", "0.8"], "drop --gamma"),
    (["--resume", "/tmp/x", "--out", "/tmp/y"], "drop --out"),
    (["--resume", "/tmp/x", "--preset", "tiny"], "drop --preset"),
    (["--preset", "tiny", "--checkpoint-every", "-1"], "minutes ≥ 0"),
    (["--preset", "tiny", "--checkpoint-every", "nan"], "minutes ≥ 0"),
])
def test_bad_resume_and_checkpoint_flags_are_one_error_line(args, message):
    r = cli("train", *args, timeout=120)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_a_checkpoint_with_damaged_numbers_is_refused(tmp_path):
    """A well-formed file whose tensors were overwritten (NaN moments, absurd step counts) is
    refused with a sentence, never a traceback from inside the optimizer."""
    cfg = tiny_cfg()
    ckpt = tmp_path / "c.checkpoint.safetensors"
    checkpoint_until_killed(cfg, ckpt, 3)
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    from core.runs import RunError
    with safe_open(str(ckpt), framework="pt") as f:
        meta = f.metadata()
    good = load_file(str(ckpt))
    for key, value in [("optim.0.exp_avg", float("nan")), ("optim.0.step", 1e30), ("optim.0.exp_avg_sq", -1.0)]:
        bad = dict(good)
        bad[key] = torch.full_like(good[key], value)
        save_file(bad, str(ckpt), metadata=meta)
        with pytest.raises(RunError, match="corrupt"):
            load_checkpoint(ckpt)
    save_file(good, str(ckpt), metadata={k: v for k, v in meta.items() if k != "config"})
    with pytest.raises(RunError, match="not a checkpoint written by"):
        load_checkpoint(ckpt)


@pytest.mark.parametrize("kill_at", [3, 5, 7])   # in epoch 1, at its end, in epoch 2 of a run planned to 2
def test_a_run_continued_to_a_later_stop_equals_one_planned_to_it(tmp_path, kill_at):
    """``--resume RUN --epochs N`` moves the stop, not the schedule (warm-up and decay are absolute
    epochs): a run planned to 2 epochs, interrupted and continued to 3, is the 3-epoch run."""
    from core.cli import _extend
    planned = tiny_cfg()                                       # 3 epochs, decay over 3
    model = build_model(planned, torch.Generator().manual_seed(planned.train.seed))
    reference = train(model, planned)
    ckpt = tmp_path / "run.checkpoint.safetensors"
    checkpoint_until_killed(planned.replace(**{"train.epochs": 2}), ckpt, kill_at)
    cfg, model2, state = load_checkpoint(ckpt)
    assert cfg.train.epochs == 2
    extended = _extend(cfg, state, 3)
    assert extended == planned
    assert strip_seconds(train(model2, extended, resume=state)) == strip_seconds(reference)


def test_extending_via_the_cli_and_its_refusals(tmp_path):
    out = tmp_path / "r"
    cfg = tiny_cfg()
    checkpoint_until_killed(cfg.replace(**{"train.epochs": 2}), checkpoint_path(out), 7)
    cut = cli("train", "--resume", str(out), "--epochs", "1", timeout=120)
    assert cut.returncode == 2 and "not cut before" in cut.stderr and "Traceback" not in cut.stderr
    r = cli("train", "--resume", str(out), "--epochs", "4", "--threads", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    run = load_run(out)
    assert run.final["epoch"] == 4 and run.config.train.epochs == 4
    assert run.config.train.decay_epochs == cfg.train.decay_epochs     # the schedule is untouched
    again = cli("train", "--resume", str(out), "--epochs", "6", timeout=120)
    assert again.returncode == 2 and "cannot be extended" in again.stderr


def test_training_flushes_subnormals_and_restores_the_default():
    """core.train.train reads and writes CPU subnormals as zero (18 s -> 2.5 s a step at the
    paper's width, bench/denormals.py) and leaves PyTorch's default behind it."""
    from core.train import denormals_flushed
    tiny = torch.tensor([1e-30]) * torch.tensor([1e-10])      # 1e-40: subnormal in fp32
    assert tiny.item() != 0.0
    with denormals_flushed():
        assert (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() == 0.0
    assert (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() != 0.0
    with denormals_flushed(False):
        assert (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() != 0.0
    cfg = tiny_cfg().replace(**{"train.epochs": 1})
    seen = []
    train(build_model(cfg, torch.Generator().manual_seed(0)), cfg, snapshots=False,
          on_eval=lambda m, r: seen.append((torch.tensor([1e-30]) * torch.tensor([1e-10])).item()))
    assert seen[-1] == 0.0                                          # on while training
    assert (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() != 0.0   # off after

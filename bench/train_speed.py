"""Training-speed benchmark: sequences/s, achieved FLOP/s against the machine's matmul peak,
and our model's step time against a textbook PyTorch implementation of the same network.

Run from the repository root::

    python bench/train_speed.py                 # cpu-demo shape 200 steps, paper shape 30 steps
    python bench/train_speed.py --steps 100 --paper-steps 10 --threads 2
    python bench/train_speed.py --compile       # also time torch.compile(our model)
    python bench/train_speed.py --bf16          # also time bf16 autocast (train.precision=bf16)

Prints numbers and ratios measured in the same run; asserts nothing. All variants run
interleaved step by step and step times are medians, so other jobs on a shared machine slow
every variant alike and a few disturbed steps do not skew the result.
See bench/README.md.

FLOP count (exact count of the matrix multiplications our model executes; elementwise work —
embedding lookup, LayerNorm, softmax, ReLU, AdamW — is left out). Per sequence of T tokens,
with L layers, H heads of width D_h, width d, FFN width d_ff and vocabulary V::

    forward  = L · ( 2·T·d·3·H·D_h        Q, K, V projections
                   + 2·T²·H·D_h · 2       scores QKᵀ and pattern·V (full T×T square; the causal
                                          half is computed, then masked)
                   + 2·T·H·D_h·d          W_O
                   + 2·2·T·d·d_ff )       W_in, W_out
             + 2·T·d·V                    unembedding (the model computes logits at every position)
    training = 3 · forward                backward of a matmul costs two matmuls of the same size

For comparison the script also prints ``RunConfig.sequence_flops`` (the 6·params·tokens rule,
which counts the embedding tables as if they were multiplied).
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import RunConfig  # noqa: E402
from core.model import AnchorTransformer  # noqa: E402
from core.presets import get_preset  # noqa: E402
from core.task import generate  # noqa: E402
from core.model import build_model  # noqa: E402
from core.train import lr_at, resolve_device, train  # noqa: E402


# -- FLOP count ------------------------------------------------------------------------------------

def forward_flops(cfg: RunConfig) -> int:
    """Matmul FLOP of one forward pass over one sequence (formula in the module docstring)."""
    m, T, V = cfg.model, cfg.task.seq_len, cfg.task.vocab_size
    d, da = m.d_model, m.n_heads * m.d_head
    per_layer = 2 * T * d * 3 * da + 2 * T * T * da * 2 + 2 * T * da * d + 2 * 2 * T * d * m.d_ff
    return m.n_layers * per_layer + 2 * T * d * V


def train_flops(cfg: RunConfig) -> int:
    return 3 * forward_flops(cfg)


def last_path_flops(cfg: RunConfig) -> int:
    """Matmul FLOP of one training sequence on ``forward_last``: every layer but the last in
    full; the last one computes K and V at all T positions, Q, scores, W_O and the FFN at one;
    the unembedding once. Times 3 for forward + backward."""
    m, T, V = cfg.model, cfg.task.seq_len, cfg.task.vocab_size
    d, da = m.d_model, m.n_heads * m.d_head
    full_layer = 2 * T * d * 3 * da + 2 * T * T * da * 2 + 2 * T * da * d + 2 * 2 * T * d * m.d_ff
    last_layer = 2 * T * d * 2 * da + 2 * d * da + 2 * T * da * 2 + 2 * da * d + 2 * 2 * d * m.d_ff
    return 3 * ((m.n_layers - 1) * full_layer + last_layer + 2 * d * V)


# -- textbook reference ----------------------------------------------------------------------------

class RefBlock(nn.Module):
    """The authors' reference block, re-implemented here as docs/science.md describes their
    teaching code (clearly not theirs verbatim): one nn.Linear per projection (no fused QKV),
    heads split with view/transpose, explicit masked softmax with a mask passed in."""

    def __init__(self, d: int, d_ff: int, h: int, dh: int, n_ctx: int) -> None:
        super().__init__()
        self.h, self.dh = h, dh
        self.q, self.k, self.v = (nn.Linear(d, h * dh, bias=False) for _ in range(3))
        self.o = nn.Linear(h * dh, d, bias=False)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff1, self.ff2 = nn.Linear(d, d_ff, bias=False), nn.Linear(d_ff, d, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool)), persistent=False)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = (f(x).view(B, T, self.h, self.dh).transpose(1, 2) for f in (self.q, self.k, self.v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.dh)               # [B, h, T, T]
        att = att.masked_fill(blocked, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.h * self.dh)       # [B, T, h·dh]
        x = self.ln1(x + self.o(y))
        return self.ln2(x + self.ff2(F.relu(self.ff1(x))))


class RefModel(nn.Module):
    def __init__(self, ours: AnchorTransformer) -> None:
        super().__init__()
        c = ours.cfg
        self.embed = nn.Embedding(ours.d_vocab, c.d_model)
        self.pos = nn.Parameter(torch.zeros(ours.n_ctx, c.d_model))
        self.blocks = nn.ModuleList(RefBlock(c.d_model, c.d_ff, c.n_heads, c.d_head, ours.n_ctx)
                                    for _ in range(c.n_layers))
        self.unembed = nn.Linear(c.d_model, ours.d_vocab)
        self.copy_from(ours)

    @torch.no_grad()
    def copy_from(self, ours: AnchorTransformer) -> None:
        """Load our weights, so both models compute the same function (checked below)."""
        self.embed.weight.copy_(ours.W_E)
        self.pos.copy_(ours.W_pos)
        for i, (rb, ob) in enumerate(zip(self.blocks, ours.blocks)):
            for name in ("q", "k", "v"):
                getattr(rb, name).weight.copy_(ours.weight(f"W_{name.upper()}.{i}").T)
            rb.o.weight.copy_(ours.weight(f"W_O.{i}").T)
            rb.ff1.weight.copy_(ob.mlp.W_in.T)
            rb.ff2.weight.copy_(ob.mlp.W_out.T)
            rb.ln1.load_state_dict(ob.ln1.state_dict())
            rb.ln2.load_state_dict(ob.ln2.state_dict())
        self.unembed.weight.copy_(ours.W_U.T)
        self.unembed.bias.copy_(ours.b_U)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits at every position, as the authors' code computes them (the loss then reads the last)."""
        T = tokens.shape[1]
        # their masks, rebuilt at every forward: causal from numpy (np.triu), copied to the device,
        # combined with a padding mask for token 0
        causal = torch.from_numpy(np.triu(np.ones((T, T)), k=1).astype(bool)).to(tokens.device)
        blocked = causal[None, None] | (tokens == 0)[:, None, None, :]
        x = self.embed(tokens) + self.pos[:T]
        for b in self.blocks:
            x = b(x, blocked)
        return self.unembed(x)


# -- timing ---------------------------------------------------------------------------------------

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, n: int = 2048, reps: int = 5) -> float:
    """Best fp32 GFLOP/s of an n×n @ n×n matmul (TF32 left at torch's default, off for matmul)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


TRAINER = "core.train (real loop)"
OURS_LAST = "step loop, ours (last pos.)"
OURS_FULL = "step loop, ours (full fwd)"
REF = "step loop, authors' ref."
OURS_BF16 = "step loop, ours bf16 autocast"
LAST_PATH = {OURS_LAST, OURS_BF16, "step loop, torch.compile"}


class Stepper:
    """The training step core.train performs (forward, last-position cross-entropy, backward,
    clipping, AdamW with the schedule) for one model, on a pre-generated pool; ``step()``
    returns its seconds. Several steppers can be called alternately, one step each."""

    def __init__(self, model: nn.Module, cfg: RunConfig, n_steps: int, device: torch.device, seed: int,
                 last: bool = False, bf16: bool = False) -> None:
        self.last = last  # our exact last-position path instead of logits at every position
        self.bf16 = bf16  # the forward under bf16 autocast, as train.precision="bf16" runs it
        self.model, self.tc, self.b, self.n, self.device, self.i = model, cfg.train, cfg.train.batch_size, n_steps, device, 0
        data = generate(cfg.task, n_steps * self.b, "train", torch.Generator().manual_seed(seed))
        self.tokens, self.target = data.tokens.to(device), data.target.to(device)
        model.to(device).train()
        self.opt = torch.optim.AdamW(model.parameters(), lr=self.tc.lr_start, betas=self.tc.betas, eps=self.tc.eps,
                                     weight_decay=self.tc.weight_decay)

    def step(self) -> float:
        i, b, tc = self.i % self.n, self.b, self.tc
        sync(self.device)
        t0 = time.perf_counter()
        for g in self.opt.param_groups:
            g["lr"] = lr_at(tc, i / self.n)
        batch = self.tokens[i * b:(i + 1) * b]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model.forward_last(batch) if self.last else self.model(batch)[:, -1]
        loss = F.cross_entropy(logits, self.target[i * b:(i + 1) * b])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.opt.step()
        sync(self.device)
        self.i += 1
        return time.perf_counter() - t0


def time_interleaved(models: dict[str, nn.Module], cfg: RunConfig, steps: int, warmup: int,
                     device: torch.device) -> dict[str, list[float]]:
    """Step times of ``core.train.train`` itself and of a bare step loop for each of ``models``,
    interleaved step by step so that load from other jobs on the machine hits all alike.

    ``core.train`` runs for real (one epoch of ``steps + warmup`` steps); its per-step progress
    callback, which fires after ``loss.item()`` (the device is synchronised), runs one step of
    every other model (alternating their order, ABBA) and the time spent in the callback is
    excluded from the trainer's own step time. Evaluations before and after are outside.
    """
    b = cfg.train.batch_size
    run_cfg = cfg.replace(**{"train.n_train": (steps + warmup) * b, "train.epochs": 1, "train.warmup_epochs": 0.1,
                             "train.decay_epochs": 1, "train.n_eval_per_pair": 1, "train.device": str(device)})
    steppers = {k: Stepper(m, cfg, steps + warmup, device, seed=1, last=k in LAST_PATH, bf16=k == OURS_BF16)
                for k, m in models.items()}
    times: dict[str, list[float]] = {TRAINER: [], **{k: [] for k in steppers}}
    last_end: list[float] = []

    def on_progress(ev: dict) -> None:
        if ev.get("event") != "step":
            return
        now, s = time.perf_counter(), ev["step"]
        if last_end and s > warmup:
            times[TRAINER].append(now - last_end[-1])
        order = list(steppers) if s % 2 else list(steppers)[::-1]
        for k in order:
            t = steppers[k].step()
            if s > warmup:
                times[k].append(t)
        last_end.append(time.perf_counter())

    train(build_model(run_cfg, torch.Generator().manual_seed(0)), run_cfg, on_progress=on_progress, progress_every=1)
    return times


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    xs = sorted(xs)
    q = lambda f: xs[min(len(xs) - 1, int(f * len(xs)))]  # noqa: E731
    return q(0.25), median(xs), q(0.75)


def median(xs: list[float]) -> float:
    """Median step time: robust to other jobs stealing the CPU for a few steps."""
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (``/proc/cpuinfo``); empty elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def human(seconds: float) -> str:
    for unit, s in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= s:
            return f"{seconds / s:.1f} {unit}"
    return f"{seconds:.0f} s"


# -- main -----------------------------------------------------------------------------------------

def bench_shape(name: str, cfg: RunConfig, steps: int, warmup: int, device: torch.device, peak: float,
                use_compile: bool, bf16: bool = False) -> None:
    f_train = train_flops(cfg)
    b = cfg.train.batch_size
    m = cfg.model
    n_params = m.n_params(cfg.task.vocab_size, cfg.task.seq_len)
    print(f"\n== {name}: L={m.n_layers} d_model={m.d_model} d_ff={m.d_ff} d_head={m.d_head} heads={m.n_heads}"
          f"  params={n_params:,}  batch={b}")
    print(f"   timed steps per variant: {steps} (+{warmup} untimed warm-up), all variants interleaved step by step")
    f_last = last_path_flops(cfg)
    print(f"   FLOP/sequence, training: exact matmul count {f_train / 1e6:.2f} M (last-position path"
          f" {f_last / 1e6:.2f} M)"
          f" | RunConfig.sequence_flops (6·N·T) {cfg.sequence_flops / 1e6:.2f} M")

    ours = build_model(cfg, torch.Generator().manual_seed(0))
    ref = RefModel(ours)
    probe = generate(cfg.task, 64, "any", torch.Generator().manual_seed(1)).tokens
    with torch.no_grad():
        diff = (ours.eval()(probe) - ref.eval()(probe)).abs().max().item()
    print(f"   reference computes the same function: max |Δlogits| = {diff:.1e} on 64 sequences")

    models: dict[str, nn.Module] = {OURS_LAST: ours, OURS_FULL: build_model(cfg, torch.Generator().manual_seed(0)),
                                    REF: ref}
    if bf16:
        models[OURS_BF16] = build_model(cfg, torch.Generator().manual_seed(0))
    if use_compile:
        compiled = build_model(cfg, torch.Generator().manual_seed(0))
        compiled.forward_last = torch.compile(compiled.forward_last)  # the path the trainer uses
        try:
            Stepper(compiled, cfg, 2, device, 0, last=True).step()  # compile now, outside the timed steps
            models["step loop, torch.compile"] = compiled
        except Exception as e:  # no compiler on the box, unsupported backend, ...
            print(f"   torch.compile unavailable: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
    times = time_interleaved(models, cfg, steps, warmup, device)
    t = {k: median(v) for k, v in times.items()}
    print(f"   {'':30} {'ms/step':>9} {'seq/s':>10} {'GFLOP/s':>9} {'of peak':>8}   (median step; IQR of ms/step)")
    for label, s in t.items():
        gflops = (f_last if label in LAST_PATH or label == TRAINER else f_train) * b / s / 1e9
        lo, _, hi = quartiles(times[label])
        print(f"   {label:30} {s * 1e3:9.2f} {b / s:10.0f} {gflops:9.2f} {gflops / peak:8.1%}"
              f"   [{lo * 1e3:.1f} .. {hi * 1e3:.1f}]")

    def paired(a: str, c: str) -> str:
        lo, mid, hi = quartiles([x / y for x, y in zip(times[a], times[c])])
        return f"{mid:.2f}  (IQR {lo:.2f} .. {hi:.2f} over {len(times[a])} paired steps)"

    print(f"   speed-up, authors' ref. / ours (last pos.): {paired(REF, OURS_LAST)}  > 1: ours faster")
    print(f"   speed-up, ours full fwd / ours last pos.:   {paired(OURS_FULL, OURS_LAST)}  the last-position path alone")
    if OURS_BF16 in t:
        print(f"   speed-up, fp32 / bf16 autocast (last pos.): {paired(OURS_LAST, OURS_BF16)}  > 1: bf16 faster")
    if "step loop, torch.compile" in t:
        print(f"   ratio compiled / eager step time:         {paired('step loop, torch.compile', OURS_LAST)}")
    print(f"   ratio core.train / bare step loop:        {paired(TRAINER, OURS_LAST)}"
          "  trainer overhead")
    full = cfg.train.sequences_seen / (b / t[TRAINER])
    print(f"   => a full {name} run ({cfg.train.sequences_seen:,} sequences) would take ~{human(full)} here"
          " at this speed (training steps only)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200, help="timed steps for the cpu-demo shape")
    p.add_argument("--paper-steps", type=int, default=30, help="timed steps for the paper shape")
    p.add_argument("--paper-batch", type=int, default=None,
                   help="batch for the paper shape (default: the preset's 2048 on a GPU, 256 on a CPU)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps at the start")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: shared machine)")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="also time torch.compile(our model)")
    p.add_argument("--bf16", action="store_true",
                   help="also time our step under bf16 autocast (train.precision=bf16)")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    peak = matmul_peak(device)
    print(f"train_speed  {dt.datetime.now():%Y-%m-%d %H:%M}  torch {torch.__version__}  python "
          f"{platform.python_version()}  device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else
             f"  threads {torch.get_num_threads()}  ({platform.processor() or platform.machine()})"))
    if device.type == "cpu":
        flags = cpu_flags()
        print("CPU bf16 support: " + (", ".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags)
                                      or "none (bf16 is emulated: expect it slower than fp32)"))
    print(f"fp32 matmul peak, 2048×2048 @ 2048×2048 best of 5: {peak:.1f} GFLOP/s")

    demo = get_preset("cpu-demo")
    bench_shape("cpu-demo", demo, args.steps, args.warmup, device, peak, args.compile, args.bf16)
    paper = get_preset("paper")
    pb = args.paper_batch or (paper.train.batch_size if device.type == "cuda" else 256)
    if pb != paper.train.batch_size:
        print(f"\n(paper shape timed with batch {pb} instead of {paper.train.batch_size}; --paper-batch to change)")
    bench_shape("paper", paper.replace(**{"train.batch_size": pb}), args.paper_steps, args.warmup, device, peak,
                args.compile, args.bf16)
    again = matmul_peak(device)
    print(f"\nfp32 matmul peak measured again at the end: {again:.1f} GFLOP/s (start {peak:.1f});"
          " '% of peak' above uses the start value. A large gap means other jobs shared the CPU.")


if __name__ == "__main__":
    main()

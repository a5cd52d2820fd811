"""Subnormal floats on the CPU: what flushing them to zero (``core.train.denormals_flushed``,
on by default in ``core.train.train``) saves, and that it changes nothing.

Run from the repository root::

    python bench/denormals.py                          # synthetic: paper shape, tiny gradients
    python bench/denormals.py --checkpoint CKPT        # real: steps of a training checkpoint

Small-init runs carry gradients below fp32's normal range (|x| < 1.2e-38) through the backward
pass once attention sharpens; an x86 core computes with such subnormal numbers many times more
slowly. It showed as the paper-width fp32 control (γ 0.8, seed 1) slowing from 2 s to 8.5–19 s
a step after ~850 steps (docs/replication.md, 2026-12-06).

- **Synthetic** (default): the ``paper-replica`` model at γ 0.8, freshly initialized; one
  forward and backward of a batch whose loss is multiplied by ``--scale`` (1e-36), so that the
  backward's gradients are subnormal as in the late small-init runs. Flush off and on are timed
  interleaved, ``--reps`` times each; medians. The gradients are compared too: flushed values
  are those below 1.2e-38, nothing else.
- **Real** (``--checkpoint``): ``--steps`` optimizer steps of the checkpointed run, from the
  same state, flush off then on, in ``--rounds`` alternating rounds; prints the seconds per
  step, the losses, and whether the weights after the steps are bitwise equal.

Prints measured numbers and their ratio; asserts nothing. See bench/README.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.model import build_model  # noqa: E402
from core.presets import get_preset  # noqa: E402
from core.task import generate  # noqa: E402
from core.train import denormals_flushed, train  # noqa: E402

TINY = 1.1754944e-38  # smallest normal fp32


def subnormal_share(tensors) -> float:
    sub = tot = 0
    for t in tensors:
        a = t.detach().abs()
        sub += int(((a > 0) & (a < TINY)).sum())
        tot += a.numel()
    return sub / max(tot, 1)


def synthetic(args: argparse.Namespace) -> None:
    cfg = get_preset("paper-replica").replace(**{"model.gamma": 0.8, "model.d_vocab": 201, "model.n_ctx": 20})
    model = build_model(cfg, torch.Generator().manual_seed(1))
    data = generate(cfg.task, args.batch, "train", torch.Generator().manual_seed(0))

    def step(flush: bool) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        with denormals_flushed(flush):
            t0 = time.perf_counter()
            loss = F.cross_entropy(model.forward_last(data.tokens), data.target) * args.scale
            loss.backward()
            dt = time.perf_counter() - t0
        return dt, [p.grad.clone() for p in model.parameters()]

    times = {False: [], True: []}
    grads = {}
    for _ in range(args.reps):
        for flush in (False, True):
            dt, grads[flush] = step(flush)
            times[flush].append(dt)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"synthetic: paper-replica shape, γ 0.8, batch {args.batch}, loss × {args.scale:g}, "
          f"{torch.get_num_threads()} thread(s), {args.reps} interleaved reps")
    print(f"  subnormal share of the parameter gradients (flush off): {subnormal_share(grads[False]):.3f}")
    print(f"  forward+backward: flush off {off:.3f} s, on {on:.3f} s  ->  {off / on:.1f}x faster flushed")
    diff = max((a - b).abs().max().item() for a, b in zip(grads[False], grads[True]))
    top = max(a.abs().max().item() for a in grads[False])
    print(f"  largest gradient difference {diff:.3g}, largest gradient entry {top:.3g} (here nearly every"
          " number is subnormal, so flushing changes them; in a real run they are a small share, and"
          " below Adam's eps: see --checkpoint)")


def real(args: argparse.Namespace) -> None:
    from core.runs import load_checkpoint

    class Stop(Exception):
        pass

    def run(flush: bool) -> tuple[float, list[float], dict[str, torch.Tensor]]:
        cfg, model, state = load_checkpoint(args.checkpoint)
        losses: list[float] = []
        t0 = [0.0]

        def prog(r):
            if r.get("event") == "step":
                losses.append(r["loss"])
                if len(losses) == 1:
                    t0[0] = time.perf_counter()   # the first step also warms up: not timed
                if len(losses) > args.steps:
                    raise Stop
        try:
            train(model, cfg, resume=state, on_progress=prog, progress_every=1, snapshots=False,
                  flush_denormal=flush)
        except Stop:
            pass
        dt = (time.perf_counter() - t0[0]) / args.steps
        return dt, losses, {k: v.clone() for k, v in model.state_dict().items()}

    per = {False: [], True: []}
    out = {}
    for _ in range(args.rounds):
        for flush in (False, True):
            dt, losses, weights = run(flush)
            per[flush].append(dt)
            out[flush] = (losses, weights)
    off, on = statistics.median(per[False]), statistics.median(per[True])
    same_loss = out[False][0] == out[True][0]
    same_w = all(torch.equal(out[False][1][k], out[True][1][k]) for k in out[False][1])
    print(f"real: {args.checkpoint}, {args.steps + 1} steps per round ({args.steps} timed), {args.rounds} rounds, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"  s/step: flush off {off:.2f}, on {on:.2f}  ->  {off / on:.1f}x faster flushed")
    print(f"  losses equal: {same_loss}; weights after the steps bitwise equal: {same_w}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="a training checkpoint (*.checkpoint.safetensors): real steps")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per round (real)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (real)")
    ap.add_argument("--batch", type=int, default=128, help="batch (synthetic)")
    ap.add_argument("--scale", type=float, default=1e-36, help="loss multiplier (synthetic)")
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions (synthetic)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    real(args) if args.checkpoint else synthetic(args)


if __name__ == "__main__":
    main()

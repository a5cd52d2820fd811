"""How fast can a CPU train many small models? Sweep backends against one-after-another runs.

Trains the same small grid (the cpu-demo model, shortened: ``--n-train`` sequences ×
``--epochs``) several ways and prints wall times and ratios; it asserts nothing:

1. sequential, one process, torch's default thread count (all cores for every run);
2. sequential, one process, one torch thread;
3. the local process pool of ``core.sweep`` (``--workers`` processes × 1 thread);
4. optionally (``--ray``) the Ray backend on a local cluster of ``--workers`` CPUs.

It also times one optimizer step of K models batched into a single vmapped step
(``torch.func.stack_module_state`` + ``vmap(functional_call)``) against K separate steps,
the other candidate for training many small models at once.

    python bench/sweep_speed.py                      # ~1-2 minutes on 2 cores
    python bench/sweep_speed.py --runs 8 --epochs 4  # longer runs: start-up overhead matters less

Numbers depend on what else the machine is doing; the load average is printed first.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from core.presets import get_preset  # noqa: E402
from core.sweep import run_sweep  # noqa: E402
from core.sweep_spec import SweepSpec  # noqa: E402
from core.task import generate  # noqa: E402
from core.model import build_model  # noqa: E402


def grid_spec(args: argparse.Namespace) -> SweepSpec:
    gammas = [round(0.4 + 0.1 * i, 2) for i in range(args.runs // 2 or 1)]
    seeds = [0, 1] if args.runs >= 2 else [0]
    return SweepSpec(name="bench", preset="cpu-demo",
                     grid=(("model.gamma", tuple(gammas)), ("train.seed", tuple(seeds))),
                     fixed=(("train.n_train", args.n_train), ("train.epochs", args.epochs)))


def timed_sweep(spec: SweepSpec, **kw) -> tuple[float, float, float]:
    """(wall seconds of the whole sweep, sum of the runs' own wall seconds, sum of their CPU seconds)."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        run_sweep(spec, Path(d) / "sw", on_event=lambda e: None, **kw)
        wall = time.perf_counter() - t0
        metrics = [json.loads(m.read_text()) for m in (Path(d) / "sw" / "runs").glob("*/metrics.json")]
    return wall, sum(m["wall_seconds"] for m in metrics), sum(m["cpu_seconds"] for m in metrics)


def vmap_step(k: int, steps: int) -> tuple[float, float]:
    """Seconds per optimizer step: (one model alone, K models in one vmapped step)."""
    from torch.func import functional_call, stack_module_state, vmap
    cfg = get_preset("cpu-demo")
    data = generate(cfg.task, 4096, "train", torch.Generator().manual_seed(0))
    bs = cfg.train.batch_size

    m = build_model(cfg, torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)

    def single() -> None:
        idx = torch.randint(0, 4096, (bs,))
        loss = F.cross_entropy(m(data.tokens[idx])[:, -1], data.target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()

    models = [build_model(cfg, torch.Generator().manual_seed(s)) for s in range(k)]
    params, buffers = stack_module_state(models)
    params = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    eopt = torch.optim.AdamW(list(params.values()), lr=1e-3)

    def last_logits(p, b, x):
        return functional_call(base, (p, b), (x,))[:, -1]

    def ensemble() -> None:
        idx = torch.randint(0, 4096, (k, bs))
        logits = vmap(last_logits)(params, buffers, data.tokens[idx])  # [k, batch, d_vocab]
        # summed over models: each model's gradient is its own mean-loss gradient
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), data.target[idx].reshape(-1),
                               reduction="sum") / bs
        eopt.zero_grad()
        loss.backward()
        eopt.step()

    out = []
    for fn in (single, ensemble):
        fn()
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        out.append((time.perf_counter() - t0) / steps)
    return out[0], out[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=4, help="runs in the grid (γ values × 2 seeds)")
    p.add_argument("--n-train", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--ray", action="store_true", help="also time the Ray backend (needs pip install ray)")
    p.add_argument("--vmap-steps", type=int, default=15, help="steps timed per vmap measurement (0 skips it)")
    args = p.parse_args()

    spec = grid_spec(args)
    n = len(spec.points())
    default_threads = torch.get_num_threads()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}")
    print(f"grid: {n} runs of the cpu-demo model, {args.n_train} sequences × {args.epochs} epochs each\n")
    rows = [(f"sequential, {default_threads} torch threads", *timed_sweep(spec, workers=1, threads=None))]
    torch.set_num_threads(default_threads)
    rows.append(("sequential, 1 torch thread", *timed_sweep(spec, workers=1, threads=1)))
    torch.set_num_threads(default_threads)
    rows.append((f"local pool, {args.workers} processes × 1 thread", *timed_sweep(spec, workers=args.workers, threads=1)))
    if args.ray:
        rows.append((f"ray (local), {args.workers} CPUs × 1 thread",
                     *timed_sweep(spec, backend="ray", workers=args.workers, threads=1)))
    base, seq1 = rows[0][1], rows[1][1]
    print(f"{'backend':<42} {'wall s':>7} {'runs own s':>11} {'runs CPU s':>11} {'vs row 1':>9} {'vs row 2':>9}")
    for name, wall, own, cpu in rows:
        print(f"{name:<42} {wall:7.1f} {own:11.1f} {cpu:11.1f} {base / wall:8.2f}x {seq1 / wall:8.2f}x")
    print("('runs own s' sums each run's wall time inside its worker; the gap to 'wall s' is start-up:"
          " spawning processes and importing torch, paid once per worker. 'runs CPU s' is the CPU time"
          " the runs used, all threads: equal CPU per run but less wall time means parallelism paid off;"
          f" on {os.cpu_count()} idle cores the pool's ideal is {args.workers}x row 2.)\n")

    if args.vmap_steps:
        torch.set_num_threads(1)
        print("one optimizer step, 1 torch thread: K models vmapped into one step vs K single steps")
        for k in (2, 4, 8):
            one, ens = vmap_step(k, args.vmap_steps)
            print(f"  K={k}: single {one * 1e3:6.1f} ms, ensemble {ens * 1e3:6.1f} ms"
                  f" = {ens / k * 1e3:5.1f} ms per model -> speed-up {one / (ens / k):.2f}x")


if __name__ == "__main__":
    main()

"""Which draw decides the route at γ 0.5: the initial weights or the data?

Our faithful γ 0.5 runs (preset ``paper-replica``, docs/replication.md) answer the held-out pair
(4,3) in one of two ways by epoch 4-5, and which one depends on the seed: seed 2 copies x − 6
(the overridden symmetric pair (3,4), the authors' outcome), seeds 1, 3 and 4 copy x − 16 (the
answer of (4,4)). ``train.seed`` seeds three things at once: the initial weights, the training
pool and the batch order. This script trains the same configuration with the weights drawn
from one seed and the data and batch order from another, so the two draws can be told apart:

    python docs/seed_swap.py --weights-seed 2 --data-seed 1      # seed 2's weights, seed 1's data
    python docs/seed_swap.py --weights-seed 1 --data-seed 2
    python docs/seed_swap.py --table [--write]                    # the results (--write: into docs/replication.md)

Each run: the config of a committed run (``--base``, default the γ 0.5 seed 2 run
``pretrained/paper-replica_bf16_L2_g0.5_s2``: d_model 400, their 201 tokens, split, schedule
warm-up 10 / cosine planned to 200, bf16) with ``train.seed`` = the data seed and stopped at
``--epochs`` (default 5; the schedule does not depend on the stop), the model built by
``core.model.build_model`` from ``torch.Generator().manual_seed(weights seed)``, trained by
``core.fit.fit``. With both seeds equal it is exactly ``python -m core train`` of that config.

Resumable: a checkpoint ``runs/seed_swap/w<A>_d<B>.checkpoint.safetensors`` is written every
``--checkpoint-every`` minutes (default 5) and at each epoch end; the same command continues from
it (the checkpoint holds the weights, so the weights seed no longer matters then). When the run
ends, one JSON line per evaluated epoch is appended to ``docs/seed_swap_runs.jsonl`` (earlier
lines of the same seeds, base and stop are replaced); the checkpoint is removed. ~5.5 min per
epoch on one AVX-512 core in bf16.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

import torch  # noqa: E402

from core.config import RunConfig  # noqa: E402
from core.fit import fit, processor  # noqa: E402
from core.model import build_model  # noqa: E402
from core.runs import RunError, load_checkpoint, load_config, save_checkpoint  # noqa: E402
from replication import top_answers  # noqa: E402

BASE = ROOT / "pretrained" / "paper-replica_bf16_L2_g0.5_s2"
RESULTS = ROOT / "docs" / "seed_swap_runs.jsonl"


def swapped_config(base: RunConfig, data_seed: int, epochs: int) -> RunConfig:
    """``base`` with ``train.seed = data_seed`` and ``train.epochs = epochs`` (validated anew)."""
    d = base.to_dict()
    d["train"] = {**d["train"], "seed": data_seed, "epochs": epochs}
    return RunConfig.from_dict(d, strict=True)


def run(weights_seed: int, data_seed: int, *, base: Path, epochs: int, threads: int, every: float,
        workdir: Path, results: Path) -> list[dict]:
    """Train one run (or continue it from its checkpoint) and append its records to ``results``.

    Returns the run's history (one record per evaluated epoch, as ``core.train.train`` gives it).
    Raises RunError (unreadable base run or checkpoint) and ValueError (impossible settings)."""
    if threads:
        torch.set_num_threads(threads)
    ckpt = workdir / f"w{weights_seed}_d{data_seed}.checkpoint.safetensors"
    state = None
    if ckpt.is_file():
        cfg, model, state = load_checkpoint(ckpt)
        if cfg.train.seed != data_seed or cfg.train.epochs != epochs:
            raise ValueError(f"{ckpt} holds a run with data seed {cfg.train.seed} stopping at epoch"
                             f" {cfg.train.epochs}; delete it to start again")
        print(f"resuming {ckpt} at epoch {state.epoch} step {state.step}", file=sys.stderr)
    else:
        cfg = swapped_config(load_config(base), data_seed, epochs)
        model = build_model(cfg, torch.Generator().manual_seed(weights_seed))
    t0 = time.time()
    model, metrics = fit(cfg, model=model, resume=state, checkpoint_every=60.0 * every,
                         on_checkpoint=lambda st: save_checkpoint(ckpt, cfg, model, st))
    key = {"weights_seed": weights_seed, "data_seed": data_seed, "base": base.name, "epochs": epochs}
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] if results.is_file() else []
    rows = [r for r in rows if {k: r.get(k) for k in key} != key]
    for rec in metrics["history"]:
        held = rec["held_out"]["4,3"]
        rows.append({**key, "epoch": rec["epoch"], "train_loss": None if rec["train_loss"] is None else round(rec["train_loss"], 4),
                     "seen": round(rec["seen_test_accuracy"], 4),
                     "x_minus_10": round(held["inferential"], 4), "x_minus_6": round(held["symmetric"], 4),
                     "offsets": {k: round(v, 4) for k, v in held["offsets"].items()},
                     "precision": cfg.train.precision, "processor": processor()})
    results.parent.mkdir(parents=True, exist_ok=True)
    tmp = results.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(results)
    ckpt.unlink(missing_ok=True)
    print(f"w{weights_seed} d{data_seed}: to epoch {metrics['history'][-1]['epoch']} in {time.time() - t0:.0f} s;"
          f" appended to {results}", file=sys.stderr)
    return metrics["history"]


def table(results: Path, at: tuple[int, ...] = (1, 2, 3, 4, 5)) -> str:
    """Markdown: one row per (weights seed, data seed): training loss, seen and the two most
    common (4,3) answers after each epoch of ``at`` that some run reached."""
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] if results.is_file() else []
    runs: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        runs.setdefault((r["weights_seed"], r["data_seed"], r["base"]), {})[r["epoch"]] = r
    if not runs:
        return f"(no runs in {results})\n"
    at = tuple(e for e in at if any(e in recs for recs in runs.values()))
    head = ("| weights seed | data seed | " + " | ".join(f"epoch {e}: loss · seen · (4,3) answers" for e in at)
            + " |\n|---|---|" + "---|" * len(at) + "\n")

    def cell(r: dict | None) -> str:
        return "" if r is None else f"{r['train_loss']:.2f} · {r['seen']:.2f} · {top_answers(r['offsets'])}"
    return head + "".join(f"| {w} | {d} | " + " | ".join(cell(recs.get(e)) for e in at) + " |\n"
                          for (w, d, _), recs in sorted(runs.items()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights-seed", type=int)
    p.add_argument("--data-seed", type=int)
    p.add_argument("--base", default=str(BASE), help="run folder whose config is used (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint-every", type=float, default=5.0, help="minutes")
    p.add_argument("--workdir", default=str(ROOT / "runs" / "seed_swap"))
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--table", action="store_true", help="print the results table and stop")
    p.add_argument("--write", action="store_true", help="with --table: also rewrite it in docs/replication.md")
    a = p.parse_args(argv)
    if a.table:
        text = table(Path(a.results))
        print(text, end="")
        if a.write:
            from autoblock import write_block
            write_block(ROOT / "docs" / "replication.md", "seed_swap", text.rstrip("\n"))
        return 0
    if a.weights_seed is None or a.data_seed is None:
        p.error("give --weights-seed and --data-seed (or --table)")
    if min(a.weights_seed, a.data_seed) < 0 or a.epochs < 1 or a.checkpoint_every <= 0:
        p.error("seeds must be ≥ 0, --epochs ≥ 1, --checkpoint-every > 0")
    try:
        run(a.weights_seed, a.data_seed, base=Path(a.base), epochs=a.epochs, threads=a.threads,
            every=a.checkpoint_every, workdir=Path(a.workdir), results=Path(a.results))
    except (RunError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The held-out pair's answers split by the key's position in the sequence.

    python docs/answers_by_position.py pretrained/paper-replica_bf16_L2_g0.8_s6 [RUN ...]

For each run (a finished run folder, or a folder whose checkpoint ``<folder>.checkpoint.safetensors``
is beside it; nothing is executed on load), ``--n`` fresh (4,3) sequences (both key splits,
balanced over key positions, generator ``--seed``) are answered by the model, and the most common
answers, as offsets from the key (x − 10 composes, x − 6 copies (3,4), x − 16 copies (4,4)), are
printed for each key position as a Markdown table. Why: a run's overall share can hide a rule
(docs/replication.md: γ 0.8 seed 6 answers x − 16 on 86 % of keys, and x − 10 exactly when the key
sits at the last position it can take).
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from core.runs import RunError, checkpoint_path, load_checkpoint, load_run  # noqa: E402
from core.task import generate  # noqa: E402
from core.train import predict  # noqa: E402


def by_position(model, task, pair=(4, 3), n: int = 6000, seed: int = 5) -> dict[int, collections.Counter]:
    """``{key position: Counter(offset from the key)}`` of the model's answers to ``n`` sequences
    of ``pair`` (split "any", balanced)."""
    b = generate(task, n, "any", torch.Generator().manual_seed(seed), pairs=[pair], balanced=True)
    with torch.no_grad():
        pred = predict(model.eval(), b.tokens)
    out: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for o, p in zip((pred - b.key).tolist(), b.key_pos.tolist()):
        out[p][o] += 1
    return dict(out)


def table(runs: list[Path], n: int, seed: int) -> str:
    lines = ["| run | " + " | ".join(f"key at {p}" for p in range(7)) + " |", "|---|" + "---|" * 7]
    for folder in runs:
        if (folder / "metrics.json").is_file():
            run = load_run(folder)
            model, task, where = run.model, run.config.task, "finished"
        else:
            cfg, model, state = load_checkpoint(checkpoint_path(folder))
            task, where = cfg.task, f"checkpoint, epoch {state.epoch}"
        counts = by_position(model, task, n=n, seed=seed)
        cells = []
        for p in sorted(counts):
            c, total = counts[p], sum(counts[p].values())
            cells.append(", ".join(f"x{o:+d} {100 * k / total:.0f} %".replace("-", "−") for o, k in c.most_common(2)))
        lines.append(f"| `{folder.name}` ({where}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--n", type=int, default=6000)
    p.add_argument("--seed", type=int, default=5)
    a = p.parse_args(argv)
    try:
        print(table([Path(r) for r in a.runs], a.n, a.seed))
    except (RunError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The held-out pair's answers split by the key's position in the sequence.

    python docs/answers_by_position.py pretrained/paper-replica_bf16_L2_g0.8_s6 [RUN ...]

For each run (a finished run folder, or a folder whose checkpoint ``<folder>.checkpoint.safetensors``
is beside it; nothing is executed on load), ``--n`` fresh (4,3) sequences (random keys, key positions
and noise, generator ``--seed``) are answered by the model, and the most common
answers, as offsets from the key (x − 10 composes, x − 6 copies (3,4), x − 16 copies (4,4)), are
printed for each key position as a Markdown table. Why: a run's overall share can hide a rule
(docs/replication.md: γ 0.8 seed 6 answers x − 16 on 86 % of keys, and x − 10 exactly when the key
sits at the last position it can take).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import probes  # noqa: E402
from core.runs import RunError, checkpoint_path, load_checkpoint, load_run  # noqa: E402


def table(runs: list[Path], n: int, seed: int) -> str:
    """A Markdown table: one row per run, one cell per key position with its two most common
    answers (``core.probes.answers_by_key_position``, the probe behind Inside the model's
    "Answers by position" view)."""
    lines = None
    for folder in runs:
        if (folder / "metrics.json").is_file():
            run = load_run(folder)
            model, task, where = run.model, run.config.task, "finished"
        else:
            cfg, model, state = load_checkpoint(checkpoint_path(folder))
            task, where = cfg.task, f"checkpoint, epoch {state.epoch}"
        d = probes.answers_by_key_position(model.eval(), task, n=n, seed=seed, n_other=3)
        if lines is None:
            lines = ["| run | " + " | ".join(f"key at {p}" for p in d["positions"]) + " |",
                     "|---|" + "---|" * len(d["positions"])]
        names = [f"x{o:+d}".replace("-", "−") for o in d["offsets"]] + ["other"]
        cells = []
        for row, total in zip(d["counts"], d["n"]):
            top = sorted(((int(c), j) for j, c in enumerate(row) if c), reverse=True)[:2]
            cells.append(", ".join(f"{names[j]} {100 * c / total:.0f} %" for c, j in top))
        lines.append(f"| `{folder.name}` ({where}) | " + " | ".join(cells) + " |")
    return "\n".join(lines or [])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--n", type=int, default=6000, help="sequences per run")
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

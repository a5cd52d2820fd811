"""Early training of several runs side by side: the authors' logged epoch losses, our
re-implementation of their pipeline (docs/authors_pipeline.py) and our own trainer.

    python docs/authors_compare.py docs/authors_pipeline_logs/*.jsonl
    python docs/authors_compare.py --gamma 0.5 LOG ...     # against their γ 0.5 log (default 0.8)

Each file is a JSON-lines log: ``docs/authors_pipeline.py --out F --log-every 10`` writes step
records (``step``, ``loss``) and epoch records (``epoch``, ``train_loss``, ``seen``, …);
``python -m core train --progress jsonl`` writes ``{"event": "step", "step", "loss"}`` every 20
steps and ``{"event": "eval", "epoch", "train_loss", "seen_test_accuracy", …}`` each epoch. Prints
a Markdown table of the loss at every 100th step (the mean of the logged steps within ±10) and,
for epochs 1..6, the epoch's mean training loss and, where logged, the eval-mode test loss after
it, next to the authors' "Train Loss" / "Test Loss" (core/reference.py; docs/replication.md).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.reference import (  # noqa: E402  (epochs 1..6)
    AUTHORS_LOG, AUTHORS_SEEN_TRAIN_KEYS, AUTHORS_TEST_LOSS, AUTHORS_TRAIN_LOSS as AUTHORS)


def read(path: Path) -> tuple[dict[int, float], dict[int, float], dict[int, float], dict[int, float], dict[int, float]]:
    """``(loss by step, train_loss by epoch, seen by epoch, test_loss by epoch, seen_train_keys by
    epoch)`` of one log (the last two: docs/authors_pipeline.py logs from 2026-12-06 on)."""
    steps, epochs, seen, test, train_keys = {}, {}, {}, {}, {}
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("event") in ("step", None) and "step" in r and "loss" in r:
            steps[int(r["step"])] = float(r["loss"])
        tl = r.get("train_loss")
        if "epoch" in r and tl is not None and ("seen" in r or r.get("event") == "eval"):
            epochs[int(r["epoch"])] = float(tl)
            seen[int(r["epoch"])] = float(r.get("seen", r.get("seen_test_accuracy", float("nan"))))
            if r.get("test_loss") is not None:
                test[int(r["epoch"])] = float(r["test_loss"])
            if r.get("seen_train_keys") is not None:
                train_keys[int(r["epoch"])] = float(r["seen_train_keys"])
    return steps, epochs, seen, test, train_keys


def near(steps: dict[int, float], s: int, width: int = 10) -> str:
    vals = [v for k, v in steps.items() if abs(k - s) <= width]
    return f"{sum(vals) / len(vals):.2f}" if vals else ""


def main(paths: list[str], gamma: float = 0.8) -> None:
    if gamma not in AUTHORS:
        raise SystemExit(f"error: the authors logged γ {sorted(AUTHORS)}, not {gamma:g}")
    runs = {Path(p).stem: read(Path(p)) for p in paths}
    names = list(runs)
    top = max((max(r[0]) for r in runs.values() if r[0]), default=0)
    print("| step | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for s in range(100, top + 1, 100):
        print(f"| {s} | " + " | ".join(near(runs[n][0], s) for n in names) + " |")
    print()
    print(f"| epoch | authors γ {gamma:g}: train / test loss (seen: test keys / training keys) | "
          + " | ".join(names) + " |")
    print("| --- | --- |" + " --- |" * len(names))
    for e in range(1, len(AUTHORS[gamma]) + 1):
        def cell(n: str) -> str:
            _, ep, seen, test, keys = runs[n]
            if e not in ep:
                return ""
            return (f"{ep[e]:.2f}" + (f" / {test[e]:.2f}" if e in test else "")
                    + f" (seen {seen[e]:.3f}" + (f" / {keys[e]:.3f}" if e in keys else "") + ")")
        ref_seen = {a.epoch: a.seen for a in AUTHORS_LOG[gamma]}
        ref = f"{AUTHORS[gamma][e - 1]:.2f} / {AUTHORS_TEST_LOSS[gamma][e - 1]:.2f}"
        if e in AUTHORS_SEEN_TRAIN_KEYS[gamma]:
            ref += f" (seen {ref_seen[e]:.2f} / {AUTHORS_SEEN_TRAIN_KEYS[gamma][e]:.3f})"
        print(f"| {e} | {ref} | " + " | ".join(cell(n) for n in names) + " |")

if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("logs", nargs="+", help="JSON-lines logs")
    ap.add_argument("--gamma", type=float, default=0.8, help="which of the authors' logs to compare against")
    a = ap.parse_args()
    main(a.logs, a.gamma)

"""Summaries of a run: the JSON contract of the CLI and the one-line verdict.

The verdict rule (our decision, used by the app, the CLI and docs/calibration.md):
- ``not fitted``: seen-pair test accuracy below 0.90 (the paper shades such cells, Fig. 2);
- otherwise the mapping (inferential / symmetric / other) with the largest share of the
  held-out pair's answers; it is *clear* when that share is ≥ 0.90 and seen ≥ 0.95
  (the reliability rule of the calibration issue), otherwise it is reported as "leaning".
"""
from __future__ import annotations

from typing import Any

from .config import RunConfig

FIT_THRESHOLD = 0.90
CLEAR_SHARE = 0.90
CLEAR_SEEN = 0.95


def verdict(seen: float, held: dict[str, float]) -> dict[str, Any]:
    """Classify one held-out pair's outcome.

    Args:
        seen: seen-pair test accuracy in [0, 1].
        held: ``{"inferential", "symmetric", "other"}`` shares in [0, 1].

    Returns:
        ``{"outcome": "inferential" | "symmetric" | "other" | "not fitted", "share": float,
        "clear": bool}``.
    """
    if seen < FIT_THRESHOLD:
        return {"outcome": "not fitted", "share": seen, "clear": False}
    best = max(("inferential", "symmetric", "other"), key=lambda k: held.get(k, 0.0))
    share = held.get(best, 0.0)
    return {"outcome": best, "share": share, "clear": share >= CLEAR_SHARE and seen >= CLEAR_SEEN}


def verdict_line(task_pair: str, v: dict[str, Any], formula: str | None = None) -> str:
    """Human sentence, e.g. ``answers (4,3) like x-10 on 97% of keys: inferential``."""
    if v["outcome"] == "not fitted":
        return f"not fitted: seen-pair test accuracy only {v['share']:.0%}, so ({task_pair}) says nothing yet"
    lead = "" if v["clear"] else "leaning "
    like = f" like {formula}" if formula else ""
    return f"answers ({task_pair}){like} on {v['share']:.0%} of keys: {lead}{v['outcome']}"


def summarize(run: str | None, config: RunConfig, history: list[dict[str, Any]], seconds: float | None) -> dict[str, Any]:
    """The CLI's JSON contract for a finished run.

    Returns:
        ``{"run", "config", "seen_test_accuracy", "seconds", "held_out": {"a1,a2": {"inferential",
        "symmetric", "other", "offsets", "best_inferential", "best_symmetric", "verdict"}},
        "per_pair"}`` taken from the last evaluation; ``best_*`` are maxima over training.
    """
    last = history[-1]
    held = {}
    for k, h in last["held_out"].items():
        v = verdict(last["seen_test_accuracy"], h)
        held[k] = {
            "inferential": h["inferential"], "symmetric": h["symmetric"], "other": h["other"],
            "offsets": h.get("offsets", {}),
            "best_inferential": max(r["held_out"][k]["inferential"] for r in history),
            "best_symmetric": max(r["held_out"][k]["symmetric"] for r in history),
            "verdict": v["outcome"], "clear": v["clear"],
        }
    return {"run": run, "config": config.to_dict(), "seen_test_accuracy": last["seen_test_accuracy"],
            "seconds": seconds, "held_out": held, "per_pair": last["per_pair"]}

"""Where does the result survive at smaller width? (issue 10, item 4)

The paper's optimizer settings (preset ``paper-replica``: 759,375 sequences, batch 2048, lr
1e-5 -> 2e-4 over 10 epochs, cosine planned to 200, 25 epochs) at d_model 256, 128 and 64
(d_ff = 3 d, d_head = d / 2), with the paper's γ 0.5 and 0.8 translated to the smaller width in
two ways (docs/science.md §3):

- ``std``: the same initial standard deviation as the paper's, 400^(−γ) = d^(−γ'), so
  γ' = γ · ln 400 / ln d;
- ``scale``: the same forward scale relative to LeCun, 400^(0.5−γ) = d^(0.5−γ'), so
  γ' = 0.5 − (0.5 − γ) · ln 400 / ln d.

    python docs/walkdown.py                     # list the runs, their γ' and estimated cost
    python docs/walkdown.py --run --width 64    # train (or resume) the runs of one width, in turn
    python docs/walkdown.py --table             # outcomes of the finished runs (Markdown)
    python docs/walkdown.py --plain             # one line per run, "D GAMMA' NAME" (docs/gpu_session.sh reads it)

Runs land in ``docs/walkdown/<name>/`` (fp16 weights), each resumable from its checkpoint
file; record results in docs/calibration.md ("Width walk-down").
"""
from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "docs" / "walkdown"
WIDTHS = (256, 128, 64)
PAPER_D = 400


def gamma_prime(gamma: float, d: int, way: str) -> float:
    """The γ at width ``d`` matching the paper's ``gamma`` at d_model 400 by ``way``."""
    r = math.log(PAPER_D) / math.log(d)
    return round(gamma * r if way == "std" else 0.5 - (0.5 - gamma) * r, 3)


def points(widths=WIDTHS, seeds=(1,)) -> list[dict]:
    out = []
    for d in widths:
        for gamma in (0.5, 0.8):
            for way in ("std", "scale"):
                g = gamma_prime(gamma, d, way)
                for s in seeds:
                    out.append({"d": d, "paper_gamma": gamma, "way": way, "gamma": g, "seed": s,
                                "name": f"w{d}_{way}_p{gamma:g}_g{g:g}_s{s}"})
    return out


def command(p: dict) -> list[str]:
    d = p["d"]
    return [sys.executable, "-m", "core", "train", "--preset", "paper-replica", "--d-model", str(d),
            "--d-ff", str(3 * d), "--d-head", str(d // 2), "--gamma", str(p["gamma"]), "--seed", str(p["seed"]),
            "--threads", "1", "--half", "--quiet", "--checkpoint-every", "5", "--out", str(OUT / p["name"])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, action="append", help="only these widths")
    ap.add_argument("--seeds", default="1", help="seeds, comma-separated (default 1)")
    ap.add_argument("--run", action="store_true", help="train or resume the runs, one after another")
    ap.add_argument("--table", action="store_true", help="print the outcomes of finished runs")
    ap.add_argument("--plain", action="store_true", help="print one line per run: D GAMMA' NAME")
    ap.add_argument("--dir", type=Path, default=OUT, help="where the run folders are (default docs/walkdown)")
    args = ap.parse_args(argv)
    pts = points(tuple(args.width or WIDTHS), tuple(int(s) for s in args.seeds.split(",")))
    if args.plain:
        for p in pts:
            print(p["d"], p["gamma"], p["name"])
        return 0
    if args.table:
        from core.runs import RunError, load_config, load_metrics
        from core.verdict import verdict
        print("| width | paper γ | way | γ' | seed | seen | (4,3) x−10 | (4,3) x−6 | verdict |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for p in pts:
            f = args.dir / p["name"]
            try:
                load_config(f)
                last = load_metrics(f)["history"][-1]
            except RunError:
                continue
            h = last["held_out"]["4,3"]
            v = verdict(last["seen_test_accuracy"], h)
            print(f"| {p['d']} | {p['paper_gamma']} | {p['way']} | {p['gamma']} | {p['seed']} |"
                  f" {last['seen_test_accuracy']:.2f} | {h['inferential']:.2f} | {h['symmetric']:.2f} |"
                  f" {v['outcome']}{'' if v['clear'] else ' (leaning)'} |")
        return 0
    for p in pts:
        # cost: last-position FLOP scale with d² against the paper shape's 3.3 s/step on one core
        est_h = 9275 * 3.3 * (p["d"] / PAPER_D) ** 2 / 3600
        print(f"{p['name']:32}  γ'={p['gamma']:<6} ~{est_h:.1f} h on one idle core (d² scaling; small widths"
              " run below peak, so more)")
        if not args.run:
            continue
        folder = OUT / p["name"]
        if folder.is_dir():
            print("  finished")
            continue
        ckpt = folder.with_name(folder.name + ".checkpoint.safetensors")
        cmd = ([sys.executable, "-m", "core", "train", "--resume", str(folder), "--threads", "1", "--half",
                "--quiet", "--checkpoint-every", "5"] if ckpt.exists() else command(p))
        print("  " + " ".join(cmd[1:]), flush=True)
        r = subprocess.run(cmd, cwd=ROOT)
        if r.returncode != 0:
            return r.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
    python docs/walkdown.py --run --width 256 --precision bf16   # under bf16 autocast (names "w256_bf16_…")

``--precision bf16`` (validated against fp32 in docs/calibration.md, "bf16 against fp32"; about 2×
faster on a CPU with AVX-512 bf16) trains the same points into folders named ``w<d>_bf16_…``; the
table says which precision each row ran in.

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
sys.path.insert(0, str(ROOT / "docs"))

OUT = ROOT / "docs" / "walkdown"
WIDTHS = (256, 128, 64)
PAPER_D = 400


def gamma_prime(gamma: float, d: int, way: str) -> float:
    """The γ at width ``d`` matching the paper's ``gamma`` at d_model 400 by ``way``."""
    r = math.log(PAPER_D) / math.log(d)
    return round(gamma * r if way == "std" else 0.5 - (0.5 - gamma) * r, 3)


def points(widths=WIDTHS, seeds=(1,), precision: str = "fp32") -> list[dict]:
    out = []
    tag = "" if precision == "fp32" else f"_{precision}"
    for d in widths:
        for gamma in (0.5, 0.8):
            for way in ("std", "scale"):
                g = gamma_prime(gamma, d, way)
                for s in seeds:
                    out.append({"d": d, "paper_gamma": gamma, "way": way, "gamma": g, "seed": s,
                                "precision": precision, "name": f"w{d}{tag}_{way}_p{gamma:g}_g{g:g}_s{s}"})
    return out


def _short(shift: str) -> str:
    return f"x{int(shift):+d}".replace("-", "−")


def row(p: dict, history: list[dict], status: str) -> str:
    """One Markdown row of the walk-down table: the last evaluation's seen accuracy, (4,3) shares
    and top answers, the peak of x−10 over training (with its epoch: the route can be reached and
    then lost as the fit completes) and the verdict of ``core.verdict``."""
    from core.verdict import verdict
    last = history[-1]
    h = last["held_out"]["4,3"]
    top = sorted(h.get("offsets", {}).items(), key=lambda kv: -kv[1])[:2]
    peak = max(history, key=lambda r: r["held_out"]["4,3"]["inferential"])
    v = verdict(last["seen_test_accuracy"], h)
    outcome = f"{v['outcome']}{'' if v['clear'] else ' (leaning)'}"
    return (f"| {p['d']} | {p['paper_gamma']} | {p['way']} | {p['gamma']} | {p['seed']} |"
            f" {p.get('precision', 'fp32')} | {last['epoch']}"
            f"{'' if status == 'finished' else ' (running)'} | {last['seen_test_accuracy']:.2f} |"
            f" {h['inferential']:.2f} | {h['symmetric']:.2f} | "
            + ", ".join(f"{_short(o)} {100 * s:.0f} %" for o, s in top)
            + f" | {peak['held_out']['4,3']['inferential']:.2f} (epoch {peak['epoch']}) |"
            + (f" {outcome} |" if status == "finished" else " (not finished) |"))


def table(pts: list[dict], root: Path) -> str:
    """The walk-down's Markdown table: one row per run of ``pts`` found in ``root``, finished or
    in progress (read from its checkpoint, marked "running"); runs not started are left out."""
    from replication import history_of
    lines = ["| width | paper γ | way | γ' | seed | precision | epoch | seen | (4,3) x−10 | (4,3) x−6 |"
             " top (4,3) answers | peak x−10 | verdict |", "| " + " | ".join(["---"] * 13) + " |"]
    for p in pts:
        history, status = history_of(root / p["name"])
        if len(history) > 1:  # more than the evaluation before training
            lines.append(row(p, history, status))
    return "\n".join(lines)


def command(p: dict) -> list[str]:
    d = p["d"]
    return [sys.executable, "-m", "core", "train", "--preset", "paper-replica", "--d-model", str(d),
            "--d-ff", str(3 * d), "--d-head", str(d // 2), "--gamma", str(p["gamma"]), "--seed", str(p["seed"]),
            "--set", f"train.precision={p.get('precision', 'fp32')}",
            "--threads", "1", "--half", "--quiet", "--checkpoint-every", "5", "--out", str(OUT / p["name"])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, action="append", help="only these widths")
    ap.add_argument("--seeds", default="1", help="seeds, comma-separated (default 1)")
    ap.add_argument("--precision", choices=("fp32", "bf16", "all"), default=None,
                    help="train in this precision (default fp32); the table shows both unless one is given")
    ap.add_argument("--run", action="store_true", help="train or resume the runs, one after another")
    ap.add_argument("--table", action="store_true", help="print the outcomes of finished runs")
    ap.add_argument("--write", action="store_true", help="--table, written into docs/calibration.md")
    ap.add_argument("--plain", action="store_true", help="print one line per run: D GAMMA' NAME")
    ap.add_argument("--dir", type=Path, default=OUT, help="where the run folders are (default docs/walkdown)")
    args = ap.parse_args(argv)
    widths, seeds = tuple(args.width or WIDTHS), tuple(int(s) for s in args.seeds.split(","))
    if args.run and args.precision == "all":
        ap.error("--run trains in one precision: fp32 or bf16")
    if args.run or args.plain or args.precision not in (None, "all"):
        pts = points(widths, seeds, args.precision if args.precision not in (None, "all") else "fp32")
    else:  # tables: every precision, fp32 rows first at each width
        pts = [p for d in widths for prec in ("fp32", "bf16") for p in points((d,), seeds, prec)]
    if args.plain:
        for p in pts:
            print(p["d"], p["gamma"], p["name"])
        return 0
    if args.table or args.write:
        text = table(pts, args.dir)
        print(text)
        if args.write:
            from autoblock import write_block
            write_block(ROOT / "docs" / "calibration.md", "walkdown", text)
        return 0
    for p in pts:
        # cost: last-position FLOP scale with d² against the paper shape's 3.3 s/step on one core
        est_h = 9275 * 3.3 * (p["d"] / PAPER_D) ** 2 / 3600 / (2 if p["precision"] == "bf16" else 1)  # bf16: ~2×
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

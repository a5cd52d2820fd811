"""The committed runs in ``pretrained/``: the command that made each, and the README table.

    python docs/pretrained.py --train     # (re)create missing runs with their exact commands
    python docs/pretrained.py --table     # rewrite the README's table from the runs' metrics

Every number in the README's "Committed runs" table is read from the run folders by
``core.verdict.summarize`` (the same code as ``python -m core eval RUN --json``).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

# folder -> the exact command that produced it (one thread: bitwise reproducible on a CPU)
RUNS: dict[str, str] = {
    "cpu-demo_L2_g0.5_s0": "python -m core train --preset cpu-demo --gamma 0.5 --seed 0 --threads 1",
    "cpu-demo_L2_g0.9_s0": "python -m core train --preset cpu-demo --gamma 0.9 --seed 0 --threads 1",
    "cpu-demo_L2_g1.0_s0": "python -m core train --preset cpu-demo --gamma 1.0 --seed 0 --threads 1",
    "cpu-deep_L3_g0.5_s0": "python -m core train --preset cpu-deep --gamma 0.5 --seed 0 --threads 1",
    "cpu-deep_L3_g1.0_s4": "python -m core train --preset cpu-deep --gamma 1.0 --seed 4 --threads 1",
    # the authors' logged γ 0.8 run replicated at their width and vocabulary, under bf16 autocast
    # (docs/replication.md); made by `PRECISION=bf16 bash docs/replicate.sh 0.8 1` on a CPU with
    # native bf16, epoch 1 on one thread, then resumed on two (--threads is not stored)
    "paper-replica_bf16_L2_g0.8_s1": "python -m core train --preset paper-replica --gamma 0.8 --seed 1"
                                     " --set train.precision=bf16 --half --checkpoint-every 5 --threads 2",
    # its γ 0.5 counterpart (seed 2: seed 1 answered x-16, docs/replication.md), made by
    # `PRECISION=bf16 bash docs/replicate.sh 0.5 2`: epochs 1-7 on one thread, then two
    "paper-replica_bf16_L2_g0.5_s2": "python -m core train --preset paper-replica --gamma 0.5 --seed 2"
                                     " --set train.precision=bf16 --half --checkpoint-every 5 --threads 2",
    # the same-seed twin of the γ 0.5 run (differing only in γ), made by
    # `PRECISION=bf16 bash docs/replicate.sh 0.8 2`: epochs 1-10 on one thread, then two, over three sessions
    "paper-replica_bf16_L2_g0.8_s2": "python -m core train --preset paper-replica --gamma 0.8 --seed 2"
                                     " --set train.precision=bf16 --half --checkpoint-every 5 --threads 2",
    # γ 0.8 seed 6, meant as the twin of γ 0.5 seed 6 (which copies x-6); it fits fast and copies x-16
    # instead (docs/replication.md). Made by `PRECISION=bf16 THREADS=1 bash docs/replicate.sh 0.8 6`
    # on one thread in one session (Intel Xeon with AMX)
    "paper-replica_bf16_L2_g0.8_s6": "python -m core train --preset paper-replica --gamma 0.8 --seed 6"
                                     " --set train.precision=bf16 --half --checkpoint-every 5 --threads 1",
    # γ 0.8 seed 5, the twin of γ 0.5 seed 5 (which copies x-6): turns from x-16 to x-10 as it fits and
    # ends leaning inferential, x-10 87 % (docs/replication.md). Made by
    # `PRECISION=bf16 THREADS=1 bash docs/replicate.sh 0.8 5` on one thread over two sessions
    "paper-replica_bf16_L2_g0.8_s5": "python -m core train --preset paper-replica --gamma 0.8 --seed 5"
                                     " --set train.precision=bf16 --half --checkpoint-every 5 --threads 1",
    # γ 0.5 seed 5, its twin: copies x-6 from epoch 4 (docs/replication.md). Made by
    # `PRECISION=bf16 THREADS=1 bash docs/replicate.sh 0.5 5` on one thread in one session
    "paper-replica_bf16_L2_g0.5_s5": "python -m core train --preset paper-replica --gamma 0.5 --seed 5"
                                     " --set train.precision=bf16 --half --checkpoint-every 5 --threads 1",
}
# a shell line (``{out}`` is the folder): γ 0.8 seed 2 carried from the committed run's epoch-13
# checkpoint (commit bec781e) to epoch 30 on another machine, 2026-12-06 (docs/replication.md)
RUNS["paper-replica_bf16_from13_L2_g0.8_s2"] = (
    "git show bec781e:pretrained/paper-replica_bf16_L2_g0.8_s2.checkpoint.safetensors > {out}.checkpoint.safetensors"
    " && python -m core train --resume {out} --epochs 30 --threads 1 --checkpoint-every 5 --half")

# runs whose rerun gives the same outcome but not the same bits (bf16, two threads, resumed, or
# resumed on another machine)
NOT_BITWISE = {"paper-replica_bf16_L2_g0.8_s1", "paper-replica_bf16_L2_g0.5_s2", "paper-replica_bf16_L2_g0.8_s2",
               "paper-replica_bf16_from13_L2_g0.8_s2", "paper-replica_bf16_L2_g0.8_s6", "paper-replica_bf16_L2_g0.8_s5",
               "paper-replica_bf16_L2_g0.5_s5"}



def command(name: str) -> str:
    if "{out}" in RUNS[name]:
        return RUNS[name].format(out=f"pretrained/{name}")
    return f"{RUNS[name]} --out pretrained/{name}"


def train_missing() -> None:
    for name in RUNS:
        if (ROOT / "pretrained" / name / "metrics.json").exists():
            continue
        print(f"training {name}", flush=True)
        subprocess.run(["bash", "-c", command(name) + " --quiet"], cwd=ROOT, check=True)  # one line each, ours


def table() -> str:
    from core.runs import load_config, load_metrics
    from core.verdict import summarize

    lines = ["| run | γ | layers | seen | (4,3) inferential x−10 | symmetric x−6 | other | most common answer | best inf. during training | verdict | training s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in RUNS:
        path = ROOT / "pretrained" / name
        if not path.exists():
            continue
        cfg, metrics = load_config(path), load_metrics(path)
        s = summarize(name, cfg, metrics["history"], metrics.get("seconds"))
        h = s["held_out"]["4,3"]
        top = max(h["offsets"].items(), key=lambda kv: kv[1])[0]
        verdict = h["verdict"] + ("" if h["clear"] or h["verdict"] == "not fitted" else " (leaning)")
        lines.append(f"| `{name}` | {cfg.model.gamma:g} | {cfg.model.n_layers} | {s['seen_test_accuracy']:.2f} | "
                     f"{h['inferential']:.2f} | {h['symmetric']:.2f} | {h['other']:.2f} | x{int(top):+d} | "
                     f"{h['best_inferential']:.2f} | {verdict} | {s['seconds']:.0f} |")
    cmds = "\n".join(command(n) for n in RUNS if n not in NOT_BITWISE)
    other = "\n".join(command(n) for n in RUNS if n in NOT_BITWISE)
    return ("\n".join(lines) + f"\n\nReproduce (identical weights on a CPU with one thread):\n\n```bash\n{cmds}\n```"
            + (f"\n\nReproduce the outcome (bf16 on two threads: not bit for bit; 2–5 h each on a 2-core CPU with native bf16,"
               f" resumable):\n\n```bash\n{other}\n```" if other else ""))


def write_table() -> None:
    from autoblock import write_block
    write_block(ROOT / "README.md", "pretrained", table())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", action="store_true")
    p.add_argument("--table", action="store_true")
    args = p.parse_args()
    if args.train:
        train_missing()
    if args.table:
        write_table()


if __name__ == "__main__":
    main()

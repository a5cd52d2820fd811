"""bf16 autocast against fp32, on outcomes and trajectories, before any science uses bf16
(issue 10, item 1: "validate it before using it for science").

Two comparisons, same configuration and seed in both precisions, nothing else changed:

1. d_model 64 (``docs/calibrate.py --plan bf16``): cpu-demo at γ 0.5 (symmetric in every seed)
   and round4's depth-3 γ 1.0 configuration (its seeds split between the two routes), seeds
   0–2, each in fp32 and in bf16. Read from ``docs/calibration_runs.jsonl``.
2. The faithful width (``paper-replica`` with the 110-token vocabulary of the long fp32 runs,
   whose checkpoints hold their per-epoch history): the first epochs again in bf16, same seed
   and schedule (``--epochs N --set train.decay_epochs=200`` keeps the 25-epoch run's
   learning rates, docs/replication.md). ``--collect RUN`` stores a finished run's per-epoch
   record in ``docs/precision_runs.jsonl`` (the run folder itself stays out of git).

    python docs/calibrate.py --plan bf16 --workers 1
    bash docs/precision_check.sh 0.8             # faithful width, γ 0.8, 3 epochs in bf16, then --collect
    python docs/precision_check.py --collect pretrained/paper-replica_bf16_L2_g0.5_s1 \
        --reference pretrained/paper-replica_L2_g0.5_s1 --command "..."   # 201 tokens, same seed, both stored
    python docs/precision_check.py               # print both tables
    python docs/precision_check.py --write       # and rewrite them in docs/calibration.md
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

from autoblock import write_block  # noqa: E402
from replication import answers, config_of, history_of  # noqa: E402

CALIB = ROOT / "docs" / "calibration_runs.jsonl"
RUNS = ROOT / "docs" / "precision_runs.jsonl"
MD = ROOT / "docs" / "calibration.md"
# The same configuration and seeds trained in fp32 by an earlier plan, before the exact
# last-position path changed the order of the sums (docs/calibration.md): how often a seed's
# outcome flips under a perturbation that has nothing to do with bf16.
BASELINE = {"g0.5": ("round1", "g0.5"), "L3_g1.0_e45": ("round4", "L3_g1.0_e45")}


def small_table() -> str:
    """Per configuration and seed: fp32 and bf16 outcome side by side, and how far the
    evaluated curves (seen accuracy, (4,3) inferential share) ever were apart."""
    latest: dict[tuple[str, int], dict] = {}
    earlier: dict[tuple[str, str, int], dict] = {}
    for line in CALIB.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if r.get("plan") == "bf16":
                latest[(r["name"], r["seed"])] = r
            earlier[(r.get("plan"), r["name"], r["seed"])] = r
    rows = ["| config | seed | fp32: seen / inf / sym, top (4,3) answer, verdict | bf16: same | same verdict "
            "| max \\|Δ seen\\| over evals | max \\|Δ inferential\\| over evals "
            "| fp32, code of 2026-11-29: verdict (inf / sym) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    agree = total = base_agree = base_total = 0
    for (name, seed), a in sorted(latest.items()):
        if not name.endswith("_fp32") or (name[:-5] + "_bf16", seed) not in latest:
            continue
        b = latest[(name[:-5] + "_bf16", seed)]
        same = a["verdict"] == b["verdict"]
        agree, total = agree + same, total + 1
        d_seen = max(abs(x - y) for x, y in zip(a["curve_seen"], b["curve_seen"]))
        d_inf = max(abs(x - y) for x, y in zip(a["curve_inferential"], b["curve_inferential"]))

        def cell(r: dict) -> str:
            return (f"{r['seen']:.3f} / {r['inferential']:.2f} / {r['symmetric']:.2f}, {answers({'held_out': {'4,3': r}}, k=1)}, "
                    f"{r['verdict']}{'' if r['clear'] else ' (not clear)'}")
        old = earlier.get((*BASELINE.get(name[:-5], ("", "")), seed))
        if old is not None:
            base_agree, base_total = base_agree + (old["verdict"] == a["verdict"]), base_total + 1
        base = "" if old is None else f"{old['verdict']} ({old['inferential']:.2f} / {old['symmetric']:.2f})"
        rows.append(f"| {name[:-5]} | {seed} | {cell(a)} | {cell(b)} | {'yes' if same else '**no**'} "
                    f"| {d_seen:.3f} | {d_inf:.3f} | {base} |")
    if not total:
        return "(no bf16 plan runs yet: `python docs/calibrate.py --plan bf16`)"
    return ("\n".join(rows) + f"\n\nbf16 against fp32: same verdict in {agree} of {total} (configuration, seed) pairs."
            + (f" fp32 against the same configuration and seeds trained by the code of 2026-11-29 (the order of"
               f" the sums and the evaluation samples changed since): same verdict in {base_agree} of {base_total}." if base_total else ""))


def collect(run: Path, command: str, reference: Path | None = None) -> None:
    """Append a faithful-width bf16 run's per-epoch records to ``docs/precision_runs.jsonl``.

    Without ``reference``: ``run`` must be finished, and its fp32 twin is the 110-token long run
    (``pretrained/paper-replica_v110_…``, read when the table is written). With ``reference``
    (an fp32 run of the same config and seed, finished or a checkpoint in progress, or stopped
    at an earlier epoch on the same schedule): both
    histories are stored in the record, so the table needs neither folder afterwards, and runs
    in progress are accepted (what they reached is what is compared)."""
    hist, status = history_of(run)
    if not hist:
        raise SystemExit(f"{run}: {status}")
    if reference is None and status != "finished":
        raise SystemExit(f"{run}: {status}; collect a finished run (or pass --reference)")
    cfg = config_of(run)
    rec = {"run": run.name, "gamma": cfg.model.gamma, "seed": cfg.train.seed, "precision": cfg.train.precision,
           "d_vocab": cfg.model.d_vocab, "status": status, "command": command,
           "reference": (str(reference) if reference is not None
                         else f"pretrained/paper-replica_v110_L2_g{cfg.model.gamma:g}_s{cfg.train.seed}"),
           "history": [_compact(r) for r in hist]}
    if reference is not None:
        ref_hist, ref_status = history_of(reference)
        ref_cfg = config_of(reference)
        # a reference stopped earlier on the same schedule (``--epochs 6`` with warm-up and decay
        # given) is the same run up to its stop: the learning rate depends on the epoch alone
        if ref_cfg.replace(**{"train.precision": cfg.train.precision, "train.epochs": cfg.train.epochs}) != cfg:
            raise SystemExit(f"{reference} is not {run}'s configuration and seed in another precision")
        rec.update(reference_status=ref_status, reference_precision=ref_cfg.train.precision,
                   reference_history=[_compact(r) for r in ref_hist])
    with RUNS.open("a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"collected {run} ({len(hist) - 1} epochs) into {RUNS.relative_to(ROOT)}")


def _compact(r: dict) -> dict:
    h = r["held_out"]["4,3"]
    return {"epoch": r["epoch"], "train_loss": r["train_loss"], "seen": r["seen_test_accuracy"],
            "inferential": h["inferential"], "symmetric": h["symmetric"], "offsets": h["offsets"]}


def faithful_table() -> str:
    """Per epoch: the fp32 long run's record next to the bf16 rerun's."""
    if not RUNS.is_file():
        return "(no faithful-width bf16 run collected yet: `bash docs/precision_check.sh 0.8`)"
    out = []
    for line in RUNS.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if "reference_history" in rec:  # stored with the record (both runs may be gone since)
            ref = {r["epoch"]: r for r in rec["reference_history"]}
            status = f"{rec['reference_status']}, stored"
        else:
            ref_hist, status = history_of(ROOT / rec["reference"])
            ref = {r["epoch"]: _compact(r) for r in ref_hist}
        out.append(f"**γ {rec['gamma']:g}, seed {rec['seed']}**, vocabulary "
                   f"{rec['d_vocab'] or 'sized to the task (110)'}; fp32 = `{rec['reference']}` ({status}); "
                   f"bf16 = `{rec['command']}`" + (f" ({rec['status']})" if rec.get("status", "finished") != "finished"
                                                    else "") + "\n")
        out.append("| epoch | train loss fp32 / bf16 | seen fp32 / bf16 | (4,3) x−10 fp32 / bf16 "
                   "| (4,3) x−6 fp32 / bf16 | top (4,3) answers fp32 | top (4,3) answers bf16 |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
        for b in rec["history"]:
            a = ref.get(b["epoch"])
            if a is None or b["epoch"] == 0:
                continue
            loss = (f"{a['train_loss']:.3f} / {b['train_loss']:.3f}" if a["train_loss"] is not None else "")
            out.append(f"| {b['epoch']} | {loss} | {a['seen']:.2f} / {b['seen']:.2f} "
                       f"| {a['inferential']:.2f} / {b['inferential']:.2f} | {a['symmetric']:.2f} / {b['symmetric']:.2f} "
                       f"| {answers({'held_out': {'4,3': a}})} | {answers({'held_out': {'4,3': b}})} |")
        out.append("")
    return "\n".join(out).rstrip()


def render() -> str:
    return ("**d_model 64** (`python docs/calibrate.py --plan bf16`; per (configuration, seed): the last "
            "evaluation's numbers)\n\n" + small_table() + "\n\n**Faithful width, first epochs** "
            "(`bash docs/precision_check.sh G`)\n\n" + faithful_table())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--write", action="store_true", help="rewrite the tables in docs/calibration.md")
    p.add_argument("--collect", type=Path, metavar="RUN", help="store a finished bf16 run's history")
    p.add_argument("--command", default="", help="with --collect: the command that made RUN")
    p.add_argument("--reference", type=Path, help="with --collect: the fp32 run (or checkpoint) of the same"
                   " config and seed; both histories are stored")
    args = p.parse_args()
    if args.collect:
        collect(args.collect, args.command, args.reference)
        return
    text = render()
    print(text)
    if args.write:
        write_block(MD, "precision", text)


if __name__ == "__main__":
    main()

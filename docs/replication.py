"""Our faithful-width trajectories next to the authors' logged ones (docs/science.md §3).

    python docs/replication.py                 # print the table (Markdown) for every run found
    python docs/replication.py --write         # also rewrite the table in docs/replication.md
    python docs/replication.py --keys          # finished runs: seen pairs on training- vs test-split keys
    python docs/replication.py --seeds         # one row per run: the spread over seeds at a glance
    python docs/replication.py --stash RUN     # keep a stopped run's history (docs/replication_histories/)

Reads the finished run folders ``pretrained/paper-replica*_L2_g<γ>_s<seed>/`` (any precision or vocabulary label) and, for runs still
training, their checkpoint files ``<folder>.checkpoint.safetensors`` (the history stored in the
checkpoint's metadata; nothing is executed). Prints one row per epoch the authors logged.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

from autoblock import write_block  # noqa: E402
from core.reference import AUTHORS_LOG, AUTHORS_TRAIN_LOSS  # noqa: E402
from core.runs import RunError, checkpoint_path, load_metrics  # noqa: E402

# The authors' logs (docs/science.md §3, "Reference runs"; one home: core/reference.py):
# γ -> epoch -> (seen, (4,3) answers).
AUTHORS = {g: {e.epoch: (e.seen, e.answers) for e in log} for g, log in AUTHORS_LOG.items()}


STASH = ROOT / "docs" / "replication_histories"


def stash_path(folder: Path) -> Path:
    """Where ``--stash`` keeps the history of a run stopped early whose checkpoint is not kept."""
    return STASH / f"{folder.name}.json"


def history_of(folder: Path) -> tuple[list[dict], str]:
    """``(history, status)`` of a finished run, of the checkpoint of one in progress, or of the
    stashed history of one stopped early (``--stash``)."""
    if (folder / "metrics.json").is_file():
        return load_metrics(folder)["history"], "finished"
    ckpt = checkpoint_path(folder)
    meta = None
    if ckpt.is_file():
        from safetensors import safe_open
        with safe_open(str(ckpt), framework="pt") as f:
            meta = f.metadata()
        where = "in progress"
    elif stash_path(folder).is_file():
        meta = json.loads(stash_path(folder).read_text())
        where = "stopped"
    if meta is None:
        return [], "not started"
    pos = json.loads(meta["position"])
    return json.loads(meta["history"]), (f"{where}: {pos['epoch']} epochs and {pos['batch']} steps done,"
                                         f" step {pos['step']}")


def stash(folder: Path) -> Path:
    """Copy the config, position and history of ``folder``'s checkpoint (its safetensors metadata,
    JSON strings) into ``docs/replication_histories/<folder name>.json``, so the tables keep a run
    stopped early after its 32 MB checkpoint is deleted. Raises FileNotFoundError without one."""
    from safetensors import safe_open
    ckpt = checkpoint_path(folder)
    if not ckpt.is_file():
        raise FileNotFoundError(f"no checkpoint at {ckpt}")
    with safe_open(str(ckpt), framework="pt") as f:
        meta = f.metadata()
    out = stash_path(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({k: meta[k] for k in ("config", "position", "history")}, indent=1) + "\n")
    return out


def config_of(folder: Path):
    """A run's config from its folder, or from its checkpoint's metadata while it is in progress.

    Raises RunError, OSError, ValueError, KeyError or TypeError when neither can be read."""
    from core.config import RunConfig
    from core.runs import load_config
    if (folder / "config.json").is_file():
        return load_config(folder)
    if not checkpoint_path(folder).is_file() and stash_path(folder).is_file():
        return RunConfig.from_dict(json.loads(json.loads(stash_path(folder).read_text())["config"]))
    from safetensors import safe_open
    with safe_open(str(checkpoint_path(folder)), framework="pt") as f:
        return RunConfig.from_dict(json.loads(f.metadata()["config"]))


def describe_variant(folder: Path) -> str:
    """The run's vocabulary and precision, read from its config (finished) or its checkpoint."""
    try:
        cfg = config_of(folder)
    except (RunError, OSError, ValueError, KeyError, TypeError) as e:
        return f"config unreadable ({e})"
    vocab = f"{cfg.model.d_vocab} tokens" if cfg.model.d_vocab else "110 tokens"
    return f"{vocab}, {cfg.train.precision}"


def top_answers(offsets: dict[str, float], k: int = 2) -> str:
    """``{"-16": 0.86, "-10": 0.14}`` -> ``"x−16 86 %, x−10 14 %"`` (the k largest shares)."""
    top = sorted(offsets.items(), key=lambda kv: -kv[1])[:k]
    return ", ".join(f"x{int(o):+d} {100 * v:.0f} %".replace("-", "−") for o, v in top)


def answers(rec: dict, k: int = 2) -> str:
    """The k most common (4,3) answers of an evaluation record, as offsets from the key."""
    return top_answers(rec["held_out"]["4,3"]["offsets"], k)


def replication_runs(root: Path) -> dict[tuple[float, int, str], Path]:
    """``(γ, seed, variant) -> folder`` of the ``paper-replica*_L2_g*_s*`` runs in ``root``, finished
    or in progress (a checkpoint file)."""
    found = {}
    names = {re.sub(r"\.checkpoint\.safetensors$", "", str(q)) for q in root.glob("paper-replica*_L2_g*_s*")}
    if root.resolve() == (ROOT / "pretrained").resolve():  # stashed histories belong to pretrained/
        names |= {str(root / q.stem) for q in STASH.glob("paper-replica*_L2_g*_s*.json")}
    for p in sorted(names):
        m = re.search(r"paper-replica(?:_(\w+))?_L2_g([0-9.]+)_s(\d+)$", p)
        if m:
            found[(float(m.group(2)), int(m.group(3)), m.group(1) or "")] = Path(p)
    return found


def loss_table(root: Path) -> str:
    """Mean training loss of epochs 1..6, the authors' next to each replication run with their
    201-token vocabulary (the 110-token runs start 0.6 lower: ln(201/110); docs/replication.md)."""
    cols = []
    for (gamma, seed, _), folder in sorted(replication_runs(root).items()):
        try:
            if config_of(folder).model.d_vocab != 201:
                continue
            hist, _ = history_of(folder)
        except (RunError, OSError, ValueError, KeyError, TypeError):
            continue
        by_epoch = {r["epoch"]: r.get("train_loss") for r in hist}
        cols.append((f"γ {gamma:g} ours, seed {seed} ({config_of(folder).train.precision})", gamma, by_epoch))
    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.2f}" if v >= 0.1 else f"{v:.2g}"

    heads, series = [], []
    for g in sorted({c[1] for c in cols} & set(AUTHORS_TRAIN_LOSS)):  # per γ: the authors', then ours
        heads.append(f"γ {g:g} authors")
        series.append(dict(enumerate(AUTHORS_TRAIN_LOSS[g], start=1)))
        for name, _, by in (c for c in cols if c[1] == g):
            heads.append(name)
            series.append(by)
    lines = ["| epoch | " + " | ".join(heads) + " |", "| --- |" + " --- |" * len(heads)]
    for e in range(1, 7):
        lines.append(f"| {e} | " + " | ".join(num(by.get(e)) for by in series) + " |")
    return "\n".join(lines)


def table(root: Path) -> str:
    lines = []
    for (gamma, seed, _), folder in sorted(replication_runs(root).items()):
        try:
            hist, status = history_of(folder)
        except (RunError, OSError, ValueError, KeyError) as e:
            lines.append(f"**γ {gamma:g}, seed {seed}**: unreadable ({e})\n")
            continue
        by_epoch = {r["epoch"]: r for r in hist}
        lines.append(f"**γ {gamma:g}, seed {seed}, {describe_variant(folder)}** ({status};"
                     f" `{folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}`)\n")
        lines.append("| epoch (after) | authors: seen | authors: (4,3) answers, training-split keys | ours: seen "
                     "| ours: (4,3) x−10, both splits | ours: (4,3) x−6 | ours: top (4,3) answers |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        ref = AUTHORS.get(gamma, {})
        for e in sorted(set(ref) | set(by_epoch)):
            if e == 0:
                continue
            a_seen, a_ans = ref.get(e, ("", ""))
            r = by_epoch.get(e)
            ours = ("", "", "", "") if r is None else (
                f"{r['seen_test_accuracy']:.2f}", f"{r['held_out']['4,3']['inferential']:.2f}",
                f"{r['held_out']['4,3']['symmetric']:.2f}", answers(r))
            a_seen = f"{a_seen:.2f}" if a_seen != "" else ""
            lines.append(f"| {e} | {a_seen} | {a_ans} | " + " | ".join(ours) + " |")
        lines.append("")
    return "\n".join(lines) if lines else "(no replication run found)\n"


def key_table(root: Path, n: int = 1000, seed: int = 123) -> str:
    """Seen pairs' accuracy of each finished run on fresh sequences whose keys come from the
    training split and from the test split (``n`` per pair each, balanced, generator ``seed``).
    The test split holds the keys x with x mod 9 equal to the key's position: a run that is
    right on fresh training-split keys and wrong on test-split keys has fitted which key values
    occur at which position rather than the shift alone."""
    import torch

    from core.runs import load_run
    from core.task import generate
    from core.train import predict
    lines = ["| run | seen pairs, training-split keys | seen pairs, test-split keys |", "| --- | --- | --- |"]
    for (gamma, s, _), folder in sorted(replication_runs(root).items()):
        if not (folder / "metrics.json").is_file():
            continue
        run = load_run(folder)
        task = run.config.task
        seen = [p for p in task.pairs if p not in task.held_out]
        acc = {}
        for split in ("train", "test"):
            b = generate(task, n, split, torch.Generator().manual_seed(seed), pairs=seen, balanced=True)
            with torch.no_grad():
                acc[split] = (predict(run.model.eval(), b.tokens) == b.target).float().mean().item()
        lines.append(f"| γ {gamma:g} seed {s} ({describe_variant(folder)}; `{folder.name}`) | {acc['train']:.3f} |"
                     f" {acc['test']:.3f} |")
    return "\n".join(lines)


def seed_table(root: Path, at: tuple[int, ...] = (3, 4, 5)) -> str:
    """One row per replication run (finished or in progress), γ by γ: seen and the most common
    (4,3) answers after epochs ``at``, and where the run stands (its last evaluated epoch, its
    verdict there by ``core.verdict.verdict``). The spread over seeds in one glance; the
    epoch-by-epoch tables are above it."""
    from core.verdict import verdict
    head = ("| γ | seed | run | " + " | ".join(f"epoch {e}: seen · (4,3) answers" for e in at)
            + " | last epoch: seen · (4,3) answers | verdict there |")
    lines = [head, "|" + " --- |" * (len(at) + 5)]
    for (gamma, seed, _), folder in sorted(replication_runs(root).items()):
        try:
            hist, status = history_of(folder)
        except (RunError, OSError, ValueError, KeyError) as e:
            lines.append(f"| {gamma:g} | {seed} | `{folder.name}`: unreadable ({e}) |" + " |" * (len(at) + 2))
            continue
        by_epoch = {r["epoch"]: r for r in hist if r["epoch"] > 0}
        if not by_epoch:
            continue
        cell = lambda r: "" if r is None else f"{r['seen_test_accuracy']:.2f} · {answers(r)}"  # noqa: E731
        last = by_epoch[max(by_epoch)]
        v = verdict(last["seen_test_accuracy"], last["held_out"]["4,3"])
        word = v["outcome"] if v["outcome"] == "not fitted" else (
            ("" if v["clear"] else "leaning ") + v["outcome"] + f" {100 * v['share']:.0f} %")
        state = status.split(":")[0]  # finished / in progress / stopped
        lines.append(f"| {gamma:g} | {seed} | `{folder.name}` ({describe_variant(folder)}, {state}) | "
                     + " | ".join(cell(by_epoch.get(e)) for e in at)
                     + f" | {last['epoch']}: {cell(last)} | {word} |")
    return "\n".join(lines)


def pair_table(a: Path, b: Path) -> str:
    """Two runs (finished or in progress) epoch by epoch: training loss, seen, (4,3) x−10 and the
    top answers, for the epochs both have. Used to set a run beside its rerun or continuation
    (the same seed resumed on another machine, docs/replication.md 2026-12-06)."""
    ha, sa = history_of(a)
    hb, sb = history_of(b)
    ea, eb = {r["epoch"]: r for r in ha}, {r["epoch"]: r for r in hb}

    def cell(r: dict | None) -> str:
        if r is None:
            return "| | | "
        loss = "" if r.get("train_loss") is None else f"{r['train_loss']:.4f}"
        return (f"| {loss} | {r['seen_test_accuracy']:.2f} / {r['held_out']['4,3']['inferential']:.2f} | "
                f"{answers(r, 3)} ")
    name = lambda f: f.relative_to(ROOT) if f.is_relative_to(ROOT) else f  # noqa: E731
    lines = [f"A = `{name(a)}` ({sa}); B = `{name(b)}` ({sb})", "",
             "| epoch | A: loss | A: seen / x−10 | A: top answers | B: loss | B: seen / x−10 | B: top answers |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in sorted((set(ea) | set(eb)) - {0}):
        lines.append(f"| {e} " + cell(ea.get(e)) + cell(eb.get(e)) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(ROOT / "pretrained"))
    p.add_argument("--write", action="store_true", help="rewrite the tables in docs/replication.md")
    p.add_argument("--keys", action="store_true", help="only: finished runs' seen-pair accuracy on"
                   " training-split against test-split keys (fresh sequences)")
    p.add_argument("--stash", metavar="RUN", help="only: copy RUN's checkpoint history into"
                   " docs/replication_histories/ (then the checkpoint may be deleted)")
    p.add_argument("--seeds", action="store_true", help="only: one row per run (epochs 3-5 and the last)")
    p.add_argument("--pair", nargs=2, metavar=("RUN_A", "RUN_B"), help="only: two runs (folders, finished"
                   " or with a checkpoint beside them) side by side, epoch by epoch")
    args = p.parse_args(argv)
    if args.stash:
        try:
            print(f"wrote {stash(Path(args.stash))}")
        except (FileNotFoundError, KeyError, OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.pair:
        print(pair_table(*(Path(x).resolve() for x in args.pair)))
        return 0
    if args.keys:
        print(key_table(Path(args.root)))
        return 0
    if args.seeds:
        print(seed_table(Path(args.root)))
        return 0
    text, losses, seeds = table(Path(args.root)), loss_table(Path(args.root)), seed_table(Path(args.root))
    print(seeds + "\n\n" + text + "\n" + losses)
    if args.write:
        write_block(ROOT / "docs" / "replication.md", "seeds", seeds)
        write_block(ROOT / "docs" / "replication.md", "trajectory", text)
        write_block(ROOT / "docs" / "replication.md", "losses", losses)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m core probe RUN [--json]``: the scalar summary of every mechanism view.

Prints ``core.probes.probe_summary`` for a saved run folder: as one JSON object with
``--json`` (keys documented in docs/probes.md), otherwise as a short readable report.
Registered into ``core.cli`` by ``register``; bad input raises ``ValueError`` / ``RunError``,
which ``core.cli.main`` turns into one ``error:`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from .cli import positive_int
from .probes import CONDENSATION_THRESHOLD, probe_summary, weight_label
from .runs import load_run


def cmd_probe(args: argparse.Namespace) -> int:
    if not -1 < args.threshold < 1:
        raise ValueError(f"--threshold must be in (-1, 1), got {args.threshold}")
    if args.threads:
        torch.set_num_threads(args.threads)
    run = load_run(args.run)
    summary = probe_summary(run.model, run.config.task, threshold=args.threshold,
                            history=run.metrics.get("history"), seed=args.seed)
    summary = {"run": str(run.path), "gamma": run.config.model.gamma, "n_layers": run.config.model.n_layers,
               **summary}
    if args.json:
        print(json.dumps(summary))
        return 0
    _print_report(summary)
    return 0


def _f(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}"


# the named edges of ``core.probes.flow_edges`` the report prints for every layer
_FLOW_EDGES = (("key→anchors", "key_to_anchors"), ("anchors→last", "anchors_to_last"), ("key→last", "key_to_last"))


def _print_report(s: dict[str, Any]) -> None:
    f = s["flow"]
    print(f"run {s['run']}  γ={s['gamma']:g}  layers={s['n_layers']}")
    print(f"information flow, sequence {' '.join(map(str, f['sequence']))} (key at {f['key_pos']}):")
    for layer in sorted(f["layers"], key=int):  # every layer, each once (1-based)
        e = f["layers"][layer]
        print("  " + "   ".join(f"layer {layer} {label} {_f(e[k])}" for label, k in _FLOW_EDGES))
    for p in f["top_paths"][:3]:
        print(f"  path {p['label']}: {p['weight']:.3f}")
    pr = s["prediction"]
    print(f"  prediction {pr['top5'][0][0]} (p={pr['top5'][0][1]:.2f}); inferential {pr['inferential_target']} "
          f"p={pr['p_inferential']:.2f}, symmetric {pr['symmetric_target']} p={pr['p_symmetric']:.2f}")
    a = s.get("answers_by_key_position")
    if a:
        def name(o: Any) -> str:
            return "no answer above half" if o is None else f"x{o:+d}"
        rules = "; ".join(f"{name(r['offset'])} at key positions {r['positions'][0]}–{r['positions'][-1]}"
                          if len(r["positions"]) > 1 else f"{name(r['offset'])} at key position {r['positions'][0]}"
                          for r in a["rules"])
        print(f"answers to ({a['pair'][0]},{a['pair'][1]}) by the key's position: {rules}")
    print(f"fused X_ao(1): symmetric-pair centroid distance ratio {_f(s['fused_symmetric_ratio'])}")
    print(f"same-output similarity (equal − unequal targets): {_f(s['same_output_similarity'])}; "
          f"single-anchor: {_f(s['single_anchor_similarity'])}")
    print(f"embedding order |Spearman| {_f(s['embedding_order'])}; top-2 eigenvalue share "
          f"{_f(s['embedding_top_eigen_share'])}")
    print(f"condensation at cos > {s['condensation_threshold']:g} (groups, share of neurons in groups):")
    for name, c in s["condensation"].items():
        print(f"  {weight_label(name):>12}: {c['n_groups']:3d} groups, {c['share_in_groups']:.2f}")
    if "n_snapshots" in s:
        print(f"training snapshots stored: {s['n_snapshots']}")


def register(subparsers: Any) -> None:  # what ArgumentParser.add_subparsers() returned
    """Add the ``probe`` subcommand to ``python -m core``."""
    p = subparsers.add_parser("probe", help="scalar summary of every mechanism view of a saved run")
    p.add_argument("run", help="run folder (config.json, weights.safetensors, metrics.json)")
    p.add_argument("--json", action="store_true", help="print one JSON object (keys: docs/probes.md)")
    p.add_argument("--threshold", type=float, default=CONDENSATION_THRESHOLD,
                   help="cosine similarity above which neurons count as condensed (default 0.7)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise items and sampled sequences")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (at least 1)")
    p.set_defaults(func=cmd_probe)

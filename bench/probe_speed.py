"""How fast are the mechanism views? Prints timings and ratios, asserts nothing.

    python bench/probe_speed.py [RUN ...]      (default: the committed runs in pretrained/)

Three measurements per view, for the runs given (two side by side when two or more):
1. ``core``: the probe computation alone, cold (what the first visit pays);
2. ``page cold`` / ``page warm``: a full AppTest rerun of the page on that view, first with
   empty Streamlit caches, then again with the caches filled (what a user pays when moving
   a control that does not change the data, or coming back to the tab). The target is
   warm ≤ 1 s for cpu-demo runs; t-SNE is timed separately (its first run is slow by design).
Also the cost of ``training_snapshot`` (target < 20 ms for d_model 64).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

torch.set_num_threads(1)

from core import probes  # noqa: E402
from core.runs import list_runs, load_run  # noqa: E402

VIEWS = ["Attention & flow", "Fused vectors", "Same-output similarity", "Condensation", "Embeddings", "Spectra",
         "Over training"]


def timed(fn, repeat: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def core_timings(path: str) -> None:
    run = load_run(path)
    m, task = run.model, run.config.task
    seq = probes.default_sequence(task)
    rows = {
        "attention & flow (1 sequence + 256 mean)": lambda: (probes.information_flow(
            probes.sequence_probe(m, task, seq)["attn"], 3), probes.mean_flow(m, task)),
        "fused vectors, 2000 sequences + PCA": lambda: probes.project_2d(
            probes.fused_representations(m, task, 2000)["X"], "pca"),
        "same-output + single-anchor similarity": lambda: (probes.same_output_similarity(m, task),
                                                           probes.single_anchor_similarity(m, task)),
        "condensation W_Q(1)": lambda: probes.condensation(m.weight("W_Q.0")),
        "condensation, every weight": lambda: [probes.condensation(m.weight(n)) for n in probes.weight_names(m)],
        "embeddings (PCA) + spectrum": lambda: probes.embedding_structure(m, task),
        "singular values, every layer": lambda: probes.singular_values(m),
        "probe_summary (the CLI)": lambda: probes.probe_summary(m, task),
    }
    print(f"\ncore, {Path(path).name} (d_model {m.cfg.d_model}):")
    for name, fn in rows.items():
        fn()  # warm imports
        print(f"  {name:42s} {timed(fn) * 1000:8.1f} ms")
    snap = timed(lambda: probes.training_snapshot(m, task), repeat=50)
    print(f"  {'training_snapshot':42s} {snap * 1000:8.2f} ms   ratio to the 20 ms budget {snap / 0.020:.2f}")
    X = probes.fused_representations(m, task, 2000)["X"]
    t = timed(lambda: probes.project_2d(X, "tsne"))
    print(f"  {'t-SNE of 2000 fused vectors (first visit)':42s} {t * 1000:8.1f} ms")


def page_timings(paths: list[str]) -> None:
    from streamlit.testing.v1 import AppTest
    import streamlit as st

    os.environ["ANCHOR_PRETRAINED_DIR"] = str(Path(paths[0]).parent)
    os.environ["ANCHOR_RUNS_DIR"] = str(Path(paths[-1]).parent)  # so a second run elsewhere is listed
    print(f"\npage ({' vs '.join(Path(p).name for p in paths[:2])}), seconds; warm target ≤ 1 s:")
    print(f"  {'view':28s} {'cold':>7s} {'warm':>7s} {'warm/1s':>8s}")
    for view in VIEWS:
        st.cache_data.clear()
        at = AppTest.from_file(str(ROOT / "pages" / "3_Inside_the_model.py"), default_timeout=600)
        at.session_state["inside_view"] = view
        at.session_state["inside_run_a"] = paths[0]
        if len(paths) > 1:
            at.session_state["inside_compare"] = True
            at.session_state["inside_run_b"] = paths[1]
        cold = timed(at.run)
        warm = timed(at.run)
        n = len(at.get("vega_lite_chart"))
        err = " (exception!)" if at.exception else f"  {n} charts"
        print(f"  {view:28s} {cold:7.2f} {warm:7.2f} {warm / 1.0:8.2f}{err}")


def main() -> None:
    paths = sys.argv[1:] or [str(p) for p in list_runs(ROOT / "pretrained")]
    if not paths:
        print("no runs: pass run folders or commit some under pretrained/")
        return
    for p in paths[:2]:
        core_timings(p)
    page_timings(paths)


if __name__ == "__main__":
    main()

"""Streamlit pieces of the Phase diagram page: choosing a diagram and a view, the cell
selection (chart click or select box), the selected cell's runs and result card, and the
'Recompute this cell' action, which queues one training job per run of the cell on the
shared job queue (``ui.jobs``): training never runs in the script thread.

Opening a cell picks (``ui.state.select_run``) the path of one of its run
folders; the Train and Inside-the-model pages read that key. "Open in Train" also pre-fills the
Train page's controls with that run's settings (``ui.run_controls.train_prefill``).
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.runs import RunError
from core.sweep import run_row

from . import phase_data, state, url_state
from .loaders import REPO, job_queue, load_run_cached, pretrained_dir, runs_dir, source_label

RUN_COLUMNS = ["seed", "lr", "weight_decay", "seen_test_accuracy", "inferential", "symmetric", "other",
               "outcome", "seconds", "run"]


def pick_table() -> tuple[str, pd.DataFrame, dict[str, Any]] | None:
    """Radio over the committed diagrams; a clear message (and the command) when there is none."""
    folder = pretrained_dir()
    names = phase_data.find_tables(folder)
    if not names:
        st.info(f"No committed phase diagram in {folder} yet. Make one (about 1–2 hours on two cores) with\n\n"
                f"`python -m core sweep --spec phase --preset cpu-demo --workers 2 --half --copy-to {_copy_dest()}`"
                "\n\nand the Appendix E diagram with `--spec appendix-e`. See docs/sweeps.md.")
        return None
    url_state.phase_table_from_url(names)  # ?diagram=, once per distinct value
    name = st.radio("Diagram", names, key="phase_table", horizontal=True, persist_state="session",
                    format_func=lambda n: f"{phase_data.KINDS[phase_data.kind_of(n)]} · {n.split('_', 1)[-1]}")
    try:
        df, meta = phase_data.load_table(folder, name)
    except (OSError, ValueError) as e:
        st.error(f"Could not read {name}.csv: {e}")
        return None
    return name, df, meta


def chart_key(i: int) -> str:
    """Widget key of the ``i``-th panel's heatmap (its click state lives under it)."""
    return f"phase_chart_{i}"


def apply_click(cell_df: pd.DataFrame) -> str | None:
    """Turn a new click on the chart (its state under the widget key) into the selected cell.

    Runs before the chart is drawn, so the chosen cell is outlined in the same rerun. A click
    only counts when it changed, so the select box can still move the choice afterwards.
    """
    ids = set(cell_df["cell"])
    i = 0
    while chart_key(i) in st.session_state:  # one heatmap per panel, each its own widget
        clicked = None
        try:
            points = st.session_state[chart_key(i)]["selection"]["cell"] or []
            clicked = points[0].get("cell") if points else None
        except (KeyError, TypeError, AttributeError, IndexError):
            pass
        last = f"_phase_last_click_{i}"
        if clicked and clicked != st.session_state.get(last) and clicked in ids:
            st.session_state["phase_cell"] = clicked
        st.session_state[last] = clicked
        i += 1
    if st.session_state.get("phase_cell") not in ids:
        st.session_state["phase_cell"] = None
    return st.session_state["phase_cell"]


def cell_select(cell_df: pd.DataFrame, axes: list[str | None]) -> str | None:
    """Select box over the cells, bound to the same state as chart clicks."""
    ids = list(dict.fromkeys(cell_df["cell"]))
    labels = dict(zip(cell_df["cell"], (phase_data.cell_label(r, axes) for _, r in cell_df.iterrows())))
    # persist_state: the chosen cell is still open after a visit to another page
    return st.selectbox("Open a cell (or click one in the chart)", [None, *ids], key="phase_cell",
                        persist_state="session",
                        format_func=lambda c: "choose a cell…" if c is None else labels.get(c, c))


def cell_panel(cell: str, df: pd.DataFrame, meta: dict[str, Any], large: bool) -> None:
    """The cell's runs, a run to open (sets ``selected_run``) and that run's result card."""
    folder = pretrained_dir()
    runs = df[df["cell"] == cell]
    cols = [c for c in RUN_COLUMNS if c in runs] + [c for c in meta["columns"]["panels"] if c in runs and c not in RUN_COLUMNS]
    st.dataframe(phase_data.cell_runs_table(runs, cols), hide_index=True, width="stretch")
    openable = [r for r in runs["run"].dropna() if r and (folder / r / "config.json").exists()]
    if not openable:
        st.caption("No weights were committed for this cell's runs (only for the first seed of each cell); "
                   "recompute it below to get them.")
        return
    run_rel = st.selectbox("Run to open", openable, key="phase_run", persist_state="session",
                           format_func=lambda r: source_label(str(folder / r), Path(r).name))
    path = str(folder / run_rel)
    state.select_run(path)
    try:
        run = load_run_cached(path)
    except RunError as e:
        st.error(f"Could not open this run: {e}")
        return
    from . import run_controls, run_report  # the Train page's controls and result card, reused as is
    spec = phase_data.spec_of(meta)
    prefill, differ = run_controls.train_prefill(run.config, spec.preset if spec is not None else None)
    c1, c2 = st.columns(2)
    if c1.button("Open in Train: its settings pre-filled", key="phase_open_train", icon=":material/arrow_forward:",
                 help="Sets the Train page's preset, γ, depth, seed, epochs and task to this run's, and opens "
                      "its result card there."):
        st.session_state.update(prefill)
        st.switch_page("pages/2_Train.py")
    c2.page_link("pages/3_Inside_the_model.py", label="Open in Inside the model", icon=":material/arrow_forward:")
    if differ:
        st.caption("Train's controls cannot set everything of this run; retrained from there it would differ in: "
                   + "; ".join(differ) + ".")
    with st.expander(f"Result card of {Path(path).name}", expanded=True):
        run_report.run_report(run)


def recompute_panel(name: str, cell: str, df: pd.DataFrame, meta: dict[str, Any]) -> None:
    """'Recompute this cell': one queued job per run of the cell, live progress, then the comparison."""
    spec = phase_data.spec_of(meta)
    if spec is None:
        st.caption("This table carries no sweep spec, so its cells cannot be recomputed here.")
        return
    points = [p for p in spec.points() if p.cell_id == cell]
    key = f"phase_jobs::{name}::{cell}"
    q = job_queue()
    jobs: list[tuple[str, str]] = st.session_state.get(key, [])
    active = any((j := q.get(jid)) is not None and j.active for _, jid in jobs)
    secs = df.loc[df["cell"] == cell, "seconds"].sum()
    c1, c2 = st.columns([1, 3])
    # Submitting in the click callback, before the rerun, disables the button in the same rerun.
    c1.button("Recompute this cell", key="phase_recompute", disabled=active or not points,
              on_click=_submit, args=(key, spec, points))
    c2.caption(f"Queues {len(points)} training jobs (about {secs / 60:.0f} min of training in the committed table)."
               " They run one after another in background processes and save into your runs folder; keep"
               " this page open while they run.")
    refused = st.session_state.pop(f"{key}::refused", None)
    if refused:
        st.error(refused)
    if jobs:
        _live(key, jobs, points, spec, df, active)


def _submit(key: str, spec: Any, points: list) -> None:
    q = job_queue()
    submitted: list[tuple[str, str]] = []
    try:
        with q.request(state.owner()):  # the cell's seeds count as one request against the per-session cap
            for p in points:
                submitted.append((p.run_id, q.submit(spec.config_for(p), spec.preset, state.owner(), runs_dir()).id))
    except ValueError as e:  # JobRefused, also from a ui.jobs reloaded after a file edit
        for _, jid in submitted:
            q.cancel(jid, "refused together with the rest of the cell")
        st.session_state[f"{key}::refused"] = str(e)
        submitted = []
    st.session_state[key] = submitted


def _live(key: str, jobs: list[tuple[str, str]], points: list, spec: Any, df: pd.DataFrame, drawn_active: bool) -> None:
    @st.fragment(run_every=1.0)
    def live() -> None:
        live_body(jobs, points, spec, df, drawn_active)

    live()


def live_body(jobs: list[tuple[str, str]], points: list, spec: Any, df: pd.DataFrame, drawn_active: bool) -> None:
    """Body of the cell's live fragment: progress and Cancel while the jobs run, then the
    comparison table. ``drawn_active``: whether they were running when the page was last drawn
    in full; when they have ended since, the whole page is redrawn (``st.rerun(scope="app")``,
    as the Train page's fragment does), so "Recompute this cell" is enabled again."""
    q = job_queue()
    snaps = [(rid, q.poll(jid)) for rid, jid in jobs]  # poll = heartbeat for the watchdog
    snaps = [(rid, j) for rid, j in snaps if j is not None]
    still_active = any(j.active for _, j in snaps)
    if drawn_active and not still_active:
        st.rerun(scope="app")
    if not snaps:
        return
    done = sum(j.progress for _, j in snaps) / len(snaps)
    states = ", ".join(f"{sum(1 for _, j in snaps if j.state == s)} {s}" for s in
                       ("done", "running", "queued", "cancelled", "failed") if any(j.state == s for _, j in snaps))
    st.progress(done, text=f"recomputing {len(snaps)} runs: {states}")
    if still_active:
        st.button("Cancel", key="phase_cancel", on_click=lambda: [q.cancel(jid) for _, jid in jobs])
        return
    by_id = {p.run_id: p for p in points}
    rows = []
    for rid, j in snaps:
        if j.state != "done" or not j.run_path:
            rows.append({"run": rid, "recomputed": j.state, "message": j.message})
            continue
        new = run_row(Path(j.run_path), spec, by_id[rid])
        old = df[df["run_id"] == rid]
        rows.append({"run": rid, "saved as": Path(j.run_path).name,
                     "seen (committed → now)": _pair(old, "seen_test_accuracy", new),
                     "inferential": _pair(old, "inferential", new), "symmetric": _pair(old, "symmetric", new),
                     "outcome now": new["outcome"], "seconds now": round(new["seconds"] or 0, 1)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _pair(old: pd.DataFrame, col: str, new: dict[str, Any]) -> str:
    before = f"{old[col].iloc[0]:.2f}" if len(old) else "–"
    return f"{before} → {new[col]:.2f}"


def _copy_dest() -> str:
    """The ``--copy-to`` folder that publishes into this app's pretrained folder: relative to the
    repository (where the commands run) when it lies inside it, else absolute."""
    folder = pretrained_dir().resolve()
    try:
        return f"{folder.relative_to(REPO.resolve()).as_posix()}/"
    except ValueError:
        return str(folder)


def whole_diagram_command(name: str, meta: dict[str, Any]) -> str:
    """The CLI command that recomputes the whole diagram exactly (same base config), resumably,
    and republishes it where this app reads it (``ui.loaders.pretrained_dir()``)."""
    folder = pretrained_dir().resolve()
    json_path = folder / f"{name}.json"
    try:
        json_path = json_path.relative_to(REPO.resolve())
    except ValueError:
        pass
    return " ".join(shlex.quote(a) for a in [
        "python", "-m", "core", "sweep", "--spec", str(json_path), "--out", f"sweeps/{name}", "--workers", "2",
        "--half", "--copy-to", _copy_dest()])

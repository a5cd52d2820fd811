"""A saved run's report: its config summary, verdict cards, loss and accuracy curves, per-pair
grid, held-out answer histogram and run-card export, and the picker that opens a saved run.

A metrics file or run folder that cannot be shown is an ``st.error``; nothing here changes disk."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from core.config import RunConfig, TaskConfig, pair_key, parse_pair
from core.reference import authors_log_for
from core.runs import Run, RunError
from core.task import pair_target
from core.verdict import verdict, verdict_line

from . import charts, downloads, palette, state
from .loaders import SOURCES, config_cached, load_run_cached, run_note, saved_runs, source_label, warn_bad_runs

def config_summary(cfg: RunConfig, preset: str | None = None) -> str:
    m, t = cfg.model, cfg.train
    held = ", ".join(f"({pair_key(p)})" for p in cfg.task.held_out) or "none"
    head = f"**{preset}** · " if preset else ""
    return (f"{head}γ = {m.gamma:g} · {m.n_layers} layer{'s' if m.n_layers != 1 else ''} · d_model {m.d_model} · seed {t.seed} · "
            f"{t.n_train:,} sequences × {t.epochs} epochs · held out {held} · ≈{cfg.total_flops:.1e} FLOP")


def curves(history: list[dict[str, Any]], task: TaskConfig, steps: list[dict[str, Any]] | None = None,
           epochs: float | None = None, downloads_as: str | None = None) -> None:
    """Loss and accuracy against epoch; ``epochs`` (the planned length) fixes a live chart's axis.
    Until the loss has two points (the first steps of a training) a sentence stands in for it.
    ``downloads_as``: a run's name, to put CSV / Vega-Lite / SVG buttons under each chart (a
    saved run's card; not the live curves, redrawn every few seconds)."""
    large = state.large_fonts()
    c1, c2 = st.columns(2)
    loss = charts.loss_frame(history, steps)
    if len(loss) >= 2:
        chart = charts.loss_chart(loss, large, epochs)
        c1.altair_chart(chart, width="stretch")
        if downloads_as:
            downloads.chart_buttons(chart, loss, f"loss_{downloads_as}", f"card_loss_{downloads_as}", where=c1)
    else:
        c1.info("**Training loss**: the curve appears after the first training steps.")
    acc = charts.accuracy_frame(history, task)
    chart = charts.accuracy_chart(acc, large, epochs)
    c2.altair_chart(chart, width="stretch")
    if downloads_as:
        downloads.chart_buttons(chart, acc, f"accuracy_{downloads_as}", f"card_acc_{downloads_as}", where=c2)


def authors_frame(cfg: RunConfig, history: list[dict[str, Any]]) -> pd.DataFrame | None:
    """This run's evaluations next to the authors' logged run of the same setting
    (``core.reference.authors_log_for``; docs/science.md §3), one row per epoch they logged up to
    this run's planned length; None when the authors logged no run of this setting.

    Columns: ``epoch``, ``authors: seen``, ``authors: (4,3) answers``, ``this run: seen``,
    ``this run: x−10``, ``this run: x−6``, ``this run: top answers`` (None, or "" for the answers,
    where this run has no evaluation at that epoch yet; the table shows "—")."""
    log = authors_log_for(cfg)
    if log is None:
        return None
    ours = {r.get("epoch"): r for r in history}
    rows = []
    for e in log:
        if e.epoch > cfg.train.epochs:
            continue
        r = ours.get(e.epoch)
        h = (r or {}).get("held_out", {}).get("4,3", {})
        offs = sorted(h.get("offsets", {}).items(), key=lambda kv: -kv[1])[:2]
        rows.append({"epoch": e.epoch, "authors: seen": e.seen, "authors: (4,3) answers": e.answers,
                     "this run: seen": r["seen_test_accuracy"] if r else None,
                     "this run: x−10": h.get("inferential"), "this run: x−6": h.get("symmetric"),
                     "this run: top answers": ", ".join(f"{charts.formula(int(o))} {v:.0%}" for o, v in offs)})
    return pd.DataFrame(rows)


def authors_comparison(cfg: RunConfig, history: list[dict[str, Any]], where: Any = None) -> None:
    """``authors_frame`` as a table with a sentence saying what differs; nothing for other runs."""
    frame = authors_frame(cfg, history)
    if frame is None:
        return
    where = where if where is not None else st
    vocab = f"{cfg.model.d_vocab} tokens" if cfg.model.d_vocab else "110 tokens (theirs: 201)"
    where.markdown(f"**Next to the authors' logged run** (γ {cfg.model.gamma:g}, the same task, width and schedule;"
                   f" this run: {vocab}, {cfg.train.precision}, seed {cfg.train.seed}; their seed 1 on their"
                   " generator). Their (4,3) answers are on training-split keys, this run's on both splits"
                   " (docs/science.md §3, docs/replication.md).")
    numbers = [c for c in frame.columns if c.endswith(("seen", "x−10", "x−6"))]
    # as text, "—" where this run has no evaluation at that epoch yet (st.dataframe prints "None"
    # for a missing number whatever the column format or a Styler's na_rep)
    shown = frame.assign(**{c: ["—" if pd.isna(v) else f"{v:.2f}" for v in frame[c]] for c in numbers})
    where.dataframe(shown, hide_index=True, width="stretch")


def verdict_metrics(task: TaskConfig, key: str, seen: float, h: dict[str, float]) -> list[tuple[str, str]]:
    """The card's ``(label, value)`` numbers, each label naming its split: seen pairs on the test
    split, the held-out pair on both splits (the grid below says the same). When the pair's two
    answers coincide (both (3,4) and (4,3) unseen, Appendix E) one number says so, not two."""
    p = parse_pair(key)
    shifts = {m: pair_target(task, 0, p, m) for m in ("inferential", "symmetric")}
    out = [(f"seen pairs, {charts.SEEN_SPLIT}", f"{seen:.0%}")]
    if charts.answers_coincide(task, p):
        # short enough for a metric label; the verdict line above says "x−10 either way: composition only"
        out.append((f"({key}) as {charts.formula(shifts['inferential'])}, {charts.HELD_SPLIT}", f"{h['inferential']:.0%}"))
    else:
        out += [(f"({key}) as {charts.formula(shifts[m])}: {m}, {charts.HELD_SPLIT}", f"{h[m]:.0%}")
                for m in ("inferential", "symmetric")]
    out.append((f"({key}) other answers, {charts.HELD_SPLIT}", f"{h['other']:.0%}"))
    return out


def verdict_text(task: TaskConfig, pair: str, seen: float, held: dict[str, Any]) -> str:
    """The verdict card's sentence for held-out ``pair`` ("4,3"): ``core.verdict.verdict_line``
    with the answer named — the target's formula for an inferential or symmetric verdict, and for
    "other" the most common other answer with its share ("other" alone hid x−16, (4,4)'s answer)."""
    p = parse_pair(pair)
    shifts = {m: pair_target(task, 0, p, m) for m in ("inferential", "symmetric")}
    v = verdict(seen, held)
    line = verdict_line(pair, v, charts.formula(shifts[v["outcome"]]) if v["outcome"] in shifts else None)
    if charts.answers_coincide(task, p) and v["outcome"] in shifts:
        line += f" ({charts.held_out_answers(task, p)})"  # never "x−10 or x−10"
    others = {o: x for o, x in held.get("offsets", {}).items() if int(o) not in shifts.values()}
    if v["outcome"] == "other" and others:
        top, share = max(others.items(), key=lambda kv: kv[1])
        line += f" (mostly {charts.formula(int(top))}, {share:.0%})"
    return line


def verdict_cards(task: TaskConfig, record: dict[str, Any]) -> None:
    """One card per held-out pair: the verdict sentence and the answer shares, each with its split."""
    seen = record["seen_test_accuracy"]
    if not record.get("held_out"):
        st.info(f"Seen-pair test accuracy {seen:.0%}; this run holds no pair out, so there is no verdict.")
    for k, h in record.get("held_out", {}).items():
        v = verdict(seen, h)
        line = verdict_text(task, k, seen, h)
        colour = palette.outcome_colour(v["outcome"])
        with st.container(border=True):
            st.html(f"<div style='border-left: 8px solid {colour}; padding-left: 12px; font-size: "
                    f"{'2.0' if state.large_fonts() else '1.4'}rem; font-weight: 600'>Verdict: {line}</div>")
            numbers = verdict_metrics(task, k, seen, h)
            n = len(numbers)
            c = st.columns(n) if not state.large_fonts() else st.columns(2) + st.columns(2)  # 2×2: labels fit
            for col, (label, value) in zip(c, numbers):
                col.metric(label, value)


def run_report(run: Run) -> None:
    """Verdict, curves, per-pair accuracy and the held-out answer histogram of a saved run.

    A metrics.json without the fields ``core.train.train`` records shows ``st.error``."""
    try:
        _run_report(run)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        st.error(f"The metrics of {run.name} are incomplete or from another format ({type(e).__name__}: {e});"
                 " the run cannot be shown. Nothing was changed on disk.")


def trained_line(metrics: dict[str, Any]) -> str:
    """`` · trained 4.7 h on cpu (Intel(R) Xeon(R) Processor; torch CPU capability AVX512)`` from a
    run's metrics (``seconds``, ``device``, ``processor`` where recorded), or "" without ``seconds``.
    The processor matters: bf16 runs are not bit-reproducible across machines (docs/replication.md)."""
    secs = metrics.get("seconds")
    if isinstance(secs, bool) or not isinstance(secs, (int, float)) or not math.isfinite(secs):
        return ""
    took = f"{secs:.0f} s" if secs < 120 else f"{secs / 60:.0f} min" if secs < 7200 else f"{secs / 3600:.1f} h"
    proc = metrics.get("processor")
    proc = f" ({proc[:80]})" if isinstance(proc, str) and proc.strip() else ""
    return f" · trained {took} on {str(metrics.get('device', '?'))[:32]}{proc}"


def _run_report(run: Run) -> None:
    cfg, history = run.config, run.metrics["history"]
    last = history[-1]
    st.caption(config_summary(cfg) + trained_line(run.metrics))
    verdict_cards(cfg.task, last)
    curves(history, cfg.task, downloads_as=run.name)
    authors_comparison(cfg, history)
    large = state.large_fonts()
    c1, c2 = st.columns(2) if not large else (st.container(), st.container())  # large: full width, nothing cut
    chart = charts.pair_accuracy_chart(last["per_pair"], cfg.task, large, held=last.get("held_out"))
    c1.altair_chart(chart, width="stretch")
    downloads.chart_buttons(chart, pd.DataFrame([{"pair": k, "accuracy": v} for k, v in last["per_pair"].items()]),
                            f"per_pair_{run.name}", f"card_pairs_{run.name}", where=c1)
    for k, h in last.get("held_out", {}).items():
        chart = charts.offsets_chart(h.get("offsets", {}), k, cfg.task, large, shares_of=h)
        c2.altair_chart(chart, width="stretch")
        frame = pd.DataFrame([{"answer": charts.formula(int(o)), "share": v, "counted as": "one of the 5 most common"}
                              for o, v in h.get("offsets", {}).items()]
                             + [{"answer": m, "share": h.get(m), "counted as": "mapping share"}
                                for m in ("inferential", "symmetric", "other")])
        downloads.chart_buttons(chart, frame, f"answers_{k.replace(',', '-')}_{run.name}", f"card_ans_{k}_{run.name}",
                                where=c2)
    downloads.run_card_export(run, f"card_{run.name}")


def _setting(cfg: RunConfig) -> dict[str, Any]:
    """``{"section.field": value}`` of a config, device aside (it does not change the setting)."""
    return {f"{sec}.{k}": v for sec, fields in cfg.to_dict().items() if isinstance(fields, dict)
            for k, v in fields.items() if f"{sec}.{k}" != "train.device"}


def _closest_setting(paths: list[str], chosen: RunConfig | None, current: str | None, most: int = 3) -> str | None:
    """The run folder of ``paths`` trained on the setting ``chosen`` (device aside); if none is,
    the one differing from it in the fewest config fields (at most ``most``; ``current`` wins a
    tie, then the earlier folder), or None. Under paper-replica controls in fp32 it opens the bf16
    run of that γ and seed, not the first committed run. Reads only each folder's config.json
    (cached by modification time); one that cannot be read is skipped."""
    if chosen is None:
        return None
    want = _setting(chosen)
    best: tuple[int, int, int] | None = None   # (fields differing, not the current run, order)
    for i, p in enumerate(paths):
        cfg = config_cached(p)
        if cfg is None:
            continue
        got = _setting(cfg)
        n = sum(got.get(k) != v for k, v in want.items())
        if n == 0:
            return p
        rank = (n, 0 if p == current else 1, i)
        if n <= most and (best is None or rank < best):
            best = rank
    return paths[best[2]] if best else None


def saved_run_picker(prefix: str, chosen: RunConfig | None = None) -> Run | None:
    """Select box over committed runs (pretrained/) and saved runs (runs/); loads the choice.

    Until the visitor picks one, it opens a run of the setting ``chosen`` above it (the Train
    page's controls) when one is saved, and follows the controls as they change; else the first
    run (the first committed run, a 3-layer run under 2-layer controls, was read as the result of
    those controls). A corrupt folder shows ``st.error`` and is left untouched on disk.
    """
    runs = saved_runs()
    warn_bad_runs()  # folders that cannot be opened: one warning (several: listed in an expander)
    if not runs:
        st.info("No saved runs yet: train one above, or with `python -m core train --preset cpu-demo`.")
        return None
    paths = [p for _, p in runs]
    key = f"{prefix}_run"
    request = st.session_state.pop(f"{prefix}_open_request", None)
    # A cell picked on the Phase diagram page (or elsewhere) opens here once.
    selected = state.selected_run()
    if selected and selected != st.session_state.get(f"{prefix}_applied_selected"):
        st.session_state[f"{prefix}_applied_selected"] = selected
        if request is None:
            request = str(selected)
    if request in paths:
        st.session_state[key] = request
    current, auto = st.session_state.get(key), f"{prefix}_run_auto"
    if current not in paths or current == st.session_state.get(auto):  # not picked by the visitor
        pick = _closest_setting(paths, chosen, current) or (current if current in paths else paths[0])
        st.session_state[key] = st.session_state[auto] = pick
    path = st.selectbox("Open a saved run", paths, key=key, format_func=source_label, persist_state="session",
                        help="committed: " + SOURCES["committed"] + "; saved: " + SOURCES["saved"])
    note = run_note(path)
    if note:
        st.info(note, icon=":material/info:")
    try:
        return load_run_cached(path)
    except RunError as e:
        st.error(f"Could not open this run: {e}. Nothing was changed on disk.")
        return None


def setting_difference(run_cfg: RunConfig, chosen: RunConfig) -> list[str]:
    """How a saved run's setting differs from the one chosen in the controls, in words
    ("γ 0.5 → 0.8", "3 layers → 2"); empty when they are the same setting (device aside). The Train
    page says so under the run, which a newcomer read as the result of the controls above it."""
    a, b = _setting(run_cfg), _setting(chosen)
    if a == b:
        return []
    out = []
    named = (("model", "gamma", "γ {}"), ("model", "n_layers", "{} layers"), ("model", "d_model", "d_model {}"),
             ("train", "seed", "seed {}"), ("train", "epochs", "{} epochs"), ("train", "n_train", "{:,} sequences"),
             ("train", "precision", "{}"))
    for sec, k, fmt in named:
        if a.get(f"{sec}.{k}") != b.get(f"{sec}.{k}"):
            out.append(f"{fmt.format(a.get(f'{sec}.{k}'))} (above: {fmt.format(b.get(f'{sec}.{k}'))})")
    return out or ["other settings (task or training details)"]

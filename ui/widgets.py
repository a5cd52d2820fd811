"""Widgets and panels shared by the pages.

State shared between pages lives under the permanent session keys of ``ui.state``
(``large_fonts``, ``task_settings``, …); the widgets that edit it use page-namespaced keys
(``<prefix>_...``) that are seeded from the permanent key when absent and copied back after each run, so a change on
one page shows on the next even though Streamlit forgets widget state on a page switch.
Every ``ValueError`` from ``core`` is shown with ``st.error``; no function here lets one escape.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from core.config import RunConfig, TaskConfig, pair_key, parse_pair
from core.presets import DESCRIPTIONS, PRESETS, get_preset
from core.runs import Run, RunError
from core.task import pair_target
from core.verdict import verdict, verdict_line

from . import charts, downloads, glossary, palette, state, url_state
from .loaders import (SOURCES, job_queue, load_run_cached, run_note, runs_dir, saved_runs, source_label,
                      warn_bad_runs)

DEFAULT_TASK = TaskConfig()
ANCHORS = DEFAULT_TASK.anchors
PAIR_KEYS = [pair_key(p) for p in DEFAULT_TASK.pairs]
NO_OVERRIDE = "none"


def pair_label(key: str) -> str:
    return f"({key})"


# -- lecturer mode ----------------------------------------------------------------------------
def _large_fonts_toggled(widget_key: str) -> None:
    state.set_large_fonts(st.session_state[widget_key])


@st.fragment(run_every=5.0)  # a heartbeat every 5 s is plenty against the 60 s watchdog, and cheap
def _sidebar_jobs() -> None:
    """This session's background trainings, on every page; polling it is their heartbeat, so
    they keep running while the user reads another page and stop when the tab is closed."""
    jobs = [j for j in job_queue().touch_owner(state.owner()) if j.active or j.finished and time.time() - j.finished < 30]
    for j in jobs:
        label = {"queued": "waiting", "cancelling": "stopping"}.get(j.state, j.state)
        st.progress(j.progress, text=f"Training {j.name}: {label}")


# Presenter mode: large fonts, the sidebar collapsed, a compact page that fits a 1280×720
# projector, and on the lesson one figure per screen. ``?presenter=1`` in a link turns it on,
# ``?presenter=0`` off; any other value is ignored.
PRESENTER_PARAM = "presenter"


def presenter_from_url() -> bool:
    """Apply ``?presenter=1`` / ``?presenter=0`` once per distinct value (so the sidebar toggle
    can still change it), then return ``state.presenter()``. Called by app.py before the page runs."""
    raw = st.query_params.get(PRESENTER_PARAM)
    if raw is not None and raw != st.session_state.get("_presenter_param"):
        st.session_state["_presenter_param"] = raw
        if raw in ("0", "1"):
            state.set_presenter(raw == "1")
    return state.presenter()


def _presenter_toggled(widget_key: str) -> None:
    on = bool(st.session_state[widget_key])
    state.set_presenter(on)
    st.session_state["_presenter_param"] = "1" if on else "0"
    st.query_params[PRESENTER_PARAM] = "1" if on else "0"


# CSS of the two projector modes. Large fonts: every text ≥ 20 px. Presenter: also a compact
# top margin and title, so a page's first screen holds its controls at 1280×720.
LARGE_CSS = ("<style>[data-testid='stMarkdownContainer'] p, [data-testid='stMarkdownContainer'] li,"
             " [data-testid='stCaptionContainer'] p, [data-testid='stWidgetLabel'] p, table td, table th"
             " {font-size: 1.3rem !important; line-height: 1.5}"
             " [data-testid='stMetricValue'] [data-testid='stMarkdownContainer'] p {font-size: 3rem !important;}"
             " [data-testid='stMetricLabel'], [data-testid='stMetricLabel'] * {white-space: normal !important;"
             " overflow: visible !important; text-overflow: clip !important; height: auto !important}</style>")
PRESENTER_CSS = ("<style>[data-testid='stMainBlockContainer'] {padding-top: 3.5rem !important;"
                 " padding-bottom: 1rem !important}"
                 " [data-testid='stMainBlockContainer'] h1 {font-size: 2.1rem !important; padding-top: 0.2rem}"
                 " [data-testid='stMainBlockContainer'] h2 {font-size: 1.8rem !important; padding-top: 0.2rem}"
                 " button p, [data-testid='stMarkdownContainer'] code, input, [data-baseweb='select'] div"
                 " {font-size: 1.25rem !important}</style>")


APP_TITLE = "Reasoning or memorizing? Initialization and composite functions"
ROOT = Path(__file__).resolve().parents[1]


def page_title(script: Path) -> str:
    """A page's title from its file name, as Streamlit's ``pages/`` convention reads it:
    ``pages/2_Train.py`` -> "Train", ``pages/3_Inside_the_model.py`` -> "Inside the model"."""
    stem = script.stem.split("_", 1)[1] if script.stem.split("_", 1)[0].isdigit() and "_" in script.stem \
        else script.stem
    return stem.replace("_", " ")


def _page_setup() -> None:
    """Page config and the navigation menu, the same on every page.

    The app follows Streamlit's ``pages/`` directory convention: ``app.py`` is the home page
    (the Lesson) and each ``pages/N_Name.py`` a page at ``/Name``, so a deep link on a fresh
    server opens its page directly. Streamlit's own menu would title the home page "app", so
    ``.streamlit/config.toml`` hides it (``client.showSidebarNavigation = false``) and this menu
    of ``st.page_link`` replaces it (Streamlit's documented way to build a custom menu).
    """
    st.set_page_config(page_title=APP_TITLE, layout="wide",
                       initial_sidebar_state="collapsed" if presenter_from_url() else "auto")
    with st.sidebar:
        try:
            st.page_link("app.py", label="Lesson")
            for script in sorted((ROOT / "pages").glob("*.py"), key=lambda p: p.name):
                st.page_link(f"pages/{script.name}", label=page_title(script))
        except StreamlitPageNotFoundError:  # a page script run on its own (a test): no menu to show
            pass


def sidebar() -> bool:
    """The sidebar every page shows: the lecturer-mode toggle. Returns ``state.large_fonts()``.

    Call it first on every page: it also sets the page config and the navigation menu
    (``_page_setup``) and, while this session has background trainings, shows them in the
    sidebar with a polling fragment that
    is their heartbeat, so they keep running while the user reads another page.
    """
    _page_setup()
    wkey = "_large_fonts_toggle"
    st.session_state[wkey] = state.large_fonts()
    st.sidebar.toggle("Large fonts (projector)", key=wkey, on_change=_large_fonts_toggled, args=(wkey,),
                      help="Bigger chart and text fonts for teaching from a projector.")
    pkey = "_presenter_toggle"
    st.session_state[pkey] = state.presenter()
    st.sidebar.toggle("Presenter mode", key=pkey, on_change=_presenter_toggled, args=(pkey,),
                      help="For a projector (1280×720): large fonts, the sidebar folded away, and on the Lesson "
                           "one figure per screen with ← / → for previous and next. A link with ?presenter=1 "
                           "opens in it.")
    q = job_queue()
    if any(j.active for j in q.touch_owner(state.owner())):
        with st.sidebar:
            _sidebar_jobs()
    glossary.sidebar_glossary()
    if state.large_fonts():
        st.html(LARGE_CSS)
    if state.presenter():
        st.html(PRESENTER_CSS)
    return state.large_fonts()


# -- task editor (shared by the puzzle and train pages) ----------------------------------------
def _default_task_state() -> dict[str, Any]:
    ovr = DEFAULT_TASK.overrides[0]
    return {"ops": dict(DEFAULT_TASK.operations), "held_out": [pair_key(p) for p in DEFAULT_TASK.held_out],
            "override_pair": pair_key(ovr[:2]), "override_shift": ovr[2]}


def _task_state() -> dict[str, Any]:
    if state.task_settings() is None:
        state.set_task_settings(_default_task_state())
    return state.task_settings()


def _task_widget_values(settings: dict[str, Any]) -> dict[str, Any]:
    values = {f"op_{a}": settings["ops"][a] for a in ANCHORS}
    values.update(held=list(settings["held_out"]), ovr_pair=settings["override_pair"], ovr_shift=settings["override_shift"])
    return values


def _reset_task(prefix: str) -> None:
    state.set_task_settings(_default_task_state())
    for name, value in _task_widget_values(state.task_settings()).items():
        st.session_state[f"{prefix}_{name}"] = value


def task_from_state(settings: dict[str, Any]) -> TaskConfig:
    """Build the ``TaskConfig`` the editor describes. Raises ValueError (core's message)."""
    overrides = []
    if settings["override_pair"] != NO_OVERRIDE:
        a, b = parse_pair(settings["override_pair"])
        overrides.append((a, b, int(settings["override_shift"])))
    return TaskConfig(operations=tuple((a, int(settings["ops"][a])) for a in ANCHORS),
                      held_out=tuple(parse_pair(k) for k in settings["held_out"]), overrides=tuple(overrides))


def task_editor(prefix: str) -> TaskConfig | None:
    """Edit the anchors' operations, the held-out pairs and the overridden pair.

    Returns the task, or None after showing core's validation message with ``st.error``.
    """
    settings = _task_state()
    for name, value in _task_widget_values(settings).items():
        st.session_state.setdefault(f"{prefix}_{name}", value)
    cols = st.columns(len(ANCHORS))
    for col, a in zip(cols, ANCHORS):
        col.number_input(f"anchor {a}: x +", min_value=-99, max_value=99, step=1, key=f"{prefix}_op_{a}",
                         help=f"single-anchor function g(x; {a}) = x + this shift\n\n" + glossary.tip("anchor"))
    c1, c2, c3 = st.columns([2, 1, 1])
    c1.multiselect("Held-out (unseen) pairs", PAIR_KEYS, key=f"{prefix}_held", format_func=pair_label,
                   help="never shown in training; the model's answers on them are the experiment. Hold out both "
                        "(3,4) and (4,3) and choose no overridden pair for Appendix E's variant.\n\n"
                        + glossary.tip("inferential", "symmetric", "both unseen"))
    c2.selectbox("Overridden pair", [NO_OVERRIDE] + PAIR_KEYS, key=f"{prefix}_ovr_pair",
                 format_func=lambda k: k if k == NO_OVERRIDE else pair_label(k))
    c3.number_input("its rule: x +", min_value=-99, max_value=99, step=1, key=f"{prefix}_ovr_shift",
                    disabled=st.session_state[f"{prefix}_ovr_pair"] == NO_OVERRIDE)
    st.button("Restore the paper's task", key=f"{prefix}_reset", on_click=_reset_task, args=(prefix,))
    settings["ops"] = {a: int(st.session_state[f"{prefix}_op_{a}"]) for a in ANCHORS}
    settings["held_out"] = list(st.session_state[f"{prefix}_held"])
    settings["override_pair"] = st.session_state[f"{prefix}_ovr_pair"]
    settings["override_shift"] = int(st.session_state[f"{prefix}_ovr_shift"])
    try:
        task = task_from_state(settings)
    except ValueError as e:
        st.error(f"These task settings are impossible: {e}")
        return None
    if not task.held_out:
        st.warning("No pair is held out, so nothing tests generalization to an unseen pair.")
    for line in held_out_notes(task):
        (st.info if line.startswith("Both") else st.warning)(line)
    return task


def held_out_notes(task: TaskConfig) -> list[str]:
    """Sentences on held-out pairs whose two candidate answers coincide. With the mirror unseen
    too (Appendix E's both-unseen variant), one sentence per mirror couple says what the variant
    tests (composition only); a pair whose trained mirror has the same value cannot tell reasoning
    from memorizing, and the sentence says so."""
    out, done = [], set()
    for p in task.held_out:
        if not charts.answers_coincide(task, p) or p in done:
            continue
        ans = charts.formula(pair_target(task, 0, p, "inferential"))
        if charts.mirror_unseen(task, p):
            q = (p[1], p[0])
            done.add(q)
            out.append(f"Both ({pair_key(p)}) and ({pair_key(q)}) are unseen (Appendix E's variant): no pair teaches a "
                       f"rule to copy, so ({pair_key(p)}) is {ans} either way — composition only, as its mirror's is. "
                       "Inferential accuracy on both says whether the single steps were learned.")
        else:
            out.append(f"For ({pair_key(p)}) the inferential and symmetric answers coincide ({ans} either way): "
                       "this task cannot tell reasoning from memorizing on that pair.")
    return out


# -- run configuration -------------------------------------------------------------------------
def _preset_changed(prefix: str) -> None:
    base = get_preset(st.session_state[f"{prefix}_preset"])
    st.session_state[f"{prefix}_depth"] = base.model.n_layers
    st.session_state[f"{prefix}_epochs"] = base.train.epochs


def run_controls(prefix: str) -> tuple[str, RunConfig | None]:
    """Preset, γ, depth, seed, epochs and the task. Returns (preset, config or None on error)."""
    names = list(PRESETS)
    st.session_state.setdefault(f"{prefix}_preset", "cpu-demo" if "cpu-demo" in names else names[0])
    base = get_preset(st.session_state[f"{prefix}_preset"])
    st.session_state.setdefault(f"{prefix}_depth", base.model.n_layers)
    st.session_state.setdefault(f"{prefix}_epochs", base.train.epochs)
    st.session_state.setdefault(f"{prefix}_gamma", 0.5)
    st.session_state.setdefault(f"{prefix}_seed", 0)
    c1, c2, c3, c4, c5 = st.columns([2, 3, 2, 1, 1])
    keep = {"persist_state": "session"}  # settings survive a visit to another page
    large = state.large_fonts()  # large fonts: the preset's description as help, or it pushes Train below the fold
    preset = c1.selectbox("Preset", names, key=f"{prefix}_preset", on_change=_preset_changed, args=(prefix,),
                          help="\n\n".join(f"**{n}**: {DESCRIPTIONS.get(n, '')}" for n in names) if large else None,
                          **keep)
    if not large:
        c1.caption(DESCRIPTIONS.get(preset, ""))
    # The bounds are url_state's, so a link (?gamma=…&epochs=…) can never go beyond them.
    gamma = c2.slider("Initialization rate γ (weight std = d_in^(−γ))", *url_state.GAMMA[:2], step=url_state.GAMMA[2],
                      key=f"{prefix}_gamma", help=glossary.tip("gamma"), **keep)
    depth = c3.slider("Depth (layers)", *url_state.DEPTH, key=f"{prefix}_depth", **keep)
    seed = c4.number_input("Seed", *url_state.SEED, step=1, key=f"{prefix}_seed", **keep)
    epochs = c5.number_input("Epochs", *url_state.EPOCHS, step=1, key=f"{prefix}_epochs", **keep)
    with st.expander("Task: anchor operations, held-out and overridden pairs"):
        task = task_editor(prefix)
    if task is None:
        st.error("The task settings are impossible, so nothing can be trained: open 'Task' above for the reason.")
        return preset, None
    base = get_preset(preset)
    overrides = {"model.gamma": float(gamma), "model.n_layers": int(depth), "train.seed": int(seed),
                 "train.epochs": int(epochs), "task.operations": task.operations, "task.held_out": task.held_out,
                 "task.overrides": task.overrides}
    try:
        cfg = base.replace(**overrides).with_epochs_scaled(base, overrides)  # same schedule rule as the CLI
    except ValueError as e:
        st.error(f"This configuration is impossible: {e}")
        return preset, None
    return preset, cfg


_CONTROLLED = {("model", "gamma"), ("model", "n_layers"), ("train", "seed"), ("train", "epochs"),
               ("train", "warmup_epochs"), ("train", "decay_epochs"), ("train", "device"),
               ("task", "operations"), ("task", "held_out"), ("task", "overrides")}


def _uncontrolled(cfg: RunConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    return {f"{g}.{k}": v for g in ("task", "model", "train") for k, v in d[g].items() if (g, k) not in _CONTROLLED}


def train_prefill(cfg: RunConfig, preset: str | None = None, prefix: str = "train") -> tuple[dict[str, Any], list[str]]:
    """The Train page's control values that retrain ``cfg`` (the session-state keys of
    ``run_controls`` and ``task_editor`` under ``prefix``), and the settings they cannot reach.

    The preset is the one whose settings outside the controls (width, data, learning rate, …)
    equal ``cfg``'s, else ``preset`` (e.g. a sweep's base), else cpu-demo; every setting of ``cfg``
    that the chosen preset does not share is named in the returned list, so the page can say
    that the retrained run will differ there. γ is snapped to the slider's step and bounds.
    """
    want = _uncontrolled(cfg)
    order = ([preset] if preset in PRESETS else []) + list(PRESETS)
    match = next((n for n in order if _uncontrolled(get_preset(n)) == want), None)
    name = match or (preset if preset in PRESETS else ("cpu-demo" if "cpu-demo" in PRESETS else next(iter(PRESETS))))
    base = _uncontrolled(get_preset(name))
    differ = [f"{k} = {want[k]} (preset {name}: {base.get(k)})" for k in want if want[k] != base.get(k)]
    lo, hi, step = url_state.GAMMA
    gamma = min(max(round(lo + round((cfg.model.gamma - lo) / step) * step, 10), lo), hi)
    if abs(gamma - cfg.model.gamma) > 1e-9:
        differ.append(f"model.gamma = {cfg.model.gamma:g} (the slider's nearest step: {gamma:g})")
    ops = {a: int(cfg.task.shift.get(a, 0)) for a in ANCHORS}
    ovr = cfg.task.overrides[0] if cfg.task.overrides else None
    task_state = {"ops": ops, "held_out": [pair_key(p) for p in cfg.task.held_out if pair_key(p) in PAIR_KEYS],
                  "override_pair": pair_key(ovr[:2]) if ovr else NO_OVERRIDE,
                  "override_shift": int(ovr[2]) if ovr else DEFAULT_TASK.overrides[0][2]}
    values: dict[str, Any] = {f"{prefix}_preset": name, f"{prefix}_gamma": float(gamma),
                              f"{prefix}_depth": int(cfg.model.n_layers), f"{prefix}_seed": int(cfg.train.seed),
                              f"{prefix}_epochs": int(cfg.train.epochs), state.TASK_SETTINGS: task_state}
    values.update({f"{prefix}_{k}": v for k, v in _task_widget_values(task_state).items()})
    return values, differ


def config_summary(cfg: RunConfig, preset: str | None = None) -> str:
    m, t = cfg.model, cfg.train
    held = ", ".join(f"({pair_key(p)})" for p in cfg.task.held_out) or "none"
    head = f"**{preset}** · " if preset else ""
    return (f"{head}γ = {m.gamma:g} · {m.n_layers} layers · d_model {m.d_model} · seed {t.seed} · "
            f"{t.n_train:,} sequences × {t.epochs} epochs · held out {held} · ≈{cfg.total_flops:.1e} FLOP")


# -- training jobs ---------------------------------------------------------------------------------
def _submit_job(prefix: str, cfg: RunConfig | None, preset: str) -> None:
    """Train's click callback: queue the job, or keep the refusal for the page to show."""
    if cfg is None:
        return
    try:
        st.session_state[f"{prefix}_job"] = job_queue().submit(cfg, preset, state.owner(), runs_dir()).id
    except ValueError as e:  # JobRefused, also from a ui.jobs reloaded after a file edit
        st.session_state[f"{prefix}_refused"] = str(e)


def job_panel(prefix: str, cfg: RunConfig | None, preset: str) -> None:
    """Train button, admission errors, queue position, live progress and Cancel.

    The queue allows one queued-or-running training per session (``JobQueue.max_per_session``):
    the button is disabled while this session has one, and a second click that arrives before
    the page is redrawn (a double-click) gets the queue's refusal as a message, next to the job
    that is running. Every refusal is shown with ``st.error``, never raised."""
    q = job_queue()
    key = f"{prefix}_job"
    job = q.get(st.session_state[key]) if st.session_state.get(key) else None
    mine = [j for j in q.touch_owner(state.owner()) if j.active]
    if (job is None or not job.active) and mine:
        job = mine[-1]  # submitted by a click whose redraw was cut short
        st.session_state[key] = job.id
    c1, c2 = st.columns([1, 4])
    # Submitted in the click callback, before the rerun: the button is disabled in that rerun.
    c1.button("Train", type="primary", key=f"{prefix}_start", disabled=cfg is None or bool(mine),
              on_click=_submit_job, args=(prefix, cfg, preset))
    refused = st.session_state.pop(f"{prefix}_refused", None)
    with c2:
        _queue_caption()
    if refused:
        st.error(refused)
        if job is None or not job.active:
            return  # the refusal replaces the previous job's status
    if job is None:
        return
    if job.active:
        _live_job(prefix, job.id)
    elif job.state == "done":
        st.success(f"Finished and saved as {Path(job.run_path or '').name}: its verdict is shown below.")
        st.caption(f"Trained by the command `{job.command}`")
    elif job.state == "cancelled":
        st.warning(f"Training stopped ({job.message}). Nothing was saved.")
    else:
        st.error(f"Training failed: {job.message}")


def queue_text(counts: tuple[int, int]) -> str:
    q = job_queue()
    running, waiting = counts
    return (f"Server queue: {running} training, {waiting} waiting; at most {q.max_jobs} at once and"
            f" {q.max_queue} waiting, one per visitor; each job up to ≈{q.max_flops:.1e} FLOP,"
            f" {q.max_steps:,} steps and {q.max_job_seconds / 60:.0f} min. Training runs in a background process.")


QUEUE_CAPTION_EVERY_S = 5.0


def _queue_caption() -> None:
    """The server queue's caption, refreshed every ``QUEUE_CAPTION_EVERY_S`` seconds by a
    fragment that redraws the caption alone: with many sessions on the page it must stay cheap
    (no page redraw, no chart). This session's own job redraws the page itself when it ends
    (``_live_job``), and a job holds its slot until its process has exited, so the page
    redrawn then never shows the finished job as still training."""

    @st.fragment(run_every=QUEUE_CAPTION_EVERY_S)
    def caption() -> None:
        queue_caption_body()

    caption()


def queue_caption_body() -> None:
    """Body of the caption fragment: the queue's counts now."""
    st.caption(queue_text(job_queue().counts()))


LIVE_CURVES_EVERY_S = 3.0


def _live_job(prefix: str, job_id: str) -> None:
    """Progress bar and Cancel, refreshed every second, and the live curves, every
    ``LIVE_CURVES_EVERY_S`` seconds (drawing two charts is the expensive part of a refresh)."""
    q = job_queue()

    @st.fragment(run_every=1.0)
    def live() -> None:
        job = q.poll(job_id)  # heartbeat: the watchdog cancels jobs nobody polls
        if job is None or not job.active:
            if job is not None and job.state == "done":
                st.session_state[f"{prefix}_open_request"] = job.run_path
            st.rerun()
        if job.state == "queued":
            st.info(f"Waiting in the queue: position {q.position(job_id) or 1}. It starts by itself when a "
                    "training slot frees up; keep this tab open.")
        else:
            t = job.config.train
            epoch = job.steps[-1]["epoch"] if job.steps else (job.records[-1]["epoch"] if job.records else 0)
            text = f"epoch {epoch:.1f} of {t.epochs}"
            if job.steps:
                text += f" · loss {job.steps[-1]['loss']:.3f}"
            if job.started:
                text += f" · {time.time() - job.started:.0f} s"
            if job.state == "cancelling":
                text = "stopping… " + text
            st.progress(job.progress, text=text)
        st.button("Cancel", key=f"{prefix}_cancel", on_click=q.cancel, args=(job_id,),
                  disabled=job.state == "cancelling")

    @st.fragment(run_every=LIVE_CURVES_EVERY_S)
    def live_curves() -> None:
        job = q.get(job_id)
        if job is not None and job.active and job.records:
            curves(job.records, job.config.task, job.steps, epochs=job.config.train.epochs)

    live()
    live_curves()


# -- results ---------------------------------------------------------------------------------------
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


def verdict_metrics(task: TaskConfig, key: str, seen: float, h: dict[str, float]) -> list[tuple[str, str]]:
    """The card's ``(label, value)`` numbers, each label naming its split: seen pairs on the test
    split, the held-out pair on both splits (the grid below says the same). When the pair's two
    answers coincide (both (3,4) and (4,3) unseen, Appendix E) one number says so, not two."""
    p = parse_pair(key)
    shifts = {m: pair_target(task, 0, p, m) for m in ("inferential", "symmetric")}
    out = [(f"seen pairs, {charts.SEEN_SPLIT}", f"{seen:.0%}")]
    if charts.answers_coincide(task, p):
        # short enough for a metric label; the verdict line above says "x-10 either way: composition only"
        out.append((f"({key}) as {charts.formula(shifts['inferential'])}, {charts.HELD_SPLIT}", f"{h['inferential']:.0%}"))
    else:
        out += [(f"({key}) as {charts.formula(shifts[m])}: {m}, {charts.HELD_SPLIT}", f"{h[m]:.0%}")
                for m in ("inferential", "symmetric")]
    out.append((f"({key}) other answers, {charts.HELD_SPLIT}", f"{h['other']:.0%}"))
    return out


def verdict_cards(task: TaskConfig, record: dict[str, Any]) -> None:
    """One card per held-out pair: the verdict sentence and the answer shares, each with its split."""
    seen = record["seen_test_accuracy"]
    if not record.get("held_out"):
        st.info(f"Seen-pair test accuracy {seen:.0%}; this run holds no pair out, so there is no verdict.")
    for k, h in record.get("held_out", {}).items():
        p = parse_pair(k)
        shifts = {m: pair_target(task, 0, p, m) for m in ("inferential", "symmetric")}
        v = verdict(seen, h)
        line = verdict_line(k, v, charts.formula(shifts[v["outcome"]]) if v["outcome"] in shifts else None)
        if charts.answers_coincide(task, p) and v["outcome"] in shifts:
            line += f" ({charts.held_out_answers(task, p)})"  # never "x-10 or x-10"
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


def _run_report(run: Run) -> None:
    cfg, history = run.config, run.metrics["history"]
    last = history[-1]
    secs = run.metrics.get("seconds")
    st.caption(config_summary(cfg) + (f" · trained {secs:.0f} s on {run.metrics.get('device', '?')}"
                                      if isinstance(secs, (int, float)) else ""))
    verdict_cards(cfg.task, last)
    curves(history, cfg.task, downloads_as=run.name)
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


def saved_run_picker(prefix: str) -> Run | None:
    """Select box over committed runs (pretrained/) and saved runs (runs/); loads the choice.

    A corrupt folder shows ``st.error`` and is left untouched on disk.
    """
    runs = saved_runs()
    warn_bad_runs()  # one line per folder that cannot be opened; the others stay listed
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
    if st.session_state.get(key) not in paths:
        st.session_state[key] = paths[0]
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


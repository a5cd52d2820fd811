"""The "Replay training" view of Inside the model: play a run's stored history back.

One run or two side by side, on one timeline (``ui.replay_data``): first / step back / play or
pause / step forward / last, a speed and an epoch slider. At the point shown: the held-out
pair's answers (bars shared by both runs, so nothing jumps while playing), the loss and
accuracy curves up to that point, the information flow of Fig. 3 on its fixed sequence when the
run stored it, and the probe numbers over training (route strength, W_Q(1) condensation, the
top embedding eigenvalues: [INIT] Fig. 3, 5, 12b; docs/science.md §5). Nothing is trained or
recomputed. The player is an ``st.fragment`` that reruns alone, and only while playing.
"""
from __future__ import annotations

import time
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from core import probes
from core.config import parse_pair
from core.runs import Run
from core.task import pair_target

from . import chart_style, probe_charts, replay_data
from .charts import MAPPING_COLOURS, SEEN, epoch_x, formula
from .loaders import stamp

KIND_COLOURS = {"inferential": MAPPING_COLOURS["inferential"], "symmetric": MAPPING_COLOURS["symmetric"],
                "other": "#999999", "anything else": "#DDDDDD"}
NO_ATTENTION = ("No attention map is stored for this run: it was trained before the trainer recorded one at each "
                "evaluation. Its answers, curves and the other probe numbers replay from its history; train it again "
                "to replay its attention too.")


# -- charts (pure: frames in, Altair out) ------------------------------------------------------------
def _height(large: bool) -> int:
    return 260 if large else 200


def answers_chart(bars: list[dict[str, Any]], pair: str, epoch: float, large: bool = False) -> tuple[Any, pd.DataFrame]:
    """The held-out pair's answers at one point: one bar per shared category (x − 10, x − 6, …),
    then "anything else"; y is the share of keys, always 0..100 %."""
    rows = [{"answer": "anything else" if b["offset"] is None else formula(b["offset"]), "share": b["share"],
             "kind": b["kind"], "order": 10_000 if b["offset"] is None else b["offset"]} for b in bars]
    frame = pd.DataFrame(rows, columns=["answer", "share", "kind", "order"])
    kinds = list(KIND_COLOURS)
    chart = alt.Chart(frame, title=f"Answers for ({pair}) at epoch {epoch:g}").mark_bar().encode(
        x=alt.X("answer:N", sort=alt.SortField("order"), title="answer (key x plus offset)",
                # every answer labelled: at labelAngle 0 Vega dropped the colliding ones, x−10 and x−6 among them
                axis=alt.Axis(labelAngle=-45, labelOverlap=False, labelLimit=0)),
        y=alt.Y("share:Q", title="share of keys", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("kind:N", scale=alt.Scale(domain=kinds, range=[KIND_COLOURS[k] for k in kinds]), title=None,
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=0)),
        tooltip=["answer:N", alt.Tooltip("share:Q", format=".1%"), "kind:N"],
    ).properties(height=_height(large))
    return chart_style.style(chart, large, dense=True), frame.drop(columns=["order"])


def lines_chart(rows: list[dict[str, Any]], value: str, series: str | None, title: str, end: float,
                colours: dict[str, str] | None = None, domain: tuple[float, float] | None = None, log: bool = False,
                y_title: str | None = None, percent: bool = False, large: bool = False,
                points: bool = True) -> tuple[Any, pd.DataFrame]:
    """Lines over epochs up to the point shown, on fixed axes: x from 0 to ``end`` (the longest run),
    y over ``domain`` (shared by the runs compared). ``colours``: series -> colour, in legend order;
    ``points``: a dot per evaluation (the caller decides for both runs, so they look alike)."""
    cols = ["epoch", value] + ([series] if series else [])
    frame = pd.DataFrame(rows, columns=cols)
    yscale = alt.Scale(type="log" if log else "linear", **({"domain": list(domain)} if domain else {}), nice=False)
    enc: dict[str, Any] = {"x": epoch_x(end), "y": alt.Y(f"{value}:Q", title=y_title or value, scale=yscale,
                                                     axis=alt.Axis(format="%") if percent else alt.Axis()),
                           "tooltip": ["epoch:Q", alt.Tooltip(f"{value}:Q", format=".3g")]}
    if series:
        names = list(colours) if colours else sorted(frame[series].unique().tolist())
        rng = [colours[s] for s in names] if colours else None
        scale = alt.Scale(domain=names, range=rng) if rng else alt.Scale(domain=names, scheme="viridis")
        enc["color"] = alt.Color(f"{series}:N", scale=scale, title=None, legend=alt.Legend(orient="bottom", columns=4))
        enc["tooltip"].append(f"{series}:N")
    point: Any = points
    if point and not series:
        point = alt.OverlayMarkDef(color=SEEN, filled=True)
    mark = alt.Chart(frame, title=title).mark_line(point=point, strokeWidth=3 if large else 2,
                                                   **({} if series else {"color": SEEN}))
    chart = mark.encode(**enc).properties(height=_height(large))
    return chart_style.style(chart, large, dense=True), frame


def attention_flow(att: dict[str, Any], large: bool = False) -> tuple[Any, pd.DataFrame]:
    """Fig. 3's information flow from a stored attention map (``replay_data.attention_of``)."""
    flow = probes.information_flow(np.asarray(att["attn"], dtype=np.float64), att["key_pos"])
    return probe_charts.flow_diagram(flow, att["tokens"], large)


@st.cache_resource(max_entries=512, show_spinner=False)
def _flow_chart(path: str, stamp: float, index: int, large: bool, _att: dict[str, Any]) -> Any:
    """``attention_flow`` of record ``index`` of a run, built once (the costliest chart of a tick)
    and shared by every session replaying that run; keyed by the folder's modification stamp."""
    return attention_flow(_att, large)[0]


# -- the view ----------------------------------------------------------------------------------------
def _player_key(paths: list[str]) -> str:
    return "replay_player::" + "|".join(paths)


def _get(paths: list[str], n: int) -> replay_data.Player:
    p = st.session_state.get(_player_key(paths))
    if not isinstance(p, replay_data.Player) or p.n != n:
        p = replay_data.Player(index=0, n=n, speed=st.session_state.get("replay_speed", replay_data.DEFAULT_SPEED))
        st.session_state[_player_key(paths)] = p
    return p


def _put(paths: list[str], p: replay_data.Player, acted: bool = True) -> None:
    st.session_state[_player_key(paths)] = p
    if acted:
        st.session_state["replay_acted"] = True  # this rerun comes from a click: no timer step


def _move(paths: list[str], n: int, how: str) -> None:
    p = _get(paths, n)
    _put(paths, {"first": p.first, "last": p.last, "toggle": p.toggle}[how]() if how in ("first", "last", "toggle")
         else p.step(-1 if how == "back" else 1))


def _seek(paths: list[str], n: int, epochs: list[float]) -> None:
    value = st.session_state.get("replay_epoch")
    if value in epochs:
        _put(paths, _get(paths, n).seek(epochs.index(value)))


def _speed(paths: list[str], n: int) -> None:
    _put(paths, _get(paths, n).with_speed(str(st.session_state.get("replay_speed"))))


def render_replay(paths: list[str], large: bool, load: Any, header: Any, columns_for: Any) -> None:
    """Draw the replay of the runs at ``paths`` (one or two). ``load(path) -> Run | None`` shows its
    own error; ``header(path, run)`` draws a run's title; ``columns_for(paths)`` gives one column
    per run (the page's helpers, so every view looks alike). Bad histories are one ``st.error``."""
    st.info("Play a training back from what it stored at each evaluation, without training anything: the answers "
            "for the held-out pair, the curves up to that point, the attention on the fixed sequence of Fig. 3 and "
            "the probe numbers over training. Watch when the seen pairs are fitted, when (4,3) settles on x−10 "
            "(**blue**, composition) or x−6 (**vermillion**, copy), and whether condensation and the first "
            "eigenvalues grow before or after (Fig. 12b).", icon=":material/lightbulb:")
    runs: list[tuple[str, Run]] = [(p, r) for p in paths if (r := load(p)) is not None]
    if not runs:
        return
    try:
        histories = [r.metrics["history"] for _, r in runs]
        epochs = replay_data.timeline(histories)
        for h in histories:
            replay_data.frame_at(h, len(h) - 1)  # every record readable before anything is drawn
    except (replay_data.ReplayError, KeyError, TypeError) as e:
        st.error(f"This run's history cannot be replayed: {e}")
        return
    shown = [p for p, _ in runs]
    n = len(epochs)
    player = _get(shown, n)
    interval = player.interval

    @st.fragment(run_every=interval)
    def replay() -> None:
        p = _get(shown, n)
        if p.interval != interval:  # played or paused: redefine the fragment's timer
            st.rerun()
        acted = st.session_state.pop("replay_acted", False)
        now = time.monotonic()
        if p.playing and not acted and now - st.session_state.get("replay_last_tick", 0.0) >= 0.5 * (interval or 0):
            p = p.tick()
            _put(shown, p, acted=False)
            st.session_state["replay_last_tick"] = now
        _controls(shown, n, epochs, p)
        _frames(runs, histories, epochs[p.index], max(epochs), large, header, columns_for)

    replay()


def _controls(paths: list[str], n: int, epochs: list[float], p: replay_data.Player) -> None:
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    row.button("First", key="replay_first", icon=":material/first_page:", on_click=_move, args=(paths, n, "first"),
               disabled=p.index == 0 and not p.playing)
    row.button("Back", key="replay_back", icon=":material/chevron_left:", on_click=_move, args=(paths, n, "back"),
               disabled=p.index == 0, help="one evaluation back")
    row.button("Pause" if p.playing else "Play", key="replay_play", type="primary", on_click=_move,
               args=(paths, n, "toggle"), icon=":material/pause:" if p.playing else ":material/play_arrow:",
               disabled=n < 2)
    row.button("Step", key="replay_step", icon=":material/chevron_right:", on_click=_move, args=(paths, n, "step"),
               disabled=p.at_end, help="one evaluation forward")
    row.button("Last", key="replay_last", icon=":material/last_page:", on_click=_move, args=(paths, n, "last"),
               disabled=p.at_end and not p.playing)
    st.session_state["replay_speed"] = p.speed
    row.selectbox("speed", list(replay_data.SPEEDS), key="replay_speed", on_change=_speed, args=(paths, n), width=110,
                  help="evaluations shown per second: 1× is one a second")
    st.session_state["replay_epoch"] = epochs[p.index]
    if n > 1:
        st.select_slider("epoch", epochs, key="replay_epoch", on_change=_seek, args=(paths, n, epochs),
                         format_func=lambda e: f"{e:g}")
    st.caption(f"Epoch **{epochs[p.index]:g}** of {epochs[-1]:g} · evaluation {p.index + 1} of {n}"
               + (" · playing" if p.playing else ""))


def _frames(runs: list[tuple[str, Run]], histories: list[list[dict[str, Any]]], epoch: float, end: float,
            large: bool, header: Any, columns_for: Any) -> None:
    paths = [p for p, _ in runs]
    frames = [replay_data.frame_for_epoch(h, epoch) for h in histories]
    pair = next((f.pair for f in frames if f.pair), None)

    def row(draw) -> None:
        for col, (path, run), h, f in zip(columns_for(paths), runs, histories, frames):
            with col:
                draw(path, run, h, f)

    def heads(path, run, h, f) -> None:
        header(path, run)
        st.caption(f"showing its evaluation at epoch {f.epoch:g} ({f.index + 1} of {f.n_records}) · "
                   f"seen pairs {f.seen:.0%}" + (f" · loss {f.train_loss:.3g}" if f.train_loss is not None else ""))

    row(heads)
    if pair is not None:
        shifts = []
        for _, run in runs:
            p = parse_pair(pair)
            task = run.config.task
            shifts.append((pair_target(task, 0, p, "inferential"), pair_target(task, 0, p, "symmetric")))
        cats = sorted({c for (_, run), h, (i, s) in zip(runs, histories, shifts)
                       for c in replay_data.answer_categories([h], pair, i, s)})

        def answers(path, run, h, f) -> None:
            i, s = shifts[paths.index(path)]
            if not f.held:
                st.caption(f"({pair}) is not held out in this run.")
                return
            chart, _ = answers_chart(replay_data.answer_bars(f.held, cats, i, s), pair, f.epoch, large)
            st.altair_chart(chart, width="stretch", key=f"replay_answers_{path}")

        row(answers)
    dots = len(set(e for h in histories for e in replay_data.epochs_of(h))) <= 60  # same look for both runs
    loss_dom = replay_data.loss_range(histories)
    eig_dom = replay_data.eigen_range(histories)
    series = [replay_data.series_until(h, f.index) for h, f in zip(histories, frames)]

    def curves(path, run, h, f) -> None:
        s = series[paths.index(path)]
        if loss_dom is not None:  # drawn from epoch 0 on (empty until the first epoch ends), so rows stay aligned
            empty = not s["loss"]  # at epoch 0 nothing is trained yet: say so rather than show a blank plot
            chart, _ = lines_chart(s["loss"], "loss", None,
                                   "Training loss (epoch mean): none before epoch 1" if empty
                                   else "Training loss (epoch mean)", end, domain=loss_dom,
                                   log=True, y_title="cross-entropy", large=large, points=dots)
            st.altair_chart(chart, width="stretch", key=f"replay_loss_{path}")
        acc = [dict(r, series={"seen": "seen pairs (test split)"}.get(r["series"], f"({pair}) {r['series']}"))
               for r in s["accuracy"]]
        names = {"seen pairs (test split)": SEEN, f"({pair}) inferential": KIND_COLOURS["inferential"],
                 f"({pair}) symmetric": KIND_COLOURS["symmetric"]}
        chart, _ = lines_chart(acc, "accuracy", "series", "Accuracy", end, colours=names, domain=(0, 1),
                               percent=True, large=large, points=dots)
        st.altair_chart(chart, width="stretch", key=f"replay_acc_{path}")

    row(curves)
    st.markdown("**Inside the model at this point** (Fig. 3: attention on key 99, pair (4,3), layer by layer)")

    def attention(path, run, h, f) -> None:
        att = f.attention
        if att is None:
            st.info(NO_ATTENTION if not replay_data.has_attention(h) else
                    f"No attention map is stored at epoch {f.epoch:g} for this run.", icon=":material/info:")
            return
        chart = _flow_chart(path, stamp(path), f.index, large, att)
        st.altair_chart(chart, width="stretch", key=f"replay_flow_{path}")

    row(attention)

    def route(path, run, h, f) -> None:
        s = series[paths.index(path)]
        if s["route"]:
            chart, _ = lines_chart(s["route"], "strength", "route", "Route strength (mean over 256 sequences)", end,
                                   colours={"inferential": KIND_COLOURS["inferential"],
                                            "symmetric": KIND_COLOURS["symmetric"]}, domain=(0, 1), large=large,
                                   y_title="weaker step of the route", points=dots)
            st.altair_chart(chart, width="stretch", key=f"replay_route_{path}")
        else:
            st.caption("Route strength: no attention was stored in this run's history.")

    def condensation(path, run, h, f) -> None:
        s = series[paths.index(path)]
        if s["condensation"]:
            chart, _ = lines_chart(s["condensation"], "share", None, "W_Q(1) neurons in groups (cosine ≥ 0.7)", end,
                                   domain=(0, 1), percent=True, y_title="share of neurons", large=large, points=dots)
            st.altair_chart(chart, width="stretch", key=f"replay_cond_{path}")
        else:
            st.caption("This run stored no probe snapshots (trained before the trainer recorded them).")

    def eigen(path, run, h, f) -> None:
        s = series[paths.index(path)]
        if s["eigen"]:
            chart, _ = lines_chart(s["eigen"], "value", "eigenvalue", "Top embedding eigenvalues", end,
                                   colours=None, domain=eig_dom, log=True, y_title="eigenvalue", large=large,
                                   points=dots)
            st.altair_chart(chart, width="stretch", key=f"replay_eig_{path}")

    st.markdown("**Probe numbers over training** (up to this point)")
    row(route)
    row(condensation)
    row(eigen)

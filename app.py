"""Entry point, ``streamlit run app.py``, and the home page: the Lesson. The other pages are
``pages/N_Name.py`` (Streamlit's pages-directory convention: each opens at ``/Name``, deep links
included; the menu is ``ui.sidebar._page_setup``).

Lesson: a guided path through the result in eight screens (predict, reveal, why, the phase
diagram, try it), on the two committed runs named in pretrained/lesson.json. The step is kept in
the URL (``?step=N``); every number is computed from the runs (ui/lesson.py)."""
from pathlib import Path

import streamlit as st

from core import probes
from core.presets import get_preset
from core.runs import RunError
from ui import (charts, lesson, phase_charts, phase_data, probe_charts, probe_data, probe_views, sidebar, state,
                url_state)
from ui.loaders import faithful_facts, pretrained_dir

try:  # live class answers (students predict on their phones); the lesson works without them
    from ui import classroom
except ImportError:  # pragma: no cover - an app without the classroom module
    classroom = None

large = sidebar.sidebar()
if classroom is not None:
    classroom.session_panel()
show_one = state.presenter()  # presenter mode: one figure per screen, sized for 1280×720
# A phone: the title must not fill the screen.
if not show_one:
    st.html("<style>[data-testid='stMainBlockContainer'] h1 {font-size: clamp(1.5rem, 5.5vw, 2.4rem) !important}"
            "</style>")
N = len(lesson.STEPS)
# Chart heights in presenter mode: what is left of a 720 px screen under the title, the sentence and
# the buttons (legends go under the plots and add to it).
FIG_H = 280


def go(step: int) -> None:
    st.query_params["step"] = str(step)


step, problem = lesson.parse_step(st.query_params.get("step"), N)
if problem:
    url_state.warn_ignored(problem)  # the one style of every bad link value
    st.query_params["step"] = "1"
step_id, title = lesson.STEPS[step - 1]
# "Share this view": the link to this step (and presenter mode), in the sidebar so a projected page stays compact
url_state.share_box("/", ["step", "presenter", "large"], where=st.sidebar)


# -- the runs ---------------------------------------------------------------------------------------
def choose_runs() -> tuple[list, str, str | None]:
    """``([symmetric run, inferential run], note, problem)``; runs empty when none can be shown."""
    pick = lesson.lesson_pair(pretrained_dir(), lambda: probe_data.contrast_pair(probe_data.available_runs()))
    problem = pick.problem
    runs = []
    if pick.symmetric and pick.inferential:
        try:
            runs = [probe_data.load_run_cached(pick.symmetric), probe_data.load_run_cached(pick.inferential)]
            if runs[0].config.model.gamma >= runs[1].config.model.gamma:
                runs, problem = [], (f"{lesson.LESSON_FILE} names as symmetric a run whose γ is not the smaller "
                                     "of the two")
        except RunError as e:
            runs, problem = [], f"a run it names cannot be opened ({e})"
        if not runs and pick.from_file:  # the file's pair failed: the built-in choice instead
            fallback = probe_data.contrast_pair(probe_data.available_runs())
            if fallback is not None:
                try:
                    runs = [probe_data.load_run_cached(p) for p in fallback]
                except RunError:
                    runs = []
    return runs, pick.note if pick.from_file and not problem else "", problem


runs, note, pair_problem = choose_runs()
try:
    facts = [lesson.run_facts(r.name, r.config, r.metrics) for r in runs]
except (KeyError, IndexError, TypeError, ValueError, StopIteration, AttributeError) as e:
    facts, runs, pair_problem = [], [], f"the runs' metrics are incomplete ({type(e).__name__})"
if pair_problem:
    st.info(f"The lesson's pair of runs could not be read from pretrained/{lesson.LESSON_FILE}: {pair_problem}. "
            + ("It shows the clearest committed contrast instead." if runs else ""), icon=":material/info:")
if not runs:
    st.title("Lesson: reasoning or memorizing?")
    st.warning("No committed pair of runs (one symmetric, one inferential, same task and schedule) is available, "
               "so the lesson cannot be shown. The other pages work on any run.")
    st.page_link("pages/1_The_puzzle.py", label="The puzzle", icon=":material/extension:")
    st.stop()
sym_run, inf_run = runs
sym, inf = facts
paths = [str(sym_run.path), str(inf_run.path)]
labels = [f"γ {f['gamma']:g} (larger weights)" if i == 0 else f"γ {f['gamma']:g} (smaller weights)"
          for i, f in enumerate(facts)]
key = lesson.predict_key(inf_run.config)
options = lesson.predict_options(inf_run.config, key)


# -- frame: title, step, buttons -------------------------------------------------------------------
head, nav = st.columns([5, 3], vertical_alignment="center") if show_one else (st.container(), st.container())
head.title(f"{step}. {title}" if show_one else f"Lesson · {step}. {title}")
nav = nav.container(horizontal=True, vertical_alignment="center", horizontal_alignment="right" if show_one else "left")
nav.button("Previous", key="lesson_prev", on_click=go, args=(step - 1,), disabled=step == 1, shortcut="Left")
nav.button("Next", key="lesson_next", on_click=go, args=(step + 1,), disabled=step == N, type="primary",
           shortcut="Right")
nav.caption(f"{step} / {N}" if show_one else f"step {step} of {N} · ← / → keys · Presenter mode in the sidebar")


def fit(chart, height: int | None = None):
    """The chart at the presenter height (builders size for a page, not for one screen): the
    plot's height (with large fonts every builder's axes and legend add to it)."""
    return chart.properties(height=height or FIG_H) if show_one else chart


def side_by_side(draw) -> None:
    """``draw(i, run, facts)`` for the symmetric run (left) and the inferential run (right)."""
    for i, (col, run, f) in enumerate(zip(st.columns(2), runs, facts)):
        with col:
            draw(i, run, f)


def sentence(text: str) -> None:
    st.markdown(text)


def honesty() -> None:
    """What the two runs are, in numbers: their regime and how many seeds took each route."""
    record = lesson.read_calibration()
    lines = [lesson.regime_sentence(inf, faithful_facts(str(pretrained_dir())))]
    lines += [lesson.seeds_sentence(f, lesson.seed_spread(r.config, record)) for r, f in zip(runs, facts)]
    if note:
        lines.append(note)
    if show_one:  # one screen: the same sentences, one click away
        what = ("runs of the paper's own setting; which seeds, and why" if inf["d_model"] >= 400
                else f"{inf['d_model']}-wide CPU runs, chosen seeds")
        with st.expander(f"What these runs are: {what}"):
            st.markdown(" ".join(lines))
    else:
        st.caption(" ".join(lines))


# -- the steps ---------------------------------------------------------------------------------------
def step_predict() -> None:
    a1, a2 = inf["pair"].split(",")
    sentence(f"A transformer learns what each of four anchors does to a number x, and every pair of anchors but "
             f"one, ({inf['pair']}); the mirror pair ({a2},{a1}) was given a different rule "
             f"({lesson.formula(inf['sym_shift'])}). Asked the unseen pair, it can **compose** the anchors or "
             f"**copy** its mirror.")
    sentence(lesson.question(inf, options, key))
    roles = list(lesson.ROLES)[::-1]  # inferential first
    before = st.session_state.get("lesson_prediction")
    part = classroom.role() if classroom is not None else None
    choice = None
    if part != "student":  # a student answers in the class form below instead
        choice = st.radio("Your prediction", roles, index=roles.index(before) if before in roles else None,
                          key="lesson_choice", format_func=lambda m: lesson.option_label(m, options, inf))
    picked = class_question(roles)
    if choice is None and picked is not None:
        choice = picked  # a student's answer, or the class's most common once the lecturer revealed it
    if choice is not None:
        st.session_state["lesson_prediction"] = choice
    waiting = part == "student" and choice is None
    st.button("Reveal the answer →", key="lesson_reveal", on_click=go, args=(2,), disabled=choice is None,
              type="primary", help="Opens when your lecturer reveals the class's answers." if waiting else None)


def class_question(roles: list[str]) -> str | None:
    """The live class question (ui/classroom.py): the lecturer's live histogram or a student's
    answer form; nothing without a class. Returns the mapping answered, or None."""
    if classroom is None:
        return None
    labels_ = [lesson.option_label(m, options, inf) for m in roles]
    # The question itself is the sentence just above: the form only asks for the answer.
    index = classroom.question_widget("lesson-predict", "Your prediction", labels_, ask_without_class=False)
    return roles[index] if index is not None and 0 <= index < len(roles) else None


def step_answers() -> None:
    choice = st.session_state.get("lesson_prediction")
    st.markdown(f"**{lesson.feedback(choice, inf, options)}**")

    def draw(i, run, f):
        h = run.metrics["history"][-1]["held_out"][f["pair"]]
        st.markdown(lesson.answer_sentence(f))
        chart = charts.offsets_chart(h.get("offsets", {}), f["pair"], run.config.task, large, shares_of=h)
        chart = chart.properties(title=f"{labels[i]}: answers for ({f['pair']})")
        st.altair_chart(fit(chart, 175), width="stretch", key=f"lesson_answers_{i}")

    side_by_side(draw)
    honesty()


def step_flow() -> None:
    tokens = probes.default_sequence(inf_run.config.task, key=key, distinct_key=True)

    def draw(i, run, f):
        path = paths[i]
        try:
            d = probe_data.sequence(path, probe_data.stamp(path), tuple(int(t) for t in tokens))
        except ValueError as e:
            st.error(f"this sequence does not fit this run's task: {e}")
            return
        mean = probe_data.mean_flow(path, probe_data.stamp(path), tuple(d["pair"]))
        r_inf, r_sym = probes.route_strengths(mean)  # the Inside page's route strengths (weaker edge of each route)
        st.markdown(f"**{labels[i]}** answers **{d['prediction']}**")
        chart, _ = probe_charts.flow_diagram(d["flow"], d["tokens"], large)
        st.altair_chart(fit(chart, 225), width="stretch", key=f"lesson_flow_{i}")
        st.markdown(f"Over 256 sequences: compose **{r_inf:.2f}**, copy **{r_sym:.2f}**. "
                    + lesson.route_sentence(r_inf, r_sym, f))

    held = tuple(int(a) for a in inf["pair"].split(","))
    shown = [lesson.mechanism_shown(*probes.route_strengths(probe_data.mean_flow(p, probe_data.stamp(p), held)), f)
             for p, f in zip(paths, facts)]
    if all(shown):
        sentence(f"Attention on key {key}, (4,3), layer by layer: **blue** edges carry the key to the anchors, then "
                 "to the answer (composition); **vermillion** ones merge the anchors first (copy). Notice which is "
                 "thick.")
    else:  # the same length on a projector: presenter mode has no room for an extra box
        sentence(f"Attention on key {key}, (4,3), layer by layer: **blue** edges carry the key to the anchors "
                 "(composition), **vermillion** ones merge the anchors (copy). Caution: these runs do **not** route "
                 "attention the way their answers go.")
        if not show_one:
            st.warning("Read these two diagrams as what these small runs did, not as the paper's picture: "
                       f"{'neither run' if not any(shown) else 'one of the runs'} routes its attention the way its "
                       "answers go (the sentences under the charts say which). In the paper (Fig. 3) the copying "
                       "model merges the anchors first and the composing one carries the key to the anchors.")
    side_by_side(draw)


def probe_step(kind: str, what: str, notice: str, value_of, chart_of) -> None:
    sentence(notice)
    values = {}

    def draw(i, run, f):
        path = paths[i]
        chart, value = chart_of(path, labels[i])
        values[path] = value
        st.altair_chart(fit(chart, 250), width="stretch", key=f"lesson_{kind}_{i}")

    side_by_side(draw)
    st.markdown(probe_views.compare_sentence(values, what, "larger γ"))


def condensation_chart(path, label):
    c = probe_data.condensation(path, probe_data.stamp(path), "W_Q.0", float(probes.CONDENSATION_THRESHOLD))
    chart, _ = probe_charts.condensation_heatmap(c, f"{label}: {probes.weight_label('W_Q.0')}", large)
    return chart, c["share_in_groups"]


def embedding_chart(path, label):
    d = probe_data.embedding(path, probe_data.stamp(path), "pca")
    chart, _ = probe_charts.embedding_scatter(d["xy"], d["tokens"], f"{label}: token embeddings",
                                    f"order |ρ| {d['order']:.2f} (PCA)", large)
    return chart, d["order"]


def step_spectra() -> None:
    sentence("The eigenvalues of the embeddings' covariance, largest first, each divided by the largest: notice "
             "which curve falls away steeply (a few directions carry the embeddings: a simple solution).")
    curves, shares = {}, {}
    for i, path in enumerate(paths):
        ev = probe_data.embedding(path, probe_data.stamp(path), "pca")["eigen"]
        curves[labels[i]] = ev / ev[0] if ev[0] > 0 else ev
        shares[path] = probes.top_eigen_share(ev, 2)
    # each run in the colour of its own verdict (ui.palette), whichever run the lesson shows first
    chart, _ = probe_charts.spectrum_lines(curves, "Embedding covariance eigenvalues", large, top=24,
                                 y_title="eigenvalue / largest", outcomes=[f["outcome"] for f in facts])
    st.altair_chart(fit(chart, 190), width="stretch", key="lesson_spectra")
    st.markdown(probe_views.compare_sentence(shares, "Top-2 eigenvalue share", "larger γ"))


def step_phase() -> None:
    names = [n for n in phase_data.find_tables(pretrained_dir()) if phase_data.kind_of(n) == "phase"]
    if not names:
        st.info("No phase diagram is committed yet (docs/sweeps.md says how to make one).")
        return
    try:
        df, meta = phase_data.load_table(pretrained_dir(), names[0])
    except (OSError, ValueError) as e:
        st.error(f"Could not read {names[0]}.csv: {e}")
        return
    cfg = phase_data.config_of(meta)
    cells = phase_data.cells(df, meta, "paper")
    x, y = meta["columns"]["axes"][:2]
    sentence(f"Each cell: a depth and a γ, {int(cells['n_runs'].max())} seeds; colour: the share of (4,3) answered "
             "as the copy (first panel) or the composition (second); hatched: not fitted. Notice where each colour is bright.")
    left, right = st.columns([3, 1]) if show_one else (st.container(), st.container())
    frame = phase_data.long_frame(cells, meta, cfg)
    # one chart per panel, in columns: they sit side by side on a screen and stack on a phone
    for i, (col, panel) in enumerate(zip(left.columns(2), dict.fromkeys(frame["panel"]))):
        chart = phase_charts.heatmap(frame[frame["panel"] == panel], x, y, None, large)
        col.altair_chart(chart, key=f"lesson_phase_{i}")
    right.markdown(phase_data.lesson_sentence(cells, cfg) + " The Phase diagram page says more.")
    right.page_link("pages/4_Phase_diagram.py", label="Open the Phase diagram page", icon=":material/grid_on:")


def step_try() -> None:
    preset = lesson.preset_of(inf_run.config)
    if preset is not None:
        spread = lesson.seed_spread(inf_run.config, lesson.read_calibration())
        new_seed = max([*spread, inf["seed"]]) + 1
        sentence(f"Train the small-weights setting (γ {inf['gamma']:g}, {inf['layers']} layers, preset {preset}) with "
                 f"seed {new_seed}, which nobody has tried yet, and see which route it takes; or open the two runs "
                 "inside the model and try other sequences.")
        live = {"train_preset": preset, "train_gamma": float(inf["gamma"]), "train_depth": int(inf["layers"]),
                "train_epochs": int(inf["epochs"]), "train_seed": int(new_seed)}
        label = f"Train γ {inf['gamma']:g}, seed {new_seed}"
    else:
        # the lesson's runs are of a setting no live preset matches (the paper's width): hours of CPU
        hours = float(inf_run.metrics.get("seconds") or 0) / 3600
        cost = (f" (the γ {inf['gamma']:g} run took {hours:.1f} h of training on two CPU cores)" if hours >= 0.1
                else "")
        small = get_preset("cpu-deep")
        sentence(f"These runs are too large to train live{cost}; the Notes page (docs/replication.md) gives the "
                 f"command for another seed. Train the small-scale setting instead (cpu-deep: {small.model.d_model} wide, "
                 f"{small.model.n_layers} layers, a few minutes) at γ {small.model.gamma:g}, where seeds split between the two routes, or open the two runs inside "
                 "the model and try other sequences.")
        live = {"train_preset": "cpu-deep", "train_gamma": float(small.model.gamma),
                "train_depth": int(small.model.n_layers), "train_epochs": int(small.train.epochs)}
        label = f"Train cpu-deep, γ {small.model.gamma:g}"
    c1, c2, c3 = st.columns(3)  # after the sentence: the buttons sit below what they offer
    if c1.button(label, key="lesson_try_train", type="primary"):
        st.session_state.update(live)
        if preset is not None:
            state.select_run(paths[1])
        st.switch_page("pages/2_Train.py")
    if c2.button("Open both runs inside the model", key="lesson_try_inside"):
        state.select_run(paths[0])
        state.compare_with(paths[1])
        st.switch_page("pages/3_Inside_the_model.py")
    # the Inside page's own link: ?runs=SYM,INF&view=replay (run names relative to pretrained/)
    c2.page_link("pages/3_Inside_the_model.py", label="Replay their training", icon=":material/replay:",
                 query_params={"runs": ",".join(Path(p).name for p in paths), "view": "replay"},
                 help="play both trainings back from their stored history: answers, curves, probes")
    c3.page_link("pages/1_The_puzzle.py", label="Change the rules of the puzzle", icon=":material/extension:")
    if preset is None:  # the paper-width runs: how they were made, readable from the hosted app too
        c3.page_link("pages/5_Notes.py", label="How these runs were made (Notes)", icon=":material/description:",
                     query_params={"doc": "replication"})


STEP_VIEWS = {
    "predict": step_predict,
    "answers": step_answers,
    "flow": step_flow,
    "condensation": lambda: probe_step(
        "condensation", "Share of W_Q(1) neurons in groups",
        "Each square compares two neurons of the first layer's query weights W_Q(1); outlined blocks are groups "
        "of near-parallel neurons. Notice which model has large blocks: small initial weights condense into a "
        "few directions.", None, condensation_chart),
    "embedding": lambda: probe_step(
        "embedding", "Embedding order",
        "Each point is one number token, coloured by its value. Notice which model lines the numbers up in "
        "order: nearby numbers with nearby vectors is what lets a model compose shifts.", None, embedding_chart),
    "spectra": step_spectra,
    "phase": step_phase,
    "try": step_try,
}
STEP_VIEWS[step_id]()

"""The sidebar and page setup every page shows: page config, the navigation menu, the
large-fonts and presenter toggles (and ``?large=``, ``?presenter=``), this session's background trainings,
and the glossary. Call ``sidebar()`` first on every page."""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from . import glossary, state, url_state
from .loaders import job_queue

def _large_fonts_toggled(widget_key: str) -> None:
    on = bool(st.session_state[widget_key])
    state.set_large_fonts(on)
    url_state.write({LARGE_PARAM: "1" if on else "0"})


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
# ``?presenter=0`` off (``url_state.parse_on_off``); any other value is the one-line warning of
# every bad link value, and presenter mode off.
PRESENTER_PARAM = "presenter"
# Large fonts alone (the page layout unchanged): ``?large=1`` / ``?large=0``, the same parser.
LARGE_PARAM = "large"


def presenter_from_url() -> bool:
    """Apply ``?presenter=`` once per distinct value (so the sidebar toggle can still change
    it), then return ``state.presenter()``. Called before ``st.set_page_config``: a bad value's
    warning is kept for ``_page_setup`` to show after it."""
    raw = st.query_params.get(PRESENTER_PARAM)
    if raw is not None and raw != st.session_state.get("_presenter_param"):
        st.session_state["_presenter_param"] = raw
        on, problem = url_state.parse_on_off(PRESENTER_PARAM, raw)
        if problem is not None:
            st.session_state["_presenter_problem"] = problem
            on = False
        state.set_presenter(on)
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
             " overflow: visible !important; text-overflow: clip !important; height: auto !important}"
             # a page link's label is one clipped line: in a narrow column at 20 px it was cut
             # ("Open the Phase diagram pa"); wrap it instead
             " [data-testid='stMain'] [data-testid='stPageLink'] span, [data-testid='stMain']"
             " [data-testid='stPageLink'] p {white-space: normal !important; overflow: visible !important}"
             # what a widget shows (a select box's choice, a number, a slider's value, a tag) and code:
             # these were 12-16 px with large fonts on (only presenter mode enlarged them)
             " button p, [data-testid='stMarkdownContainer'] code, [data-testid='stCaptionContainer'] code, input,"
             " [data-baseweb='select'] div, [data-baseweb='tag'] span, [data-testid='stMultiSelectTagsContainer'] span, [data-testid='stCode'] code,"
             " [data-testid='stCode'] span, [data-testid='stSliderThumbValue'], [data-testid='stSliderTickBar'] div"
             " {font-size: 1.25rem !important}"
             # tab titles wrap onto a second line instead of scrolling: at 20 px Inside the model's
             # nine tabs ran past 1280 px and four were hidden behind a small scroll arrow
             " [data-testid='stTabs'] [role='tablist'] {flex-wrap: wrap !important; overflow-x: visible !important; row-gap: 0.25rem}</style>")
PRESENTER_CSS = ("<style>[data-testid='stMainBlockContainer'] {padding-top: 3.5rem !important;"
                 " padding-bottom: 1rem !important}"
                 " [data-testid='stMainBlockContainer'] h1 {font-size: 2.1rem !important; padding-top: 0.2rem}"
                 " [data-testid='stMainBlockContainer'] h2 {font-size: 1.8rem !important; padding-top: 0.2rem}"
                 "</style>")


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
    url_state.start_warnings()  # every bad link value of this run goes into one box, at the top
    problem = st.session_state.pop("_presenter_problem", None)
    if problem is not None:
        url_state.warn_ignored(problem)
    url_state.apply(LARGE_PARAM, lambda r: url_state.parse_on_off(LARGE_PARAM, r), state.set_large_fonts)
    raw = st.query_params.get(LARGE_PARAM)
    if raw is not None and url_state.parse_on_off(LARGE_PARAM, raw)[1] is not None:  # the link shows what is used
        url_state.write({LARGE_PARAM: "1" if state.large_fonts() else "0"})
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
                      help="Bigger chart and text fonts for teaching from a projector. A link with ?large=1 opens in it.")
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

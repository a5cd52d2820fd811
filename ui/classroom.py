"""Live class answers: a lecturer starts a class, students answer prediction questions on their
phones, the lecturer's screen shows the answers as they arrive, then reveals them.

Two calls for a page: ``session_panel()`` (sidebar: start a class, or join one with a code;
the lecturer sees the code, a QR code and the link) and ``question_widget(question_id, prompt,
options)`` (the question: a plain choice without a class, the answer form for a student, the
live histogram and **Reveal the class's answers** for the lecturer). Storage is ``ui/classroom_store.py``.

Who is who. The session that starts a class holds its secret lecturer key. Students join with
the link (``?class=CODE``) or by typing the code. Each session's role lives in
``st.session_state`` and is mirrored into the page URL so a reload keeps it: a student's URL
carries ``class`` and a random browser token ``t`` (reloading does not add a second answer), the
lecturer's carries ``class`` and the key ``teach`` (a reload keeps control of the class; the link
and QR code given to students never carry it, but the lecturer's address bar does: project
the page in full screen). Nothing personal is stored (no names, no IP addresses).

Settings (environment): ``ANCHOR_CLASS_DB`` (the SQLite file, default
``$ANCHOR_RUNS_DIR/classes.sqlite3``), ``ANCHOR_CLASS_TTL_HOURS`` (how long a code lives,
default 24), ``ANCHOR_CLASS_MAX`` (classes alive at once, default 100),
``ANCHOR_CLASS_MAX_ANSWERS`` (answers per question, default 500), ``ANCHOR_PUBLIC_URL`` (the
app's address as students reach it, e.g. ``https://explainer.example.org``; default: the
address the lecturer's browser uses). Every refusal (bad, unknown or expired code, crafted URL
parameter, full class, unreadable database) is one sentence on the page, never a traceback.
"""
from __future__ import annotations

import io
import os
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import altair as alt
import pandas as pd
import streamlit as st

from . import chart_style
from .classroom_store import (DEFAULT_MAX_ANSWERS, DEFAULT_MAX_CLASSES, DEFAULT_TTL_S, MAX_RAW_CODE, QID_RE,
                              TOKEN_RE, ClassError, ClassStore, Question, new_token)
from .loaders import REPO, runs_dir
from .state import large_fonts

STATE = "_class"          # session: {"code", "role": "lecturer" | "student", "key" (lecturer), "token" (student)}
MESSAGE = "_class_msg"    # session: the last refusal, shown until the next successful class action
SEEN = "_class_seen_url"  # session: the URL parameters last handled
PARAMS = ("class", "teach", "t")
LECTURER_POLL_S = 2.0     # the live histogram, while the question is open
STUDENT_POLL_S = 3.0      # a student's page watching for the lecturer to open or reveal
BAR = "#555555"           # neutral: the palette's colours mean inferential/symmetric elsewhere
T = TypeVar("T")


# -- settings and the store ---------------------------------------------------------------------
def db_path() -> Path:
    """The class database: env ``ANCHOR_CLASS_DB`` or ``runs_dir()/classes.sqlite3``."""
    return Path(os.environ.get("ANCHOR_CLASS_DB") or runs_dir() / "classes.sqlite3")


def _env_number(name: str, default: float) -> float:
    """Positive number from env ``name``; ``default`` when unset or not a positive number."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 and value != float("inf") else default


@st.cache_resource(max_entries=4, show_spinner=False)
def _store(path: str, ttl_s: float, max_classes: int, max_answers: int) -> ClassStore:
    return ClassStore(path, ttl_s=ttl_s, max_classes=max_classes, max_answers=max_answers)


def store() -> ClassStore:
    """The shared ``ClassStore`` for the current settings. Raises ``sqlite3.Error``/``OSError``
    when the database file cannot be opened (not cached: fixed files are picked up)."""
    return _store(str(db_path()), _env_number("ANCHOR_CLASS_TTL_HOURS", DEFAULT_TTL_S / 3600) * 3600,
                  int(_env_number("ANCHOR_CLASS_MAX", DEFAULT_MAX_CLASSES)),
                  int(_env_number("ANCHOR_CLASS_MAX_ANSWERS", DEFAULT_MAX_ANSWERS)))


def _call(fn: Callable[..., T], *args: Any) -> tuple[T | None, str | None]:
    """``(fn(store(), *args), None)``, or ``(None, one-line message)`` on any refusal."""
    try:
        return fn(store(), *args), None
    except ClassError as err:
        return None, str(err)
    except (sqlite3.Error, OSError) as err:
        return None, _db_trouble(err)


def _db_trouble(err: Exception) -> str:
    return f"The class database {db_path()} cannot be used ({err}); the lesson works without a class."


def _current() -> dict[str, str] | None:
    return st.session_state.get(STATE)


def _set(state: dict[str, str] | None, message: str | None = None) -> None:
    st.session_state[STATE] = state
    st.session_state[MESSAGE] = message


def _lost(message: str) -> None:
    """The class is gone (expired, ended) or unusable: leave it and say why."""
    _set(None, message)


# -- URL parameters ----------------------------------------------------------------------------
def _join_from_url(code: str, teach: str | None, token: str | None) -> None:
    info, err = _call(ClassStore.join, code)
    if info is None:
        st.session_state[MESSAGE] = err  # a bad link changes nothing else
        return
    if teach is not None:
        if _call(ClassStore.is_lecturer, info.code, teach)[0]:
            _set({"code": info.code, "role": "lecturer", "key": teach})
            return
        message = f"This lecturer link is not valid for class {info.code}; you joined it as a student."
    else:
        message = None
    cur = _current()
    if token is None or not TOKEN_RE.fullmatch(token):
        token = cur["token"] if cur and cur["code"] == info.code and cur.get("token") else new_token()
    _set({"code": info.code, "role": "student", "token": token}, message)


def _sync() -> None:
    """Handle ``?class=`` (and ``teach``, ``t``) when they changed since the last run, then write
    the session's role back into the URL (and drop whatever parameter was refused)."""
    qp = st.query_params
    raw = tuple(qp.get(name) for name in PARAMS)
    if raw != st.session_state.get(SEEN) and raw[0] is not None:
        cur = _current()
        if not (cur and cur["code"] == raw[0] and cur.get("key") == raw[1] and cur.get("token") == raw[2]):
            _join_from_url(*raw)
    cur = _current()
    want: dict[str, str] = {}
    if cur:
        want = {"class": cur["code"], **({"teach": cur["key"]} if cur["role"] == "lecturer" else {"t": cur["token"]})}
    for name in PARAMS:
        if name in want and qp.get(name) != want[name]:
            qp[name] = want[name]
        elif name not in want and name in qp:
            del qp[name]
    st.session_state[SEEN] = tuple(want.get(name) for name in PARAMS)


def role() -> str | None:
    """This session's part in a live class: ``"lecturer"``, ``"student"`` or None (no class).
    Handles a ``?class=`` link first, like ``session_panel``. A page that asks the question
    with its own widget can hide it for a student, who answers in ``question_widget``."""
    _sync()
    cur = _current()
    return cur["role"] if cur else None


# -- sidebar -------------------------------------------------------------------------------------
def student_link(code: str) -> str:
    """The link students open: this page of the app with ``?class=CODE``. The app's address is
    env ``ANCHOR_PUBLIC_URL`` or, when unset, the one the lecturer's browser uses
    (``st.context.url``; ``http://localhost:8501/`` outside a browser)."""
    here = st.context.url or ""
    base = os.environ.get("ANCHOR_PUBLIC_URL", "").strip()
    if base:
        last = urlsplit(here).path.rstrip("/").rsplit("/", 1)[-1]
        pages = {re.sub(r"^\d+_", "", p.stem) for p in (REPO / "pages").glob("*.py")}
        here = base.rstrip("/") + "/" + (last if last in pages else "")
    return (here or "http://localhost:8501/") + "?" + urlencode({"class": code})


def local_only(link: str) -> bool:
    """Whether ``link`` points at the machine it is opened on (localhost, 127.x, ::1, 0.0.0.0):
    a QR code of it opens nothing on a phone."""
    host = (urlsplit(link).hostname or "").lower()
    return host in ("localhost", "0.0.0.0", "::1") or host.startswith("127.") or host.endswith(".localhost")


@st.cache_data(max_entries=32, show_spinner=False)
def qr_png(text: str) -> bytes:
    """PNG bytes of a QR code encoding ``text`` (``qrcode`` with its Pillow backend)."""
    import qrcode
    from qrcode.image.pil import PilImage

    buf = io.BytesIO()
    qrcode.make(text, image_factory=PilImage, box_size=8, border=2).save(buf)
    return buf.getvalue()


@st.dialog("Join the class", width="large")
def _projected_qr(code: str, link: str) -> None:
    # code is six characters of ALPHABET (validated by the store): safe inside HTML
    st.html(f"<div style='font-size:4rem;font-weight:700;letter-spacing:.3em;text-align:center'>{code}</div>")
    _, mid, _ = st.columns([1, 1.4, 1])
    mid.image(qr_png(link), width="stretch")
    mid.caption(link)


def _start() -> None:
    key = new_token()
    code, err = _call(ClassStore.start_class, key)
    if code is None:
        st.session_state[MESSAGE] = err
    else:
        _set({"code": code, "role": "lecturer", "key": key})


def _join_typed() -> None:
    typed = st.session_state.get("_class_join_code", "")
    info, err = _call(ClassStore.join, typed)
    if info is None:
        st.session_state[MESSAGE] = err
    else:
        _set({"code": info.code, "role": "student", "token": new_token()})
        st.session_state["_class_join_code"] = ""


def _end() -> None:
    cur = _current()
    _, err = _call(ClassStore.end_class, cur["code"], cur["key"]) if cur else (None, None)
    _set(None, err)


def session_panel() -> None:
    """The sidebar's class panel. Without a class: **Start a class** and a box to join one with
    its code. Lecturer: the code, its expiry, a QR code and the link students open, **End
    class** (deletes its answers). Student: the class code and **Leave class**. Also handles
    the ``?class=`` link (call it near the top of the page, after ``sidebar.sidebar()``)."""
    _sync()
    with st.sidebar:
        st.markdown("**Class answers**")
        if st.session_state.get(MESSAGE):
            st.warning(st.session_state[MESSAGE])
        cur = _current()
        if cur is None:
            st.button("Start a class", on_click=_start, key="_class_start",
                      help="Students answer the lesson's questions on their phones; you see the answers live.")
            with st.form("_class_join", border=False):
                st.text_input("Join a class with its code", key="_class_join_code", max_chars=MAX_RAW_CODE,
                              placeholder="K7QF3M")
                st.form_submit_button("Join", on_click=_join_typed)
            return
        info, err = _call(ClassStore.join, cur["code"])
        if info is None:
            _lost(err or "")
            st.warning(err)
            return
        if cur["role"] == "student":
            st.markdown(f"You answer in class **{info.code}**.")
            st.button("Leave class", on_click=_set, args=(None,), key="_class_leave")
            return
        link = student_link(info.code)
        minutes = max(0, round((info.expires - time.time()) / 60))
        left = f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
        st.markdown(f"Class code **{info.code}** (expires in {left}). Students scan the QR code, open the link "
                    "or type the code.")
        st.image(qr_png(link), width=220)
        st.code(link, language=None, wrap_lines=True)
        if local_only(link):
            st.warning("This link names this computer (localhost): students' phones cannot open it. Open the app "
                       "by its network address (e.g. http://192.168.1.20:8501), or set ANCHOR_PUBLIC_URL, then "
                       "start the class.")
        if st.button("Project the QR code", key="_class_big_qr", help="The code and a large QR code to project."):
            _projected_qr(info.code, link)
        st.button("End class", on_click=_end, key="_class_end", help="Deletes this class and its answers.")


# -- questions --------------------------------------------------------------------------------
def axis_labels(options: list[str]) -> list[str]:
    """Short labels for the histogram's axis: each option's text before `` (`` when these are
    distinct and at most 24 characters (``"74 (x−6: copy ...)"`` -> ``"74"``), else the options."""
    heads = [o.split(" (", 1)[0].strip() for o in options]
    return heads if all(heads) and len(set(heads)) == len(heads) and max(map(len, heads)) <= 24 else list(options)


def histogram(options: list[str], counts: list[int], large: bool = False) -> alt.Chart:
    """Horizontal bars: students per option (``counts[i]`` answered ``options[i]``; the axis
    shows ``axis_labels(options)``, the tooltip the whole option), with the number at the end
    of each bar; fits a 390 px phone."""
    df = pd.DataFrame({"answer": axis_labels(options), "option": options, "students": counts})
    f = chart_style.fonts(large)
    base = alt.Chart(df).encode(
        y=alt.Y("answer:N", sort=None, title=None, axis=alt.Axis(labelLimit=160)),
        x=alt.X("students:Q", title="students", axis=alt.Axis(tickMinStep=1),
                scale=alt.Scale(domain=[0, max(1, *counts) * 1.15], nice=False)),  # room for the count
        tooltip=["option:N", "students:Q"])
    bars = base.mark_bar(color=BAR) + base.mark_text(align="left", dx=4, fontSize=f["text"]).encode(text="students:Q")
    return chart_style.style(bars, large)


def _show_histogram(options: list[str], counts: list[int], large: bool = False) -> None:
    # The height goes to st.altair_chart: one set on the spec collapses a nominal y axis here
    # (Streamlit 1.67 draws both bars on one line; seen in the browser check).
    height = int((40 * len(options) + 60) * (1.6 if large else 1))
    st.altair_chart(histogram(options, counts, large), width="stretch", height=height)


def _answers(n: int) -> str:
    return f"{n} answer" + ("" if n == 1 else "s")


def _plain(qid: str, prompt: str, options: list[str], ask: bool = True) -> int | None:
    if not ask:
        return None
    return st.radio(prompt, range(len(options)), format_func=options.__getitem__, index=None,
                    key=f"_class_plain_{qid}")


def _state(q: Question | None, options: list[str]) -> str | None:
    """``"open"``/``"revealed"`` for this question as the page asks it; None when not asked (or
    asked with other options)."""
    return q.state if q is not None and q.options == tuple(options) else None


def _open(qid: str, options: list[str]) -> None:
    cur = _current()
    if cur:
        _, err = _call(ClassStore.open_question, cur["code"], qid, options, cur["key"])
        st.session_state[MESSAGE] = err


def _reveal(qid: str) -> None:
    cur = _current()
    if cur:
        _, err = _call(ClassStore.reveal, cur["code"], qid, cur["key"])
        st.session_state[MESSAGE] = err


def _send(qid: str) -> None:
    cur, choice = _current(), st.session_state.get(f"_class_answer_{qid}")
    if cur and choice is not None:
        _, err = _call(ClassStore.answer, cur["code"], qid, cur["token"], choice)
        st.session_state[MESSAGE] = err


@st.fragment(run_every=LECTURER_POLL_S)
def _live_counts(qid: str, options: list[str]) -> None:
    """The lecturer's live histogram; polls only while the question is open (a full rerun
    replaces it once it is revealed)."""
    cur = _current()
    q, err = _call(ClassStore.question, cur["code"], qid) if cur else (None, "")
    counts = _call(ClassStore.counts, cur["code"], qid)[0] if cur else None
    if err is not None or _state(q, options) != "open" or counts is None:
        st.rerun()
    _show_histogram(options, counts, large_fonts())
    st.caption(f"{_answers(sum(counts))} so far (refreshed every {LECTURER_POLL_S:g} s); students can change "
               "their answer until you reveal.")
    st.button("Reveal the class's answers", on_click=_reveal, args=(qid,), key=f"_class_reveal_{qid}", type="primary")


@st.fragment(run_every=STUDENT_POLL_S)
def _watch(qid: str, options: list[str], seen: str | None) -> None:
    """Rerun a student's page when the lecturer opens or reveals the question (or the class ends)."""
    cur = _current()
    q, err = _call(ClassStore.question, cur["code"], qid) if cur else (None, "")
    if err is not None or _state(q, options) != seen:
        st.rerun()


def _lecturer_view(cur: dict[str, str], qid: str, prompt: str, options: list[str], q: Question | None) -> int | None:
    # the prompt speaks to a student ("Your prediction"); over the class's histogram it would mislead
    st.markdown(f"**What class {cur['code']} answers**")
    state = _state(q, options)
    if state == "open":
        _live_counts(qid, options)
        return None
    if state is None:
        st.caption("Options: " + " · ".join(options) + f". Class {cur['code']} answers on their phones.")
        st.button("Ask the class", on_click=_open, args=(qid, options), key=f"_class_open_{qid}", type="primary")
        return None
    counts, err = _call(ClassStore.counts, cur["code"], qid)
    if counts is None:
        st.warning(err)
        return None
    _show_histogram(options, counts, large_fonts())
    st.caption(f"Revealed: {_answers(sum(counts))}.")
    st.button("Ask again", on_click=_open, args=(qid, options), key=f"_class_open_{qid}",
              help="Opens the question again; the answers given so far are kept and can be changed.")
    return max(range(len(counts)), key=counts.__getitem__) if sum(counts) else None


def _student_view(cur: dict[str, str], qid: str, prompt: str, options: list[str], q: Question | None,
                  ask: bool) -> int | None:
    state = _state(q, options)
    mine = _call(ClassStore.my_answer, cur["code"], qid, cur["token"])[0] if state else None
    if state is None:
        st.markdown(f"**{prompt}**")
        st.info(f"Class {cur['code']}: waiting for your lecturer to open this question…")
        _watch(qid, options, state)
        return None
    if state == "open":
        st.radio(prompt, range(len(options)), format_func=options.__getitem__, index=mine,
                 key=f"_class_answer_{qid}", on_change=_send, args=(qid,))
        if mine is not None:
            st.success(f"Sent: **{options[mine]}**. You can change it until your lecturer reveals the answers.")
        _watch(qid, options, state)
        return None  # the answer counts for the page once revealed: no peeking at the answer before
    counts = _call(ClassStore.counts, cur["code"], qid)[0] or [0] * len(options)
    st.markdown(f"**{prompt}**")
    _show_histogram(options, counts)
    if mine is None:
        own = " Your own prediction:" if ask else ""
        st.caption(f"The class answered ({_answers(sum(counts))}); you did not.{own}")
        return _plain(qid, prompt, options, ask)
    st.caption(f"The class answered ({_answers(sum(counts))}). Yours: **{options[mine]}**.")
    return mine


def question_widget(question_id: str, prompt: str, options: list[str],
                    ask_without_class: bool = True) -> int | None:
    """Ask a prediction question; return the index (into ``options``) of the answer, or None.

    No class: a plain choice; returns the user's pick (``ask_without_class=False``: shows
    nothing and returns None, for a page that asks the question itself). Student of a live
    class: the answer form once the lecturer opened the question (a tap sends, another tap
    replaces it), then the class's histogram once revealed; returns the answer sent once the
    lecturer revealed the answers, None while the question is open (so a page cannot show the
    answer early; a student who missed the question gets the plain choice). Lecturer: **Ask the class**, the live
    histogram (refreshed every ``LECTURER_POLL_S`` s while open) with **Reveal the class's answers**, then the
    final histogram and **Ask again**; returns the class's most common answer once revealed
    (ties: the first option), None before. ``question_id``: 1-64 letters, digits, ``_.-``
    (raises ``ValueError`` otherwise), one per question; ``options``: 2-10 labels.
    """
    if not QID_RE.fullmatch(question_id):
        raise ValueError(f"question_id {question_id!r}: use 1-64 letters, digits, '_', '.' or '-'")
    _sync()
    cur = _current()
    if cur is None:
        if st.session_state.get(MESSAGE):
            st.warning(st.session_state[MESSAGE] + " You can still answer for yourself, or type the code "
                       "in the sidebar (» at the top left).")
        return _plain(question_id, prompt, options, ask_without_class)
    try:
        q = store().question(cur["code"], question_id)
    except ClassError as err:  # the class expired or was ended: leave it
        _lost(str(err))
        st.warning(str(err))
        return _plain(question_id, prompt, options, ask_without_class)
    except (sqlite3.Error, OSError) as err:
        st.warning(_db_trouble(err))
        return _plain(question_id, prompt, options, ask_without_class)
    if st.session_state.get(MESSAGE):
        st.warning(st.session_state[MESSAGE])
    if cur["role"] == "lecturer":
        return _lecturer_view(cur, question_id, prompt, options, q)
    return _student_view(cur, question_id, prompt, options, q, ask_without_class)

"""The session keys that more than one page or module reads, each with typed accessors.

Streamlit forgets a widget's own state when the user switches page, so what one page sets for
another lives under these permanent ``st.session_state`` keys. Every read and write of them goes
through this module; a key that one module alone reads (a widget's ``key=``) stays in that module.
The key strings are part of the app's behaviour (tests and the pages' widgets use them) and do
not change.

- ``large_fonts``: lecturer mode (large fonts); chart builders take it as ``large``.
- ``presenter``: presenter mode (large fonts, sidebar folded, one lesson figure per screen).
- ``_owner``: this session's token on the shared job queue (Train and Phase diagram jobs).
- ``selected_run``: a run picked on one page (a Phase diagram cell, the Lesson) that the Train
  and Inside-the-model pages open once.
- ``task_settings``: the task editor's state, shared by the Puzzle and Train pages.
- ``inside_run_a`` / ``inside_run_b`` / ``inside_compare``: the Inside page's run pickers, which a
  link (``?runs=``) or the Lesson's "Open both runs" fills.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import streamlit as st

LARGE_FONTS = "large_fonts"
PRESENTER = "presenter"
OWNER = "_owner"
SELECTED_RUN = "selected_run"
TASK_SETTINGS = "task_settings"
INSIDE_RUN_A = "inside_run_a"
INSIDE_RUN_B = "inside_run_b"
INSIDE_COMPARE = "inside_compare"


def large_fonts() -> bool:
    """Whether lecturer mode (large fonts) is on; chart builders take this as ``large``."""
    return bool(st.session_state.get(LARGE_FONTS, False))


def set_large_fonts(on: bool) -> None:
    st.session_state[LARGE_FONTS] = bool(on)


def presenter() -> bool:
    """Whether presenter mode is on."""
    return bool(st.session_state.get(PRESENTER, False))


def set_presenter(on: bool) -> None:
    """Turn presenter mode on or off; on also turns large fonts on (presenter mode is large fonts and more)."""
    st.session_state[PRESENTER] = on
    if on:
        st.session_state[LARGE_FONTS] = True


def owner() -> str:
    """This session's token on the shared job queue, made on first use."""
    return st.session_state.setdefault(OWNER, uuid.uuid4().hex)


def selected_run() -> str | None:
    """The run last picked on another page (a path), or None."""
    return st.session_state.get(SELECTED_RUN)


def select_run(path: str) -> None:
    """Pick a run for the Train and Inside pages to open (each opens it once)."""
    st.session_state[SELECTED_RUN] = path


def task_settings() -> dict[str, Any] | None:
    """The task editor's state (``ops``, ``held_out``, ``override_pair``, ``override_shift``), or None."""
    return st.session_state.get(TASK_SETTINGS)


def set_task_settings(settings: dict[str, Any]) -> None:
    st.session_state[TASK_SETTINGS] = settings


def inside_run_a() -> str | None:
    return st.session_state.get(INSIDE_RUN_A)


def set_inside_run_a(path: str) -> None:
    st.session_state[INSIDE_RUN_A] = path


def set_inside_runs(runs: Sequence[str]) -> None:
    """Run A, and with two runs compare mode on with run B (``?runs=A`` or ``?runs=A,B``)."""
    st.session_state[INSIDE_RUN_A] = runs[0]
    st.session_state[INSIDE_COMPARE] = len(runs) == 2
    if len(runs) == 2:
        st.session_state[INSIDE_RUN_B] = runs[1]


def compare_with(path: str) -> None:
    """Turn the Inside page's compare mode on, with ``path`` as run B."""
    st.session_state.update({INSIDE_RUN_B: path, INSIDE_COMPARE: True})

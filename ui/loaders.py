"""Cached loaders: where runs live, loading them, example data, and the job-queue singleton.

``st.cache_resource`` holds objects shared by every session and never mutated (loaded runs,
the ``JobQueue``); ``st.cache_data`` holds derived arrays. Run folders are keyed by path and
modification time, so a folder replaced on disk is loaded afresh. A corrupt folder raises
``core.runs.RunError`` (never cached); pages show it with ``st.error``. Run lists hold only the
folders that pass ``core.runs.check_run``; ``warn_bad_runs`` shows one line for each other one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from core.config import RunConfig, TaskConfig
from core.runs import Run, RunError, check_run, list_runs, load_config, load_run
from core.task import generate

from .jobs import JobQueue

REPO = Path(__file__).resolve().parents[1]


def runs_dir() -> Path:
    """Where the app saves trained runs: env ``ANCHOR_RUNS_DIR`` or ``<repo>/runs`` (gitignored)."""
    return Path(os.environ.get("ANCHOR_RUNS_DIR") or REPO / "runs")


def pretrained_dir() -> Path:
    """Committed runs: env ``ANCHOR_PRETRAINED_DIR`` or ``<repo>/pretrained``."""
    return Path(os.environ.get("ANCHOR_PRETRAINED_DIR") or REPO / "pretrained")


def _run_folders() -> list[tuple[str, str]]:
    """``(source, path)`` of every folder that claims to be a run (it holds an entry named
    config.json, of any kind): committed ``pretrained`` runs first, then ``runs``."""
    root = pretrained_dir()
    out = [("pretrained", str(p)) for p in list_runs(root, include_bad=True)]
    # Committed sweep grids keep their runs one level down: pretrained/<grid>/<run-id>/.
    if root.is_dir():
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not (p / "config.json").exists()):
            out += [(f"pretrained · {sub.name}", str(p)) for p in list_runs(sub, include_bad=True)]
    return out + [("your runs", str(p)) for p in list_runs(runs_dir(), include_bad=True)]


@st.cache_data(max_entries=4096, show_spinner=False)
def _problem(path: str, stamp_: float) -> str | None:
    """``core.runs.check_run``'s message for a bad folder, None for a good one (config, metrics
    and the weights header are checked; no weights are read). Keyed by the folder's ``stamp``."""
    try:
        check_run(path)
    except RunError as e:
        return str(e)
    return None


def saved_runs() -> list[tuple[str, str]]:
    """``(source, path)`` for every run folder that passes ``core.runs.check_run``: committed
    ``pretrained`` runs first, then ``runs``. Bad folders are left out (``bad_runs`` lists them)."""
    return [(s, p) for s, p in _run_folders() if _problem(p, stamp(p)) is None]


def shown_path(path: str) -> str:
    """A run folder as a visitor may see it: relative to the folder holding pretrained/ or runs/
    (``runs/NAME``, ``pretrained/NAME``, ``pretrained/GRID/NAME``), never the server's absolute path;
    the bare folder name when it is under neither."""
    p = Path(path)
    for label, root in (("pretrained", pretrained_dir()), ("runs", runs_dir())):
        for base in (root, root.resolve()):
            try:
                return f"{label}/{p.relative_to(base).as_posix()}"
            except ValueError:
                continue
    return p.name


def _without_server_paths(message: str, path: str) -> str:
    """``message`` with every absolute path of the run folder (and of the two roots) written as
    ``shown_path`` writes it."""
    shown = shown_path(path)
    p = Path(path)
    for full in sorted({str(p), str(p.parent.resolve() / p.name), str(p.resolve())}, key=len, reverse=True):
        message = message.replace(full, shown)
    for label, root in (("pretrained", pretrained_dir()), ("runs", runs_dir())):
        for base in sorted({str(root), str(root.resolve())}, key=len, reverse=True):
            message = message.replace(base, label)
    return message


def bad_runs() -> list[tuple[str, str]]:
    """``(path, one-line reason)`` for every folder that claims to be a run but cannot be opened;
    the reason names folders as ``shown_path`` does (no absolute path of the server)."""
    out = []
    for _, p in _run_folders():
        problem = _problem(p, stamp(p))
        if problem is not None:
            out.append((p, _without_server_paths(problem.replace("\n", " "), p)))
    return out


SOURCES = {"committed": "committed with the app (pretrained/)", "saved": "trained and saved here (runs/)"}


def run_source(path: str) -> str:
    """``"committed"`` for a run under ``pretrained_dir()`` (grid runs one level down too),
    ``"saved"`` for one under ``runs_dir()``, ``"other"`` elsewhere."""
    # the folder itself is not resolved: a link in runs/ to a committed run is not "committed"
    p = Path(path).parent.resolve() / Path(path).name
    for name, root in (("committed", pretrained_dir()), ("saved", runs_dir())):
        try:
            p.relative_to(root.resolve())
            return name
        except ValueError:
            continue
    return "other"


def source_label(path: str, name: str | None = None) -> str:
    """A run picker's label: its source first, so committed and saved runs with the same name are
    told apart: ``"committed · cpu-demo_L2_g0.5_s0"``, ``"committed · phase_demo/L2_g0.5_s0"`` (a
    grid run), ``"saved · cpu-demo_L2_g0.5_s0"``. ``name``: the run's name as shown (default the
    folder's)."""
    p = Path(path)
    src = run_source(path)
    shown = name or p.name
    if src == "committed" and p.resolve().parent != pretrained_dir().resolve():
        shown = f"{p.parent.name}/{shown}"
    return f"{src} · {shown}"


def warn_bad_runs() -> None:
    """The run folders that cannot be opened (the others stay usable): one warning line for one
    folder; for several, one warning and an expander listing each with its reason."""
    bad = bad_runs()
    if len(bad) == 1:
        path, problem = bad[0]
        st.warning(f"Skipped run folder {shown_path(path)}: {problem}", icon=":material/warning:")
    elif bad:
        st.warning(f"Skipped {len(bad)} run folders that cannot be opened (the others are listed).",
                   icon=":material/warning:")
        with st.expander(f"The {len(bad)} skipped run folders, and why"):
            st.markdown("\n".join(f"- `{shown_path(path)}`: {problem}" for path, problem in bad))


def run_note(path: str) -> str | None:
    """The note ``pretrained/notes.json`` keeps for a committed run (why this run, which seed), if any."""
    p = Path(path)
    notes_file = pretrained_dir() / "notes.json"
    if p.parent.resolve() != pretrained_dir().resolve() or not notes_file.exists():
        return None
    try:
        notes = json.loads(notes_file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    note = notes.get(p.name) if isinstance(notes, dict) else None
    return note if isinstance(note, str) else None


def stamp(path: str) -> float:
    """Latest modification time of the folder's files (0 when unreadable): part of every cache key."""
    p = Path(path)
    try:
        return max((f.stat().st_mtime for f in p.iterdir()), default=p.stat().st_mtime)
    except OSError:
        return 0.0


@st.cache_resource(max_entries=16, show_spinner=False)
def _load_run(path: str, stamp: float) -> Run:
    return load_run(path)


@st.cache_data(max_entries=4096, show_spinner=False)
def _config(path: str, stamp_: float) -> RunConfig | None:
    try:
        return load_config(path)
    except RunError:
        return None


def config_cached(path: str) -> RunConfig | None:
    """A run folder's ``config.json`` (``core.runs.load_config``), None when it cannot be read;
    keyed by the folder's ``stamp``, so a page can compare every saved run's setting each rerun."""
    return _config(path, stamp(path))


def load_run_cached(path: str) -> Run:
    """``core.runs.load_run`` behind ``st.cache_resource``. Raises ``RunError`` (not cached)."""
    return _load_run(path, stamp(path))


@st.cache_resource(show_spinner=False)
def job_queue() -> JobQueue:
    """The one ``JobQueue`` of this server process, shared by every browser session."""
    return JobQueue()


@st.cache_data(max_entries=64, show_spinner=False)
def example_batch(task_json: str, split: str, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` sequences of ``core.task.generate`` as numpy arrays (tokens, key, key_pos, a1, a2, target)."""
    task = TaskConfig.from_dict(json.loads(task_json))
    b = generate(task, n, split, torch.Generator().manual_seed(seed))
    return {k: getattr(b, k).numpy() for k in ("tokens", "key", "key_pos", "a1", "a2", "target")}


@st.cache_data(ttl=300, show_spinner=False)
def faithful_facts(root: str) -> list[dict]:
    """``ui.lesson.faithful_facts`` of a committed-runs folder (JSON only), re-read at most every
    5 minutes: what the runs of the authors' own logged setting answered."""
    from .lesson import faithful_facts as read
    return read(Path(root))

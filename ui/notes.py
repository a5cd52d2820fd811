"""The project's notes (``docs/*.md``) as the app's Notes page shows them.

The app's sentences cite its documents by file (``docs/replication.md``); a student on the
hosted demo cannot open the repository, so the Notes page renders the same files. Only the
documents named in ``DOCS`` are ever read (a link's ``?doc=`` picks one of their keys), and
their text is shown as Markdown without HTML (generated-block markers are removed first).
No Streamlit here: ``pages/5_Notes.py`` draws.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# key (the ``?doc=`` value) -> (file under docs/, label in the picker, what it is for)
DOCS: dict[str, tuple[str, str, str]] = {
    "science": ("science.md", "The science",
                "The result the app explains, in our words: the task, the model, the initialization, what each "
                "figure of the paper shows."),
    "replication": ("replication.md", "Replication at the paper's width",
                    "Our runs of the authors' own setting (d_model 400), epoch by epoch next to their logged runs, "
                    "and where they differ."),
    "calibration": ("calibration.md", "Small-width calibration",
                    "Every run behind the CPU presets and the width walk-down (d_model 128 and 64 with the "
                    "paper's optimizer), with the commands that made them."),
    "probes": ("probes.md", "Reading the probes",
               "What each figure of Inside the model computes and how to read its numbers."),
    "sweeps": ("sweeps.md", "Sweeps and phase diagrams",
               "How the committed phase diagrams were trained, and how to run a sweep on a GPU or a cluster."),
}

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HEADING = re.compile(r"^(#{1,3}) (.+?)\s*$", re.M)


class NoteError(ValueError):
    """A document key that is not one of ``DOCS``, or a file that cannot be read."""


def path_of(key: str, root: Path = ROOT) -> Path:
    """The file of document ``key``. Raises ``NoteError`` for a key not in ``DOCS``."""
    if key not in DOCS:
        raise NoteError(f"unknown document {key!r} (one of {', '.join(DOCS)})")
    return root / "docs" / DOCS[key][0]


def text_of(key: str, root: Path = ROOT) -> str:
    """Document ``key`` as Markdown to show: HTML comments (the ``AUTO`` block markers of
    ``docs/autoblock.py``) removed. Raises ``NoteError`` if the key is unknown or the file
    cannot be read as UTF-8."""
    path = path_of(key, root)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise NoteError(f"docs/{path.name} cannot be read ({type(e).__name__})") from e
    return _COMMENT.sub("", raw)


def headings(text: str) -> list[tuple[int, str]]:
    """The ``#``, ``##`` and ``###`` headings of ``text`` outside fenced code, as (level, title)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else _HEADING.match(line)
        if m:
            out.append((len(m.group(1)), m.group(2)))
    return out


def sections(text: str) -> list[tuple[str, str]]:
    """``text`` cut at its ``##`` headings (outside fenced code): [(title, markdown)], the part
    before the first ``##`` titled by the ``#`` heading (or "Overview"). Joined back, the parts
    are ``text``."""
    parts: list[tuple[str, list[str]]] = []
    title, lines, fenced = None, [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            parts.append((title, lines))
            title, lines = line[3:].strip(), []
        lines.append(line)
    parts.append((title, lines))
    out = []
    for t, ls in parts:
        if not ls:
            continue
        if t is None:
            top = next((h for lvl, h in headings("".join(ls)) if lvl == 1), None)
            t = top or "Overview"
        out.append((t, "".join(ls)))
    return out

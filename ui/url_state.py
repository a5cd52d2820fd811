"""Shareable state: a page's main settings in the URL (``st.query_params``).

Opening a link restores the view; changing a widget writes its value back, so the address bar
is always a link to what is on screen ("Share this view" shows it with a copy button).

The parsers at the top are pure (no Streamlit): each takes the raw parameter and returns
``(value, None)`` or ``(None, problem)``, the problem a short sentence that quotes at most
``ECHO`` characters of the value. A URL value is only ever *chosen from* what the page's own
widgets allow (their bounds, its presets, the runs it lists): it can never lift a server-side
cap, and a run is looked up by name in the listed runs, never opened as a path.

The Streamlit half applies each parameter once per distinct value (``apply``), so the widgets
stay editable, as ``ui.sidebar.presenter_from_url`` does for ``?presenter=``.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import urlencode

ECHO = 40          # at most this many characters of a bad value are quoted back
MAX_RAW = 2000     # longer parameters are refused before they are parsed

# The Train page's widget bounds (ui.run_controls.run_controls uses these same numbers).
GAMMA = (0.1, 1.5, 0.05)      # min, max, step
DEPTH = (1, 6)
SEED = (0, 1_000_000)
EPOCHS = (1, 100_000)

_FLOAT = re.compile(r"[+-]?(\d{1,20}(\.\d{0,20})?|\.\d{1,20})([eE][+-]?\d{1,3})?", re.ASCII)
_INT = re.compile(r"[+-]?\d{1,20}", re.ASCII)


def echo(raw: Any) -> str:
    """The value as it may be quoted in a message: at most ``ECHO`` characters, one line."""
    s = str(raw)
    s = "".join(c if c.isprintable() else "?" for c in s[:ECHO + 1])
    return repr(s[:ECHO] + "…") if len(s) > ECHO else repr(s)


def _too_long(name: str, raw: str) -> str | None:
    return f"`{name}`: the value is too long ({len(raw):,} characters), ignored." if len(raw) > MAX_RAW else None


def parse_float(name: str, raw: str, lo: float, hi: float, step: float | None = None):
    """A finite ASCII decimal in [lo, hi], snapped to the widget's step."""
    if (p := _too_long(name, raw)) is not None:
        return None, p
    if not _FLOAT.fullmatch(raw.strip()):
        return None, f"`{name}` must be a number, got {echo(raw)}."
    x = float(raw.strip())  # the checked text: str.strip drops \x1c-\x1f, which float() refuses
    if not math.isfinite(x) or not lo <= x <= hi:
        return None, f"`{name}` must be between {lo:g} and {hi:g}, got {echo(raw)}."
    if step:
        x = round(lo + round((x - lo) / step) * step, 10)
        x = min(max(x, lo), hi)
    return x, None


def parse_int(name: str, raw: str, lo: int, hi: int):
    """An ASCII integer in [lo, hi] (``3.0`` and ``１`` are refused)."""
    if (p := _too_long(name, raw)) is not None:
        return None, p
    if not _INT.fullmatch(raw.strip()):
        return None, f"`{name}` must be a whole number, got {echo(raw)}."
    x = int(raw.strip())
    if not lo <= x <= hi:
        return None, f"`{name}` must be between {lo:,} and {hi:,}, got {echo(raw)}."
    return x, None


def parse_choice(name: str, raw: str, choices: Sequence[str]):
    """One of ``choices``, exactly."""
    if (p := _too_long(name, raw)) is not None:
        return None, p
    if raw in choices:
        return raw, None
    shown = ", ".join(choices[:8]) + (", …" if len(choices) > 8 else "")
    return None, f"`{name}`: unknown value {echo(raw)} (one of {shown})."


ON_OFF = {"1": True, "on": True, "true": True, "yes": True, "0": False, "off": False, "false": False, "no": False}


def parse_on_off(name: str, raw: str):
    """``1``/``on``/``true``/``yes`` or ``0``/``off``/``false``/``no`` (any case)."""
    if (p := _too_long(name, raw)) is not None:
        return None, p
    value = ON_OFF.get(raw.strip().lower())
    if value is None:
        return None, f"`{name}` must be 1 (on) or 0 (off), got {echo(raw)}."
    return value, None


ROOT_LABELS = ("pretrained", "runs")  # how a link names the roots of ``run_tokens`` (in this order)


def run_tokens(paths: Iterable[str], roots: Sequence[Path], labels: Sequence[str] = ROOT_LABELS) -> dict[str, str]:
    """``{URL name: path}`` of the listed runs. A run's name is its path relative to the root
    that holds it (``cpu-demo_L2_g0.5_s0``, ``phase_cpu-demo/L2_g0.5_s0``); when two roots hold
    the same name the first root (pretrained/) keeps the bare name. Every run is also named with
    its root's label in front (``runs/cpu-demo_L2_g0.5_s0``, ``pretrained/...``), so a saved run
    whose name is also committed has an unambiguous name. The first name of a path in the dict
    is the one a link writes (``token_of``)."""
    found: list[tuple[int, str, str]] = []
    for p in paths:
        for i, root in enumerate(roots):
            try:
                found.append((i, Path(p).relative_to(root).as_posix(), p))
            except ValueError:
                continue
            break
    out: dict[str, str] = {}
    for _, rel, p in sorted(found, key=lambda t: t[0]):  # stable: the first root wins a bare name
        out.setdefault(rel, p)
    for i, rel, p in found:
        if i < len(labels):
            out.setdefault(f"{labels[i]}/{rel}", p)
    return out


def token_of(path: str, tokens: dict[str, str]) -> str | None:
    """The name a link writes for ``path``: its bare name, or ``runs/NAME`` when a committed run
    holds the bare name."""
    return next((t for t, p in tokens.items() if p == path), None)


def parse_runs(name: str, raw: str, tokens: dict[str, str], most: int = 2):
    """One or two run names separated by a comma, each one of the listed runs (``tokens``):
    a name is looked up, never joined to a folder, so ``../../etc`` is just an unknown name."""
    if (p := _too_long(name, raw)) is not None:
        return None, p
    parts = [s.strip() for s in raw.split(",")]
    if not raw.strip() or len(parts) > most or any(not s for s in parts):
        return None, f"`{name}` takes one run or two separated by a comma, got {echo(raw)}."
    unknown = [s for s in parts if s not in tokens]
    if unknown:
        return None, f"`{name}`: no run named {echo(unknown[0])}."
    if len(parts) == 2 and parts[0] == parts[1]:
        return [tokens[parts[0]]], None
    return [tokens[s] for s in parts], None


def fmt_float(x: float) -> str:
    return f"{x:g}"


def share_url(base: str | None, page_path: str, params: dict[str, str]) -> str:
    """The link to this view: ``base`` (``st.context.url``, without query) or else the page's
    relative path, plus the query string."""
    head = (base or "").split("?", 1)[0].split("#", 1)[0] or page_path
    query = urlencode(params)
    return f"{head}?{query}" if query else head


# -- Streamlit glue ----------------------------------------------------------------------------
def _st():
    import streamlit as st
    return st


def apply(param: str, parse: Callable[[str], tuple[Any, str | None]], on_value: Callable[[Any], None]) -> None:
    """Apply ``?param=`` once per distinct value: parse it; a problem is one short warning (the
    widget keeps its default, or its current value), a value goes to ``on_value``."""
    st = _st()
    raw = st.query_params.get(param)
    seen_key = f"_url_seen_{param}"
    if raw is None or raw == st.session_state.get(seen_key):
        return
    st.session_state[seen_key] = raw
    value, problem = parse(raw)
    if problem is not None:
        warn_ignored(problem)
        return
    on_value(value)


_BOX, _PROBLEMS = "_link_warning_box", "_link_warning_problems"


def start_warnings() -> None:
    """Open this run's one box for link warnings, here (``sidebar._page_setup`` calls it at the
    top of every page): every ``warn_ignored`` of the run then goes into it. Six bad values in
    one link were six boxes pushing the page's controls ~400 px down."""
    st = _st()
    st.session_state[_BOX] = st.empty()
    st.session_state[_PROBLEMS] = []


def warn_ignored(problem: str) -> None:
    """The warning of a link value that is not used (``apply``, ``?presenter=``): one line for
    one value, one box listing them all for several (in ``start_warnings``' box when it was
    opened this run, else where it is called)."""
    st = _st()
    box, problems = st.session_state.get(_BOX), st.session_state.get(_PROBLEMS)
    if box is None or problems is None:
        box, problems = st, []
    problems.append(problem)
    box.warning(f"Link setting ignored: {problem} The default is used." if len(problems) == 1 else
                "Link settings ignored (the defaults are used):\n" + "\n".join(f"- {p}" for p in problems),
                icon="⚠️")


def set_state(key: str) -> Callable[[Any], None]:
    def put(value: Any) -> None:
        _st().session_state[key] = value
    return put


def write(params: dict[str, str | None]) -> None:
    """Write the page's current settings into the address bar (only those that changed; None
    removes one), and remember them as applied so they are not applied again."""
    st = _st()
    for k, v in params.items():
        if v is None:
            if k in st.query_params:
                del st.query_params[k]
            continue
        if st.query_params.get(k) != v:
            st.query_params[k] = v
        st.session_state[f"_url_seen_{k}"] = v


def share_box(page_path: str, keys: Sequence[str], where: Any = None) -> None:
    """A small "Share this view" popover with the link in ``st.code`` (it has a copy button).
    Only the page's own settings (``keys``) go in the link, never a class token."""
    st = _st()
    try:
        base = st.context.url
    except Exception:  # pragma: no cover - no browser context (a bare script run)
        base = None
    params = {k: st.query_params[k] for k in keys if k in st.query_params}
    link = share_url(base, page_path, params)
    box = (where or st).popover("Share this view", icon=":material/link:")
    with box:
        st.caption("This link opens the page with these settings (copy button at the right):")
        st.code(link, language=None, wrap_lines=True)


# -- the pages' settings -----------------------------------------------------------------------
TRAIN_KEYS = ["preset", "gamma", "depth", "seed", "epochs"]


def train_from_url(prefix: str, presets: Sequence[str], preset_defaults: Callable[[str], tuple[int, int]]) -> None:
    """Train: ``?preset=&gamma=&depth=&seed=&epochs=``, within the widgets' own bounds. A preset
    from the link resets depth and epochs to its own, as choosing it in the box does; a depth or
    epochs in the same link then applies on top. ``preset_defaults(name) -> (depth, epochs)``."""
    st = _st()

    def put_preset(name: str) -> None:
        st.session_state[f"{prefix}_preset"] = name
        st.session_state[f"{prefix}_depth"], st.session_state[f"{prefix}_epochs"] = preset_defaults(name)

    apply("preset", lambda r: parse_choice("preset", r, list(presets)), put_preset)
    apply("gamma", lambda r: parse_float("gamma", r, *GAMMA), set_state(f"{prefix}_gamma"))
    apply("depth", lambda r: parse_int("depth", r, *DEPTH), set_state(f"{prefix}_depth"))
    apply("seed", lambda r: parse_int("seed", r, *SEED), set_state(f"{prefix}_seed"))
    apply("epochs", lambda r: parse_int("epochs", r, *EPOCHS), set_state(f"{prefix}_epochs"))


def train_to_url(prefix: str) -> None:
    s = _st().session_state
    write({"preset": str(s[f"{prefix}_preset"]), "gamma": fmt_float(float(s[f"{prefix}_gamma"])),
           "depth": str(int(s[f"{prefix}_depth"])), "seed": str(int(s[f"{prefix}_seed"])),
           "epochs": str(int(s[f"{prefix}_epochs"]))})


INSIDE_KEYS = ["runs", "view"]


def inside_from_url(paths: Sequence[str], roots: Sequence[Path]) -> None:
    """Inside the model: ``?runs=A`` or ``?runs=A,B`` (names as listed, relative to pretrained/
    or runs/); ``?view=`` is ``inside_view_from_url``'s."""
    from . import state  # here, not at the top: the parsers above import no Streamlit

    tokens = run_tokens(paths, roots)
    apply("runs", lambda r: parse_runs("runs", r, tokens), state.set_inside_runs)


def inside_view_from_url(views: Sequence[Any]) -> None:
    """``?view=``: the ``slug`` of one of ``views`` (``ui.probe_views.VIEWS``: ``name``, ``slug``)
    opens the tab of that ``name``."""
    names = {v.slug: v.name for v in views}
    apply("view", lambda r: parse_choice("view", r, list(names)), lambda slug: set_state("inside_view")(names[slug]))


def inside_to_url(runs: Sequence[str], roots: Sequence[Path], paths: Sequence[str], view_name: str | None,
                  views: Sequence[Any]) -> None:
    tokens = run_tokens(paths, roots)
    names = [token_of(p, tokens) for p in runs]
    view = next((v.slug for v in views if v.name == view_name), None)
    write({"runs": ",".join(names) if names and all(names) else None, "view": view})


PHASE_KEYS = ["diagram", "reduction", "cell"]


def phase_table_from_url(names: Sequence[str]) -> None:
    """Phase diagram: ``?diagram=`` (one of the committed diagrams)."""
    apply("diagram", lambda r: parse_choice("diagram", r, list(names)), set_state("phase_table"))


def phase_view_from_url(views: Sequence[str]) -> None:
    """``?reduction=paper|mean|seed``."""
    apply("reduction", lambda r: parse_choice("reduction", r, list(views)), set_state("phase_view"))


def phase_cell_from_url(ids: Sequence[str]) -> None:
    """``?cell=`` (a cell id of the drawn diagram, as the chart's tooltip and select box use)."""
    apply("cell", lambda r: parse_choice("cell", r, list(dict.fromkeys(ids))), set_state("phase_cell"))


def phase_to_url(diagram: str, view: str, cell: str | None) -> None:
    write({"diagram": diagram, "reduction": view, "cell": cell})

"""The guided lesson (app.py): which runs it shows, and every number and sentence it
says, computed from those runs. No Streamlit here, so each function is tested directly.

The pair of runs is named in one place, ``pretrained/lesson.json``::

    {"symmetric": "cpu-deep_L3_g0.5_s0", "inferential": "cpu-deep_L3_g1.0_s4", "note": "..."}

(run folder names at the top of ``pretrained/``). A missing, unreadable or wrong file gives a
one-line ``problem`` and the page falls back to ``ui.probe_data.contrast_pair``. The spread over
seeds of the shown setting comes from the calibration record ``docs/calibration_runs.jsonl``.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.config import RunConfig, parse_pair
from core.presets import PRESETS, get_preset
from core.task import pair_target
from core.verdict import verdict

REPO = Path(__file__).resolve().parents[1]
LESSON_FILE = "lesson.json"
CALIBRATION_FILE = REPO / "docs" / "calibration_runs.jsonl"
PREDICT_KEY = 80  # the key item the predict step asks about

# (id, title): one screen each; the page draws them in this order, ``step=N`` is 1-based.
STEPS: tuple[tuple[str, str], ...] = (
    ("predict", "The puzzle: predict the answer"),
    ("answers", "The answers of the two models"),
    ("flow", "How the answer travels through the model"),
    ("condensation", "Why, 1: small weights condense"),
    ("embedding", "Why, 2: small weights order the numbers"),
    ("spectra", "Why, 3: small weights keep few directions"),
    ("phase", "The whole picture: the phase diagram"),
    ("try", "Now try it"),
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
ROLES = ("symmetric", "inferential")


# -- the step number in the URL ---------------------------------------------------------------
def parse_step(raw: Any, n_steps: int = len(STEPS)) -> tuple[int, str | None]:
    """``(step, problem)`` from the ``step`` query parameter (1-based, as typed in a URL).

    None or "" → step 1, no problem. Anything but a whole number 1..n_steps (text, "2.5",
    "-1", "99", a 10,000-digit number) → step 1 and a one-line problem that does not repeat the
    value (it came from a URL); never raises.
    """
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return 1, None
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 4 or not 1 <= int(text) <= n_steps:
        return 1, f"`step` must be a lesson step from 1 to {n_steps}."
    return int(text), None


# -- which runs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LessonPair:
    """The two runs the lesson shows (paths), the note of lesson.json, and the problem that
    made the page fall back to ``contrast_pair`` (None when lesson.json was used)."""

    symmetric: str | None
    inferential: str | None
    note: str = ""
    problem: str | None = None
    from_file: bool = False


def read_lesson_file(root: Path) -> tuple[dict[str, str] | None, str | None]:
    """``({"symmetric", "inferential", "note"}, None)`` from ``root/lesson.json``, or ``(None,
    problem)`` when it is missing, not JSON, not an object, or names no run folder of ``root``
    (names only: no path separators, no "..")."""
    path = Path(root) / LESSON_FILE
    if not path.is_file():
        return None, f"{path.name} is missing from {Path(root).name}/"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"{path.name} is not readable JSON ({type(e).__name__})"
    if not isinstance(data, dict):
        return None, f"{path.name} must be a JSON object with 'symmetric' and 'inferential' run names"
    out = {}
    for role in ROLES:
        name = data.get(role)
        if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
            return None, f"{path.name}: '{role}' must be the name of a run folder in {Path(root).name}/"
        folder = Path(root) / name
        if not (folder / "config.json").is_file() or not (folder / "metrics.json").is_file():
            return None, f"{path.name} names the run '{name}', which is not in {Path(root).name}/"
        out[role] = str(folder)
    if out["symmetric"] == out["inferential"]:
        return None, f"{path.name} names the same run twice"
    note = data.get("note", "")
    out["note"] = note if isinstance(note, str) else ""
    return out, None


def lesson_pair(root: Path, fallback: Callable[[], tuple[str, str] | None]) -> LessonPair:
    """The runs to show: those of ``root/lesson.json``, else ``fallback()`` (the page passes
    ``probe_data.contrast_pair``) with the reason in ``problem``. Both None when neither exists."""
    named, problem = read_lesson_file(root)
    if named is not None:
        return LessonPair(named["symmetric"], named["inferential"], named["note"], None, True)
    pair = fallback()
    if pair is None:
        return LessonPair(None, None, "", problem)
    return LessonPair(pair[0], pair[1], "", problem)


# -- facts about one run ----------------------------------------------------------------------
def formula(shift: int) -> str:
    """``-10 -> "x−10"`` (a true minus sign, for prose)."""
    return "x" if shift == 0 else f"x{'+' if shift > 0 else '−'}{abs(shift)}"


def run_facts(name: str, config: RunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
    """What the lesson says about a run, from its config and the last record of its history.

    Returns ``name, gamma, layers, d_model, epochs, n_train, seed, pair ("4,3"), inferential,
    symmetric, other`` (shares of keys in [0, 1]), ``inf_shift, sym_shift`` (answer − key),
    ``seen`` (seen-pair test accuracy), ``outcome``, ``clear``, ``route`` (the larger of the two
    candidate shares: "inferential" or "symmetric").

    Raises:
        KeyError, IndexError, TypeError, ValueError: metrics without a held-out record.
    """
    last = metrics["history"][-1]
    key, h = next(iter(last["held_out"].items()))
    pair = parse_pair(key)
    task = config.task
    v = verdict(float(last["seen_test_accuracy"]), h)
    inf, sym = float(h["inferential"]), float(h["symmetric"])
    return {"name": name, "gamma": config.model.gamma, "layers": config.model.n_layers,
            "d_model": config.model.d_model, "epochs": config.train.epochs, "n_train": config.train.n_train,
            "seed": config.train.seed, "pair": key, "inferential": inf, "symmetric": sym,
            "other": float(h["other"]), "seen": float(last["seen_test_accuracy"]),
            "inf_shift": pair_target(task, 0, pair, "inferential"),
            "sym_shift": pair_target(task, 0, pair, "symmetric"),
            "outcome": v["outcome"], "clear": bool(v["clear"]),
            "route": "inferential" if inf >= sym else "symmetric"}


def pct(x: float) -> str:
    return f"{x:.0%}".replace("%", " %")


def answer_sentence(f: dict[str, Any]) -> str:
    """``"The γ 0.5 run answers (4,3) with x−6 on 85 % of keys (x−10 on 7 %, anything else on 9 %)."``"""
    main, alt_ = (("symmetric", "inferential") if f["route"] == "symmetric" else ("inferential", "symmetric"))
    shift = {"inferential": f["inf_shift"], "symmetric": f["sym_shift"]}
    return (f"The γ {f['gamma']:g} run answers ({f['pair']}) with {formula(shift[main])} on {pct(f[main])} of keys "
            f"({formula(shift[alt_])} on {pct(f[alt_])}, anything else on {pct(f['other'])}); it fits the seen "
            f"pairs at {pct(f['seen'])}.")


ROUTE_DIGITS = 2  # route strengths are shown with 2 decimals ("compose 0.00, copy 0.30")


def shown_routes(route_inf: float, route_sym: float) -> tuple[float, float]:
    """The two route strengths as the page prints them (``ROUTE_DIGITS`` decimals): every test of
    ``route_sentence`` / ``mechanism_shown`` compares these, so a sentence never contradicts the
    numbers next to it (0.2996 is shown as 0.30, and 0.30 is not "below 0.3")."""
    return round(float(route_inf), ROUTE_DIGITS), round(float(route_sym), ROUTE_DIGITS)


def route_sentence(route_inf: float, route_sym: float, f: dict[str, Any], weak: float = 0.3) -> str:
    """Which attention route carries more weight in a run (the two mean route strengths of
    ``core.probes.route_strengths``, in [0, 1], compared as shown: ``shown_routes``) and whether
    that matches the route of its answers."""
    route_inf, route_sym = shown_routes(route_inf, route_sym)
    if max(route_inf, route_sym) < weak:
        return f"Neither route carries much weight on average (both below {weak:g}): no clear mechanism here."
    if route_inf == route_sym:
        return "Its attention gives the composition and copy routes the same weight: no clear mechanism here."
    shown = "composition" if route_inf > route_sym else "copy"
    answers = "composition" if f["route"] == "inferential" else "copy"
    if shown == answers:
        return f"Its attention follows the **{shown}** route, as its answers do."
    return (f"Its attention follows the **{shown}** route, but its answers are the {answers}: this run does "
            "**not** show the paper's mechanism.")


def mechanism_shown(route_inf: float, route_sym: float, f: dict[str, Any], weak: float = 0.3) -> bool:
    """Whether a run's attention follows the route of its answers (``route_sentence``'s test, on
    the numbers as shown)."""
    route_inf, route_sym = shown_routes(route_inf, route_sym)
    if max(route_inf, route_sym) < weak or route_inf == route_sym:
        return False
    return (route_inf > route_sym) == (f["route"] == "inferential")


# -- the predict step ---------------------------------------------------------------------------
def predict_options(config: RunConfig, key: int = PREDICT_KEY) -> dict[str, int]:
    """``{"inferential": 70, "symmetric": 74}``: the two candidate answers for the first held-out
    pair and key ``key`` (clipped to the task's item range), from the task of ``config``:
    composition of the single-anchor shifts, and the designated target of the mirror pair."""
    task = config.task
    key = min(max(int(key), task.item_min), task.item_max)
    pair = task.held_out[0]
    return {m: key + pair_target(task, 0, pair, m) for m in ROLES}


def predict_key(config: RunConfig, key: int = PREDICT_KEY) -> int:
    task = config.task
    return min(max(int(key), task.item_min), task.item_max)


def question(small: dict[str, Any], options: dict[str, int], key: int) -> str:
    """The predict question about the small-weights (larger γ) run."""
    return (f"The model trained with **small initial weights** (γ {small['gamma']:g}) is asked the unseen pair "
            f"({small['pair']}) for key {key}: does it answer **{options['inferential']}** or "
            f"**{options['symmetric']}**?")


def option_label(mapping: str, options: dict[str, int], f: dict[str, Any]) -> str:
    """``"70 (x−10: apply anchor 4, then anchor 3)"`` / ``"74 (x−6: copy the answer of (3,4))"``."""
    a1, a2 = parse_pair(f["pair"])
    if mapping == "inferential":
        return f"{options['inferential']} ({formula(f['inf_shift'])}: apply anchor {a1}, then anchor {a2})"
    return f"{options['symmetric']} ({formula(f['sym_shift'])}: copy the answer of ({a2},{a1}))"


def feedback(choice: str | None, small: dict[str, Any], options: dict[str, int]) -> str:
    """Whether the prediction ``choice`` ("inferential" / "symmetric" / None) matches what the
    small-weights run mostly answers, as one sentence with its share."""
    truth = small["route"]
    said = (f"The small-weights model (γ {small['gamma']:g}) answers {options[truth]} "
            f"({'composition' if truth == 'inferential' else 'the copy'}) on {pct(small[truth])} of keys"
            f"{', as in the paper' if truth == 'inferential' else ', unlike the paper'}.")
    if choice not in ROLES:
        return f"You did not predict. {said}"
    return ("You were right. " if choice == truth else "Not this time. ") + said


# -- honesty: regime and seeds --------------------------------------------------------------------
def regime_sentence(f: dict[str, Any], faithful: list[dict[str, Any]] | None = None) -> str:
    """Which regime the shown runs are in, against the paper's (its preset), from the config,
    followed by ``faithful_sentence(faithful)`` when the shown runs are narrower than the paper's."""
    paper = get_preset("paper")
    if f["d_model"] >= paper.model.d_model:
        return (f"These runs have the paper's width (d_model {f['d_model']}, {f['layers']} layers, "
                f"{f['n_train']:,} sequences × {f['epochs']} epochs; docs/replication.md).")
    return (f"These are {f['d_model']}-wide CPU runs ({f['layers']} layers, {f['n_train']:,} sequences × "
            f"{f['epochs']} epochs), a regime the paper never ran (it trains d_model {paper.model.d_model} on "
            f"{paper.train.n_train:,} sequences × {paper.train.epochs} epochs). " + faithful_sentence(faithful or []))


def faithful_facts(root: Path) -> list[dict[str, Any]]:
    """``run_facts`` of every run folder at the top of ``root`` whose setting the authors logged
    (``core.reference.authors_log_for``: their task, width and schedule), plus ``precision``,
    ``d_vocab`` (None: sized to the task) and ``authors`` (their ``LoggedEpoch`` at the last logged
    epoch ≤ the run's). Reads config.json and metrics.json only (validated); a folder that cannot
    be read is skipped. Sorted by γ."""
    from core.reference import authors_log_for
    from core.runs import RunError, list_runs, load_config, load_metrics
    out = []
    for d in list_runs(root):
        try:
            cfg = load_config(d)
            log = authors_log_for(cfg)
            if log is None:
                continue
            f = run_facts(d.name, cfg, load_metrics(d, cfg))
        except (RunError, OSError, KeyError, IndexError, TypeError, ValueError):
            continue
        logged = [e for e in log if e.epoch <= f["epochs"]]
        out.append({**f, "precision": cfg.train.precision, "d_vocab": cfg.model.d_vocab,
                    "authors": logged[-1] if logged else None})
    return sorted(out, key=lambda f: f["gamma"])


def faithful_sentence(faithful: list[dict[str, Any]]) -> str:
    """What the committed runs of the authors' own setting answered, next to what theirs did."""
    if not faithful:
        return "The faithful-width replication is in progress (docs/replication.md)."
    parts = []
    for f in faithful:
        vocab = f"{f['d_vocab']} tokens" if f["d_vocab"] else "110 tokens"
        a = f["authors"]
        theirs = (f"; theirs at epoch {a.epoch}: {a.answers}, seen {pct(a.seen)}" if a is not None else "")
        parts.append(f"{f['name']} (γ {f['gamma']:g}, {vocab}, {f['precision']}, seed {f['seed']}, {f['epochs']} epochs)"
                     f" answers ({f['pair']}) with {formula(f['inf_shift'])} on {pct(f['inferential'])} and "
                     f"{formula(f['sym_shift'])} on {pct(f['symmetric'])}, seen pairs {pct(f['seen'])}: "
                     f"{f['outcome']}{theirs}")
    return ("At the paper's own width (d_model 400), committed replications of the authors' logged runs: "
            + "; ".join(parts) + " (docs/replication.md).")


def preset_of(config: RunConfig) -> str | None:
    """The preset whose config equals ``config`` except γ, seed and device, or None."""
    want = _comparable(config)
    for name, p in PRESETS.items():
        if _comparable(p) == want:
            return name
    return None


def _comparable(config: RunConfig) -> dict[str, Any]:
    d = config.to_dict()
    d = {k: dict(d[k]) for k in ("task", "model", "train")}
    d["model"].pop("gamma", None)
    for k in ("seed", "device"):
        d["train"].pop(k, None)
    return d


def read_calibration(path: Path = CALIBRATION_FILE) -> list[dict[str, Any]]:
    """The records of ``docs/calibration_runs.jsonl`` (unreadable lines skipped; [] when missing)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict):
            out.append(r)
    return out


def seed_spread(config: RunConfig, records: list[dict[str, Any]]) -> dict[int, str]:
    """``{seed: verdict}`` of the calibration records trained with exactly ``config`` but for
    the seed (and device): the spread over seeds of the setting a shown run belongs to. A
    verdict the record marks as not clear (share < 0.9 or seen < 0.95, core/verdict.py) reads
    ``"leaning <outcome>"``, so a leaning run is never counted as a clear one."""
    want = _comparable(config)
    want["model"]["gamma"] = config.model.gamma
    out = {}
    for r in records:
        try:
            base = get_preset(r["preset"])
            cfg = base.replace(**r["overrides"]) if r.get("overrides") else base
        except (KeyError, TypeError, ValueError):
            continue
        got = _comparable(cfg)
        got["model"]["gamma"] = cfg.model.gamma
        if got == want and isinstance(r.get("seed"), int) and isinstance(r.get("verdict"), str):
            leaning = r.get("clear") is False and r["verdict"] != "not fitted"
            out[r["seed"]] = f"leaning {r['verdict']}" if leaning else r["verdict"]
    return out


def seeds_sentence(f: dict[str, Any], spread: dict[int, str]) -> str:
    """``"γ 1: of 5 seeds, 3 answered mostly inferential and 2 symmetric; the lesson shows seed 4 (chosen)."``"""
    if not spread:
        return (f"γ {f['gamma']:g}: no record of other seeds of this setting, so how typical seed {f['seed']} is "
                "is not known.")
    if set(spread) == {f["seed"]}:
        return (f"γ {f['gamma']:g}: seed {f['seed']} is the only seed of this setting trained to the end so far "
                f"({spread[f['seed']]}), so how typical it is is not known.")
    counts = Counter(spread.values())
    parts = [f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    picked = f"seed {f['seed']}" + (" (one of them)" if f["seed"] in spread else " (not among them)")
    n = len(spread)
    return (f"γ {f['gamma']:g}: of {n} seed{'s' if n != 1 else ''} trained, " + ", ".join(parts)
            + f"; the lesson shows {picked}, chosen to show the route clearly.")


def spread_caption(config: RunConfig, records: list[dict[str, Any]] | None = None,
                   what: str = "exactly this setting") -> str:
    """What the calibration record says about the seed spread of the setting about to be trained
    (Train page): ``"Measured here: of 5 seeds of exactly this setting, 3 inferential, 2 symmetric."``
    Issue 10: live CPU training is a small-scale replication and is described as such."""
    spread = seed_spread(config, read_calibration() if records is None else records)
    regime = (f"A {config.model.d_model}-wide model trained for {config.train.total_steps:,} steps: a small-scale"
              " replication, not the paper's regime (docs/replication.md)." if config.model.d_model < 400 else "")
    if not spread:
        return (f"No seed of {what} has been measured here, so the outcome of one run says little "
                "about the setting (docs/calibration.md). " + regime).strip()
    counts = Counter(spread.values())
    parts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return (f"Measured here: of {len(spread)} seeds of {what}, {parts} (docs/calibration.md). "
            + regime).strip()


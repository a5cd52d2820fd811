"""The app's one palette: what each colour means, for every chart builder and table.

Colours are the colour-blind-safe Okabe–Ito hues and mean the same thing on every page:

- **inferential** (composition, e.g. x−10) is blue, **symmetric** (the copy of the mirror pair,
  e.g. x−6) is vermillion, any other answer grey. The overridden pair, whose rule the symmetric
  solution copies, shares the symmetric colour; held-out pairs are reddish purple.
- **seen pairs** (their test-split accuracy) and the loss are black.
- A **run** is coloured by its outcome (its verdict on the held-out pair), never by its place in
  a list: a symmetric run is vermillion wherever it is drawn (``run_colours``).
- Series that mean none of these (eigenvalue indices, complexity measures) use the neutral
  colours below, never the route colours.

Pure (no Streamlit, no Altair), so tests can check the choices.
"""
from __future__ import annotations

from collections.abc import Sequence

INFERENTIAL = "#0072B2"   # Okabe–Ito blue
SYMMETRIC = "#D55E00"     # Okabe–Ito vermillion
OTHER = "#999999"         # grey: any other answer
SEEN = "#000000"          # black: seen pairs, loss
HELD_OUT = "#CC79A7"      # Okabe–Ito reddish purple
KEY = "#F0E442"           # Okabe–Ito yellow: the key item in a sequence
NOT_FITTED = "#555555"    # dark grey: a run that did not fit the seen pairs (lines); dots are hollow
LIGHT = "#BBBBBB"         # light grey: what is drawn behind (per-batch loss, edges of no route, the rest)
BATCH = LIGHT

MAPPING_COLOURS = {"inferential": INFERENTIAL, "symmetric": SYMMETRIC, "other": OTHER, "seen": SEEN}
ROLE_COLOURS = {"inferential": INFERENTIAL, "overridden": SYMMETRIC, "held out": HELD_OUT}
OUTCOME_COLOURS = {"inferential": INFERENTIAL, "symmetric": SYMMETRIC, "other": OTHER, "not fitted": NOT_FITTED}

# Series with no outcome meaning (complexity measures, …): Okabe–Ito hues other than the two routes.
NEUTRAL = ["#E69F00", "#009E73", "#56B4E9", "#000000", "#CC79A7", "#F0E442"]


def shade(hex_colour: str, amount: float) -> str:
    """Mix ``hex_colour`` with white (``amount`` > 0) or black (``amount`` < 0), |amount| ≤ 1."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    target = 255 if amount > 0 else 0
    a = abs(amount)
    return "#" + "".join(f"{round(c + (target - c) * a):02X}" for c in (r, g, b))


# the 2nd, 3rd, … run with the same outcome: lighter, then darker, so repeats stay apart
_REPEAT_SHADES = [0.0, 0.45, -0.35, 0.65, -0.55]


def outcome_colour(outcome: str | None) -> str:
    """The colour of a run whose verdict is ``outcome`` (unknown or missing: grey)."""
    return OUTCOME_COLOURS.get(outcome or "", OTHER)


def run_colours(outcomes: Sequence[str | None]) -> list[str]:
    """One colour per run, from its outcome: inferential runs blue, symmetric vermillion, others
    grey; a second run with the same outcome gets a lighter shade of it, a third a darker one."""
    seen: dict[str, int] = {}
    out = []
    for o in outcomes:
        base = outcome_colour(o)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(shade(base, _REPEAT_SHADES[n % len(_REPEAT_SHADES)]) if n else base)
    return out


def grey_ramp(n: int) -> list[str]:
    """``n`` greys from black to light grey: ordered series (λ1, λ2, …) with no outcome meaning."""
    if n <= 1:
        return ["#000000"] * max(n, 0)
    return [shade("#000000", 0.75 * i / (n - 1)) for i in range(n)]

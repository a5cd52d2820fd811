"""Sweep specs: a grid of runs over a preset, its cells, and the named grids of the paper.

A *sweep spec* is a preset plus a grid over any config fields (dotted keys such as
``model.gamma``, ``model.n_layers``, ``train.seed``, ``train.lr_peak``), following the
phase-diagram protocol of docs/science.md §4. Every grid point is one run with an id such as
``L3_g0.5_lr0.001_s0``; the runs of one *cell* differ only in the fields the paper selects over
(peak learning rate: best of) and averages over (seed: mean and spread).

This module is data only: no training, no tables. Running a spec is ``core.sweep``; its
results tables and publishing are ``core.sweep_tables``. Standard library plus ``core.config``.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import RunConfig, pair_key, parse_pair
from .presets import get_preset


# Table column for the config fields a phase diagram is drawn over; any other grid key keeps
# its dotted name as its column.
COLUMN = {
    "model.n_layers": "depth", "model.gamma": "gamma", "train.seed": "seed",
    "train.lr_peak": "lr", "train.weight_decay": "weight_decay",
}
# Short prefixes of run and cell ids (``L3_g0.5_lr0.001_s0``).
SHORT = {
    "model.n_layers": "L", "model.gamma": "g", "train.seed": "s", "train.lr_peak": "lr",
    "train.weight_decay": "wd", "model.d_model": "d", "train.epochs": "ep", "train.n_train": "n",
}
KEEP_WEIGHTS = ("all", "seed0", "none")


def column(key: str) -> str:
    """Table column of a dotted config key: ``model.gamma -> gamma``, others unchanged."""
    return COLUMN.get(key, key)


def pair_col(pair: str) -> str:
    """``"3,4" -> "3_4"``: pair suffix of per-pair columns (``inferential_3_4``)."""
    return pair.replace(",", "_")


def _freeze(v: Any) -> Any:
    """JSON values -> hashable values (lists become tuples, recursively)."""
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


def _thaw(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


def _fmt(v: Any) -> str:
    """Value as it appears in a run id: ``0.5``, ``0.001``, ``[[3,4],[4,3]] -> 3-4-4-3``."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        text = json.dumps(_thaw(v), separators=(",", ":"))
        return text.replace("[", "").replace("]", "").replace(",", "-")
    return "".join(c for c in str(v) if c.isalnum() or c in ".+-")


@dataclass(frozen=True)
class Point:
    """One grid point = one run. ``values``: ``((dotted key, value), ...)`` in grid order."""

    values: tuple[tuple[str, Any], ...]
    run_id: str
    cell_id: str

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.values).get(key, default)


@dataclass(frozen=True)
class SweepSpec:
    """A grid of runs over a base config, and how its cells are reduced.

    Attributes:
        name: the sweep's name (default output ``sweeps/<name>``, table ``<name>.csv``).
        preset: the base preset (``core.presets``); ``base`` wins when given.
        grid: ``((dotted key, (values...)), ...)``; every combination is one run.
        fixed: ``((dotted key, value), ...)`` applied to every run before the grid values.
        best_over: grid keys the selection rule maximises over (default the peak lr).
        mean_over: grid keys it averages over (default the seed).
        axes: ``(x, y)`` dotted keys the diagram is drawn over (a subset of the cell keys).
        pair: the held-out pair whose accuracies are the unprefixed columns (``"4,3"``).
        panels: table columns drawn as heatmaps, left to right.
        base: a full ``RunConfig`` dict replacing the preset (so a committed table can be
            recomputed exactly even after the preset changed).
        description: one sentence for humans.

    Raises:
        ValueError: empty or duplicated grid keys, unknown fields, values the config rejects,
            two points with the same run id, unknown axes.
    """

    name: str = "sweep"
    preset: str = "cpu-demo"
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()
    best_over: tuple[str, ...] = ("train.lr_peak",)
    mean_over: tuple[str, ...] = ("train.seed",)
    axes: tuple[str, ...] = ()
    pair: str = "4,3"
    panels: tuple[str, ...] = ("symmetric", "inferential")
    base: dict[str, Any] | None = field(default=None, compare=False)
    description: str = ""

    def __post_init__(self) -> None:
        grid = tuple((str(k), tuple(_freeze(v) for v in vals)) for k, vals in
                     (self.grid.items() if isinstance(self.grid, dict) else self.grid))
        object.__setattr__(self, "grid", grid)
        fixed = self.fixed.items() if isinstance(self.fixed, dict) else self.fixed
        object.__setattr__(self, "fixed", tuple((str(k), _freeze(v)) for k, v in fixed))
        for name in ("best_over", "mean_over", "axes", "panels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "pair", pair_key(parse_pair(self.pair)))
        if not self.grid:
            raise ValueError("a sweep needs at least one grid key, e.g. --grid model.gamma=0.5,0.8")
        keys = [k for k, _ in self.grid]
        if len(set(keys)) != len(keys):
            raise ValueError(f"grid key repeated: {keys}")
        for k, vals in self.grid:
            if not vals:
                raise ValueError(f"grid key {k} has no values")
            if len(set(vals)) != len(vals):
                raise ValueError(f"grid key {k} repeats a value: {list(vals)}")
        if not self.axes:
            cells = self.cell_keys
            pref = [k for k in ("model.gamma", "model.n_layers") if k in cells]
            object.__setattr__(self, "axes", tuple((pref + [k for k in cells if k not in pref])[:2]))
        bad = [a for a in self.axes if a not in self.cell_keys]
        if bad:
            raise ValueError(f"diagram axes {bad} are not cell keys of the grid (cell keys: {self.cell_keys})")
        base = self.base_config  # raises ValueError for an unknown preset or bad base
        points = self.points()
        ids = [p.run_id for p in points]
        if len(set(ids)) != len(ids):
            raise ValueError("two grid points share a run id; give the values distinct spellings")
        for p in points:  # every run must be a valid config: fail before training anything
            try:
                self.config_for(p, base)
            except (ValueError, TypeError) as e:
                raise ValueError(f"grid point {p.run_id}: {e}") from None

    # -- structure ------------------------------------------------------------------------
    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.grid)

    @property
    def cell_keys(self) -> tuple[str, ...]:
        """Grid keys that tell cells apart (all but ``best_over`` and ``mean_over``)."""
        return tuple(k for k in self.keys if k not in self.best_over and k not in self.mean_over)

    @property
    def base_config(self) -> RunConfig:
        if self.base is not None:
            try:
                return RunConfig.from_dict(self.base)
            except (TypeError, AttributeError) as e:
                raise ValueError(f"sweep base config is invalid: {e}") from None
        return get_preset(self.preset)

    def points(self) -> list[Point]:
        """Every grid point, cells in grid order, each cell's runs together."""
        order = (list(self.cell_keys) + [k for k in self.keys if k in self.best_over]
                 + [k for k in self.keys if k in self.mean_over])
        vals = dict(self.grid)
        out = []
        for combo in itertools.product(*(vals[k] for k in order)):
            values = tuple(zip(order, combo))
            run_id = "_".join(f"{SHORT.get(k, k.rpartition('.')[2])}{_fmt(v)}" for k, v in values)
            cell_n = len(self.cell_keys)
            cell_id = "_".join(f"{SHORT.get(k, k.rpartition('.')[2])}{_fmt(v)}" for k, v in values[:cell_n])
            out.append(Point(values, run_id, cell_id or "all"))
        return out

    def config_for(self, point: Point, base: RunConfig | None = None) -> RunConfig:
        """The run config of one grid point: base, then ``fixed``, then the point's values.

        As ``python -m core train --epochs`` does, changing ``train.epochs`` without setting
        ``train.decay_epochs`` rescales warm-up and decay so the schedule keeps its shape.
        """
        base = base or self.base_config
        overrides = {k: _thaw(v) for k, v in self.fixed}
        overrides.update({k: _thaw(v) for k, v in point.values})
        return base.replace(**overrides).with_epochs_scaled(base, overrides)

    def first_values(self) -> dict[str, Any]:
        """The first value of each ``mean_over`` key: the runs ``keep_weights="seed0"`` keeps."""
        g = dict(self.grid)
        return {k: g[k][0] for k in self.mean_over if k in g}

    def keeps_weights(self, point: Point, policy: str) -> bool:
        if policy not in KEEP_WEIGHTS:
            raise ValueError(f"keep-weights must be one of {KEEP_WEIGHTS}, got {policy!r}")
        if policy == "all":
            return True
        if policy == "none":
            return False
        return all(point.get(k) == v for k, v in self.first_values().items())

    def with_grid(self, **changes: Iterable[Any]) -> "SweepSpec":
        """Replace (or add) grid keys: ``spec.with_grid(**{"model.gamma": [0.5, 0.8]})``."""
        grid = dict(self.grid)
        for k, v in changes.items():
            grid[k] = tuple(v)
        return dataclasses.replace(self, grid=tuple(grid.items()), axes=self.axes if all(
            a in grid for a in self.axes) else ())

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "preset": self.preset,
            "grid": {k: [_thaw(v) for v in vals] for k, vals in self.grid},
            "fixed": {k: _thaw(v) for k, v in self.fixed},
            "best_over": list(self.best_over), "mean_over": list(self.mean_over), "axes": list(self.axes),
            "pair": self.pair, "panels": list(self.panels), "base": self.base, "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SweepSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown sweep spec fields: {sorted(unknown)}")
        d = dict(d)
        if isinstance(d.get("grid"), dict):
            d["grid"] = tuple(d["grid"].items())
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> "SweepSpec":
        """A spec from JSON: a spec object, or a published ``<name>.json`` holding ``{"spec": ...}``."""
        try:
            d = json.loads(Path(path).read_text())
            return cls.from_dict(d["spec"] if isinstance(d, dict) and "spec" in d else d)
        except FileNotFoundError:
            raise ValueError(f"sweep spec file {path} does not exist") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"sweep spec file {path} is not valid JSON: {e}") from None


# -- named specs ---------------------------------------------------------------------------

PHASE_GAMMAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def phase_spec(preset: str = "cpu-demo") -> SweepSpec:
    """Fig. 2(a,b): depth 2..6 × γ × 3 seeds at the preset's peak learning rate.

    The paper also takes the best of 9 peak learning rates in [1e-4, 3e-4]; add
    ``--grid train.lr_peak=...`` to do the same (9× the cost). γ spans 0.3..1.0: at the
    cpu-demo width (d_model 64) the weight scale d^(0.5-γ) of the paper's γ = 0.8 at
    d_model 400 is reached near γ = 0.93, so the range is extended past the paper's 0.8.
    """
    return SweepSpec(
        name=f"phase_{preset}", preset=preset,
        grid=(("model.n_layers", (2, 3, 4, 5, 6)), ("model.gamma", PHASE_GAMMAS), ("train.seed", (0, 1, 2))),
        axes=("model.gamma", "model.n_layers"), pair="4,3", panels=("symmetric", "inferential"),
        description="Phase diagram (Fig. 2a,b): depth × initialization rate γ, accuracy on the unseen pair (4,3).",
    )


def appendix_e_spec(preset: str = "cpu-demo") -> SweepSpec:
    """Fig. 14 (Appendix E): peak learning rate × weight decay, 3 layers, γ = 0.5.

    Both (3,4) and (4,3) are unseen and no pair is overridden, so the inferential and the
    symmetric mapping coincide for both: inferential accuracy on them says whether the
    single-anchor operations were learned. Learning rates bracket the preset's peak.
    """
    base_lr = get_preset(preset).train.lr_peak
    lrs = tuple(float(f"{base_lr * f:.3g}") for f in (0.25, 0.5, 1.0, 2.0, 4.0))
    return SweepSpec(
        name=f"appendix-e_{preset}", preset=preset,
        grid=(("train.lr_peak", lrs), ("train.weight_decay", (0.0, 0.01, 0.1, 0.3, 1.0)), ("train.seed", (0, 1))),
        fixed=(("model.n_layers", 3), ("model.gamma", 0.5), ("task.held_out", ((3, 4), (4, 3))), ("task.overrides", ())),
        best_over=(), mean_over=("train.seed",), axes=("train.lr_peak", "train.weight_decay"),
        pair="4,3", panels=("inferential_4_3", "inferential_3_4"),
        description="Appendix E (Fig. 14): learning rate × weight decay, 3 layers, γ = 0.5, (3,4) and (4,3) unseen.",
    )


NAMED_SPECS: dict[str, Callable[[str], SweepSpec]] = {"phase": phase_spec, "appendix-e": appendix_e_spec}


def named_spec(name: str, preset: str = "cpu-demo") -> SweepSpec:
    """A ready-made spec by name (``phase``, ``appendix-e``). Raises ValueError otherwise."""
    try:
        return NAMED_SPECS[name](preset)
    except KeyError:
        raise ValueError(f"unknown sweep spec {name!r}; choose one of {sorted(NAMED_SPECS)} or a JSON file") from None


def load_spec(out: str | Path) -> SweepSpec:
    """The spec a sweep folder was run with (``sweep.json``). Raises ValueError when absent."""
    path = Path(out) / "sweep.json"
    if not path.exists():
        raise ValueError(f"{out} is not a sweep folder: sweep.json is missing")
    return SweepSpec.load(path)


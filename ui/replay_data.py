"""Replay of a training from its stored history: the frames and the player, without Streamlit.

A run's ``metrics.json`` keeps one record per evaluation (``core.train.train``: epoch, loss,
seen-pair accuracy, the held-out pair's answer shares and its five most common answers, and
``snapshot``, ``core.probes.training_snapshot``). Replaying it means showing, for a point of
training, the curves up to that point, the held-out answer histogram there, and the probe
numbers over training ([INIT] Fig. 12b, and Fig. 3's attention where it was stored; sources in
docs/science.md §5). Nothing is trained or recomputed: every number comes from the records.

Two runs replay on one timeline, the sorted union of their evaluation epochs; at a timeline
point each run shows its last record at or before that epoch (``record_index``). The player is
a small immutable state (``Player``) with pure moves (first, last, step, play/pause, tick), so
its bounds are tested without a browser (``ui.replay`` draws it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from core import probes

# name -> (seconds between ticks, timeline points advanced per tick). Ticks are at least a second
# apart: each one redraws up to 14 charts of two runs on the server (about 0.5 s of one core of this
# loaded 2-core machine, the flow diagram the costliest), so faster speeds skip points instead.
SPEEDS: dict[str, tuple[float, int]] = {"0.5×": (2.0, 1), "1×": (1.0, 1), "2×": (1.0, 2), "4×": (1.0, 4),
                                        "8×": (1.0, 8)}
DEFAULT_SPEED = "1×"
NAMED_SHARE = 0.10   # an answer gets its own bar when it reaches this share in some record of a shown run


class ReplayError(ValueError):
    """A history that cannot be replayed (empty, or records without an epoch)."""


# -- the timeline ---------------------------------------------------------------------------------
def epochs_of(history: list[dict[str, Any]]) -> list[float]:
    """The epoch of every record, in order.

    Raises:
        ReplayError: an empty history, a record that is not an object or has no finite epoch,
            or epochs that go backwards.
    """
    if not isinstance(history, list) or not history:
        raise ReplayError("this run has no training history to replay")
    out = []
    for i, r in enumerate(history):
        e = r.get("epoch") if isinstance(r, dict) else None
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e):
            raise ReplayError(f"record {i} of the history has no epoch")
        if out and e < out[-1]:
            raise ReplayError(f"the history's epochs go backwards at record {i}")
        out.append(e)
    return out


def timeline(histories: list[list[dict[str, Any]]]) -> list[float]:
    """The sorted union of the evaluation epochs of one or more runs (``ReplayError`` as
    ``epochs_of``, or when no history is given)."""
    if not histories:
        raise ReplayError("no run to replay")
    return sorted({e for h in histories for e in epochs_of(h)})


def clamp(index: int, n: int) -> int:
    """``index`` within ``0 .. n-1`` (``n`` ≥ 1)."""
    return max(0, min(int(index), n - 1))


def record_index(history: list[dict[str, Any]], epoch: float) -> int:
    """Index of the run's last record at or before ``epoch`` (its first record when ``epoch``
    lies before all of them): what the run shows at that point of the timeline."""
    epochs = epochs_of(history)
    best = 0
    for i, e in enumerate(epochs):
        if e <= epoch:
            best = i
    return best


# -- one frame ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """What one run shows at one point of the replay.

    Attributes:
        index: the record shown (0-based) of ``n_records``.
        epoch: its epoch; ``step``: optimizer steps by then.
        train_loss: mean training loss over that epoch (None at epoch 0).
        seen: seen-pair test accuracy in [0, 1].
        pair: the held-out pair (``"4,3"``), or None when the run holds none out.
        held: its record (``inferential``, ``symmetric``, ``other`` shares, ``offsets``), or {}.
        snapshot: ``core.probes.training_snapshot`` of that record, or None (older runs).
    """

    index: int
    n_records: int
    epoch: float
    step: int | None
    train_loss: float | None
    seen: float
    pair: str | None
    held: dict[str, Any]
    snapshot: dict[str, Any] | None

    @property
    def attention(self) -> dict[str, Any] | None:
        """The stored Fig. 3 attention (``tokens``, ``key_pos``, ``attn`` [n_layers, T, T]), or
        None when the run was trained before it was recorded or the entry is malformed."""
        return attention_of(self.snapshot)


def frame_at(history: list[dict[str, Any]], index: int) -> Frame:
    """The frame of record ``index`` (clamped to the history's bounds).

    Raises:
        ReplayError: as ``epochs_of``, or a record without a seen-pair accuracy.
    """
    epochs = epochs_of(history)
    i = clamp(index, len(epochs))
    r = history[i]
    seen = r.get("seen_test_accuracy")
    if isinstance(seen, bool) or not isinstance(seen, (int, float)):
        raise ReplayError(f"record {i} of the history has no seen-pair accuracy")
    held_all = r.get("held_out") if isinstance(r.get("held_out"), dict) else {}
    pair = next(iter(held_all), None)
    held = held_all.get(pair, {}) if pair is not None else {}
    loss = r.get("train_loss")
    step = r.get("step")
    snap = r.get("snapshot")
    return Frame(i, len(epochs), epochs[i], int(step) if isinstance(step, int) else None,
                 float(loss) if isinstance(loss, (int, float)) and math.isfinite(loss) else None, float(seen),
                 pair, held if isinstance(held, dict) else {}, snap if isinstance(snap, dict) else None)


def frame_for_epoch(history: list[dict[str, Any]], epoch: float) -> Frame:
    """``frame_at(history, record_index(history, epoch))``: the run's frame at a timeline point."""
    return frame_at(history, record_index(history, epoch))


def attention_of(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{"tokens", "key_pos", "attn" [n_layers, T, T] list}`` from a snapshot, or None when absent
    or not of that shape (rows of T numbers in [0, 1], T tokens, a key position with two anchors
    after it)."""
    a = snapshot.get("attention") if isinstance(snapshot, dict) else None
    if not isinstance(a, dict):
        return None
    tokens, key_pos, attn = a.get("tokens"), a.get("key_pos"), a.get("attn")
    if not (isinstance(tokens, list) and isinstance(key_pos, int) and isinstance(attn, list) and attn):
        return None
    T = len(tokens)
    if not 0 <= key_pos <= T - 3:
        return None
    for layer in attn:
        if not isinstance(layer, list) or len(layer) != T:
            return None
        for row in layer:
            if (not isinstance(row, list) or len(row) != T
                    or not all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in row)):
                return None
    return {"tokens": [int(t) for t in tokens], "key_pos": key_pos, "attn": attn}


def has_attention(history: list[dict[str, Any]]) -> bool:
    """Whether any record stores the Fig. 3 attention."""
    return any(attention_of(r.get("snapshot")) is not None for r in history if isinstance(r, dict))


def route_of(snapshot: dict[str, Any] | None) -> tuple[float, float] | None:
    """``(inferential, symmetric)`` route strength of a snapshot: its stored ``route`` (mean over
    256 sequences), else computed from its stored attention on the one fixed sequence, else None."""
    if not isinstance(snapshot, dict):
        return None
    r = snapshot.get("route")
    if isinstance(r, dict) and all(isinstance(r.get(k), (int, float)) for k in ("inferential", "symmetric")):
        return float(r["inferential"]), float(r["symmetric"])
    a = attention_of(snapshot)
    if a is None:
        return None
    return probes.route_strengths(probes.flow_edges(a["attn"], a["key_pos"]))


# -- the answer histogram ----------------------------------------------------------------------------
def answer_categories(histories: list[list[dict[str, Any]]], pair: str, inf_shift: int, sym_shift: int,
                      named_share: float = NAMED_SHARE) -> list[int]:
    """The answer offsets (answer − key) that get a bar, shared by every frame of every run shown,
    so bars never jump or change colour while playing: the inferential and symmetric candidates,
    then every offset that reaches ``named_share`` in some record of one of the runs; sorted."""
    out = {int(inf_shift), int(sym_shift)}
    for h in histories:
        for r in h:
            held = r.get("held_out", {}) if isinstance(r, dict) else {}
            rec = held.get(pair) if isinstance(held, dict) else None
            offs = rec.get("offsets", {}) if isinstance(rec, dict) else {}
            for o, share in (offs.items() if isinstance(offs, dict) else ()):
                try:
                    if float(share) >= named_share:
                        out.add(int(o))
                except (TypeError, ValueError):
                    continue
    return sorted(out)


def answer_bars(held: dict[str, Any], categories: list[int], inf_shift: int, sym_shift: int) -> list[dict[str, Any]]:
    """One bar per category, then ``"anything else"``: ``{"offset", "share", "kind"}``.

    The candidates' shares come from the record's ``inferential`` / ``symmetric`` shares (exact);
    another category's from ``offsets`` (the record keeps the five most common answers only, so a
    rarer one counts 0 here and falls into "anything else"); "anything else" (offset None) is
    1 minus the bars shown, never below 0. ``kind`` is inferential, symmetric or other.
    """
    offs = held.get("offsets", {}) if isinstance(held, dict) else {}
    shares: dict[int, float] = {}
    for o, v in (offs.items() if isinstance(offs, dict) else ()):
        try:
            shares[int(o)] = float(v)
        except (TypeError, ValueError):
            continue
    bars = []
    for o in categories:
        if o == inf_shift and isinstance(held.get("inferential"), (int, float)):
            share = float(held["inferential"])
        elif o == sym_shift and isinstance(held.get("symmetric"), (int, float)):
            share = float(held["symmetric"])
        else:
            share = shares.get(o, 0.0)
        kind = "inferential" if o == inf_shift else "symmetric" if o == sym_shift else "other"
        bars.append({"offset": o, "share": share, "kind": kind})
    rest = max(0.0, 1.0 - sum(b["share"] for b in bars))
    bars.append({"offset": None, "share": rest, "kind": "anything else"})
    return bars


# -- series over training, up to a point ------------------------------------------------------------
def series_until(history: list[dict[str, Any]], upto: int) -> dict[str, list[dict[str, Any]]]:
    """Long rows of every curve for records ``0 .. upto`` (clamped):

    - ``loss``: ``{"epoch", "loss"}`` (epoch means; none at epoch 0);
    - ``accuracy``: ``{"epoch", "accuracy", "series"}``, series ``seen`` and, for the first
      held-out pair, ``inferential`` and ``symmetric``;
    - ``route``: ``{"epoch", "strength", "route"}`` (``route_of``), records that have one;
    - ``condensation``: ``{"epoch", "share"}``: W_Q(1) neurons in groups (cosine ≥ 0.7);
    - ``eigen``: ``{"epoch", "eigenvalue", "value"}``: top embedding eigenvalues λ1.., > 0.
    """
    n = len(epochs_of(history))
    last = clamp(upto, n)
    out: dict[str, list[dict[str, Any]]] = {"loss": [], "accuracy": [], "route": [], "condensation": [], "eigen": []}
    for i in range(last + 1):
        f = frame_at(history, i)
        if f.train_loss is not None and f.train_loss > 0:
            out["loss"].append({"epoch": f.epoch, "loss": f.train_loss})
        out["accuracy"].append({"epoch": f.epoch, "accuracy": f.seen, "series": "seen"})
        for m in ("inferential", "symmetric"):
            if isinstance(f.held.get(m), (int, float)):
                out["accuracy"].append({"epoch": f.epoch, "accuracy": float(f.held[m]), "series": m})
        route = route_of(f.snapshot)
        if route is not None:
            out["route"] += [{"epoch": f.epoch, "strength": route[0], "route": "inferential"},
                             {"epoch": f.epoch, "strength": route[1], "route": "symmetric"}]
        s = f.snapshot or {}
        c = s.get("wq1_condensation")
        if isinstance(c, dict) and isinstance(c.get("share_in_groups"), (int, float)):
            out["condensation"].append({"epoch": f.epoch, "share": float(c["share_in_groups"])})
        eig = s.get("embed_eigen_top")
        if isinstance(eig, list):
            out["eigen"] += [{"epoch": f.epoch, "eigenvalue": f"λ{j + 1}", "value": float(v)}
                             for j, v in enumerate(eig) if isinstance(v, (int, float)) and v > 0]
    return out


def loss_range(histories: list[list[dict[str, Any]]]) -> tuple[float, float] | None:
    """``(lowest, highest)`` positive epoch-mean loss over every record of the runs shown (the
    shared y axis of their loss charts), or None when none has a loss."""
    vals = [float(r["train_loss"]) for h in histories for r in h
            if isinstance(r, dict) and isinstance(r.get("train_loss"), (int, float))
            and math.isfinite(r["train_loss"]) and r["train_loss"] > 0]
    return (min(vals), max(vals)) if vals else None


def eigen_range(histories: list[list[dict[str, Any]]]) -> tuple[float, float] | None:
    """``(lowest, highest)`` positive stored eigenvalue over the runs shown, or None."""
    vals = [float(v) for h in histories for r in h if isinstance(r, dict) and isinstance(r.get("snapshot"), dict)
            for v in (r["snapshot"].get("embed_eigen_top") or []) if isinstance(v, (int, float)) and v > 0]
    return (min(vals), max(vals)) if vals else None


# -- the player -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Player:
    """Where a replay stands: the timeline point shown (``index`` of ``n``), whether it plays, at
    which speed (a key of ``SPEEDS``). Every move returns a new ``Player`` within bounds."""

    index: int = 0
    n: int = 1
    playing: bool = False
    speed: str = DEFAULT_SPEED

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ReplayError("a replay needs at least one point")
        if self.speed not in SPEEDS:
            object.__setattr__(self, "speed", DEFAULT_SPEED)
        object.__setattr__(self, "index", clamp(self.index, self.n))

    @property
    def at_end(self) -> bool:
        return self.index == self.n - 1

    @property
    def interval(self) -> float | None:
        """Seconds between ticks while playing, None when paused (nothing reruns)."""
        return SPEEDS[self.speed][0] if self.playing else None

    def first(self) -> "Player":
        return replace(self, index=0, playing=False)

    def last(self) -> "Player":
        return replace(self, index=self.n - 1, playing=False)

    def step(self, delta: int) -> "Player":
        """Move ``delta`` points (negative: back), within bounds; stepping pauses."""
        return replace(self, index=clamp(self.index + delta, self.n), playing=False)

    def seek(self, index: int) -> "Player":
        return replace(self, index=clamp(index, self.n), playing=False)

    def toggle(self) -> "Player":
        """Play or pause; play at the last point starts again from the first."""
        if self.playing:
            return replace(self, playing=False)
        return replace(self, index=0 if self.at_end else self.index, playing=self.n > 1)

    def with_speed(self, speed: str) -> "Player":
        return replace(self, speed=speed if speed in SPEEDS else DEFAULT_SPEED)

    def tick(self) -> "Player":
        """One timer tick: advance by the speed's points per tick while playing; reaching the last
        point stops. Paused: unchanged."""
        if not self.playing:
            return self
        index = clamp(self.index + SPEEDS[self.speed][1], self.n)
        return replace(self, index=index, playing=index < self.n - 1)

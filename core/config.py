"""Frozen configuration dataclasses for the anchor task, the model and training.

Implements the parameter tables of docs/science.md §2 (task), §3 (model) and §4 (training).
Every config round-trips through JSON with ``to_dict`` / ``from_dict``; derived values are
properties, never stored. Validation happens in ``__post_init__`` so an impossible config
can never exist: it raises ``ValueError`` with a sentence naming the problem.

Strictness (one rule for presets, the CLI, the app and files): a bool is never a number,
integer settings take integers (an integral float such as ``2.0`` is read as ``2``), every
float is finite, pairs are lists of two integers without repeats, and every size is bounded
(``BOUNDS``, plus ``max_params()`` / ``max_tensor()`` from the environment, see README "Runs on
disk"). ``RunConfig.from_dict(d, strict=True)`` is the reader for files: every section and field
required, nothing unknown; anything else (a list, ``None``) raises ``ValueError``, never
``TypeError`` or ``AttributeError``.

Sources: [INIT] Zhang, Xu et al., "Initialization is Critical to Whether Transformers Fit
Composite Functions by Reasoning or Memorizing", NeurIPS 2024, §3 and appendix A.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Pair = tuple[int, int]


# -- bounds: generous for the paper (d_model 400, d_ff 1200, vocabulary ~110-201, depth 2..6)
# and for researcher sweeps on a GPU, but refusing absurd values. README "Runs on disk" lists them.
BOUNDS: dict[str, tuple[float, float]] = {
    "task.anchor": (0, 100_000), "task.item_min": (0, 100_000),
    "task.item_max": (0, 100_000), "task.seq_len": (1, 1024), "task.split_modulus": (1, 100_000),
    "model.n_layers": (1, 24), "model.d_model": (1, 4096), "model.d_ff": (1, 16384), "model.d_head": (1, 4096),
    "model.n_heads": (1, 64), "model.n_ctx": (1, 1024), "model.d_vocab": (1, 200_001),
    "train.n_train": (1, 100_000_000), "train.epochs": (1, 100_000), "train.batch_size": (1, 1_048_576),
    "train.eval_every": (1, 100_000), "train.n_eval_per_pair": (1, 65_536), "train.seed": (0, 2**63 - 1),
    "train.warmup_epochs": (0, 1_000_000), "train.decay_epochs": (0, 1_000_000), "train.weight_decay": (0, 100),
    "train.eps": (1e-30, 1.0), "train.grad_clip": (1e-12, 1e6),
}
MAX_ANCHORS = 32                # operations: at most 32 anchors (1,024 ordered pairs)
DEFAULT_MAX_PARAMS = 100_000_000  # ~80x the paper's 6-layer d_model 400 model; env ANCHOR_MAX_PARAMS
DEFAULT_MAX_TENSOR = 64_000_000   # elements of the largest weight (256 MB in fp32); env ANCHOR_MAX_TENSOR
DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]{1,2})?")


def _env_limit(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"environment variable {name} must be a positive whole number, got {text!r}")
    return value


def max_params() -> int:
    """Largest model accepted, in parameters: env ``ANCHOR_MAX_PARAMS`` (default 100 million).
    Checked from the config before any model is built and from a weights file's header before
    any tensor is read. Raises ValueError when the variable is not a positive whole number."""
    return _env_limit("ANCHOR_MAX_PARAMS", DEFAULT_MAX_PARAMS)


def max_tensor() -> int:
    """Largest single weight accepted, in elements: env ``ANCHOR_MAX_TENSOR`` (default 64 million).
    Raises ValueError when the variable is not a positive whole number."""
    return _env_limit("ANCHOR_MAX_TENSOR", DEFAULT_MAX_TENSOR)


def _describe(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _bounded(key: str, v: Any, kind: str = "int") -> Any:
    """``v`` as an int (``kind="int"``) or a finite float inside ``BOUNDS[key]``; else ValueError."""
    v = _int(key, v) if kind == "int" else _float(key, v)
    lo, hi = BOUNDS[key]
    if not lo <= v <= hi:
        raise ValueError(f"{key} must be between {lo:g} and {hi:g}, got {_describe(v)}")
    return v


def _tuples(key: str, value: Any, n: int, what: str) -> tuple[tuple[int, ...], ...]:
    """A list of ``n``-integer lists (``[[4, 3]]``) as a tuple of int tuples; anything else -> ValueError."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{key} must be a list of {what}, got {_describe(value)}")
    out = []
    for item in value:
        if isinstance(item, (str, bytes, dict)) or not isinstance(item, (list, tuple)) or len(item) != n:
            raise ValueError(f"{key} must be a list of {what}, got the entry {_describe(item)}")
        out.append(tuple(_int(key, x) for x in item))
    return tuple(out)


def _pairs(value: Any, key: str = "task.held_out") -> tuple[Pair, ...]:
    return _tuples(key, value, 2, "anchor pairs like [4, 3]")  # type: ignore[return-value]


def _operations(value: Any) -> tuple[tuple[int, int], ...]:
    """``{"1": 5, ...}`` (JSON keys are strings) or ``[[1, 5], ...]`` -> ``((1, 5), ...)``."""
    if isinstance(value, dict):
        items = []
        for a, shift in value.items():
            if isinstance(a, str):
                if not re.fullmatch(r"-?[0-9]{1,7}", a.strip()):
                    raise ValueError(f"task.operations: anchor {_describe(a)} is not a whole number")
                a = int(a.strip())
            items.append((a, shift))
        value = items
    return _tuples("task.operations", value, 2, "[anchor, shift] pairs (or an object like {\"1\": 5})")  # type: ignore[return-value]


def pair_key(pair: Pair) -> str:
    """``(4, 3) -> "4,3"``: the key used for pairs in JSON metrics and the CLI contract."""
    return f"{pair[0]},{pair[1]}"


def parse_pair(text: str) -> Pair:
    """``"4,3"`` or ``"(4, 3)"`` -> ``(4, 3)``. Raises ValueError on anything else."""
    parts = text.strip().strip("()").replace(" ", "").split(",")
    if len(parts) != 2:
        raise ValueError(f"an anchor pair is two anchors like '4,3', got {text!r}")
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise ValueError(f"an anchor pair is two integers like '4,3', got {text!r}") from None


@dataclass(frozen=True)
class TaskConfig:
    """The anchor-function task of docs/science.md §2.

    Attributes:
        operations: ``((anchor, shift), ...)``; anchor ``a`` maps key ``x`` to ``x + shift``
            (the single-anchor function g(x; a)). Default ``1:+5, 2:+1, 3:-2, 4:-8``.
        held_out: anchor pairs never shown in training (the unseen pairs). Default ``(4,3)``.
        overrides: ``((a1, a2, shift), ...)``: pairs whose designated target is ``x + shift``
            instead of the composite f(x; a1, a2). Default ``(3,4) -> x-6``.
        item_min, item_max: inclusive range of key and noise items (token ids). Default 20..99.
        seq_len: tokens per sequence n. The key sits at position p in 0..n-3, the anchors at
            p+1 and p+2, every other position holds a noise item.
        split_modulus: m of the generalization-on-data split; a training sequence may hold key
            x at position p only if ``x mod m != p``, a test sequence only if ``x mod m == p``.
            ``None`` means n-2 ([INIT] §3.4). The authors' published logs used 9.
        split_noise: if True, noise items obey the same rule at their own position (q mod m);
            the default False restricts the key only (docs/science.md §2, our documented reading).

    Raises:
        ValueError: on any impossible setting (see ``_validate``).
    """

    operations: tuple[tuple[int, int], ...] = ((1, 5), (2, 1), (3, -2), (4, -8))
    held_out: tuple[Pair, ...] = ((4, 3),)
    overrides: tuple[tuple[int, int, int], ...] = ((3, 4, -6),)
    item_min: int = 20
    item_max: int = 99
    seq_len: int = 9
    split_modulus: int | None = None
    split_noise: bool = False

    def __post_init__(self) -> None:
        with _type_errors_as_value_errors("TaskConfig"):
            object.__setattr__(self, "operations", _operations(self.operations))
            object.__setattr__(self, "held_out", _pairs(self.held_out))
            object.__setattr__(self, "overrides", _tuples("task.overrides", self.overrides, 3,
                                                          "[anchor1, anchor2, shift] triples like [3, 4, -6]"))
            for name in ("item_min", "item_max", "seq_len"):
                object.__setattr__(self, name, _bounded(f"task.{name}", getattr(self, name)))
            if self.split_modulus is not None:
                object.__setattr__(self, "split_modulus", _bounded("task.split_modulus", self.split_modulus))
            if not isinstance(self.split_noise, bool):
                raise ValueError(f"task.split_noise must be true or false, got {_describe(self.split_noise)}")
            self._validate()

    # -- derived -------------------------------------------------------------------------
    @property
    def anchors(self) -> tuple[int, ...]:
        return tuple(a for a, _ in self.operations)

    @property
    def shift(self) -> dict[int, int]:
        """anchor -> shift of its single-anchor function g(x; a) = x + shift."""
        return dict(self.operations)

    @property
    def override_shift(self) -> dict[Pair, int]:
        return {(a, b): s for a, b, s in self.overrides}

    @property
    def pairs(self) -> tuple[Pair, ...]:
        """All ordered anchor pairs (a1, a2), a1 == a2 allowed: 16 for four anchors."""
        return tuple((a, b) for a in self.anchors for b in self.anchors)

    @property
    def seen_pairs(self) -> tuple[Pair, ...]:
        return tuple(p for p in self.pairs if p not in self.held_out)

    @property
    def modulus(self) -> int:
        return self.split_modulus if self.split_modulus is not None else self.seq_len - 2

    @property
    def n_key_positions(self) -> int:
        return self.seq_len - 2

    @property
    def composite_shifts(self) -> list[int]:
        return [self.shift[a] + self.shift[b] for a, b in self.pairs]

    @property
    def target_range(self) -> tuple[int, int]:
        """Smallest and largest target token over every pair and every mapping."""
        shifts = self.composite_shifts + [s for _, _, s in self.overrides]
        return self.item_min + min(shifts), self.item_max + max(shifts)

    @property
    def vocab_size(self) -> int:
        """Token ids are the integers themselves, so the vocabulary is 0..max token."""
        return max(self.item_max, max(self.anchors), self.target_range[1]) + 1

    def pair_type(self, pair: Pair) -> str:
        """``"held out"``, ``"overridden"`` or ``"inferential"``: the pair's role in training."""
        if pair in self.held_out:
            return "held out"
        if pair in self.override_shift:
            return "overridden"
        return "inferential"

    # -- validation -----------------------------------------------------------------------
    def _validate(self) -> None:
        anchors = [a for a, _ in self.operations]
        if len(anchors) < 2:
            raise ValueError("the task needs at least two anchors (anchor pairs are formed from them)")
        if len(anchors) > MAX_ANCHORS:
            raise ValueError(f"the task has {len(anchors)} anchors; at most {MAX_ANCHORS} are allowed")
        if len(set(anchors)) != len(anchors):
            raise ValueError(f"duplicate anchors in operations: {anchors}")
        if any(a < 0 for a in anchors):
            raise ValueError(f"anchors are token ids and must be ≥ 0, got {anchors}")
        for a in anchors:  # shifts are bounded by the vocabulary check below
            _bounded("task.anchor", a)
        if len(set(self.held_out)) != len(self.held_out):
            raise ValueError(f"task.held_out lists a pair twice: {[list(p) for p in self.held_out]}")
        overridden = [(a, b) for a, b, _ in self.overrides]
        if len(set(overridden)) != len(overridden):
            raise ValueError(f"task.overrides lists a pair twice (which shift would it train?): "
                             f"{[list(o) for o in self.overrides]}")
        if self.item_min < 0 or self.item_max < self.item_min:
            raise ValueError(
                f"item range {self.item_min}..{self.item_max} is empty or negative"
            )
        inside = [a for a in anchors if self.item_min <= a <= self.item_max]
        if inside:
            raise ValueError(
                f"anchors {inside} lie inside the item range {self.item_min}..{self.item_max}:"
                " a key or noise item could not be told apart from an anchor"
            )
        if self.seq_len < 3:
            raise ValueError(f"sequence length {self.seq_len} is too short: key + two anchors need 3")
        if self.split_modulus is not None and self.split_modulus < 1:
            raise ValueError(f"split modulus must be ≥ 1, got {self.split_modulus}")
        valid = set(self.pairs)
        for p in self.held_out:
            if p not in valid:
                raise ValueError(f"held-out pair {p} uses an anchor that has no operation")
        for a, b, _ in self.overrides:
            if (a, b) not in valid:
                raise ValueError(f"overridden pair {(a, b)} uses an anchor that has no operation")
            if (a, b) in self.held_out:
                raise ValueError(
                    f"pair {(a, b)} is both held out and overridden: a held-out pair has no"
                    " training target to override"
                )
        if len(self.held_out) >= len(self.pairs):
            raise ValueError("every anchor pair is held out: nothing is left to train on")
        lo, hi = self.target_range
        if lo < 0:
            raise ValueError(
                f"the smallest target is {lo} (item {self.item_min} plus shift {lo - self.item_min}):"
                " targets are token ids and must be ≥ 0; raise the item range or shrink the shifts"
            )
        if hi > 100_000:
            raise ValueError(f"the largest target {hi} would need an unreasonably large vocabulary")
        m = self.modulus
        n_items = self.item_max - self.item_min + 1
        positions = range(self.seq_len) if self.split_noise else range(self.n_key_positions)
        for p in positions:
            r = p % m
            n_test = (self.item_max - r) // m - (self.item_min - 1 - r) // m  # items x with x mod m == r
            if n_test == 0 or n_test == n_items:
                raise ValueError(
                    f"split rule leaves position {p} with no {'test' if n_test == 0 else 'training'}"
                    f" keys (item range {self.item_min}..{self.item_max}, modulus {m})"
                )

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["operations"] = {str(a): s for a, s in self.operations}
        d["held_out"] = [list(p) for p in self.held_out]
        d["overrides"] = [list(o) for o in self.overrides]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = False) -> "TaskConfig":
        """From ``to_dict``'s form; ``strict``: every field required (the reader of files)."""
        return cls(**_known(cls, d, strict))


@dataclass(frozen=True)
class ModelConfig:
    """The decoder-only, post-LayerNorm transformer of docs/science.md §3 ([INIT] §3.5, appendix A).

    Attributes:
        n_layers: depth L (the paper sweeps 2..6).
        d_model: residual width (paper 400).
        d_ff: FFN hidden width (paper 1200).
        d_head: query/key/value width per head, d_k = d_v (paper 200).
        n_heads: attention heads (paper 1; Fig. 2(c) uses multi-head GPT-2).
        gamma: initialization rate γ; each weight ~ N(0, (1/d_in)^(2γ)).
        embed_fan_in: ``"d_model"`` (the authors' code: W_E, W_pos std d_model^-γ) or
            ``"vocab"`` (std d_vocab^-γ, the literal "number of inputs" of a one-hot layer).
        n_ctx: positional table length; ``None`` = the task's sequence length.
        d_vocab: rows of W_E and columns of W_U; ``None`` = the task's vocabulary (0..largest
            token). Larger values add tokens that never occur: the authors' code uses 201
            (docs/replication.md: at small initialization the unused outputs slow the fit).
    """

    n_layers: int = 2
    d_model: int = 64
    d_ff: int = 192
    d_head: int = 32
    n_heads: int = 1
    gamma: float = 0.5
    embed_fan_in: str = "d_model"
    n_ctx: int | None = None
    d_vocab: int | None = None

    def __post_init__(self) -> None:
        with _type_errors_as_value_errors("ModelConfig"):
            self._validate()

    def _validate(self) -> None:
        for name in ("n_layers", "d_model", "d_ff", "d_head", "n_heads"):
            v = _int(name, getattr(self, name))
            if v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v}")
            object.__setattr__(self, name, v)
        if self.n_layers > BOUNDS["model.n_layers"][1]:
            raise ValueError(f"n_layers = {self.n_layers} is far beyond the paper's 2..6 (at most 24)")
        for name in ("d_model", "d_ff", "d_head", "n_heads"):
            _bounded(f"model.{name}", getattr(self, name))
        if self.n_ctx is not None:
            object.__setattr__(self, "n_ctx", _bounded("model.n_ctx", self.n_ctx))
        if self.d_vocab is not None:
            object.__setattr__(self, "d_vocab", _bounded("model.d_vocab", self.d_vocab))
        g = self.gamma
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not (0.0 < g <= 3.0):  # NaN fails too
            raise ValueError(
                f"initialization rate γ must be a number in (0, 3], got {_describe(g)}"
                " (the paper uses 0.3..0.8; the app offers 0.1..1.5)"
            )
        object.__setattr__(self, "gamma", float(g))
        if not isinstance(self.embed_fan_in, str) or self.embed_fan_in not in ("d_model", "vocab"):
            raise ValueError(f"embed_fan_in must be 'd_model' or 'vocab', got {_describe(self.embed_fan_in)}")

    @property
    def d_attn(self) -> int:
        """Concatenated head width n_heads · d_head: the fan-in of W_O."""
        return self.n_heads * self.d_head

    @property
    def forward_scale(self) -> float:
        """d_model^(0.5-γ): weight scale relative to LeCun init (paper γ=0.8, d=400 -> ≈0.17)."""
        return self.d_model ** (0.5 - self.gamma)

    def n_params(self, d_vocab: int, n_ctx: int) -> int:
        per_block = 3 * self.d_model * self.d_attn + self.d_attn * self.d_model
        per_block += 2 * self.d_model * self.d_ff + 4 * self.d_model  # two LayerNorms
        return (d_vocab + n_ctx) * self.d_model + self.n_layers * per_block + self.d_model * d_vocab + d_vocab

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = False) -> "ModelConfig":
        """From ``to_dict``'s form; ``strict``: every field required (the reader of files)."""
        return cls(**_known(cls, d, strict))


@dataclass(frozen=True)
class TrainConfig:
    """Training of docs/science.md §4 ([INIT] appendix A), expressed as a schedule.

    Learning rate (per optimizer step, epochs fractional): linear from ``lr_start`` to
    ``lr_peak`` over ``warmup_epochs``, cosine from ``lr_peak`` to ``lr_end`` until
    ``decay_epochs``, then flat at ``lr_end``. The paper: 1e-5 -> 2.5e-4 over 10 epochs,
    cosine to 1e-5 at epoch 200, 210 epochs in all.

    Attributes:
        n_train: training sequences: the fixed pool size (``data="pool"``, the paper) or the
            number generated afresh every epoch (``data="online"``).
        data: ``"pool"`` or ``"online"``.
        epochs, batch_size: as in the paper (210, 2048).
        weight_decay, betas, eps, grad_clip: AdamW and clipping (0.01, (0.9, 0.999), 1e-8, 1).
        eval_every: evaluate every this many epochs (the last epoch is always evaluated).
        n_eval_per_pair: test-split sequences per anchor pair at each evaluation.
        seed: seeds data, initialization and batch order.
        device: ``"auto"`` (CUDA, then MPS, then CPU), or a torch device string.
        precision: ``"fp32"`` (default), ``"tf32"`` (CUDA only: fp32 matmuls on TF32 tensor
            cores, everything else fp32; plain fp32 elsewhere) or ``"bf16"``: matmuls under bf16
            autocast with fp32 master weights, softmax, LayerNorm and loss (``core.train.autocast``). Worth it on
            GPUs and CPUs with native bf16; on an AVX2-only CPU it is slower (bench/README.md).
    """

    n_train: int = 20_000
    data: str = "pool"
    epochs: int = 30
    batch_size: int = 256
    lr_start: float = 4e-5
    lr_peak: float = 1e-3
    lr_end: float = 4e-5
    warmup_epochs: float = 3.0
    decay_epochs: float = 30.0
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0
    eval_every: int = 1
    n_eval_per_pair: int = 256
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        with _type_errors_as_value_errors("TrainConfig"):
            self._validate()

    def _validate(self) -> None:
        b = self.betas
        if isinstance(b, (str, bytes, dict)) or not isinstance(b, (list, tuple)) or len(b) != 2:
            raise ValueError(f"train.betas must be a pair of numbers like [0.9, 0.999], got {_describe(b)}")
        betas = tuple(_float("train.betas", x) for x in b)
        if not all(0 <= x < 1 for x in betas):
            raise ValueError(f"train.betas must both lie in [0, 1), got {list(betas)}")
        object.__setattr__(self, "betas", betas)
        for name in ("lr_start", "lr_peak", "lr_end"):
            object.__setattr__(self, name, _float(name, getattr(self, name)))
        for name in ("warmup_epochs", "decay_epochs", "weight_decay", "eps", "grad_clip"):
            object.__setattr__(self, name, _bounded(f"train.{name}", getattr(self, name), "float"))
        for name in ("n_train", "epochs", "batch_size", "eval_every", "n_eval_per_pair"):
            v = _int(name, getattr(self, name))
            if v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v}")
            object.__setattr__(self, name, _bounded(f"train.{name}", v))
        object.__setattr__(self, "seed", _bounded("train.seed", self.seed))
        for name, allowed in (("precision", ("fp32", "tf32", "bf16")), ("data", ("pool", "online"))):
            v = getattr(self, name)
            if not isinstance(v, str) or v not in allowed:
                raise ValueError(f"{name} must be {' or '.join(map(repr, allowed))}, got {_describe(v)}")
        if not isinstance(self.device, str) or not DEVICE.fullmatch(self.device):
            raise ValueError(f"train.device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {_describe(self.device)}")
        for name in ("lr_start", "lr_peak", "lr_end"):
            v = getattr(self, name)
            if not (0 < v < 1):
                raise ValueError(f"{name} must be in (0, 1), got {v}")
        if self.warmup_epochs < 0 or self.decay_epochs < self.warmup_epochs:
            raise ValueError("need 0 ≤ warmup_epochs ≤ decay_epochs")
        if self.weight_decay < 0:
            raise ValueError(f"weight decay must be ≥ 0, got {self.weight_decay}")
        top = max(self.lr_start, self.lr_peak, self.lr_end)
        if top * self.weight_decay >= 1:
            raise ValueError(f"learning rate × weight decay = {top * self.weight_decay:g} ≥ 1: AdamW would"
                             " multiply every weight by 1 − lr·wd ≤ 0 at each step")

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_train // self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def sequences_seen(self) -> int:
        return self.n_train * self.epochs

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = False) -> "TrainConfig":
        """From ``to_dict``'s form; ``strict``: every field required (the reader of files)."""
        return cls(**_known(cls, d, strict))


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run: task, model and training."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict()}

    def __post_init__(self) -> None:
        for name, kind in (("task", TaskConfig), ("model", ModelConfig), ("train", TrainConfig)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"RunConfig.{name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        self._validate()

    def _validate(self) -> None:
        """Constraints between sections: positions for the sequence, and the size of the model."""
        n_ctx = self.model.n_ctx
        if n_ctx is not None and n_ctx < self.task.seq_len:
            raise ValueError(f"model.n_ctx = {n_ctx} positions cannot hold sequences of task.seq_len ="
                             f" {self.task.seq_len} tokens (use null: the sequence length)")
        d_vocab = self.model.d_vocab
        if d_vocab is not None and d_vocab < self.task.vocab_size:
            raise ValueError(f"model.d_vocab = {d_vocab} cannot hold the task's tokens 0..{self.task.vocab_size - 1}"
                             " (use null: the task's vocabulary)")
        n = self.n_params
        if n > max_params():
            raise ValueError(f"the model would have {n:,} parameters, more than the {max_params():,} allowed"
                             " (environment variable ANCHOR_MAX_PARAMS)")
        shapes = self.weight_shapes
        name, shape = max(shapes.items(), key=lambda kv: math.prod(kv[1]))
        if math.prod(shape) > max_tensor():
            raise ValueError(f"weight {name} would have {math.prod(shape):,} elements {list(shape)}, more than the"
                             f" {max_tensor():,} allowed (environment variable ANCHOR_MAX_TENSOR)")

    @property
    def n_ctx(self) -> int:
        """Positions of the model: ``model.n_ctx``, or the task's sequence length when null."""
        return self.model.n_ctx or self.task.seq_len

    @property
    def d_vocab(self) -> int:
        """Vocabulary of the model: ``model.d_vocab``, or the task's vocabulary when null."""
        return self.model.d_vocab or self.task.vocab_size

    @property
    def n_params(self) -> int:
        """Parameters of the model this config builds (``ModelConfig.n_params``), computed, not allocated."""
        return self.model.n_params(self.d_vocab, self.n_ctx)

    @property
    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The largest weights of the model by kind (names as in ``core.model``), without building it."""
        m, v = self.model, self.d_vocab
        return {"W_E": (v, m.d_model), "W_pos": (self.n_ctx, m.d_model), "W_U": (m.d_model, v),
                "W_Q": (m.n_heads, m.d_model, m.d_head), "W_in": (m.d_model, m.d_ff)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = False) -> "RunConfig":
        """From ``to_dict``'s form. Missing sections or fields take the defaults, unless ``strict``
        (the reader of files, ``core.runs.load_config``): then every section and field is required.

        Raises:
            ValueError: not a JSON object, an unknown or (strict) missing section or field, or
                a value the config rejects. Never TypeError or AttributeError.
        """
        if not isinstance(d, dict):
            raise ValueError(f"a run config must be a JSON object with task, model and train, got {type(d).__name__}")
        unknown = set(d) - {"task", "model", "train"}
        if unknown:
            raise ValueError(f"unknown config sections: {sorted(map(str, unknown))} (expected task, model, train)")
        missing = [k for k in ("task", "model", "train") if k not in d]
        if strict and missing:
            raise ValueError(f"the config lacks the section(s) {missing}")
        return cls(
            task=TaskConfig.from_dict(d.get("task", {}), strict),
            model=ModelConfig.from_dict(d.get("model", {}), strict),
            train=TrainConfig.from_dict(d.get("train", {}), strict),
        )

    def replace(self, **overrides: Any) -> "RunConfig":
        """Return a copy with dotted overrides, e.g. ``replace(**{"model.gamma": 0.8})``.

        Raises:
            ValueError: unknown section or field, or a value the config rejects.
        """
        sections = {"task": self.task, "model": self.model, "train": self.train}
        changes: dict[str, dict[str, Any]] = {k: {} for k in sections}
        for dotted, value in overrides.items():
            section, _, name = dotted.partition(".")
            if section not in sections or not name:
                raise ValueError(f"unknown setting {dotted!r}: use task.X, model.X or train.X")
            if name not in {f.name for f in dataclasses.fields(sections[section])}:
                raise ValueError(f"unknown setting {dotted!r}")
            changes[section][name] = value
        return RunConfig(
            **{k: dataclasses.replace(v, **changes[k]) if changes[k] else v for k, v in sections.items()}
        )

    def with_epochs_scaled(self, base: "RunConfig", overrides: dict[str, Any]) -> "RunConfig":
        """Keep the schedule's shape when ``overrides`` changed ``train.epochs`` but not the decay.

        ``self`` is ``base`` with ``overrides`` applied; warm-up and decay end are rescaled by
        epochs / base epochs (warm-up only if not set explicitly). Used by the CLI, sweeps and the app.
        """
        if "train.epochs" not in overrides or "train.decay_epochs" in overrides:
            return self
        scale = self.train.epochs / base.train.epochs
        warm = self.train.warmup_epochs if "train.warmup_epochs" in overrides else base.train.warmup_epochs * scale
        return self.replace(**{"train.warmup_epochs": warm, "train.decay_epochs": base.train.decay_epochs * scale})

    @property
    def sequence_flops(self) -> float:
        """Approximate FLOP per training sequence, forward + backward (6 · params · tokens)."""
        return 6.0 * self.n_params * self.task.seq_len

    @property
    def total_flops(self) -> float:
        return self.sequence_flops * self.train.sequences_seen


_EXPECTED_OF_TYPE = {
    "int": "an integer", "int | None": "an integer or null", "float": "a number", "bool": "true or false",
    "str": "a string", "tuple[float, float]": "a JSON list of two numbers like [0.9, 0.999]",
}
_EXPECTED_OF_FIELD = {
    "task.operations": 'a JSON object like {"1": 5, "2": 1, "3": -2, "4": -8}',
    "task.held_out": "a JSON list of anchor pairs like [[4,3]]",
    "task.overrides": "a JSON list of [anchor1, anchor2, shift] triples like [[3,4,-6]]",
}


def setting_type(dotted: str) -> str:
    """What a setting takes, in words, for messages: ``"train.seed" -> "an integer"``.

    Raises:
        ValueError: ``dotted`` is not ``task.X``, ``model.X`` or ``train.X`` of a known field.
    """
    section, _, name = dotted.partition(".")
    kind = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}.get(section)
    fields = {f.name: f for f in dataclasses.fields(kind)} if kind else {}
    if name not in fields:
        raise ValueError(f"unknown setting {dotted!r}: use task.X, model.X or train.X with a field of"
                         " `python -m core train --help`")
    return _EXPECTED_OF_FIELD.get(dotted) or _EXPECTED_OF_TYPE.get(str(fields[name].type), "a JSON value")


def is_string_setting(dotted: str) -> bool:
    """Whether a setting takes a string (``model.embed_fan_in``, ``train.data``, ``train.device``,
    ``train.precision``): only those accept a bare word on the command line."""
    try:
        return setting_type(dotted) == "a string"
    except ValueError:
        return False


@contextmanager
def _type_errors_as_value_errors(what: str):
    """A value of the wrong type (``item_min="abc"``) is bad input: report it as ValueError."""
    try:
        yield
    except TypeError as e:
        raise ValueError(f"{what}: a setting has the wrong type ({e})") from None


def _int(name: str, v: Any) -> int:
    """An int, or a float with an integral finite value (``2.0`` -> 2); a bool, NaN, ±inf, 1.5 or a
    string raise ValueError."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise ValueError(f"{name} must be an integer, got {_describe(v)}")
    return int(v)


def _float(name: str, v: Any) -> float:
    """A finite number as a float; a bool, NaN, ±inf (also an int too large for a float) raise ValueError."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name} must be a number, got {_describe(v)}")
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise ValueError(f"{name} must be a finite number, got {_describe(v)}")
    return f


def _known(cls: type, d: dict[str, Any], strict: bool = False) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object, got {type(d).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(map(str, unknown))}")
    missing = [n for n in names if n not in d]
    if strict and missing:
        raise ValueError(f"{cls.__name__} lacks the field(s) {missing} (every field is required in a run's"
                         " config.json: a missing one is never filled with a default)")
    return dict(d)

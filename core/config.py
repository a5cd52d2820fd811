"""Frozen configuration dataclasses for the anchor task, the model and training.

Implements the parameter tables of docs/science.md §2 (task), §3 (model) and §4 (training).
Every config round-trips through JSON with ``to_dict`` / ``from_dict``; derived values are
properties, never stored. Validation happens in ``__post_init__`` so an impossible config
can never exist: it raises ``ValueError`` with a sentence naming the problem.

Sources: [INIT] Zhang, Xu et al., "Initialization is Critical to Whether Transformers Fit
Composite Functions by Reasoning or Memorizing", NeurIPS 2024, §3 and appendix A.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Pair = tuple[int, int]


def _pairs(value: Any) -> tuple[Pair, ...]:
    return tuple((int(a), int(b)) for a, b in value)


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
            ops = self.operations.items() if isinstance(self.operations, dict) else self.operations
            object.__setattr__(self, "operations", tuple((int(a), int(s)) for a, s in ops))
            object.__setattr__(self, "held_out", _pairs(self.held_out))
            object.__setattr__(
                self, "overrides", tuple((int(a), int(b), int(s)) for a, b, s in self.overrides)
            )
            for name in ("item_min", "item_max", "seq_len"):
                object.__setattr__(self, name, _int(name, getattr(self, name)))
            if self.split_modulus is not None:
                object.__setattr__(self, "split_modulus", _int("split_modulus", self.split_modulus))
            object.__setattr__(self, "split_noise", bool(self.split_noise))
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
        if len(set(anchors)) != len(anchors):
            raise ValueError(f"duplicate anchors in operations: {anchors}")
        if any(a < 0 for a in anchors):
            raise ValueError(f"anchors are token ids and must be ≥ 0, got {anchors}")
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
            n_test = sum(1 for x in range(self.item_min, self.item_max + 1) if x % m == r)
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
    def from_dict(cls, d: dict[str, Any]) -> "TaskConfig":
        d = dict(d)
        ops = d.get("operations")
        if isinstance(ops, dict):
            d["operations"] = tuple((int(a), int(s)) for a, s in ops.items())
        return cls(**_known(cls, d))


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
    """

    n_layers: int = 2
    d_model: int = 64
    d_ff: int = 192
    d_head: int = 32
    n_heads: int = 1
    gamma: float = 0.5
    embed_fan_in: str = "d_model"
    n_ctx: int | None = None

    def __post_init__(self) -> None:
        with _type_errors_as_value_errors("ModelConfig"):
            self._validate()

    def _validate(self) -> None:
        for name in ("n_layers", "d_model", "d_ff", "d_head", "n_heads"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n_layers > 24:
            raise ValueError(f"n_layers = {self.n_layers} is far beyond the paper's 2..6")
        g = float(self.gamma)
        if not (0.0 < g <= 3.0) or g != g:
            raise ValueError(
                f"initialization rate γ must be in (0, 3], got {self.gamma}"
                " (the paper uses 0.3..0.8; the app offers 0.1..1.5)"
            )
        object.__setattr__(self, "gamma", g)
        if self.embed_fan_in not in ("d_model", "vocab"):
            raise ValueError(f"embed_fan_in must be 'd_model' or 'vocab', got {self.embed_fan_in!r}")

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
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        return cls(**_known(cls, d))


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
        precision: ``"fp32"`` (default) or ``"bf16"``: matmuls under bf16 autocast with fp32
            master weights, softmax, LayerNorm and loss (``core.train.autocast``). Worth it on
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
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        for name in ("lr_start", "lr_peak", "lr_end", "warmup_epochs", "decay_epochs", "weight_decay", "eps",
                     "grad_clip"):
            object.__setattr__(self, name, _float(name, getattr(self, name)))
        for name in ("n_train", "epochs", "batch_size", "eval_every", "n_eval_per_pair"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.data not in ("pool", "online"):
            raise ValueError(f"data must be 'pool' or 'online', got {self.data!r}")
        for name in ("lr_start", "lr_peak", "lr_end"):
            v = getattr(self, name)
            if not (0 < v < 1):
                raise ValueError(f"{name} must be in (0, 1), got {v}")
        if self.warmup_epochs < 0 or self.decay_epochs < self.warmup_epochs:
            raise ValueError("need 0 ≤ warmup_epochs ≤ decay_epochs")
        if self.weight_decay < 0:
            raise ValueError(f"weight decay must be ≥ 0, got {self.weight_decay}")

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
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return cls(**_known(cls, d))


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run: task, model and training."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        unknown = set(d) - {"task", "model", "train"}
        if unknown:
            raise ValueError(f"unknown config sections: {sorted(unknown)} (expected task, model, train)")
        return cls(
            task=TaskConfig.from_dict(d.get("task", {})),
            model=ModelConfig.from_dict(d.get("model", {})),
            train=TrainConfig.from_dict(d.get("train", {})),
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
        n = self.model.n_params(self.task.vocab_size, self.model.n_ctx or self.task.seq_len)
        return 6.0 * n * self.task.seq_len

    @property
    def total_flops(self) -> float:
        return self.sequence_flops * self.train.sequences_seen


@contextmanager
def _type_errors_as_value_errors(what: str):
    """A value of the wrong type (``item_min="abc"``) is bad input: report it as ValueError."""
    try:
        yield
    except TypeError as e:
        raise ValueError(f"{what}: a setting has the wrong type ({e})") from None


def _int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
        raise ValueError(f"{name} must be an integer, got {v!r}")
    return int(v)


def _float(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name} must be a number, got {v!r}")
    return float(v)


def _known(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    return dict(d)

"""Anchor-function data: sequences, targets under every mapping, and the train/test split.

Implements docs/science.md §2 ([INIT] §3.1–3.4; [ANCHOR] §2). Generation is pure, vectorised and
seeded by a ``torch.Generator``: no Python loop per sequence.

A worked sequence (default task, n = 9): key position p = 2, key x = 80, pair (1, 2)::

    position  0   1   2   3  4   5   6   7   8
    token    57  33  80   1  2  64  91  22  45
                     key  anchors  ... noise ...

The designated target is g(g(80; 1); 2) = (80 + 5) + 1 = 86, read at the last position.
80 mod 7 = 3 ≠ 2, so this sequence belongs to the training split; with x = 86 (86 mod 7 = 2)
at p = 2 it would belong to the test split.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import Pair, TaskConfig

MAPPINGS = ("designated", "inferential", "symmetric")
SPLITS = ("train", "test", "any")


@dataclass
class Batch:
    """A set of generated sequences.

    Attributes:
        tokens: ``[n, seq_len]`` int64 token ids.
        key: ``[n]`` int64 key item x.
        key_pos: ``[n]`` int64 key position p (anchors at p+1, p+2).
        a1, a2: ``[n]`` int64 the two anchors.
        target: ``[n]`` int64 designated target (what training uses).
    """

    tokens: torch.Tensor
    key: torch.Tensor
    key_pos: torch.Tensor
    a1: torch.Tensor
    a2: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(*(t.to(device) for t in (self.tokens, self.key, self.key_pos, self.a1, self.a2, self.target)))


def single_anchor(task: TaskConfig, x: int, anchor: int) -> int:
    """g(x; a) = x + shift(a). Raises KeyError for an unknown anchor."""
    return x + task.shift[anchor]


def pair_target(task: TaskConfig, x: int, pair: Pair, mapping: str = "designated") -> int:
    """Target of one key under a mapping (docs/science.md §2, "Mapping types").

    - ``inferential``: the composite f(x; a1, a2) = g(g(x; a1); a2).
    - ``designated``: the training target: the override's ``x + shift`` for overridden pairs,
      otherwise inferential (held-out pairs have no training target; we use inferential).
    - ``symmetric``: the designated target of the swapped pair (a2, a1).

    Raises:
        ValueError: unknown mapping.
    """
    a1, a2 = pair
    if mapping == "inferential":
        return x + task.shift[a1] + task.shift[a2]
    if mapping == "designated":
        s = task.override_shift.get(pair)
        return x + s if s is not None else x + task.shift[a1] + task.shift[a2]
    if mapping == "symmetric":
        return pair_target(task, x, (a2, a1), "designated")
    raise ValueError(f"unknown mapping {mapping!r}; choose one of {MAPPINGS}")


def _shift_table(task: TaskConfig, mapping: str) -> torch.Tensor:
    """``[max_anchor+1, max_anchor+1]`` shift of each pair under ``mapping`` (0 elsewhere)."""
    n = max(task.anchors) + 1
    table = torch.zeros(n, n, dtype=torch.long)
    for a1, a2 in task.pairs:
        table[a1, a2] = pair_target(task, 0, (a1, a2), mapping)
    return table


def targets(task: TaskConfig, key: torch.Tensor, a1: torch.Tensor, a2: torch.Tensor, mapping: str) -> torch.Tensor:
    """Vectorised ``pair_target``: ``[n]`` keys and anchors -> ``[n]`` targets under ``mapping``."""
    table = _shift_table(task, mapping).to(key.device)
    return key + table[a1, a2]


def _allowed_items(task: TaskConfig, residue: int, split: str) -> list[int]:
    items = range(task.item_min, task.item_max + 1)
    m = task.modulus
    if split == "train":
        return [x for x in items if x % m != residue]
    if split == "test":
        return [x for x in items if x % m == residue]
    return list(items)


def _item_table(task: TaskConfig, residues: range, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ``[len(residues), max_count]`` table of allowed items and ``[len]`` counts."""
    rows = [_allowed_items(task, r % task.modulus, split) for r in residues]
    width = max(len(r) for r in rows)
    table = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        table[i, : len(r)] = torch.tensor(r)
    return table, torch.tensor([len(r) for r in rows])


def _sample_rows(table: torch.Tensor, counts: torch.Tensor, row: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    u = torch.rand(row.shape, generator=g)
    idx = (u * counts[row]).long().clamp_max(counts[row] - 1)
    return table[row, idx]


def generate(
    task: TaskConfig,
    n: int,
    split: str,
    generator: torch.Generator,
    pairs: list[Pair] | tuple[Pair, ...] | None = None,
    balanced: bool = False,
) -> Batch:
    """Generate ``n`` sequences of the anchor task.

    Args:
        task: the task config.
        n: number of sequences (with ``balanced``: per pair).
        split: ``"train"`` (key x at position p only if x mod m ≠ p), ``"test"``
            (x mod m = p) or ``"any"`` (no restriction; used for held-out pairs).
        generator: a seeded ``torch.Generator`` (CPU); the result is a pure function of its state.
        pairs: anchor pairs to draw from, uniformly; default the seen pairs for ``"train"``
            and every pair otherwise.
        balanced: if True, exactly ``n`` sequences per pair, in pair order.

    Returns:
        A ``Batch`` on the CPU; ``tokens`` is ``[n_total, seq_len]`` int64.

    Raises:
        ValueError: unknown split, empty pair list, or n < 1.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    if pairs is None:
        pairs = task.seen_pairs if split == "train" else task.pairs
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no anchor pairs to generate from")
    pair_tensor = torch.tensor(pairs, dtype=torch.long)  # [n_pairs, 2]
    if balanced:
        pair_idx = torch.arange(len(pairs)).repeat_interleave(n)
    else:
        pair_idx = torch.randint(len(pairs), (n,), generator=generator)
    total = pair_idx.shape[0]
    a1, a2 = pair_tensor[pair_idx, 0], pair_tensor[pair_idx, 1]

    L = task.seq_len
    key_pos = torch.randint(task.n_key_positions, (total,), generator=generator)
    key_table, key_counts = _item_table(task, range(task.n_key_positions), split)
    key = _sample_rows(key_table, key_counts, key_pos, generator)

    if task.split_noise and split != "any":
        noise_table, noise_counts = _item_table(task, range(L), split)
        rows = torch.arange(L).expand(total, L)
        tokens = _sample_rows(noise_table, noise_counts, rows, generator)
    else:
        tokens = torch.randint(task.item_min, task.item_max + 1, (total, L), generator=generator)
    rows = torch.arange(total)
    tokens[rows, key_pos] = key
    tokens[rows, key_pos + 1] = a1
    tokens[rows, key_pos + 2] = a2
    target = targets(task, key, a1, a2, "designated")
    return Batch(tokens, key, key_pos, a1, a2, target)


def concat(batches: list[Batch]) -> Batch:
    """The sequences of ``batches`` one after another (``[sum n, seq_len]``).

    Raises:
        ValueError: an empty list.
    """
    if not batches:
        raise ValueError("no batches to concatenate")
    fields = ("tokens", "key", "key_pos", "a1", "a2", "target")
    return Batch(*(torch.cat([getattr(b, f) for b in batches]) for f in fields))


def split_of(task: TaskConfig, key: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
    """``[n]`` bool: True where (key, position) belongs to the test split (x mod m = p)."""
    return (key % task.modulus) == (key_pos % task.modulus)


def make_sequence(task: TaskConfig, key: int, pair: Pair, key_pos: int, noise: list[int] | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """One hand-made sequence, ``[seq_len]`` int64 (used by the app and the probes).

    Noise positions take ``noise`` in order, or random items from ``generator``.

    Raises:
        ValueError: key outside the item range, key position out of 0..n-3, unknown anchor,
            or a noise list of the wrong length.
    """
    if not task.item_min <= key <= task.item_max:
        raise ValueError(f"key {key} is outside the item range {task.item_min}..{task.item_max}")
    if not 0 <= key_pos <= task.seq_len - 3:
        raise ValueError(f"key position {key_pos} must be in 0..{task.seq_len - 3}")
    if pair[0] not in task.shift or pair[1] not in task.shift:
        raise ValueError(f"pair {pair} uses an anchor that has no operation")
    n_noise = task.seq_len - 3
    if noise is None:
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        noise = torch.randint(task.item_min, task.item_max + 1, (n_noise,), generator=g).tolist()
    if len(noise) != n_noise:
        raise ValueError(f"need {n_noise} noise items, got {len(noise)}")
    seq, it = [], iter(noise)
    for q in range(task.seq_len):
        if q == key_pos:
            seq.append(key)
        elif q == key_pos + 1:
            seq.append(pair[0])
        elif q == key_pos + 2:
            seq.append(pair[1])
        else:
            seq.append(int(next(it)))
    return torch.tensor(seq, dtype=torch.long)

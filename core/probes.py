"""Mechanism probes: every analysis behind the paper's mechanism figures (docs/science.md §5).

One function per quantity, named after what it computes; each returns numpy arrays or plain
dicts (no pandas, no streamlit) so the app, the CLI (``python -m core probe``) and the tests
share them. Sources: [INIT] Zhang, Xu et al., NeurIPS 2024, §4 (information flow, vector
representations), §5 (complexity: condensation, embedding structure) and appendix figures
10–13.

| function                         | paper figure | what it returns                                    |
| -------------------------------- | ------------ | -------------------------------------------------- |
| ``sequence_probe``               | 3(a,c)       | attention of every layer, top-5 prediction         |
| ``information_flow``             | 3(a,c)       | edges, named edge weights, heaviest paths          |
| ``fused_representations``        | 3(b)         | last-position X_ao(1) of many sequences            |
| ``project_2d``                   | 3(b), 5(c,d) | PCA or t-SNE coordinates                           |
| ``same_output_similarity``       | 4(a,b)       | cosine similarity of last-position X_ao(L)         |
| ``single_anchor_similarity``     | 4(c)         | cosine similarity of V(L) at the first anchor      |
| ``condensation``                 | 5(a,b), 10   | neuron cosine similarity, reordered into groups    |
| ``embedding_structure``          | 5(c,d), 11   | item embeddings, their order along PC1             |
| ``embedding_spectrum``           | 12(a)        | eigenvalues of the embedding covariance            |
| ``singular_values``              | 13           | singular values of every linear layer              |
| ``route_strengths``              | 3(a,c)       | strength of the inferential and symmetric routes   |
| ``answers_by_key_position``      | (ours)       | held-out answers split by the key's position       |
| ``training_snapshot``            | 12(b), 3     | numbers and Fig. 3 attention stored per evaluation |
| ``probe_summary``                | all          | the scalar summary of every view (docs/probes.md)  |

Conventions (our choices, parameters where it matters):
- Multi-head models: attention is averaged over heads for the flow diagram; vectors made of
  several heads (V) are the heads concatenated.
- "Neurons" of a weight ``W [d_in, d_out]`` (``AnchorTransformer.weight``) are its output
  units; a neuron's input-weight vector is its column (length d_in), as in [INIT] Fig. 5.
- Layer numbers shown to people are 1-based (X_ao(1) is ``blocks.0.hook_resid_mid``); the
  functions take 0-based indices.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .config import Pair, TaskConfig
from .model import AnchorTransformer
from .task import generate, make_sequence, pair_target, single_anchor

CONDENSATION_THRESHOLD = 0.7
DEFAULT_KEY = 99
DEFAULT_KEY_POS = 3
DEFAULT_SIM_KEYS = tuple(range(30, 41))
DEFAULT_V_PAIRS: tuple[tuple[Pair, Pair], tuple[Pair, Pair]] = (((3, 3), (2, 2)), ((1, 2), (1, 3)))
DEFAULT_U_ANCHORS: tuple[tuple[int, int], tuple[int, int]] = ((3, 2), (1, 3))


# ---------------------------------------------------------------------------------------
# sequences
# ---------------------------------------------------------------------------------------
def default_pair(task: TaskConfig) -> Pair:
    """The first held-out pair ((4, 3) by default), else the last pair."""
    return task.held_out[0] if task.held_out else task.pairs[-1]


def default_sequence(task: TaskConfig, key: int | None = None, pair: Pair | None = None,
                     key_pos: int | None = None, noise_seed: int = 0, distinct_key: bool = False) -> np.ndarray:
    """The sequence of [INIT] Fig. 3: key 99 (clipped to the item range), pair (4, 3), key at
    position 3 (clipped to 0..n-3), noise drawn from ``noise_seed``. Returns ``[seq_len]`` int64.

    ``distinct_key``: no noise item equals the key (for sequences shown to people, where a noise
    99 next to the key 99 confuses the flow's labels); the trainer's stored snapshots keep the
    plain draw, so the histories of committed runs stay reproducible."""
    key = min(max(DEFAULT_KEY if key is None else key, task.item_min), task.item_max)
    pair = default_pair(task) if pair is None else pair
    key_pos = min(DEFAULT_KEY_POS if key_pos is None else key_pos, task.seq_len - 3)
    g = torch.Generator().manual_seed(int(noise_seed))
    if not distinct_key:
        return make_sequence(task, key, pair, key_pos, generator=g).numpy()
    items = [v for v in range(task.item_min, task.item_max + 1) if v != key] or [key]
    idx = torch.randint(len(items), (task.seq_len - 3,), generator=g).tolist()
    return make_sequence(task, key, pair, key_pos, noise=[items[i] for i in idx]).numpy()


MAX_TYPED_CHARS = 400  # a typed sequence longer than this is refused before it is split
_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")


def parse_sequence(task: TaskConfig, text: str) -> np.ndarray:
    """Parse a typed sequence like ``"57 33 80 1 2 64 91 22 45"`` (spaces or commas).

    Returns:
        ``[seq_len]`` int64 tokens.

    Raises:
        ValueError: not integers, wrong length, a token that is neither an item nor an anchor,
            or not exactly one adjacent anchor pair with a key in front (``describe_sequence``).
    """
    if len(text) > MAX_TYPED_CHARS:
        raise ValueError(f"a sequence is {task.seq_len} integers separated by spaces; that text has {len(text)}"
                         f" characters (at most {MAX_TYPED_CHARS})")
    parts = [p for p in re.split(r"[\s,;]+", text.strip()) if p]
    # ASCII digits only: int() would also read '１２', '٣' and '1_0'
    if not all(_INTEGER.fullmatch(p) for p in parts):
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ValueError(f"a sequence is {task.seq_len} integers separated by spaces, got {shown!r}")
    tokens = [int(p) for p in parts]
    if len(tokens) != task.seq_len:
        raise ValueError(f"the task's sequences have {task.seq_len} tokens, got {len(tokens)}")
    anchors = set(task.anchors)
    bad = [t for t in tokens if t not in anchors and not task.item_min <= t <= task.item_max]
    if bad:
        bad = bad[:5] + (["..."] if len(bad) > 5 else [])
        raise ValueError(f"tokens {bad} are neither anchors {sorted(anchors)} nor items "
                         f"{task.item_min}..{task.item_max}")
    arr = np.asarray(tokens, dtype=np.int64)
    describe_sequence(task, arr)
    return arr


def describe_sequence(task: TaskConfig, tokens: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """Find the key and the anchor pair of a sequence.

    Returns:
        ``{"key_pos", "key", "pair", "inferential", "symmetric", "roles"}``: the targets under
        both mappings and a role per position (``"key"``, ``"anchor 1"``, ``"anchor 2"``,
        ``"noise"``).

    Raises:
        ValueError: no key + adjacent anchor pair, more than one, or anchors elsewhere.
    """
    toks = [int(t) for t in tokens]
    anchors = set(task.anchors)
    is_anchor = [t in anchors for t in toks]
    if sum(is_anchor) != 2:
        raise ValueError(f"a sequence holds exactly two anchors, side by side; found {sum(is_anchor)}")
    q = is_anchor.index(True)
    if q + 1 >= len(toks) or not is_anchor[q + 1]:
        raise ValueError("the two anchors must be adjacent")
    if q == 0:
        raise ValueError("the anchors need a key item in front of them")
    p = q - 1
    key, pair = toks[p], (toks[q], toks[q + 1])
    roles = ["noise"] * len(toks)
    roles[p], roles[p + 1], roles[p + 2] = "key", "anchor 1", "anchor 2"
    return {"key_pos": p, "key": key, "pair": pair, "roles": roles,
            "inferential": pair_target(task, key, pair, "inferential"),
            "symmetric": pair_target(task, key, pair, "symmetric")}


# ---------------------------------------------------------------------------------------
# attention and information flow (Fig. 3a,c)
# ---------------------------------------------------------------------------------------
@torch.no_grad()
def attention_patterns(model: AnchorTransformer, tokens: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Attention of every layer and the last-position logits.

    Args:
        tokens: ``[batch, pos]`` int64.

    Returns:
        ``(attn [batch, n_layers, n_heads, pos, pos], logits [batch, d_vocab])``; rows of
        ``attn[b, l, h]`` are query positions and sum to 1 (Attn(l)[k, j]: k attends to j).
    """
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(len(model.blocks))]
    logits, cache = model.run_with_cache(tokens, names_filter=names)
    attn = torch.stack([cache[n] for n in names], dim=1)  # [batch, layer, head, q, k]
    return attn.numpy(), logits[:, -1].numpy()


@torch.no_grad()
def _head_mean_attention(model: AnchorTransformer, tokens: torch.Tensor) -> np.ndarray:
    """``[batch, n_layers, T, T]`` attention averaged over heads, on the model's own device
    (the trainer calls this on CUDA models too), returned as float64 numpy on the CPU."""
    dev = next(model.parameters()).device
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(len(model.blocks))]
    _, cache = model.run_with_cache(tokens.to(dev), names_filter=names)
    attn = torch.stack([cache[n].float().mean(dim=1) for n in names], dim=1)  # [batch, layer, q, k]
    return attn.double().cpu().numpy()


def sequence_probe(model: AnchorTransformer, task: TaskConfig, tokens: Sequence[int] | np.ndarray,
                   top_k: int = 5) -> dict[str, Any]:
    """Everything view 1 shows for one sequence.

    Returns:
        ``describe_sequence`` keys plus ``tokens`` (list), ``attn [n_layers, n_heads, T, T]``,
        ``top`` (list of ``(token, probability)``, most likely first), ``prediction``,
        ``p_inferential``, ``p_symmetric`` (probabilities of the two targets).

    Raises:
        ValueError: as ``describe_sequence``, or a token that is neither an anchor nor an item
            of ``task`` (e.g. a sequence made for another run's task).
    """
    anchors = set(task.anchors)
    bad = [int(t) for t in np.asarray(tokens) if int(t) not in anchors and not task.item_min <= int(t) <= task.item_max]
    if bad:
        bad = bad[:5] + (["..."] if len(bad) > 5 else [])
        raise ValueError(f"tokens {bad} are neither anchors {sorted(anchors)} nor items {task.item_min}..{task.item_max}"
                         " of this run's task")
    if len(tokens) > model.n_ctx:
        raise ValueError(f"the sequence has {len(tokens)} tokens; this model takes at most {model.n_ctx}")
    info = describe_sequence(task, tokens)
    t = torch.as_tensor(np.asarray(tokens, dtype=np.int64))[None]
    attn, logits = attention_patterns(model, t)
    probs = torch.softmax(torch.as_tensor(logits[0]), -1).numpy()
    order = np.argsort(-probs)[:top_k]
    return {**info, "tokens": [int(x) for x in np.asarray(tokens)], "attn": attn[0],
            "top": [(int(i), float(probs[i])) for i in order], "prediction": int(order[0]),
            "p_inferential": float(probs[info["inferential"]]) if info["inferential"] < len(probs) else 0.0,
            "p_symmetric": float(probs[info["symmetric"]]) if info["symmetric"] < len(probs) else 0.0}


def _role_label(pos: int, key_pos: int, last: int) -> str:
    if pos == key_pos:
        return "key"
    if pos == key_pos + 1:
        return "anchor 1"
    if pos == key_pos + 2:
        return "anchor 2" + (" (last)" if pos == last else "")
    return "last" if pos == last else f"noise {pos}"


def flow_edges(attn: np.ndarray, key_pos: int) -> dict[str, dict[str, float]]:
    """Named edge weights of the information flow, one dict per layer (1-based string keys).

    ``attn`` is ``[n_layers, T, T]`` (heads already averaged) or ``[n_layers, H, T, T]``.
    With p the key position, a1 = p+1, a2 = p+2 and ``last`` = T-1, for each layer l:

    - ``key_to_anchors``: mean of Attn(l)[a1, p] and Attn(l)[a2, p]: how much the anchor
      positions read the key (the inferential solution's layer 1, [INIT] Fig. 3c);
    - ``key_to_anchor1``, ``key_to_anchor2``: the two terms;
    - ``anchors_to_last``: Attn(l)[last, a1] + Attn(l)[last, a2]: the share of the last
      position's attention on the anchors (symmetric solution's layer 1, inferential's layer 2);
    - ``key_to_last``: Attn(l)[last, p] (the symmetric solution's layer 2, Fig. 3a).

    Each weight is in [0, 1]. When a2 is the last position, ``anchors_to_last`` includes the
    last token attending to itself.
    """
    a = np.asarray(attn, dtype=np.float64)
    if a.ndim == 4:
        a = a.mean(axis=1)
    last, p = a.shape[-1] - 1, key_pos
    out = {}
    for l in range(a.shape[0]):
        A = a[l]
        out[str(l + 1)] = {
            "key_to_anchor1": float(A[p + 1, p]), "key_to_anchor2": float(A[p + 2, p]),
            "key_to_anchors": float((A[p + 1, p] + A[p + 2, p]) / 2),
            "anchors_to_last": float(A[last, p + 1] + A[last, p + 2]),
            "key_to_last": float(A[last, p]),
        }
    return out


def information_flow(attn: np.ndarray, key_pos: int, top_k: int = 5) -> dict[str, Any]:
    """The information-flow graph of [INIT] Fig. 3(a,c).

    Nodes are (layer column c, position) with c = 0 the input and c = l after layer l. An edge
    from token j in column l to token k in column l+1 has weight Attn(l+1)[k, j] (k ≥ j).
    A *path* from an input token to the last position multiplies its edge weights; the
    ``top_k`` heaviest paths are found exactly by a k-best dynamic programme.

    Args:
        attn: ``[n_layers, T, T]`` or ``[n_layers, H, T, T]`` (heads averaged).
        key_pos: the key position p.

    Returns:
        ``{"edges": {"layer","src","dst","weight"} arrays (layer 1-based, src in column layer-1,
        dst in column layer), "paths": [{"nodes": [pos per column], "weight", "label"}],
        "named": flow_edges(...), "roles": [label per position]}``.
    """
    a = np.asarray(attn, dtype=np.float64)
    if a.ndim == 4:
        a = a.mean(axis=1)
    L, T = a.shape[0], a.shape[-1]
    last = T - 1
    ll, kk, jj = np.meshgrid(np.arange(L), np.arange(T), np.arange(T), indexing="ij")
    keep = kk >= jj
    edges = {"layer": ll[keep] + 1, "src": jj[keep], "dst": kk[keep], "weight": a[keep]}
    # best[c][pos] = k-best (weight, path suffix) from node (c, pos) to (L, last).
    best: list[list[list[tuple[float, tuple[int, ...]]]]] = [[[] for _ in range(T)] for _ in range(L + 1)]
    best[L][last] = [(1.0, (last,))]
    for c in range(L - 1, -1, -1):
        for j in range(T):
            cands = [(a[c, k, j] * w, (j,) + suffix) for k in range(j, T) for w, suffix in best[c + 1][k]]
            cands.sort(key=lambda x: -x[0])
            best[c][j] = cands[:top_k]
    allp = sorted((x for j in range(T) for x in best[0][j]), key=lambda x: -x[0])[:top_k]
    roles = [_role_label(q, key_pos, last) for q in range(T)]
    paths = []
    for w, nodes in allp:
        # collapse repeated positions: "key → key → last" reads "key → last (via layer 2)"
        label = " → ".join(roles[q] for q in nodes)
        paths.append({"nodes": list(nodes), "weight": float(w), "label": label})
    return {"edges": edges, "paths": paths, "named": flow_edges(a, key_pos), "roles": roles}


def route_strengths(named: dict[str, dict[str, float]]) -> tuple[float, float]:
    """``(inferential route, symmetric route)`` strengths, each in [0, 1], from ``flow_edges``.

    A route is two attention steps ([INIT] Fig. 3, docs/science.md §5); its strength is its
    weaker step. Inferential: the key read by the anchors in layer 1 (``key_to_anchors``), then
    the anchors read by the last token in the last layer (``anchors_to_last``). Symmetric: the
    anchors merged into the last token in layer 1, then the key read by it in the last layer.

    Raises:
        KeyError: ``named`` lacks layer ``"1"`` or an edge name.
    """
    last = str(len(named))
    inf = min(named["1"]["key_to_anchors"], named[last]["anchors_to_last"])
    sym = min(named["1"]["anchors_to_last"], named[last]["key_to_last"])
    return inf, sym


@torch.no_grad()
def mean_flow(model: AnchorTransformer, task: TaskConfig, pair: Pair | None = None, n: int = 256,
              seed: int = 0) -> dict[str, dict[str, float]]:
    """``flow_edges`` averaged over ``n`` random sequences of ``pair`` (default: held out),
    random keys and key positions (split ``"any"``): the robust version of one sequence."""
    pair = default_pair(task) if pair is None else pair
    b = generate(task, n, "any", torch.Generator().manual_seed(seed), pairs=[pair])
    attn = _head_mean_attention(model, b.tokens)
    acc: dict[str, dict[str, float]] = {}
    for p in range(task.n_key_positions):
        sel = (b.key_pos == p).numpy()
        if not sel.any():
            continue
        e = flow_edges(attn[sel].mean(axis=0), p)
        w = sel.sum() / n
        for layer, d in e.items():
            tgt = acc.setdefault(layer, {k: 0.0 for k in d})
            for k, v in d.items():
                tgt[k] += w * v
    return acc


# ---------------------------------------------------------------------------------------
# answers by key position (our probe; docs/replication.md, "answers by key position")
# ---------------------------------------------------------------------------------------
ANSWER_N = 4096
ANSWER_NAMED_MIN = 0.02


@torch.no_grad()
def answers_by_key_position(model: AnchorTransformer, task: TaskConfig, pair: Pair | None = None,
                            n: int = ANSWER_N, seed: int = 0, n_other: int = 2,
                            batch_size: int = 4096) -> dict[str, Any]:
    """The model's answers to ``pair`` (default: the first held-out pair), split by the key's position.

    [INIT] reports one share per pair (Fig. 2); a run can follow different rules at different key
    positions (docs/replication.md: a γ 0.8 run that copies x − 16 of (4,4) on most keys composes
    x − 10 exactly when the key sits at the last position it can take). ``n`` random sequences of
    ``pair`` (split ``"any"``: random keys, key positions and noise, generator ``seed``) are
    answered by argmax at the last position, and each answer is read as its offset from the key.

    Returns:
        ``{"pair", "positions" [P] ints (key positions 0 … n_key_positions−1 that were drawn),
        "n" [P] ints (sequences at each), "offsets" [K] ints (the named answers: the inferential
        offset, the symmetric offset, then up to ``n_other`` other offsets with an overall share ≥
        ``ANSWER_NAMED_MIN``, most common first), "counts" [P, K + 1] int array (the last column:
        every other answer), "inferential", "symmetric" (the two offsets; equal for a pair whose
        mappings coincide, then named once), "overall" [K + 1] floats (shares over all sequences),
        "answer_of" {offset: [pairs]} (for each named offset, the other pairs whose training target is
        that offset: x − 16 is the answer of (4,4) in the paper's task)}``.

    Raises:
        ValueError: ``n`` < 1, or ``pair`` not a pair of ``task`` (from ``generate``).
    """
    pair = default_pair(task) if pair is None else tuple(pair)
    if pair not in task.pairs:
        raise ValueError(f"pair {pair} is not a pair of this task; its pairs are {list(task.pairs)}")
    b = generate(task, n, "any", torch.Generator().manual_seed(seed), pairs=[pair])
    pred = torch.cat([model.forward_last(b.tokens[i:i + batch_size]).argmax(-1)
                      for i in range(0, len(b.tokens), batch_size)])
    off = (pred - b.key).numpy()
    kp = b.key_pos.numpy()
    inf = pair_target(task, 0, pair, "inferential")
    sym = pair_target(task, 0, pair, "symmetric")
    named = [inf] if inf == sym else [inf, sym]
    values, counts = np.unique(off, return_counts=True)
    rest = [(int(c), int(v)) for v, c in zip(values, counts) if int(v) not in named and c >= ANSWER_NAMED_MIN * n]
    named += [v for _, v in sorted(rest, key=lambda t: (-t[0], t[1]))[:n_other]]
    positions = sorted(int(p) for p in np.unique(kp))
    table = np.zeros((len(positions), len(named) + 1), dtype=np.int64)
    column = {v: i for i, v in enumerate(named)}
    for r, p in enumerate(positions):
        sel = off[kp == p]
        for v in sel:
            table[r, column.get(int(v), len(named))] += 1
    answer_of = {o: [q for q in task.pairs if q != pair and q not in task.held_out
                     and pair_target(task, 0, q, "designated") == o] for o in named}
    return {"pair": pair, "positions": positions, "n": table.sum(axis=1).tolist(), "offsets": named,
            "counts": table, "inferential": inf, "symmetric": sym, "answer_of": answer_of,
            "overall": (table.sum(axis=0) / max(1, table.sum())).tolist()}


def answers_summary(d: dict[str, Any]) -> dict[str, Any]:
    """``answers_by_key_position`` as JSON: ``{"pair": [a, b], "offsets": [K] (named answers, then
    null for every other answer), "overall": [K + 1] shares, "by_position": {position: [K + 1]
    shares}, "rules": [{"positions", "offset", "min_share"}]}`` (``position_rules``)."""
    shares = d["counts"] / np.maximum(1, np.asarray(d["n"]))[:, None]
    return {"pair": list(d["pair"]), "offsets": list(d["offsets"]) + [None], "overall": list(d["overall"]),
            "by_position": {str(p): [float(x) for x in row] for p, row in zip(d["positions"], shares)},
            "rules": [{"positions": ps, "offset": o, "min_share": m} for ps, o, m in position_rules(d)]}


def position_rules(d: dict[str, Any], min_share: float = 0.5) -> list[tuple[list[int], int | None, float]]:
    """Consecutive key positions grouped by their most common answer, from ``answers_by_key_position``.

    Returns:
        ``[(positions, offset, share)]`` in position order: ``offset`` is the most common named
        answer at those positions (None where no answer reaches ``min_share`` of the sequences, or
        where the most common column is "every other answer"); ``share`` is its lowest share
        among the grouped positions (0.0 for None groups).
    """
    out: list[tuple[list[int], int | None, float]] = []
    names = list(d["offsets"]) + [None]
    for p, row, total in zip(d["positions"], d["counts"], d["n"]):
        j = int(np.argmax(row))
        share = row[j] / total if total else 0.0
        top = names[j] if share >= min_share else None
        share = float(share) if top is not None else 0.0
        if out and out[-1][1] == top and out[-1][0][-1] == p - 1:
            out[-1] = (out[-1][0] + [p], top, min(out[-1][2], share))
        else:
            out.append(([p], top, share))
    return out


# ---------------------------------------------------------------------------------------
# vector representations (Fig. 3b, 4)
# ---------------------------------------------------------------------------------------
@torch.no_grad()
def fused_representations(model: AnchorTransformer, task: TaskConfig, n: int = 2000, seed: int = 0,
                          layer: int = 0) -> dict[str, np.ndarray]:
    """Last-position X_ao(layer+1) for about ``n`` sequences, equally many per anchor pair.

    Returns:
        ``{"X": [N, d_model], "a1", "a2", "key", "key_pos": [N] int}`` with N = 16·ceil(n/16)
        for four anchors (split ``"any"``: every pair, seen or held out).
    """
    per = max(1, math.ceil(n / len(task.pairs)))
    b = generate(task, per, "any", torch.Generator().manual_seed(seed), pairs=task.pairs, balanced=True)
    name = f"blocks.{layer}.hook_resid_mid"
    _, cache = model.run_with_cache(b.tokens, names_filter=name)
    return {"X": cache[name][:, -1].numpy(), "a1": b.a1.numpy(), "a2": b.a2.numpy(),
            "key": b.key.numpy(), "key_pos": b.key_pos.numpy()}


def fused_symmetric_ratio(X: np.ndarray, a1: np.ndarray, a2: np.ndarray) -> float:
    """How close the centroids of (a, b) and (b, a) lie, relative to all pair centroids.

    Mean distance between the centroids of each symmetric pair (a ≠ b), divided by the mean
    distance between the centroids of all pairs. Below 1: symmetric pairs are fused together
    (the symmetric solution, [INIT] Fig. 3b); about 1: the pair order is kept apart.
    NaN when fewer than two distinct pairs are present.
    """
    pairs = sorted(set(zip(a1.tolist(), a2.tolist())))
    if len(pairs) < 2:
        return float("nan")
    cent = {p: X[(a1 == p[0]) & (a2 == p[1])].mean(axis=0) for p in pairs}
    C = np.stack([cent[p] for p in pairs])
    D = np.linalg.norm(C[:, None] - C[None], axis=-1)
    mean_all = D[np.triu_indices(len(pairs), 1)].mean()
    sym = [np.linalg.norm(cent[(a, b)] - cent[(b, a)]) for a, b in pairs if a < b and (b, a) in cent]
    if not sym or mean_all == 0:
        return float("nan")
    return float(np.mean(sym) / mean_all)


def project_2d(X: np.ndarray, method: str = "pca", seed: int = 0, perplexity: float = 30.0,
               max_iter: int = 500, threads: int | None = 1) -> np.ndarray:
    """Two-dimensional projection ``[N, 2]`` of ``X [N, d]``.

    ``"pca"``: the first two principal components (centred SVD; fast, deterministic up to
    sign, which we fix so the largest-magnitude loading is positive). ``"tsne"``: scikit-learn
    t-SNE with PCA initialisation, ``random_state=seed``, perplexity clipped below (N-1)/3,
    ``max_iter`` iterations (500: the picture has settled for these data; 1000 doubles the
    time), on at most ``threads`` CPU threads (None: all). About 3 s for 1000 points of
    d_model 64 on one thread; the time grows faster than linearly with N.

    Raises:
        ValueError: unknown method.
    """
    X = np.asarray(X, dtype=np.float64)
    if method == "pca":
        Xc = X - X.mean(axis=0)
        # torch's LAPACK obeys torch.set_num_threads; numpy's OpenBLAS may oversubscribe a busy CPU
        Vt = torch.linalg.svd(torch.from_numpy(Xc), full_matrices=False)[2].numpy()[:2]
        sign = np.sign(Vt[np.arange(Vt.shape[0]), np.abs(Vt).argmax(axis=1)])
        out = Xc @ (Vt * sign[:, None]).T
        if out.shape[1] < 2:
            out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
        return out
    if method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        perp = float(min(perplexity, max(1.0, (X.shape[0] - 1) / 3 - 1e-6)))
        with threadpool_limits(threads):
            return TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed,
                        max_iter=max(250, max_iter)).fit_transform(X)
    raise ValueError(f"unknown projection {method!r}; choose 'pca' or 'tsne'")


def _cos(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cosine similarity of the rows of A [..., n, d] and B [..., m, d] -> [..., n, m]."""
    A, B = torch.as_tensor(np.asarray(A, dtype=np.float64)), torch.as_tensor(np.asarray(B, dtype=np.float64))
    An = A / A.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    Bn = B / B.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (An @ Bn.transpose(-1, -2)).numpy()


def _draws(task: TaskConfig, n_draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shared noise and key positions: draw d uses the same context for every key and pair."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(task.n_key_positions, (n_draws,), generator=g).numpy()
    noise = torch.randint(task.item_min, task.item_max + 1, (n_draws, task.seq_len), generator=g).numpy()
    return pos, noise


def _build(task: TaskConfig, keys: Sequence[int], pair: Pair, pos: np.ndarray, noise: np.ndarray) -> torch.Tensor:
    """``[n_draws, K, seq_len]`` sequences: key x at pos[d], the pair after it, noise[d] elsewhere."""
    D, K = len(pos), len(keys)
    t = np.broadcast_to(noise[:, None, :], (D, K, task.seq_len)).copy()
    d = np.arange(D)
    t[d, :, pos] = np.asarray(keys)[None, :]
    t[d, :, pos + 1] = pair[0]
    t[d, :, pos + 2] = pair[1]
    return torch.as_tensor(t)


def _check_keys(task: TaskConfig, keys: Sequence[int]) -> list[int]:
    keys = [int(k) for k in keys]
    if not keys:
        raise ValueError("the key range is empty")
    bad = [k for k in keys if not task.item_min <= k <= task.item_max]
    if bad:
        raise ValueError(f"keys {bad} are outside the item range {task.item_min}..{task.item_max}")
    return keys


@torch.no_grad()
def _vectors(model: AnchorTransformer, task: TaskConfig, keys: list[int], pair: Pair, pos: np.ndarray,
             noise: np.ndarray, hook: str, at: str) -> np.ndarray:
    """``[n_draws, K, d]`` vectors at the last position (``at="last"``) or the first anchor."""
    t = _build(task, keys, pair, pos, noise)
    D, K, T = t.shape
    _, cache = model.run_with_cache(t.reshape(D * K, T), names_filter=hook)
    act = cache[hook]
    if act.ndim == 4:  # [batch, pos, head, d_head] -> heads concatenated
        act = act.reshape(act.shape[0], act.shape[1], -1)
    act = act.reshape(D, K, T, -1).numpy()
    if at == "last":
        return act[:, :, -1]
    return act[np.arange(D), :, pos + 1]


def _sim_block(task: TaskConfig, vecs_a: np.ndarray, vecs_b: np.ndarray, ta: np.ndarray, tb: np.ndarray,
               centre: bool = False) -> dict[str, Any]:
    if centre:  # remove what every vector of this comparison shares, per context
        mean = np.concatenate([vecs_a, vecs_b], axis=1).mean(axis=1, keepdims=True)
        vecs_a, vecs_b = vecs_a - mean, vecs_b - mean
    sim = _cos(vecs_a, vecs_b).mean(axis=0)  # mean over draws of [K, K]
    return {"sim": sim, "equal": ta[:, None] == tb[None, :]}


def equal_minus_unequal(blocks: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean similarity of cells whose targets agree minus that of the other cells (pooled
    over ``blocks``, each ``{"sim", "equal"}``). NaN parts when a set is empty."""
    sims = np.concatenate([b["sim"].ravel() for b in blocks])
    eq = np.concatenate([b["equal"].ravel() for b in blocks])
    e = float(sims[eq].mean()) if eq.any() else float("nan")
    u = float(sims[~eq].mean()) if (~eq).any() else float("nan")
    return {"equal_mean": e, "unequal_mean": u, "difference": e - u, "n_equal": int(eq.sum())}


def same_output_similarity(model: AnchorTransformer, task: TaskConfig,
                           comparisons: Sequence[tuple[Pair, Pair]] = DEFAULT_V_PAIRS,
                           keys: Sequence[int] = DEFAULT_SIM_KEYS, n_draws: int = 8, seed: int = 0,
                           layer: int | None = None, centre: bool = False) -> dict[str, Any]:
    """Cosine similarity of last-position X_ao vectors v(x; a1, a2) ([INIT] Fig. 4a,b).

    For each comparison (pair A, pair B): ``sim[i, j]`` = cos(v(keys[i]; A), v(keys[j]; B)),
    averaged over ``n_draws`` contexts (noise and key position shared by both sequences of a
    cell, so only key and pair differ); ``equal[i, j]`` marks f(keys[i]; A) = f(keys[j]; B)
    (inferential targets). The paper shows the first comparison in the lower triangle and the
    second in the upper one; both full matrices are returned.

    Args:
        layer: 0-based block whose X_ao is read; default the last (X_ao(2) for two layers).
        centre: subtract, per context, the mean of all vectors of a comparison before the
            cosine (post-LayerNorm vectors share a large common part that makes every raw
            cosine high). Off by default, as in the paper.

    Returns:
        ``{"keys": [K], "blocks": [{"pairs": (A, B), "sim": [K, K], "equal": [K, K] bool}],
        "summary": equal_minus_unequal(blocks)}``.

    Raises:
        ValueError: keys outside the item range, or a pair with an unknown anchor.
    """
    keys = _check_keys(task, keys)
    layer = len(model.blocks) - 1 if layer is None else layer
    pos, noise = _draws(task, n_draws, seed)
    hook = f"blocks.{layer}.hook_resid_mid"
    cache: dict[Pair, np.ndarray] = {}
    blocks = []
    k = np.asarray(keys)
    for A, B in comparisons:
        for P in (A, B):
            if P[0] not in task.shift or P[1] not in task.shift:
                raise ValueError(f"pair {P} uses an anchor that has no operation")
            if P not in cache:
                cache[P] = _vectors(model, task, keys, P, pos, noise, hook, "last")
        ta = np.array([pair_target(task, x, A, "inferential") for x in k])
        tb = np.array([pair_target(task, x, B, "inferential") for x in k])
        blocks.append({"pairs": (tuple(A), tuple(B)), **_sim_block(task, cache[A], cache[B], ta, tb, centre)})
    return {"keys": keys, "blocks": blocks, "summary": equal_minus_unequal(blocks)}


def single_anchor_similarity(model: AnchorTransformer, task: TaskConfig,
                             comparisons: Sequence[tuple[int, int]] = DEFAULT_U_ANCHORS,
                             keys: Sequence[int] = DEFAULT_SIM_KEYS, n_draws: int = 8, seed: int = 0,
                             layer: int | None = None, centre: bool = False) -> dict[str, Any]:
    """Cosine similarity of u(x; a) = V(layer) at the first anchor's position ([INIT] Fig. 4c).

    Causal attention means the first anchor's position never sees the second anchor, so u
    depends on the key, the first anchor and the context only. ``equal[i, j]`` marks
    g(keys[i]; a) = g(keys[j]; b). Defaults: anchors (3 vs 2) and (1 vs 3), whose equal cells
    fall in the lower and upper triangle for keys 30..40.

    Returns:
        As ``same_output_similarity`` (``centre`` likewise), each block with ``"anchors": (a, b)``.

    Raises:
        ValueError: keys outside the item range, or an unknown anchor.
    """
    keys = _check_keys(task, keys)
    layer = len(model.blocks) - 1 if layer is None else layer
    pos, noise = _draws(task, n_draws, seed)
    hook = f"blocks.{layer}.attn.hook_v"
    cache: dict[int, np.ndarray] = {}
    blocks = []
    for a, b in comparisons:
        for x in (a, b):
            if x not in task.shift:
                raise ValueError(f"anchor {x} has no operation")
            if x not in cache:
                cache[x] = _vectors(model, task, keys, (x, x), pos, noise, hook, "first_anchor")
        ta = np.array([single_anchor(task, x, a) for x in keys])
        tb = np.array([single_anchor(task, x, b) for x in keys])
        blocks.append({"anchors": (a, b), **_sim_block(task, cache[a], cache[b], ta, tb, centre)})
    return {"keys": keys, "blocks": blocks, "summary": equal_minus_unequal(blocks)}


# ---------------------------------------------------------------------------------------
# complexity: condensation, embeddings, spectra (Fig. 5, 10-13)
# ---------------------------------------------------------------------------------------
def weight_names(model: AnchorTransformer) -> list[str]:
    """Names accepted by ``AnchorTransformer.weight`` whose neurons make sense to compare:
    ``W_Q.l, W_K.l, W_V.l, W_O.l, W_in.l, W_out.l`` for every layer, then ``W_U``."""
    out = []
    for l in range(len(model.blocks)):
        out += [f"{w}.{l}" for w in ("W_Q", "W_K", "W_V", "W_O", "W_in", "W_out")]
    return out + ["W_U"]


def weight_label(name: str) -> str:
    """``"W_Q.0" -> "W_Q(1)"``, ``"W_in.1" -> "FFN in(2)"``: the paper's 1-based layer names."""
    if "." not in name:
        return name
    base, layer = name.rsplit(".", 1)
    base = {"W_in": "FFN in", "W_out": "FFN out"}.get(base, base)
    return f"{base}({int(layer) + 1})"


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """``[n, d] -> [n, n]`` cosine similarity of the rows (zero rows give 0)."""
    V = np.asarray(vectors, dtype=np.float64)
    return _cos(V, V)


def condensation(weight: np.ndarray | torch.Tensor, threshold: float = CONDENSATION_THRESHOLD,
                 method: str = "complete") -> dict[str, Any]:
    """Condensation of the neurons of one weight matrix ([INIT] Fig. 5a,b and 10).

    Each output unit j of ``weight [d_in, d_out]`` is a neuron with input-weight vector
    ``weight[:, j]``. Neurons are grouped by scipy hierarchical clustering on the distance
    1 − cos; with the default *complete* linkage, cut at 1 − threshold, every two neurons of a
    group have cosine similarity ≥ threshold (a group is a clique, never a chain). Groups of
    size ≥ 2 are placed first, largest first; singletons follow in dendrogram order.

    Returns:
        ``{"sim": [n, n] reordered, "order": [n] original neuron index per row, "labels": [n]
        group id per original neuron (0 = singleton, 1 = largest group…), "sizes": sizes of
        groups ≥ 2, descending, "blocks": [(start, end)] half-open row ranges of those groups,
        "n_neurons", "n_groups", "share_in_groups" (share of neurons in groups of size ≥ 2),
        "largest_group_share", "top3_group_share", "threshold"}``.

    Raises:
        ValueError: threshold outside (-1, 1) or a weight that is not 2-D.
    """
    from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
    from scipy.spatial.distance import squareform

    W = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight)
    if W.ndim != 2:
        raise ValueError(f"condensation needs a 2-D weight [d_in, d_out], got shape {W.shape}")
    if not -1 < threshold < 1:
        raise ValueError(f"threshold must be in (-1, 1), got {threshold}")
    sim0 = cosine_matrix(W.T)
    n = sim0.shape[0]
    if n == 1:
        labels0 = np.zeros(1, dtype=int)
        order = np.zeros(1, dtype=int)
    else:
        dist = np.clip(1.0 - sim0, 0.0, 2.0)
        np.fill_diagonal(dist, 0.0)
        dist = (dist + dist.T) / 2
        Z = linkage(squareform(dist, checks=False), method=method)
        leaves = leaves_list(Z)
        raw = fcluster(Z, t=1.0 - threshold, criterion="distance")
        ids, counts = np.unique(raw, return_counts=True)
        size = dict(zip(ids.tolist(), counts.tolist()))
        first = {c: i for i, c in reversed(list(enumerate(raw[leaves].tolist())))}
        grouped = sorted((c for c in ids.tolist() if size[c] >= 2), key=lambda c: (-size[c], first[c]))
        rank = {c: r + 1 for r, c in enumerate(grouped)}
        labels0 = np.array([rank.get(c, 0) for c in raw.tolist()])
        pos_in_leaves = np.empty(n, dtype=int)
        pos_in_leaves[leaves] = np.arange(n)
        # sort: grouped neurons by rank, singletons last, ties by dendrogram position
        key = np.where(labels0 > 0, labels0, n + 1)
        order = np.lexsort((pos_in_leaves, key))
    sizes = sorted(np.bincount(labels0)[1:].tolist(), reverse=True) if labels0.max() > 0 else []
    blocks, start = [], 0
    for s in sizes:
        blocks.append((start, start + s))
        start += s
    return {
        "sim": sim0[np.ix_(order, order)], "order": order, "labels": labels0, "sizes": sizes,
        "blocks": blocks, "n_neurons": n, "n_groups": len(sizes),
        "share_in_groups": float(sum(sizes) / n), "largest_group_share": float(sizes[0] / n) if sizes else 0.0,
        "top3_group_share": float(sum(sizes[:3]) / n), "threshold": threshold,
    }


def condensation_numbers(c: dict[str, Any]) -> dict[str, Any]:
    """The scalar part of ``condensation``."""
    return {k: c[k] for k in ("n_neurons", "n_groups", "share_in_groups", "largest_group_share", "top3_group_share")}


def item_tokens(task: TaskConfig | None, d_vocab: int) -> np.ndarray:
    """Item token ids (``task.item_min..item_max``); without a task the default task's items
    (20..99) that fit the vocabulary, or every token if none fits."""
    t = task if task is not None else TaskConfig()
    items = np.arange(t.item_min, t.item_max + 1)
    items = items[items < d_vocab]
    return items if len(items) >= 2 else np.arange(d_vocab)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr
    if np.ptp(y) == 0 or np.ptp(x) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def embedding_structure(model: AnchorTransformer, task: TaskConfig | None = None) -> dict[str, Any]:
    """Token embeddings of the items and how ordered they are ([INIT] Fig. 5c,d and 11).

    Returns:
        ``{"tokens": [N], "E": [N, d_model] rows of W_E, "pca": [N, 2], "explained": [2]
        variance shares of PC1 and PC2, "order": |Spearman(token value, PC1 coordinate)|,
        "order_pc2": |Spearman(token value, PC2)|}``. ``order`` near 1: tokens lie in value
        order along the main direction (the small-initialization picture); near 0: no order.
    """
    items = item_tokens(task, model.d_vocab)
    E = model.W_E.detach()[torch.as_tensor(items)].double().numpy()
    P = project_2d(E, "pca")
    ev = embedding_spectrum_from(E)
    share = ev[:2] / ev.sum() if ev.sum() > 0 else np.zeros(2)
    return {"tokens": items, "E": E, "pca": P, "explained": share,
            "order": abs(_spearman(items, P[:, 0])), "order_pc2": abs(_spearman(items, P[:, 1]))}


def embedding_spectrum_from(E: np.ndarray) -> np.ndarray:
    """Eigenvalues (descending, ≥ 0) of the covariance of the rows of ``E [N, d]``."""
    return _embedding_eigh(E)[0]


def _embedding_eigh(E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, ≥ 0) and eigenvectors (columns, same order) of the covariance."""
    Et = torch.as_tensor(np.asarray(E, dtype=np.float64))
    Ec = Et - Et.mean(dim=0)
    cov = Ec.T @ Ec / max(Et.shape[0] - 1, 1)
    vals, vecs = torch.linalg.eigh(cov)
    return vals.flip(0).clamp_min(0.0).numpy(), vecs.flip(1).numpy()


def embedding_spectrum(model: AnchorTransformer, task: TaskConfig | None = None) -> np.ndarray:
    """Eigenvalues ``[d_model]`` (descending) of the covariance of the item embeddings
    ([INIT] Fig. 12a). Small initialization: a few large eigenvalues."""
    items = item_tokens(task, model.d_vocab)
    return embedding_spectrum_from(model.W_E.detach()[torch.as_tensor(items)].numpy())


def top_eigen_share(eig: np.ndarray, k: int = 2) -> float:
    """Share of the total variance in the ``k`` largest eigenvalues (0 when all are 0)."""
    s = float(np.sum(eig))
    return float(np.sum(np.sort(eig)[::-1][:k]) / s) if s > 0 else 0.0


def singular_values(model: AnchorTransformer) -> dict[str, np.ndarray]:
    """Singular values (descending) of every linear layer ([INIT] Fig. 13): ``W_E`` (all
    tokens), ``W_pos``, the attention and FFN weights of every layer, ``W_U``."""
    out = {"W_E": model.W_E.detach(), "W_pos": model.W_pos.detach()}
    for n in weight_names(model):
        out[n] = model.weight(n)
    return {k: torch.linalg.svdvals(v.double()).numpy() for k, v in out.items()}


def energy_share(sv: np.ndarray, k: int = 1) -> float:
    """Σ of the ``k`` largest squared singular values over Σ of all: near 1 = low rank."""
    e = np.sort(np.asarray(sv, dtype=np.float64) ** 2)[::-1]
    return float(e[:k].sum() / e.sum()) if e.sum() > 0 else 0.0


# ---------------------------------------------------------------------------------------
# snapshots and the scalar summary
# ---------------------------------------------------------------------------------------
@torch.no_grad()
def training_snapshot(model: AnchorTransformer, task: TaskConfig | None = None, k: int = 8) -> dict[str, Any]:
    """Cheap numbers stored at every evaluation point (view 7, [INIT] Fig. 12b).

    JSON-serialisable; a few milliseconds for d_model 64. Pass the run's task when you have it
    (the item range, the held-out pair); without it the default task is used.

    Returns:
        ``{"embed_eigen_top": top-k eigenvalues of the item-embedding covariance,
        "embed_eigen_total": their sum over all, "embedding_order": |Spearman| along PC1,
        "wq1_condensation": condensation numbers of W_Q(1) at 0.7,
        "wq1_singular_top": top-k singular values of W_Q(1),
        "attention": {"tokens": [T] the fixed sequence of Fig. 3 (``default_sequence``: key 99,
        the held-out pair, key position 3, noise seed 0), "key_pos": p, "attn": [n_layers, T, T]
        its attention averaged over heads (rows: query positions, summing to 1; 4 decimals)},
        "route": {"inferential", "symmetric"}: ``route_strengths`` of ``mean_flow`` (256 random
        sequences of the held-out pair, seed 0), each in [0, 1]}``.
        Runs saved before ``attention`` and ``route`` were recorded lack those two keys
        (``ui.replay_data`` says so instead of drawing them).
    """
    t = task if task is not None else TaskConfig()
    items = item_tokens(task, model.d_vocab)
    E = model.W_E.detach()[torch.as_tensor(items, device=model.W_E.device)].double().cpu().numpy()
    ev, vecs = _embedding_eigh(E)
    pc1 = (E - E.mean(axis=0)) @ vecs[:, 0]
    wq = model.weight("W_Q.0").double().cpu()
    c = condensation(wq.numpy(), CONDENSATION_THRESHOLD)
    return {
        "embed_eigen_top": [round(float(x), 6) for x in ev[:k]],
        "embed_eigen_total": round(float(ev.sum()), 6),
        "embedding_order": round(abs(_spearman(items, pc1)), 4),
        "wq1_condensation": {kk: (round(v, 4) if isinstance(v, float) else v)
                             for kk, v in condensation_numbers(c).items()},
        "wq1_singular_top": [round(float(x), 6) for x in torch.linalg.svdvals(wq).numpy()[:k]],
        "attention": _snapshot_attention(model, t),
        "route": dict(zip(("inferential", "symmetric"),
                          (round(float(v), 4) for v in route_strengths(mean_flow(model, t, n=256, seed=0))))),
    }


def _snapshot_attention(model: AnchorTransformer, task: TaskConfig) -> dict[str, Any]:
    """The attention part of ``training_snapshot``: Fig. 3's fixed sequence and its attention."""
    seq = default_sequence(task)
    attn = _head_mean_attention(model, torch.as_tensor(seq)[None])[0]
    return {"tokens": [int(x) for x in seq], "key_pos": int(describe_sequence(task, seq)["key_pos"]),
            "attn": np.round(attn, 4).tolist()}


def snapshots(history: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """``(epoch, snapshot)`` for every history record that carries ``"snapshot"``."""
    return [(int(r.get("epoch", i)), r["snapshot"]) for i, r in enumerate(history)
            if isinstance(r.get("snapshot"), dict)]


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    return x


def probe_summary(model: AnchorTransformer, task: TaskConfig, threshold: float = CONDENSATION_THRESHOLD,
                  history: list[dict[str, Any]] | None = None, seed: int = 0) -> dict[str, Any]:
    """The scalar summary of every view: the JSON of ``python -m core probe`` (docs/probes.md).

    Every number is computed from the weights with the views' defaults (key 99, pair (4, 3),
    key position 3, noise seed ``seed``; keys 30..40; 2000 sequences for view 2).
    """
    model.eval()
    seq = default_sequence(task, noise_seed=seed)
    sp = sequence_probe(model, task, seq)
    flow = information_flow(sp["attn"], sp["key_pos"])
    L = len(model.blocks)
    named = flow["named"]
    fused = fused_representations(model, task, n=2000, seed=seed)
    so = same_output_similarity(model, task, seed=seed)
    sa = single_anchor_similarity(model, task, seed=seed)
    so_c = same_output_similarity(model, task, seed=seed, centre=True)
    sa_c = single_anchor_similarity(model, task, seed=seed, centre=True)
    emb = embedding_structure(model, task)
    ev = embedding_spectrum_from(emb["E"])
    sv = singular_values(model)
    cond = {n: condensation_numbers(condensation(model.weight(n), threshold)) for n in weight_names(model)}
    out = {
        "condensation_threshold": threshold,
        "condensation": cond,
        "embedding_order": emb["order"],
        "embedding_order_pc2": emb["order_pc2"],
        "embedding_top_eigen_share": top_eigen_share(ev, 2),
        "embedding_top_eigenvalues": [float(x) for x in ev[:8]],
        "same_output_similarity": so["summary"]["difference"],
        "same_output_similarity_detail": {**so["summary"],
                                          "comparisons": [[list(b["pairs"][0]), list(b["pairs"][1])] for b in so["blocks"]],
                                          "keys": [so["keys"][0], so["keys"][-1]]},
        "single_anchor_similarity": sa["summary"]["difference"],
        "single_anchor_similarity_detail": {**sa["summary"],
                                            "comparisons": [list(b["anchors"]) for b in sa["blocks"]]},
        "same_output_similarity_centred": so_c["summary"]["difference"],
        "single_anchor_similarity_centred": sa_c["summary"]["difference"],
        "fused_symmetric_ratio": fused_symmetric_ratio(fused["X"], fused["a1"], fused["a2"]),
        "flow": {
            "sequence": sp["tokens"], "key_pos": sp["key_pos"], "pair": list(sp["pair"]),
            "key_to_anchors_layer1": named["1"]["key_to_anchors"],
            "anchors_to_last_layer1": named["1"]["anchors_to_last"],
            "anchors_to_last_final": named[str(L)]["anchors_to_last"],
            "key_to_last_final": named[str(L)]["key_to_last"],
            "layers": named,
            "top_paths": [{"label": p["label"], "weight": p["weight"]} for p in flow["paths"]],
        },
        "flow_mean": mean_flow(model, task, seed=seed),
        "prediction": {"top5": [list(t) for t in sp["top"]], "inferential_target": sp["inferential"],
                       "symmetric_target": sp["symmetric"], "p_inferential": sp["p_inferential"],
                       "p_symmetric": sp["p_symmetric"]},
        "singular_top1_energy": {k: energy_share(v, 1) for k, v in sv.items()},
    }
    if task.held_out:
        out["answers_by_key_position"] = answers_summary(answers_by_key_position(model, task, seed=seed))
    if history is not None:
        out["n_snapshots"] = len(snapshots(history))
    return _nan_to_none(out)

"""Anchor-task data: targets under every mapping, the key/position split, generation (docs/science.md §2)."""
from __future__ import annotations

import pytest
import torch

from core.config import TaskConfig
from core.task import generate, make_sequence, pair_target, single_anchor, split_of, targets
from core.train import make_eval_set, mapping_accuracy

torch.set_num_threads(1)

TASK = TaskConfig()


def gen(task=TASK, n=4000, split="train", seed=0, **kw):
    return generate(task, n, split, torch.Generator().manual_seed(seed), **kw)


def noise_mask(b):
    """[n, seq_len] bool: True at noise positions (not key, not anchors)."""
    pos = torch.arange(b.tokens.shape[1])
    p = b.key_pos[:, None]
    return (pos != p) & (pos != p + 1) & (pos != p + 2)


# -- targets, worked by hand from docs/science.md §1–2 ----------------------------------------------------

@pytest.mark.parametrize(
    "x, pair, mapping, expected",
    [
        (80, (1, 2), "designated", 86),    # (80 + 5) + 1, the example of docs/science.md §1
        (80, (1, 2), "inferential", 86),
        (80, (1, 2), "symmetric", 86),     # designated of (2, 1) = 80 + 1 + 5
        (80, (4, 3), "inferential", 70),   # x - 8 - 2
        (80, (4, 3), "symmetric", 74),     # copies (3, 4)'s override x - 6
        (80, (4, 3), "designated", 70),    # held out: no training target, inferential by convention
        (80, (3, 4), "designated", 74),    # overridden: x - 6
        (80, (3, 4), "inferential", 70),   # its composite would be x - 10
        (80, (3, 4), "symmetric", 70),     # designated of the held-out (4, 3) = inferential
        (99, (1, 1), "designated", 109),   # largest target of the default task
        (20, (4, 4), "designated", 4),     # smallest
        (50, (2, 3), "designated", 49),
        (50, (3, 1), "symmetric", 53),
    ],
)
def test_pair_target_worked_examples(x, pair, mapping, expected):
    assert pair_target(TASK, x, pair, mapping) == expected


def test_single_anchor():
    assert [single_anchor(TASK, 80, a) for a in (1, 2, 3, 4)] == [85, 81, 78, 72]
    with pytest.raises(KeyError):
        single_anchor(TASK, 80, 7)


def test_symmetric_of_inferential_pair_is_designated_of_swap():
    # (1, 2) -> designated of (2, 1) = x + 6; make (2, 1) overridden to see the difference
    task = TaskConfig(overrides=((3, 4, -6), (2, 1, 0)))
    assert pair_target(task, 80, (1, 2), "symmetric") == 80
    assert pair_target(task, 80, (1, 2), "inferential") == 86
    assert pair_target(task, 80, (2, 1), "designated") == 80


def test_appendix_e_variant_both_pairs_held_out():
    task = TaskConfig(held_out=((3, 4), (4, 3)), overrides=())
    assert len(task.seen_pairs) == 14
    assert task.pair_type((3, 4)) == task.pair_type((4, 3)) == "held out"
    for pair in ((3, 4), (4, 3)):
        assert pair_target(task, 80, pair, "inferential") == 70
        assert pair_target(task, 80, pair, "symmetric") == 70  # the two mappings coincide
    b = gen(task, 3000, "train")
    pairs = set(zip(b.a1.tolist(), b.a2.tolist()))
    assert (3, 4) not in pairs and (4, 3) not in pairs and len(pairs) == 14
    ev = make_eval_set(task, 4, seed=0)
    assert set(ev.held_out) == {(3, 4), (4, 3)}


def test_unknown_mapping():
    with pytest.raises(ValueError, match="mapping"):
        pair_target(TASK, 80, (1, 2), "reverse")


@pytest.mark.parametrize("task", [TASK, TaskConfig(held_out=((3, 4), (4, 3)), overrides=()),
                                  TaskConfig(overrides=((3, 4, -6), (1, 2, 3)))])
@pytest.mark.parametrize("mapping", ["designated", "inferential", "symmetric"])
def test_vectorised_targets_agree_with_pair_target(task, mapping):
    b = gen(task, 500, "any")
    got = targets(task, b.key, b.a1, b.a2, mapping)
    want = [pair_target(task, x, (a1, a2), mapping) for x, a1, a2 in zip(b.key.tolist(), b.a1.tolist(), b.a2.tolist())]
    assert got.tolist() == want


def test_generated_target_is_designated():
    b = gen(n=1000, split="any")
    want = [pair_target(TASK, x, (a1, a2)) for x, a1, a2 in zip(b.key.tolist(), b.a1.tolist(), b.a2.tolist())]
    assert b.target.tolist() == want


# -- the split rule (generalization on data) ------------------------------------------------------

@pytest.mark.parametrize("task", [TASK, TaskConfig(split_modulus=9), TaskConfig(seq_len=12)])
def test_split_rule_and_disjoint_key_position_sets(task):
    m = task.modulus
    tr, te = gen(task, 6000, "train"), gen(task, 6000, "test", seed=1)
    assert ((tr.key % m) != tr.key_pos).all()
    assert ((te.key % m) == te.key_pos).all()
    assert not split_of(task, tr.key, tr.key_pos).any() and split_of(task, te.key, te.key_pos).all()
    train_combos = set(zip(tr.key.tolist(), tr.key_pos.tolist()))
    test_combos = set(zip(te.key.tolist(), te.key_pos.tolist()))
    assert train_combos.isdisjoint(test_combos)
    # every key position is used by both splits
    assert set(tr.key_pos.tolist()) == set(range(task.n_key_positions)) == set(te.key_pos.tolist())
    # "any" mixes both sides of the rule
    an = gen(task, 2000, "any")
    s = split_of(task, an.key, an.key_pos)
    assert s.any() and (~s).any()


@pytest.mark.parametrize("split", ["train", "test", "any"])
def test_sequence_layout(split):
    b = gen(n=3000, split=split)
    rows = torch.arange(len(b))
    assert b.tokens.shape == (3000, 9) and b.tokens.dtype == torch.int64
    assert (b.tokens[rows, b.key_pos] == b.key).all()
    assert (b.tokens[rows, b.key_pos + 1] == b.a1).all()
    assert (b.tokens[rows, b.key_pos + 2] == b.a2).all()
    assert ((b.key_pos >= 0) & (b.key_pos <= 6)).all()
    assert ((b.key >= 20) & (b.key <= 99)).all()
    noise = b.tokens[noise_mask(b)]
    assert noise.numel() == 3000 * 6
    assert ((noise >= 20) & (noise <= 99)).all()  # in range, hence never an anchor
    # noise is not a constant: it spans the item range
    assert noise.min() == 20 and noise.max() == 99


def test_train_split_never_holds_held_out_pairs():
    for task in (TASK, TaskConfig(held_out=((1, 1), (4, 3)))):
        b = gen(task, 8000, "train")
        pairs = set(zip(b.a1.tolist(), b.a2.tolist()))
        assert pairs == set(task.seen_pairs)
    # test/any splits draw from every pair by default
    assert set(zip(*(t.tolist() for t in (gen(split="test").a1, gen(split="test").a2)))) == set(TASK.pairs)


def test_split_noise_option():
    task = TaskConfig(split_noise=True)
    m = task.modulus
    pos = torch.arange(task.seq_len).expand(4000, -1)
    for split, seed in (("train", 0), ("test", 1)):
        b = gen(task, 4000, split, seed=seed)
        mask = noise_mask(b)
        rule = (b.tokens % m) == (pos % m)
        if split == "train":
            assert not rule[mask].any()
        else:
            assert rule[mask].all()
        assert ((b.tokens[mask] >= 20) & (b.tokens[mask] <= 99)).all()
    # without the option, noise ignores the rule (the key alone is restricted)
    b = gen(TASK, 4000, "test")
    rule = (b.tokens % m) == (pos % m)
    assert not rule[noise_mask(b)].all()


def test_split_noise_never_emits_out_of_range_noise():
    # key positions 0..2 have residues 0..2 (items 20, 21, 22 cover them), but noise positions 3, 4
    # need test items ≡ 3, 4 (mod 5): there are none. Either the config or generate must refuse.
    try:
        task = TaskConfig(item_min=20, item_max=22, seq_len=5, split_modulus=5, split_noise=True)
        b = gen(task, 200, "test")
    except ValueError:
        return
    assert ((b.tokens[noise_mask(b)] >= 20) & (b.tokens[noise_mask(b)] <= 22)).all()


def test_generation_is_deterministic_and_seed_dependent():
    for split in ("train", "test", "any"):
        a, b, c = gen(split=split, seed=5), gen(split=split, seed=5), gen(split=split, seed=6)
        for f in ("tokens", "key", "key_pos", "a1", "a2", "target"):
            assert torch.equal(getattr(a, f), getattr(b, f))
        assert not torch.equal(a.tokens, c.tokens)
        assert not torch.equal(a.key, c.key)


def test_generation_depends_only_on_generator_state():
    g = torch.Generator().manual_seed(3)
    first = generate(TASK, 100, "train", g)
    second = generate(TASK, 100, "train", g)  # generator advanced: new data
    assert not torch.equal(first.tokens, second.tokens)


def test_balanced_gives_exactly_n_per_pair_in_order():
    pairs = [(1, 2), (4, 3), (3, 3)]
    b = gen(n=37, split="test", pairs=pairs, balanced=True)
    assert len(b) == 3 * 37
    got = list(zip(b.a1.tolist(), b.a2.tolist()))
    assert got == [p for p in pairs for _ in range(37)]
    b = gen(n=5, split="train", balanced=True)
    counts = {}
    for p in zip(b.a1.tolist(), b.a2.tolist()):
        counts[p] = counts.get(p, 0) + 1
    assert counts == {p: 5 for p in TASK.seen_pairs}


def test_unbalanced_pairs_are_roughly_uniform():
    b = gen(n=15_000, split="train")
    counts = torch.bincount(b.a1 * 5 + b.a2, minlength=25).float()
    seen = counts[[a * 5 + c for a, c in TASK.seen_pairs]]
    assert (seen / 1000 - 1).abs().max() < 0.15
    pos = torch.bincount(b.key_pos, minlength=7).float()
    assert (pos / (15_000 / 7) - 1).abs().max() < 0.1


def test_generate_errors():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="split"):
        generate(TASK, 10, "validation", g)
    with pytest.raises(ValueError):
        generate(TASK, 0, "train", g)
    with pytest.raises(ValueError, match="pairs"):
        generate(TASK, 10, "train", g, pairs=[])


def test_make_sequence_worked_example():
    seq = make_sequence(TASK, 80, (1, 2), 2, noise=[57, 33, 64, 91, 22, 45])
    assert seq.tolist() == [57, 33, 80, 1, 2, 64, 91, 22, 45]
    assert not split_of(TASK, torch.tensor([80]), torch.tensor([2])).item()  # 80 mod 7 = 3 ≠ 2: train
    assert split_of(TASK, torch.tensor([86]), torch.tensor([2])).item()       # 86 mod 7 = 2: test
    r = make_sequence(TASK, 99, (4, 3), 6, generator=torch.Generator().manual_seed(1))
    assert r[6:].tolist() == [99, 4, 3] and ((r[:6] >= 20) & (r[:6] <= 99)).all()
    for kwargs in (dict(key=10, pair=(1, 2), key_pos=0), dict(key=50, pair=(1, 2), key_pos=7),
                   dict(key=50, pair=(1, 9), key_pos=0), dict(key=50, pair=(1, 2), key_pos=0, noise=[30])):
        with pytest.raises(ValueError):
            make_sequence(TASK, **kwargs)


def test_mapping_accuracy_counts_both_only_when_mappings_coincide():
    b = gen(n=10, split="any", pairs=[(4, 3)], balanced=True)
    inf = targets(TASK, b.key, b.a1, b.a2, "inferential")
    pred = inf.clone()
    pred[:3] = inf[:3] + 4   # symmetric x - 6
    pred[3:5] = inf[3:5] + 1  # something else
    acc = mapping_accuracy(TASK, b, pred)
    assert acc["inferential"] == pytest.approx(0.5)
    assert acc["symmetric"] == pytest.approx(0.3)
    assert acc["other"] == pytest.approx(0.2)
    assert acc["offsets"]["-10"] == pytest.approx(0.5) and acc["offsets"]["-6"] == pytest.approx(0.3)
    # (1, 1): inferential and symmetric coincide, a correct answer counts for both
    b = gen(n=10, split="any", pairs=[(1, 1)], balanced=True)
    acc = mapping_accuracy(TASK, b, b.key + 10)
    assert acc["inferential"] == acc["symmetric"] == 1.0 and acc["other"] == 0.0

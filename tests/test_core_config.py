"""Config validation, derived values, JSON round trips and presets (docs/science.md §2–§4)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from core.config import ModelConfig, RunConfig, TaskConfig, TrainConfig, pair_key, parse_pair
from core.presets import DESCRIPTIONS, PRESETS, TABLE, Preset, describe, get_preset
from core.task import generate, pair_target
from core.model import build_model
from core.train import train

torch.set_num_threads(1)


# -- validation: each impossible setting raises ValueError with a sentence that names it ----------

@pytest.mark.parametrize(
    "kwargs, words",
    [
        # item 5 with pair (4,4) -> 5 - 16 = -11: a negative token id
        (dict(item_min=5, item_max=30), "must be ≥ 0"),
        # a shift so large the vocabulary would explode (out of any sane vocabulary)
        (dict(operations=((1, 200_000), (2, 1)), held_out=(), overrides=()), "vocabulary"),
        # anchor 25 lies between the items 20..99
        (dict(operations=((1, 5), (25, 1), (3, -2), (4, -8))), "inside the item range"),
        # (4,3) both held out (default) and overridden
        (dict(overrides=((4, 3, 0),)), "both held out and overridden"),
        (dict(seq_len=2), "too short"),
        (dict(operations=((1, 5),), held_out=(), overrides=()), "at least two anchors"),
        (dict(operations=((1, 5), (1, 3)), held_out=(), overrides=()), "duplicate anchors"),
        (dict(operations=((-1, 5), (2, 1)), held_out=(), overrides=()), "≥ 0"),
        (dict(item_min=50, item_max=40), "empty"),
        (dict(held_out=((4, 9),)), "no operation"),
        (dict(overrides=((9, 1, 0),)), "no operation"),
        (dict(split_modulus=0), "modulus"),
        # modulus 1: every key is x mod 1 = 0 = p at position 0 -> no training keys
        (dict(split_modulus=1), "split rule"),
    ],
)
def test_task_validation_errors(kwargs, words):
    with pytest.raises(ValueError) as e:
        TaskConfig(**kwargs)
    assert words in str(e.value)
    assert len(str(e.value)) > 20  # a sentence, not a bare repr


def test_every_pair_held_out_is_rejected():
    task = TaskConfig()
    with pytest.raises(ValueError, match="nothing is left"):
        TaskConfig(held_out=task.pairs, overrides=())


@pytest.mark.parametrize("gamma", [0.0, -0.5, 3.5, 5, float("nan"), float("inf")])
def test_gamma_out_of_range(gamma):
    with pytest.raises(ValueError, match="γ"):
        ModelConfig(gamma=gamma)


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.8, 3.0])
def test_gamma_in_range_accepted(gamma):
    assert ModelConfig(gamma=gamma).gamma == gamma


@pytest.mark.parametrize(
    "kwargs", [dict(d_model=0), dict(n_heads=-1), dict(d_ff=2.5), dict(n_layers=True), dict(n_layers=25),
               dict(embed_fan_in="fan_out")]
)
def test_model_validation_errors(kwargs):
    with pytest.raises(ValueError):
        ModelConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [dict(n_train=0), dict(epochs=1.5), dict(batch_size=-2), dict(data="stream"), dict(lr_peak=0.0),
     dict(lr_start=1.5), dict(warmup_epochs=10, decay_epochs=5), dict(warmup_epochs=-1), dict(weight_decay=-0.1)],
)
def test_train_validation_errors(kwargs):
    with pytest.raises(ValueError):
        TrainConfig(**kwargs)


def test_unknown_fields_rejected_by_from_dict():
    with pytest.raises(ValueError, match="unknown TaskConfig fields"):
        TaskConfig.from_dict({"item_mni": 20})
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({"d_modle": 8})
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"lr": 1e-3})
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        RunConfig.from_dict({"model": {"gama": 0.5}})


def test_unknown_section_rejected_by_run_from_dict():
    with pytest.raises(ValueError):
        RunConfig.from_dict({"modle": {"d_model": 8}})


@pytest.mark.parametrize("dotted", ["nonsense", "model.nope", "task.", "optim.lr", "model"])
def test_unknown_fields_rejected_by_replace(dotted):
    with pytest.raises(ValueError, match="unknown setting"):
        RunConfig().replace(**{dotted: 1})


def test_replace_changes_only_what_was_asked_and_validates():
    base = RunConfig()
    cfg = base.replace(**{"model.gamma": 0.8, "train.seed": 3})
    assert cfg.model.gamma == 0.8 and cfg.train.seed == 3
    assert cfg.task == base.task and cfg.model.d_model == base.model.d_model
    assert base.model.gamma == 0.5  # frozen original untouched
    with pytest.raises(ValueError):
        base.replace(**{"task.item_min": 2})  # anchors 1..4 would lie inside 2..99


@pytest.mark.parametrize("dotted, value", [("task.item_min", "abc"), ("model.gamma", None),
                                           ("task.held_out", 5), ("train.lr_peak", "x")])
def test_wrong_type_raises_value_error(dotted, value):
    with pytest.raises(ValueError):
        RunConfig().replace(**{dotted: value})


# -- derived values ------------------------------------------------------------------------------

def test_defaults_match_spec():
    t = TaskConfig()
    assert t.shift == {1: 5, 2: 1, 3: -2, 4: -8}
    assert t.held_out == ((4, 3),) and t.override_shift == {(3, 4): -6}
    assert (t.item_min, t.item_max, t.seq_len) == (20, 99, 9)
    assert len(t.pairs) == 16 and len(t.seen_pairs) == 15 and (4, 3) not in t.seen_pairs
    assert t.modulus == 7 and t.n_key_positions == 7
    assert t.target_range == (4, 109)
    assert t.vocab_size == 110
    assert t.pair_type((4, 3)) == "held out"
    assert t.pair_type((3, 4)) == "overridden"
    assert t.pair_type((1, 2)) == "inferential"


@pytest.mark.parametrize(
    "task",
    [
        TaskConfig(),
        TaskConfig(operations=((1, 5), (2, 1), (3, -2), (4, 30)), overrides=((3, 4, 45),)),
        TaskConfig(operations=((100, 3), (101, -7)), held_out=((101, 100),), overrides=(), item_min=20, item_max=60),
        TaskConfig(held_out=((3, 4), (4, 3)), overrides=()),
    ],
)
def test_vocab_size_covers_every_target(task):
    hi = 0
    for pair in task.pairs:
        for mapping in ("designated", "inferential", "symmetric"):
            for x in (task.item_min, task.item_max):
                t = pair_target(task, x, pair, mapping)
                assert 0 <= t < task.vocab_size
                hi = max(hi, t)
    assert max(task.anchors) < task.vocab_size and task.item_max < task.vocab_size
    # tight: the largest token (target, item or anchor) is the last id
    assert task.vocab_size == max(hi, task.item_max, max(task.anchors)) + 1
    b = generate(task, 200, "any", torch.Generator().manual_seed(0))
    assert int(b.tokens.max()) < task.vocab_size and int(b.target.max()) < task.vocab_size


def test_d_attn_and_n_params_match_the_model():
    cfg = RunConfig(model=ModelConfig(n_layers=2, d_model=8, d_ff=12, d_head=4, n_heads=3))
    model = build_model(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert cfg.model.d_attn == 12
    assert cfg.model.n_params(cfg.task.vocab_size, cfg.task.seq_len) == n


# -- JSON round trips ----------------------------------------------------------------------------

ODD_TASK = TaskConfig(operations=((1, 3), (2, -4), (5, 7)), held_out=((5, 1), (2, 2)), overrides=((1, 5, 0),),
                      item_min=30, item_max=80, seq_len=11, split_modulus=6, split_noise=True)
ODD_MODEL = ModelConfig(n_layers=3, d_model=24, d_ff=40, d_head=5, n_heads=2, gamma=0.73, embed_fan_in="vocab",
                        n_ctx=16)
ODD_TRAIN = TrainConfig(n_train=1234, data="online", epochs=7, batch_size=33, lr_start=1e-5, lr_peak=3e-4,
                        lr_end=2e-5, warmup_epochs=1.5, decay_epochs=6, weight_decay=0.1, betas=(0.8, 0.95),
                        eps=1e-7, grad_clip=0.5, eval_every=2, n_eval_per_pair=17, seed=42, device="cpu")


@pytest.mark.parametrize("cfg", [TaskConfig(), ODD_TASK, ModelConfig(), ODD_MODEL, TrainConfig(), ODD_TRAIN,
                                 RunConfig(), RunConfig(ODD_TASK, ODD_MODEL, ODD_TRAIN)])
def test_json_round_trip(cfg):
    text = json.dumps(cfg.to_dict())
    back = type(cfg).from_dict(json.loads(text))
    assert back == cfg
    assert json.dumps(back.to_dict()) == text


def test_round_trip_keeps_task_semantics():
    back = TaskConfig.from_dict(json.loads(json.dumps(ODD_TASK.to_dict())))
    assert back.shift == {1: 3, 2: -4, 5: 7}
    assert back.override_shift == {(1, 5): 0}
    assert isinstance(back.held_out[0], tuple)


def test_pair_key_and_parse_pair():
    assert pair_key((4, 3)) == "4,3"
    assert parse_pair("4,3") == (4, 3) == parse_pair(" (4, 3) ")
    for bad in ("4", "4,3,2", "a,b", ""):
        with pytest.raises(ValueError):
            parse_pair(bad)


# -- presets -------------------------------------------------------------------------------------

def test_paper_preset_is_exactly_spec_section_4():
    p = get_preset("paper")
    m, t = p.model, p.train
    assert (m.n_layers, m.d_model, m.d_ff, m.d_head, m.n_heads) == (2, 400, 1200, 200, 1)
    assert (t.n_train, t.epochs, t.batch_size) == (900_000, 210, 2048)
    assert t.lr_start == 1e-5 and t.lr_peak == 2.5e-4 and t.lr_end == 1e-5
    assert t.lr_peak == pytest.approx(25 * t.lr_start)
    assert (t.warmup_epochs, t.decay_epochs) == (10, 200)
    assert t.weight_decay == 0.01 and t.betas == (0.9, 0.999) and t.eps == 1e-8 and t.grad_clip == 1.0
    assert t.data == "pool"
    assert p.task == TaskConfig()
    # docs/science.md §4: ~2.7 M parameters
    n = m.n_params(p.task.vocab_size, p.task.seq_len)
    assert 2.4e6 < n < 3.0e6


def test_every_preset_validates_and_round_trips():
    assert {"paper", "cpu-demo", "tiny"} <= set(PRESETS)
    for name, cfg in PRESETS.items():
        assert isinstance(cfg, RunConfig)
        assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
        assert name in DESCRIPTIONS
        assert get_preset(name) is cfg
    with pytest.raises(ValueError, match="cpu-demo"):
        get_preset("gpu-demo")


def test_every_preset_carries_its_description_in_one_table():
    """PRESETS and DESCRIPTIONS are views of one table: same names, same objects, same texts."""
    assert list(PRESETS) == list(DESCRIPTIONS) == list(TABLE)
    for name, preset in TABLE.items():
        assert isinstance(preset, Preset)
        assert isinstance(preset.description, str) and preset.description.strip()
        assert PRESETS[name] is preset.config and get_preset(name) is preset.config
        assert DESCRIPTIONS[name] == describe(name) == preset.description
    with pytest.raises(ValueError, match="cpu-demo"):
        describe("gpu-demo")
    with pytest.raises(AttributeError):  # frozen: a description cannot drift from its config at run time
        TABLE["tiny"].description = "x"
    # cpu-deep is cpu-demo with 3 layers, γ 1.0 and 45 epochs (schedule scaled alike), as described
    deep, demo = PRESETS["cpu-deep"], PRESETS["cpu-demo"]
    assert (deep.model.n_layers, deep.model.gamma, deep.train.epochs, deep.train.warmup_epochs,
            deep.train.decay_epochs) == (3, 1.0, 45, 4.5, 45)
    assert deep.replace(**{"model.n_layers": 2, "model.gamma": 0.5, "train.epochs": 30, "train.warmup_epochs": 3,
                           "train.decay_epochs": 30}) == demo


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_shape_trains_and_evaluates(name):
    """The preset's model shape builds, takes a few steps and evaluates (data shrunk to seconds)."""
    cfg = get_preset(name).replace(**{
        "train.n_train": 64, "train.epochs": 1, "train.batch_size": 32, "train.warmup_epochs": 0.5,
        "train.decay_epochs": 1, "train.n_eval_per_pair": 4, "train.device": "cpu"})
    model = build_model(cfg, torch.Generator().manual_seed(0))
    assert model.cfg == get_preset(name).model  # the shape is the preset's, not shrunk
    hist = train(model, cfg)
    assert [r["epoch"] for r in hist] == [0, 1]
    assert math.isfinite(hist[-1]["train_loss"])
    assert 0.0 <= hist[-1]["seen_test_accuracy"] <= 1.0
    assert set(hist[-1]["held_out"]) == {pair_key(p) for p in cfg.task.held_out}

"""Property-based fuzzing (hypothesis) of everything a public demo reads from outside.

Property, for every input: it either loads / validates with every value inside the documented
bounds (``core.config.BOUNDS``, ``max_params()``, the string choices), or it raises the
project's own error (``ValueError``; ``RunError`` is one) with a message. Any other exception
fails the test, and so does an absurd value that was accepted.

Inputs: ``RunConfig.from_dict`` on arbitrary JSON-like values and on mutations of a valid config
dict (wrong types, missing fields, extra keys, extreme numbers); ``--set`` values and shortcut
flags through the CLI's own parse + validate path (``core.cli.config_from_args``, nothing is
trained); run folders with mutated bytes, truncated files and wrong types in config.json,
metrics.json and weights.safetensors, loaded through ``core.runs.load_run``. Example counts
keep the whole file at about a minute on a 2-core machine.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from core.cli import CLIError, build_parser, config_from_args
from core.config import BOUNDS, MAX_ANCHORS, RunConfig, max_params, max_tensor
from core.presets import get_preset
from core.runs import RunError, load_run, save_run
from core.model import build_model

torch.set_num_threads(1)

def fuzz(n: int) -> settings:
    """``n`` examples, no per-example deadline (the machine is shared); tmp_path is reused on purpose."""
    return settings(max_examples=n, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
VALID = get_preset("tiny").to_dict()
SETTINGS = [f"{s}.{k}" for s in ("task", "model", "train") for k in VALID[s]]

# -- what "inside the documented bounds" means ---------------------------------------------------


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def _in(key: str, v) -> bool:
    lo, hi = BOUNDS[key]
    return lo <= v <= hi


def assert_within_bounds(cfg: RunConfig) -> None:
    """Every value of an accepted config is of its type and inside its documented bound."""
    t, m, tr = cfg.task, cfg.model, cfg.train
    assert 2 <= len(t.operations) <= MAX_ANCHORS
    assert all(_is_int(a) and _is_int(s) and _in("task.anchor", a) for a, s in t.operations)
    assert len(set(t.anchors)) == len(t.anchors)
    assert all(_is_int(x) for p in t.held_out for x in p) and len(set(t.held_out)) == len(t.held_out)
    assert all(_is_int(x) for o in t.overrides for x in o)
    assert len({(a, b) for a, b, _ in t.overrides}) == len(t.overrides)
    for name in ("item_min", "item_max", "seq_len"):
        assert _is_int(getattr(t, name)) and _in(f"task.{name}", getattr(t, name))
    assert t.seq_len >= 3 and t.item_min <= t.item_max
    assert t.split_modulus is None or (_is_int(t.split_modulus) and _in("task.split_modulus", t.split_modulus))
    assert isinstance(t.split_noise, bool)
    lo, hi = t.target_range
    assert 0 <= lo and hi <= 100_000 and t.vocab_size <= 100_001
    for name in ("n_layers", "d_model", "d_ff", "d_head", "n_heads"):
        assert _is_int(getattr(m, name)) and _in(f"model.{name}", getattr(m, name))
    assert m.n_ctx is None or (_is_int(m.n_ctx) and _in("model.n_ctx", m.n_ctx) and m.n_ctx >= t.seq_len)
    assert _is_finite(m.gamma) and 0 < m.gamma <= 3
    assert m.embed_fan_in in ("d_model", "vocab")
    for name in ("n_train", "epochs", "batch_size", "eval_every", "n_eval_per_pair", "seed"):
        assert _is_int(getattr(tr, name)) and _in(f"train.{name}", getattr(tr, name))
    for name in ("lr_start", "lr_peak", "lr_end"):
        assert _is_finite(getattr(tr, name)) and 0 < getattr(tr, name) < 1
    for name in ("warmup_epochs", "decay_epochs", "weight_decay", "eps", "grad_clip"):
        assert _is_finite(getattr(tr, name)) and _in(f"train.{name}", getattr(tr, name))
    assert tr.warmup_epochs <= tr.decay_epochs
    assert len(tr.betas) == 2 and all(_is_finite(b) and 0 <= b < 1 for b in tr.betas)
    assert tr.data in ("pool", "online") and tr.precision in ("fp32", "tf32", "bf16")
    assert tr.device in ("auto", "cpu", "mps", "cuda") or tr.device.startswith("cuda:")
    assert max(tr.lr_start, tr.lr_peak, tr.lr_end) * tr.weight_decay < 1
    assert cfg.n_params <= max_params()
    assert all(math.prod(s) <= max_tensor() for s in cfg.weight_shapes.values())
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict(), allow_nan=False)), strict=True) == cfg


def accepted_or_refused(fn, *args, errors=(ValueError,)):
    """``fn(*args)``: a RunConfig within bounds, or one of ``errors`` with a message."""
    try:
        cfg = fn(*args)
    except errors as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        return None
    assert_within_bounds(cfg)
    return cfg


# -- strategies -----------------------------------------------------------------------------------

EXTREME_NUMBERS = st.sampled_from([0, -1, 1, 2, 3, 9, 2**31, 2**63, 2**64, -(2**63), 10**30, 10**400, 0.0, -0.0, 0.5,
                                   1.5, 1e-320, 1e308, -1e308, float("nan"), float("inf"), float("-inf"), 1e6, 1e9])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), EXTREME_NUMBERS)
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=5)),
                       max_leaves=20)
# values near the valid ones: a field's own value, nudged, wrapped or of another JSON type
def _near(value):
    out = [st.just(value), JSONISH, EXTREME_NUMBERS]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out.append(st.integers(min_value=-3, max_value=3).map(lambda d: value + d))
        out.append(st.sampled_from([value * 10**6, -value, value / 3]))
    if isinstance(value, list):
        out.append(st.lists(st.lists(st.integers(-10, 110), max_size=4), max_size=4))
        out.append(st.just(value + value))  # duplicates
    if isinstance(value, dict):
        out.append(st.dictionaries(st.sampled_from(["1", "2", "3", "4", "5", "x", "-1", "1.5", " 2"]),
                                   st.integers(-200, 200), max_size=6))
    return st.one_of(*out)


@st.composite
def mutated_config(draw):
    d = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(["task", "model", "train"]))
        name = draw(st.sampled_from(sorted(VALID[section])))
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "extra", "section"]))
        if not isinstance(d[section], dict):
            continue
        if action == "replace":
            d[section][name] = draw(_near(VALID[section].get(name)))
        elif action == "delete":
            d[section].pop(name, None)
        elif action == "extra":
            d[section][draw(st.text(max_size=8))] = draw(SCALARS)
        else:
            d[section] = draw(JSONISH)
    return d


@given(JSONISH)
@fuzz(200)
def test_from_dict_on_arbitrary_values(value):
    accepted_or_refused(RunConfig.from_dict, value)
    accepted_or_refused(lambda v: RunConfig.from_dict(v, strict=True), value)


@given(st.dictionaries(st.sampled_from(["task", "model", "train"]), JSONISH, max_size=3))
@fuzz(150)
def test_from_dict_on_arbitrary_sections(value):
    accepted_or_refused(RunConfig.from_dict, value)


@given(mutated_config())
@fuzz(500)
def test_from_dict_on_mutations_of_a_valid_config(d):
    accepted_or_refused(RunConfig.from_dict, d)
    accepted_or_refused(lambda v: RunConfig.from_dict(v, strict=True), d)


# -- the CLI's --set and shortcut flags (parsed and validated in-process, nothing trained) --------

SET_TEXT = st.one_of(
    JSONISH.map(lambda v: json.dumps(v)),  # JSON, including NaN / Infinity tokens
    st.text(max_size=16),
    st.sampled_from(["{bad", "[1,2]", "[[4,3],[4,3]]", "[[3,4,-6],[3,4,-5]]", "true", "null", "NaN", "-Infinity",
                     "1e309", "cpu", "meta", '"meta"', "cuda:0", "1.5", "-3", "[]", "[0.9]", "[0.9, 1.0]", "1" * 5000,
                     "[" * 5000, '{"1": 5, "2": 1}', "9" * 30, "0x10", "'cpu'"]),
)


@given(st.sampled_from(SETTINGS + ["train.nope", "optim.lr", "model", ""]), SET_TEXT)
@fuzz(600)
def test_set_values_through_the_cli_parser(key, text):
    args = build_parser().parse_args(["train", "--preset", "tiny", "--set", f"{key}={text}"])
    accepted_or_refused(config_from_args, args, errors=(ValueError, CLIError))


FLAG_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.integers(-10**20, 10**20).map(str), st.sampled_from(["1e309", "-1e309", "nan", "0", "-0"]))


@given(st.sampled_from(["--gamma", "--lr", "--weight-decay", "--layers", "--d-model", "--d-ff", "--d-head",
                        "--heads", "--seed", "--epochs", "--n-train", "--batch-size"]), FLAG_VALUES)
@fuzz(200)
def test_shortcut_flags_through_the_cli_parser(flag, text):
    try:
        args = build_parser().parse_args(["train", "--preset", "tiny", flag, text])
    except SystemExit as e:  # argparse refused the value's type: one "error:" line, status 2
        assert e.code == 2
        return
    accepted_or_refused(config_from_args, args, errors=(ValueError, CLIError))


# -- run folders: mutated, truncated and mistyped files through the loader -------------------------

@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    cfg = get_preset("tiny")
    from core.config import pair_key
    rec = {"epoch": 1, "seen_test_accuracy": 0.5, "per_pair": {pair_key(p): 0.5 for p in cfg.task.pairs},
           "held_out": {"4,3": {"inferential": 0.2, "symmetric": 0.3, "other": 0.5, "offsets": {"-10": 0.2}}}}
    model = build_model(cfg, torch.Generator().manual_seed(0))
    return save_run(tmp_path_factory.mktemp("fuzz") / "good", cfg, model, {"history": [rec], "seconds": 1.0})


def _fresh_copy(good: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "case"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(good, dst)
    return dst


def loaded_or_refused(path: Path) -> None:
    try:
        run = load_run(path)
    except RunError as e:
        assert str(e).strip()
        return
    assert_within_bounds(run.config)
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in run.model.parameters())
    history = run.metrics["history"]
    assert isinstance(history, list) and history and 0 <= history[-1]["seen_test_accuracy"] <= 1


@st.composite
def byte_mutation(draw, size: int):
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "empty"]))
    pos = draw(st.integers(0, max(size - 1, 0)))
    return kind, pos, draw(st.binary(min_size=1, max_size=8))


def _mutate_bytes(data: bytes, mutation) -> bytes:
    kind, pos, blob = mutation
    if kind == "truncate":
        return data[:pos]
    if kind == "flip":
        return data[:pos] + bytes([data[pos] ^ (blob[0] or 1)]) + data[pos + 1:] if data else blob
    if kind == "insert":
        return data[:pos] + blob + data[pos:]
    if kind == "delete":
        return data[:pos] + data[pos + len(blob):]
    return b""


@given(st.sampled_from(["config.json", "metrics.json", "weights.safetensors"]), st.data())
@fuzz(250)
def test_run_folder_with_mutated_bytes(good_run, tmp_path, name, data):
    path = _fresh_copy(good_run, tmp_path)
    raw = (path / name).read_bytes()
    limit = len(raw) if name != "weights.safetensors" else min(len(raw), 2000)  # the header and first tensors
    (path / name).write_bytes(_mutate_bytes(raw, data.draw(byte_mutation(limit))))
    loaded_or_refused(path)


@given(mutated_config(), st.sampled_from(["keep", "drop_format", "format_2", "format_str", "seed", "extra"]))
@fuzz(150)
def test_run_folder_with_wrong_types_in_config(good_run, tmp_path, cfg_dict, meta_edit):
    path = _fresh_copy(good_run, tmp_path)
    meta = json.loads((path / "config.json").read_text())
    meta.update(cfg_dict)
    if meta_edit == "drop_format":
        meta.pop("format")
    elif meta_edit == "format_2":
        meta["format"] = 3  # a format this version does not read (1 and 2 are read)
    elif meta_edit == "format_str":
        meta["format"] = "1"
    elif meta_edit == "seed":
        meta["seed"] = 1.5
    elif meta_edit == "extra":
        meta["notes"] = "hello"
    (path / "config.json").write_text(json.dumps(meta))  # NaN / Infinity written as Python does
    loaded_or_refused(path)


@given(st.lists(st.sampled_from(["history", "seen_test_accuracy", "per_pair", "held_out", "inferential", "offsets",
                                 "seconds", "epoch", "4,3", "1,1"]), min_size=1, max_size=3), JSONISH)
@fuzz(150)
def test_run_folder_with_wrong_types_in_metrics(good_run, tmp_path, keys, value):
    path = _fresh_copy(good_run, tmp_path)
    metrics = json.loads((path / "metrics.json").read_text())
    target = metrics
    for k in keys[:-1]:  # walk down as far as the keys lead, then replace one value
        nxt = target.get(k) if isinstance(target, dict) else None
        if isinstance(nxt, list) and nxt:
            nxt = nxt[-1]
        if not isinstance(nxt, dict):
            break
        target = nxt
    target[keys[-1]] = value
    (path / "metrics.json").write_text(json.dumps(metrics))
    loaded_or_refused(path)


DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.int64, torch.uint8, torch.bool]


@given(st.data())
@fuzz(100)
def test_run_folder_with_wrong_tensors(good_run, tmp_path, data):
    path = _fresh_copy(good_run, tmp_path)
    state = load_file(str(path / "weights.safetensors"))
    name = data.draw(st.sampled_from(sorted(state)))
    action = data.draw(st.sampled_from(["dtype", "shape", "drop", "extra", "nan", "rename"]))
    if action == "dtype":
        state[name] = state[name].to(data.draw(st.sampled_from(DTYPES)))
    elif action == "shape":
        dims = data.draw(st.lists(st.integers(0, 40), min_size=0, max_size=3))
        state[name] = torch.zeros(dims)
    elif action == "drop":
        state.pop(name)
    elif action == "extra":
        state["blocks.9.attn.W_Q"] = torch.zeros(2, 2)
    elif action == "nan":
        state[name] = state[name].clone().fill_(data.draw(st.sampled_from([math.nan, math.inf])))
    else:
        state[name + "_"] = state.pop(name)
    assume(state)
    save_file(state, str(path / "weights.safetensors"))
    loaded_or_refused(path)


# -- sequences typed on the Inside page (core.probes.parse_sequence) ----------------------------
_TASK = get_preset("cpu-demo").task
_tokens = st.one_of(st.integers(-10**6, 10**6), st.sampled_from(sorted(_TASK.anchors)),
                    st.integers(_TASK.item_min, _TASK.item_max))
_seps = st.sampled_from([" ", ",", ";", "  ", "\t", ", ", "\n"])


@st.composite
def typed_sequences(draw) -> str:
    """What a visitor may type: near-valid sequences (right tokens, odd separators, wrong lengths,
    digits Python's int() also reads: '１２', '1_0'), or any text at all."""
    if draw(st.booleans()):
        toks = [str(t) for t in draw(st.lists(_tokens, min_size=0, max_size=_TASK.seq_len + 2))]
        if toks and draw(st.booleans()):
            i = draw(st.integers(0, len(toks) - 1))
            toks[i] = draw(st.sampled_from(["１２", "1_0", "+5", "-0", "1e3", "0x10", "٣", "nan", "9" * 5000]))
        return draw(_seps).join(toks)
    return draw(st.text(max_size=300))


@fuzz(400)
@given(text=typed_sequences())
def test_typed_sequences_parse_or_give_a_message(text):
    from core import probes
    try:
        arr = probes.parse_sequence(_TASK, text)
    except ValueError as e:
        assert str(e) and len(str(e)) < 500, "a message, of a readable length"
        return
    assert arr.shape == (_TASK.seq_len,) and arr.dtype.name == "int64"
    anchors = set(_TASK.anchors)
    assert all(int(t) in anchors or _TASK.item_min <= int(t) <= _TASK.item_max for t in arr)
    probes.describe_sequence(_TASK, arr)  # exactly one key + anchor pair, as the page then draws it


@pytest.mark.parametrize("text", ["１２ 33 80 1 2 64 91 22 45", "57 33 80 1 2 64 91 22 4_5", "9" * 5000,
                                  " ".join(["7"] * 150)])
def test_typed_sequences_of_odd_digits_or_great_length_are_refused_briefly(text):
    from core import probes
    with pytest.raises(ValueError) as e:
        probes.parse_sequence(_TASK, text)
    assert len(str(e.value)) < 200

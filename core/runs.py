"""Run folders on disk: ``config.json``, ``weights.safetensors``, ``metrics.json``.

A run folder is written into a temporary sibling and renamed into place, so a crash or a
cancelled job never leaves a half-written run and never overwrites a saved one unless asked.
Loading rebuilds the model from the JSON config and reads tensors with safetensors: nothing
is unpickled, no code runs. Any corrupt or mismatched folder raises ``RunError``.
"""
from __future__ import annotations

import functools
import json
import math
import os
import platform
import re
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config import ModelConfig, RunConfig, max_params, max_tensor, pair_key
from .model import AnchorTransformer, build_model
from .train import TrainState

FORMAT_VERSION = 2
# Formats this version reads. Format 1 (before 2026-12-04) had no ``model.d_vocab``: its models
# always used the task's vocabulary, so reading one sets ``d_vocab`` to null, which means exactly
# that (``upgrade_config``). Nothing else differs.
READABLE_FORMATS = (1, 2)


class RunError(ValueError):
    """A run folder that is missing, corrupt, or does not match its config."""


@dataclass
class Run:
    """A loaded run: its folder, config, model (eval mode, CPU) and metrics."""

    path: Path
    config: RunConfig
    model: AnchorTransformer
    metrics: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def final(self) -> dict[str, Any]:
        return self.metrics["history"][-1]


def _versions() -> dict[str, str]:
    import numpy
    import safetensors
    return {"torch": torch.__version__, "numpy": numpy.__version__, "safetensors": safetensors.__version__,
            "python": platform.python_version(), "format": str(FORMAT_VERSION)}


# -- saving: nothing is lost, whenever the writer is killed ----------------------------------
#
# A save of NAME writes ``.NAME.tmp-<pid>-<random>`` (a folder, or a file for checkpoints) and
# renames it into place. Replacing an existing folder takes two renames (a folder cannot be
# renamed over a non-empty one): NAME -> ``.NAME.old``, then the temporary -> NAME, then
# ``.NAME.old`` is renamed to ``.NAME.trash-<pid>-<random>`` and deleted (so ``.NAME.old`` is
# always whole). A writer killed at any step leaves NAME (old or new) or ``.NAME.old`` (old,
# whole). ``recover_saves`` repairs a folder of runs; every save, ``list_runs`` and ``load_run``
# of a missing run call it first:
#
# - NAME missing and ``.NAME.old`` a run folder: ``.NAME.old`` is renamed back to NAME (the old
#   run returns; the new one never landed);
# - NAME present and ``.NAME.old`` left over: ``.NAME.old`` is deleted (the replacement landed);
# - a temporary or trash entry is deleted once it is *stale*: its owner process (the pid in its
#   name) is not running on this machine and it was untouched for ``STALE_SECONDS``, or it was
#   untouched for ``ABANDONED_SECONDS`` whoever owns it (a pid of another machine, or a reused
#   pid); names of older versions (``.NAME.<8 random characters>``) only by the second rule.
#
# A save of NAME in progress (a temporary of NAME whose owner runs) makes recovery leave NAME
# and ``.NAME.old`` alone. A save writes a few files in seconds, so both delays are generous.

STALE_SECONDS = 60.0
ABANDONED_SECONDS = 3600.0
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:(?:tmp|trash)-(?P<pid>\d+)-[a-z0-9_]+|(?P<legacy>[a-z0-9_]{8}))$")
_OLD = re.compile(r"^\.(?P<name>.+)\.old$")


def _temp_prefix(name: str) -> str:
    """Prefix of this process's temporaries for entry ``name`` (``.NAME.tmp-<pid>-``)."""
    return f".{name}.tmp-{os.getpid()}-"


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a pid we may not signal runs too)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def _discard(entry: Path, name: str) -> None:
    """Delete ``entry`` (folder or file): first renamed to ``.NAME.trash-<pid>-<random>``, so a
    deletion killed half-way never leaves a half folder under a name recovery would restore."""
    trash = entry.with_name(f".{name}.trash-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.replace(entry, trash)
    except FileNotFoundError:
        return
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink(missing_ok=True)


def recover_saves(root: str | Path) -> list[str]:
    """Repair what killed saves left in the folder of runs ``root`` (rules above).

    Returns:
        One line per action, e.g. ``"restored NAME from .NAME.old"``, ``"removed .NAME.tmp-12-ab"``.
        A folder that cannot be read or changed (read-only ``pretrained/`` of a hosted demo) is
        left as it is, without error.
    """
    root = Path(root)
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    done: list[str] = []
    now = time.time()
    saving: set[str] = set()  # names a running process is saving now
    for e in entries:
        m = _LEFTOVER.match(e.name)
        if not m:
            continue
        try:
            age = now - e.lstat().st_mtime
        except OSError:
            continue
        owner_runs = m["pid"] is not None and _running(int(m["pid"]))
        stale = age > ABANDONED_SECONDS or (m["pid"] is not None and not owner_runs and age > STALE_SECONDS)
        if not stale:
            saving.add(m["name"])
            continue
        try:
            if e.is_dir() and not e.is_symlink():
                shutil.rmtree(e)
            else:
                e.unlink()
            done.append(f"removed {e.name}")
        except OSError:
            pass
    for e in entries:
        m = _OLD.match(e.name)
        if not m or m["name"] in saving or not e.is_dir() or e.is_symlink():
            continue
        target = root / m["name"]
        try:
            if not target.exists() and not target.is_symlink():
                if (e / "config.json").is_file():
                    os.rename(e, target)
                    done.append(f"restored {target.name} from {e.name}")
            else:
                _discard(e, m["name"])
                done.append(f"removed {e.name}")
        except OSError:
            pass
    return done


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Fill a folder that appears at ``path`` whole or not at all.

    Yields an empty temporary sibling of ``path`` (its parent is created; leftovers of killed
    saves there are repaired first, ``recover_saves``). When the block ends without an
    exception, the sibling (made readable by everyone, as other users of the app must read it)
    replaces ``path`` as a whole, an existing folder included; when it raises, ``path`` is left
    as it was. The temporary folder is always removed. Killed at any moment, the writer leaves
    the old folder or the new one under ``path``, or the old one as ``.NAME.old``, which the
    next ``recover_saves`` puts back.

    Raises:
        RunError: ``path`` exists and is a file (only a folder is ever replaced).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_saves(path.parent)
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} is a file, not a folder; it is left as it is (choose another name)")
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path.name), dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():  # left by a save of this name still running when recovery looked
                _discard(old, path.name)
            os.replace(path, old)  # killed from here to the next line: .NAME.old is the whole old run
            os.replace(tmp, path)
            _discard(old, path.name)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable(path: str | Path) -> None:
    """Raise RunError unless ``path`` is absent or an existing run folder (it holds a
    ``config.json``): ``overwrite`` replaces a run, never a file or some other folder. A run a
    killed save left as ``.NAME.old`` is put back first (``recover_saves``)."""
    path = Path(path)
    recover_saves(path.parent)
    if not path.exists():
        return
    if not path.is_dir():
        raise RunError(f"{path} is a file, not a run folder; it is left as it is (choose another name)")
    if not (path / "config.json").is_file():
        raise RunError(f"{path} exists but is not a run folder (no config.json), so it is not replaced;"
                       " choose another name")


def save_run(path: str | Path, config: RunConfig, model: AnchorTransformer, metrics: dict[str, Any],
             device: str = "cpu", overwrite: bool = False, half: bool = False) -> Path:
    """Write a run folder atomically.

    Args:
        path: destination folder (its parent is created).
        config: the run config (stored with library versions, device and seed).
        model: the trained model; weights are stored as fp32 (or fp16 with ``half``;
            loading always restores fp32).
        metrics: JSON-serialisable; at least ``{"history": [...]}``. Stored with
            ``"threads"``: torch's CPU thread count (``torch.get_num_threads()``) unless given;
            training and saving run in one process, so it is the count the run was trained
            with, part of what "same seed, same run" needs (README, "Reproducibility").
        overwrite: replace an existing run folder; otherwise an existing folder raises.

    Raises:
        RunError: the destination exists and ``overwrite`` is False, or it exists and is
            not a run folder (a file, or a folder without ``config.json``), overwrite or not.
    """
    path = Path(path)
    recover_saves(path.parent)  # a run a killed overwrite left as .NAME.old is back before the check
    if path.exists() and not overwrite:
        raise RunError(f"run folder {path} already exists; choose another name (saved runs are never overwritten)")
    check_replaceable(path)
    with atomic_dir(path) as tmp:
        state = {k: v.detach().to("cpu", torch.float16 if half else torch.float32).contiguous()
                 for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "weights.safetensors"), metadata={"format": str(FORMAT_VERSION)})
        os.chmod(tmp / "weights.safetensors", 0o644)  # readable like the JSON files (save_file may not be)
        meta = {"format": FORMAT_VERSION, **config.to_dict(), "versions": _versions(), "device": device,
                "seed": config.train.seed}
        (tmp / "config.json").write_text(json.dumps(meta, indent=2))
        (tmp / "metrics.json").write_text(json.dumps({**metrics, "threads": metrics.get("threads",
                                                                                   torch.get_num_threads())}))
    return path


# -- loading: one strict loader ---------------------------------------------------------------
#
# Every run folder is validated completely before anything is built: config.json against the
# strict schema (``RunConfig.from_dict(strict=True)``: every field required, nothing unknown,
# sizes bounded by ``core.config.BOUNDS``, ``max_params()`` and ``max_tensor()``), metrics.json
# against the config, and the weights file's header (names, shapes, dtypes, sizes) against the
# model the config describes, all before a single tensor is allocated.
#
# Format decision: ``save_run`` writes ``FORMAT_VERSION`` (2); a config.json must say a format of
# ``READABLE_FORMATS`` and hold exactly the keys ``save_run`` writes (``RUN_META_KEYS``). Format 1
# lacks ``model.d_vocab`` (added with format 2) and is read as format 2 with ``d_vocab`` null, its
# only meaning there (``upgrade_config``); a format-1 file that holds ``d_vocab`` is refused. The
# runs committed under pretrained/ were written before ``train.precision`` existed; they were
# migrated once (``"precision": "fp32"``, the only precision there was, added; every other value
# kept), so the loader fills in no defaults. A folder whose config.json is not a regular
# file is not a run: ``list_runs`` leaves it out (``include_bad=True`` lists it for reporting).

RUN_META_KEYS = ("format", "task", "model", "train", "versions", "device", "seed")
WEIGHT_DTYPES = {"F32": torch.float32, "F16": torch.float16}  # what save_run writes (fp16 with --half)
MAX_JSON_BYTES = 64 * 2**20  # config.json / metrics.json larger than this are refused unread


def refuse_symlink(path: Path) -> None:
    """Raise ``RunError`` when ``path`` itself is a symbolic link (``lstat``, never followed): a
    run folder, or a file in one, that is a link can point anywhere on the server, so it is
    refused unread."""
    try:
        link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return  # missing: the caller words that case
    if link:
        raise RunError(f"{path} is a symbolic link: refused unread (a run holds real files, a link can point anywhere)")


def _read_json(file: Path, finite_only: bool) -> Any:
    """The JSON value of one file of a run folder, read as UTF-8.

    Raises:
        FileNotFoundError: the file does not exist (callers word that case themselves).
        RunError: it is not a regular file, larger than ``MAX_JSON_BYTES``, not UTF-8, not JSON,
            nested too deep, or (``finite_only``) holds NaN / Infinity. The message names the file.
    """
    refuse_symlink(file)
    if not file.exists():
        raise FileNotFoundError(file)
    if not file.is_file():
        raise RunError(f"{file} is not a regular file")
    try:
        if file.stat().st_size > MAX_JSON_BYTES:
            raise RunError(f"{file} is larger than {MAX_JSON_BYTES // 2**20} MiB: refused unread")
        data = file.read_bytes()
    except OSError as e:
        raise RunError(f"{file} cannot be read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RunError(f"{file} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not a number JSON allows")
    try:
        return json.loads(text, parse_constant=refuse if finite_only else None)
    except RecursionError:
        raise RunError(f"{file} is nested too deeply to be a run's JSON") from None
    except ValueError as e:  # JSONDecodeError included
        raise RunError(f"{file} is corrupt: {e}") from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate only ``config.json`` of a run folder (strict schema, see above).

    Raises:
        RunError: absent, not a regular file, not UTF-8 JSON, an unknown or missing key, a
            ``format`` other than ``FORMAT_VERSION``, or any value the config rejects. The
            message names the file.
    """
    path = Path(path)
    file = path / "config.json"
    try:
        meta = _read_json(file, finite_only=True)
    except FileNotFoundError:
        raise RunError(f"{path} is not a run folder: config.json is missing") from None
    try:
        return _config_of(meta)
    except ValueError as e:
        raise RunError(f"{file} is corrupt or invalid: {e}") from None


def _config_of(meta: Any) -> RunConfig:
    if not isinstance(meta, dict):
        raise ValueError(f"expected a JSON object, got {type(meta).__name__}")
    unknown = sorted(str(k) for k in set(meta) - set(RUN_META_KEYS))
    missing = [k for k in RUN_META_KEYS if k not in meta]
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}")
    if missing:
        raise ValueError(f"missing key(s) {missing}")
    cfg = RunConfig.from_dict(upgrade_config({k: meta[k] for k in ("task", "model", "train")}, meta["format"]),
                              strict=True)
    versions = meta["versions"]
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        raise ValueError("versions must be an object of version strings")
    if not isinstance(meta["device"], str) or len(meta["device"]) > 64:
        raise ValueError("device must be a short string")
    if isinstance(meta["seed"], bool) or meta["seed"] != cfg.train.seed:
        raise ValueError(f"seed {meta['seed']!r} differs from train.seed {cfg.train.seed}")
    return cfg


def upgrade_config(sections: dict[str, Any], fmt: Any) -> dict[str, Any]:
    """The ``{"task", "model", "train"}`` sections of a file of format ``fmt`` in today's form.

    Format 2 is today's; format 1 lacks ``model.d_vocab``, which it always meant as the task's
    vocabulary (null). Nothing is filled in for a missing field of format 2.

    Raises:
        ValueError: a format outside ``READABLE_FORMATS`` (ints only), or a format-1 model section
            that already holds ``d_vocab``.
    """
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt not in READABLE_FORMATS:
        raise ValueError(f"format {fmt!r} is not a format this version reads ({', '.join(map(str, READABLE_FORMATS))})")
    if fmt == 1 and isinstance(sections, dict):
        model = sections.get("model")
        if isinstance(model, dict):
            if "d_vocab" in model:
                raise ValueError("format 1 has no model.d_vocab (it was added with format 2)")
            sections = {**sections, "model": {**model, "d_vocab": None}}
    return sections


def _share(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and 0.0 <= v <= 1.0


def load_metrics(path: str | Path, config: RunConfig | None = None) -> dict[str, Any]:
    """Read and validate ``metrics.json``: a JSON object whose ``history`` is a non-empty list of
    evaluation records, each with ``seen_test_accuracy`` (a share in [0, 1]), ``per_pair``
    (pair key -> share) and ``held_out`` (pair key -> ``{"inferential", "symmetric", "other"}``
    shares). With ``config``, the last record must cover every pair of its task and every
    record its held-out pairs.

    Raises:
        RunError: absent, not a regular file, not UTF-8 JSON, or any of the above violated;
            the message names the file.
    """
    path = Path(path)
    file = path / "metrics.json"
    try:
        metrics = _read_json(file, finite_only=False)  # a diverged run records a NaN loss
    except FileNotFoundError:
        raise RunError(f"{path} has no metrics.json") from None
    problem = _metrics_problem(metrics, config)
    if problem:
        raise RunError(f"{file} {problem}")
    return metrics


def _metrics_problem(metrics: Any, config: RunConfig | None) -> str | None:
    if not isinstance(metrics, dict) or not isinstance(metrics.get("history"), list) or not metrics["history"]:
        return "has no training history"
    history = metrics["history"]
    last = history[-1]
    missing = [k for k in ("seen_test_accuracy", "per_pair", "held_out") if not isinstance(last, dict) or k not in last]
    if missing:
        return f"is incomplete: the last record lacks {missing}"
    held_keys = ([pair_key(p) for p in config.task.held_out] if config else
                 list(last["held_out"]) if isinstance(last["held_out"], dict) else [])
    for i, rec in enumerate(history):
        where = f"record {i} of the history"
        if not isinstance(rec, dict) or not _share(rec.get("seen_test_accuracy")):
            return f"is corrupt: {where} has no seen_test_accuracy in [0, 1]"
        per_pair, held = rec.get("per_pair"), rec.get("held_out")
        if not isinstance(per_pair, dict) or not all(_share(v) for v in per_pair.values()):
            return f"is corrupt: per_pair of {where} is not an object of shares in [0, 1]"
        if not isinstance(held, dict):
            return f"is corrupt: held_out of {where} is not an object"
        for k in held_keys:
            h = held.get(k)
            if not isinstance(h, dict) or not all(_share(h.get(m)) for m in ("inferential", "symmetric", "other")):
                return f"is corrupt: held_out[{k!r}] of {where} lacks inferential/symmetric/other shares"
            if not isinstance(h.get("offsets", {}), dict):
                return f"is corrupt: held_out[{k!r}].offsets of {where} is not an object"
    if config is not None:
        absent = [pair_key(p) for p in config.task.pairs if pair_key(p) not in last["per_pair"]]
        if absent:
            return f"does not match config.json: the last record has no accuracy for the pairs {absent}"
    return None


def expected_weights(config: RunConfig) -> dict[str, tuple[int, ...]]:
    """``name -> shape`` of every weight of the model ``config`` describes, from a model built on
    torch's ``meta`` device (no memory). ``config`` is already bounded by its own validation."""
    m = config.model
    return dict(_meta_shapes(m.n_layers, m.d_model, m.d_ff, m.d_head, m.n_heads, config.d_vocab, config.n_ctx))


@functools.lru_cache(maxsize=64)
def _meta_shapes(*sizes: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    n_layers, d_model, d_ff, d_head, n_heads, d_vocab, n_ctx = sizes
    cfg = ModelConfig(n_layers=n_layers, d_model=d_model, d_ff=d_ff, d_head=d_head, n_heads=n_heads)
    with torch.device("meta"):
        model = _Uninitialized(cfg, d_vocab, n_ctx)
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


class _Uninitialized(AnchorTransformer):
    """The model's weights without their initialization (on ``meta`` it would only cost time)."""

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        pass


def check_weights(file: str | Path, config: RunConfig) -> None:
    """Check a weights file from its safetensors header alone (nothing is read into memory):
    the names, shapes and dtypes (``WEIGHT_DTYPES``: F32 or F16) of the model ``config`` describes,
    each tensor within ``max_tensor()`` elements and all within ``max_params()``.

    Raises:
        RunError: missing, not a regular file, not safetensors, or not matching; the message
            names the file and the first mismatch.
    """
    file = Path(file)
    refuse_symlink(file)
    if not file.exists():
        raise RunError(f"{file.parent} has no weights.safetensors")
    if not file.is_file():
        raise RunError(f"{file} is not a regular file")
    expected = expected_weights(config)
    try:
        with safe_open(str(file), framework="pt") as f:
            header = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise RunError(f"{file} is corrupt: {e}") from None
    missing, extra = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
    if missing or extra:
        raise RunError(f"{file} does not match config.json (missing {missing}, unexpected {extra[:10]})")
    total = 0
    for k, (shape, dtype) in header.items():
        n = math.prod(shape)
        total += n
        if n > max_tensor():
            raise RunError(f"{file}: weight {k} has {n:,} elements, more than the {max_tensor():,} allowed"
                           " (ANCHOR_MAX_TENSOR)")
        if shape != expected[k]:
            raise RunError(f"{file}: weight {k} has shape {shape}, the config needs {expected[k]}")
        if dtype not in WEIGHT_DTYPES:
            raise RunError(f"{file}: weight {k} is stored as {dtype}; run weights are F32 or F16")
    if total > max_params():
        raise RunError(f"{file} holds {total:,} parameters, more than the {max_params():,} allowed (ANCHOR_MAX_PARAMS)")


def check_run(path: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    """Validate a run folder completely without building its model or reading its weights:
    config.json, metrics.json and the weights header (see ``load_config``, ``load_metrics``,
    ``check_weights``). Cheap enough to check every listed run.

    Returns:
        ``(config, metrics)``.

    Raises:
        RunError: the first problem found, naming the folder or file.
    """
    path = Path(path)
    refuse_symlink(path)
    if not path.exists():
        raise RunError(f"run folder {path} does not exist")
    if not path.is_dir():
        raise RunError(f"{path} is not a folder: a run is a folder holding config.json,"
                       " weights.safetensors and metrics.json")
    try:
        entries = sorted(path.iterdir())
    except OSError as e:
        raise RunError(f"run folder {path} cannot be read: {e.strerror or e}") from None
    for entry in entries:  # any link inside (config.json, the weights, anything) is refused
        refuse_symlink(entry)
    config = load_config(path)
    metrics = load_metrics(path, config)
    check_weights(path / "weights.safetensors", config)
    return config, metrics


def load_run(path: str | Path) -> Run:
    """Load a run folder: validate it completely (``check_run``), then build the model from the
    config and load the safetensors weights into it.

    Returns:
        A ``Run`` whose model is fp32, on the CPU, in eval mode.

    Raises:
        RunError: a missing, corrupt, oversized or mismatched file (see ``check_run``), or
            weights holding NaN or infinite values.
    """
    path = Path(path)
    if not path.exists():
        recover_saves(path.parent)  # an overwrite killed between its renames left it as .NAME.old
    config, metrics = check_run(path)
    model = build_model(config)
    try:
        state = load_file(str(path / "weights.safetensors"))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise RunError(f"{path}/weights.safetensors is corrupt: {e}") from None
    for k, v in state.items():
        if not torch.isfinite(v).all():
            raise RunError(f"{path}: weight {k} holds NaN or infinite values")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval()
    return Run(path, config, model, metrics)


def list_runs(root: str | Path, include_bad: bool = False) -> list[Path]:
    """Run folders directly under ``root``, sorted by name: folders (not hidden) whose
    ``config.json`` is a regular file. A folder whose config.json is a folder or anything else
    is not a run and is left out, unless ``include_bad`` (callers that report bad folders use
    it, then ``check_run`` each); so is a folder that is a symbolic link. Listing reads no file; ``check_run`` validates. Leftovers of
    killed saves are repaired first (``recover_saves``: a run left as ``.NAME.old`` is back)."""
    root = Path(root)
    if not root.is_dir():
        return []
    recover_saves(root)
    out = []
    try:
        entries = list(root.iterdir())
    except OSError:  # unreadable: nothing to list
        return []
    for p in entries:
        cfg = p / "config.json"
        if not include_bad and p.is_symlink():  # a link can point anywhere: check_run refuses it
            continue
        if p.is_dir() and not p.name.startswith(".") and (cfg.is_file() or (include_bad and cfg.exists())):
            out.append(p)
    return sorted(out)


# -- checkpoints of runs in progress ----------------------------------------------------------

def checkpoint_path(run: str | Path) -> Path:
    """Where the checkpoint of the run that will land in folder ``run`` lives: the file
    ``<run>.checkpoint.safetensors`` next to it (never inside: the run folder appears whole
    when training ends, so a checkpoint can never make a half-run the app or ``eval`` would read)."""
    run = Path(run)
    return run.with_name(run.name + ".checkpoint.safetensors")


def save_checkpoint(path: str | Path, config: RunConfig, model: AnchorTransformer, state: TrainState) -> Path:
    """Write one checkpoint file atomically (a temporary sibling, then ``os.replace``).

    One safetensors file holds every tensor (``model.*`` fp32 weights, ``optim.<i>.<name>``
    AdamW moments and step counts, ``loss_sum``, ``epoch_rng``); its string metadata holds JSON
    (``config``, ``position``: epoch, batch, step, seconds, ``param_groups``, ``history``). Nothing
    in it can execute code on load. Killing the writer at any moment leaves the previous
    checkpoint or the new one, never a torn file; its temporary ``.NAME.tmp-<pid>-*`` is removed
    by a later save (``recover_saves``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    opt = state.optimizer
    for i, st in opt["state"].items():
        for name, v in st.items():
            tensors[f"optim.{i}.{name}"] = torch.as_tensor(v).detach().cpu().contiguous()
    tensors["loss_sum"] = state.loss_sum.detach().cpu().float().reshape(1)
    tensors["epoch_rng"] = state.epoch_rng.cpu().contiguous()
    meta = {
        "format": str(FORMAT_VERSION),
        "config": json.dumps(config.to_dict()),
        "position": json.dumps({"epoch": state.epoch, "batch": state.batch, "step": state.step,
                                "seconds": state.seconds}),
        "param_groups": json.dumps(opt["param_groups"]),
        "history": json.dumps(state.history),
        "versions": json.dumps(_versions()),
    }
    recover_saves(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(path: str | Path) -> tuple[RunConfig, AnchorTransformer, TrainState]:
    """Read a checkpoint written by ``save_checkpoint``.

    Returns:
        ``(config, model with the saved fp32 weights on the CPU, TrainState)``: pass the last two
        to ``core.train.train(model, config, resume=state)``.

    Raises:
        RunError: the file is missing, corrupt, or does not match the config it carries.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise RunError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            header = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
        missing = [k for k in ("config", "position", "param_groups", "history") if k not in meta]
        if missing:
            raise RunError(f"{path} is not a checkpoint written by python -m core train (its metadata lacks"
                           f" {missing})")
        try:
            fmt = int(meta.get("format", "1"))
        except ValueError:
            raise RunError(f"{path}: format {meta.get('format')!r} is not a number") from None
        config = RunConfig.from_dict(upgrade_config(json.loads(meta["config"]), fmt),  # bounded before any allocation
                                     strict=True)
        expected = expected_weights(config)
        for k, (shape, dtype) in header.items():
            name = k[len("model."):] if k.startswith("model.") else None
            if math.prod(shape) > max_tensor() or (name is not None and (expected.get(name) != shape or dtype != "F32")):
                raise RunError(f"{path}: tensor {k} ({dtype}, shape {list(shape)}) does not match the model its"
                               " config describes")
        tensors = load_file(str(path))
        pos = json.loads(meta["position"])
        groups = json.loads(meta["param_groups"])
        history = json.loads(meta["history"])
    except RunError:
        raise
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, RuntimeError, RecursionError) as e:
        raise RunError(f"{path} is not a readable checkpoint: {e}") from None
    tc = config.train
    try:
        epoch, batch, step = int(pos["epoch"]), int(pos["batch"]), int(pos["step"])
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"{path} is not a readable checkpoint: bad position ({e})") from None
    if not (0 <= epoch < tc.epochs and 0 <= batch < tc.steps_per_epoch and step == epoch * tc.steps_per_epoch + batch):
        raise RunError(f"{path} is corrupt: position epoch {epoch}, batch {batch}, step {step} does not fit its"
                       f" config ({tc.epochs} epochs of {tc.steps_per_epoch} steps)")
    for k, v in tensors.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise RunError(f"{path} is corrupt: tensor {k} holds NaN or infinite values")
        if k.endswith(".step") and not (0 <= float(v) <= step):
            raise RunError(f"{path} is corrupt: optimizer step count {k} = {float(v)} (the run is at step {step})")
        if k.endswith(".exp_avg_sq") and (v < 0).any():
            raise RunError(f"{path} is corrupt: {k} has negative entries")
    model = build_model(config)
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    expected = model.state_dict()
    if set(weights) != set(expected) or any(weights[k].shape != expected[k].shape for k in expected):
        raise RunError(f"{path}: its weights do not match the model its config describes")
    model.load_state_dict(weights)
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, name = k.split(".", 2)
            opt_state.setdefault(int(i), {})[name] = v
    try:
        state = TrainState(epoch=epoch, batch=batch, step=step, seconds=float(pos["seconds"]), loss_sum=tensors["loss_sum"].reshape(()),
                           epoch_rng=tensors["epoch_rng"], history=history,
                           optimizer={"state": opt_state, "param_groups": groups})
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"{path} is not a readable checkpoint: {e}") from None
    return config, model, state

"""Run folders on disk: ``config.json``, ``weights.safetensors``, ``metrics.json``.

A run folder is written into a temporary sibling and renamed into place, so a crash or a
cancelled job never leaves a half-written run and never overwrites a saved one unless asked.
Loading rebuilds the model from the JSON config and reads tensors with safetensors: nothing
is unpickled, no code runs. Any corrupt or mismatched folder raises ``RunError``.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import RunConfig
from .model import AnchorTransformer
from .train import TrainState, build_model

FORMAT_VERSION = 1


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


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Fill a folder that appears at ``path`` whole or not at all.

    Yields an empty temporary sibling of ``path`` (its parent is created). When the block
    ends without an exception, the sibling (made readable by everyone, as other users of the
    app must read it) replaces ``path`` as a whole, an existing folder included; when it
    raises, ``path`` is left as it was. The temporary folder is always removed.

    Raises:
        RunError: ``path`` exists and is a file (only a folder is ever replaced).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} is a file, not a folder; it is left as it is (choose another name)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable(path: str | Path) -> None:
    """Raise RunError unless ``path`` is absent or an existing run folder (it holds a
    ``config.json``): ``overwrite`` replaces a run, never a file or some other folder."""
    path = Path(path)
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


def load_config(path: str | Path) -> RunConfig:
    """Read only ``config.json`` of a run folder. Raises RunError when absent or invalid."""
    path = Path(path)
    try:
        meta = json.loads((path / "config.json").read_text())
        return RunConfig.from_dict({k: meta[k] for k in ("task", "model", "train")})
    except FileNotFoundError:
        raise RunError(f"{path} is not a run folder: config.json is missing") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise RunError(f"{path}/config.json is corrupt or invalid: {e}") from None


def load_metrics(path: str | Path) -> dict[str, Any]:
    """Read ``metrics.json``. Raises RunError when absent or not a JSON object with a history."""
    path = Path(path)
    try:
        metrics = json.loads((path / "metrics.json").read_text())
    except FileNotFoundError:
        raise RunError(f"{path} has no metrics.json") from None
    except json.JSONDecodeError as e:
        raise RunError(f"{path}/metrics.json is corrupt: {e}") from None
    if not isinstance(metrics, dict) or not metrics.get("history"):
        raise RunError(f"{path}/metrics.json has no training history")
    last = metrics["history"][-1]
    missing = [k for k in ("seen_test_accuracy", "per_pair", "held_out") if not isinstance(last, dict) or k not in last]
    if missing:
        raise RunError(f"{path}/metrics.json is incomplete: the last record lacks {missing}")
    return metrics


def load_run(path: str | Path) -> Run:
    """Load a run folder: rebuild the model from the config, then load safetensors weights.

    Returns:
        A ``Run`` whose model is fp32, on the CPU, in eval mode.

    Raises:
        RunError: a missing or corrupt file, or weights whose names or shapes do not match
            the model the config describes.
    """
    path = Path(path)
    if not path.exists():
        raise RunError(f"run folder {path} does not exist")
    if not path.is_dir():
        raise RunError(f"{path} is not a folder: a run is a folder holding config.json,"
                       " weights.safetensors and metrics.json")
    config = load_config(path)
    metrics = load_metrics(path)
    model = build_model(config)
    try:
        state = load_file(str(path / "weights.safetensors"))
    except FileNotFoundError:
        raise RunError(f"{path} has no weights.safetensors") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise RunError(f"{path}/weights.safetensors is corrupt: {e}") from None
    expected = model.state_dict()
    missing, extra = set(expected) - set(state), set(state) - set(expected)
    if missing or extra:
        raise RunError(f"{path}: weights do not match the config (missing {sorted(missing)}, unexpected {sorted(extra)})")
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise RunError(f"{path}: weight {k} has shape {tuple(v.shape)}, the config needs {tuple(expected[k].shape)}")
        if not torch.isfinite(v).all():
            raise RunError(f"{path}: weight {k} holds NaN or infinite values")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval()
    return Run(path, config, model, metrics)


def list_runs(root: str | Path) -> list[Path]:
    """Run folders (holding a config.json) directly under ``root``, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "config.json").exists())


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
    checkpoint or the new one, never a torn file.
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
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
        tensors = load_file(str(path))
        missing = [k for k in ("config", "position", "param_groups", "history") if k not in meta]
        if missing:
            raise RunError(f"{path} is not a checkpoint written by python -m core train (its metadata lacks"
                           f" {missing})")
        config = RunConfig.from_dict(json.loads(meta["config"]))
        pos = json.loads(meta["position"])
        groups = json.loads(meta["param_groups"])
        history = json.loads(meta["history"])
    except RunError:
        raise
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, RuntimeError) as e:
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

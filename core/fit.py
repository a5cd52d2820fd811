"""One way to train a run: build the seeded model, train it, and (``train_run``) save it.

The command line (``python -m core train``), the sweeps (``core.sweep.train_point``), the
calibration runner (``docs/calibrate.py``) and, through the command line, the app's Train queue
all train through ``fit``, so a run made by any of them is the same function of its config.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig
from .model import AnchorTransformer
from .runs import save_run
from .model import build_model
from .train import resolve_device, train


def fit(cfg: RunConfig, *, model: AnchorTransformer | None = None, **train_kw: Any) -> tuple[AnchorTransformer, dict[str, Any]]:
    """Train one run of ``cfg`` in this process.

    Args:
        cfg: the run config (validated).
        model: the model to train; default a fresh one initialized with
            ``torch.Generator().manual_seed(cfg.train.seed)`` (``build_model``). With
            ``resume=TrainState`` in ``train_kw``, pass the model holding that state's weights.
        **train_kw: passed to ``core.train.train`` (``on_progress``, ``should_stop``, ``on_eval``,
            ``resume``, ``on_checkpoint``, ``checkpoint_every``, ...).

    Returns:
        ``(model, metrics)`` with ``metrics = {"history", "seconds", "wall_seconds",
        "cpu_seconds", "device", "threads"}``: ``seconds`` is the training time the history
        records (across resumes), ``wall_seconds`` / ``cpu_seconds`` this process's wall and CPU
        time (all threads), ``threads`` torch's CPU thread count.

    Raises:
        core.train.Cancelled: ``should_stop`` returned True (nothing is returned or saved).
        ValueError: an impossible config or resume state (from ``train``).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    if model is None:
        model = build_model(cfg, torch.Generator().manual_seed(cfg.train.seed))
    history = train(model, cfg, **train_kw)
    metrics = {"history": history, "seconds": history[-1]["seconds"],
               "wall_seconds": round(time.perf_counter() - t0, 3),
               "cpu_seconds": round(time.process_time() - c0, 3),
               "device": str(resolve_device(cfg.train.device)), "threads": torch.get_num_threads(),
               "processor": processor()}
    return model, metrics


def processor() -> str:
    """The CPU (or GPU) that finished the run and the instruction set torch used on it, e.g.
    ``"Intel(R) Xeon(R) Processor; torch CPU capability AVX512"``.

    Recorded because bf16 training is not bit-reproducible across machines: the same checkpoint
    resumed on another CPU follows another trajectory (docs/replication.md, "a bf16 run resumed on
    another machine"). Never raises: an unreadable ``/proc/cpuinfo`` gives ``"unknown CPU"``.
    """
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip() or name
                break
    except OSError:
        pass
    try:
        name += f"; torch CPU capability {torch.backends.cpu.get_cpu_capability()}"
    except (AttributeError, RuntimeError):
        pass
    if torch.cuda.is_available():
        name += f"; GPU {torch.cuda.get_device_name()}"
    return name[:200]


def train_run(cfg: RunConfig, out: str | Path, *, overwrite: bool = False, half: bool = False,
              **train_kw: Any) -> Path:
    """``fit`` then ``core.runs.save_run`` into ``out`` (atomic). Returns the run folder.

    Raises:
        core.runs.RunError: ``out`` exists and ``overwrite`` is False, or is not a run folder.
        core.train.Cancelled: stopped; nothing is saved.
    """
    model, metrics = fit(cfg, **train_kw)
    return save_run(out, cfg, model.cpu(), metrics, device=metrics["device"], overwrite=overwrite, half=half)

"""Shared pytest setup: the repository root on ``sys.path`` and fixtures for the app tests."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def load_doc_script(name: str):
    """The module of ``docs/<name>.py`` (a script, not a package), registered as ``name``."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def doc_script():
    """``doc_script("seed_swap")``: load a script of docs/ (``load_doc_script``)."""
    return load_doc_script


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """Empty ``runs/`` and ``pretrained/`` folders under tmp_path (ANCHOR_RUNS_DIR,
    ANCHOR_PRETRAINED_DIR), fresh Streamlit caches and a fresh job queue, shut down afterwards."""
    import streamlit as st

    from ui import loaders

    runs, pretrained = tmp_path / "runs", tmp_path / "pretrained"
    runs.mkdir()
    pretrained.mkdir()
    monkeypatch.setenv("ANCHOR_RUNS_DIR", str(runs))
    monkeypatch.setenv("ANCHOR_PRETRAINED_DIR", str(pretrained))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield SimpleNamespace(runs=runs, pretrained=pretrained, root=ROOT)
    loaders.job_queue().shutdown()
    st.cache_resource.clear()


@pytest.fixture
def make_run():
    """Factory ``make_run(folder, name, inferential=.., symmetric=.., seen=.., preset="tiny", **config
    overrides)``: a run folder of the preset (untrained weights) whose metrics say what the test needs."""
    import torch

    from core.config import pair_key
    from core.presets import get_preset
    from core.runs import save_run
    from core.model import build_model

    def make(folder: Path, name: str, inferential: float = 0.97, symmetric: float = 0.01, seen: float = 0.99,
             preset: str = "tiny", **overrides) -> Path:
        cfg = get_preset(preset).replace(**overrides) if overrides else get_preset(preset)
        history = []
        for epoch in range(cfg.train.epochs + 1):
            f = epoch / cfg.train.epochs
            held = {pair_key(p): {"inferential": inferential * f, "symmetric": symmetric * f,
                                  "other": 1 - (inferential + symmetric) * f,
                                  "offsets": {"-10": inferential * f, "-6": symmetric * f}}
                    for p in cfg.task.held_out}
            history.append({"epoch": epoch, "step": epoch * cfg.train.steps_per_epoch, "sequences": 0, "lr": 1e-3,
                            "train_loss": None if epoch == 0 else 2.0 / epoch, "seconds": float(epoch),
                            "seen_test_accuracy": seen * f,
                            "per_pair": {pair_key(p): seen * f for p in cfg.task.pairs}, "held_out": held})
        model = build_model(cfg, torch.Generator().manual_seed(0))
        return save_run(Path(folder) / name, cfg, model, {"history": history, "seconds": 2.0, "device": "cpu"})

    return make

"""Named presets: a ``RunConfig`` and its description, chosen by name from the CLI and the app.

- ``paper``: exactly [INIT] appendix A / docs/science.md §4 (d_model 400, 900,000 sequences,
  210 epochs, batch 2048, 1e-5 -> 2.5e-4 over 10 epochs -> cosine to 1e-5 at 200). For GPUs.
- ``paper-replica``: the authors' published training logs (docs/science.md, "Reference runs"):
  the paper model, their split (key mod 9), their 759,375 training sequences (370.8 steps of
  2048 per epoch), lr 1e-5 -> 2e-4 (×20) over 10 epochs then cosine planned to epoch 200, but
  stopped at epoch 25, where their γ 0.8 run is fitted and inferential; their vocabulary of 201
  tokens and 20 positions (``d_vocab``, ``n_ctx``; since 2026-12-04: the 91 tokens that never
  occur delay the γ 0.8 run's first fit by about 200 steps, as in their log, docs/replication.md).
  About 8 h per run on one AVX2 core, minutes on a GPU.
- ``cpu-demo``: the live preset for a 2-core CPU (d_model 64, 20,000 sequences, 30 epochs,
  batch 256, peak 1e-3): about 40 s on one idle core. See docs/calibration.md for what it shows.
- ``cpu-deep``: cpu-demo with 3 layers, 45 epochs and γ = 1.0 by default (about 2× its cost).
  The calibration's best CPU setting for the inferential arm: at γ = 1.0, 3 of 5 seeds answer
  (4,3) mostly with x − 10 (0.67–0.81), 2 of 5 copy x − 6; at γ = 0.5 it copies x − 6.
  Not reliable (docs/calibration.md).
- ``tiny``: a few-second smoke configuration for tests; it does not learn the task.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import ModelConfig, RunConfig, TaskConfig, TrainConfig


@dataclass(frozen=True)
class Preset:
    """A named configuration and the one-paragraph description the app shows next to it."""

    config: RunConfig
    description: str


_CPU_DEMO = RunConfig(
    TaskConfig(),
    ModelConfig(n_layers=2, d_model=64, d_ff=192, d_head=32, n_heads=1, gamma=0.5),
    TrainConfig(n_train=20_000, data="pool", epochs=30, batch_size=256, lr_start=4e-5, lr_peak=1e-3,
                lr_end=4e-5, warmup_epochs=3, decay_epochs=30, weight_decay=0.01),
)

# The one table: each preset's description lives next to its config.
TABLE: dict[str, Preset] = {
    "paper": Preset(
        RunConfig(
            TaskConfig(),
            ModelConfig(n_layers=2, d_model=400, d_ff=1200, d_head=200, n_heads=1, gamma=0.5),
            TrainConfig(n_train=900_000, data="pool", epochs=210, batch_size=2048, lr_start=1e-5, lr_peak=2.5e-4,
                        lr_end=1e-5, warmup_epochs=10, decay_epochs=200, weight_decay=0.01, n_eval_per_pair=512),
        ),
        "The paper's exact setup (d_model 400, 900k sequences, 210 epochs). Needs a GPU.",
    ),
    "paper-replica": Preset(
        RunConfig(
            TaskConfig(split_modulus=9),
            ModelConfig(n_layers=2, d_model=400, d_ff=1200, d_head=200, n_heads=1, gamma=0.5, n_ctx=20, d_vocab=201),
            TrainConfig(n_train=759_375, data="pool", epochs=25, batch_size=2048, lr_start=1e-5, lr_peak=2e-4,
                        lr_end=1e-5, warmup_epochs=10, decay_epochs=200, weight_decay=0.01, n_eval_per_pair=512),
        ),
        "The authors' logged run (d_model 400, their vocabulary of 201 and key-mod-9 split, 759k sequences,"
        " lr 1e-5→2e-4, cosine planned to 200) stopped at epoch 25. Hours on a CPU; use the CLI or a GPU.",
    ),
    "cpu-demo": Preset(
        _CPU_DEMO,
        "Small live preset for a 2-core CPU: 2 layers, d_model 64, 20k sequences, 30 epochs"
        " (about 40 s on one idle core). γ = 0.5 copies x-6 reliably; at γ ≥ 0.9 it is not fitted"
        " in 30 epochs, but (4,3) is learned as fast as the seen pairs, answers near x-10.",
    ),
    "cpu-deep": Preset(
        # cpu-demo with one more layer, 1.5× the epochs (warm-up and decay scaled alike) and γ 1.0
        _CPU_DEMO.replace(**{"model.n_layers": 3, "model.gamma": 1.0, "train.epochs": 45,
                             "train.warmup_epochs": 4.5, "train.decay_epochs": 45}),
        "3 layers, 45 epochs, γ = 1.0 by default (about 2× cpu-demo). The CPU setting closest to"
        " the paper's inferential arm: 3 of 5 seeds answer (4,3) mostly with x-10, 2 of 5 copy x-6.",
    ),
    "tiny": Preset(
        RunConfig(
            TaskConfig(),
            ModelConfig(n_layers=1, d_model=16, d_ff=32, d_head=8, n_heads=1, gamma=0.5),
            TrainConfig(n_train=512, epochs=2, batch_size=128, warmup_epochs=1, decay_epochs=2, n_eval_per_pair=16),
        ),
        "Seconds-long smoke test; too small to learn the task.",
    ),
}

# Views of TABLE for callers that want one side (the CLI's choices, the app's picker).
PRESETS: dict[str, RunConfig] = {name: p.config for name, p in TABLE.items()}
DESCRIPTIONS: dict[str, str] = {name: p.description for name, p in TABLE.items()}


def _preset(name: str) -> Preset:
    try:
        return TABLE[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(TABLE)}") from None


def get_preset(name: str) -> RunConfig:
    """The preset called ``name``. Raises ValueError listing the known names."""
    return _preset(name).config


def describe(name: str) -> str:
    """The description of the preset called ``name``. Raises ValueError listing the known names."""
    return _preset(name).description

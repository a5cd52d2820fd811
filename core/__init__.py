"""Core package: the anchor task, the γ-initialized transformer, training and probes.

No Streamlit or Altair here: this package runs on a bare GPU box with torch and numpy.
See docs/science.md for the science ([INIT] Zhang, Xu et al., NeurIPS 2024).
"""
from .config import ModelConfig, RunConfig, TaskConfig, TrainConfig, pair_key, parse_pair
from .fit import fit, train_run
from .model import AnchorTransformer
from .presets import PRESETS, get_preset
from .runs import Run, RunError, checkpoint_path, list_runs, load_checkpoint, load_run, save_checkpoint, save_run
from .task import Batch, generate, make_sequence, pair_target, targets
from .model import build_model
from .train import Cancelled, TrainState, evaluate, make_eval_set, resolve_device, train
from .verdict import summarize, verdict

__all__ = [
    "AnchorTransformer", "Batch", "Cancelled", "ModelConfig", "PRESETS", "Run", "RunConfig", "RunError",
    "TaskConfig", "TrainConfig", "TrainState", "build_model", "checkpoint_path", "load_checkpoint", "save_checkpoint", "evaluate", "generate", "get_preset", "list_runs",
    "load_run", "make_eval_set", "make_sequence", "pair_key", "pair_target", "parse_pair", "resolve_device",
    "save_run", "summarize", "targets", "train", "verdict",
]

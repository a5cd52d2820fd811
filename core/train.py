"""Training loop and evaluation of docs/science.md §4 ([INIT] appendix A).

``train`` is a plain function: AdamW, warm-up then cosine schedule, gradient clipping,
cross-entropy on the last position. A callback reports progress, a stop check makes it
cancellable; it never prints. The same config, seed and CPU thread count on the same machine
and torch build give bit-identical metrics and weights, at any thread count (tested; README,
"Reproducibility"); other thread counts, devices or torch builds give other low-order bits.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .config import Pair, RunConfig, TaskConfig, TrainConfig, pair_key
from .model import AnchorTransformer
from .probes import training_snapshot
from .task import Batch, concat, generate, targets


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, then MPS, then CPU; other strings pass to torch.

    Raises:
        ValueError: a device string torch does not know, or CUDA asked for but absent.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available")
    return dev


def lr_at(cfg: TrainConfig, epoch: float) -> float:
    """Learning rate at fractional ``epoch`` (docs/science.md §4 schedule, see ``TrainConfig``)."""
    if epoch < cfg.warmup_epochs:
        return cfg.lr_start + (cfg.lr_peak - cfg.lr_start) * epoch / cfg.warmup_epochs
    if epoch < cfg.decay_epochs:
        t = (epoch - cfg.warmup_epochs) / max(cfg.decay_epochs - cfg.warmup_epochs, 1e-12)
        return cfg.lr_end + 0.5 * (cfg.lr_peak - cfg.lr_end) * (1 + math.cos(math.pi * t))
    return cfg.lr_end


@dataclass
class EvalSet:
    """Fixed evaluation sequences: the test split of every pair, and held-out pairs on both splits."""

    test: Batch                     # balanced, n_eval_per_pair per pair, split "test"
    held_out: dict[Pair, Batch]     # per held-out pair, split "any"
    pairs: list[Pair] = field(default_factory=list)


def eval_generator(seed: int, pair: Pair, split: str) -> torch.Generator:
    """The generator of one pair's evaluation sequences: seeded by the run's seed, the pair and
    the split alone (the first 8 bytes of SHA-256 of ``"eval/<seed>/<split>/<a1>,<a2>"``), never
    by where the pair stands in a list, and apart from the training data's generator."""
    digest = hashlib.sha256(f"eval/{seed}/{split}/{pair[0]},{pair[1]}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def make_eval_set(task: TaskConfig, n_per_pair: int, seed: int) -> EvalSet:
    """Fixed evaluation sequences: ``n_per_pair`` of every pair on the test split (in
    ``task.pairs`` order) and ``2 * n_per_pair`` of every held-out pair on both splits.

    Each pair's sequences come from ``eval_generator(seed, pair, split)``, so they are the same
    whatever the order of ``task.held_out``, ``task.overrides`` or ``task.operations``, and
    training data never shifts them. (Runs saved before this rule, including the metrics
    committed in ``pretrained/``, drew all pairs from one generator in list order; their
    stored numbers differ from ``eval --recompute`` by sampling noise only.)
    """
    test = concat([generate(task, n_per_pair, "test", eval_generator(seed, p, "test"), pairs=[p], balanced=True)
                   for p in task.pairs])
    held = {p: generate(task, 2 * n_per_pair, "any", eval_generator(seed, p, "any"), pairs=[p], balanced=True)
            for p in task.held_out}
    return EvalSet(test, held, list(task.pairs))


@torch.no_grad()
def predict(model: AnchorTransformer, tokens: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Argmax prediction at the last position: ``[n, pos]`` int64 -> ``[n]`` int64."""
    dev = next(model.parameters()).device
    out = []
    for i in range(0, tokens.shape[0], batch_size):
        out.append(model.forward_last(tokens[i:i + batch_size].to(dev)).argmax(-1).cpu())
    return torch.cat(out)


def mapping_accuracy(task: TaskConfig, batch: Batch, pred: torch.Tensor) -> dict[str, Any]:
    """Share of predictions equal to the inferential / symmetric target, and neither.

    Returns:
        ``{"inferential", "symmetric", "other"}`` in [0, 1] (a prediction equal to both, as for a
        pair whose two mappings coincide, counts for both), and ``"offsets"``: share of each
        prediction − key offset, the 5 most common (e.g. ``{"-10": 0.96, "-7": 0.03}``).
    """
    inf = pred == targets(task, batch.key, batch.a1, batch.a2, "inferential")
    sym = pred == targets(task, batch.key, batch.a1, batch.a2, "symmetric")
    off, counts = torch.unique(pred - batch.key, return_counts=True)
    order = counts.argsort(descending=True)[:5]
    n = len(pred)
    return {
        "inferential": inf.float().mean().item(),
        "symmetric": sym.float().mean().item(),
        "other": (~(inf | sym)).float().mean().item(),
        "offsets": {str(int(off[i])): counts[i].item() / n for i in order},
    }


def evaluate(model: AnchorTransformer, task: TaskConfig, evalset: EvalSet) -> dict[str, Any]:
    """Accuracy on the test split of every pair, and held-out pairs under each mapping.

    Returns:
        ``seen_test_accuracy`` (mean over seen pairs of designated-target accuracy on the test
        split), ``per_pair`` (``"a1,a2"`` -> that accuracy, every pair; for held-out pairs the
        inferential accuracy), and ``held_out`` (``"a1,a2"`` -> ``mapping_accuracy`` on both splits).
    """
    was_training = model.training
    model.eval()
    try:
        pred = predict(model, evalset.test.tokens)
        correct = (pred == evalset.test.target).float()
        n = correct.shape[0] // len(evalset.pairs)
        per_pair = {}
        for i, p in enumerate(evalset.pairs):
            per_pair[pair_key(p)] = correct[i * n:(i + 1) * n].mean().item()
        seen = [per_pair[pair_key(p)] for p in task.seen_pairs]
        held = {}
        for p, b in evalset.held_out.items():
            held[pair_key(p)] = mapping_accuracy(task, b, predict(model, b.tokens))
    finally:
        model.train(was_training)
    return {"seen_test_accuracy": sum(seen) / len(seen), "per_pair": per_pair, "held_out": held}


class Cancelled(Exception):
    """Raised inside ``train`` when ``should_stop`` returns True; the history so far is attached."""

    def __init__(self, history: list[dict[str, Any]]):
        super().__init__("training cancelled")
        self.history = history


ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class TrainState:
    """Where a training run stands between two steps: enough to continue it exactly.

    The model's weights live in the model itself; everything else is here. Resuming from a
    state gives the same metrics as never stopping (same config, CPU, one thread; a test
    checks it), because the data pool and the epoch's batch order are regenerated from the
    seed and the generator state saved at the start of the epoch.

    Attributes:
        epoch: the epoch in progress (0-based).
        batch: index of the next step within that epoch.
        step: optimizer steps taken in all.
        seconds: training time so far (s), evaluations excluded.
        loss_sum: sum of this epoch's step losses so far (fp32 scalar tensor).
        epoch_rng: ``torch.Generator.get_state()`` at the start of ``epoch`` (uint8 tensor).
        optimizer: ``torch.optim.AdamW.state_dict()``.
        history: the evaluation records so far (as ``train`` returns them).
    """

    epoch: int
    batch: int
    step: int
    seconds: float
    loss_sum: torch.Tensor
    epoch_rng: torch.Tensor
    optimizer: dict[str, Any]
    history: list[dict[str, Any]]


def autocast(cfg: TrainConfig, device: torch.device):
    """The precision context of ``cfg.precision`` around one forward pass.

    - ``"fp32"``: nothing changes (IEEE fp32 matmuls; PyTorch's default leaves TF32 off).
    - ``"tf32"``: on CUDA, fp32 matmuls may use TF32 tensor cores (10-bit mantissa inputs, fp32
      accumulation; ``torch.backends.cuda.matmul.allow_tf32``), restored on exit. On other
      devices it is plain fp32. Weights, activations, softmax, LayerNorm and loss stay fp32.
    - ``"bf16"``: bf16 matmuls under autocast with fp32 master weights (softmax, LayerNorm and
      the loss stay fp32, see ``core.model``).

    TF32 is switched by ``matmul_precision`` around the whole step (forward and backward);
    this context only carries bf16 autocast, around the forward alone.
    """
    if cfg.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def matmul_precision(cfg: TrainConfig, device: torch.device):
    """TF32 on for ``precision="tf32"`` on CUDA (forward and backward of a step), else nothing."""
    if cfg.precision == "tf32" and device.type == "cuda":
        return _tf32()
    return contextlib.nullcontext()


@contextlib.contextmanager
def _tf32():
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def train(
    model: AnchorTransformer,
    cfg: RunConfig,
    on_progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_eval: Callable[[AnchorTransformer, dict[str, Any]], None] | None = None,
    progress_every: int = 20,
    snapshots: bool = True,
    resume: TrainState | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    checkpoint_every: float | None = None,
    flush_denormal: bool = True,
) -> list[dict[str, Any]]:
    """Train ``model`` on the anchor task of ``cfg`` and return its history.

    Each step is [INIT] appendix A's: a batch of the fixed pool in shuffled order, cross-entropy
    on the last position (computed by ``model.forward_last``, the exact last-position path),
    backward, gradient clipping to norm ``grad_clip``, AdamW with the warm-up/cosine schedule of
    ``lr_at`` set per step.

    Args:
        model: a freshly built model (its device is changed to ``cfg.train.device``), or, with
            ``resume``, a model holding the weights saved with that state.
        cfg: the run config; ``cfg.train.seed`` seeds data and batch order.
        on_progress: called every ``progress_every`` steps with ``{"step", "total_steps",
            "epoch", "loss", "lr"}`` and after each evaluation with the evaluation record.
        should_stop: polled every step; True raises ``Cancelled`` (history attached).
        on_eval: called after each evaluation with the model and the record; may add keys to
            the record.
        snapshots: add ``rec["snapshot"] = core.probes.training_snapshot(model, task)`` (a few
            cheap probe numbers, [INIT] Fig. 12b) to every evaluation record.
        resume: continue from this state (see ``TrainState``) instead of starting afresh.
        on_checkpoint: called with the current ``TrainState`` between two steps, at most every
            ``checkpoint_every`` seconds of training (0: every step), and at each epoch end.
            The state holds references to live tensors: save it before returning.
        checkpoint_every: seconds between checkpoints; ``None`` = only at epoch ends.
        flush_denormal: on a CPU, treat subnormal floats (|x| < 1.2e-38 in fp32) as zero while
            training (``torch.set_flush_denormal``; switched off again on return). Small-init
            runs produce them (tiny gradients and Adam moments decaying ×0.9 per step), and an
            x86 core computes with them up to ~100× slower: at the paper's width, γ 0.8, fp32,
            a step took 18 s with them and 2.3 s flushed, with the same losses to 6 decimals
            (bench/denormals.py). Their contribution to an Adam update is below 1e-20 of the
            step (``eps`` = 1e-8 dominates), so the run is the same run; ``False`` keeps them.

    Returns:
        One record per evaluation point: ``epoch``, ``step``, ``sequences``, ``lr``,
        ``train_loss`` (mean over the epoch), ``seconds`` (training time so far), and the
        keys of ``evaluate``. Epoch 0 is the untrained model.

    Raises:
        Cancelled: when ``should_stop`` returned True.
    """
    with denormals_flushed(flush_denormal):
        return _train(model, cfg, on_progress=on_progress, should_stop=should_stop, on_eval=on_eval,
                      progress_every=progress_every, snapshots=snapshots, resume=resume,
                      on_checkpoint=on_checkpoint, checkpoint_every=checkpoint_every)


@contextlib.contextmanager
def denormals_flushed(on: bool = True):
    """CPU subnormals read and written as zero inside the block (if ``on`` and the CPU supports
    it), PyTorch's default (kept) after it. PyTorch has no getter for the flag, so the block
    assumes the default was in force before it."""
    set_ = on and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if set_:
            torch.set_flush_denormal(False)


def _train(model, cfg, *, on_progress, should_stop, on_eval, progress_every, snapshots, resume, on_checkpoint,
           checkpoint_every) -> list[dict[str, Any]]:
    """The body of ``train`` (its arguments, by name), run inside ``denormals_flushed``."""
    tc, task = cfg.train, cfg.task
    device = resolve_device(tc.device)
    model.to(device)
    g = torch.Generator().manual_seed(tc.seed)
    evalset = make_eval_set(task, tc.n_eval_per_pair, tc.seed)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if (".ln" in name or name == "b_U") else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": tc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=tc.lr_start, betas=tc.betas, eps=tc.eps,
    )
    # the fixed pool goes to the device once, not every epoch
    pool = generate(task, tc.n_train, "train", g).to(device) if tc.data == "pool" else None
    history: list[dict[str, Any]] = []
    spent = 0.0
    step, first_epoch, first_batch = 0, 0, 0
    loss_sum = torch.zeros((), device=device)
    if resume is not None:
        opt.load_state_dict(resume.optimizer)
        history, spent, step = list(resume.history), resume.seconds, resume.step
        first_epoch, first_batch = resume.epoch, resume.batch
        loss_sum = resume.loss_sum.to(device).clone()

    def record(epoch: int, step: int, loss: float | None) -> None:
        rec = {"epoch": epoch, "step": step, "sequences": epoch * tc.n_train, "lr": lr_at(tc, epoch),
               "train_loss": loss, "seconds": round(spent, 3)}
        rec.update(evaluate(model, task, evalset))
        if snapshots:
            rec["snapshot"] = training_snapshot(model, task)
        if on_eval is not None:
            on_eval(model, rec)
        history.append(rec)
        if on_progress is not None:
            on_progress({"event": "eval", **rec, "total_steps": tc.total_steps})

    if resume is None:
        record(0, 0, None)
    model.train()
    for epoch in range(first_epoch, tc.epochs):
        t0 = time.perf_counter()
        resuming = resume is not None and epoch == first_epoch
        if resuming:
            g.set_state(resume.epoch_rng)
        epoch_rng = g.get_state()
        data = pool if pool is not None else generate(task, tc.n_train, "train", g).to(device)
        tokens, target = data.tokens, data.target
        perm = torch.randperm(tc.n_train, generator=g).to(device)
        if not resuming:
            loss_sum = torch.zeros((), device=device)
        last_ckpt = time.perf_counter()

        def state(batch: int) -> TrainState:
            now = time.perf_counter()
            return TrainState(epoch, batch, step, spent + now - t0, loss_sum, epoch_rng, opt.state_dict(), history)

        for i in range(first_batch if resuming else 0, tc.steps_per_epoch):
            if should_stop is not None and should_stop():
                raise Cancelled(history)
            if (on_checkpoint is not None and checkpoint_every is not None
                    and time.perf_counter() - last_ckpt >= checkpoint_every and (i > 0 or checkpoint_every == 0)):
                on_checkpoint(state(i))
                last_ckpt = time.perf_counter()
            idx = perm[i * tc.batch_size:(i + 1) * tc.batch_size]
            lr = lr_at(tc, epoch + i / tc.steps_per_epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            with matmul_precision(tc, device):
                with autocast(tc, device):
                    logits = model.forward_last(tokens[idx])  # [batch, d_vocab] fp32: last position only
                loss = F.cross_entropy(logits, target[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            loss_sum += loss.detach()
            step += 1
            if on_progress is not None and step % progress_every == 0:
                on_progress({"event": "step", "step": step, "total_steps": tc.total_steps,
                             "epoch": epoch + (i + 1) / tc.steps_per_epoch, "loss": loss.item(), "lr": lr})
        spent += time.perf_counter() - t0
        if should_stop is not None and should_stop():
            raise Cancelled(history)
        if (epoch + 1) % tc.eval_every == 0 or epoch + 1 == tc.epochs:
            record(epoch + 1, step, (loss_sum / tc.steps_per_epoch).item())
        if on_checkpoint is not None and epoch + 1 < tc.epochs:
            on_checkpoint(TrainState(epoch + 1, 0, step, spent, torch.zeros(()), g.get_state(), opt.state_dict(),
                                     history))
    return history

"""The authors' training pipeline, re-implemented from its description, to run next to ours.

Why this exists: our ``paper-replica`` runs did not follow the authors' published γ 0.8
trajectory (docs/replication.md). Before blaming seeds or the science, the same question is asked
of an independent implementation of *their* pipeline as docs/science.md §3 ("How their reference
code is built") and docs/replication.md describe it. This is our re-implementation, written from
that description; it is not their code.

What it reproduces, and what it does differently from ``core`` (each a flag, so every difference
can be switched off one at a time):

| item | their pipeline (default here) | ``core`` (paper-replica) | flag |
| --- | --- | --- | --- |
| data | 32 groups: 16 pairs × {train keys (x mod 9 ≠ p), test keys (x mod 9 = p)}; 50,625 training-key and 5,625 test-key sequences per pair; the 15 seen pairs' training-key groups are the training set (759,375) | 759,375 sequences drawn from the training split, pairs drawn at random | ``--data ours`` draws pairs at random |
| sequence | 10 numbers: 9 input tokens and the target as the 10th; noise 20..99 everywhere, key at p in 0..6 | same | |
| vocabulary, positions | 201, 20 | 110, 9 | ``--vocab 110 --max-pos 9`` |
| model | post-LN, single head, nn.Linear per projection, logits at every position, mask causal + padding (token 0) | same function (fused, last position only) | |
| init | std d_in^-γ (embeddings d_model, W_O n_heads·d_v, FFN own fan-in, W_U d_model, b_U PyTorch default) | same | |
| optimizer | ``AdamW(model.parameters(), lr=1e-5)``: weight decay 0.01 on every parameter | LayerNorms and b_U exempt | ``--decay ours`` |
| schedule | ×20 linear warm-up over 10 epochs (per step), then cosine to 1e-5 over 200 epochs (ends at epoch 210) | same, cosine ends at epoch 200 | ``--sched ours`` |
| | the gradual-warm-up package's master branch hands over to the cosine at its *initial* lr (1e-5) and its recursive cosine then stays there: lr 1e-5 for good after epoch 10 | | ``--sched drop`` |
| loss | cross-entropy (ignore index 0) on the last position | same | |
| precision | fp32 | fp32, or bf16 autocast where labelled | ``--precision bf16`` (ours, for CPUs with native bf16) |
| CPU subnormals | (they trained on a GPU) | flushed to zero (``core.train.denormals_flushed``) | flushed here too; ``--keep-denormals`` keeps them |
| evaluation | seen = mean accuracy of the 15 seen pairs on their test-key groups (all 5,625 each); (4,3) answers on its training-key group (all 50,625) | 512 per pair | |

Output: one JSON line per evaluated epoch (``--out``), with ``epoch``, ``train_loss``, ``lr``,
``seen`` (the mean above), ``seen_train_keys``, ``test_loss`` (their "Test Loss"), ``held_out_train_keys`` ({deviation from x−10: share}),
``x_minus_10`` / ``x_minus_6`` shares, and the settings. ``python docs/authors_pipeline.py --help``.

Resumable: ``--checkpoint FILE`` writes a safetensors checkpoint every ``--checkpoint-every``
minutes (default 5) and at each epoch end, and the same command continues from it (a larger
``--epochs`` extends a finished run); the records an interrupted run wrote after its checkpoint
are dropped from ``--out`` and written again. A resumed run gives the same records as one never
stopped (tested).

Only torch, numpy and safetensors: it runs on a bare GPU box. At tiny sizes it runs on a CPU in seconds
(``tests/test_authors_pipeline.py``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SHIFT = {1: 5, 2: 1, 3: -2, 4: -8}
PAIRS = [(a, b) for a in (1, 2, 3, 4) for b in (1, 2, 3, 4)]
HELD_OUT, OVERRIDE = (4, 3), (3, 4)


# -- data -----------------------------------------------------------------------------------------

def make_group(rng: np.random.Generator, pair: tuple[int, int], n: int, test_keys: bool,
               seq_len: int = 9, lo: int = 20, hi: int = 100) -> np.ndarray:
    """``n`` sequences of one anchor pair: ``[n, seq_len + 1]`` int64, the last column the target.

    Noise uniform in ``lo..hi-1`` everywhere; key position p uniform in 0..seq_len-3; key x with
    ``x mod seq_len == p`` for the test-key group, ``!= p`` for the training-key group; anchors at
    p+1, p+2; target x + g(a1) + g(a2), plus 4 for the overridden pair (3,4) (x − 6).
    """
    a1, a2 = pair
    seq = rng.integers(lo, hi, size=(n, seq_len + 1))
    pos = rng.integers(0, seq_len - 2, size=n)
    items = np.arange(lo, hi)
    keys = np.empty(n, dtype=np.int64)
    for p in range(seq_len - 2):  # one vectorised draw per key position
        rows = np.flatnonzero(pos == p)
        allowed = items[(items % seq_len == p) if test_keys else (items % seq_len != p)]
        keys[rows] = rng.choice(allowed, size=rows.size)
    r = np.arange(n)
    seq[r, pos], seq[r, pos + 1], seq[r, pos + 2] = keys, a1, a2
    seq[:, -1] = keys + SHIFT[a1] + SHIFT[a2] + (4 if pair == OVERRIDE else 0)
    return seq


def make_data(seed: int, data_size: int, mode: str = "theirs") -> dict[str, np.ndarray]:
    """Every group, keyed ``"a1a2_train"`` / ``"a1a2_test"``, sized as the authors' config:
    9/160 of ``data_size`` per training-key group, 1/160 per test-key group. ``mode="ours"``:
    the training set is drawn with pairs at random (the counts vary) as ``core`` does."""
    rng = np.random.default_rng(seed)
    n_train, n_test = math.ceil(data_size * 0.05625), math.ceil(data_size * 0.00625)
    groups = {}
    for pair in PAIRS:
        k = f"{pair[0]}{pair[1]}"
        groups[k + "_test"] = make_group(rng, pair, n_test, True)
        groups[k + "_train"] = make_group(rng, pair, n_train, False)
    if mode == "ours":  # same total, pairs drawn uniformly from the 15 seen ones
        seen = [p for p in PAIRS if p != HELD_OUT]
        counts = np.bincount(rng.integers(0, len(seen), size=n_train * len(seen)), minlength=len(seen))
        for pair, c in zip(seen, counts):
            groups[f"{pair[0]}{pair[1]}_train"] = make_group(rng, pair, int(c), False)
    return groups


# -- model ----------------------------------------------------------------------------------------

def _f32(x: torch.Tensor) -> torch.Tensor:
    """A bf16/fp16 autocast matmul's output in fp32 (fp32 and fp64 unchanged)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


class Attention(nn.Module):
    def __init__(self, d: int, h: int, dk: int, gamma: float) -> None:
        super().__init__()
        self.h, self.dk = h, dk
        self.W_Q, self.W_K, self.W_V = (nn.Linear(d, h * dk, bias=False) for _ in range(3))
        self.fc = nn.Linear(h * dk, d, bias=False)
        for lin in (self.W_Q, self.W_K, self.W_V):
            nn.init.normal_(lin.weight, 0.0, d ** -gamma)
        nn.init.normal_(self.fc.weight, 0.0, (h * dk) ** -gamma)
        self.ln = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:  # x [B, T, d]
        B, T, _ = x.shape
        q, k, v = (f(x).view(B, T, self.h, self.dk).transpose(1, 2) for f in (self.W_Q, self.W_K, self.W_V))
        att = _f32(q @ k.transpose(-1, -2)) / math.sqrt(self.dk)           # [B, h, T, T]
        att = att.masked_fill(blocked.unsqueeze(1), -1e9).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.h * self.dk)
        return self.ln(_f32(self.fc(y)) + x)  # .float(): fp32 softmax and LayerNorm under bf16 autocast


class FFN(nn.Module):
    def __init__(self, d: int, d_ff: int, gamma: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, d_ff, bias=False), nn.Linear(d_ff, d, bias=False)
        nn.init.normal_(self.fc1.weight, 0.0, d ** -gamma)
        nn.init.normal_(self.fc2.weight, 0.0, d_ff ** -gamma)
        self.ln = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(_f32(self.fc2(F.relu(self.fc1(x)))) + x)


class TheirGPT(nn.Module):
    """Post-LN decoder, logits at every position: ``[B, T] int64 -> [B, T, vocab]``."""

    def __init__(self, vocab: int, max_pos: int, d: int, d_ff: int, h: int, dk: int, layers: int,
                 gamma: float) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_pos, d)
        nn.init.normal_(self.tok.weight, 0.0, d ** -gamma)
        nn.init.normal_(self.pos.weight, 0.0, d ** -gamma)
        self.layers = nn.ModuleList(nn.ModuleList([Attention(d, h, dk, gamma), FFN(d, d_ff, gamma)])
                                    for _ in range(layers))
        self.proj = nn.Linear(d, vocab)  # bias: PyTorch default
        nn.init.normal_(self.proj.weight, 0.0, d ** -gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T = x.shape
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), 1)
        blocked = causal.unsqueeze(0) | x.eq(0).unsqueeze(1)                     # [B, T, T]
        h = self.tok(x) + self.pos(torch.arange(T, device=x.device))
        for attn, ffn in self.layers:
            h = ffn(attn(h, blocked))
        return _f32(self.proj(h))


# -- schedule -------------------------------------------------------------------------------------

def lr_at(step: int, steps_per_epoch: int, sched: str, base: float = 1e-5, mult: float = 20.0,
          warm_epochs: int = 10, t_max_epochs: int = 200, eta_min: float = 1e-5) -> float:
    """Learning rate before optimizer step ``step`` (0-based).

    ``theirs``: linear ``base·((mult−1)·t/T + 1)`` for t ≤ T = warm_epochs·steps_per_epoch, then
    cosine from base·mult to ``eta_min`` over ``t_max_epochs`` more epochs. ``drop``: the same
    warm-up, then ``eta_min`` for good (the package bug described in the module docstring).
    ``ours``: cosine ends at epoch ``t_max_epochs`` instead of warm + t_max (core.train.lr_at).
    """
    T = warm_epochs * steps_per_epoch
    if step <= T:
        return base * ((mult - 1.0) * step / T + 1.0)
    if sched == "drop":
        return eta_min
    span = (t_max_epochs - (warm_epochs if sched == "ours" else 0)) * steps_per_epoch
    t = min(step - T, span)
    return eta_min + 0.5 * (base * mult - eta_min) * (1 + math.cos(math.pi * t / span))


# -- training -------------------------------------------------------------------------------------

@torch.no_grad()
def last_logits(model: nn.Module, seq: torch.Tensor, batch: int = 8192) -> torch.Tensor:
    """Logits at the last input position for ``seq`` ``[N, 10]`` (the target in the last column):
    ``[N, vocab]`` fp32, in eval mode and fp32 whatever the training precision."""
    model.eval()
    out = [model(seq[i:i + batch, :-1])[:, -1].float() for i in range(0, len(seq), batch)]
    model.train()
    return torch.cat(out)


def predictions(model: nn.Module, seq: torch.Tensor, batch: int = 8192) -> torch.Tensor:
    return last_logits(model, seq, batch).argmax(-1)


TRAIN_KEY_SAMPLE = 5_625  # sequences per seen pair's training-key group for ``seen_train_keys``


def evaluate(model: nn.Module, groups: dict[str, torch.Tensor]) -> dict:
    """One epoch's evaluation. ``seen``: mean accuracy of the 15 seen pairs on their test-key
    groups; ``seen_train_keys``: the same on the first 5,625 sequences of their training-key groups
    (their log lists every group's accuracy, the ``_xel`` lines); ``test_loss``: their "Test
    Loss", the eval-mode cross-entropy (nats) at the last position over every group they do not
    train on (the 16 test-key groups and the held-out pair's training-key group, 140,625
    sequences), so it can be set against their log epoch by epoch; (4,3) answers as deviations."""
    seen = [f"{a}{b}" for a, b in PAIRS if (a, b) != HELD_OUT]
    accs, loss_sum, count, held_logits = {}, 0.0, 0, {}
    for k in [f"{a}{b}" for a, b in PAIRS]:
        for split in ("test",) + (("train",) if k == "43" else ()):
            seq = groups[f"{k}_{split}"]
            logits = last_logits(model, seq)
            loss_sum += F.cross_entropy(logits, seq[:, -1], reduction="sum").item()
            count += len(seq)
            if k in seen:
                accs[k] = (logits.argmax(-1) == seq[:, -1]).float().mean().item()
            else:
                held_logits[split] = logits
    train_keys = [(predictions(model, groups[k + "_train"][:TRAIN_KEY_SAMPLE])
                   == groups[k + "_train"][:TRAIN_KEY_SAMPLE, -1]).float().mean().item() for k in seen]
    held = groups["43_train"]
    dev = (held_logits["train"].argmax(-1) - held[:, -1]).cpu().numpy()  # deviation from x − 10
    vals, counts = np.unique(dev, return_counts=True)
    share = {int(v): round(float(c) / len(dev), 4) for v, c in zip(vals, counts)}
    held_test = groups["43_test"]
    dev_test = (held_logits["test"].argmax(-1) - held_test[:, -1]).cpu().numpy()
    return {"seen": float(np.mean(list(accs.values()))), "seen_min": float(min(accs.values())),
            "seen_train_keys": float(np.mean(train_keys)), "test_loss": round(loss_sum / count, 4),
            "x_minus_10": share.get(0, 0.0), "x_minus_6": share.get(4, 0.0),
            "x_minus_10_test_keys": float(np.mean(dev_test == 0)),
            "held_out_train_keys": dict(sorted(share.items(), key=lambda kv: -kv[1])[:8])}


# -- checkpoints ----------------------------------------------------------------------------------

SETTINGS = ("gamma", "seed", "vocab", "max_pos", "decay", "sched", "data", "precision", "d_model", "d_ff", "d_head",
            "layers", "data_size", "batch")  # not epochs: a finished run can be extended


def save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, position: dict, epoch_rng: torch.Tensor,
                    loss_sum: torch.Tensor, settings: dict) -> None:
    """One safetensors file, written atomically (temporary sibling, then ``os.replace``): fp32
    weights ``model.*``, AdamW state ``optim.<i>.<name>``, the batch-order generator's state at the
    start of the epoch (``epoch_rng``) and the epoch's loss sum; JSON metadata ``position`` (epoch,
    batch, step, seconds), ``param_groups`` and ``settings``. Nothing in it executes code on load."""
    import os
    import tempfile

    from safetensors.torch import save_file
    tensors = {f"model.{k}": v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    state = opt.state_dict()
    for i, st in state["state"].items():
        for name, v in st.items():
            tensors[f"optim.{i}.{name}"] = torch.as_tensor(v).detach().cpu().contiguous()
    tensors["epoch_rng"] = epoch_rng.cpu().contiguous()
    tensors["loss_sum"] = loss_sum.detach().cpu().float().reshape(1)
    meta = {"position": json.dumps(position), "param_groups": json.dumps(state["param_groups"]),
            "settings": json.dumps(settings)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, settings: dict,
                    device: torch.device) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Restore ``model`` and ``opt`` from ``save_checkpoint``'s file; returns (position,
    epoch_rng, loss_sum). Raises ``SystemExit`` with a sentence if the file was written with other
    settings or cannot be read."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        saved, position = json.loads(meta["settings"]), json.loads(meta["position"])
        groups = json.loads(meta["param_groups"])
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        raise SystemExit(f"{path} is not a readable checkpoint of this script: {e}") from None
    differ = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
    if differ:
        raise SystemExit(f"{path} was written with other settings (saved, asked): {differ}; "
                         "remove it or give the settings it was made with")
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v.to(device) if name != "step" else v
    opt.load_state_dict({"state": state, "param_groups": groups})
    return position, tensors["epoch_rng"], tensors["loss_sum"].reshape(()).to(device)


def _truncate_log(out: Path, step: int, epoch: int) -> None:
    """Drop the records an interrupted run wrote after its checkpoint (they are written again)."""
    if not out.exists():
        return
    keep = []
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        if ("step" in rec and rec["step"] > step) or ("seen" in rec and rec["epoch"] > epoch):
            continue
        keep.append(line)
    out.write_text("".join(x + "\n" for x in keep))


def run(args: argparse.Namespace) -> list[dict]:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.keep_denormals:
        # CPU subnormals as zero, as core.train does (docs/calibration.md: a small-init fp32 run
        # slowed 2 s -> 18 s a step on them; weights stayed bitwise equal with the flush)
        torch.set_flush_denormal(True)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.precision == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = True
    # bf16 (not theirs: they trained in fp32): matmuls under bf16 autocast, fp32 master weights,
    # softmax, LayerNorm and loss in fp32, as core's train.precision = "bf16"
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())
    groups_np = make_data(args.seed, args.data_size, args.data)
    groups = {k: torch.from_numpy(v).to(device) for k, v in groups_np.items()}
    train_keys = [f"{a}{b}_train" for a, b in PAIRS if (a, b) != HELD_OUT]
    train_set = torch.cat([groups[k] for k in train_keys])
    n = len(train_set)
    spe = n // args.batch  # drop_last
    model = TheirGPT(args.vocab, args.max_pos, args.d_model, args.d_ff, 1, args.d_head, args.layers,
                     args.gamma).to(device)
    if args.decay == "ours":
        no = [p for name, p in model.named_parameters() if ".ln." in name or name == "proj.bias"]
        rest = [p for name, p in model.named_parameters() if not (".ln." in name or name == "proj.bias")]
        opt = torch.optim.AdamW([{"params": rest}, {"params": no, "weight_decay": 0.0}], lr=1e-5)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    out = Path(args.out) if args.out else None
    history, step, t0 = [], 0, time.time()
    settings = {k: getattr(args, k) for k in ("gamma", "seed", "vocab", "max_pos", "decay", "sched", "data",
                                             "precision", "d_model", "data_size", "batch")}
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    start_epoch, start_batch, resumed_rng, resumed_loss = 0, 0, None, None
    if ckpt is not None and ckpt.exists():
        position, resumed_rng, resumed_loss = load_checkpoint(
            ckpt, model, opt, {k: getattr(args, k) for k in SETTINGS}, device)
        start_epoch, start_batch, step = position["epoch"], position["batch"], position["step"]
        t0 -= position["seconds"]
        if out:
            _truncate_log(out, step, start_epoch)
        if not args.quiet:
            print(f"resumed from {ckpt} at epoch {start_epoch}, batch {start_batch}", flush=True)
    last_save = time.time()

    def emit(rec: dict) -> None:
        rec.update(settings, seconds=round(time.time() - t0, 1))
        history.append(rec)
        if out:
            with out.open("a") as f:
                f.write(json.dumps(rec) + "\n")
        if not args.quiet:
            print(json.dumps({k: rec[k] for k in ("epoch", "train_loss", "seen", "x_minus_10", "x_minus_6")}),
                  flush=True)

    if resumed_rng is None:
        emit({"epoch": 0, "train_loss": None, "lr": lr_at(0, spe, args.sched), **evaluate(model, groups)})
    for epoch in range(start_epoch, args.epochs):
        if args.deadline and time.time() - t0 > args.deadline:
            break
        if resumed_rng is not None:  # the interrupted epoch: the same batch order, from its batch on
            g.set_state(resumed_rng)
        epoch_rng = g.get_state()
        perm = torch.randperm(n, generator=g).to(device)
        loss_sum = resumed_loss if resumed_rng is not None else torch.zeros((), device=device)
        first = start_batch if resumed_rng is not None else 0
        resumed_rng = None
        for i in range(first, spe):
            if ckpt is not None and (args.stop_at_step and step >= args.stop_at_step
                                     or args.checkpoint_every and time.time() - last_save > 60 * args.checkpoint_every):
                save_checkpoint(ckpt, model, opt, {"epoch": epoch, "batch": i, "step": step,
                                                   "seconds": time.time() - t0}, epoch_rng, loss_sum,
                                {k: getattr(args, k) for k in SETTINGS})
                last_save = time.time()
                if args.stop_at_step and step >= args.stop_at_step:
                    return history
            lr = lr_at(step, spe, args.sched)
            for group in opt.param_groups:
                group["lr"] = lr
            batch = train_set[perm[i * args.batch:(i + 1) * args.batch]]
            with autocast:
                logits = model(batch[:, :-1])                               # [B, 9, vocab], fp32
            loss = F.cross_entropy(logits[:, -1], batch[:, -1], ignore_index=0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss_sum += loss.detach()
            step += 1
            if args.log_every and step % args.log_every == 0 and out:
                with out.open("a") as f:
                    f.write(json.dumps({"step": step, "epoch": epoch + (i + 1) / spe, "loss": round(loss.item(), 4),
                                        "lr": lr, "seconds": round(time.time() - t0, 1)}) + "\n")
        emit({"epoch": epoch + 1, "train_loss": round((loss_sum / spe).item(), 4), "lr": lr,
              **evaluate(model, groups)})
        if ckpt is not None:  # at each epoch end too (after the last: a rerun has nothing left to do)
            save_checkpoint(ckpt, model, opt, {"epoch": epoch + 1, "batch": 0, "step": step,
                                               "seconds": time.time() - t0}, g.get_state(),
                            torch.zeros((), device=device), {k: getattr(args, k) for k in SETTINGS})
            last_save = time.time()
    return history


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gamma", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--vocab", type=int, default=201)
    p.add_argument("--max-pos", type=int, default=20)
    p.add_argument("--decay", choices=("all", "ours"), default="all")
    p.add_argument("--sched", choices=("theirs", "drop", "ours"), default="theirs")
    p.add_argument("--data", choices=("theirs", "ours"), default="theirs")
    p.add_argument("--precision", choices=("fp32", "tf32", "bf16"), default="fp32",
                   help="fp32 (theirs); tf32 on a GPU; bf16 autocast (ours, labelled; docs/calibration.md)")
    p.add_argument("--data-size", type=int, default=900_000)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--d-model", type=int, default=400)
    p.add_argument("--d-ff", type=int, default=1200)
    p.add_argument("--d-head", type=int, default=200)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--keep-denormals", action="store_true",
                   help="keep CPU subnormal numbers (default: flushed to zero, as core.train; bench/denormals.py)")
    p.add_argument("--log-every", type=int, default=0, help="also write the loss every this many steps")
    p.add_argument("--deadline", type=float, default=0, help="stop starting epochs after this many seconds")
    p.add_argument("--out", help="JSON-lines file, one record per epoch (appended)")
    p.add_argument("--checkpoint", help="resumable run: write this safetensors file every --checkpoint-every"
                   " minutes and at each epoch end; if it exists, continue from it (same settings)")
    p.add_argument("--checkpoint-every", type=float, default=5.0, help="minutes between checkpoints (default 5)")
    p.add_argument("--stop-at-step", type=int, default=0, help=argparse.SUPPRESS)  # tests: interrupt here
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.vocab < 110 or a.max_pos < 9:
        p.error("--vocab must be ≥ 110 (targets reach 109) and --max-pos ≥ 9")
    return a


if __name__ == "__main__":
    run(parse(sys.argv[1:]))

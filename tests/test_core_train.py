"""Training loop, schedule, evaluation bookkeeping, determinism and cancellation (docs/science.md §4)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from core.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from core.presets import get_preset
from core.task import targets
from core.model import build_model
from core.train import Cancelled, evaluate, lr_at, make_eval_set, resolve_device, train

torch.set_num_threads(1)

METRICS = ("epoch", "step", "sequences", "lr", "train_loss", "seen_test_accuracy", "per_pair", "held_out")


def tiny_cfg(**train_kw) -> RunConfig:
    base = dict(n_train=256, epochs=2, batch_size=64, warmup_epochs=1, decay_epochs=2, n_eval_per_pair=8,
                device="cpu")
    return RunConfig(TaskConfig(), ModelConfig(n_layers=1, d_model=8, d_ff=16, d_head=4),
                     TrainConfig(**(base | train_kw)))


def run(cfg: RunConfig, seed: int | None = None, **kw):
    model = build_model(cfg, torch.Generator().manual_seed(cfg.train.seed if seed is None else seed))
    return model, train(model, cfg, **kw)


# -- learning-rate schedule ----------------------------------------------------------------------

def test_paper_schedule_shape():
    tc = get_preset("paper").train
    assert lr_at(tc, 0) == pytest.approx(1e-5)
    assert lr_at(tc, 5) == pytest.approx((1e-5 + 2.5e-4) / 2)          # linear warm-up midpoint
    assert lr_at(tc, 10) == pytest.approx(2.5e-4)                     # peak at warm-up end
    assert lr_at(tc, 105) == pytest.approx((2.5e-4 + 1e-5) / 2)       # cosine midpoint
    assert lr_at(tc, 10 + 190 / 3) == pytest.approx(1e-5 + (2.5e-4 - 1e-5) * 0.75)  # cos(π/3): 3/4 left
    assert lr_at(tc, 199.999) == pytest.approx(1e-5, rel=1e-4)
    for e in (200, 205, 210, 500):
        assert lr_at(tc, e) == pytest.approx(1e-5)                    # flat after decay end
    warm = [lr_at(tc, e / 10) for e in range(0, 101)]
    decay = [lr_at(tc, 10 + e) for e in range(0, 191)]
    assert all(a < b for a, b in zip(warm, warm[1:]))
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert max(warm + decay) == pytest.approx(2.5e-4)


def test_schedule_edge_cases():
    no_warm = TrainConfig(lr_start=1e-4, lr_peak=1e-3, lr_end=1e-5, warmup_epochs=0, decay_epochs=4, epochs=4)
    assert lr_at(no_warm, 0) == pytest.approx(1e-3)
    assert lr_at(no_warm, 4) == pytest.approx(1e-5)
    no_decay = TrainConfig(lr_start=1e-4, lr_peak=1e-3, lr_end=1e-5, warmup_epochs=2, decay_epochs=2, epochs=4)
    assert lr_at(no_decay, 1) == pytest.approx(5.5e-4)
    assert lr_at(no_decay, 2) == pytest.approx(1e-5) == lr_at(no_decay, 3)


def test_training_steps_use_the_schedule():
    cfg = tiny_cfg(n_train=256, batch_size=32, epochs=2, warmup_epochs=1, decay_epochs=2)
    events = []
    _, hist = run(cfg, on_progress=events.append, progress_every=1)
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, cfg.train.total_steps + 1))
    spe = cfg.train.steps_per_epoch
    for e in steps:  # lr of step i is the schedule at the start of that step
        assert e["lr"] == pytest.approx(lr_at(cfg.train, e["epoch"] - 1 / spe))
        assert e["total_steps"] == 16 and math.isfinite(e["loss"])
    assert [r["lr"] for r in hist] == [lr_at(cfg.train, r["epoch"]) for r in hist]


# -- history, determinism, learning --------------------------------------------------------------

def test_history_records():
    cfg = tiny_cfg(n_train=200, batch_size=64, epochs=3, eval_every=2, warmup_epochs=1, decay_epochs=3)
    _, hist = run(cfg)
    assert [r["epoch"] for r in hist] == [0, 2, 3]       # every 2nd epoch and always the last
    assert [r["step"] for r in hist] == [0, 8, 12]        # ceil(200 / 64) = 4 steps per epoch
    assert [r["sequences"] for r in hist] == [0, 400, 600]
    assert hist[0]["train_loss"] is None and all(r["train_loss"] > 0 for r in hist[1:])
    assert hist[0]["seconds"] == 0 and hist[-1]["seconds"] >= hist[1]["seconds"] > 0
    for r in hist:
        assert set(r["per_pair"]) == {f"{a},{b}" for a, b in cfg.task.pairs}
        h = r["held_out"]["4,3"]
        assert h["inferential"] + h["symmetric"] + h["other"] == pytest.approx(1.0)  # x-10 ≠ x-6
        assert 0 <= r["seen_test_accuracy"] <= 1
        # the replay's snapshot: Fig. 3 attention [n_layers, T, T] on the fixed sequence, and route strengths
        att = r["snapshot"]["attention"]
        assert len(att["attn"]) == cfg.model.n_layers and all(len(row) == cfg.task.seq_len for row in att["attn"][0])
        assert 0 <= r["snapshot"]["route"]["inferential"] <= 1 and 0 <= r["snapshot"]["route"]["symmetric"] <= 1
    assert hist[0]["snapshot"]["attention"]["attn"] != hist[-1]["snapshot"]["attention"]["attn"]  # training moved it


def _metrics(hist):
    return [{k: r[k] for k in METRICS} for r in hist]


def test_same_seed_same_history_other_seed_differs():
    cfg = get_preset("tiny").replace(**{"train.device": "cpu"})
    m1, h1 = run(cfg)
    m2, h2 = run(cfg)
    assert _metrics(h1) == _metrics(h2)
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    _, h3 = run(cfg.replace(**{"train.seed": 1}))
    assert [r["train_loss"] for r in h3] != [r["train_loss"] for r in h1]


def test_data_seed_matters_with_fixed_init():
    """train() seeds data and batch order from train.seed, independently of the init generator."""
    cfg = tiny_cfg()
    _, a = run(cfg, seed=0)
    _, b = run(cfg.replace(**{"train.seed": 7}), seed=0)
    assert a[1]["train_loss"] != b[1]["train_loss"]


def test_short_cpu_run_lowers_the_loss():
    cfg = RunConfig(TaskConfig(), ModelConfig(n_layers=1, d_model=32, d_ff=64, d_head=16),
                    TrainConfig(n_train=4000, epochs=12, batch_size=64, lr_start=1e-4, lr_peak=1e-2, lr_end=1e-4,
                                warmup_epochs=0.5, decay_epochs=12, n_eval_per_pair=16, device="cpu"))
    _, hist = run(cfg, snapshots=False)
    first, last = hist[1]["train_loss"], hist[-1]["train_loss"]
    assert first > math.log(cfg.task.vocab_size) - 0.5  # epoch 1 is still near chance (nats)
    assert last < first - 1.0, (first, last)           # ~4.7 -> ~2.7 nats in a few seconds


def test_online_data_differs_from_pool():
    _, pool = run(tiny_cfg(data="pool"))
    _, online = run(tiny_cfg(data="online"))
    assert pool[1]["train_loss"] == online[1]["train_loss"]  # epoch 1: pool and first fresh set coincide
    assert pool[2]["train_loss"] != online[2]["train_loss"]  # epoch 2: online data is new


# -- callbacks and cancellation ------------------------------------------------------------------

def test_should_stop_raises_cancelled_with_history():
    cfg = tiny_cfg(n_train=512, batch_size=32, epochs=3)  # 16 steps per epoch
    polls = []

    def stop():
        polls.append(1)
        return len(polls) > 20  # stop during epoch 2

    events = []
    with pytest.raises(Cancelled) as e:
        run(cfg, should_stop=stop, on_progress=events.append, progress_every=5)
    hist = e.value.history
    assert [r["epoch"] for r in hist] == [0, 1]
    assert len(polls) == 21
    # polled before every step and once more before each evaluation: 16 + 1 in epoch 1,
    # then the 4th poll of epoch 2 (before its step 20) stops it
    steps = [ev["step"] for ev in events if ev["event"] == "step"]
    assert steps == [5, 10, 15]
    assert [ev["epoch"] for ev in events if ev["event"] == "eval"] == [0, 1]


def test_should_stop_false_runs_to_the_end():
    _, hist = run(tiny_cfg(), should_stop=lambda: False)
    assert hist[-1]["epoch"] == 2


def test_progress_events_and_on_eval():
    events, seen = [], []

    def on_eval(model, rec):
        seen.append(model.training)
        rec["extra"] = rec["epoch"] * 10

    _, hist = run(tiny_cfg(), on_progress=events.append, on_eval=on_eval, progress_every=2)
    kinds = [e["event"] for e in events]
    assert kinds.count("eval") == 3 and kinds.count("step") == 4  # 8 steps, every 2nd reported
    assert kinds[0] == "eval" and kinds[-1] == "eval"
    evals = [e for e in events if e["event"] == "eval"]
    assert all("seen_test_accuracy" in e and e["total_steps"] == 8 for e in evals)
    assert [r["extra"] for r in hist] == [0, 10, 20]
    assert len(seen) == 3


def test_model_is_back_in_train_mode_after_evaluate():
    cfg = tiny_cfg()
    model = build_model(cfg)
    model.train()
    evaluate(model, cfg.task, make_eval_set(cfg.task, 4, 0))
    assert model.training


# -- evaluation bookkeeping with oracle models ---------------------------------------------------

class Oracle(nn.Module):
    """Answers every sequence with a chosen mapping's target (one-hot logits at every position)."""

    def __init__(self, task: TaskConfig, mapping: str):
        super().__init__()
        self.task, self.mapping = task, mapping
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, tokens):
        anchors = tokens < self.task.item_min  # anchors 1..4 sit below the items
        first = anchors.float().argmax(1)
        rows = torch.arange(tokens.shape[0])
        key, a1, a2 = tokens[rows, first - 1], tokens[rows, first], tokens[rows, first + 1]
        t = targets(self.task, key, a1, a2, self.mapping)
        logits = torch.zeros(*tokens.shape, self.task.vocab_size)
        logits[rows, :, t] = 1.0
        return logits

    def forward_last(self, tokens):  # the trainer's and evaluator's last-position path
        return self.forward(tokens)[:, -1]


@pytest.mark.parametrize("task", [TaskConfig(), TaskConfig(held_out=((3, 4), (4, 3)), overrides=())])
def test_evaluate_with_oracles(task):
    ev = make_eval_set(task, 6, seed=0)
    assert len(ev.test) == 6 * len(task.pairs)
    assert all(len(b) == 12 for b in ev.held_out.values())
    assert set(ev.held_out) == set(task.held_out)
    res = evaluate(Oracle(task, "designated"), task, ev)
    assert res["seen_test_accuracy"] == 1.0
    assert all(v == 1.0 for v in res["per_pair"].values())
    for k, h in res["held_out"].items():
        assert h["inferential"] == 1.0
    sym = evaluate(Oracle(task, "symmetric"), task, ev)
    if task.override_shift:  # default task: symmetric answers are wrong on (3,4) and (4,3) only
        assert sym["held_out"]["4,3"] == {"inferential": 0.0, "symmetric": 1.0, "other": 0.0,
                                          "offsets": {"-6": 1.0}}
        assert sym["per_pair"]["3,4"] == 0.0 and sym["per_pair"]["4,3"] == 0.0
        assert sym["seen_test_accuracy"] == pytest.approx(14 / 15)
    else:  # Appendix E: both held out, symmetric = inferential for them
        assert all(h["inferential"] == h["symmetric"] == 1.0 for h in sym["held_out"].values())


def test_eval_set_is_fixed_and_seeded():
    a, b, c = (make_eval_set(TaskConfig(), 4, s) for s in (0, 0, 1))
    assert torch.equal(a.test.tokens, b.test.tokens) and not torch.equal(a.test.tokens, c.test.tokens)
    assert split_ok(a.test)


def split_ok(batch):
    return bool(((batch.key % 7) == batch.key_pos).all())


# -- devices ------------------------------------------------------------------------------------

def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    with pytest.raises(ValueError):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")


def test_fit_is_the_one_training_path_and_train_run_saves_what_fit_made(tmp_path):
    """core.fit: the CLI's run and train_run's are the same function of the config (bit-identical
    weights), and the metrics carry what every caller used to assemble by hand."""
    import torch
    from safetensors.torch import load_file

    from core.cli import main
    from core.fit import fit, train_run
    from core.runs import load_config

    torch.set_num_threads(1)
    assert main(["train", "--preset", "tiny", "--epochs", "1", "--threads", "1", "--quiet",
                 "--out", str(tmp_path / "cli")]) == 0
    cfg = load_config(tmp_path / "cli")  # the CLI's own config (--epochs also scales the schedule)
    model, metrics = fit(cfg)
    assert {"history", "seconds", "wall_seconds", "cpu_seconds", "device", "threads", "processor"} <= set(metrics)
    assert "torch CPU capability" in metrics["processor"]
    saved = train_run(cfg, tmp_path / "lib")
    w_cli, w_lib = load_file(tmp_path / "cli" / "weights.safetensors"), load_file(saved / "weights.safetensors")
    assert w_cli.keys() == w_lib.keys() and all(torch.equal(w_cli[k], w_lib[k]) for k in w_cli)
    assert all(torch.equal(v, w_lib[k]) for k, v in model.state_dict().items())


def test_training_imports_only_torch_and_numpy():
    """A bare GPU box needs torch and numpy alone to train and save a run (core.fit)."""
    import subprocess
    import sys
    code = ("import sys, core.fit, core.train, core.model; "
            "bad = [m for m in ('scipy', 'sklearn', 'streamlit', 'altair', 'pandas') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr

"""Command line: ``python -m core train|eval ...``.

``train`` builds a run from a preset plus overrides, trains it with a progress bar on stderr,
saves the run folder and prints a verdict line (or, with ``--json``, one JSON object: the
contract documented in the README). ``eval`` loads a run and prints its per-pair table.
Bad input (unknown field, impossible task, corrupt run) prints one ``error:`` line and
exits with status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig, is_string_setting, pair_key, parse_pair, setting_type
from .presets import PRESETS, get_preset
from .runs import RunError, check_replaceable, checkpoint_path, load_checkpoint, load_run, save_checkpoint, save_run
from .task import pair_target
from .fit import fit
from .model import build_model
from .train import Cancelled, evaluate, make_eval_set, resolve_device
from .verdict import summarize, verdict, verdict_line

SHORTCUTS = {
    "gamma": ("model.gamma", float), "layers": ("model.n_layers", int), "d_model": ("model.d_model", int),
    "d_ff": ("model.d_ff", int), "d_head": ("model.d_head", int), "heads": ("model.n_heads", int),
    "seed": ("train.seed", int), "epochs": ("train.epochs", int), "n_train": ("train.n_train", int),
    "batch_size": ("train.batch_size", int), "lr": ("train.lr_peak", float),
    "weight_decay": ("train.weight_decay", float), "data": ("train.data", str), "device": ("train.device", str),
}


class CLIError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one ``error:`` line (plus where to find the
    usage) and exit status 2, like every other bad input, instead of the whole usage block.
    Subcommand parsers are made with the same class (argparse's default)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """argparse ``type`` for counts such as ``--threads``: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a finite number")


def _parse_value(text: str, dotted: str) -> Any:
    """The value of ``--set dotted=text`` (also the suite's and the sweep's ``--set``): strict
    JSON, NaN and ±Infinity refused. A bare word (``cpu``, ``cuda:0``, ``bf16``) is taken as a
    string only for the string settings (``core.config.is_string_setting``); elsewhere it is an
    error, never a silent string.

    Raises:
        ValueError: naming the setting and what it expects, e.g. ``task.operations: expected a
            JSON object like {"1": 5, ...}, got '{bad'``; or an unknown setting.
    """
    expected = setting_type(dotted)  # raises ValueError for an unknown setting
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, NaN/Infinity, too many digits, too deep
        pass
    if is_string_setting(dotted) and _BARE_WORD.fullmatch(text.strip()):
        return text.strip()
    shown = text if len(text) <= 60 else text[:57] + "..."
    raise ValueError(f"{_setting_name(dotted)}: expected {expected} (as JSON), got {shown!r}")


def parse_sets(items: Iterable[str] | None, error: type[Exception] = ValueError) -> dict[str, Any]:
    """The ``--set section.field=value`` items of ``train``, ``sweep`` and ``suite`` as
    ``{dotted: value}`` (each value by ``_parse_value``; a later item for a key wins).

    Raises:
        error: an item without ``=``.
        ValueError: an unknown setting or a value it refuses (``_parse_value``).
    """
    sets: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise error(f"--set takes section.field=value, got {item!r}")
        k, v = item.split("=", 1)
        sets[k.strip()] = _parse_value(v, k.strip())
    return sets


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Preset + shortcut flags + ``--set section.field=value`` (value parsed as JSON)."""
    cfg = get_preset(args.preset)
    overrides: dict[str, Any] = {}
    for flag, (dotted, _) in SHORTCUTS.items():
        v = getattr(args, flag, None)
        if v is not None:
            overrides[dotted] = v
    overrides.update(parse_sets(args.set, CLIError))
    if args.held_out:
        overrides["task.held_out"] = [parse_pair(p) for p in args.held_out]
    if overrides:
        cfg = _replace_naming_the_setting(cfg, overrides)
    return cfg.with_epochs_scaled(get_preset(args.preset), overrides)


def _replace_naming_the_setting(cfg: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """``cfg.replace(**overrides)`` whose errors name the setting at fault.

    The overrides are applied together (a held-out pair may only be valid once the overrides
    change too); when that fails, each is tried alone on ``cfg`` and the first that fails
    by itself is named (``model.gamma: could not convert string to float: 'garbage'``).
    Any error from a wrong type or shape of value is reported as ValueError.
    """
    try:
        return cfg.replace(**overrides)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        error = e
    for key, value in overrides.items():
        try:
            cfg.replace(**{key: value})
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            raise ValueError(f"{_setting_name(key)}: {_message(e, cfg, key)}") from None
    names = ", ".join(_setting_name(k) for k in overrides)
    raise ValueError(f"these settings do not fit together ({names}): {_message(error)}") from None


def _setting_name(dotted: str) -> str:
    """``model.gamma`` plus its shortcut flag when it has one: ``model.gamma (--gamma)``."""
    flags = [f for f, (d, _) in SHORTCUTS.items() if d == dotted]
    if dotted == "task.held_out":
        flags.append("held_out")
    return dotted + (f" (--{flags[0].replace('_', '-')})" if flags else "")


_WRONG_TYPE = ("wrong type", "unpack", "could not convert", "invalid literal", "not iterable", "not subscriptable",
               "must be a list", "must be a pair", "must be an integer", "must be true or false",
               "must be a JSON object")


def _message(e: Exception, cfg: RunConfig | None = None, key: str | None = None) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if isinstance(e, ValueError) and not any(w in text for w in _WRONG_TYPE):
        return text  # core's own message already says what is wrong
    # A value of the wrong type or shape (a word where a number or a list of pairs belongs):
    # say so, and show a value of the right shape from the preset.
    if "wrong type" not in text:
        text = f"a value of the wrong type or shape ({text})"
    if cfg is not None and key is not None:
        section, _, name = key.partition(".")
        current = cfg.to_dict().get(section, {}).get(name)
        if current is not None:
            text += f"; a valid value looks like {key}={json.dumps(current, separators=(',', ':'))}"
    return text


def _bar(rec: dict[str, Any], t0: float) -> None:
    if rec.get("event") != "step":
        return
    frac = rec["step"] / rec["total_steps"]
    n = int(30 * frac)
    el = time.perf_counter() - t0
    eta = el / max(frac, 1e-9) - el
    sys.stderr.write(f"\r[{'#' * n}{'.' * (30 - n)}] {frac:5.1%} epoch {rec['epoch']:.1f} loss {rec['loss']:.3f}"
                     f" lr {rec['lr']:.1e} eta {eta:4.0f}s ")
    sys.stderr.flush()


STOPPED = 143  # exit status of a training stopped by SIGTERM or by stdin closing: nothing saved


def _emit(record: dict[str, Any]) -> None:
    """``--progress jsonl``: one JSON object per line on stdout, flushed at once."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class _StopRequest:
    """The stop flag of one ``train`` command, polled by ``core.train.train`` every optimizer step.

    Set by SIGTERM (a handler installed while the command runs, main thread only) and, with
    ``--watch-stdin``, when stdin reaches end of file: a parent process that launched the
    training holds the other end of that pipe, so its death (even by SIGKILL) stops the child.
    """

    def __init__(self, watch_stdin: bool) -> None:
        self.event = threading.Event()
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
        if watch_stdin:
            threading.Thread(target=self._watch_stdin, name="stdin-watch", daemon=True).start()

    def _watch_stdin(self) -> None:
        try:
            while sys.stdin.buffer.read1(65536):
                pass
        except (OSError, ValueError, AttributeError):  # closed or absent stdin: the parent is gone too
            pass
        self.event.set()

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _save_unique(out: Path, cfg: RunConfig, model: Any, metrics: dict[str, Any], device: str, half: bool) -> Path:
    """Save under ``out`` or, when taken (also by a concurrent save), ``out_2``, ``out_3``, ...: never overwrite."""
    for i in range(1, 1000):
        path = out if i == 1 else out.with_name(f"{out.name}_{i}")
        if path.exists():
            continue
        try:
            return save_run(path, cfg, model, metrics, device=device, half=half)
        except (RunError, OSError):
            if path.exists():  # another process took the name between the check and the rename
                continue
            raise
    raise CLIError(f"no free run folder name for {out}")


def cmd_train(args: argparse.Namespace) -> int:
    """``python -m core train``. Exit status 0 (saved), 2 (bad input), 130 (Ctrl-C) or
    ``STOPPED`` (143: SIGTERM, or stdin closed under ``--watch-stdin``; nothing saved).

    ``--progress jsonl`` prints one JSON object per line on stdout instead of the progress bar:
    ``core.train.train``'s progress records (``{"event": "step", "step", "total_steps", "epoch",
    "loss", "lr"}`` every 20 steps and ``{"event": "eval", ...}`` with each evaluation record),
    then ``{"event": "done", "run": FOLDER, "seconds", "summary"}`` (the ``--json`` object),
    ``{"event": "cancelled"}`` or ``{"event": "error", "message"}``.
    """
    stop = _StopRequest(bool(getattr(args, "watch_stdin", False)))
    try:
        return _train_command(args, stop)
    except (CLIError, RunError, ValueError, KeyError, TypeError, OSError) as e:
        if getattr(args, "progress", None) == "jsonl":
            _emit({"event": "error", "message": str(e.args[0] if isinstance(e, KeyError) and e.args else e)})
        raise
    finally:
        stop.restore()


def _stopped(args: argparse.Namespace) -> int:
    if args.progress == "jsonl":
        _emit({"event": "cancelled"})
    sys.stderr.write("\nstopped: nothing saved\n")
    return STOPPED


def _train_command(args: argparse.Namespace, stop: _StopRequest) -> int:
    if args.json and args.progress:
        raise CLIError("--json and --progress jsonl both write to stdout; use one")
    if args.unique and args.overwrite:
        raise CLIError("--unique never replaces a run folder; drop --overwrite or --unique")
    if args.threads:
        torch.set_num_threads(args.threads)
    state = None
    every = args.checkpoint_every
    if every is not None and not (math.isfinite(every) and every >= 0):
        raise CLIError(f"--checkpoint-every takes minutes ≥ 0 (0: at every step), got {every}")
    if args.resume is not None:
        if not args.resume.strip():
            raise CLIError("--resume needs the run folder whose checkpoint to continue, got an empty path")
        # --epochs is the one config flag --resume takes: it moves the stop, never the schedule
        given = [("--" + f.replace("_", "-")) for f in SHORTCUTS if f != "epochs" and getattr(args, f, None) is not None]
        given += [flag for flag, v in (("--set", args.set), ("--held-out", args.held_out), ("--out", args.out))
                  if v]
        if args.preset_given:
            given.append("--preset")
        if given:
            raise CLIError(f"--resume continues the run exactly as it was started (config and folder come from"
                           f" its checkpoint); drop {', '.join(given)}")
        out = Path(args.resume)
        ckpt = checkpoint_path(out)
        if ckpt.is_dir():
            raise CLIError(f"{ckpt} is a folder, not a checkpoint file")
        if (out / "metrics.json").is_file() and not ckpt.exists():
            raise CLIError(f"{out} is already finished: nothing to resume" + (
                " (a finished run keeps no optimizer state, so it cannot be extended; extend a run with"
                " --resume RUN --epochs N before it finishes, from its checkpoint)" if args.epochs else ""))
        if (out / "metrics.json").is_file() and ckpt.is_file():
            # killed between saving the run and removing its checkpoint: the run is whole
            ckpt.unlink()
            sys.stderr.write(f"{out} is already finished; its leftover checkpoint was removed\n")
            return 0
        if not ckpt.is_file():
            raise CLIError(f"nothing to resume: {ckpt} does not exist")
        cfg, model, state = load_checkpoint(ckpt)
        if args.epochs is not None and args.epochs != cfg.train.epochs:
            cfg = _extend(cfg, state, args.epochs)
        sys.stderr.write(f"resuming {out} at epoch {state.epoch} step {state.step} of {cfg.train.total_steps}"
                         " (config from the checkpoint)\n")
    else:
        cfg = config_from_args(args)
        out = Path(args.out) if args.out else Path("runs") / (
            f"{args.preset}_L{cfg.model.n_layers}_g{cfg.model.gamma:g}_s{cfg.train.seed}")
        if checkpoint_path(out).exists():
            raise CLIError(f"{checkpoint_path(out)} exists: a run into {out} was interrupted; continue it with"
                           f" --resume {out}, or delete that file to start again")
        model = build_model(cfg, torch.Generator().manual_seed(cfg.train.seed))
    # First, as it also puts back a run that a killed --overwrite left as .NAME.old: the check
    # below then sees it before any training, not after.
    check_replaceable(out)  # --overwrite replaces a run folder, never a file or another folder
    if out.exists() and not args.overwrite and not args.unique:
        raise CLIError(f"{out} already exists; pass --overwrite or choose another --out")
    device = resolve_device(cfg.train.device)
    t0 = time.perf_counter()
    quiet = args.json or args.quiet or args.progress
    ckpt_kw: dict[str, Any] = {}
    if every is not None:
        ckpt_kw = {"on_checkpoint": lambda st: save_checkpoint(checkpoint_path(out), cfg, model, st),
                   "checkpoint_every": 60.0 * every}
    try:
        progress = _emit if args.progress == "jsonl" else None if quiet else (lambda r: _bar(r, t0))
        model, metrics = fit(cfg, model=model, on_progress=progress, should_stop=stop.event.is_set, resume=state,
                             **ckpt_kw)
        history = metrics["history"]
    except KeyboardInterrupt:
        if ckpt_kw and checkpoint_path(out).exists():
            sys.stderr.write(f"\ninterrupted: continue from the last checkpoint with --resume {out}\n")
        else:
            sys.stderr.write("\ninterrupted: nothing saved\n")
        return 130
    except Cancelled:
        return _stopped(args)
    if stop.event.is_set():  # asked to stop after the last step: still save nothing
        return _stopped(args)
    seconds = history[-1]["seconds"]
    if not quiet:
        sys.stderr.write("\n")
    if args.unique:
        saved = _save_unique(out, cfg, model.cpu(), metrics, str(device), args.half)
    else:
        saved = save_run(out, cfg, model.cpu(), metrics, device=str(device), overwrite=args.overwrite, half=args.half)
    checkpoint_path(out).unlink(missing_ok=True)  # the run folder is whole: the checkpoint has served
    summary = summarize(str(saved), cfg, history, seconds)
    if args.progress == "jsonl":
        _emit({"event": "done", "run": str(saved), "seconds": seconds, "summary": summary})
    elif args.json:
        print(json.dumps(summary))
    else:
        _print_verdicts(cfg, summary)
        print(f"saved {saved} ({seconds:.1f} s training on {device})")
    return 0


def _print_verdicts(cfg: RunConfig, summary: dict[str, Any]) -> None:
    print(f"seen-pair test accuracy {summary['seen_test_accuracy']:.3f}")
    for k, h in summary["held_out"].items():
        pair = parse_pair(k)
        inf = pair_target(cfg.task, 0, pair, "inferential")
        sym = pair_target(cfg.task, 0, pair, "symmetric")
        print(f"held-out ({k}): inferential x{inf:+d} {h['inferential']:.2f} | symmetric x{sym:+d}"
              f" {h['symmetric']:.2f} | other {h['other']:.2f}")
        v = verdict(summary["seen_test_accuracy"], h)
        shift = {"inferential": inf, "symmetric": sym}.get(v["outcome"])
        print("verdict: " + verdict_line(k, v, None if shift is None else f"x{shift:+d}"))


def cmd_eval(args: argparse.Namespace) -> int:
    run = load_run(args.run)
    cfg = run.config
    if args.recompute:
        rec = evaluate(run.model, cfg.task, make_eval_set(cfg.task, cfg.train.n_eval_per_pair, cfg.train.seed))
        history = run.metrics["history"][:-1] + [{**run.final, **rec}]
    else:
        history = run.metrics["history"]
    summary = summarize(str(run.path), cfg, history, run.metrics.get("seconds"))
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"run {run.path}  γ={cfg.model.gamma:g}  layers={cfg.model.n_layers}  d_model={cfg.model.d_model}"
          f"  seed={cfg.train.seed}")
    print(f"{'pair':>6} {'role':>12} {'target':>8} {'test acc':>9}")
    for p in cfg.task.pairs:
        k = pair_key(p)
        print(f"{k:>6} {cfg.task.pair_type(p):>12} {'x%+d' % pair_target(cfg.task, 0, p):>8}"
              f" {summary['per_pair'][k]:9.3f}")
    _print_verdicts(cfg, summary)
    return 0


def _extend(cfg: RunConfig, state: Any, epochs: int) -> RunConfig:
    """The checkpointed run's config with its stop moved to ``epochs``, the schedule kept.

    The learning rate is a function of the epoch alone (``train.warmup_epochs`` and
    ``train.decay_epochs`` are absolute, docs/science.md §3), and the data order of each epoch
    is drawn from the generator state the checkpoint carries, so a run continued to a later
    stop is step for step the run that was planned to that stop from the start. Used to carry
    the faithful-width runs from epoch 25 to 30, the far end of the issue's 25–30 (the authors
    logged to epoch 87).

    Raises:
        CLIError: ``epochs`` is below the epochs the checkpoint has already begun.
    """
    if epochs < state.epoch + 1:
        raise CLIError(f"--epochs {epochs} with --resume: the checkpoint is in epoch {state.epoch + 1} of"
                       f" {cfg.train.epochs}; a run can be continued to a later stop, not cut before where it is")
    try:
        return cfg.replace(**{"train.epochs": epochs})
    except ValueError as e:
        raise CLIError(f"--epochs {epochs}: {e}") from None


class _PresetGiven(argparse.Action):
    """Stores --preset and notes that it was given (``--resume`` refuses config flags)."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.preset, namespace.preset_given = values, True


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m core", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one run and save it")
    t.add_argument("--preset", default="cpu-demo", action=_PresetGiven, help=f"one of {sorted(PRESETS)}")
    t.set_defaults(preset_given=False)
    for flag, (dotted, typ) in SHORTCUTS.items():
        t.add_argument("--" + flag.replace("_", "-"), dest=flag, type=typ, help=f"sets {dotted}")
    t.add_argument("--held-out", action="append", help="held-out pair like 4,3 (repeatable)")
    t.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", help="any config field, value as JSON")
    t.add_argument("--out", help="run folder (default runs/<preset>_L<layers>_g<gamma>_s<seed>)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    t.add_argument("--half", action="store_true", help="store weights as fp16 (loading restores fp32)")
    t.add_argument("--threads", type=positive_int, help="torch CPU threads (at least 1)")
    t.add_argument("--checkpoint-every", type=float, metavar="MINUTES",
                   help="write <out>.checkpoint.safetensors atomically every MINUTES of training (0: every step)"
                        " and at each epoch end; removed once the run folder is saved")
    t.add_argument("--resume", metavar="RUN", help="continue the interrupted run into folder RUN from its"
                   " checkpoint (config and folder come from the checkpoint, so config flags and --out are"
                   " refused, except --epochs N, which moves the stop to epoch N on the same schedule); runtime flags"
                   " (--threads, --half, --checkpoint-every, --quiet) are not stored: pass them again")
    t.add_argument("--json", action="store_true", help="print one JSON object (the README's contract)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--progress", choices=["jsonl"], help="jsonl: one JSON object per line on stdout (step and"
                   " evaluation records, then done/cancelled/error) instead of the progress bar")
    t.add_argument("--unique", action="store_true", help="if the --out folder exists when the run is saved, save"
                   " as OUT_2, OUT_3, ... instead (never overwrites)")
    t.add_argument("--watch-stdin", action="store_true", help="stop (saving nothing, exit status 143) when stdin"
                   " closes: for a parent process that launches the training and holds the pipe")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="print a saved run's per-pair table and verdict")
    e.add_argument("run")
    e.add_argument("--json", action="store_true")
    e.add_argument("--recompute", action="store_true", help="re-evaluate the weights instead of reading metrics.json")
    e.set_defaults(func=cmd_eval)
    _register_extra(sub)
    return p


EXIT_STDOUT_CLOSED = 141  # 128 + SIGPIPE: the status a shell shows for `yes | head`


def main(argv: list[str] | None = None) -> int:
    """``python -m core ARGS``: the exit status (0 done, 2 bad input, 130 interrupted).

    A reader that closes stdout early (``python -m core probe RUN | head -8``) ends the command
    quietly with status 141, as a Unix tool killed by SIGPIPE does (shells without ``pipefail``
    ignore it): no traceback, nothing more written. Stdout is flushed here, so the error of a
    late flush is caught too, and then pointed at ``os.devnull`` so that Python's own flush at
    exit cannot fail again (the Python docs' "Note on SIGPIPE"). Work already done (a saved
    run) is kept.
    """
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _detach_stdout()
        return EXIT_STDOUT_CLOSED


def _detach_stdout() -> None:
    """Point file descriptor 1 at ``os.devnull`` (not possible when stdout is no real file, as
    under pytest's capture: then nothing is left to flush anyway)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, already printed as one line)
        return e.code if isinstance(e.code, int) else 2
    try:
        return args.func(args)
    except (CLIError, RunError, ValueError, KeyError, TypeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        sys.stderr.write(f"error: {msg}\n")
        return 2


def _register_extra(sub: Any) -> None:
    """Subcommands living in other modules (probe, sweep, suite) add themselves to ``sub``, the
    object ``ArgumentParser.add_subparsers`` returned (imported here: they import this module)."""
    from . import probe_cli, suite, sweep_cli
    for module in (probe_cli, sweep_cli, suite):
        module.register(sub)
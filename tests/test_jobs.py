"""The training job queue (ui/jobs.py): FIFO under a concurrency cap, cancellation, admission
refusals, per-session and queue-length limits, the orphan watchdog and the wall-time limit.
Jobs are real ``python -m core train --progress jsonl`` subprocesses training the ``tiny`` preset."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from core.presets import get_preset
from core.runs import load_run
from ui.jobs import (JobQueue, JobRefused, QueueFull, SessionBusy, cli_args, cli_command, default_max_flops, env_limit,
                     job_cost, run_name)

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)

TINY = get_preset("tiny")
LONG = TINY.replace(**{"train.epochs": 5000, "train.decay_epochs": 5000})  # minutes if never stopped


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def queue():
    # every test keeps polling; LONG's 20,000 steps are over the public step cap on purpose
    q = JobQueue(max_jobs=1, gpu=False, tick=0.05, orphan_timeout=1.5, max_steps=10**6)
    yield q
    q.shutdown()


def test_fifo_under_a_cap_of_one(queue, tmp_path):
    a = queue.submit(TINY, "tiny", "alice", tmp_path)
    b = queue.submit(TINY, "tiny", "bob", tmp_path)
    c = queue.submit(TINY, "tiny", "carol", tmp_path)
    assert queue.get(a.id).state == "running"
    assert [queue.position(j.id) for j in (a, b, c)] == [None, 1, 2]
    queue.cancel(c.id)  # a waiting job leaves the queue at once
    assert queue.get(c.id).state == "cancelled" and queue.position(b.id) == 1
    most_running = 0
    while queue.get(b.id).active:
        queue.touch(a.id), queue.touch(b.id)
        most_running = max(most_running, queue.counts()[0])
        time.sleep(0.05)
    ja, jb = queue.get(a.id), queue.get(b.id)
    assert (ja.state, jb.state) == ("done", "done"), (ja.message, jb.message)
    assert most_running == 1
    assert ja.started < jb.started and ja.finished <= jb.started  # b waited for a
    # identical configs: the second run gets a fresh folder instead of overwriting the first
    assert ja.run_path.endswith(run_name(TINY, "tiny")) and jb.run_path.endswith(run_name(TINY, "tiny") + "_2")
    run = load_run(jb.run_path)
    assert run.config == TINY and [r["epoch"] for r in run.metrics["history"]] == [0, 1, 2]
    assert [r["epoch"] for r in jb.records] == [0, 1, 2]  # progress reached the parent


def test_cancel_stops_a_running_job_and_saves_nothing(queue, tmp_path):
    job = queue.submit(LONG, "tiny", "alice", tmp_path)
    wait_for(lambda: len(queue.poll(job.id).records) >= 2, 60, "the first epochs")
    end = time.monotonic() + 2 * queue.orphan_timeout
    while time.monotonic() < end:  # a polled job outlives the orphan timeout
        assert queue.poll(job.id).state == "running"
        time.sleep(0.1)
    t0 = time.monotonic()
    queue.cancel(job.id)
    wait_for(lambda: not queue.poll(job.id).active, 15, "the job to stop")
    stopped = time.monotonic() - t0
    done = queue.get(job.id)
    assert done.state == "cancelled" and done.run_path is None
    assert list(tmp_path.iterdir()) == []  # no run folder, no temporary folder
    assert len(done.records) < LONG.train.epochs
    print(f"cancel took {stopped:.2f} s")


def test_too_large_jobs_are_refused_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("ANCHOR_MAX_FLOPS", raising=False)
    q = JobQueue(gpu=False)
    cap = 3 * job_cost(get_preset("cpu-demo"))["flops"]  # training and evaluation FLOP
    assert q.max_flops == pytest.approx(cap)
    big = get_preset("cpu-demo").replace(**{"train.epochs": 100, "model.gamma": 0.8})
    assert big.total_flops > cap
    with pytest.raises(JobRefused) as e:
        q.submit(big, "cpu-demo", "alice", tmp_path)
    msg = str(e.value)
    assert "FLOP" in msg and "--epochs 100" in msg and "--gamma 0.8" in msg and "python -m core train" in msg
    with pytest.raises(JobRefused, match="GPU"):
        q.submit(get_preset("paper"), "paper", "alice", tmp_path)
    assert q.counts() == (0, 0) and list(tmp_path.iterdir()) == []
    assert q.refusal(get_preset("cpu-demo"), "cpu-demo") is None  # the live preset fits
    # on a GPU server the paper preset is judged by its size alone
    assert JobQueue(gpu=True, max_flops=1e18, max_steps=10**6).refusal(get_preset("paper"), "paper") is None
    monkeypatch.setenv("ANCHOR_MAX_FLOPS", "1e14")
    monkeypatch.setenv("ANCHOR_MAX_STEPS", "1e5")
    assert default_max_flops() == 1e14 and JobQueue(gpu=False).refusal(big, "cpu-demo") is None


def test_cli_command_reproduces_the_config():
    from core.cli import build_parser, config_from_args
    cfg = get_preset("tiny").replace(**{
        "model.gamma": 0.8, "model.n_layers": 3, "train.seed": 4, "train.epochs": 4, "train.warmup_epochs": 2.0,
        "train.decay_epochs": 4.0, "task.held_out": ((4, 3), (3, 4)), "task.overrides": (),
        "task.operations": ((1, 5), (2, 1), (3, -2), (4, -9))})
    argv = shlex.split(cli_command(cfg, "tiny"))
    assert argv[:4] == ["python", "-m", "core", "train"]
    args = build_parser().parse_args(argv[3:])
    assert config_from_args(args) == cfg


def test_watchdog_cancels_jobs_nobody_polls(tmp_path):
    q = JobQueue(max_jobs=1, gpu=False, tick=0.05, orphan_timeout=1.5, max_steps=10**6, max_per_session=2)
    try:
        running = q.submit(LONG, "tiny", "closed-tab", tmp_path)
        waiting = q.submit(TINY, "tiny", "closed-tab", tmp_path)
        watched = q.submit(LONG, "tiny", "open-tab", tmp_path)
        assert q.get(waiting.id).state == "queued"

        def orphans_gone():
            q.touch_owner("open-tab")  # the other session's sidebar fragment keeps its job alive
            return not q.get(running.id).active and not q.get(waiting.id).active

        # nobody polls the closed tab's jobs (get() is not a heartbeat)
        wait_for(orphans_gone, 30, "the watchdog")
        for job in (q.get(running.id), q.get(waiting.id)):
            assert job.state == "cancelled" and "nobody watched" in job.message
        end = time.monotonic() + 2 * q.orphan_timeout
        while time.monotonic() < end:
            assert q.get(watched.id).active
            q.touch_owner("open-tab")
            time.sleep(0.1)
        assert list(tmp_path.iterdir()) == []
    finally:
        q.shutdown()


def test_a_training_process_does_not_rerun_the_app_script(queue, tmp_path, monkeypatch):
    """Under ``streamlit run``, ``__main__`` is the app script (no module spec); spawn would
    execute it again in every training process, drawing the app in bare mode there."""
    import sys
    import types

    marker = tmp_path / "the script ran in the child"
    script = tmp_path / "app.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    job = queue.submit(TINY, "tiny", "alice", tmp_path / "runs")
    done = queue.wait(job.id, timeout=180)
    assert done.state == "done", done.message
    assert not marker.exists()
    assert fake.__spec__ is None and sys.modules["__main__"] is fake  # left as it was


# -- the job is the command line ------------------------------------------------------------------
def test_the_job_runs_the_command_shown_to_users(queue, tmp_path):
    job = queue.submit(LONG, "tiny", "alice", tmp_path)
    wait_for(lambda: queue.poll(job.id).argv, 30, "the job to start")
    argv = queue.get(job.id).argv
    shown = shlex.split(cli_command(LONG, "tiny"))
    assert argv[:len(shown)] == shown  # what the page shows is what runs, plus runtime flags only
    assert argv[len(shown):] == ["--out", str(tmp_path / run_name(LONG, "tiny")), "--unique", "--threads", "1",
                                 "--progress", "jsonl", "--watch-stdin"]
    queue.cancel(job.id)
    done = queue.wait(job.id, timeout=30)
    assert done.state == "cancelled"


def test_cli_args_rebuild_any_config_field():
    """The Phase page queues grid points that change fields the Train page never touches."""
    from core.cli import build_parser, config_from_args
    cfg = get_preset("tiny").replace(**{"train.lr_peak": 3.3e-4, "train.weight_decay": 0.1, "model.gamma": 0.123456789,
                                        "train.epochs": 7, "task.split_modulus": 5, "train.eval_every": 2})
    args = cli_args(cfg, "tiny")
    assert config_from_args(build_parser().parse_args(["train", *args])) == cfg
    assert "--set" in args and not any(a.startswith("train.epochs") for a in args)


def test_cli_progress_jsonl_and_sigterm_stop_without_saving(tmp_path):
    """The child's side of the seam: JSON lines on stdout; SIGTERM stops it within a step, exit 143."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "core", "train", *cli_args(LONG, "tiny"), "--out", str(out),
                             "--threads", "1", "--progress", "jsonl"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        events = []
        for line in proc.stdout:
            events.append(json.loads(line))
            if sum(e["event"] == "eval" for e in events) >= 2:
                break
        assert events[0]["event"] == "eval" and events[0]["epoch"] == 0 and "held_out" in events[0]
        proc.send_signal(signal.SIGTERM)
        rest = [json.loads(line) for line in proc.stdout]
        assert proc.wait(timeout=60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rest[-1] == {"event": "cancelled"}
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no run folder, no temporary folder


def test_cli_progress_jsonl_reports_the_saved_folder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()  # taken: --unique saves next to it instead of failing or overwriting
    (out / "config.json").write_text("{}")
    res = subprocess.run([sys.executable, "-m", "core", "train", *cli_args(TINY, "tiny"), "--out", str(out),
                          "--unique", "--threads", "1", "--progress", "jsonl"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert [e["event"] for e in events if e["event"] != "step"] == ["eval", "eval", "eval", "done"]
    assert events[-1]["run"] == str(tmp_path / "run_2") and events[-1]["summary"]["run"] == str(tmp_path / "run_2")
    assert load_run(tmp_path / "run_2").config == TINY
    assert (out / "config.json").read_text() == "{}"


# -- hosted-demo limits (issue 11) -----------------------------------------------------------------
def test_one_training_per_session_and_a_bounded_queue(tmp_path):
    """#11: a double-click on Train queued six trainings of one session."""
    q = JobQueue(max_jobs=1, gpu=False, tick=0.05, max_steps=10**6, max_queue=2)
    try:
        first = q.submit(LONG, "tiny", "alice", tmp_path)
        with pytest.raises(SessionBusy, match="already have a training"):
            q.submit(LONG, "tiny", "alice", tmp_path)  # the second click of a double-click
        assert q.counts() == (1, 0)
        with q.request("bob"):  # one request: a Phase cell's seeds
            q.submit(LONG, "tiny", "bob", tmp_path)
            q.submit(LONG, "tiny", "bob", tmp_path)
        with pytest.raises(SessionBusy):
            q.submit(LONG, "tiny", "bob", tmp_path)  # a second request of bob's
        assert q.counts() == (1, 2)
        with pytest.raises(QueueFull, match="queue is full"):
            q.submit(LONG, "tiny", "carol", tmp_path)
        q.cancel(first.id)
        wait_for(lambda: q.counts()[1] < 2, 30, "the next job to start")
        assert q.submit(TINY, "tiny", "carol", tmp_path).state == "queued"  # room again
    finally:
        q.shutdown()


def test_the_job_cap_bounds_steps_and_evaluations_too(tmp_path, monkeypatch):
    """#12: tiny with 52,867 epochs was under the FLOP cap (≈7.9e12) and held the slot 1.5 h."""
    for name in ("ANCHOR_MAX_FLOPS", "ANCHOR_MAX_STEPS"):
        monkeypatch.delenv(name, raising=False)
    q = JobQueue(gpu=False)
    marathon = TINY.replace(**{"train.epochs": 52_867, "train.decay_epochs": 52_867})
    assert marathon.total_flops < q.max_flops  # the old estimate let it through
    cost = job_cost(marathon)
    assert cost["evaluations"] == 52_868 and cost["flops"] > q.max_flops
    with pytest.raises(JobRefused, match="evaluations"):
        q.submit(marathon, "tiny", "alice", tmp_path)
    steps_only = TINY.replace(**{"train.epochs": 2_000, "train.decay_epochs": 2_000})  # 8,000 steps, few FLOP
    assert job_cost(steps_only)["flops"] < q.max_flops and steps_only.train.total_steps > q.max_steps
    with pytest.raises(JobRefused, match="optimizer steps"):
        q.submit(steps_only, "tiny", "alice", tmp_path)
    assert q.refusal(get_preset("cpu-deep"), "cpu-deep") is None  # the presets of the Train page fit
    assert q.counts() == (0, 0) and list(tmp_path.iterdir()) == []


def test_a_job_over_the_wall_time_limit_is_stopped(tmp_path):
    q = JobQueue(max_jobs=1, gpu=False, tick=0.05, max_steps=10**6, max_job_seconds=2.0)
    try:
        job = q.submit(LONG, "tiny", "alice", tmp_path)
        done = q.wait(job.id, timeout=120)
        assert done.state == "cancelled" and "longer than this server's limit of 2 s" in done.message
        assert "python -m core train" in done.message and list(tmp_path.iterdir()) == []
    finally:
        q.shutdown()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "abc"])
def test_a_bad_limit_in_the_environment_keeps_the_default(value, monkeypatch, capsys):
    """#17: ANCHOR_MAX_FLOPS=nan or inf silently disabled the cap."""
    monkeypatch.setenv("ANCHOR_MAX_FLOPS", value)
    monkeypatch.setenv("ANCHOR_MAX_STEPS", value)
    default = 3 * job_cost(get_preset("cpu-demo"))["flops"]
    assert default_max_flops() == pytest.approx(default)
    q = JobQueue(gpu=False)
    assert q.max_flops == pytest.approx(default) and q.max_steps == 3 * get_preset("cpu-demo").train.total_steps
    assert any("ANCHOR_MAX_FLOPS" in w and "using the default" in w for w in q.warnings)
    assert "ANCHOR_MAX_STEPS" in capsys.readouterr().err
    with pytest.raises(JobRefused):
        q.submit(get_preset("cpu-demo").replace(**{"train.epochs": 100}), "cpu-demo", "alice", "unused")
    monkeypatch.setenv("ANCHOR_MAX_JOBS", "2.5")
    assert env_limit("ANCHOR_MAX_JOBS")[0] == 1 and env_limit("ANCHOR_MAX_JOBS")[1]


# -- the child's life is bound to the server (issue 11 #14, #16) ------------------------------------
def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent to reap it counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_the_training_dies_with_a_killed_server(tmp_path):
    """#14: SIGKILL of the Streamlit server left its training running to the end."""
    runs = tmp_path / "runs"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from core.presets import get_preset
        from ui.jobs import JobQueue
        long = get_preset("tiny").replace(**{{"train.epochs": 5000, "train.decay_epochs": 5000}})
        q = JobQueue(max_jobs=1, gpu=False, tick=0.05, max_steps=10**6)
        job = q.submit(long, "tiny", "alice", {str(runs)!r})
        while not q.poll(job.id).records:
            time.sleep(0.05)
        print(q._jobs[job.id]._proc.pid, flush=True)
        time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()  # SIGKILL: no handler, no atexit, no shutdown() runs
        parent.wait(timeout=30)
        wait_for(lambda: not _alive(child), 60, "the orphaned training to stop")
        assert not runs.exists() or list(runs.iterdir()) == []  # it saved nothing
    finally:
        if parent.poll() is None:
            parent.kill()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)


def test_jobs_still_run_after_the_module_is_reloaded(tmp_path):
    """#16: after a file edit (Streamlit reloads the modules) every training failed with
    "Can't pickle <function _worker>: it's not the same object as ui.jobs._worker".
    Run in a fresh interpreter, so the reload does not leak into the other tests."""
    script = textwrap.dedent(f"""
        import importlib, sys
        sys.path.insert(0, {str(ROOT)!r})
        import ui.jobs as jobs
        from core.presets import get_preset
        old = jobs.JobQueue(max_jobs=1, gpu=False, tick=0.05)  # the server's queue, made before the edit
        importlib.reload(jobs)
        new = jobs.JobQueue(max_jobs=1, gpu=False, tick=0.05)
        for i, q in enumerate((old, new)):
            job = q.submit(get_preset("tiny"), "tiny", "alice", {str(tmp_path)!r})
            done = q.wait(job.id, timeout=240)
            print(done.state, done.message)
            q.shutdown()
        """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["done None", "done None"], res.stdout + res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_L1_g0.5_s0", "tiny_L1_g0.5_s0_2"]


def test_the_command_shown_to_visitors_hides_the_servers_paths(tmp_path, monkeypatch):
    """A public demo shows how a run was trained, not where the server keeps its files."""
    from core.presets import get_preset
    from ui.jobs import Job

    monkeypatch.chdir(tmp_path)
    cfg = get_preset("tiny")
    inside = Job(id="a", owner="o", preset="tiny", config=cfg, runs_dir=tmp_path / "runs", name="n",
                 argv=["python", "-m", "core", "train", "--out", str(tmp_path / "runs" / "n")])
    assert inside.command.endswith("--out runs/n")
    elsewhere = tmp_path / "srv" / "runs"
    monkeypatch.chdir("/")
    outside = Job(id="b", owner="o", preset="tiny", config=cfg, runs_dir=elsewhere, name="n",
                  argv=["python", "-m", "core", "train", "--out", str(elsewhere / "n")])
    assert str(tmp_path) not in outside.command and "'$ANCHOR_RUNS_DIR/n'" in outside.command


def test_a_finished_job_shows_the_run_cards_command_not_a_server_path():
    """Newcomer: the job line showed ``--out '$ANCHOR_RUNS_DIR/NAME'`` (single-quoted, so a pasted
    command does not expand it) and the run card below a different command. A finished job shows
    the run card's command (``reproduce_command`` with the job's one thread), relative to the
    repository root."""
    from ui.jobs import Job, reproduce_command

    cfg = get_preset("cpu-demo")
    job = Job(id="j", owner="o", preset="cpu-demo", config=cfg, runs_dir=Path("/srv/secret/runs"),
              name="cpu-demo_L2_g0.5_s0", state="done", run_path="/srv/secret/runs/cpu-demo_L2_g0.5_s0_2")
    cmd = job.reproduce
    assert cmd == reproduce_command(cfg, "cpu-demo_L2_g0.5_s0_2", 1)
    assert "--out runs/cpu-demo_L2_g0.5_s0_2" in cmd and "--threads 1" in cmd
    assert "$" not in cmd and "'" not in cmd and "/srv" not in cmd
    assert Job(id="k", owner="o", preset="cpu-demo", config=cfg, runs_dir=Path("/x"), name="n").reproduce is None


def test_shell_lines_cut_only_between_flags_and_keep_the_command():
    import shlex

    from ui.jobs import shell_lines
    cmd = ("python -m core train --preset paper-replica --gamma 0.8 --seed 2 --set train.precision=bf16 --half"
           " --checkpoint-every 5 --out runs/paper-replica_bf16_L2_g0.8_s2 --threads 2")
    out = shell_lines(cmd)
    lines = out.split(" \\\n  ")
    assert len(lines) > 1 and all(line.startswith("--") for line in lines[1:])
    assert all(len(line) <= 56 for line in lines if " --" in line)
    assert shlex.split(out.replace("\\\n", " ")) == shlex.split(cmd)
    assert shell_lines("python -m core eval RUN") == "python -m core eval RUN"

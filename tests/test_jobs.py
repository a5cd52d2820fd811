"""The training job queue (ui/jobs.py): FIFO under a concurrency cap, cancellation, admission
refusals and the orphan watchdog. Jobs are real spawned processes training the ``tiny`` preset."""
from __future__ import annotations

import shlex
import time

import pytest
import torch

from core.presets import get_preset
from core.runs import load_run
from ui.jobs import JobQueue, JobRefused, cli_command, default_max_flops, run_name

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
    q = JobQueue(max_jobs=1, gpu=False, tick=0.05, orphan_timeout=1.5)  # every test keeps polling
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
    cap = 3 * get_preset("cpu-demo").total_flops
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
    assert JobQueue(gpu=True, max_flops=1e18).refusal(get_preset("paper"), "paper") is None
    monkeypatch.setenv("ANCHOR_MAX_FLOPS", "1e14")
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
    q = JobQueue(max_jobs=1, gpu=False, tick=0.05, orphan_timeout=1.5)
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

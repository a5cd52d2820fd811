"""The Train button's panel: submitting to the shared job queue (``ui.jobs``), its refusals,
the queue caption, live progress and curves, and Cancel.

Every refusal is shown with ``st.error``, never raised."""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from core.config import RunConfig

from . import state
from .jobs import shell_lines
from .loaders import job_queue, runs_dir
from .run_report import curves

def _submit_job(prefix: str, cfg: RunConfig | None, preset: str) -> None:
    """Train's click callback: queue the job, or keep the refusal for the page to show."""
    if cfg is None:
        return
    try:
        st.session_state[f"{prefix}_job"] = job_queue().submit(cfg, preset, state.owner(), runs_dir()).id
    except ValueError as e:  # JobRefused, also from a ui.jobs reloaded after a file edit
        st.session_state[f"{prefix}_refused"] = str(e)


def size_refusal(cfg: RunConfig | None, preset: str) -> str | None:
    """Why this server's queue would refuse ``cfg`` by its size (``JobQueue.refusal``), else None."""
    return job_queue().refusal(cfg, preset) if cfg is not None else None


def job_panel(prefix: str, cfg: RunConfig | None, preset: str) -> None:
    """Train button, admission errors, queue position, live progress and Cancel.

    The queue allows one queued-or-running training per session (``JobQueue.max_per_session``):
    the button is disabled while this session has one, and a second click that arrives before
    the page is redrawn (a double-click) gets the queue's refusal as a message, next to the job
    that is running. Every refusal is shown with ``st.error``, never raised."""
    q = job_queue()
    key = f"{prefix}_job"
    job = q.get(st.session_state[key]) if st.session_state.get(key) else None
    mine = [j for j in q.touch_owner(state.owner()) if j.active]
    if (job is None or not job.active) and mine:
        job = mine[-1]  # submitted by a click whose redraw was cut short
        st.session_state[key] = job.id
    # A job too large for this server is said before the click, and its button is disabled (the
    # queue still refuses it on submission: a click can race the redraw).
    too_large = size_refusal(cfg, preset)
    c1, c2 = st.columns([1, 4])
    # Submitted in the click callback, before the rerun: the button is disabled in that rerun.
    c1.button("Train", type="primary", key=f"{prefix}_start", disabled=cfg is None or bool(mine) or bool(too_large),
              on_click=_submit_job, args=(prefix, cfg, preset))
    refused = st.session_state.pop(f"{prefix}_refused", None)
    with c2:
        _queue_caption()
    if too_large and not refused:
        st.warning(too_large)
    if refused:
        st.error(refused)
        if job is None or not job.active:
            return  # the refusal replaces the previous job's status
    if job is None:
        return
    if job.active:
        _live_job(prefix, job.id)
    elif job.state == "done":
        st.success(f"Finished and saved as {Path(job.run_path or '').name}: its verdict is shown below.")
        if job.reproduce:  # the run card below shows the same command
            st.caption("Train it again from the repository root with:")
            st.code(shell_lines(job.reproduce), language="bash", wrap_lines=True)
    elif job.state == "cancelled":
        st.warning(f"Training stopped ({job.message}). Nothing was saved.")
    else:
        st.error(f"Training failed: {job.message}")


def queue_text(counts: tuple[int, int]) -> str:
    q = job_queue()
    running, waiting = counts
    return (f"Server queue: {running} training, {waiting} waiting; at most {q.max_jobs} at once and"
            f" {q.max_queue} waiting, one per visitor; each job up to ≈{q.max_flops:.1e} FLOP,"
            f" {q.max_steps:,} steps and {q.max_job_seconds / 60:.0f} min. Training runs in a background process.")


QUEUE_CAPTION_EVERY_S = 5.0


def _queue_caption() -> None:
    """The server queue's caption, refreshed every ``QUEUE_CAPTION_EVERY_S`` seconds by a
    fragment that redraws the caption alone: with many sessions on the page it must stay cheap
    (no page redraw, no chart). This session's own job redraws the page itself when it ends
    (``_live_job``), and a job holds its slot until its process has exited, so the page
    redrawn then never shows the finished job as still training."""

    @st.fragment(run_every=QUEUE_CAPTION_EVERY_S)
    def caption() -> None:
        queue_caption_body()

    caption()


def queue_caption_body() -> None:
    """Body of the caption fragment: the queue's counts now."""
    st.caption(queue_text(job_queue().counts()))


LIVE_CURVES_EVERY_S = 3.0


def _live_job(prefix: str, job_id: str) -> None:
    """Progress bar and Cancel, refreshed every second, and the live curves, every
    ``LIVE_CURVES_EVERY_S`` seconds (drawing two charts is the expensive part of a refresh)."""
    q = job_queue()

    @st.fragment(run_every=1.0)
    def live() -> None:
        job = q.poll(job_id)  # heartbeat: the watchdog cancels jobs nobody polls
        if job is None or not job.active:
            if job is not None and job.state == "done":
                st.session_state[f"{prefix}_open_request"] = job.run_path
            st.rerun()
        if job.state == "queued":
            st.info(f"Waiting in the queue: position {q.position(job_id) or 1}. It starts by itself when a "
                    "training slot frees up; keep this tab open.")
        else:
            t = job.config.train
            epoch = job.steps[-1]["epoch"] if job.steps else (job.records[-1]["epoch"] if job.records else 0)
            text = f"epoch {epoch:.1f} of {t.epochs}"
            if job.steps:
                text += f" · loss {job.steps[-1]['loss']:.3f}"
            if job.started:
                text += f" · {time.time() - job.started:.0f} s"
            if job.state == "cancelling":
                text = "stopping… " + text
            st.progress(job.progress, text=text)
        st.button("Cancel", key=f"{prefix}_cancel", on_click=q.cancel, args=(job_id,),
                  disabled=job.state == "cancelling")

    @st.fragment(run_every=LIVE_CURVES_EVERY_S)
    def live_curves() -> None:
        job = q.get(job_id)
        if job is not None and job.active and job.records:
            curves(job.records, job.config.task, job.steps, epochs=job.config.train.epochs)

    live()
    live_curves()

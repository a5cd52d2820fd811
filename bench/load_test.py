"""Load test of the app: N browser sessions at once, every page, a training queued by each.

    python bench/load_test.py --sessions 20                 # starts the app itself (README command)
    python bench/load_test.py --sessions 6 --url http://127.0.0.1:8501   # an app already running

Loopback only and bounded (``--budget`` seconds, 300 by default, for the whole browser part).
Without ``--url`` it starts ``streamlit run app.py`` headless on a free 127.0.0.1 port, with runs
saved into a temporary folder, and stops it at the end. Then it opens ``--sessions`` Playwright
Chromium contexts (one browser session each, Debian's ``/usr/bin/chromium``), staggered by
``--stagger`` seconds; each one

1. opens the app and waits for the first page's title (time to first render),
2. goes to Train, picks the ``tiny`` preset and clicks **Train** once; the click is
   *acknowledged* when the page shows the live progress, the queue position or a refusal
   message (queue full, one per visitor) within 60 s,
3. visits every other page (its title must appear), comes back to Train and waits for its
   training to finish (until the budget ends).

Meanwhile a thread GETs ``/`` and ``/_stcore/health`` every 0.5 s (worst latency, how many took
over 1 s) and samples the resident memory of the server and of its children (the trainings).
It prints one line per figure (``--json`` for one JSON object): errors (a page error box,
Streamlit's exception box, a failed step or a traceback in the server log), time to first
render (median, max), worst GET, clicks acknowledged, trainings finished, peak RSS, and the
processes of the server still alive 10 s after it was stopped (should be none).
No figure is asserted: timing on a shared machine is not a test (bench/README.md).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
PAGES = {"Lesson": "Lesson", "The puzzle": "The puzzle", "Train": "Train a model",
         "Inside the model": "Inside the model", "Phase diagram": "Phase diagram"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (Linux /proc; 0 when gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Monitor(threading.Thread):
    """GETs the app every ``every`` seconds and samples the server's memory until stopped."""

    def __init__(self, url: str, server_pid: int | None, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.url, self.server_pid, self.every = url, server_pid, every
        self.latencies: list[float] = []
        self.slow: list[tuple[float, str, float]] = []  # (seconds since start, path, latency) of GETs over 1 s
        self.t0 = time.perf_counter()
        self.failed = 0
        self.peak_server = self.peak_total = 0.0
        self.seen: set[int] = set()
        self.cpu: dict[str, dict[int, float]] = {"server": {}, "trainings": {}, "browsers": {}}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for path in ("/", "/_stcore/health"):
                t0 = time.perf_counter()
                try:
                    urllib.request.urlopen(self.url + path, timeout=120).read()
                    took = time.perf_counter() - t0
                    self.latencies.append(took)
                    if took > 1:
                        self.slow.append((round(t0 - self.t0, 1), path, round(took, 2)))
                except OSError:
                    self.failed += 1
            if self.server_pid:
                kids = descendants(self.server_pid)
                self.seen.update(kids)
                server = rss_mib(self.server_pid)
                self.peak_server = max(self.peak_server, server)
                self.peak_total = max(self.peak_total, server + sum(rss_mib(k) for k in kids))
                self.cpu["server"][self.server_pid] = cpu_seconds(self.server_pid)
                for k in kids:
                    self.cpu["trainings"][k] = max(self.cpu["trainings"].get(k, 0.0), cpu_seconds(k))
            for k in descendants(os.getpid()):
                self.cpu["browsers"][k] = max(self.cpu["browsers"].get(k, 0.0), cpu_seconds(k))
            self.halt.wait(self.every)


async def session(browser, url: str, i: int, deadline: float, result: dict) -> None:
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(120_000)
    nav = page.get_by_test_id("stSidebar").get_by_test_id("stPageLink")

    async def visit(title: str) -> None:
        result["step"] = f"open {title}"
        await nav.get_by_text(title, exact=True).click()
        await expect(page.locator("h1").filter(has_text=PAGES[title]).first).to_be_visible(timeout=120_000)
        await check_errors(title)

    async def check_errors(where: str) -> None:
        n = await page.locator('[data-testid="stException"]').count()
        if n:
            result["errors"].append(f"session {i}: exception box on {where}")

    try:
        t0 = time.perf_counter()
        result["step"] = "first render"
        await page.goto(url)
        await expect(page.locator("h1").first).to_be_visible(timeout=180_000)
        result["ttfr"] = time.perf_counter() - t0
        await visit("Train")
        result["step"] = "choose the tiny preset"
        await page.locator('[data-testid="stSelectbox"]').filter(has_text="Preset").click()
        await page.get_by_role("option", name="tiny", exact=True).click()
        await expect(page.get_by_text("× 2 epochs").first).to_be_visible()
        t_click = time.perf_counter()
        result["step"] = "click Train"
        await page.get_by_role("button", name="Train", exact=True).click()
        ack = page.locator('[data-testid="stProgress"]').or_(page.get_by_text("Waiting in the queue")).or_(
            page.get_by_text("queue is full")).or_(page.get_by_text("already have a training")).or_(
            page.get_by_text("Finished and saved as"))
        try:
            await expect(ack.first).to_be_visible(timeout=60_000)
            result["ack"] = time.perf_counter() - t_click
            refused = await page.get_by_text("queue is full").count() + await page.get_by_text(
                "already have a training").count()
            result["outcome"] = "refused with a message" if refused else "queued"
        except AssertionError:
            result["outcome"] = "not acknowledged in 60 s"
        for title in ("The puzzle", "Inside the model", "Phase diagram", "Lesson", "Train"):
            if time.perf_counter() > deadline:
                break
            await visit(title)
        if result["outcome"] == "queued":
            left = max(deadline - time.perf_counter(), 1)
            try:
                await expect(page.get_by_text("Finished and saved as").first).to_be_visible(timeout=left * 1000)
                result["finished"] = True
            except AssertionError:
                pass
        await check_errors("the end")
    except Exception as e:  # a failed step is a figure of the run, not a crash of the bench
        result["errors"].append(f"session {i}, step '{result.get('step')}': {type(e).__name__}:"
                                f" {str(e).splitlines()[0][:120]}")
    finally:
        await context.close()


async def drive(url: str, n: int, stagger: float, budget: float) -> list[dict]:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=120_000)  # a loaded 2-core machine: every wait is generous

    results = [{"errors": [], "ttfr": None, "ack": None, "outcome": None, "finished": False} for _ in range(n)]
    deadline = time.perf_counter() + budget
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        async def one(i: int) -> None:
            await asyncio.sleep(i * stagger)
            await session(browser, url, i, deadline, results[i])

        try:
            await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), timeout=budget + 60)
        except asyncio.TimeoutError:
            for r in results:
                if r["outcome"] is None:
                    r["errors"].append("session did not end within the budget")
        await browser.close()
    return results


def start_server(port: int, runs: str, log: Path, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", *extra]
    env = {**os.environ, "ANCHOR_RUNS_DIR": runs, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 120
    while time.monotonic() < end:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            break
    proc.kill()
    sys.exit("the app did not start:\n" + log.read_text()[-3000:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--url", help="an app already running (loopback); default: start one")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds for the browser part (default 300)")
    ap.add_argument("--stagger", type=float, default=0.25, help="seconds between session starts")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--server-option", action="append", default=[], metavar="NAME=VALUE",
                    help="extra streamlit option for the started app, e.g. runner.postScriptGC=true (A/B runs)")
    args = ap.parse_args()
    if args.url and not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        sys.exit("--url must be a loopback address (this bench never loads a remote server)")
    tmp = Path(tempfile.mkdtemp(prefix="anchor-load-"))
    load_before = os.getloadavg()
    proc = None
    url = args.url
    if url is None:
        extra = [a for o in args.server_option for a in ("--" + o.split("=", 1)[0], o.split("=", 1)[1])]
        proc = start_server(free_port(), str(tmp / "runs"), tmp / "streamlit.log", extra)
        url = f"http://127.0.0.1:{proc.args[proc.args.index('--server.port') + 1]}"
    monitor = Monitor(url, proc.pid if proc else None)
    monitor.start()
    t0 = time.perf_counter()
    results = asyncio.run(drive(url, args.sessions, args.stagger, args.budget))
    wall = time.perf_counter() - t0
    monitor.halt.set()
    monitor.join(timeout=130)
    leftovers: list[int] = []
    log_errors = 0
    if proc is not None:
        monitor.seen.update(descendants(proc.pid))
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        time.sleep(10)
        leftovers = sorted(pid for pid in monitor.seen if alive(pid))
        log_errors = (tmp / "streamlit.log").read_text(errors="replace").count("Traceback")
    ttfr = [r["ttfr"] for r in results if r["ttfr"] is not None]
    lat = monitor.latencies
    outcomes = [r["outcome"] or "no click" for r in results]
    report = {
        "sessions": args.sessions, "wall_s": round(wall, 1), "cpus": os.cpu_count(),
        "server_options": args.server_option,
        "load_average_before": [round(x, 1) for x in load_before],
        "errors": sum(len(r["errors"]) for r in results) + log_errors,
        "error_lines": [e for r in results for e in r["errors"]][:20],
        "server_log_tracebacks": log_errors,
        "first_render_s": {"median": round(statistics.median(ttfr), 2) if ttfr else None,
                           "max": round(max(ttfr), 2) if ttfr else None, "n": len(ttfr)},
        "http_get": {"n": len(lat), "worst_s": round(max(lat), 2) if lat else None,
                     "median_s": round(statistics.median(lat), 3) if lat else None,
                     "over_1s": sum(x > 1 for x in lat), "failed": monitor.failed,
                     "slow_at_s_path_latency": monitor.slow[:15]},
        "train_clicks": {"acknowledged": sum(r["ack"] is not None for r in results),
                         "queued": outcomes.count("queued"),
                         "refused_with_message": outcomes.count("refused with a message"),
                         "not_acknowledged": args.sessions - sum(r["ack"] is not None for r in results),
                         "ack_max_s": round(max((r["ack"] for r in results if r["ack"] is not None), default=0), 2)},
        "trainings_finished": sum(r["finished"] for r in results),
        "cpu_seconds": {k: round(sum(v.values()), 1) for k, v in monitor.cpu.items()},
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        "peak_rss_mib": {"server": round(monitor.peak_server), "server_and_trainings": round(monitor.peak_total)},
        "leftover_processes": leftovers,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"sessions {report['sessions']}, browser part {report['wall_s']} s; {report['cpus']} CPUs, load average"
          f" before {report['load_average_before']}; server options {args.server_option or 'as configured'}")
    print(f"errors: {report['errors']} ({report['server_log_tracebacks']} tracebacks in the server log)")
    for line in report["error_lines"]:
        print(f"  {line}")
    f = report["first_render_s"]
    print(f"time to first render: median {f['median']} s, max {f['max']} s ({f['n']} sessions rendered)")
    h = report["http_get"]
    print(f"HTTP GET during the run: worst {h['worst_s']} s, median {h['median_s']} s, {h['over_1s']} of {h['n']}"
          f" over 1 s, {h['failed']} failed")
    if h["slow_at_s_path_latency"]:
        print("  slow GETs (s after start, path, latency s): " + ", ".join(map(str, h["slow_at_s_path_latency"])))
    c = report["train_clicks"]
    print(f"Train clicks acknowledged: {c['acknowledged']} of {args.sessions} ({c['queued']} queued,"
          f" {c['refused_with_message']} refused with a message; slowest {c['ack_max_s']} s)")
    print(f"trainings finished within the budget: {report['trainings_finished']}")
    cpu = report["cpu_seconds"]
    print(f"CPU seconds used during the run: server {cpu['server']}, trainings {cpu['trainings']}, the test's"
          f" browsers {cpu['browsers']} (of {round(wall * (os.cpu_count() or 1))} available); load average after"
          f" {report['load_average_after']}")
    r = report["peak_rss_mib"]
    print(f"peak RSS: server {r['server']} MiB, server + trainings {r['server_and_trainings']} MiB")
    print(f"processes left after shutdown: {len(leftovers)} {leftovers if leftovers else ''}")


if __name__ == "__main__":
    main()

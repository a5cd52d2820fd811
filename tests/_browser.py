"""Shared setup of the browser tests: ``streamlit run app.py`` on a free port, and a page of
Debian's Chromium driven by playwright. Both skip the calling test when Chromium or
playwright is missing."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def require_browser() -> None:
    """Skip the test unless /usr/bin/chromium and the playwright package are installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: the browser test needs Debian's chromium package")
    pytest.importorskip("playwright.sync_api", reason="the browser test needs the playwright package")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(log_dir: Path, env: dict[str, str], script: str | Path = "app.py") -> Iterator[str]:
    """Run ``streamlit run app.py`` (or ``script``, a path from the repository root or absolute)
    with ``env`` added to the environment; yield its URL once
    ``/_stcore/health`` answers (fail with the server log after 90 s), stop it afterwards.
    The log is ``log_dir/streamlit.log``."""
    port = free_port()
    log_path = Path(log_dir) / "streamlit.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > end:
                pytest.fail("streamlit did not start:\n" + log_path.read_text())
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def open_page(playwright: Any, width: int, height: int, timeout_ms: int) -> tuple[Any, Any]:
    """``(browser, page)``: Chromium with a ``width`` × ``height`` page whose actions and
    ``expect`` assertions wait up to ``timeout_ms``."""
    from playwright.sync_api import expect

    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(timeout_ms)
    expect.set_options(timeout=timeout_ms)
    return browser, page


def screenshot_dir(tmp_path: Path) -> Path:
    """$ANCHOR_SCREENSHOT_DIR, or ``tmp_path/screenshots``; created."""
    shots = Path(os.environ.get("ANCHOR_SCREENSHOT_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots

"""The "Inside the model" page in a real browser: ``streamlit run app.py`` and Debian's Chromium.

Opens the page on two runs made here (tiny 2-layer models, γ 0.3 and 0.9, with training
snapshots), visits all seven views, checks that every chart was drawn with a real size and
that no exception or error is shown, that Streamlit's chart toolbar offers a PNG download,
and that the large-fonts toggle keeps the page working. Saves a screenshot per view (to
$ANCHOR_SCREENSHOT_DIR, or a tmp folder) and prints how long each view took to appear.
Skipped when /usr/bin/chromium or playwright is missing.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_page_inside import _run

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
LONG = 90_000  # ms: generous, the machine may be busy
VIEWS = ["Attention & flow", "Fused vectors", "Same-output similarity", "Condensation", "Embeddings", "Spectra",
         "Over training"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: the browser test needs Debian's chromium package")
    pytest.importorskip("playwright.sync_api", reason="the browser test needs the playwright package")
    pre, mine = tmp_path / "pretrained", tmp_path / "runs"
    _run(pre, "tiny_L2_g0.3_s0", 0.3)
    _run(pre, "tiny_L2_g0.9_s0", 0.9, condensed=True)
    mine.mkdir()
    port = free_port()
    env = {**os.environ, "ANCHOR_PRETRAINED_DIR": str(pre), "ANCHOR_RUNS_DIR": str(mine), "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
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
                pytest.fail("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text())
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_every_view_draws_in_the_browser(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("ANCHOR_SCREENSHOT_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 3000})
        page.set_default_timeout(LONG)
        expect.set_options(timeout=LONG)

        def settle() -> None:
            page.wait_for_timeout(500)
            expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0)
            page.wait_for_timeout(1500)  # let vega finish drawing

        def check(name: str) -> None:
            charts = page.locator('[data-testid="stVegaLiteChart"]')
            assert charts.count() >= 2, f"{name}: fewer than two charts"
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box and box["width"] > 50 and box["height"] > 50, f"{name}: chart {i} drawn at {box}"
            assert page.locator('[data-testid="stException"]').count() == 0, f"{name}: exception shown"
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0, f"{name}: error shown"
            page.screenshot(path=str(shots / f"inside_{name.replace(' ', '_').replace('&', 'and')}.png"))

        page.goto(server + "/Inside_the_model")
        expect(page.get_by_role("heading", name="Inside the model: why one model reasons and another memorizes")
               ).to_be_visible()
        settle()
        expect(page.get_by_text("tiny_L2_g0.9_s0 (γ 0.9)").first).to_be_visible()
        check(VIEWS[0])
        # Streamlit's own chart toolbar offers the PNG (hover a chart to show it)
        page.locator('[data-testid="stVegaLiteChart"]').first.hover()
        expect(page.get_by_role("button", name="Download as PNG").first).to_be_attached()
        timings = {}
        for name in VIEWS[1:]:
            t = time.perf_counter()
            page.get_by_role("tab", name=name).click()
            settle()
            timings[name] = time.perf_counter() - t - 2.0  # minus the fixed waits in settle()
            check(name)
        page.get_by_text("Large fonts (projector)").click()
        settle()
        check("Over training large fonts")
        page.get_by_role("tab", name=VIEWS[0]).click()
        settle()
        check("Attention & flow large fonts")
        browser.close()
    print("\nseconds from tab click to drawn (cold caches):",
          ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))

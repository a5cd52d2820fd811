"""The "Inside the model" page in a real browser: ``streamlit run app.py`` and Debian's Chromium.

Opens the page on two runs made here (tiny 2-layer models, γ 0.3 and 0.9, with training
snapshots), visits all seven views, checks that every chart was drawn with a real size and
that no exception or error is shown, that Streamlit's chart toolbar offers a PNG download,
and that the large-fonts toggle keeps the page working. Saves a screenshot per view (to
$ANCHOR_SCREENSHOT_DIR, or a tmp folder) and prints how long each view took to appear.
Skipped when /usr/bin/chromium or playwright is missing.
"""
from __future__ import annotations

import time

import pytest

from _browser import open_page, require_browser, screenshot_dir, streamlit_server
from test_page_inside import _run

LONG = 90_000  # ms: generous, the machine may be busy
VIEWS = ["Attention & flow", "Answers by position", "Fused vectors", "Same-output similarity", "Condensation", "Embeddings", "Spectra",
         "Over training"]


@pytest.fixture
def server(tmp_path):
    require_browser()
    pre, mine = tmp_path / "pretrained", tmp_path / "runs"
    _run(pre, "tiny_L2_g0.3_s0", 0.3)
    _run(pre, "tiny_L2_g0.9_s0", 0.9, condensed=True)
    mine.mkdir()
    with streamlit_server(tmp_path, {"ANCHOR_PRETRAINED_DIR": str(pre), "ANCHOR_RUNS_DIR": str(mine)}) as url:
        yield url


def test_every_view_draws_in_the_browser(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = screenshot_dir(tmp_path)
    with sync_playwright() as p:
        browser, page = open_page(p, 1500, 3000, LONG)

        def settle() -> None:
            page.wait_for_timeout(500)
            expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0)
            page.wait_for_timeout(1500)  # let vega finish drawing

        def check(name: str) -> None:
            # charts of the visible tab only (inactive tab panels are hidden, their charts have no box)
            charts = page.get_by_role("tabpanel").locator('[data-testid="stVegaLiteChart"]')
            # a busy machine may still be computing the view: wait for its charts, then measure them
            expect(charts.nth(1)).to_be_visible(timeout=LONG)
            page.wait_for_timeout(1000)
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


def test_a_shared_link_restores_the_view_in_a_fresh_browser(server):
    """Issue 9: a link with ?runs=…&view=… opened in a browser that never saw the app opens those two
    runs on that tab; a hostile value is one warning and the default view."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser, page = open_page(p, 1500, 3000, LONG)
        page.goto(server + "/Inside_the_model?runs=tiny_L2_g0.3_s0,tiny_L2_g0.9_s0&view=spectra")
        expect(page.get_by_role("tab", name="Spectra", selected=True)).to_be_visible(timeout=LONG)
        expect(page.get_by_text("tiny_L2_g0.3_s0", exact=False).first).to_be_visible()
        expect(page.get_by_text("tiny_L2_g0.9_s0", exact=False).first).to_be_visible()
        assert page.locator('[data-testid="stException"]').count() == 0
        fresh = browser.new_context().new_page()  # no cookies, no session: only the link
        fresh.goto(server + "/Inside_the_model?runs=../../etc/passwd&view=<script>")
        expect(fresh.get_by_role("tab", name=VIEWS[0], selected=True)).to_be_visible(timeout=LONG)
        expect(fresh.locator('[data-testid="stAlert"]').first).to_be_visible()
        assert fresh.locator('[data-testid="stException"]').count() == 0
        assert "root:" not in fresh.locator('[data-testid="stMain"]').inner_text()  # the value named, never read
        browser.close()

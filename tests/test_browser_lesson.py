"""The Lesson in a real browser, as a lecturer projects it: ``streamlit run app.py`` and Debian's
Chromium at 1280×720 with ``?presenter=1``, on the committed runs of pretrained/lesson.json.

Predicts the inferential answer and reveals it (the verdict sentence must match the runs), then
walks every step with the → key and checks each screen: the sidebar folded away, no exception or
error, every chart drawn at a real size and inside the window, nothing wider than the window,
nothing below the fold (one screen per step), no text cut by its column, chart and body
text ≥ 20 px. Then opens one step
on a phone (390×844): nothing wider than the screen. Saves a screenshot per step (to
$ANCHOR_SCREENSHOT_DIR, or a tmp folder). Skipped when /usr/bin/chromium or playwright is missing.
"""
from __future__ import annotations

import json

import pytest

from _browser import ROOT, open_page, require_browser, screenshot_dir, streamlit_server

LONG = 120_000  # ms: generous, the machine may be busy (the probes of two runs are computed cold)
W, H = 1280, 720


@pytest.fixture
def server(tmp_path):
    require_browser()
    (tmp_path / "runs").mkdir()
    with streamlit_server(tmp_path, {"ANCHOR_RUNS_DIR": str(tmp_path / "runs")}) as url:
        yield url


def _expected_reveal() -> str:
    """What the reveal must say to someone who predicted the composition, from the runs."""
    names = json.loads((ROOT / "pretrained" / "lesson.json").read_text())
    last = json.loads((ROOT / "pretrained" / names["inferential"] / "metrics.json").read_text())["history"][-1]
    held = next(iter(last["held_out"].values()))
    return "You were right." if held["inferential"] >= held["symmetric"] else "Not this time."


def test_lesson_in_presenter_mode_fits_a_projector(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from ui.lesson import STEPS

    shots = screenshot_dir(tmp_path)
    with sync_playwright() as p:
        browser, page = open_page(p, W, H, LONG)

        def settle() -> None:
            page.wait_for_timeout(500)
            expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0)
            page.wait_for_timeout(1500)  # let vega finish drawing

        def check_screen(n: int) -> None:
            assert page.locator('[data-testid="stException"]').count() == 0, f"step {n}: exception shown"
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0, f"step {n}: error shown"
            left = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["x"]
            assert left < 150, f"step {n}: the sidebar is open in presenter mode (content starts at {left})"
            charts = page.locator('[data-testid="stVegaLiteChart"]')
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box and box["width"] >= 250 and box["height"] >= 150, f"step {n}: chart {i} drawn at {box}"
                assert box["x"] >= 0 and box["x"] + box["width"] <= W + 1, f"step {n}: chart {i} cut: {box}"
            wide = page.evaluate("() => document.scrollingElement.scrollWidth")
            assert wide <= W, f"step {n}: the page is {wide} px wide"
            tall = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
            assert tall <= H + 4, f"step {n}: {tall - H} px below the fold"
            # text cut by its column ("Open the Phase diagram pa"): a visible text element wider
            # inside than its box, or running past the right edge of its column
            cut = page.evaluate("""() => [...document.querySelectorAll(
                '[data-testid=stMain] p, [data-testid=stMain] span, [data-testid=stMain] a')]
                .filter(e => e.textContent.trim() && e.clientWidth > 0 && !e.closest('[data-testid=stVegaLiteChart]'))
                .filter(e => {
                    const col = e.closest('[data-testid=stColumn]');
                    const r = e.getBoundingClientRect();
                    return e.scrollWidth > e.clientWidth + 1 || (col && r.right > col.getBoundingClientRect().right + 1);
                }).map(e => e.textContent.slice(0, 60))""")
            assert not cut, f"step {n}: text cut by its column: {cut}"
            small = page.evaluate("""() => [...document.querySelectorAll(
                '[data-testid=stVegaLiteChart] svg text, [data-testid=stMarkdownContainer] p')]
                .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0)
                .map(t => parseFloat(getComputedStyle(t).fontSize)).filter(s => s < 19.5)""")
            assert not small, f"step {n}: text below 20 px ({sorted(set(small))})"
            page.screenshot(path=str(shots / f"lesson_presenter_{n}.png"))

        page.goto(server + "/?presenter=1")
        expect(page.get_by_role("heading", name=f"1. {STEPS[0][1]}")).to_be_visible()
        settle()
        check_screen(1)
        page.get_by_text("70 (x−10", exact=False).click()
        page.get_by_role("button", name="Reveal the answer").click()
        expect(page.get_by_role("heading", name=f"2. {STEPS[1][1]}")).to_be_visible()
        expect(page.get_by_text(_expected_reveal())).to_be_visible()
        assert "step=2" in page.url
        for n in range(2, len(STEPS) + 1):
            if n > 2:
                page.locator("body").press("ArrowRight")  # the Next button's keyboard shortcut
                expect(page.get_by_role("heading", name=f"{n}. {STEPS[n - 1][1]}")).to_be_visible()
            settle()
            if n in (2, 3, 4, 5, 6, 7):
                expect(page.locator('[data-testid="stVegaLiteChart"]').first).to_be_visible()
                page.wait_for_timeout(1000)
            check_screen(n)
        page.locator("body").press("ArrowLeft")
        expect(page.get_by_role("heading", name=f"{len(STEPS) - 1}. {STEPS[-2][1]}")).to_be_visible()

        # a phone: the phase diagram (the widest figure) fits the screen
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.goto(server + "/?step=7")
        expect(phone.get_by_role("heading", name=f"Lesson · 7. {STEPS[6][1]}")).to_be_visible()
        expect(phone.locator('[data-testid="stVegaLiteChart"]').nth(1)).to_be_visible()
        phone.wait_for_timeout(2000)
        for i in range(phone.locator('[data-testid="stVegaLiteChart"]').count()):
            box = phone.locator('[data-testid="stVegaLiteChart"]').nth(i).bounding_box()
            assert box["x"] + box["width"] <= 390 + 1, f"phone: chart {i} runs off the screen: {box}"
        assert phone.evaluate("() => document.scrollingElement.scrollWidth") <= 390
        phone.screenshot(path=str(shots / "lesson_phone_7.png"))
        browser.close()


def test_train_page_in_presenter_mode_fits_a_projector(server, tmp_path):
    """Large fonts at 1280×720 used to push Train below the fold, shrink the accuracy chart to
    ~40 px and cut the verdict labels ("infere…")."""
    from playwright.sync_api import expect, sync_playwright

    shots = screenshot_dir(tmp_path)
    with sync_playwright() as p:
        browser, page = open_page(p, W, H, LONG)
        page.goto(server + "/Train?presenter=1")
        expect(page.get_by_role("heading", name="Train a model: which solution does it find?")).to_be_visible()
        expect(page.get_by_text("Accuracy during training")).to_be_visible()
        page.wait_for_timeout(2000)
        button = page.get_by_role("button", name="Train", exact=True).bounding_box()
        assert button["y"] + button["height"] <= H, f"Train is below the fold: {button}"
        page.screenshot(path=str(shots / "train_presenter_top.png"))
        charts = page.locator('[data-testid="stVegaLiteChart"]')
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box["width"] >= 350, f"chart {i} squeezed: {box}"
        cut = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stMetricLabel] p')]
            .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)""")
        assert not cut, f"verdict labels cut: {cut}"
        assert page.evaluate("() => document.scrollingElement.scrollWidth") <= W
        browser.close()

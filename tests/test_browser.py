"""End to end in a real browser: ``streamlit run app.py`` driven by Debian's Chromium.

Opens the app, goes to the Train page, starts a ``tiny`` training and cancels it, trains
another to the end, reopens it from the saved-run list, and saves screenshots of every step
(to $ANCHOR_SCREENSHOT_DIR, or a tmp folder). Skipped when /usr/bin/chromium is missing.
"""
from __future__ import annotations

import time

import pytest

from _browser import open_page, require_browser, screenshot_dir, streamlit_server

LONG = 120_000  # ms: generous, the machine may be busy


@pytest.fixture
def server(tmp_path):
    require_browser()
    runs = tmp_path / "runs"
    # 2,000 tiny epochs (8,000 steps, cancelled) are over the public step cap: this server allows them
    env = {"ANCHOR_RUNS_DIR": str(runs), "ANCHOR_MAX_JOBS": "1", "ANCHOR_MAX_STEPS": "100000"}
    with streamlit_server(tmp_path, env) as url:
        yield url, runs


def test_train_cancel_finish_reopen(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, runs = server
    shots = screenshot_dir(tmp_path)

    with sync_playwright() as p:
        browser, page = open_page(p, 1400, 2200, LONG)

        def shot(name: str) -> None:
            page.wait_for_timeout(1500)  # let charts finish drawing
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

        def choose(label: str, option: str) -> None:
            # on a loaded machine the page may still be rerunning when the box opens, its list not yet
            # refreshed (a run saved a moment ago): close it and open it again until the deadline
            from playwright.sync_api import TimeoutError as PlaywrightTimeout
            deadline = time.monotonic() + LONG / 1000
            while True:
                # wait for the page's run to end first: under load the box was opened mid-run, its
                # list replaced under the cursor, again and again until the deadline
                expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=LONG)
                page.locator('[data-testid="stSelectbox"]').filter(has_text=label).click()
                try:
                    page.get_by_role("option", name=option, exact=True).click(timeout=10_000)
                    return
                except PlaywrightTimeout:
                    if time.monotonic() > deadline:
                        raise
                    page.keyboard.press("Escape")
                    page.wait_for_timeout(1000)

        def set_epochs(n: int) -> None:
            box = page.get_by_label("Epochs")
            box.fill(str(n))
            box.press("Enter")
            expect(page.get_by_text(f"× {n} epochs").first).to_be_visible()

        page.goto(url + "/The_puzzle")  # the app opens on the Lesson; this test starts at the puzzle
        expect(page.get_by_role("heading", name="The puzzle: reasoning or memorizing?")).to_be_visible()
        expect(page.get_by_text("x−6 · overridden")).to_be_visible()
        shot("1_puzzle")
        # a deep link on a fresh server opens its page inside the app: our menu, no extra "app" entry
        menu = page.get_by_test_id("stSidebar").get_by_test_id("stPageLink")
        expect(menu).to_have_text(["Lesson", "The puzzle", "Train", "Inside the model", "Phase diagram", "Notes"])
        assert page.title() == "Reasoning or memorizing? Initialization and composite functions"

        page.get_by_test_id("stSidebar").get_by_test_id("stPageLink").get_by_text("Train", exact=True).click()
        expect(page.get_by_role("heading", name="Train a model: which solution does it find?")).to_be_visible()
        expect(page.get_by_text("Open a saved run").first).to_be_visible()
        shot("2_train_opened")

        # a long tiny job, cancelled while it runs
        choose("Preset", "tiny")
        expect(page.get_by_text("Seconds-long smoke test")).to_be_visible()
        expect(page.get_by_label("Epochs")).to_have_value("2")  # the preset's epochs arrived from the server
        set_epochs(2000)
        page.get_by_role("button", name="Train", exact=True).click()
        expect(page.get_by_test_id("stMainBlockContainer").get_by_test_id("stProgress")).to_be_visible()  # the sidebar shows it too
        expect(page.get_by_text("Accuracy during training")).to_have_count(2)  # live curves + the saved run's
        shot("3_training_live")
        page.get_by_role("button", name="Cancel").click()
        expect(page.get_by_text("Nothing was saved")).to_be_visible()
        assert not runs.exists() or not any(runs.iterdir())
        shot("4_cancelled")

        # a short tiny job, trained to the end; its result opens below
        set_epochs(2)
        page.get_by_role("button", name="Train", exact=True).click()
        expect(page.get_by_text("Finished and saved as tiny_L1_g0.5_s0")).to_be_visible()
        expect(page.get_by_text("Verdict: not fitted")).to_be_visible()
        assert (runs / "tiny_L1_g0.5_s0" / "metrics.json").exists()
        shot("5_finished")

        # reopen it after visiting another page
        page.get_by_test_id("stSidebar").get_by_test_id("stPageLink").get_by_text("The puzzle", exact=True).click()
        expect(page.get_by_role("heading", name="The puzzle: reasoning or memorizing?")).to_be_visible()
        page.get_by_test_id("stSidebar").get_by_test_id("stPageLink").get_by_text("Train", exact=True).click()
        choose("Open a saved run", "saved · tiny_L1_g0.5_s0")
        expect(page.get_by_text("Verdict: not fitted")).to_be_visible()
        expect(page.get_by_text("Training loss")).to_be_visible()
        shot("6_reopened")

        # lecturer mode, kept across pages
        page.get_by_text("Large fonts (projector)").click()
        page.wait_for_timeout(1000)
        shot("7_large_fonts")

        # the paper preset is refused here before any click: the button is disabled and the
        # message gives the command for a GPU machine
        choose("Preset", "paper")
        expect(page.get_by_label("Epochs")).to_have_value("210")
        expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
        expect(page.get_by_text("python -m core train --preset paper").first).to_be_visible()
        shot("8_paper_refused")

        page.get_by_test_id("stSidebar").get_by_test_id("stPageLink").get_by_text("The puzzle", exact=True).click()
        expect(page.get_by_text("x−6 · overridden")).to_be_visible()
        shot("9_puzzle_large_fonts")
        browser.close()
    assert {f.stem for f in shots.glob("*.png")} >= {"1_puzzle", "4_cancelled", "6_reopened", "7_large_fonts"}

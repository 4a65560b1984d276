"""The viewer in a real browser: headless Chromium opens the page `ns-viewer` serves, finds our
controls in the panel, sees the object drawn on the canvas and changes it with the Object menu.

Needs Debian's `chromium` (Playwright drives the system browser; nothing is downloaded). On a
machine without it this is the one test that skips, saying how to install it; CI installs it and
sets HYPNERF_REQUIRE_BROWSER=1, which turns the skip into a failure.
"""

from __future__ import annotations

import io
import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium on a closed network: no background connections, no sandbox (CI runs as root).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CONTROLS = ("Object", "Blend with", "Sample a new object", "Latent file", "Text")


def canvas(page) -> np.ndarray:
    """The 3D canvas as the user sees it, [H, W, 3] float."""
    shot = page.locator("canvas").first.screenshot()
    return np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(float)


def wait_for_render(page, seconds: float = 180.0) -> None:
    """Until the panel reports a rendered resolution (the first frame has arrived)."""
    deadline = time.monotonic() + seconds
    while "Resolution: 0x0px" in page.get_by_text("Resolution").first.inner_text():
        assert time.monotonic() < deadline, "no frame rendered"
        time.sleep(1.0)


def settled(page, seconds: float = 4.0, limit: float = 120.0) -> np.ndarray:
    """The canvas once it stops changing (the server refines a frame after a change)."""
    deadline = time.monotonic() + limit
    previous = canvas(page)
    while time.monotonic() < deadline:
        time.sleep(seconds)
        current = canvas(page)
        if np.abs(current - previous).mean() < 0.5:
            return current
        previous = current
    return previous


def test_viewer_page_in_chromium_shows_our_controls_and_the_chosen_object(viewer_port: int, trained) -> None:
    if CHROMIUM is None:
        message = "no Chromium for the browser test: install Debian's `chromium` (apt-get install chromium)"
        if os.environ.get("HYPNERF_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    model = trained[1].pipeline.model
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            deadline = time.monotonic() + 180
            while True:  # the server starts listening once it has loaded the checkpoint
                try:
                    page.goto(f"http://127.0.0.1:{viewer_port}", timeout=5000)
                    break
                except Exception:  # connection refused until then
                    assert time.monotonic() < deadline, "the viewer page never loaded"
                    time.sleep(1.0)
            empty = canvas(page)  # the viewer's own background, before any frame
            page.get_by_label("Object").wait_for(timeout=180_000)  # our controls arrive after the checkpoint
            for label in CONTROLS:
                assert page.get_by_text(label, exact=True).count() >= 1, f"no {label!r} control in the panel"
            assert page.get_by_label("Object").input_value() == model.object_ids[0]

            resolution = page.locator("input[value='512']:not([type=hidden])").first.element_handle()  # Max res
            resolution.fill("64")
            resolution.press("Enter")
            wait_for_render(page)
            first = settled(page)
            background = np.median(empty.reshape(-1, 3), axis=0)
            assert (np.abs(first - background).max(axis=-1) > 30).mean() > 0.2, "a rendered frame fills the canvas"
            assert first.std(axis=(0, 1)).max() > 10, "the frame shows an object, not a uniform background"

            page.get_by_label("Object").click()
            page.get_by_role("option", name=model.object_ids[1], exact=True).click()
            assert page.get_by_label("Object").input_value() == model.object_ids[1]
            time.sleep(2.0)
            second = settled(page)
            assert np.abs(second - first).mean() > 10, "choosing another object changes the canvas"
        finally:
            browser.close()

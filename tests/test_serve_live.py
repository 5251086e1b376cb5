"""The service as a real process: under concurrent load, and in a real browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.serve.background import running_server

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_short_load_run_has_no_errors(tmp_path: Path) -> None:
    report = tmp_path / "serve.md"
    done = subprocess.run(
        [
            sys.executable,
            ROOT / "benchmarks/serve_load.py",
            "--clients",
            "4",
            "--seconds",
            "2",
            "--out",
            report,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'errors': 0" in done.stdout and "| 4 |" in report.read_text()


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed"
)
def test_drawing_on_the_page_shows_a_prediction() -> None:
    """Headless Chromium draws a '1' on the canvas with mouse events and reads the answer."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "CI must install Debian's chromium (see .ci/run)"
    ARTIFACTS.mkdir(exist_ok=True)
    with running_server() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function(
                "document.getElementById('model').textContent.includes('test accuracy')"
            )
            box = page.locator("#pad").bounding_box()
            x = box["x"] + box["width"] / 2
            page.mouse.move(x, box["y"] + 40)
            page.mouse.down()
            for step in range(1, 21):  # a vertical stroke: the digit one
                page.mouse.move(x + step * 0.5, box["y"] + 40 + step * 10)
            page.mouse.up()
            page.wait_for_function(
                "document.getElementById('digit').textContent !== ''", timeout=10_000
            )
            page.screenshot(path=str(ARTIFACTS / "draw-a-digit.png"))
            digit = page.locator("#digit").text_content()
            probabilities = page.locator("#bars .p").all_text_contents()
            top_bar_share = page.evaluate(
                "(() => { const li = document.querySelector('#bars li.top');"
                " return li.querySelector('.fill').getBoundingClientRect().width"
                " / li.querySelector('.bar').getBoundingClientRect().width; })()"
            )
            preview_lit = page.evaluate(
                "Array.from(document.getElementById('seen').getContext('2d')"
                ".getImageData(0, 0, 28, 28).data).some((v, i) => i % 4 === 0 && v > 128)"
            )
        finally:
            browser.close()
    assert digit == "1"
    assert len(probabilities) == 10 and all(p.endswith("%") for p in probabilities)
    assert preview_lit  # the 28x28 view shows the preprocessed stroke
    assert top_bar_share > 0.5  # the winning probability's bar is drawn, and long

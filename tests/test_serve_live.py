"""The service as a real process: under concurrent load, and in a real browser."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    assert "errors=0," in done.stdout and "| 4 |" in report.read_text()


def test_stalled_clients_are_let_go() -> None:
    """A connection that sends nothing, half a request head, or a body that stops is
    closed (or answered 408) within seconds instead of held forever -- while the service
    goes on answering others."""
    import socket
    import time
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from digitlab.serve.protocol import HEADER_TIMEOUT

    stalls = {
        "nothing": b"",
        "half a head": b"POST /api/predict HTTP/1.1\r\nHost: x\r\n",
        "a body that stops": b"POST /api/predict HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: image/png\r\nContent-Length: 1000\r\n\r\n\x89PNG",
    }
    with running_server() as url:
        port = int(url.rsplit(":", 1)[1])

        def stall(payload: bytes) -> tuple[float, bytes]:
            with socket.create_connection(("127.0.0.1", port)) as connection:
                connection.sendall(payload)
                connection.settimeout(30)
                started = time.monotonic()
                answer = connection.recv(200)
                return time.monotonic() - started, answer

        with ThreadPoolExecutor(len(stalls)) as pool:
            waits = dict(zip(stalls, pool.map(stall, stalls.values()), strict=True))
            with urllib.request.urlopen(f"{url}/api/health", timeout=5) as health:
                assert health.status == 200  # others are served meanwhile
    for name in ("nothing", "half a head"):
        seconds, answer = waits[name]
        assert answer == b"" and seconds < HEADER_TIMEOUT + 2, (name, seconds)
    seconds, answer = waits["a body that stops"]
    assert answer.startswith(b"HTTP/1.1 408") and seconds < 15


#: Strokes of three digits, as (x, y) fractions of the canvas, each a list of strokes.
DIGITS = {
    "1": [[(0.50, 0.15), (0.52, 0.85)]],
    "7": [[(0.25, 0.18), (0.75, 0.18), (0.45, 0.85)]],
    "0": [
        [(0.5 + 0.22 * np.sin(t), 0.5 - 0.33 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 25)]
    ],
}
CROSS = [[(0.2, 0.2), (0.8, 0.8)], [(0.8, 0.2), (0.2, 0.8)]]
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}


def draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw ``strokes`` on the page's canvas with the mouse, in steps a hand would make."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        points = [
            (box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke
        ]
        page.mouse.move(*points[0])
        page.mouse.down()
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            for step in np.linspace(0, 1, 8)[1:]:
                page.mouse.move(x0 + step * (x1 - x0), y0 + step * (y1 - y0))
        page.mouse.up()


def answer_after_drawing(page, strokes) -> str:
    page.click("#clear")
    draw(page, strokes)
    page.wait_for_function("document.getElementById('digit').textContent !== ''")
    page.wait_for_timeout(1000)  # the answer for the finished drawing, not a stroke's half
    return page.locator("#digit").text_content()


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed"
)
@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_drawing_digits_on_the_page(viewport: str) -> None:
    """Headless Chromium draws three digits with mouse strokes, at desktop and phone
    sizes, and reads each answer; the page shows the model, the 28x28 view and, on a
    phone, the answer without scrolling; nothing is logged to the console."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "CI must install Debian's chromium (see .ci/run)"
    ARTIFACTS.mkdir(exist_ok=True)
    width, height = VIEWPORTS[viewport]
    answers, problems = {}, []
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
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(url)
            page.wait_for_function(
                "document.getElementById('model').textContent.includes('test accuracy')"
            )
            for digit, strokes in DIGITS.items():
                answers[digit] = answer_after_drawing(page, strokes)
                page.screenshot(path=str(ARTIFACTS / f"draw-{digit}-{viewport}.png"))
            unsure_answer = answer_after_drawing(page, CROSS)  # an 'X' is no digit
            unsure_contenders = page.locator("#contenders li").all_text_contents()
            page.screenshot(path=str(ARTIFACTS / f"draw-unsure-{viewport}.png"))
            answers["1"] = answer_after_drawing(page, DIGITS["1"])
            pad = page.locator("#pad").bounding_box()
            seen = page.locator("#seen").bounding_box()
            shown = page.locator("#digit").bounding_box()
            probabilities = page.locator("#bars .p").all_text_contents()
            contenders_shown = page.locator("#contenders").is_visible()
            preview_lit = page.evaluate(
                "Array.from(document.getElementById('seen').getContext('2d')"
                ".getImageData(0, 0, 28, 28).data).some((v, i) => i % 4 === 0 && v > 128)"
            )
            page.check("#saliency")  # where the network looked: a red overlay appears
            page.wait_for_function(  # a red pixel: ink the answer depended on
                "(() => { const d = document.getElementById('seen').getContext('2d')"
                ".getImageData(0, 0, 28, 28).data; for (let i = 0; i < d.length; i += 4)"
                " { if (d[i] > 150 && d[i + 1] < 100) return true; } return false; })()",
                timeout=10_000,
            )
            page.screenshot(path=str(ARTIFACTS / f"draw-saliency-{viewport}.png"))
        finally:
            browser.close()
    assert answers == {digit: digit for digit in DIGITS}
    assert len(probabilities) == 10 and all(p.endswith("%") for p in probabilities)
    assert preview_lit  # the 28x28 view shows the preprocessed drawing
    assert not contenders_shown  # a sure answer does not list the digits it is torn between
    assert unsure_answer == "?" and len(unsure_contenders) == 3  # the three it is torn between
    assert not problems, problems
    if viewport == "phone":
        assert pad["width"] >= 0.9 * width - 40  # the canvas fills the width
        assert seen["y"] + seen["height"] <= height and shown["y"] + shown["height"] <= height


def test_several_processes_serve_the_model_they_were_given(tmp_path: Path) -> None:
    """--workers N --model FILE: the N answering processes each load FILE (here the
    bundled network without its calibration, so its answers carry no doubt)."""
    import json
    import urllib.request
    from dataclasses import replace

    from digitlab.nn.model_file import save_model
    from digitlab.predict import load_bundled_model

    model = tmp_path / "mine.npz"
    save_model(model, replace(load_bundled_model(), calibration=None))
    pixels = json.dumps({"pixels": np.eye(28).tolist()}).encode()
    with running_server("--workers", "2", "--model", str(model)) as url:
        with urllib.request.urlopen(f"{url}/api/model", timeout=10) as answer:
            assert json.load(answer)["name"] == "mine.npz"
        for _ in range(4):  # whichever process answers, it serves this file
            asked = urllib.request.Request(
                f"{url}/api/predict", pixels, {"content-type": "application/json"}
            )
            with urllib.request.urlopen(asked, timeout=10) as answer:
                assert json.load(answer)["unsure"] is None


@pytest.mark.parametrize(
    "stop, whole_group",
    [("SIGINT", True), ("SIGTERM", True), ("SIGTERM", False)],
    ids=["ctrl-c", "systemd-stop", "docker-stop"],
)
def test_a_stop_ends_the_service_and_its_processes_cleanly(stop: str, whole_group: bool) -> None:
    """Ctrl-C in a terminal reaches every process of its group, the answering processes
    too; a service manager's SIGTERM reaches the group (systemd) or the serving process
    alone (docker stop).  Each way the service stops with all its processes, printing
    no traceback and no warning (SIGTERM used to leave 'leaked semaphore' warnings)."""
    import signal
    import time
    import urllib.request

    from digitlab.serve.background import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "digitlab", "serve", "--port", str(port), "--workers", "2"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal would give it
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        if whole_group:
            os.killpg(process.pid, getattr(signal, stop))
        else:
            process.send_signal(getattr(signal, stop))
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    assert "leaked" not in stderr and "Warning" not in stderr, stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # exited processes linger until init reaps them
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return  # no process of the group is left
        time.sleep(0.2)
    pytest.fail("processes of the service outlived it")


def test_an_empty_host_is_refused_and_ipv6_is_served() -> None:
    """An empty --host (an unset "$HOST") would have uvicorn listen on every interface;
    an IPv6 address used to be refused by the check made before starting."""
    import json
    import socket
    import time
    import urllib.request

    from digitlab.serve.background import free_port

    empty = subprocess.run(
        [sys.executable, "-m", "digitlab", "serve", "--host", ""],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert empty.returncode == 1 and "--host is empty" in empty.stderr, empty.stderr
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "digitlab", "serve", "--host", "::1", "--port", str(port),
         "--workers", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://[::1]:{port}/api/health", timeout=1) as r:
                    assert json.load(r)
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "the IPv6 service did not answer"
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)

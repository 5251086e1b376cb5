"""The web service: each endpoint, each kind of bad input, and the same answers as the CLI."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digitlab.data.images import load_image, to_mnist
from digitlab.serve.app import MAX_BODY_BYTES, create_app


@pytest.fixture(scope="module", params=["threads", "processes"])
def client(request) -> Iterator[TestClient]:
    """The service answering in worker threads, and in a pool of processes (as
    ``digitlab serve`` does): every test below holds for both."""
    with TestClient(create_app(processes=2 if request.param == "processes" else 0)) as client:
        yield client


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def drawn(mnist, index: int, size: int = 280) -> bytes:
    """A real test digit as a user would draw it: black ink on white, canvas-sized."""
    pixels = 255 - (mnist.test.images[index].reshape(28, 28) * 255).astype(np.uint8)
    return png(np.asarray(Image.fromarray(pixels).resize((size, size))))


def test_health_and_model(client) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/model").json()
    assert info["name"] == "the bundled model" and info["preset"] == "cnn-robust"
    assert info["test_accuracy"] >= 0.995  # the bundled model is a real, trained one
    assert info["calibrated"] and 0 < info["unsure_below"] < 1
    assert info["knows_digit_features"] is True


def test_openapi_schema_describes_the_api(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/predict", "/api/model", "/api/health"} <= set(paths)
    assert "multipart/form-data" in paths["/api/predict"]["post"]["requestBody"]["content"]


def test_page_and_its_script_are_served(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="pad"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/favicon.svg").headers["content-type"].startswith("image/svg")


def test_an_answer_carries_its_doubt_and_on_request_where_it_looked(client, mnist) -> None:
    data = drawn(mnist, 0)
    plain = client.post("/api/predict", files={"image": ("d.png", data, "image/png")}).json()
    assert plain["unsure"] is False and "saliency" not in plain
    assert plain["unlike_digits"] is False
    assert plain["contenders"][0]["digit"] == plain["digit"]
    assert len(plain["contenders"]) == 3
    probabilities = [c["probability"] for c in plain["contenders"]]
    assert probabilities == sorted(probabilities, reverse=True)
    looked = client.post(
        "/api/predict?saliency=true", files={"image": ("d.png", data, "image/png")}
    ).json()
    where = np.array(looked["saliency"])
    assert where.shape == (28, 28) and where.min() >= 0
    pixels = np.array(looked["pixels"])
    assert where[pixels < 0.1].max() == 0 and where.max() == 1  # it lights ink, not paper
    bad = client.post("/api/predict?saliency=maybe", files={"image": ("d.png", data, "image/png")})
    assert bad.status_code == 422 and "saliency" in bad.json()["detail"]


def test_predict_upload_matches_the_cli_preprocessing(client, mnist) -> None:
    right = 0
    for index in range(10):
        data = drawn(mnist, index)
        answer = client.post("/api/predict", files={"image": ("d.png", data, "image/png")}).json()
        assert len(answer["probabilities"]) == 10 and sum(answer["probabilities"]) == pytest.approx(
            1, abs=1e-4
        )
        expected = to_mnist(load_image(data))  # what `digitlab predict` feeds the network
        assert np.allclose(answer["pixels"], expected, atol=1e-3)
        right += answer["digit"] == mnist.test.labels[index]
    assert right >= 9


def test_sixteen_bit_pngs_and_any_case_of_content_type_are_read(client, mnist) -> None:
    wide = (65535 - mnist.test.images[0].reshape(28, 28) * 65535).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(wide).resize((140, 140)).save(buffer, "PNG")
    answer = client.post(
        "/api/predict", content=buffer.getvalue(), headers={"content-type": "IMAGE/PNG"}
    )
    assert answer.status_code == 200 and answer.json()["digit"] == mnist.test.labels[0]


def test_a_huge_chunked_multipart_upload_is_too_large(client) -> None:
    def chunks():
        yield b"--x\r\nContent-Disposition: form-data; name=image; filename=a.png\r\n\r\n"
        for _ in range(50):
            yield b"\0" * 1_000_000

    response = client.post(
        "/api/predict",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 413


def test_predict_raw_png_body_and_json_pixels(client, mnist) -> None:
    data = drawn(mnist, 0)
    raw = client.post("/api/predict", content=data, headers={"content-type": "image/png"}).json()
    pixels = mnist.test.images[0].reshape(28, 28).tolist()
    from_array = client.post("/api/predict", json={"pixels": pixels}).json()
    assert raw["digit"] == from_array["digit"] == mnist.test.labels[0]


def nan_pixels() -> bytes:
    rows = [[0.0] * 28 for _ in range(28)]
    rows[3][4] = float("nan")
    return json.dumps({"pixels": rows}).encode()  # json writes NaN, which some clients send


def bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, "PNG")
    return buffer.getvalue()


JSON_TYPE = {"content-type": "application/json"}

BAD = [
    (
        "not an image",
        {"files": {"image": ("x.png", b"this is text", "image/png")}},
        422,
        "not a readable",
    ),
    ("empty body", {"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty"),
    ("empty upload", {"files": {"image": ("x.png", b"", "image/png")}}, 400, "empty"),
    ("no image field", {"files": {"other": ("x.png", b"abc", "image/png")}}, 422, "'image'"),
    ("wrong shape", {"json": {"pixels": [[0.0] * 28] * 27}}, 422, "28x28"),
    ("not numbers", {"json": {"pixels": "seven"}}, 422, "28x28"),
    ("booleans", {"json": {"pixels": [[True] * 28] * 28}}, 422, "28x28"),
    ("strings", {"json": {"pixels": [["1"] * 28] * 28}}, 422, "28x28"),
    (
        "a 400-digit number",
        {"content": b'{"pixels": ' + b"9" * 400 + b"}", "headers": JSON_TYPE},
        422,
        "28x28",
    ),
    (
        "nested 100,000 deep",
        {"content": b'{"pixels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "headers": JSON_TYPE},
        422,
        "28x28",
    ),
    ("NaN", {"content": nan_pixels(), "headers": {"content-type": "application/json"}}, 422, "NaN"),
    (
        "blank canvas",
        {
            "content": png(np.full((280, 280), 255, np.uint8)),
            "headers": {"content-type": "image/png"},
        },
        422,
        "blank",
    ),
    ("text body", {"content": b"7", "headers": {"content-type": "text/plain"}}, 415, "PNG/JPEG"),
    (
        "too many pixels",
        {
            "content": png(np.full((2500, 2000), 255, np.uint8)),
            "headers": {"content-type": "image/png"},
        },
        413,
        "too large",
    ),
    (
        "decompression bomb",  # 49 KB whose header claims 20000x20000 pixels
        {"content": bomb_png(), "headers": {"content-type": "image/png"}},
        413,
        "too large",
    ),
    (
        "too many bytes",
        {"content": b"\0" * (MAX_BODY_BYTES + 1), "headers": {"content-type": "image/png"}},
        413,
        "too large",
    ),
    (
        "broken multipart",
        {
            "content": b"--x\r\nbroken",
            "headers": {"content-type": "multipart/form-data; boundary=x"},
        },
        422,
        "'image'",
    ),
    (
        "multipart without boundary",
        {"content": b"abc", "headers": {"content-type": "multipart/form-data"}},
        400,
        "malformed",
    ),
]


@pytest.mark.parametrize(
    ("case", "request_args", "status", "fragment"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_input_is_a_4xx_json_error(client, case, request_args, status, fragment) -> None:
    response = client.post("/api/predict", **request_args)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]
    assert client.get("/api/health").status_code == 200  # and the service keeps serving


def test_oversized_chunked_body_is_refused_while_streaming(client) -> None:
    def chunks():
        for _ in range(40):
            yield b"\0" * 100_000  # 4 MB with no Content-Length

    response = client.post("/api/predict", content=chunks(), headers={"content-type": "image/png"})
    assert response.status_code == 413


def test_serving_a_model_that_is_not_one_fails_clearly(run_cli, tmp_path) -> None:
    (tmp_path / "fake.npz").write_bytes(b"nope")
    result = run_cli("serve", "--model", tmp_path / "fake.npz", "--port", "8765")
    assert (
        result.returncode == 1
        and result.stderr.strip() == f"error: {tmp_path / 'fake.npz'} is not a digitlab model file"
    )


def test_an_answering_process_that_dies_is_replaced(mnist) -> None:
    """A process of the pool killed (say, by the out-of-memory killer) breaks the pool
    for the pictures in flight: each is tried again on a new pool, so nobody notices."""
    before = set(multiprocessing.active_children())
    with TestClient(create_app(processes=1)) as client:
        upload = {"image": ("d.png", drawn(mnist, 0), "image/png")}
        assert client.post("/api/predict", files=upload).status_code == 200
        [worker] = set(multiprocessing.active_children()) - before
        os.kill(worker.pid, signal.SIGKILL)
        worker.join()
        statuses = [client.post("/api/predict", files=upload).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]


def test_a_busy_process_of_a_broken_pool_is_ended_not_left_behind(mnist) -> None:
    """Two processes busy with long pictures when one is killed: the broken
    pool is replaced, and its survivor -- which ignores the SIGTERM Python sends a broken
    pool's processes -- is ended too.  It used to live on, and the service then hung when
    stopped, its pool's manager thread waiting for it."""
    import asyncio
    import time

    from digitlab.predict import load_bundled_model
    from digitlab.serve.answers import InProcesses, Upload

    answers = InProcesses(load_bundled_model(), 2)
    try:
        old = list(answers._pool._processes.values())
        for _ in old:  # both busy with a picture that takes long
            answers._pool.submit(time.sleep, 60)
        time.sleep(1)
        os.kill(old[0].pid, signal.SIGKILL)
        reply = asyncio.run(answers.answer(Upload(drawn(mnist, 0), False), False))
        assert reply.status == 200
        deadline = time.monotonic() + 10
        while any(p.is_alive() for p in old) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(p.is_alive() for p in old), "a process of the broken pool lives on"
    finally:
        answers.close()


def test_a_bug_in_an_answering_process_is_a_json_500_not_a_broken_pool(monkeypatch) -> None:
    from digitlab.serve import answers

    class Broken:
        def answers(self, rows):
            raise RuntimeError("a bug")

    monkeypatch.setattr(answers, "_worker_model", Broken())
    upload = answers.Upload(json.dumps({"pixels": np.eye(28).tolist()}).encode(), True)
    reply = answers._reply_in_worker(upload, False)
    assert reply.status == 500 and "bug" in json.loads(reply.body)["detail"]


def test_the_answering_processes_use_the_model_they_were_given(mnist, tmp_path: Path) -> None:
    """Each process answers with the model the service was given: served without its
    calibration, the bundled network's answers carry no doubt (``unsure`` is null)."""
    from digitlab.nn.model_file import save_model
    from digitlab.predict import load_bundled_model

    plain = tmp_path / "uncalibrated.npz"
    save_model(plain, replace(load_bundled_model(), calibration=None))
    with TestClient(create_app(plain, processes=1)) as client:
        answer = client.post(
            "/api/predict", files={"image": ("d.png", drawn(mnist, 0), "image/png")}
        ).json()
        assert client.get("/api/model").json()["name"] == "uncalibrated.npz"
    assert answer["unsure"] is None and answer["digit"] == mnist.test.labels[0]

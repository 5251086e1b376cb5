"""Answering a picture -- decoding, preprocessing, predicting -- away from the event loop.

The service's event loop only moves bytes.  The work of an answer (decoding the image,
:func:`~digitlab.data.images.to_mnist`, the network, encoding the JSON) is a few
milliseconds of Python that holds an interpreter lock for most of that time, so where it
runs decides how many answers run at once:

* :class:`InThreads` -- worker threads of the serving process.  Nothing to start, which
  suits tests and notebooks; but the one interpreter lock lets one answer make progress
  at a time.
* :class:`InProcesses` -- a pool of processes, each with its own copy of the model, fed
  from one queue: N answers run at once on N cores, and whichever process is free takes
  the next picture.  The one queue is the point.  N whole server processes, each
  accepting its own connections, get them from the kernel unevenly (5 and 3 of 8, or
  all 8 to one), and the clients of the busier process wait longer
  (docs/results/serve.md).

Both give a :class:`Reply`: the status and the JSON body, already encoded.  A picture
that gives no answer (unreadable, blank, too large, malformed pixels) is a 4xx reply, not
an exception, so that it crosses a process boundary as plain data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context, parent_process
from multiprocessing.connection import wait
from multiprocessing.synchronize import Barrier
from typing import Any

import numpy as np
from anyio import CapacityLimiter, to_thread
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from threadpoolctl import threadpool_limits

from digitlab.data.images import load_image
from digitlab.errors import DigitlabError, ImageTooLargeError
from digitlab.evaluation.saliency import occlusion_map
from digitlab.nn.model_file import Model
from digitlab.predict import Prediction, predict_grayscale
from digitlab.spec import IMAGE_SHAPE

MAX_IMAGE_PIXELS = 4_000_000
#: Requests allowed to wait for a free worker; past that the service answers 503 at once
#: rather than queue without bound (each waiting request holds its body in memory).
MAX_WAITING = 64
#: How long the answering processes may take to start (import, receive the model).
START_SECONDS = 120
#: How long a stopping answering process may take to finish its picture.
CLOSE_SECONDS = 10
#: The signals that stop a service (Ctrl-C, and a service manager's stop): the answering
#: processes ignore them and are stopped by the serving process instead.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """A request's picture, as sent: the bytes of an image file, or of JSON pixels."""

    data: bytes
    is_json: bool

    def image(self) -> np.ndarray:
        """The grayscale image (decoding is CPU work: done by a worker, not the loop)."""
        if self.is_json:
            return pixels_from_json(self.data)
        return load_image(self.data, max_pixels=MAX_IMAGE_PIXELS)


@dataclass(frozen=True)
class Reply:
    """An answer ready to send: its HTTP status and its JSON body."""

    status: int
    body: bytes


def pixels_from_json(body: bytes) -> np.ndarray:
    """A 28x28 array of finite numbers from ``{"pixels": [[...], ...]}``."""
    expected = 'expected JSON {"pixels": a 28x28 array of numbers}'
    try:
        rows = json.loads(body)["pixels"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise TypeError
        if any(isinstance(v, bool) or not isinstance(v, int | float) for r in rows for v in r):
            raise TypeError  # true/false and strings are not grey levels
        pixels = np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
        raise HTTPException(422, expected) from None
    if pixels.shape != IMAGE_SHAPE:
        raise HTTPException(422, f"pixels must be a 28x28 array, got shape {list(pixels.shape)}")
    if not np.isfinite(pixels).all():
        raise HTTPException(422, "pixels contain NaN or infinite values")
    return pixels


def prediction_json(prediction: Prediction, saliency: np.ndarray | None = None) -> dict[str, Any]:
    """The API's answer for one prediction (and, if given, its saliency map)."""
    answer = {
        "digit": prediction.digit,
        "probabilities": [round(p, 6) for p in prediction.probabilities],
        "unsure": prediction.unsure,
        "unlike_digits": prediction.unlike_digits,
        "contenders": [
            {"digit": c.digit, "probability": round(c.probability, 6)}
            for c in prediction.contenders
        ],
        "pixels": np.round(prediction.pixels, 3).tolist(),
    }
    if saliency is not None:
        answer["saliency"] = np.round(saliency, 3).tolist()
    return answer


def problem(status: int, detail: str) -> Reply:
    """A 4xx reply: one sentence saying what is wrong with the request."""
    return Reply(status, JSONResponse({"detail": detail}).body)


def reply_to(model: Model, upload: Upload, saliency: bool) -> Reply:
    """The whole answer to one picture, or the 4xx reply saying why there is none."""
    try:
        [prediction] = predict_grayscale(model, [upload.image()])
    except HTTPException as refused:
        return problem(refused.status_code, str(refused.detail))
    except ImageTooLargeError as error:
        return problem(413, str(error))
    except DigitlabError as error:
        return problem(422, str(error))
    where = occlusion_map(model, prediction.pixels, prediction.digit) if saliency else None
    return Reply(200, JSONResponse(prediction_json(prediction, where)).body)


def busy() -> HTTPException:
    return HTTPException(503, "the service is busy; try again in a moment")


class InThreads:
    """Answers in ``threads`` worker threads of this process."""

    def __init__(self, model: Model, threads: int = os.cpu_count() or 1) -> None:
        self._model = model
        self._limiter = CapacityLimiter(threads)

    async def answer(self, upload: Upload, saliency: bool) -> Reply:
        if self._limiter.statistics().tasks_waiting >= MAX_WAITING:
            raise busy()
        return await to_thread.run_sync(
            reply_to, self._model, upload, saliency, limiter=self._limiter
        )

    def close(self) -> None:
        """Nothing to stop: the threads belong to the event loop's pool."""


# What each answering process holds: the model, and the barrier its start-up meets at.
_worker_model: Model | None = None
_all_started: Barrier | None = None


def _start_worker(model: Model, all_started: Barrier) -> None:
    global _worker_model, _all_started
    # Ctrl-C reaches every process of the terminal's group, and a service manager's
    # SIGTERM may too: the serving process stops this one (see InProcesses.close), so it
    # must not stop half-way by itself.
    for stop in STOP_SIGNALS:
        signal.signal(stop, signal.SIG_IGN)
    _exit_with_parent()
    # Each process answers one picture at a time on its core: a BLAS splitting one
    # picture's small products over both cores would wait on the other processes.
    threadpool_limits(1, "blas")
    _worker_model, _all_started = model, all_started


def _exit_with_parent() -> None:
    """End this process when the serving process is gone, even killed without a word
    (by the out-of-memory killer, say): nothing else would."""
    parent = parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _worker_started() -> int:
    """A start-up task: returns once every process of the pool holds one, so N of them
    prove N processes started (one fast process cannot answer them all)."""
    assert _all_started is not None, "the process was started without its barrier"
    _all_started.wait(START_SECONDS)
    return os.getpid()


def _reply_in_worker(upload: Upload, saliency: bool) -> Reply:
    assert _worker_model is not None, "the process was started without its model"
    try:
        return reply_to(_worker_model, upload, saliency)
    except Exception:
        # A bug, not the user's doing: its traceback goes to the server's log.  Only the
        # reply crosses back: an exception that cannot be unpickled there would break
        # the whole pool, and every request in flight with it.
        logger.exception("answering a picture failed")
        return problem(500, "the service failed to answer this picture (a bug; see its log)")


@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """Processes started inside ignore Ctrl-C and SIGTERM from their first instruction (a
    spawned Python keeps an ignored signal ignored), before their own start-up code runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may change signal handlers; start-up sets it anyway
        return
    previous = {stop: signal.signal(stop, signal.SIG_IGN) for stop in STOP_SIGNALS}
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """End a broken pool at once.  Python stops a broken pool's other processes with
    SIGTERM, which answering processes ignore (see STOP_SIGNALS): one busy when another
    died would live on, holding its copy of the model, and the pool's manager thread would
    wait for it at exit, so the service could never stop."""
    # The executor's own record of its processes (CPython's ProcessPoolExecutor has kept
    # it since 3.2).
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()


class InProcesses:
    """Answers in a pool of ``processes`` processes, each given a copy of ``model``.

    The processes have all started when the constructor returns.  If one dies (killed,
    out of memory), the pool is broken for every picture in flight: each is tried once
    more on a new pool, started at once."""

    def __init__(self, model: Model, processes: int) -> None:
        self._model = model
        self._processes = processes
        self._in_flight = 0
        self._pool, started = self._started_pool()
        try:
            for process in started:
                process.result(timeout=START_SECONDS + 5)
        except BaseException as error:  # Ctrl-C included: nothing may be left running
            self.close()
            if not isinstance(error, Exception):
                raise
            raise DigitlabError(
                f"the answering processes did not start ({type(error).__name__}: {error})"
            ) from None

    def _started_pool(self) -> tuple[ProcessPoolExecutor, list[Future]]:
        """A new pool, and its start-up tasks: one per process, each held until all
        have started (a pool starts a process for each task that finds none idle)."""
        context = get_context("spawn")
        pool = ProcessPoolExecutor(
            self._processes,
            mp_context=context,
            initializer=_start_worker,
            initargs=(self._model, context.Barrier(self._processes)),
        )
        with _ctrl_c_ignored():
            started = [pool.submit(_worker_started) for _ in range(self._processes)]
        return pool, started

    async def answer(self, upload: Upload, saliency: bool) -> Reply:
        if self._in_flight >= self._processes + MAX_WAITING:
            raise busy()
        self._in_flight += 1
        try:
            for _ in range(2):  # once more on a new pool if this one broke; no more, in
                pool = self._pool  # case it is this picture that kills them
                try:
                    return await asyncio.wrap_future(
                        pool.submit(_reply_in_worker, upload, saliency)
                    )
                except BrokenProcessPool:
                    if pool is self._pool:  # the first request to find it broken replaces it
                        _kill_pool(pool)
                        self._pool, _ = self._started_pool()
            raise HTTPException(503, "the answering processes stopped twice; try again")
        finally:
            self._in_flight -= 1

    def close(self) -> None:
        """Stop the processes: each finishes the picture it holds (for up to
        CLOSE_SECONDS), the pictures still waiting get no answer."""
        # The executor's own record of its processes (CPython's ProcessPoolExecutor has
        # kept it since 3.2): shutdown(wait=True) alone would wait on a stuck one forever.
        processes = list((self._pool._processes or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + CLOSE_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()  # it ignores SIGTERM, as it ignores Ctrl-C
                process.join()

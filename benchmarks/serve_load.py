"""Drive a running ``digitlab serve`` from several concurrent clients on loopback.

    python benchmarks/serve_load.py [--clients 1 8] [--seconds 10] [--sides 280 2000]
                                    [--workers 1 2] [--repeats 5] [--out docs/results/serve.md]

Starts the service (bundled model) on a free 127.0.0.1 port, once for each number of
answering processes, then, for each number of clients and each picture size in turn, each
client posts a real MNIST test digit, drawn as a PNG of SIDE x SIDE pixels (280: what
the page sends; 2000: a 4-megapixel photo), as fast as it can until the time is up (and at most
--max-requests in all), while a probe asks ``/api/health`` every 50 ms.  Reports errors
(any answer but 200, or a failed request), throughput, latency percentiles, and how long
the health check took under that load.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx2 as httpx
import numpy as np
from PIL import Image

from digitlab.data import load_mnist
from digitlab.serve.background import running_server

HEALTH_EVERY = 0.05


def drawn_digit(side: int) -> bytes:
    pixels = 255 - (load_mnist().test.images[0].reshape(28, 28) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((side, side)).save(buffer, "PNG")
    return buffer.getvalue()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def drive(url: str, clients: int, seconds: float, max_requests: int, side: int) -> LoadRun:
    body = drawn_digit(side)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=10) as session:
            while time.monotonic() < deadline:
                with lock:
                    if len(latencies) + len(errors) >= max_requests:
                        return
                started = time.perf_counter()
                try:
                    response = session.post(
                        "/api/predict", files={"image": ("d.png", body, "image/png")}
                    )
                    failure = (
                        None if response.status_code == 200 else f"HTTP {response.status_code}"
                    )
                except httpx.HTTPError as exc:
                    failure = type(exc).__name__
                elapsed = time.perf_counter() - started
                with lock:
                    (errors.append(failure) if failure else latencies.append(elapsed))

    health: list[float] = []

    def probe() -> None:
        with httpx.Client(base_url=url, timeout=10) as session:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    ok = session.get("/api/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    (
                        health.append(time.perf_counter() - started)
                        if ok
                        else errors.append("health")
                    )
                time.sleep(HEALTH_EVERY)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    threads.append(threading.Thread(target=probe))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    ms = [1000 * t for t in latencies]
    health_ms = [1000 * t for t in health]
    return LoadRun(
        seconds=wall,
        requests=len(latencies) + len(errors),
        errors=len(errors),
        error_kinds=sorted(set(errors)),
        throughput=len(latencies) / wall,
        p50_ms=statistics.median(ms) if ms else float("nan"),
        p99_ms=percentile(ms, 0.99),
        health_p99_ms=percentile(health_ms, 0.99),
        health_max_ms=max(health_ms, default=float("nan")),
    )


@dataclass(frozen=True)
class LoadRun:
    """One run of the clients against the service: what they got, and how fast."""

    seconds: float
    requests: int
    errors: int
    error_kinds: list[str]
    throughput: float
    p50_ms: float
    p99_ms: float
    health_p99_ms: float
    health_max_ms: float


@dataclass(frozen=True)
class Setting:
    """One row of the report: a server, a picture size and a number of clients, with
    its repeated runs (medians are reported; the p99's range shows the run-to-run noise)."""

    workers: int
    side: int
    clients: int
    runs: list[LoadRun]

    def median(self, field: str) -> float:
        return statistics.median(getattr(run, field) for run in self.runs)

    def row(self) -> list[object]:
        p99 = [run.p99_ms for run in self.runs]
        spread = f" ({min(p99):.1f}–{max(p99):.1f})" if len(p99) > 1 else ""
        return [
            self.workers,
            f"{self.side}×{self.side}",
            self.clients,
            len(self.runs),
            sum(run.requests for run in self.runs),
            sum(run.errors for run in self.runs),
            f"{self.median('throughput'):.0f}",
            f"{self.median('p50_ms'):.1f}",
            f"{self.median('p99_ms'):.1f}{spread}",
            f"{self.median('health_p99_ms'):.1f}",
            f"{max(run.health_max_ms for run in self.runs):.1f}",
        ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[8], help="concurrent clients (one run each)"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sides", type=int, nargs="+", default=[280], help="picture sizes")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[os.cpu_count() or 1],
        help="answering processes (digitlab serve --workers, a server for each) "
        "[default: one per core]",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each setting (medians reported)"
    )
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    args = parser.parse_args()
    settings = []
    for workers in args.workers:
        with running_server("--workers", str(workers)) as url:
            for side in args.sides:
                for clients in args.clients:
                    runs = []
                    for _ in range(args.repeats):
                        run = drive(url, clients, args.seconds, args.max_requests, side)
                        with httpx.Client(base_url=url) as session:
                            healthy = session.get("/api/health").status_code == 200
                        print(f"{workers} processes, {side}px, {clients} clients: {run}")
                        if not healthy:
                            run = replace(
                                run,
                                errors=run.errors + 1,
                                error_kinds=[*run.error_kinds, "unhealthy after the run"],
                            )
                        runs.append(run)
                    settings.append(Setting(workers, side, clients, runs))
    if args.out:
        sys.path.insert(0, str(Path(__file__).parent))
        from report import machine, table, write

        rows = [setting.row() for setting in settings]
        header = [
            "answering processes",
            "picture",
            "clients",
            "runs",
            "requests",
            "errors",
            "requests/s",
            "p50 ms",
            "p99 ms (range)",
            "health p99 ms",
            "health max ms",
        ]
        sides = " ".join(str(side) for side in args.sides)
        clients = " ".join(str(count) for count in args.clients)
        workers = " ".join(str(count) for count in args.workers)
        write(
            args.out,
            f"""# Web service under load

Generated by `python benchmarks/serve_load.py --clients {clients} --seconds {args.seconds:g} \
--sides {sides} --workers {workers} --repeats {args.repeats} --out {args.out}`. {machine()}

`digitlab serve --workers N` (the bundled model; one process takes the connections and
hands each picture to N answering processes, the default being one per core) on
127.0.0.1; each client posts a PNG of a real MNIST test digit to `/api/predict`
(upload, decoding, preprocessing to 28×28, prediction, JSON answer) in a loop, while a
probe asks `/api/health` every 50 ms. Client and server share the machine's two cores.
Most of an answer's work is Python holding its process's interpreter lock, so N
processes answer N pictures at once; they take them from one queue, so none idles while
another has a backlog.  Each client sends its next picture as soon as the last is
answered, so beyond two clients (one per core) requests queue: the one-client row is the
time a request takes; the others add the wait behind the requests ahead of it.  Each
setting ran {args.repeats} time(s) of {args.seconds:g} s: the table gives the medians, with the
range of the p99 over the runs (the machine is shared, so runs differ).

{table(header, rows)}
""",
        )
    bad = [run for setting in settings for run in setting.runs if run.errors]
    if bad:
        sys.exit(f"{bad[0].errors} errors: {bad[0].error_kinds}")


if __name__ == "__main__":
    main()

"""Drive a running ``digitlab serve`` from several concurrent clients on loopback.

    python benchmarks/serve_load.py [--clients 1 8] [--seconds 10] [--sides 280 2000]
                                    [--workers 1 2] [--out docs/results/serve.md]

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


def percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else None


def drive(url: str, clients: int, seconds: float, max_requests: int, side: int) -> dict:
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
    return {
        "side": side,
        "clients": clients,
        "seconds": wall,
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "throughput": len(latencies) / wall,
        "p50_ms": statistics.median(ms) if ms else None,
        "p99_ms": percentile(ms, 0.99),
        "health_p99_ms": percentile(health_ms, 0.99),
        "health_max_ms": max(health_ms, default=None),
    }


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
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    args = parser.parse_args()
    runs = []
    for workers in args.workers:
        with running_server("--workers", str(workers)) as url:
            for side in args.sides:
                for clients in args.clients:
                    stats = drive(url, clients, args.seconds, args.max_requests, side)
                    with httpx.Client(base_url=url) as session:
                        stats["healthy_after"] = session.get("/api/health").status_code == 200
                    stats["workers"] = workers
                    print(stats)
                    runs.append(stats)
    if args.out:
        sys.path.insert(0, str(Path(__file__).parent))
        from report import machine, table, write

        rows = [
            [
                stats["workers"],
                f"{stats['side']}×{stats['side']}",
                stats["clients"],
                f"{stats['seconds']:.1f}",
                stats["requests"],
                stats["errors"],
                f"{stats['throughput']:.0f}",
                f"{stats['p50_ms']:.1f}",
                f"{stats['p99_ms']:.1f}",
                f"{stats['health_p99_ms']:.1f}",
                f"{stats['health_max_ms']:.1f}",
            ]
            for stats in runs
        ]
        header = [
            "answering processes",
            "picture",
            "clients",
            "seconds",
            "requests",
            "errors",
            "requests/s",
            "p50 ms",
            "p99 ms",
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
--sides {sides} --workers {workers} --out {args.out}`. {machine()}

`digitlab serve --workers N` (the bundled model; one process takes the connections and
hands each picture to N answering processes, the default being one per core) on
127.0.0.1; each client posts a PNG of a real MNIST test digit to `/api/predict`
(upload, decoding, preprocessing to 28×28, prediction, JSON answer) in a loop, while a
probe asks `/api/health` every 50 ms. Client and server share the machine's two cores.
Most of an answer's work is Python holding its process's interpreter lock, so N
processes answer N pictures at once; they take them from one queue, so none idles while
another has a backlog.  Each client sends its next picture as soon as the last is
answered, so beyond two clients (one per core) requests queue: the one-client row is the
time a request takes; the others add the wait behind the requests ahead of it.

{table(header, rows)}
""",
        )
    bad = [stats for stats in runs if stats["errors"] or not stats["healthy_after"]]
    if bad:
        sys.exit(f"{bad[0]['errors']} errors: {bad[0]['error_kinds']}")


if __name__ == "__main__":
    main()

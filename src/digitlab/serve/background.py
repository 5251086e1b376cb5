"""Run ``digitlab serve`` in a child process on a free loopback port.

For scripts, notebooks, the load benchmark and the browser test: the context manager
returns once the service answers its health check, and stops it on exit.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

from digitlab.errors import DigitlabError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


#: How long a stopped server may take to finish its requests and close its processes
#: (uvicorn's graceful shutdown, then InProcesses.close: CLOSE_SECONDS each) before it
#: is killed.
STOP_SECONDS = 30


@contextlib.contextmanager
def running_server(*args: str) -> Iterator[str]:
    """Yield the base URL of a ``digitlab serve ARGS`` process; stop it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "digitlab", "serve", "--port", str(port), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise DigitlabError(
                        f"the server did not start: {process.stderr.read()}"
                    ) from None
                time.sleep(0.1)
        yield url
    finally:  # a stop waits for requests in flight, then for the answering processes
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

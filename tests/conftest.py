"""Shared fixtures: the real MNIST data (fetched and verified once per machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.data import Dataset, default_data_dir, load_mnist


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    load_mnist()  # fetches on first use
    return default_data_dir()


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> Dataset:
    return load_mnist(mnist_dir)


@pytest.fixture
def run_cli(mnist_dir: Path):
    """Run ``digitlab ARGS...`` in a subprocess, as a user would, with the shared data."""

    def run(
        *args: str, cwd: Path | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, "DIGITLAB_DATA_DIR": str(mnist_dir)}
        return subprocess.run(
            [sys.executable, "-m", "digitlab", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    return run

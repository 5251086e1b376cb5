"""The web service against requests generated from its own OpenAPI schema (schemathesis):
no 5xx, every answer declared, the right content types, invalid data refused.

One check is left out, on purpose: *positive data acceptance* expects every request the
schema allows to be accepted, but the schema cannot say "a picture holding a digit" --
a valid 1x1 PNG is schema-valid and rightly answered 422 ("no digit found")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digitlab.serve.background import running_server

#: The command pip installed beside this Python (whether or not its folder is on PATH).
SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which(
    "schemathesis"
)


@pytest.mark.skipif(
    SCHEMATHESIS is None and not os.environ.get("CI"), reason="schemathesis is not installed"
)
def test_generated_requests_get_declared_answers_and_no_server_error() -> None:
    assert SCHEMATHESIS, "CI installs the test dependencies, schemathesis among them"
    with running_server() as url:
        done = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                "150",
                "--max-time",
                "60",
                "--workers",
                "1",
                "--seed",
                "20261206",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]

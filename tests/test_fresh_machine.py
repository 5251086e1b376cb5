"""A fresh machine, as the README describes it: two commands, and the virtual environment
they install into, so a system Python that refuses ``pip install`` is never used."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fresh_machine_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]


def test_the_readme_gives_two_commands_and_ci_runs_the_test_command() -> None:
    section = fresh_machine_section()
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.DOTALL)
    assert commands == ["bash scripts/main-job.sh", "bash scripts/run-tests.sh"]
    assert "python3-venv" in section and "`npm` client" in section
    ci = (ROOT / ".ci/run").read_text().splitlines()
    assert commands[1] in ci
    for script in ("scripts/main-job.sh", "scripts/run-tests.sh"):
        lines = (ROOT / script).read_text().splitlines()
        setup = lines.index("source scripts/python-env.sh")
        assert all("python" not in line for line in lines[:setup] if not line.startswith("#"))


def source_python_env(folder: Path, path: str) -> list[str]:
    """Source scripts/python-env.sh in ``folder`` with only ``path`` on PATH, and say
    which python it leaves first on PATH and that python's prefix."""
    shutil.copy(ROOT / "scripts/python-env.sh", folder)
    result = subprocess.run(
        [
            "bash",
            "-c",
            "set -euo pipefail; source python-env.sh; command -v python; "
            'python -c "import sys; print(sys.prefix)"',
        ],
        cwd=folder,
        env={"PATH": path, "HOME": str(folder)},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_outside_a_venv_it_makes_one_and_inside_it_uses_that_one(tmp_path: Path) -> None:
    system_python = Path(sys.base_prefix) / "bin"  # a Python that is no virtual environment
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    python, prefix = source_python_env(checkout, f"{system_python}:/usr/bin:/bin")
    assert python == str(checkout / ".venv/bin/python") and prefix == str(checkout / ".venv")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    python, prefix = source_python_env(elsewhere, f"{checkout}/.venv/bin:/usr/bin:/bin")
    assert prefix == str(checkout / ".venv") and not (elsewhere / ".venv").exists()

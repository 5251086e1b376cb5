"""The tutorial notebooks in docs/tutorials run as a student would run them: each
jupytext percent-format file is read into a notebook and executed cell by cell in a
real Jupyter kernel, in the notebooks' quick mode (small subsets, few epochs).  A cell
that raises fails the test with the cell and its traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.py"))
#: Seconds any one cell may take in quick mode on a loaded 2-core machine.
CELL_TIMEOUT = 240


def test_every_notebook_is_introduced_in_the_readme() -> None:
    readme = (TUTORIALS / "README.md").read_text()
    assert NOTEBOOKS, f"no notebooks in {TUTORIALS}"
    missing = [path.name for path in NOTEBOOKS if f"({path.name})" not in readme]
    assert not missing, f"docs/tutorials/README.md does not link {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_in_quick_mode(path: Path, mnist_dir: Path, tmp_path: Path) -> None:
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = jupytext.read(path)
    assert any(cell.cell_type == "markdown" for cell in notebook.cells)
    env = {
        **os.environ,
        "DIGITLAB_TUTORIAL_QUICK": "1",
        "DIGITLAB_DATA_DIR": str(mnist_dir),
        "MPLBACKEND": "Agg",
    }
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working folder
    )
    client.execute(env=env)  # raises CellExecutionError, naming the cell, on any error

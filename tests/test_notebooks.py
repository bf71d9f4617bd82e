"""The example notebooks in docs/notebooks: executed top to bottom (CI runs them), and their
stored outputs hold the pictures, tables and plots they describe.

Execution goes through nbclient, one kernel per notebook, with a time limit for the whole
notebook (not per cell); a cell that raises fails the test naming the cell and the error.
``-m "not notebook"`` skips the executions for a quick local run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

FOLDER = Path(__file__).resolve().parents[1] / "docs" / "notebooks"
# whole-notebook limits for two free CPU cores, together 10 minutes; the two trainings also stop
# themselves (max_minutes) on a machine too busy to finish their steps in time
LIMIT_S = {"align_and_convert": 120, "synth_train_eval": 270, "pseudo_labels": 210}
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))


def test_every_notebook_has_a_limit():
    assert sorted(p.stem for p in NOTEBOOKS) == sorted(LIMIT_S)
    assert sum(LIMIT_S.values()) <= 600


def _outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if kind in o.get("data", {}) or o.get("output_type") == kind]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs(path):
    """Stored executed, in order, without errors, with their pictures and tables."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "not executed top to bottom"
    assert not _outputs(nb, "error")
    pictures = len(_outputs(nb, "image/png"))
    tables = [o for o in _outputs(nb, "text/html") if "<table" in o["data"]["text/html"]]
    expected = {"align_and_convert": (3, 3), "synth_train_eval": (5, 2), "pseudo_labels": (1, 0)}[path.stem]
    assert pictures >= expected[0] and len(tables) >= expected[1], \
        f"{path.name}: {pictures} pictures and {len(tables)} tables stored; expected at least {expected}"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    limit = LIMIT_S[path.stem]
    # the notebooks' temporary folders (datasets, runs: ~170 MB) go under pytest's tmp_path, which
    # pytest prunes, even when the kernel is stopped before it removes them itself
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), "TMPDIR": str(tmp_path)}
    client = nbclient.NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(FOLDER)}},
                                     timeout=limit)
    start = time.monotonic()
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            left = limit - (time.monotonic() - start)
            if left <= 0:
                pytest.fail(f"{path.name}: over its {limit} s limit before cell {index}")
            client.timeout = max(1, int(left))
            try:
                client.execute_cell(cell, index)
            except nbclient.exceptions.CellTimeoutError:
                pytest.fail(f"{path.name}: cell {index} ran past the notebook's {limit} s limit")
            except nbclient.exceptions.CellExecutionError as exc:
                pytest.fail(f"{path.name}: cell {index} raised {exc.ename}: {exc.evalue}")

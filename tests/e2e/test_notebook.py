"""notebooks/quickstart.ipynb runs top to bottom (debug=smoke) in a Jupyter kernel on this interpreter."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs() -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # A kernel spec for this very interpreter, first on Jupyter's search path: the kernel is this venv's python
    # (with this venv's ipykernel) whatever `python3` kernels the machine or the user has installed.
    spec = tmp_path / "jupyter" / "kernels" / "stylex-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "stylex tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("STYLEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    work = tmp_path / "work"
    work.mkdir()

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, kernel_name="stylex-test", timeout=600,
                            resources={"metadata": {"path": str(work)}}).execute()

    out = work / "outputs" / "quickstart"
    assert len(list((out / "run" / "images").glob("*__*.json"))) == 4
    assert (out / "run" / "overlays" / "astronaut__brick.regions-content.png").is_file()
    for name in ("metrics.csv", "summary.csv", "summary.md", "grid.png"):
        assert (out / "eval" / name).is_file(), name
    shown = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(shown) >= 6  # the inputs, one strip per output (4), the grid

"""Every notebook in notebooks/ is stored without outputs and executes top to bottom (nbclient)
at the small sizes its parameters cell sets."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[test]' (nbformat, nbclient)")
nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]' (nbclient, ipykernel)")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: notebook -> text its outputs must contain (the notebook did its job, not only ran)
EXPECT = {
    "01_quick_start": ["5 episodes from", "(240, 320, 3)"],
    "02_inspect_dataset": ["successes /", "arms:"],
    "03_sim_vs_human_cost": ["break-even:", "per successful episode", "rejected_share must be"],
    "04_sweep_analysis": ["4 jobs, 4 ok"],
}
SLOW = {"04_sweep_analysis"}  # runs a 4-job multirun in subprocesses


def test_every_notebook_is_tested_and_stored_without_outputs():
    names = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == sorted(EXPECT)
    for name in names:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{name}: one cell tagged 'parameters'"


def _texts(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                out.append(o.text)
            elif o.output_type in ("execute_result", "display_data"):
                out.append(str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(EXPECT)],
)
def test_notebook_executes(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's scratch datasets go here
    monkeypatch.setenv("MUJOCO_GL", "egl")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell on any error
    text = _texts(nb)
    for want in EXPECT[name]:
        assert want in text, f"{name}: {want!r} not in its outputs"
    images = sum(
        1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    )
    assert images >= 1, f"{name} drew no plot"

"""notebooks/quickstart.ipynb runs top to bottom with nbclient on the preloaded kernel, against the real
Docker engine, and leaves the widget state a reader would see: the run followed to Completed, the history
with both runs compared."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from notebook_kernel import RUN_DETAILS_VIEW, RUN_HISTORY_VIEW, install_test_kernel

from jupyter_amltrain.engine.images.spec import ImageSpec

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _text(cell: Any) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", "") or str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quickstart_notebook_runs_on_the_preloaded_kernel(
    tmp_path: Path, amltrain_home: Path, base_image: str, monkeypatch: pytest.MonkeyPatch,
    fresh_environment_images: Callable[[ImageSpec], None],
) -> None:
    kernels = install_test_kernel(tmp_path / "prefix", "amltrain")  # the name the notebook asks for
    monkeypatch.setenv("JUPYTER_PATH", str(kernels.parent))
    folder = tmp_path / "nb"
    shutil.copytree(NOTEBOOKS, folder)
    monkeypatch.setenv("JPY_SESSION_NAME", str(folder / "quickstart.ipynb"))
    notebook = nbformat.read(folder / "quickstart.ipynb", as_version=4)
    assert notebook.metadata.kernelspec.name == "amltrain"
    NotebookClient(notebook, timeout=600, kernel_name="amltrain",
                   resources={"metadata": {"path": str(folder)}}).execute()

    cells = {cell.source.splitlines()[0]: _text(cell) for cell in notebook.cells if cell.cell_type == "code"}
    assert cells['print(ws.name, ws.location, ws.discovery_url, sep="\\n")'].startswith("amltrain-examples\nlocal")
    built = cells["%%aml_env quickstart-env"]
    assert "Environment 'quickstart-env' version 1 registered" in built and "Image hash: " in built
    assert "cache miss, built in" in built or "cache hit" in built
    assert "Compute 'cpu-cluster' is ready: up to 2 run(s) at once" in cells["%aml_compute create cpu-cluster "
                                                                                  "--max-nodes 2 --gpus 1"]
    waited = cells["run2 = %aml_submit --wait --experiment quickstart train.py --epochs 20 --lr 0.01"]
    assert "Completed after" in waited and "loss" in waited
    assert "('Completed'," in cells['run.wait_for_completion()["status"], run.get_metrics()["loss"][-1], '
                                    'run2.get_metrics()["loss"][-1]']
    assert "epoch  20  loss" in cells["%aml_logs {run2.id}"]

    states = notebook.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    models = [entry["state"] for entry in states.values()]
    details = [m for m in models if m.get("_anywidget_id") == RUN_DETAILS_VIEW and m.get("status") == "Completed"]
    followed = [m for m in details if len(m["metrics"].get("loss", {}).get("values", [])) == 20]
    assert followed and any("epoch  20" in "\n".join(m["log_lines"]) for m in followed)
    assert all("esm" in m or "_esm" in m for m in details)  # the front-end code travels with the state
    histories = [m for m in models if m.get("_anywidget_id") == RUN_HISTORY_VIEW and len(m["compare"]) == 2]
    assert histories and histories[-1]["compare_metric"] == "loss"
    assert {len(series["values"]) for series in histories[-1]["compare"].values()} == {20}

"""The example notebooks run headlessly, top to bottom, in a real kernel against the real Docker engine."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from jupyter_amltrain.engine.images.spec import ImageSpec

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _execute(name: str, folder: Path) -> nbformat.NotebookNode:
    shutil.copytree(NOTEBOOKS, folder, dirs_exist_ok=True)
    notebook = nbformat.read(folder / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def _text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.usefixtures("fresh_environment_images")
def test_train_on_local_notebook_runs_in_all_three_modes(tmp_path: Path, amltrain_home: Path) -> None:
    out = _text(_execute("train-on-local.ipynb", tmp_path / "nb"))
    assert out.count("Execution Summary") == 3
    assert "Switch Docker engine" not in out and "Docker engine not installed" not in out
    assert "we have min MSE" in out
    assert "best_ridge_model 1 file://" in out


@pytest.mark.docker
def test_seed_walkthrough_notebook_runs(tmp_path: Path, amltrain_home: Path,
                                       fresh_environment_images: Callable[[ImageSpec], None]) -> None:
    dockerfile = ('\nFROM mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210615.v1\n'
                  'RUN echo "Hello from custom container!"\n')
    fresh_environment_images(ImageSpec(dockerfile=dockerfile, user_managed=True))
    out = _text(_execute("custom-docker-image.ipynb", tmp_path / "nb"))
    assert "Creating a new compute target..." in out
    assert "Hello from custom container!" in out
    assert "epoch 2: accuracy 0.90" in out
    assert "'accuracy': [0.8, 0.85" in out

"""The preloaded kernel, started as Jupyter starts it, used the way the issue's "done" scenario reads:
%%aml_env with a pip package, %aml_compute create, ``run = %aml_submit train.py --epochs 3``, the widget
filling with log lines and a metric curve while the container runs, and %aml_runs listing the run."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from notebook_kernel import RUN_DETAILS_VIEW, RUN_HISTORY_VIEW, TRAIN_PY, Kernel, install_test_kernel

from jupyter_amltrain.core.environment import image_spec
from jupyter_amltrain.engine.images.spec import ImageSpec
from jupyter_amltrain.notebook.env_cell import parse_env_cell
from jupyter_amltrain.widgets.fallback import WIDGET_VIEW_MIME

ENV_CELL = """%%aml_env tqdm-env
dependencies:
  - pip:
      - tqdm
docker:
  base_image: amltrain/base:bookworm
variables:
  GREETING: "{not} $expanded"
"""


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_preloaded_kernel_runs_the_notebook_workflow(
    tmp_path: Path, project: Path, amltrain_home: Path, base_image: str,
    fresh_environment_images: Callable[[ImageSpec], None],
) -> None:
    # Same image as the quickstart's environment: forget it, so this run shows a real build.
    fresh_environment_images(image_spec(parse_env_cell("x", ENV_CELL.split("\n", 1)[1]).environment))
    kernels = install_test_kernel(tmp_path / "prefix", "amltrain-test")
    notebook = project / "experiments" / "Quick Start.ipynb"
    notebook.parent.mkdir()
    notebook.write_text("{}")
    (notebook.parent / "train.py").write_text(TRAIN_PY)
    (project / "not-in-snapshot.txt").write_text("the notebook's folder is snapshotted, not the project\n")
    # The server starts kernels with the notebook's path in JPY_SESSION_NAME; the working directory is
    # deliberately elsewhere so that only the session can say which folder to snapshot.
    kernel = Kernel(kernels, "amltrain-test", cwd=project,
                    env={**os.environ, "JPY_SESSION_NAME": str(notebook)})
    try:
        _workflow(kernel, notebook, amltrain_home)
    finally:
        kernel.close()


def _workflow(kernel: Kernel, notebook: Path, home: Path) -> None:
    # ws is preloaded from the project's config.json; the extension is loaded (and loading it again is fine).
    assert kernel.value("[type(ws).__name__, ws.name, __session__]") == ["Workspace", "ws-test", str(notebook)]
    assert "already loaded" in kernel.ok("%load_ext jupyter_amltrain").stdout

    built = kernel.ok(ENV_CELL)
    assert "Environment 'tqdm-env' version 1 registered in workspace 'ws-test'" in built.stdout
    assert "cache miss, built in" in built.stdout and "Image hash: " in built.stdout
    assert any(WIDGET_VIEW_MIME in data for data in built.displays)  # the live build progress
    assert kernel.value("tqdm_env.environment_variables") == {"GREETING": "{not} $expanded"}
    again = kernel.ok(ENV_CELL)
    assert "version 1 registered" in again.stdout and "cache hit, no build" in again.stdout

    created = kernel.ok("%aml_compute create cpu-pool --max-nodes 2 --gpus 0")
    assert "Compute 'cpu-pool' is ready: up to 2 run(s) at once, 0 GPU(s) per node" in created.stdout
    assert "cpu-pool" in kernel.ok("%aml_compute list").displays[0]["text/plain"]

    submitted = kernel.ok("run = %aml_submit train.py --epochs 3 --wait-for-go --needs tqdm")
    assert "to cpu-pool with environment tqdm-env; snapshot of " + str(notebook.parent) in submitted.stdout
    assert any(WIDGET_VIEW_MIME in data for data in submitted.displays)
    run_id = kernel.value("run.id")
    assert run_id.startswith("Quick_Start_")  # the experiment is named after the notebook
    details = lambda: kernel.model(RUN_DETAILS_VIEW, run_id=run_id) or {}  # noqa: E731

    # Mid-run: the widget shows the container's first epoch, its metric point and its log line.
    kernel.wait_for(lambda: details().get("status") == "Running"
                    and len(details().get("metrics", {}).get("loss", {}).get("values", [])) == 1
                    and "epoch 1 loss 1.000" in details().get("log_lines", []),
                    what="the widget to show epoch 1 while the job runs")
    assert "tqdm " in "\n".join(details()["log_lines"]) and details()["refreshing"] is True
    workdir = home / "workspaces" / "ws-test" / "runs" / run_id / "wd"
    assert (workdir / "train.py").exists() and not (workdir / "not-in-snapshot.txt").exists()
    (workdir / "go").touch()

    kernel.wait_for(lambda: details().get("status") == "Completed" and details().get("refreshing") is False,
                    what="the widget to reach Completed")
    final = details()
    assert final["metrics"]["loss"]["values"] == [1.0, 0.5, 0.3333]
    assert final["log_lines"][-1] == "done" and final["terminal"] is True
    assert [h["status"] for h in final["history"]][-3:] == ["Running", "Finalizing", "Completed"]

    listed = kernel.ok("%aml_runs")
    assert run_id in listed.displays[0]["text/plain"] and "0.3333" in listed.displays[0]["text/plain"]
    history: dict[str, Any] = kernel.model(RUN_HISTORY_VIEW) or {}
    row = next(r for r in history["rows"] if r["run_id"] == run_id)
    assert row["status"] == "Completed" and row["metrics"] == {"loss": 0.3333}
    assert row["environment"] == "tqdm-env" and row["target"] == "cpu-pool"

    logs = kernel.ok(f"%aml_logs {run_id}").stdout
    assert "== user_logs/std_log.txt ==" in logs and "epoch 3 loss 0.333" in logs and "== run Completed ==" in logs
    assert "already ended: Completed" in kernel.ok(f"%aml_cancel {run_id}").stdout
    status = kernel.ok("%aml_compute status cpu-pool").stdout
    assert "0 in use of 2" in status
    gpu = kernel.ok("%aml_gpu")
    assert WIDGET_VIEW_MIME in gpu.displays[0]

    # A second run, canceled from the magic while it waits in its first epoch.
    kernel.ok("run2 = %aml_submit --no-widget train.py --wait-for-go")
    second = kernel.value("run2.id")
    kernel.ok("import time\nwhile run2.get_status() != 'Running': time.sleep(0.2)", timeout=600)
    canceled = kernel.ok(f"%aml_cancel {second}").stdout
    assert f"Run {second}: CancelRequested" in canceled
    assert kernel.value("run2.wait_for_completion(raise_on_error=False)['status']") == "Canceled"
    failed = kernel.execute("%aml_logs no-such-run")
    assert failed.error is not None and "No run 'no-such-run' in workspace 'ws-test'" in failed.error

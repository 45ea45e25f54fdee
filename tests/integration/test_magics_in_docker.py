"""The magics in an in-process IPython shell against the real Docker engine: the live widget follows a
container run step by step, --wait and --no-widget print v1's text, the cancel button stops a running job,
and a Dockerfile cell is built exactly as written."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output
from notebook_kernel import TRAIN_PY

from jupyter_amltrain.core.environment import image_spec
from jupyter_amltrain.engine.images.spec import ImageSpec, image_tag
from jupyter_amltrain.notebook.magics import AmlTrainMagics
from jupyter_amltrain.widgets.fallback import WIDGET_VIEW_MIME

BASE_ENV = "docker:\n  base_image: amltrain/base:bookworm\n"


@pytest.fixture
def ip(project: Path, base_image: str) -> Iterator[Any]:
    shell = start_ipython() or __import__("IPython").get_ipython()
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "jupyter_amltrain")
    shell.register_magics(AmlTrainMagics(shell))
    yield shell
    shell.reset(new_session=False)


def _until(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.docker
@pytest.mark.timeout(600)
def test_widget_follows_a_container_run_and_the_static_output_ends_completed(ip: Any, project: Path,
                                                                             tmp_path: Path) -> None:
    notebook = project / "nb" / "sweep.ipynb"
    notebook.parent.mkdir()
    notebook.write_text("{}")
    (notebook.parent / "train.py").write_text(TRAIN_PY)
    ip.user_ns["__session__"] = str(notebook)  # as ipykernel sets it from JPY_SESSION_NAME
    ip.run_cell_magic("aml_env", "base", BASE_ENV)
    run = ip.run_line_magic("aml_submit", "train.py --epochs 3 --wait-for-go")
    details = ip.magics_manager.registry["AmlTrainMagics"].last_details
    assert run.experiment.name == "sweep" and details.run_id == run.id
    seen: dict[str, list[Any]] = {"status": [], "points": [], "lines": []}
    view = details.widget
    view.observe(lambda c: seen["status"].append(c["new"]), names=["status"])
    view.observe(lambda c: seen["points"].append(len(c["new"].get("loss", {}).get("values", []))), names=["metrics"])
    view.observe(lambda c: seen["lines"].append(len(c["new"])), names=["log_lines"])

    _until(lambda: "epoch 1 loss 1.000" in view.log_lines and view.metrics.get("loss", {}).get("values") == [1.0],
           "epoch 1 in the widget")
    assert view.status == "Running" and details.refreshing
    (run._layout().wd / "go").touch()
    with capture_output() as out:
        ip.run_line_magic("aml_logs", f"{run.id} --follow")  # returns when the run ends
    assert "epoch 3 loss 0.333" in out.stdout and out.stdout.rstrip().endswith("== run Completed ==")
    assert details.wait(timeout=300)
    assert view.status == "Completed" and view.metrics["loss"]["values"] == [1.0, 0.5, 0.3333]
    assert seen["points"][-2:] == [1, 3] or seen["points"][-3:] == [1, 2, 3]  # the curve grew while it ran
    assert seen["status"][-1] == "Completed" and "Running" in seen["status"]
    assert view.log_lines[-1] == "done" and not view.refreshing

    with capture_output() as out:
        ip.run_cell("1")  # after a cell, the finished run's displayed text and HTML are rewritten
    updated = [o.data for o in out.outputs if WIDGET_VIEW_MIME in o.data]
    assert updated and "Completed" in updated[-1]["text/plain"] and "epoch 3 loss 0.333" in updated[-1]["text/plain"]

    with capture_output() as out:
        second = ip.run_line_magic("aml_submit", "--wait --no-widget --experiment text-only train.py --epochs 2")
    assert second.get_status() == "Completed" and second.experiment.name == "text-only"
    assert "Streaming user_logs/std_log.txt" in out.stdout and "epoch 2 loss 0.500" in out.stdout
    assert "Execution Summary" in out.stdout and not [o for o in out.outputs if WIDGET_VIEW_MIME in o.data]

    with capture_output() as out:
        third = ip.run_line_magic("aml_submit", "--wait train.py --epochs 1")
    assert third.get_status() == "Completed" and f"Run {third.id}: Completed after" in out.stdout
    final = [o.data for o in out.outputs if WIDGET_VIEW_MIME in o.data][-1]
    assert "Completed" in final["text/plain"]  # --wait rewrote the output itself


@pytest.mark.docker
@pytest.mark.timeout(600)
def test_cancel_button_stops_a_running_container(ip: Any, project: Path) -> None:
    (project / "train.py").write_text(TRAIN_PY)
    ip.run_cell_magic("aml_env", "base", BASE_ENV)
    run = ip.run_line_magic("aml_submit", "train.py --wait-for-go")
    details = ip.magics_manager.registry["AmlTrainMagics"].last_details
    _until(lambda: "epoch 1 loss 1.000" in details.widget.log_lines, "the job to start")
    details.widget._handle_custom_msg({"type": "cancel"}, [])  # the button
    assert details.widget.cancel_state == "requested"
    assert details.wait(timeout=300)
    assert details.widget.status == "Canceled" and run.get_status() == "Canceled"
    with capture_output() as out:
        ip.run_line_magic("aml_cancel", run.id)
    assert f"Run {run.id} already ended: Canceled; nothing to cancel." in out.stdout


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_dockerfile_cell_is_built_as_written_then_cached(ip: Any, docker_client: docker.DockerClient,
                                                        fresh_environment_images: Callable[[ImageSpec], None]) -> None:
    body = ("# a comment first\nFROM amltrain/base:bookworm\n"
            "RUN echo 'literal {braces} ${HOME} $((1+1))' > /amltrain-marker.txt\n")
    with capture_output() as out:
        ip.run_cell_magic("aml_env", "marked", body)
    assert "cache miss, built in" in out.stdout
    env = ip.user_ns["marked"]
    tag = image_tag(image_spec(env))
    assert f"Image {tag}: cache miss" in out.stdout and f"Image hash: {tag.rsplit('_', 1)[1]}" in out.stdout
    marker = docker_client.containers.run(tag, ["cat", "/amltrain-marker.txt"], remove=True).decode()
    assert marker.strip() == "literal {braces} ${HOME} $((1+1))"
    with capture_output() as out:
        ip.run_cell_magic("aml_env", "marked", body)
    assert f"Image {tag}: cache hit, no build" in out.stdout and "version 1 registered" in out.stdout


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_aml_submit_on_a_python3_only_image_says_which_interpreter_and_user(
        ip: Any, project: Path, docker_client: docker.DockerClient) -> None:
    """A user's image with only python3 (no `python`, no venv): %%aml_env names what jobs will run, and
    %aml_submit runs the script there to Completed."""
    from user_images import user_image

    image = user_image(docker_client, "python3-only")
    (project / "train.py").write_text(TRAIN_PY)
    with capture_output() as out:
        ip.run_cell_magic("aml_env", "bare", f"docker:\n  base_image: {image}\nuser_managed: true\n")
    assert "jobs run python3 (Python 3.11" in out.stdout and "as root" in out.stdout, out.stdout
    with capture_output() as out:
        run = ip.run_line_magic("aml_submit", "--wait --no-widget train.py --epochs 2")
    assert run.get_status() == "Completed", out.stdout
    assert "epoch 2 loss 0.500" in out.stdout
    assert run.get_properties()["amltrain.interpreter"].startswith("python3 (Python 3.11")

"""The seed's workflow (a custom Docker image, v1 API) on the images users really bring: each runs to Completed
with its metrics, or fails at Preparing with an error that names the fix. Never exit 127 at Running."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
from user_images import user_image

from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import AmlCompute, ComputeTarget
from jupyter_amltrain.core.conda_dependencies import CondaDependencies
from jupyter_amltrain.core.environment import image_spec
from jupyter_amltrain.engine.images.spec import ImageSpec
from jupyter_amltrain.engine.runs.records import status_history
from jupyter_amltrain.exceptions import ActivityFailedException

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

# Valid Python 3.6: it runs in every image of the matrix.
TRAIN = """
import os, platform, sys
from jupyter_amltrain.core import Run
run = Run.get_context()
print("training inside Python", platform.python_version(), "as uid", os.getuid())
print("wrapper ran:", os.environ.get("IMAGE_WRAPPER_RAN", "no"), "HOME:", os.environ.get("HOME"))
if len(sys.argv) > 1:
    print("imported", __import__(sys.argv[1]).__name__)
with open(os.path.join(os.environ["HOME"], ".written-by-the-job"), "w") as home_file:
    home_file.write("HOME is usable")
with open("outputs/model.txt", "w") as model:
    model.write("weights")
run.log("accuracy", 0.91)
"""


@dataclass(frozen=True)
class Case:
    image: str
    system_managed: bool = False
    fails: tuple[str, ...] = ()  # words of the error at Preparing; empty: the run completes
    prints: tuple[str, ...] = ()  # words of the job's output
    control_log: tuple[str, ...] = ()  # words of azureml-logs/60_control_log.txt
    build_log: tuple[str, ...] = ()
    marks: list[Any] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.image}-{'system' if self.system_managed else 'user'}-managed"


CASES = [
    Case("python3-only", prints=("training inside Python 3.11",),
         control_log=("interpreter python3 (no usable python on the image's PATH",)),
    Case("python3-only", system_managed=True, prints=("imported six",),
         build_log=("its python3 has no venv module; creating", "with uv")),
    Case("python-is-python3", control_log=("interpreter python, Python 3.11",)),
    Case("venv-on-path", control_log=("/opt/venv/bin/python",)),
    Case("entrypoint-wrapper", prints=("wrapper ran: yes",),
         control_log=("ENTRYPOINT ['/usr/local/bin/wrapper.sh'] runs first",)),
    Case("entrypoint-wrapper", system_managed=True, prints=("wrapper ran: yes", "imported six")),
    Case("entrypoint-fixed-program", prints=("wrapper ran: no",),
         control_log=("ENTRYPOINT ['/bin/echo', 'serving the model'] is bypassed",)),
    Case("entrypoint-fails", fails=("ENTRYPOINT", "exited with code 3 before the job's command ran",
                                    "licence not accepted", "--entrypoint=")),
    Case("non-root", prints=("as uid 1000", "HOME: /home/trainer"),
         control_log=("runs as the image's user trainer (uid 1000)",)),
    Case("non-root", system_managed=True, prints=("as uid 1000", "imported six")),
    Case("non-root-no-home", prints=("as uid 1000", "HOME: /tmp")),
    Case("bullseye", prints=("training inside Python 3.9",), control_log=("interpreter python3",)),
    # Debian 11's python3 has neither venv nor distutils (python3-venv, python3-distutils): nothing can make an
    # environment in it, so the run stops at Preparing with the package to install.
    Case("bullseye", system_managed=True, fails=("Python 3.9.2 without its venv module", "python3-venv")),
    Case("sid", prints=("training inside Python 3.1",)),
    Case("sid", system_managed=True, prints=("imported six",)),
    Case("python2-only", fails=("has no usable Python", "python (Python 2.7", "Python 3.6 or newer",
                                "interpreter_path", "user_managed_dependencies = False", "PATH=")),
    Case("python2-only", system_managed=True, fails=("neither conda nor python3",)),
    Case("no-shell", prints=("training inside Python 3.11",)),
    Case("no-shell", system_managed=True, fails=("has no shell (/bin/sh)", "user_managed_dependencies = True")),
    Case("foreign-architecture", fails=("another CPU architecture", "exec format error")),
]


@pytest.fixture
def compute(ws: Workspace) -> ComputeTarget:
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=1)
    return ComputeTarget.create(ws, "cpu-cluster", config)


def _log(run: Any, name: str) -> str:
    return str(run.get_details_with_logs()["logFiles"].get(name, ""))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_user_image_runs_the_seed_or_fails_at_preparing(
        case: Case, ws: Workspace, project: Path, compute: ComputeTarget, docker_client: docker.DockerClient,
        base_image: str, capsys: pytest.CaptureFixture[str],
        fresh_environment_images: Callable[[ImageSpec], None]) -> None:
    image = user_image(docker_client, case.image)
    (project / "example").mkdir()
    (project / "example" / "train.py").write_text(TRAIN)
    env = Environment(f"user-image-{case.image}")
    env.docker.base_image = image
    env.python.user_managed_dependencies = not case.system_managed
    arguments: list[str] = []
    if case.system_managed:
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"])
        arguments = ["six"]
    if case.build_log:
        fresh_environment_images(image_spec(env))  # the build must happen (and print) in this test
    src = ScriptRunConfig(source_directory="example", script="train.py", arguments=arguments,
                          compute_target=compute, environment=env)
    run = Experiment(ws, "user-images").submit(src)
    if case.fails:
        with pytest.raises(ActivityFailedException):
            run.wait_for_completion(show_output=True)
        message = run.get_details()["error"]["error"]["message"]
        for words in case.fails:
            assert words in message, message
        statuses = [entry["status"] for entry in status_history(ws._local.store, run.id)]
        assert "Preparing" in statuses and not {"Starting", "Running"} & set(statuses), statuses
        return
    run.wait_for_completion(show_output=True)
    out = capsys.readouterr().out
    assert run.get_status() == "Completed", out
    assert run.get_metrics() == {"accuracy": 0.91}
    for words in case.prints:
        assert words in out, out
    control = _log(run, "azureml-logs/60_control_log.txt")
    for words in case.control_log:
        assert words in control, control
    build = _log(run, "azureml-logs/20_image_build_log.txt")
    for words in case.build_log:
        assert words in build, build
    # Whoever the job ran as, what comes back belongs to the person who submitted.
    model = project.parent / "model.txt"
    run.download_file("outputs/model.txt", str(model))
    assert model.read_text() == "weights"
    run_folder = Path(ws._local.layout.run_dir(run.id))
    for path in [run_folder, *run_folder.rglob("*")]:
        assert path.lstat().st_uid == os.getuid(), path
    properties = run.get_properties()
    assert properties["amltrain.interpreter"] and properties["amltrain.user"]


def test_interpreter_resolution_is_kept_with_the_image(ws: Workspace, project: Path, compute: ComputeTarget,
                                                      docker_client: docker.DockerClient, base_image: str) -> None:
    """The second run on an image reads its resolution from the cache: no probe container is started."""
    image = user_image(docker_client, "python3-only")
    (project / "example").mkdir()
    (project / "example" / "train.py").write_text(TRAIN)
    env = Environment("cached")
    env.docker.base_image = image
    env.python.user_managed_dependencies = True
    src = ScriptRunConfig(source_directory="example", script="train.py", compute_target=compute, environment=env)
    first = Experiment(ws, "cache").submit(src)
    first.wait_for_completion()
    events = docker_client.events(decode=True, filters={"label": "amltrain.probe=1", "event": "create"},
                                  since=int(__import__("time").time()))
    second = Experiment(ws, "cache").submit(src)
    second.wait_for_completion()
    events.close()
    assert [event for event in events] == []
    assert "Looking inside" in _log(first, "azureml-logs/20_image_build_log.txt")
    assert "Looking inside" not in _log(second, "azureml-logs/20_image_build_log.txt")
    assert second.get_status() == "Completed"

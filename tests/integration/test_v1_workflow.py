"""The v1 workflows, end to end, with only the import root changed: the public train-on-local sample in its
three modes, and the seed article's two custom-image variants. Real Docker, real package installs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import AmlCompute, ComputeTarget
from jupyter_amltrain.core.compute_target import ComputeTargetException
from jupyter_amltrain.core.conda_dependencies import CondaDependencies
from jupyter_amltrain.core.environment import image_spec
from jupyter_amltrain.core.runconfig import DEFAULT_CPU_IMAGE, RunConfiguration
from jupyter_amltrain.engine.images.spec import ImageSpec
from jupyter_amltrain.samples import TRAIN_ON_LOCAL


@pytest.fixture
def sample(project: Path) -> Path:
    shutil.copytree(TRAIN_ON_LOCAL, project, dirs_exist_ok=True)
    return project


def _check_train_on_local(run, ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    details = run.wait_for_completion(show_output=True)
    printed = capsys.readouterr().out
    assert printed.startswith(f"RunId: {run.id}\n")
    assert "Streaming user_logs/std_log.txt" in printed
    assert "alpha is 0.95, and mse is" in printed
    assert "Execution Summary\n=================\nRunId: " + run.id in printed
    assert details["status"] == "Completed" and run.get_status() == "Completed"
    metrics = run.get_metrics()
    assert len(metrics["alpha"]) == 20 and len(metrics["mse"]) == 20
    best = metrics["alpha"][min(range(20), key=metrics["mse"].__getitem__)]
    files = run.get_file_names()
    assert f"outputs/ridge_{best:0.2f}.pkl" in files
    assert "azureml-logs/70_driver_log.txt" in files and "user_logs/std_log.txt" in files
    model = run.register_model(model_name="best_ridge_model", model_path=f"./outputs/ridge_{best:0.2f}.pkl")
    assert model.name == "best_ridge_model" and model.version >= 1
    assert Path(model.get_model_path()).is_file()


def test_train_on_local_user_managed(ws: Workspace, sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = Experiment(workspace=ws, name="train-on-local")
    run_config = RunConfiguration()
    run_config.environment.python.user_managed_dependencies = True
    src = ScriptRunConfig(source_directory="./", script="train.py", run_config=run_config)
    run = exp.submit(src)
    _check_train_on_local(run, ws, capsys)
    assert run.get_details()["properties"]["amltrain.backend"] == "process"


@pytest.mark.slow
def test_train_on_local_system_managed(ws: Workspace, sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = Experiment(workspace=ws, name="train-on-local")
    run_config = RunConfiguration()
    run_config.environment.python.user_managed_dependencies = False
    run_config.auto_prepare_environment = True
    run_config.environment.python.conda_dependencies = CondaDependencies.create(conda_packages=["scikit-learn"])
    run = exp.submit(ScriptRunConfig(source_directory="./", script="train.py", run_config=run_config))
    _check_train_on_local(run, ws, capsys)
    # the second submission reuses the cached environment
    again = exp.submit(ScriptRunConfig(source_directory="./", script="train.py", run_config=run_config))
    again.wait_for_completion()
    assert again.get_status() == "Completed"
    assert "Materialized conda environment not found" not in _log(again, "azureml-logs/20_image_build_log.txt")


@pytest.mark.docker
@pytest.mark.slow
def test_train_on_local_docker_default_cpu_image(ws: Workspace, sample: Path, capsys: pytest.CaptureFixture[str],
                                                 fresh_environment_images: Callable[[ImageSpec], None]) -> None:
    exp = Experiment(workspace=ws, name="train-on-local")
    run_config = RunConfiguration()
    run_config.environment.python.user_managed_dependencies = False
    run_config.auto_prepare_environment = True
    run_config.environment.docker.enabled = True
    run_config.environment.docker.base_image = DEFAULT_CPU_IMAGE
    run_config.environment.python.conda_dependencies = CondaDependencies.create(
        conda_packages=["scikit-learn"], pip_packages=["joblib"])
    run = exp.submit(ScriptRunConfig(source_directory="./", script="train.py", run_config=run_config))
    _check_train_on_local(run, ws, capsys)
    assert run.get_details()["properties"]["amltrain.backend"] == "docker"
    # resubmitting the unchanged folder and environment starts without a rebuild
    again = exp.submit(ScriptRunConfig(source_directory="./", script="train.py", run_config=run_config))
    again.wait_for_completion()
    assert again.get_status() == "Completed"
    assert "cache hit" in _log(again, "azureml-logs/20_image_build_log.txt")
    snapshot = run.get_details()["properties"]["ContentSnapshotId"]
    assert again.get_details()["properties"]["ContentSnapshotId"] == snapshot


def _log(run, name: str) -> str:  # type: ignore[no-untyped-def]
    files = run.get_details()["logFiles"]
    return Path(files[name]).read_text() if name in files else ""


SEED_TRAIN = """
from jupyter_amltrain.core import Run
run = Run.get_context()
print("training inside", __import__("platform").python_version())
run.log("accuracy", 0.91)
"""


def _seed_compute(ws: Workspace) -> ComputeTarget:
    # the seed's code, verbatim but for the import root
    cluster_name = "gpu-cluster"
    try:
        compute_target = ComputeTarget(workspace=ws, name=cluster_name)
        print("Found existing compute target.")
    except ComputeTargetException:
        print("Creating a new compute target...")
        compute_config = AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=4)
        compute_target = ComputeTarget.create(ws, cluster_name, compute_config)
        compute_target.wait_for_completion(show_output=True)
    status = compute_target.get_status().serialize()
    assert list(status)[:3] == ["currentNodeCount", "targetNodeCount", "nodeStateCounts"]
    assert status["scaleSettings"] == {"minNodeCount": 0, "maxNodeCount": 4, "nodeIdleTimeBeforeScaleDown": "PT1800S"}
    return compute_target


@pytest.mark.docker
def test_seed_custom_base_image_from_private_registry(  # type: ignore[no-untyped-def]
        ws: Workspace, project: Path, private_registry, capsys: pytest.CaptureFixture[str]) -> None:
    image = private_registry.push_base_image("fastai2:latest")
    (project / "fastai-example").mkdir()
    (project / "fastai-example" / "train.py").write_text(SEED_TRAIN)
    fastai_env = Environment("fastai2")
    fastai_env.docker.base_image = image
    fastai_env.python.user_managed_dependencies = True
    fastai_env.docker.base_image_registry.address = private_registry.address
    fastai_env.docker.base_image_registry.username = private_registry.username
    fastai_env.docker.base_image_registry.password = private_registry.password
    compute_target = _seed_compute(ws)
    src = ScriptRunConfig(source_directory="fastai-example", script="train.py", compute_target=compute_target,
                          environment=fastai_env)
    run = Experiment(ws, "Tutorial-fastai").submit(src)
    run.wait_for_completion(show_output=True)
    out = capsys.readouterr().out
    assert "Creating a new compute target..." in out and "training inside" in out
    assert run.get_status() == "Completed" and run.get_metrics() == {"accuracy": 0.91}
    _assert_no_secret(ws, private_registry.password)


@pytest.mark.docker
def test_seed_custom_dockerfile(ws: Workspace, project: Path, capsys: pytest.CaptureFixture[str],
                                fresh_environment_images: Callable[[ImageSpec], None]) -> None:
    (project / "fastai-example").mkdir()
    (project / "fastai-example" / "train.py").write_text(SEED_TRAIN)
    fastai_env = Environment("fastai2")
    fastai_env.python.user_managed_dependencies = True
    dockerfile = r"""
FROM mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210615.v1
RUN echo "Hello from custom container!"
"""
    fastai_env.docker.base_image = None
    fastai_env.docker.base_dockerfile = dockerfile
    fresh_environment_images(image_spec(fastai_env))  # a leftover image would hide the build's output
    compute_target = _seed_compute(ws)
    src = ScriptRunConfig(source_directory="fastai-example", script="train.py", compute_target=compute_target,
                          environment=fastai_env)
    run = Experiment(ws, "Tutorial-fastai").submit(src)
    run.wait_for_completion(show_output=True)
    out = capsys.readouterr().out
    assert "Hello from custom container!" in out  # streamed from the image build log
    assert run.get_status() == "Completed"
    assert "Hello from custom container!" in _log(run, "azureml-logs/20_image_build_log.txt")


def _assert_no_secret(ws: Workspace, secret: str) -> None:
    root = ws._local.root
    for path in root.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"password found in {path}"

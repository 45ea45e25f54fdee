"""RunConfiguration defaults and runDefinition dict; ScriptRunConfig precedence, exclusivity and validation."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest

from jupyter_amltrain.core.environment import DEFAULT_CPU_IMAGE, Environment
from jupyter_amltrain.core.runconfig import (
    DEFAULT_GPU_IMAGE,
    DockerConfiguration,
    MpiConfiguration,
    PyTorchConfiguration,
    RunConfiguration,
    TensorflowConfiguration,
)
from jupyter_amltrain.core.script_run_config import ScriptRunConfig, get_run_config_from_script_run
from jupyter_amltrain.exceptions import UserErrorException

RUN_DEFINITION_KEYS = {
    "script",
    "command",
    "useAbsolutePath",
    "arguments",
    "framework",
    "communicator",
    "target",
    "maxRunDurationSeconds",
    "nodeCount",
    "environment",
    "history",
    "docker",
    "mpi",
    "pyTorch",
    "tensorflow",
    "amlCompute",
    "environmentVariables",
}


def test_image_constants() -> None:
    assert DEFAULT_CPU_IMAGE == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:20230227.v1"
    assert DEFAULT_GPU_IMAGE == "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.3-cudnn8-ubuntu20.04:20230227.v1"


def test_run_configuration_defaults() -> None:
    rc = RunConfiguration()
    assert rc.target == "local"
    assert (rc.script, rc.arguments, rc.command) == (None, [], "")
    assert (rc.framework, rc.communicator, rc.node_count) == ("Python", "None", 1)
    assert rc.max_run_duration_seconds is None
    assert rc.environment.name == "default-environment"
    assert rc.docker.use_docker is False
    assert rc.docker.shm_size == "2g"
    assert rc.history.directories_to_watch == ["logs"]
    assert rc.environment_variables == {}


def test_target_accepts_compute_objects_by_name() -> None:
    rc = RunConfiguration()
    rc.target = SimpleNamespace(name="gpu-box")
    assert rc.target == "gpu-box"
    with pytest.raises(UserErrorException, match="compute target name"):
        rc.target = 3


def test_auto_prepare_environment_is_a_stored_deprecated_no_op(caplog: pytest.LogCaptureFixture) -> None:
    rc = RunConfiguration()
    with caplog.at_level(logging.WARNING):
        rc.auto_prepare_environment = False
    assert "'auto_prepare_environment' is deprecated and unused" in caplog.text
    assert rc.auto_prepare_environment is False


def test_run_definition_dict_shape() -> None:
    rc = RunConfiguration(script="train.py", arguments=["--lr", 0.1])
    rc.environment.docker.base_image_registry.password = "pw"
    rc.environment_variables = {"A": "1"}
    data = rc._serialize_to_dict()
    assert data.keys() >= RUN_DEFINITION_KEYS
    assert data["arguments"] == ["--lr", "0.1"]
    assert data["history"] == {
        "outputCollection": True,
        "directoriesToWatch": ["logs"],
        "enableMLflowTracking": True,
        "snapshotProject": True,
    }
    assert data["docker"] == {"useDocker": False, "sharedVolumes": True, "shmSize": "2g", "arguments": []}
    assert data["environment"]["docker"]["baseImage"] == DEFAULT_CPU_IMAGE
    assert data["environment"]["docker"]["baseImageRegistry"]["password"] is None
    assert data["environmentVariables"] == {"A": "1"}
    assert "pw" not in repr(rc)


def test_run_definition_command_list_round_trips() -> None:
    rc = RunConfiguration(command=["python", "train.py", "--name", "a b"])
    assert shlex.split(rc._serialize_to_dict()["command"]) == ["python", "train.py", "--name", "a b"]


def test_pytorch_backend_is_validated() -> None:
    assert PyTorchConfiguration("Gloo").communication_backend == "gloo"
    with pytest.raises(UserErrorException, match="'Nccl' or 'Gloo'"):
        PyTorchConfiguration("mpi")


# ---- ScriptRunConfig ---------------------------------------------------------------------------------------


def test_script_run_config_defaults() -> None:
    src = ScriptRunConfig(source_directory=".", script="train.py", arguments=["--epochs", 3])
    rc = src.run_config
    assert rc.target == "local"
    assert rc.environment.name == "default-environment"
    assert rc.max_run_duration_seconds == 2592000
    assert rc.docker.use_docker is False


def test_compute_target_object_and_environment_are_applied() -> None:
    env = Environment("e")
    src = ScriptRunConfig(".", script="train.py", compute_target=SimpleNamespace(name="gpu"), environment=env)
    assert src.run_config.target == "gpu"
    assert src.run_config.environment is env


def test_environment_docker_settings_are_copied() -> None:
    env = Environment("e")
    env.docker.enabled = True
    env.docker.shm_size = "8g"
    env.docker.arguments = ["--ipc=host"]
    rc = ScriptRunConfig(".", script="train.py", environment=env).run_config
    assert (rc.docker.use_docker, rc.docker.shm_size, rc.docker.arguments) == (True, "8g", ["--ipc=host"])


def test_docker_runtime_config_wins_over_environment() -> None:
    env = Environment("e")
    env.docker.enabled = False
    docker = DockerConfiguration(use_docker=True)
    rc = ScriptRunConfig(".", script="train.py", environment=env, docker_runtime_config=docker).run_config
    assert rc.docker is docker


def test_docker_runtime_config_must_be_a_docker_configuration() -> None:
    with pytest.raises(UserErrorException, match="DockerConfiguration"):
        ScriptRunConfig(".", script="t.py", docker_runtime_config={"use_docker": True})  # type: ignore[arg-type]


def test_run_config_wins_and_ignored_arguments_warn(caplog: pytest.LogCaptureFixture) -> None:
    rc = RunConfiguration(script="from_rc.py", arguments=["--a"])
    rc.target = "cluster"
    with caplog.at_level(logging.WARNING):
        src = ScriptRunConfig(".", run_config=rc, compute_target="local", environment=Environment("x"))
    assert "following parameters will be ignored" in caplog.text
    assert src.run_config is rc
    assert src.run_config.target == "cluster"
    assert src.script == "from_rc.py"
    assert src.arguments == ["--a"]


def test_constructor_script_and_arguments_override_run_config(caplog: pytest.LogCaptureFixture) -> None:
    rc = RunConfiguration(script="from_rc.py", arguments=["--a"])
    with caplog.at_level(logging.WARNING):
        src = ScriptRunConfig(".", script="mine.py", arguments=["--b"], run_config=rc)
    assert "'script' provided in ScriptRunConfig initialization will take precedence" in caplog.text
    assert "'arguments' provided in ScriptRunConfig initialization will take precedence" in caplog.text
    assert "will be ignored" not in caplog.text  # only defaults were passed for the others
    effective = get_run_config_from_script_run(src)
    assert (effective.script, effective.arguments) == ("mine.py", ["--b"])
    assert (rc.script, rc.arguments) == ("from_rc.py", ["--a"])  # the user's object is not modified


def test_command_and_script_are_exclusive() -> None:
    with pytest.raises(UserErrorException) as raised:
        ScriptRunConfig(".", script="train.py", command=["python", "train.py"])
    assert "'command'" in str(raised.value) and "'script'" in str(raised.value)
    with pytest.raises(UserErrorException, match="mutually exclusive"):
        ScriptRunConfig(".", arguments=["--x"], command="python train.py")
    assert ScriptRunConfig(".", command=["ls", "-l"]).command == ["ls", "-l"]


@pytest.mark.parametrize(
    ("config", "framework", "communicator", "nodes"),
    [
        (MpiConfiguration(process_count_per_node=2, node_count=2), "Python", "IntelMpi", 2),
        (PyTorchConfiguration(node_count=3), "PyTorch", "nccl", 3),
        (TensorflowConfiguration(worker_count=4), "TensorFlow", "ParameterServer", 4),
    ],
)
def test_distributed_job_config(config: object, framework: str, communicator: str, nodes: int) -> None:
    rc = ScriptRunConfig(".", script="t.py", distributed_job_config=config).run_config  # type: ignore[arg-type]
    assert (rc.framework, rc.communicator, rc.node_count) == (framework, communicator, nodes)


def test_resume_from_is_refused_with_a_fix() -> None:
    with pytest.raises(UserErrorException, match="arguments"):
        ScriptRunConfig(".", script="t.py", resume_from=object())


# ---- _validate ---------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "mylib.py").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "entry.py").write_text("")
    return tmp_path


def test_validate_accepts_scripts_inside(project: Path) -> None:
    ScriptRunConfig(str(project), script="train.py")._validate()
    ScriptRunConfig(str(project), script="pkg/entry.py")._validate()
    ScriptRunConfig(str(project), command=["ls"])._validate()


def test_validate_typo_lists_files_and_suggests(project: Path) -> None:
    with pytest.raises(UserErrorException) as raised:
        ScriptRunConfig(str(project), script="trian.py")._validate()
    message = str(raised.value)
    assert f"Script 'trian.py' not found in source directory '{project}'" in message
    assert "Files there: mylib.py, train.py" in message
    assert "(did you mean 'train.py'?)" in message


def test_validate_suggests_across_subfolders(project: Path) -> None:
    with pytest.raises(UserErrorException, match=r"did you mean 'pkg/entry.py'"):
        ScriptRunConfig(str(project), script="pkg/entyr.py")._validate()


def test_validate_without_close_match_has_no_suggestion(project: Path) -> None:
    with pytest.raises(UserErrorException) as raised:
        ScriptRunConfig(str(project), script="zzzzzz.sh")._validate()
    assert "did you mean" not in str(raised.value)


def test_validate_refuses_escaping_and_absolute_scripts(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "x.py"
    outside.write_text("")
    with pytest.raises(UserErrorException, match="resolves outside source directory"):
        ScriptRunConfig(str(project), script=f"../{outside.parent.name}/x.py")._validate()
    with pytest.raises(UserErrorException, match=r"Use script='train\.py'"):
        ScriptRunConfig(str(project), script=str(project / "train.py"))._validate()
    with pytest.raises(UserErrorException, match="not an absolute path"):
        ScriptRunConfig(str(project), script=str(outside))._validate()


def test_validate_source_directory_problems(project: Path) -> None:
    with pytest.raises(UserErrorException, match="does not exist"):
        ScriptRunConfig(str(project / "nope"), script="train.py")._validate()
    with pytest.raises(UserErrorException, match="is a file, not a directory"):
        ScriptRunConfig(str(project / "train.py"), script="train.py")._validate()
    with pytest.raises(UserErrorException, match="is a directory, not a file"):
        ScriptRunConfig(str(project), script="pkg")._validate()
    with pytest.raises(UserErrorException, match="Nothing to run"):
        ScriptRunConfig(str(project))._validate()

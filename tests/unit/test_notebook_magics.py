"""The magics in an in-process IPython shell, for what needs no container: loading, registering environments,
computes, errors, history and monitor displays, and the preloaded kernelspec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output

from jupyter_amltrain.core.environment import Environment
from jupyter_amltrain.engine.compute.gpus import detect_gpus
from jupyter_amltrain.notebook.extension import PRELOAD_ENV, load_ipython_extension
from jupyter_amltrain.notebook.magics import AmlTrainMagics, parse_gpus
from jupyter_amltrain.widgets.fallback import WIDGET_VIEW_MIME

NO_GPU = not detect_gpus()


@pytest.fixture
def ip(project: Path) -> Iterator[Any]:
    """The test IPython shell with a fresh magics instance and an empty namespace, in the project folder."""
    shell = start_ipython() or __import__("IPython").get_ipython()
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "jupyter_amltrain")
    shell.register_magics(AmlTrainMagics(shell))
    yield shell
    shell.reset(new_session=False)


def _magics(ip: Any) -> AmlTrainMagics:
    return ip.magics_manager.registry["AmlTrainMagics"]  # type: ignore[no-any-return]


def test_loading_twice_registers_once(ip: Any) -> None:
    load_ipython_extension(ip)
    load_ipython_extension(ip)
    assert list(ip.magics_manager.registry).count("AmlTrainMagics") == 1
    from jupyter_amltrain.widgets.refresh import live_displays

    assert ip.events.callbacks["post_run_cell"].count(live_displays.flush) == 1
    assert {"aml_submit", "aml_compute", "aml_runs", "aml_logs", "aml_cancel", "aml_gpu"} <= set(
        ip.magics_manager.magics["line"])
    assert "aml_env" in ip.magics_manager.magics["cell"]


def test_env_cell_without_build_registers_and_leaves_the_environment_in_the_namespace(ip: Any, ws: Any) -> None:
    body = "dependencies:\n  - pip:\n    - tqdm\nvariables:\n  PATTERN: '{epoch}-$RUN'\n"
    with capture_output() as out:
        ip.run_cell_magic("aml_env", "train-env --no-build", body)
    env = ip.user_ns["train_env"]  # "train-env" is no Python name
    assert isinstance(env, Environment) and env.version == "1"
    assert env.environment_variables == {"PATTERN": "{epoch}-$RUN"}  # the cell is not expanded
    assert Environment.get(ws, "train-env").python.conda_dependencies.pip_packages  # type: ignore[union-attr]
    assert "Environment 'train-env' version 1 registered in workspace 'ws-test'" in out.stdout
    assert "not built yet (--no-build)" in out.stdout and "Image hash " in out.stdout
    assert _magics(ip).last_environment == "train-env"


def test_env_line_is_not_expanded_either(ip: Any) -> None:
    ip.user_ns["base"] = "should-not-appear"
    ip.run_cell_magic("aml_env", "literal --no-build --base-image amltrain/{base}:$base", "user_managed: true\n")
    assert ip.user_ns["literal"].docker.base_image == "amltrain/{base}:$base"


def test_a_bad_env_cell_is_a_usage_error_and_registers_nothing(ip: Any, ws: Any) -> None:
    with pytest.raises(UsageError, match=r"line 3: unknown key 'depends' \(valid keys: name, channels, dependencies"):
        ip.run_cell_magic("aml_env", "broken", "docker:\n  base_image: x\ndepends: [a]\n")
    assert "broken" not in ip.user_ns
    assert "broken" not in Environment.list(ws)
    with pytest.raises(UsageError, match="Environment name 'AzureML-Sklearn' is reserved"):
        ip.run_cell_magic("aml_env", "AzureML-Sklearn", "FROM amltrain/base:bookworm\n")  # refused before a build
    with pytest.raises(UsageError, match="the following arguments are required: name"):
        ip.run_cell_magic("aml_env", "", "FROM x\n")


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU host behaviour")
def test_compute_create_list_status_on_a_host_without_gpus(ip: Any) -> None:
    with capture_output() as out:
        ip.run_line_magic("aml_compute", "create gpu-pool --gpus 2 --max-nodes 3")
    assert "Compute 'gpu-pool' is ready: up to 3 run(s) at once, 2 GPU(s) per node" in out.stdout
    assert "will run its jobs on the CPU" in out.stderr
    with capture_output() as out:
        ip.run_line_magic("aml_compute", "create cpu-pool --gpus all")
    assert "0 GPU(s) per node" in out.stdout
    with pytest.raises(UsageError, match=r"GPU ids \[0, 1\] were requested but this host has no GPU"):
        ip.run_line_magic("aml_compute", "create pinned --gpus 0,1")
    with capture_output() as out:
        ip.run_line_magic("aml_compute", "list")
    listed = out.outputs[0].data
    assert "gpu-pool" in listed["text/plain"] and "cpu-pool" in listed["text/plain"] and "pinned" not in listed[
        "text/plain"]
    assert "<table" in _magics(ip)._compute_table(ip.user_ns.get("ws") or _magics(ip).workspace())._repr_html_()
    with capture_output() as out:
        ip.run_line_magic("aml_compute", "status gpu-pool")
    assert "Compute 'gpu-pool' (STANDARD_NC6, Succeeded): allocation Steady" in out.stdout
    assert "0 in use of 3" in out.stdout and "none (jobs use the CPU)" in out.stdout
    with pytest.raises(UsageError, match="Compute Target with name nope not found"):
        ip.run_line_magic("aml_compute", "status nope")
    with pytest.raises(UsageError, match="needs a compute name"):
        ip.run_line_magic("aml_compute", "create")
    with pytest.raises(UsageError, match="invalid choice: 'delete'"):
        ip.run_line_magic("aml_compute", "delete x")


@pytest.mark.skipif(NO_GPU, reason="needs a GPU host")
def test_compute_with_all_gpus_pins_every_host_gpu(ip: Any) -> None:
    host = [gpu.index for gpu in detect_gpus()]
    with capture_output() as out:
        ip.run_line_magic("aml_compute", "create all-gpus --gpus all --max-nodes 1")
    assert f"{len(host)} GPU(s) per node (host GPUs {', '.join(map(str, host))})" in out.stdout
    with capture_output() as out:
        ip.run_line_magic("aml_compute", "status all-gpus")
    assert f"GPUs per node: {len(host)}; host GPUs: {', '.join(map(str, host))}" in out.stdout


def test_gpu_option_forms() -> None:
    assert parse_gpus(None, None, vm_size_given=False) == (None, None)
    assert parse_gpus("3", None, vm_size_given=False) == (3, None)
    assert parse_gpus("0,1,2,3", 2, vm_size_given=False) == (2, [0, 1, 2, 3])  # shared out among the nodes
    assert parse_gpus("1,", None, vm_size_given=False) == (1, [1])
    assert parse_gpus("0,1", 1, vm_size_given=True) == (None, [0, 1])  # --vm-size says how many per node
    host = [gpu.index for gpu in detect_gpus()]
    assert parse_gpus("all", None, vm_size_given=False) == (len(host), host or None)
    with pytest.raises(Exception, match="--gpus 'some' is not understood"):
        parse_gpus("some", None, vm_size_given=False)


def test_submit_refuses_unknown_environment_compute_and_script_before_anything_runs(ip: Any, ws: Any,
                                                                                  project: Path) -> None:
    (project / "train.py").write_text("print('hi')\n")
    with pytest.raises(UsageError, match=r"Environment 'ghost' not found .* %%aml_env ghost"):
        ip.run_line_magic("aml_submit", "--env ghost train.py")
    with pytest.raises(UsageError, match="Compute Target with name nowhere not found"):
        ip.run_line_magic("aml_submit", "--compute nowhere train.py")
    with pytest.raises(UsageError, match=r"Script 'trian\.py' not found .*did you mean 'train\.py'"):
        ip.run_line_magic("aml_submit", "trian.py --epochs 3")
    with pytest.raises(UsageError, match="the following arguments are required: script"):
        ip.run_line_magic("aml_submit", "--wait")
    assert ws._local.store.query("SELECT COUNT(*) FROM runs")[0][0] == 0


def test_logs_and_cancel_name_the_missing_run(ip: Any) -> None:
    for magic in ("aml_logs", "aml_cancel"):
        with pytest.raises(UsageError, match=r"No run 'nope' in workspace 'ws-test'\. List the runs with %aml_runs"):
            ip.run_line_magic(magic, "nope")


def test_runs_and_gpu_display_widgets_with_text_fallbacks(ip: Any) -> None:
    with capture_output() as out:
        ip.run_line_magic("aml_runs", "--experiment nothing-yet --limit 5")
    data = out.outputs[0].data
    assert WIDGET_VIEW_MIME in data and data["text/plain"] == "Runs of experiment nothing-yet: none yet."
    with pytest.raises(UsageError, match="--limit must be 1 or more"):
        ip.run_line_magic("aml_runs", "--limit 0")
    with capture_output() as out:
        ip.run_line_magic("aml_gpu", "")
    data = out.outputs[0].data
    assert WIDGET_VIEW_MIME in data
    assert ("No GPU visible" in data["text/plain"]) == NO_GPU
    _magics(ip).last_monitor.stop()


def test_preloaded_kernel_namespace_gets_ws_and_a_broken_config_only_warns(ip: Any, project: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PRELOAD_ENV, "1")
    load_ipython_extension(ip)
    assert ip.user_ns["ws"].name == "ws-test"
    assert "ws" in ip.user_ns_hidden  # kept out of %who, like the kernel's own names
    del ip.user_ns["ws"]
    (project / ".azureml" / "config.json").write_text("{broken")
    with capture_output() as out:
        load_ipython_extension(ip)
    assert "ws" not in ip.user_ns
    assert "no workspace preloaded as ws" in out.stderr and "not valid JSON" in out.stderr


def test_install_kernel_writes_a_preloaded_kernelspec(tmp_path: Path) -> None:
    jupyter = Path(sys.executable).parent / "jupyter"  # this environment's, never one from PATH
    result = subprocess.run(
        [str(jupyter), "amltrain", "install-kernel", "--prefix", str(tmp_path), "--name", "aml-test",
         "--display-name", "AML test"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    spec = json.loads((tmp_path / "share/jupyter/kernels/aml-test/kernel.json").read_text())
    assert spec["display_name"] == "AML test"
    assert Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()
    assert "--ext=jupyter_amltrain" in spec["argv"]
    assert spec["env"] == {PRELOAD_ENV: "1"}
    assert "Installed kernelspec aml-test" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "jupyter_amltrain.notebook.cli", "install-kernel", "--prefix",
                          str(tmp_path), "--name", "bad name"], capture_output=True, text=True, check=False,
                         env={**os.environ})
    assert bad.returncode == 1 and "Kernel name 'bad name' is invalid" in bad.stderr
    assert not (tmp_path / "share/jupyter/kernels/bad name").exists()


def test_without_docker_environments_are_local_and_runs_are_processes(ip: Any, project: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{project}/no-docker-here.sock")  # an engine that is not there
    with pytest.raises(UsageError, match="is a Dockerfile, which needs the Docker engine"):
        ip.run_cell_magic("aml_env", "img", "FROM amltrain/base:bookworm\n")
    assert "img" not in ip.user_ns
    with capture_output() as out:
        ip.run_cell_magic("aml_env", "host-python", "user_managed: true\n")
    assert "Local environment " in out.stdout and ": cache hit, no build" in out.stdout
    (project / "train.py").write_text("from jupyter_amltrain.core import Run\nRun.get_context().log('x', 1)\n"
                                      "print('hello from a process')\n")
    with capture_output() as out:
        run = ip.run_line_magic("aml_submit", "--wait --compute local train.py")
    assert run.get_status() == "Completed" and run.get_metrics() == {"x": 1}
    assert run.get_details()["properties"]["amltrain.backend"] == "process"
    details = _magics(ip).last_details
    assert details.widget.log_lines == ["hello from a process"] and details.widget.status == "Completed"
    assert f"Run {run.id}: Completed after" in out.stdout

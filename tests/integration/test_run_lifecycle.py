"""A run's lifecycle as users meet it: statuses with timestamps, failures that explain themselves, cancel,
time limits, the job's environment, and runs that outlive the process that submitted them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from takeover import NUMBERED_JOB, kill_supervisor_while_waiting, numbered_lines

from jupyter_amltrain.core import Experiment, Run, ScriptRunConfig, Workspace
from jupyter_amltrain.core.runconfig import RunConfiguration
from jupyter_amltrain.engine.workspace import forget_open_workspaces
from jupyter_amltrain.exceptions import ActivityFailedException

# A behaviour that breaks tends to hang (a run that never ends): fail fast instead.
pytestmark = pytest.mark.timeout(180)


def _local_src(project: Path, body: str, **kwargs: object) -> ScriptRunConfig:
    (project / "job").mkdir(exist_ok=True)
    (project / "job" / "job.py").write_text(body)
    run_config = RunConfiguration()
    run_config.environment.python.user_managed_dependencies = True
    for key, value in kwargs.items():
        setattr(run_config, key, value)
    return ScriptRunConfig(source_directory=str(project / "job"), script="job.py", run_config=run_config)


def _wait_for(run: Run, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while run.get_status() != status:
        assert time.monotonic() < deadline, f"run stayed {run.get_status()}, never {status}"
        time.sleep(0.1)


def test_statuses_pass_in_order_with_timestamps(ws: Workspace, project: Path) -> None:
    run = Experiment(ws, "life").submit(_local_src(project, "print('ok')\n"))
    details = run.wait_for_completion()
    history = run.get_detailed_status()["history"]
    statuses = [h["status"] for h in history]
    assert statuses[0] == "NotStarted" and statuses[-1] == "Completed"
    order = ["NotStarted", "Preparing", "Queued", "Starting", "Running", "Finalizing", "Completed"]  # v1's order
    assert [s for s in order if s in statuses] == order
    assert all(h["time"].endswith("Z") for h in history)
    assert details["startTimeUtc"] <= details["endTimeUtc"]
    assert run.number == 1 and Experiment(ws, "life").submit(_local_src(project, "")).number == 2


def test_failure_records_exit_code_stderr_and_exception(ws: Workspace, project: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    body = "print('before the crash')\nraise ValueError('learning rate must be positive')\n"
    run = Experiment(ws, "life").submit(_local_src(project, body))
    with pytest.raises(ActivityFailedException) as caught:
        run.wait_for_completion(show_output=True)
    error = run.get_details()["error"]["error"]
    assert error["exitCode"] == 1
    assert "ValueError: learning rate must be positive" in error["message"]
    assert "Traceback" in error["stderrTail"]
    assert "learning rate must be positive" in caught.value.error_details
    out = capsys.readouterr().out
    assert "before the crash" in out and "Error:\n{" in out
    assert run.get_status() == "Failed"


def test_job_sees_v1_environment_variables(ws: Workspace, project: Path) -> None:
    body = ("import json, os\nkeys = ['AZUREML_RUN_ID', 'AZUREML_ARM_PROJECT_NAME', 'AZUREML_ARM_WORKSPACE_NAME',"
            " 'AZUREML_ARM_SUBSCRIPTION', 'AZUREML_ARM_RESOURCEGROUP', 'EXAMPLE_ENV_VAR']\n"
            "os.makedirs('outputs', exist_ok=True)\n"
            "json.dump({k: os.environ.get(k) for k in keys}, open('outputs/env.json', 'w'))\n")
    run = Experiment(ws, "env-exp").submit(_local_src(project, body))
    run.wait_for_completion()
    run.download_file("outputs/env.json", str(project / "env.json"))
    seen = json.loads((project / "env.json").read_text())
    assert seen == {"AZUREML_RUN_ID": run.id, "AZUREML_ARM_PROJECT_NAME": "env-exp",
                    "AZUREML_ARM_WORKSPACE_NAME": "ws-test",
                    "AZUREML_ARM_SUBSCRIPTION": "00000000-0000-0000-0000-000000000000",
                    "AZUREML_ARM_RESOURCEGROUP": "rg-local", "EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}


def test_cancel_stops_a_running_job(ws: Workspace, project: Path) -> None:
    body = "import time\nprint('started', flush=True)\ntime.sleep(300)\n"
    run = Experiment(ws, "life").submit(_local_src(project, body))
    _wait_for(run, "Running")
    run.cancel()
    assert run.get_status() in ("CancelRequested", "Canceled")
    _wait_for(run, "Canceled", timeout=30)
    statuses = [h["status"] for h in run.get_detailed_status()["history"]]
    assert "CancelRequested" in statuses


def test_max_run_duration_is_enforced(ws: Workspace, project: Path) -> None:
    src = _local_src(project, "import time\ntime.sleep(300)\n", max_run_duration_seconds=2)
    run = Experiment(ws, "life").submit(src)
    run.wait_for_completion(raise_on_error=False)
    error = run.get_details()["error"]["error"]
    assert run.get_status() == "Failed" and error["code"] == "RunTimeout"
    assert "max_run_duration_seconds=2" in error["message"]


def test_metric_shapes_from_inside_the_job(ws: Workspace, project: Path) -> None:
    body = """
from jupyter_amltrain.core import Run
run = Run.get_context()
run.log("once", 0.5)
for v in (1, 2, 3):
    run.log("many", v)
run.log_list("single", [7])
run.log_list("listed", [1, 2, 3])
run.log_row("row", x=1, y=2)
run.log_row("rows", x=1, y=2)
run.log_row("rows", x=3, y=4)
run.log_table("table", {"a": [1, 2], "b": [3, 4]})
run.tag("quality", "good")
run.add_properties({"dataset": "diabetes"})
"""
    run = Experiment(ws, "life").submit(_local_src(project, body))
    run.wait_for_completion()
    assert run.get_metrics() == {"once": 0.5, "many": [1, 2, 3], "single": 7, "listed": [1, 2, 3],
                                 "row": {"x": 1, "y": 2}, "rows": {"x": [1, 3], "y": [2, 4]},
                                 "table": {"a": [1, 2], "b": [3, 4]}}
    assert run.get_tags()["quality"] == "good"
    assert run.get_properties()["dataset"] == "diabetes"


def test_run_outlives_the_process_that_submitted_it(ws: Workspace, project: Path) -> None:
    (project / "job").mkdir()
    (project / "job" / "job.py").write_text("import time\ntime.sleep(2)\nprint('finished after my kernel died')\n")
    submitter = """
import sys
from jupyter_amltrain.core import Experiment, ScriptRunConfig, Workspace
from jupyter_amltrain.core.runconfig import RunConfiguration
rc = RunConfiguration()
rc.environment.python.user_managed_dependencies = True
run = Experiment(Workspace.from_config(), "orphans").submit(ScriptRunConfig("job", "job.py", run_config=rc))
print(run.id, flush=True)
import os; os._exit(0)  # the kernel dies at once, without any cleanup
"""
    done = subprocess.run([sys.executable, "-c", submitter], cwd=project, capture_output=True, text=True,
                          timeout=60, env=os.environ)
    run_id = done.stdout.strip().splitlines()[-1]
    forget_open_workspaces()
    run = Run(Experiment(Workspace.from_config(), "orphans"), run_id)
    run.wait_for_completion()
    assert run.get_status() == "Completed"
    assert "finished after my kernel died" in Path(run.get_details()["logFiles"]["user_logs/std_log.txt"]).read_text()


def test_killed_supervisor_is_replaced_when_the_workspace_is_opened(ws: Workspace, project: Path) -> None:
    body = "import time\nfor i in range(30):\n    print('tick', i, flush=True)\n    time.sleep(0.1)\n"
    run = Experiment(ws, "life").submit(_local_src(project, body))
    _wait_for(run, "Running")
    record = run._record()
    assert record is not None and record.supervisor_pid
    os.kill(record.supervisor_pid, signal.SIGKILL)
    time.sleep(0.5)
    forget_open_workspaces()
    reopened = Workspace.from_config()  # opening the workspace recovers orphaned runs
    run = Run(Experiment(reopened, "life"), run.id)
    run.wait_for_completion()
    log = Path(run.get_details()["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert run.get_status() == "Completed"
    assert "tick 29" in log and "tick 0" in log
    assert "recovering run" in Path(run.get_details()["logFiles"]["azureml-logs/60_control_log.txt"]).read_text()


def test_a_waiting_notebook_takes_over_from_a_killed_supervisor(ws: Workspace, project: Path) -> None:
    run = Experiment(ws, "life").submit(_local_src(project, NUMBERED_JOB))
    takeover = kill_supervisor_while_waiting(run)
    print(f"local process: a new supervisor {takeover.seconds} s after the SIGKILL")
    assert takeover.seconds is not None and takeover.seconds < 5, "the waiter never replaced the supervisor"
    assert run.get_status() == "Completed"
    printed = numbered_lines(takeover.output)
    assert printed == list(range(len(printed))) and len(printed) >= takeover.lines_at_kill + 20  # whole, once
    assert "last line" in takeover.output and "Execution Summary" in takeover.output
    assert "recovering run" in run._layout().control_log.read_text()


def _docker_src(project: Path, body: str, arguments: list[str] | None = None) -> ScriptRunConfig:
    from jupyter_amltrain.core import Environment
    from jupyter_amltrain.core.runconfig import DockerConfiguration

    (project / "job").mkdir(exist_ok=True)
    (project / "job" / "job.py").write_text(body)
    env = Environment("base-python")
    env.docker.base_image = "amltrain/base:bookworm"
    env.python.user_managed_dependencies = True
    return ScriptRunConfig(source_directory=str(project / "job"), script="job.py", environment=env,
                           docker_runtime_config=DockerConfiguration(use_docker=True, arguments=arguments))


@pytest.mark.docker
@pytest.mark.usefixtures("base_image")
def test_docker_job_gets_2g_shm_outputs_and_live_logs(ws: Workspace, project: Path) -> None:
    body = ("import os, shutil\nos.makedirs('outputs', exist_ok=True)\n"
            "open('outputs/shm.txt', 'w').write(str(shutil.disk_usage('/dev/shm').total))\n"
            "print('in container', os.getcwd(), flush=True)\n")
    run = Experiment(ws, "docker-life").submit(_docker_src(project, body))
    run.wait_for_completion()
    run.download_file("outputs/shm.txt", str(project / "shm.txt"))
    assert int((project / "shm.txt").read_text()) == 2 * 1024**3
    assert "in container /amltrain/wd" in Path(run.get_details()["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert run.get_details()["properties"]["amltrain.backend"] == "docker"


@pytest.mark.docker
@pytest.mark.usefixtures("base_image")
def test_docker_cancel_stops_the_container(ws: Workspace, project: Path) -> None:
    import docker

    run = Experiment(ws, "docker-life").submit(
        _docker_src(project, "import time\nprint('up', flush=True)\ntime.sleep(300)\n"))
    _wait_for(run, "Running")
    run.cancel()
    _wait_for(run, "Canceled", timeout=60)
    assert not docker.from_env().containers.list(all=True, filters={"label": f"amltrain.run_id={run.id}"})


@pytest.mark.docker
@pytest.mark.usefixtures("base_image")
def test_docker_out_of_memory_is_reported(ws: Workspace, project: Path) -> None:
    body = "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 1024 * 1024))\n"
    run = Experiment(ws, "docker-life").submit(_docker_src(project, body, ["--memory", "128m",
                                                                         "--memory-swap", "128m"]))
    details = run.wait_for_completion(raise_on_error=False)
    error = details["error"]["error"]
    assert details["status"] == "Failed"
    assert error["code"] == "OutOfMemory" and "out of memory" in error["message"]

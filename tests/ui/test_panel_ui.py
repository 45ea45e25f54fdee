"""The JupyterLab panel end to end: a real ``jupyter lab``, Debian's chromium driven by playwright-core
(panel.mjs), a notebook that submits runs, a real Docker engine running them.

Needs node, chromium, ``npm ci`` in tests/ui, the built labextension and Docker; without them the test
skips and says what is missing, unless ``AMLTRAIN_REQUIRE_UI_TESTS=1`` (set by .ci/run), where a missing
piece fails it. Screenshots land in tests/ui/artifacts/ (or ``AMLTRAIN_UI_ARTIFACTS``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from jupyter_amltrain.engine.runs.records import get_run, request_cancel
from jupyter_amltrain.engine.runs.statuses import ACTIVE
from jupyter_amltrain.engine.workspace import open_workspace

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUNDLE = REPO / "jupyter_amltrain" / "labextension"
CHROMIUM = os.environ.get("AMLTRAIN_CHROMIUM", "/usr/bin/chromium")

TRAIN = '''\
import time
from jupyter_amltrain.core.run import Run

run = Run.get_context()
for i in range(1, 6):
    print(f"ui-test line {i}", flush=True)
    run.log("loss", 1.0 / i)
    time.sleep(0.3)
print("ui-test done", flush=True)
'''

LONG = '''\
import time

for i in range(1, 600):
    print(f"tick {i}", flush=True)
    time.sleep(1)
'''

CELLS = [
    """\
from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import AmlCompute, ComputeTarget

ws = Workspace.from_config()
env = Environment("ui-base")
env.docker.base_image = "amltrain/base:bookworm"
env.python.user_managed_dependencies = True
cluster = ComputeTarget.create(ws, "cpu-cluster",
                               AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=1))
cluster.wait_for_completion()""",
    """\
run = Experiment(ws, "ui-demo").submit(
    ScriptRunConfig(source_directory="job", script="train.py", compute_target=cluster, environment=env))
print(run.id)""",
    """\
long_run = Experiment(ws, "ui-cancel").submit(
    ScriptRunConfig(source_directory="job", script="long.py", compute_target=cluster, environment=env))
print(long_run.id)""",
]


def missing_piece() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs)"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (npm ci in tests/ui)"
    if not (BUNDLE / "package.json").is_file():
        return "the labextension is not built (jlpm install && jlpm build:prod in labextension/)"
    try:
        import docker

        docker.from_env(timeout=10).ping()
    except Exception as error:
        return f"no Docker engine: {error}"
    return None


@pytest.fixture
def ui_ready() -> None:
    reason = missing_piece()
    if reason is None:
        return
    if os.environ.get("AMLTRAIN_REQUIRE_UI_TESTS") == "1":
        pytest.fail(f"UI tests are required here but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def labextensions_path(tmp_path: Path) -> list[str]:
    """Where JupyterLab finds the panel: the installed copy when there is one, else this checkout's build."""
    from jupyter_core.paths import jupyter_path

    if any((Path(folder) / "jupyter-amltrain" / "package.json").is_file() for folder in jupyter_path("labextensions")):
        return []
    folder = tmp_path / "labextensions"
    folder.mkdir()
    (folder / "jupyter-amltrain").symlink_to(BUNDLE)
    return [f"--LabApp.extra_labextensions_path={json.dumps([str(folder)])}"]


@pytest.fixture
def lab(ui_ready: None, tmp_path: Path, amltrain_home: Path) -> Iterator[dict[str, str]]:
    project = tmp_path / "project"
    (project / ".azureml").mkdir(parents=True)
    (project / ".azureml" / "config.json").write_text(json.dumps(
        {"subscription_id": "local", "resource_group": "local", "workspace_name": "ws-ui"}))
    (project / "job").mkdir()
    (project / "job" / "train.py").write_text(TRAIN)
    (project / "job" / "long.py").write_text(LONG)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, project / "submit.ipynb")

    # User settings of this lab only: no prompt about Jupyter news over the panel in screenshots.
    news = tmp_path / "lab-user-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))

    token, port = secrets.token_hex(16), free_port()
    env = dict(os.environ, AMLTRAIN_HOME=str(amltrain_home), JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"))
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--ServerApp.root_dir={project}",
            "--ServerApp.allow_unauthenticated_access=False",
            '--ServerApp.jpserver_extensions={"jupyter_amltrain": True}',
            "--LabApp.expose_app_in_browser=True", f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}",
            f"--LabApp.user_settings_dir={tmp_path / 'lab-user-settings'}",
            "--allow-root", *labextensions_path(tmp_path)]
    log = tmp_path / "jupyter-lab.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_server(url, token, server, log)
        yield {"url": url, "token": token, "notebook": "submit.ipynb", "log": str(log)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        # A failed scenario must not leave its long run behind: ask its supervisor to stop it.
        ws = open_workspace("ws-ui")
        for row in ws.store.query(f"SELECT run_id FROM runs WHERE status IN ({','.join('?' * len(ACTIVE))})",
                                  ACTIVE):
            request_cancel(ws.store, row["run_id"])


def wait_for_server(url: str, token: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}api/status?token={token}", timeout=5):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    pytest.fail(f"jupyter lab did not answer within 120 s:\n{log.read_text()}")


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_panel_shows_a_run_complete_with_its_log_and_cancels_another(lab: dict[str, str]) -> None:
    artifacts = Path(os.environ.get("AMLTRAIN_UI_ARTIFACTS") or HERE / "artifacts")
    shutil.rmtree(artifacts, ignore_errors=True)
    env = dict(os.environ, LAB_URL=lab["url"], LAB_TOKEN=lab["token"], NOTEBOOK=lab["notebook"],
               CHROMIUM=CHROMIUM, ARTIFACTS=str(artifacts))
    try:
        result = subprocess.run(["node", str(HERE / "panel.mjs")], cwd=HERE, env=env, capture_output=True,
                                text=True, timeout=540)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"panel.mjs did not finish: {error.stdout!r}\n{error.stderr!r}")
    print(result.stdout)
    print(f"UI test artifacts (screenshots): {artifacts}")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n--- jupyter lab log ---\n" + \
        Path(lab["log"]).read_text()[-5000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])

    ws = open_workspace("ws-ui")
    completed, canceled = get_run(ws.store, summary["completed"]), get_run(ws.store, summary["canceled"])
    assert completed is not None and completed.status == "Completed" and completed.experiment == "ui-demo"
    assert canceled is not None and canceled.status == "Canceled" and canceled.experiment == "ui-cancel"
    assert "ui-test done" in (ws.layout.run_dir(completed.run_id) / "user_logs" / "std_log.txt").read_text()
    for name in ("panel-completed", "run-completed", "run-running", "panel-canceled"):
        assert (artifacts / f"{name}.png").stat().st_size > 0
    assert summary["whileHidden"] == 0  # a hidden panel does not poll
    assert not [error for error in summary["consoleErrors"] if "amltrain" in error.lower()]

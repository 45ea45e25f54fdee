"""A job runs as root in its container, so what it leaves in its run folder is hostile input to the host. Real
Docker jobs plant links to a host file, a FIFO, a device node, a ./logs folder replaced by a link to /etc, and
a FIFO in place of their tracking events file. On the host, the v1 API (download_file(s), get_file_names,
get_details_with_logs, get_all_logs, register_model) and the REST routes never give host content and never
hang; the run ends, and another process opens the workspace at once.

The REST routes are called through a real Jupyter server (pytest-jupyter, as in tests/server/); the tests are
synchronous and drive its event loop themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from jupyter_amltrain.core import Environment, Experiment, Model, Run, ScriptRunConfig, Workspace
from jupyter_amltrain.core.runconfig import DockerConfiguration
from jupyter_amltrain.engine.runs.artifacts import RunFileRefused
from jupyter_amltrain.engine.store.layout import RunLayout
from jupyter_amltrain.server.handlers import NAMESPACE

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300), pytest.mark.usefixtures("base_image")]

SECRET = "root:$6$host-secret-hash:19000:0:99999:7:::\n"

PLANT = r"""
import os, stat, sys
secret = sys.argv[1]  # a host path: the job cannot see it, but a link is resolved where it is read
os.makedirs("outputs", exist_ok=True)
os.makedirs("logs", exist_ok=True)
open("outputs/model.pkl", "w").write("weights")
open("logs/ok.txt", "w").write("fine\n")
os.symlink(secret, "outputs/leak")
os.symlink(secret, "logs/leak.txt")
os.symlink(secret, "/amltrain/uploads/leak.txt")
os.mkfifo("outputs/pipe")
try:
    os.mknod("outputs/zero", 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: reading it never ends
    print("mknod ok", flush=True)
except OSError as error:
    print("mknod refused:", error, flush=True)
events = "/amltrain/tracking/events.jsonl"
if os.path.lexists(events):
    os.remove(events)
os.mkfifo(events)  # the supervisor's ingest would wait in open() for a writer that never comes
print("planted", flush=True)
"""

REPLACE_FOLDERS = r"""
import os, shutil, sys
open("outputs/model.pkl", "w").write("weights")
shutil.rmtree("logs")
os.symlink("/etc", "logs")                 # ./logs becomes the host's /etc
shutil.rmtree("outputs")
os.symlink(os.path.dirname(sys.argv[1]), "outputs")  # ./outputs becomes a host folder
print("replaced", flush=True)
"""


@pytest.fixture
def jp_server_config() -> Config:
    return Config({
        "ServerApp": {"jpserver_extensions": {"jupyter_amltrain": True, "jupyter_server_terminals": False},
                      "allow_unauthenticated_access": False},
        "AmlTrainServer": {"log_stream_interval": 0.05},
    })


@pytest.fixture
def jp_root_dir(project: Path) -> Path:
    return project


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A host file a job must never get at: a stand-in for /etc/shadow."""
    path = tmp_path / "host" / "shadow"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


@pytest.fixture
def rest(jp_fetch: Any, jp_asyncio_loop: Any) -> Callable[..., tuple[int, Any]]:
    """GET a route of the extension's REST API on the real server: (status, JSON body). Bounded: a route that
    blocks fails the test rather than hanging it."""

    def get(*parts: str, **params: Any) -> tuple[int, Any]:
        async def fetch() -> tuple[int, Any]:
            try:
                response = await jp_fetch(NAMESPACE, *parts, params=params, request_timeout=20)
            except HTTPClientError as error:
                body = error.response.body if error.response is not None else b"{}"
                return error.code, json.loads(body or b"{}")
            if response.headers.get("Content-Type", "").startswith("text/event-stream"):
                return response.code, response.body.decode()
            return response.code, json.loads(response.body)

        result: tuple[int, Any] = jp_asyncio_loop.run_until_complete(fetch())
        return result

    return get


@pytest.fixture(autouse=True)
def _cleanup(cancel_leftover_runs: None) -> None:
    """No job or supervisor of a failing test is left behind."""


def _src(project: Path, body: str, argument: str) -> ScriptRunConfig:
    (project / "job").mkdir(exist_ok=True)
    (project / "job" / "job.py").write_text(body)
    env = Environment("base-python")
    env.docker.base_image = "amltrain/base:bookworm"
    env.python.user_managed_dependencies = True
    return ScriptRunConfig(source_directory=str(project / "job"), script="job.py", arguments=[argument],
                           environment=env, docker_runtime_config=DockerConfiguration(use_docker=True))


def _wait_until_over(run: Run, layout: RunLayout, seconds: float = 150) -> str:
    """The run's status once it is over, or whatever it is after ``seconds`` (no wait_for_completion: it
    ingests, which is what used to hang)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = run.get_status()
        if status in ("Completed", "Failed", "Canceled"):
            return status
        time.sleep(0.5)
    return run.get_status()


def _unblock(fifo: Path) -> None:
    """A reader stuck in open() of ``fifo`` goes on once a writer opened it: so a failing test leaves no
    supervisor hanging."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def _bounded(call: Callable[[], Any], seconds: float = 30) -> Any:
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{call} did not return within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _contents(folder: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield str(path.relative_to(folder)), path.read_bytes()


def test_links_fifos_and_devices_a_job_plants_give_the_host_nothing(
    ws: Workspace, project: Path, secret: Path, tmp_path: Path, rest: Callable[..., tuple[int, Any]]
) -> None:
    run = Experiment(ws, "hostile").submit(_src(project, PLANT, str(secret)))
    layout = RunLayout(ws._local.layout.run_dir(run.id))
    try:
        status = _wait_until_over(run, layout)
        # Another process opens the workspace at once: no transaction is held across a read of the job's files.
        opened = subprocess.run([sys.executable, "-c", "from jupyter_amltrain.core import Workspace\n"
                                 "print(Workspace.from_config().name)"],
                                cwd=project, capture_output=True, text=True, timeout=60, env=os.environ)
    finally:
        _unblock(layout.events)
    assert opened.returncode == 0 and opened.stdout.strip() == "ws-test", opened.stderr
    assert status == "Completed", (status, run.get_details().get("error"))
    std_log = layout.std_log.read_text()
    assert "planted" in std_log
    device = "mknod ok" in std_log
    control_log = layout.control_log.read_text()
    assert control_log.count("tracking events were not read") == 1 and "FIFO" in control_log
    assert any("FIFO" in w["message"] for w in run.get_details()["warnings"])

    names = _bounded(run.get_file_names)
    assert {"outputs/model.pkl", "logs/ok.txt", "user_logs/std_log.txt"} <= set(names)
    assert not {"outputs/leak", "logs/leak.txt", "leak.txt", "outputs/pipe", "outputs/zero"} & set(names)

    for name, kind in (("outputs/leak", "symbolic link"), ("logs/leak.txt", "symbolic link"),
                       ("leak.txt", "symbolic link"), ("outputs/pipe", "FIFO"),
                       *((("outputs/zero", "character device"),) if device else ())):
        target = tmp_path / "dl" / name.replace("/", "_")
        with pytest.raises(RunFileRefused, match=kind):
            _bounded(lambda name=name, target=target: run.download_file(name, str(target)))
        assert not target.exists()
        with pytest.raises(RunFileRefused, match=kind):
            _bounded(lambda name=name: run.register_model("refused", name))

    _bounded(lambda: run.download_files(output_directory=str(tmp_path / "all")))
    downloaded = dict(_contents(tmp_path / "all"))
    assert "outputs/model.pkl" in downloaded and not any(SECRET.encode() in data for data in downloaded.values())

    details = _bounded(run.get_details_with_logs)
    assert "logs/ok.txt" in details["logFiles"] and "logs/leak.txt" not in details["logFiles"]
    assert not any(SECRET in text for text in details["logFiles"].values())
    written = _bounded(lambda: run.get_all_logs(str(tmp_path / "logs")))
    assert written and not any(SECRET in Path(path).read_text() for path in written)

    model = _bounded(lambda: run.register_model("hostile-model", "outputs"))
    stored = dict(_contents(Path(Model(ws, "hostile-model", version=model.version).get_model_path())))
    assert stored == {"model.pkl": b"weights"}

    code, listed = rest("runs", run.id, "logs")
    assert code == 200 and "logs/leak.txt" not in [f["name"] for f in listed["files"]]
    for route in ("content", "stream"):
        code, body = rest("runs", run.id, "logs", route, file="logs/leak.txt")
        assert code == 403 and "symbolic link" in body["message"] and SECRET not in json.dumps(body)
    code, body = rest("runs", run.id, "logs", "content", file="logs/ok.txt")
    assert code == 200 and body["text"] == "fine\n"


def test_run_folders_replaced_by_links_to_host_folders_list_nothing_of_them(
    ws: Workspace, project: Path, secret: Path, tmp_path: Path, rest: Callable[..., tuple[int, Any]]
) -> None:
    run = Experiment(ws, "hostile").submit(_src(project, REPLACE_FOLDERS, str(secret)))
    layout = RunLayout(ws._local.layout.run_dir(run.id))
    assert _wait_until_over(run, layout) == "Completed"
    assert layout.logs.is_symlink() and layout.outputs.is_symlink()

    names = _bounded(run.get_file_names)
    assert not [name for name in names if name.startswith(("logs/", "outputs/"))], names
    with pytest.raises(RunFileRefused, match="symbolic link"):
        run.download_file("logs/passwd", str(tmp_path / "passwd"))
    with pytest.raises(RunFileRefused, match="symbolic link"):
        run.download_file("outputs/shadow", str(tmp_path / "shadow"))
    assert not (tmp_path / "passwd").exists() and not (tmp_path / "shadow").exists()
    with pytest.raises(RunFileRefused, match="symbolic link"):
        run.register_model("m", "outputs")
    details = run.get_details_with_logs()
    assert not [name for name in details["logFiles"] if name.startswith("logs/")]

    code, listed = rest("runs", run.id, "logs")
    assert code == 200 and not [f["name"] for f in listed["files"] if f["name"].startswith("logs/")], listed
    code, details_body = rest("runs", run.id)
    assert not [f["name"] for f in details_body["log_files"] if f["name"].startswith("logs/")]
    code, body = rest("runs", run.id, "logs", "content", file="logs/passwd")
    assert code == 403 and "root:" not in body["message"]

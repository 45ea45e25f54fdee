"""The REST API of the server extension, through a real Jupyter server (pytest-jupyter's ``jp_fetch``) on a
real workspace store: authentication on every route, XSRF on POST, run folders that cannot be escaped, and
what each route answers."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import stat
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from tornado.httpclient import HTTPClientError, HTTPResponse

from jupyter_amltrain.engine import workspace as workspace_module
from jupyter_amltrain.engine.compute.pools import create_pool
from jupyter_amltrain.engine.runs import records
from jupyter_amltrain.engine.store.layout import RunLayout
from jupyter_amltrain.engine.tracking.record import log_to_store
from jupyter_amltrain.engine.workspace import LocalWorkspace, open_workspace
from jupyter_amltrain.server.handlers import NAMESPACE, routes

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def make_run(ws: LocalWorkspace, experiment: str = "exp-a", *, status: str | None = None,
             target: str = "local", environment: str = "env-a", log: str | None = None) -> str:
    record = records.create_run(ws.store, experiment=experiment, target=target,
                                definition={"environment": {"name": environment}, "script": "train.py"},
                                snapshot_id=None, properties={}, tags={}, warnings=[])
    layout = RunLayout(ws.layout.run_dir(record.run_id)).ensure()
    if log is not None:
        layout.std_log.write_text(log)
    if status is not None:
        records.set_status(ws.store, record.run_id, status)
    return record.run_id


def status_of(ws: LocalWorkspace, run_id: str) -> str:
    record = records.get_run(ws.store, run_id)
    assert record is not None
    return record.status


async def get_json(jp_fetch: Any, *parts: str, **params: Any) -> Any:
    response = await jp_fetch(NAMESPACE, *parts, params=params)
    return json.loads(response.body)


async def refused(jp_fetch: Any, *parts: str, method: str = "GET", **params: Any) -> tuple[int, str]:
    kwargs: dict[str, Any] = {"method": method, "params": params}
    if method == "POST":
        kwargs["body"] = b""
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch(NAMESPACE, *parts, **kwargs)
    response = caught.value.response
    assert response is not None
    return caught.value.code, json.loads(response.body)["message"]


def concrete(pattern: str, run_id: str) -> str:
    return pattern.replace("(?P<run_id>[^/]+)", run_id)


async def test_every_route_refuses_requests_without_credentials(jp_fetch: Any, local_ws: LocalWorkspace) -> None:
    run_id = make_run(local_ws, log="secret line\n")
    for pattern, handler in routes():
        method = "POST" if "post" in handler.__dict__ else "GET"
        # An explicit empty Authorization header replaces the token jp_fetch would add.
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch(NAMESPACE, concrete(pattern, run_id), method=method,
                           body=b"" if method == "POST" else None, headers={"Authorization": ""})
        assert caught.value.code == 403, pattern
        assert b"secret line" not in (caught.value.response.body if caught.value.response else b"")
    assert status_of(local_ws, run_id) == "NotStarted"  # the refused cancel did nothing


async def test_cancel_with_a_login_cookie_needs_the_xsrf_token(
    jp_fetch: Any, jp_serverapp: Any, local_ws: LocalWorkspace
) -> None:
    run_id = make_run(local_ws)
    # Log in as a browser does: the login form's _xsrf cookie, then the token as password -> a login cookie.
    login_page = await jp_fetch("login", headers={"Authorization": ""})
    cookies = cookie_jar(login_page)
    xsrf = cookies["_xsrf"]
    login = await jp_fetch("login", method="POST", headers={"Authorization": "", "Cookie": cookie_header(cookies)},
                           body=urlencode({"_xsrf": xsrf, "password": jp_serverapp.identity_provider.token}),
                           follow_redirects=False, raise_error=False)
    cookies.update(cookie_jar(login))
    assert any(name.startswith("username-") for name in cookies), cookies
    browser = {"Authorization": "", "Cookie": cookie_header(cookies)}

    # The cookie is enough to read...
    response = await jp_fetch(NAMESPACE, "runs", headers=browser)
    assert json.loads(response.body)["total"] == 1
    # ...but a POST without the XSRF token is refused and changes nothing,
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch(NAMESPACE, "runs", run_id, "cancel", method="POST", body=b"", headers=browser)
    assert caught.value.code == 403
    assert status_of(local_ws, run_id) == "NotStarted"
    # while the same POST with it goes through.
    response = await jp_fetch(NAMESPACE, "runs", run_id, "cancel", method="POST", body=b"",
                              headers={**browser, "X-XSRFToken": xsrf})
    assert json.loads(response.body) == {"run_id": run_id, "status": "Canceled"}


def cookie_jar(response: HTTPResponse) -> dict[str, str]:
    jar = {}
    for header in response.headers.get_list("Set-Cookie"):
        name, _, rest = header.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0].strip('"')
    return jar


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


async def test_log_files_cannot_leave_the_run_folder(jp_fetch: Any, local_ws: LocalWorkspace,
                                                    tmp_path: Path) -> None:
    run_id = make_run(local_ws, log="ok\n")
    outside = tmp_path / "private.txt"
    outside.write_text("private data\n")
    logs = RunLayout(local_ws.layout.run_dir(run_id)).logs
    logs.mkdir(parents=True)
    (logs / "escape.txt").symlink_to(outside)  # a job can create links in ./logs
    (logs / "fine.txt").write_text("fine\n")

    for name in ("../../workspace.db", "../plan.json", "/etc/passwd", "user_logs/../../../workspace.db"):
        for route in ("content", "stream"):
            code, message = await refused(jp_fetch, "runs", run_id, "logs", route, file=name)
            assert code == 403 and "'..'" in message, (name, route, message)
    for route in ("content", "stream"):
        code, message = await refused(jp_fetch, "runs", run_id, "logs", route, file="logs/escape.txt")
        assert code == 403 and "symbolic link" in message and "private data" not in message
    # A run id is a folder name: one that climbs is refused before any file is looked at.
    code, message = await refused(jp_fetch, "runs", "..%2F..%2Fws-test", "logs", "content", file="workspace.db")
    assert code == 400 and "not a valid identifier" in message

    body = await get_json(jp_fetch, "runs", run_id, "logs", "content", file="logs/fine.txt")
    assert body["text"] == "fine\n"
    code, message = await refused(jp_fetch, "runs", run_id, "logs", "content", file="logs/missing.txt")
    assert code == 404 and "logs/fine.txt" in message  # names the files it has


async def test_a_logs_folder_replaced_by_a_link_to_etc_lists_nothing_of_etc(
    jp_fetch: Any, local_ws: LocalWorkspace
) -> None:
    run_id = make_run(local_ws, log="ok\n")
    layout = RunLayout(local_ws.layout.run_dir(run_id))
    layout.wd.mkdir(parents=True)
    layout.logs.symlink_to("/etc")  # what a root job can do to its ./logs (the probe listed 1,297 names)
    listed = await get_json(jp_fetch, "runs", run_id, "logs")
    assert [f["name"] for f in listed["files"]] == ["user_logs/std_log.txt"]
    details = await get_json(jp_fetch, "runs", run_id)
    assert [f["name"] for f in details["log_files"]] == ["user_logs/std_log.txt"]
    for route in ("content", "stream"):
        code, message = await refused(jp_fetch, "runs", run_id, "logs", route, file="logs/passwd")
        assert code == 403 and "symbolic link" in message and "root:" not in message


async def test_fifos_devices_and_links_in_logs_are_refused_without_blocking(
    jp_fetch: Any, local_ws: LocalWorkspace
) -> None:
    """A FIFO's open() would block a reader thread for good; a device node can be anything of the host's."""
    run_id = make_run(local_ws, log="ok\n")
    layout = RunLayout(local_ws.layout.run_dir(run_id))
    layout.logs.mkdir(parents=True)
    (layout.logs / "fine.txt").write_text("fine\n")
    os.mkfifo(layout.logs / "fifo.txt")
    (layout.logs / "etc").symlink_to("/etc")
    refusals = [("logs/fifo.txt", "FIFO"), ("logs/etc/passwd", "symbolic link")]
    try:
        os.mknod(layout.logs / "zero.txt", 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: endless
        refusals.append(("logs/zero.txt", "character device"))
    except PermissionError:  # not root: the FIFO and the link still make the point
        pass

    listed = await get_json(jp_fetch, "runs", run_id, "logs")
    assert sorted(f["name"] for f in listed["files"]) == ["logs/fine.txt", "user_logs/std_log.txt"]
    for name, kind in refusals:
        for route in ("content", "stream"):
            code, message = await asyncio.wait_for(
                refused(jp_fetch, "runs", run_id, "logs", route, file=name), timeout=20)
            assert code == 403 and kind in message, (name, route, message)


async def test_log_listing_is_paged(jp_fetch: Any, local_ws: LocalWorkspace) -> None:
    run_id = make_run(local_ws, log="ok\n")
    logs = RunLayout(local_ws.layout.run_dir(run_id)).logs
    logs.mkdir(parents=True)
    names = [f"logs/part-{index:04d}.txt" for index in range(1200)]
    for name in names:
        (logs.parent / name).write_text("x\n")
    seen: list[str] = []
    after = None
    while True:
        page = await get_json(jp_fetch, "runs", run_id, "logs", limit=500, **({"after": after} if after else {}))
        assert len(page["files"]) <= 500 and page["limit"] == 500
        seen += [f["name"] for f in page["files"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == [*names, "user_logs/std_log.txt"]
    for params, fragment in (({"limit": 0}, "out of range"), ({"limit": 5001}, "out of range")):
        code, message = await refused(jp_fetch, "runs", run_id, "logs", **params)
        assert code == 400 and fragment in message


async def test_runs_filter_paginate_and_count(jp_fetch: Any, local_ws: LocalWorkspace) -> None:
    first = make_run(local_ws, "exp-a", status="Completed")
    make_run(local_ws, "exp-a", status="Failed")
    newest_a = make_run(local_ws, "exp-a", status="Running")
    make_run(local_ws, "exp-b", status="Completed")
    log_to_store(local_ws.store, first, "scalar", "loss", 0.25)
    log_to_store(local_ws.store, first, "scalar", "bad", math.nan)

    body = await get_json(jp_fetch, "runs", experiment="exp-a", limit=2)
    assert body["total"] == 3 and body["statuses"] == {"Completed": 1, "Failed": 1, "Running": 1}
    assert body["runs"][0]["run_id"] == newest_a and len(body["runs"]) == 2
    page2 = await get_json(jp_fetch, "runs", experiment="exp-a", limit=2, offset=2)
    assert [row["run_id"] for row in page2["runs"]] == [first]
    assert page2["runs"][0]["metrics"] == {"loss": 0.25, "bad": "NaN"}  # valid JSON for a browser
    completed = await get_json(jp_fetch, "runs", status="Completed")
    assert completed["total"] == 2 and {row["experiment"] for row in completed["runs"]} == {"exp-a", "exp-b"}

    experiments = await get_json(jp_fetch, "experiments")
    assert [(e["name"], e["runs"]) for e in experiments["experiments"]] == [("exp-b", 1), ("exp-a", 3)]

    for params, fragment in (({"status": "Done"}, "Unknown status"), ({"limit": 0}, "out of range"),
                             ({"limit": "ten"}, "not a whole number"), ({"offset": -1}, "out of range")):
        code, message = await refused(jp_fetch, "runs", **params)
        assert code == 400 and fragment in message


async def test_run_details_metrics_and_logs_from_an_offset(jp_fetch: Any, local_ws: LocalWorkspace) -> None:
    run_id = make_run(local_ws, log="epoch 1\nepoch 2\nepo")
    records.set_status(local_ws.store, run_id, "Running", "running train.py")
    for step, value in enumerate((0.9, 0.5, 0.2)):
        log_to_store(local_ws.store, run_id, "scalar", "loss", value, step=step)

    details = await get_json(jp_fetch, "runs", run_id)
    assert details["status"] == "Running" and details["sub_status"] == "running train.py"
    assert details["script"] == "train.py" and details["environment"] == "env-a"
    assert details["current_log"] == "user_logs/std_log.txt"
    assert [h["status"] for h in details["history"]] == ["NotStarted", "Running"]

    metrics = await get_json(jp_fetch, "runs", run_id, "metrics")
    assert metrics["series"]["loss"] == {"steps": [0, 1, 2], "values": [0.9, 0.5, 0.2]}
    assert metrics["latest"] == {"loss": 0.2}
    assert await get_json(jp_fetch, "runs", run_id, "metrics", since=metrics["version"]) == {
        "version": metrics["version"], "unchanged": True}

    chunk = await get_json(jp_fetch, "runs", run_id, "logs", "content", file="user_logs/std_log.txt")
    assert chunk["text"] == "epoch 1\nepoch 2\n" and chunk["offset"] == 16  # the partial line waits
    rest = await get_json(jp_fetch, "runs", run_id, "logs", "content", file="user_logs/std_log.txt",
                          offset=chunk["offset"])
    assert rest["text"] == "" and rest["offset"] == 16
    records.set_status(local_ws.store, run_id, "Completed")
    final = await get_json(jp_fetch, "runs", run_id, "logs", "content", offset=16)  # default: the current log
    assert final["text"] == "epo" and final["terminal"] is True  # nothing can finish it now: sent as it is
    tail = await get_json(jp_fetch, "runs", run_id, "logs", "content", tail=12)
    assert tail["text"] == "epoch 2\n"

    listing = await get_json(jp_fetch, "runs", run_id, "logs")
    assert listing["files"] == [{"name": "user_logs/std_log.txt", "size": 19}]

    code, message = await refused(jp_fetch, "runs", "exp-a_1_nothere")
    assert code == 404 and "ws-test" in message


async def test_log_stream_sends_every_line_then_ends_with_the_run(
    jp_fetch: Any, local_ws: LocalWorkspace
) -> None:
    run_id = make_run(local_ws, log="line 1\n")
    records.set_status(local_ws.store, run_id, "Running")
    std_log = RunLayout(local_ws.layout.run_dir(run_id)).std_log
    received: list[bytes] = []

    async def job() -> None:
        # What a job does while the browser listens: more output, a last line without newline, the end.
        while b"line 1" not in b"".join(received):
            await asyncio.sleep(0.02)
        with open(std_log, "a") as handle:
            handle.write("line 2\nlast words")
        while b"line 2" not in b"".join(received):
            await asyncio.sleep(0.02)
        records.set_status(local_ws.store, run_id, "Completed")

    writer = asyncio.ensure_future(job())
    response = await jp_fetch(NAMESPACE, "runs", run_id, "logs", "stream", streaming_callback=received.append,
                              request_timeout=60)
    await writer
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = parse_events(b"".join(received).decode())
    names = [name for name, _ in events]
    assert names[0] == "file" and events[0][1] == {"file": "user_logs/std_log.txt"}
    assert names[-1] == "end" and events[-1][1] == {"status": "Completed"}
    text = "".join(data["text"] for name, data in events if name == "log")
    assert text == "line 1\nline 2\nlast words"
    assert {"status": "Completed", "sub_status": ""} in [data for name, data in events if name == "status"]

    # Resuming from an offset sends only what came after it.
    received.clear()
    await jp_fetch(NAMESPACE, "runs", run_id, "logs", "stream", params={"offset": 7},
                   streaming_callback=received.append)
    resumed = parse_events(b"".join(received).decode())
    assert "".join(d["text"] for n, d in resumed if n == "log") == "line 2\nlast words"


def parse_events(stream: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in stream.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_computes_show_nodes_and_queue_and_gpus_their_holders(
    jp_fetch: Any, local_ws: LocalWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMLTRAIN_DECLARED_GPUS", "0,1")
    create_pool(local_ws.store, "gpu-pool", vm_size="STANDARD_NC6", max_nodes=2)
    holder = make_run(local_ws, target="gpu-pool", status="Running")
    records.update_run(local_ws.store, holder, node=1, gpus=[1])
    waiting = make_run(local_ws, target="gpu-pool", status="Queued")
    records.set_status(local_ws.store, waiting, "Queued", "waiting for a node, 0 ahead")

    computes = {c["name"]: c for c in (await get_json(jp_fetch, "computes"))["computes"]}
    pool = computes["gpu-pool"]
    assert [(n["index"], n["run_id"]) for n in pool["nodes"]] == [(0, None), (1, holder)]
    assert pool["busy"] == 1 and pool["idle"] == 1
    assert [(q["run_id"], q["sub_status"]) for q in pool["queue"]] == [(waiting, "waiting for a node, 0 ahead")]
    assert computes["local"]["kind"] == "local"

    gpus = await get_json(jp_fetch, "gpus")
    if gpus["source"] == "nvml":  # a host with real GPUs ignores the declared inventory
        pytest.skip("real GPUs present")
    assert gpus["source"] == "declared"
    assert [(g["index"], g["holder"]) for g in gpus["gpus"]] == [(0, None), (1, holder)]


async def test_workspace_is_the_projects_unless_named(jp_fetch: Any, local_ws: LocalWorkspace,
                                                     amltrain_home: Path) -> None:
    assert (await get_json(jp_fetch, "workspace"))["name"] == "ws-test"
    other = open_workspace("ws-other")
    run_id = make_run(other)
    body = await get_json(jp_fetch, "runs", workspace="ws-other")
    assert [r["run_id"] for r in body["runs"]] == [run_id]
    assert (await get_json(jp_fetch, "runs"))["total"] == 0
    code, message = await refused(jp_fetch, "runs", workspace="ws-typo")
    assert code == 404 and "ws-other" in message and "ws-test" in message
    assert not (amltrain_home / "workspaces" / "ws-typo").exists()  # a typo creates nothing
    code, message = await refused(jp_fetch, "runs", workspace="../etc")
    assert code == 400


async def test_cancel(jp_fetch: Any, local_ws: LocalWorkspace) -> None:
    queued = make_run(local_ws)
    running = make_run(local_ws, status="Running")
    records.update_run(local_ws.store, running, node=0)
    for run_id, expected in ((queued, "Canceled"), (running, "CancelRequested")):
        response = await jp_fetch(NAMESPACE, "runs", run_id, "cancel", method="POST", body=b"")
        assert json.loads(response.body)["status"] == expected
        assert status_of(local_ws, run_id) == expected
    code, _ = await refused(jp_fetch, "runs", "exp-a_0_missing", "cancel", method="POST")
    assert code == 404


async def test_store_reads_do_not_block_the_server(jp_fetch: Any, local_ws: LocalWorkspace) -> None:
    """While a request's store access is stuck, the server still answers others: it waits on a reader thread.
    (Were it on the event loop, the second request could never be answered and the test would time out.)"""
    make_run(local_ws)
    # Every request opens its workspace under this lock first; holding it stalls the request's store access.
    with workspace_module._open_lock:
        pending = asyncio.ensure_future(jp_fetch(NAMESPACE, "runs"))
        while not reader_thread_in("open_workspace"):
            await asyncio.sleep(0.01)
        status = await jp_fetch("api", "status")
        assert status.code == 200
        assert not pending.done()
    assert json.loads((await pending).body)["total"] == 1


def reader_thread_in(function: str) -> bool:
    """Whether one of the extension's reader threads is executing ``function`` now."""
    frames = sys._current_frames()
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1) if thread.name.startswith("amltrain-api") else None
        while frame is not None:
            if frame.f_code.co_name == function:
                return True
            frame = frame.f_back
    return False


def test_openapi_documents_every_route() -> None:
    spec = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
    documented = {(path, method) for path, item in spec["paths"].items() for method in item
                  if method in ("get", "post")}
    served = set()
    for pattern, handler in routes():
        path = "/" + re.sub(r"\(\?P<(\w+)>[^)]+\)", r"{\1}", pattern)
        for method in ("get", "post"):
            if method in handler.__dict__:
                served.add((path, method))
    assert documented == served
    assert spec["servers"][0]["url"] == "{base_url}" + NAMESPACE


async def test_log_stream_follows_the_build_log_then_the_jobs_output(
    jp_fetch: Any, local_ws: LocalWorkspace
) -> None:
    run_id = make_run(local_ws)
    records.set_status(local_ws.store, run_id, "Preparing", "building image: step 1/3")
    layout = RunLayout(local_ws.layout.run_dir(run_id))
    layout.build_log.write_text("Step 1/3 : FROM base\n")
    received: list[bytes] = []

    async def job() -> None:
        while b"Step 1/3" not in b"".join(received):
            await asyncio.sleep(0.02)
        with open(layout.build_log, "a") as handle:
            handle.write("Successfully built\n")
        layout.std_log.write_text("hello from the job\n")
        records.set_status(local_ws.store, run_id, "Running")
        while b"hello from the job" not in b"".join(received):
            await asyncio.sleep(0.02)
        records.set_status(local_ws.store, run_id, "Completed")

    writer = asyncio.ensure_future(job())
    await jp_fetch(NAMESPACE, "runs", run_id, "logs", "stream", streaming_callback=received.append,
                   request_timeout=60)
    await writer
    events = [(name, data) for name, data in parse_events(b"".join(received).decode()) if name in ("file", "log")]
    assert events == [
        ("file", {"file": "azureml-logs/20_image_build_log.txt"}),
        ("log", {"file": "azureml-logs/20_image_build_log.txt", "text": "Step 1/3 : FROM base\n", "offset": 21,
                 "size": 21}),
        ("log", {"file": "azureml-logs/20_image_build_log.txt", "text": "Successfully built\n", "offset": 40,
                 "size": 40}),
        ("file", {"file": "user_logs/std_log.txt"}),
        ("log", {"file": "user_logs/std_log.txt", "text": "hello from the job\n", "offset": 19, "size": 19}),
    ]


@pytest.mark.docker
async def test_environments_say_whether_their_image_is_built(jp_fetch: Any, ws: Any) -> None:
    from jupyter_amltrain.core import Environment

    try:
        import docker

        client = docker.from_env(timeout=10)
        client.images.get("amltrain/base:bookworm")
    except Exception as error:
        pytest.skip(f"needs Docker with the base image amltrain/base:bookworm (amltrain prepare): {error}")
    as_is = Environment("as-is")  # user-managed on a plain base image: that image is the run's image
    as_is.docker.enabled = True
    as_is.docker.base_image = "amltrain/base:bookworm"
    as_is.python.user_managed_dependencies = True
    as_is.register(ws)
    Path("requirements.txt").write_text("tqdm==4.66.4\n")  # in the project folder, the working directory
    to_build = Environment.from_pip_requirements("to-build", "requirements.txt")
    to_build.docker.enabled = True
    to_build.docker.base_image = "amltrain/base:bookworm"
    to_build.register(ws)
    local = Environment("on-host")  # no Docker: a local process
    local.python.user_managed_dependencies = True
    local.register(ws)

    body = await get_json(jp_fetch, "environments")
    states = {env["name"]: env for env in body["environments"]}
    assert body["docker"]["reachable"] is True
    assert states["as-is"]["state"] == "built" and states["as-is"]["image"] == "amltrain/base:bookworm"
    assert states["to-build"]["state"] == "not built"
    assert states["to-build"]["image"] == f"azureml/azureml_{states['to-build']['image_hash']}"
    assert states["on-host"]["state"] == "local process" and states["on-host"]["image"] is None
    assert all(env["version"] == 1 and env["runs"] == 0 for env in states.values())


async def test_log_stream_of_a_long_finished_log_sends_it_whole(jp_fetch: Any, local_ws: LocalWorkspace) -> None:
    text = "".join(f"line {i:06d} " + "x" * 90 + "\n" for i in range(7000))  # about 2.7 read limits
    run_id = make_run(local_ws, log=text + "no newline at the end", status="Completed")
    received: list[bytes] = []
    await jp_fetch(NAMESPACE, "runs", run_id, "logs", "stream", streaming_callback=received.append,
                   request_timeout=60)
    events = parse_events(b"".join(received).decode())
    chunks = [data for name, data in events if name == "log"]
    assert len(chunks) >= 3 and "".join(c["text"] for c in chunks) == text + "no newline at the end"
    assert events[-1] == ("end", {"status": "Completed"})

"""Talking to the agent of a store home, starting it when nobody answers.

Every face reaches the agent through these functions: ``submit`` hands it a run, opening a workspace and
every waiter make sure one is alive to drive the runs, and ``amltrain agent start|status|stop`` call them
directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from jupyter_amltrain.engine.agent.paths import AGENT_MODULE, AgentPaths
from jupyter_amltrain.engine.agent.protocol import Answer, Request, receive, send
from jupyter_amltrain.exceptions import AzureMLException

if TYPE_CHECKING:
    from jupyter_amltrain.engine.runs.follow import FollowEvent

START_SECONDS = 20.0  # a cold interpreter with the engine's imports, on a loaded 2-core machine
IDLE_ENV = "AMLTRAIN_AGENT_IDLE_SECONDS"


class AgentUnavailable(AzureMLException):
    """The agent could not be started or reached; the message says why and what to do."""


def request(home: Path, message: Request, *, timeout: float = 30.0) -> Answer | None:
    """Send one request to the running agent of ``home``; None when no agent answers."""
    paths = AgentPaths(Path(home).resolve())
    try:
        address = str(paths.socket)
    except PermissionError as error:
        raise AgentUnavailable(str(error)) from error
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            send(sock, message)
            answer = receive(sock)
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError, TimeoutError):
            return None
    if answer is None:
        return None
    if not answer.get("ok"):
        raise AgentUnavailable(f"the agent of {home} refused the request: {answer.get('error')}")
    return cast(Answer, answer)


def ensure_agent(home: Path) -> Answer:
    """The agent of ``home``, started now when none answers (once, even when many processes ask at once:
    the losers of the agent's lock exit and their callers reach the winner)."""
    home = Path(home).resolve()
    answer = request(home, {"op": "ping"})
    if answer is not None:
        return answer
    paths = AgentPaths(home).ensure()
    with open(paths.log, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", AGENT_MODULE, "--home", str(home)], stdin=subprocess.DEVNULL, stdout=log,
            stderr=log, start_new_session=True, close_fds=True, env=dict(os.environ, AMLTRAIN_HOME=str(home)),
            cwd="/",
        )
    # Reap it when it ends, so it never lingers as a zombie that looks alive.
    threading.Thread(target=process.wait, name="agent-reaper", daemon=True).start()
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        answer = request(home, {"op": "ping"})
        if answer is not None:
            return answer
        code = process.poll()
        if code not in (None, 0):
            tail = paths.log.read_text(errors="replace").strip().splitlines()[-10:]
            raise AgentUnavailable(f"The jupyter-amltrain agent for {home} exited with code {code}. Last lines of "
                                   f"its log ({paths.log}):\n  " + "\n  ".join(tail))
        time.sleep(0.005)
    raise AgentUnavailable(
        f"The jupyter-amltrain agent for {home} did not start within {START_SECONDS:g} s. Its log is "
        f"{paths.log}; start it by hand to see why: {sys.executable} -m {AGENT_MODULE} --home {home}"
    )


def subscribe(home: Path, workspace: Path, run_id: str, offsets: dict[str, int], *,
              deadline: float | None = None) -> Iterator[FollowEvent]:
    """The agent's stream of ``run_id`` from ``offsets``: ends with an ``end`` event, or when the agent goes
    away (then the caller joins again with the offsets it reached), or at ``deadline``."""
    from jupyter_amltrain.engine.runs.follow import FollowEvent

    address = str(AgentPaths(Path(home).resolve()).socket)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(address)
        send(sock, {"op": "follow", "workspace": str(workspace), "run_id": run_id, "offsets": offsets})
        reader = sock.makefile("rb")
        first = reader.readline()
        if not first:
            return
        answer = json.loads(first)
        if not answer.get("ok"):
            raise AgentUnavailable(f"the agent of {home} refused to stream run {run_id}: {answer.get('error')}")
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                sock.settimeout(left)
            try:
                line = reader.readline()
            except TimeoutError:
                return
            if not line:
                return  # the agent went away
            yield FollowEvent(**json.loads(line)["event"])


def warm_agent(home: Path) -> None:
    """Start the agent of ``home`` in the background when none answers, without waiting for it: called when a
    workspace opens and when the server extension loads, so the first submit finds it warm."""
    home = Path(home).resolve()
    with contextlib.suppress(AgentUnavailable, OSError):
        if request(home, {"op": "ping"}, timeout=2.0) is None:
            threading.Thread(target=_start_quietly, args=(home,), name="agent-warm-up", daemon=True).start()


def _start_quietly(home: Path) -> None:
    with contextlib.suppress(AgentUnavailable, OSError):
        ensure_agent(home)


def hand_run(home: Path, workspace: Path, run_id: str, *, secrets: dict[str, str]) -> int:
    """Give a recorded run to the agent (started if need be); returns the agent's pid."""
    ensure_agent(home)
    answer = request(home, {"op": "run", "workspace": str(workspace), "run_id": run_id, "secrets": secrets})
    if answer is None:  # it went away between the two requests (idle exit): once more
        ensure_agent(home)
        answer = request(home, {"op": "run", "workspace": str(workspace), "run_id": run_id, "secrets": secrets})
    if answer is None:
        raise AgentUnavailable(f"The jupyter-amltrain agent for {home} stopped answering; see {AgentPaths(home).log}")
    return int(answer.get("pid", 0))


def adopt_orphans(home: Path, workspace: Path) -> list[str]:
    """Make sure an agent drives every active run of ``workspace``; returns the runs it took up now."""
    ensure_agent(home)
    answer = request(home, {"op": "adopt", "workspace": str(workspace)})
    return list(answer.get("adopted", [])) if answer else []


def agent_status(home: Path) -> Answer | None:
    return request(home, {"op": "status"})


def stop_agent(home: Path, *, timeout: float = 10.0) -> bool:
    """Ask the agent to exit (its runs go on: containers and jobs keep running, and the next agent re-attaches);
    False when none was running."""
    home = Path(home).resolve()
    answer = request(home, {"op": "stop"})
    if answer is None:
        return False
    pid = int(answer.get("pid", 0))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.02)
    return True


def idle_seconds_from_env(default: float) -> float:
    try:
        return float(os.environ.get(IDLE_ENV, default))
    except ValueError:
        return default

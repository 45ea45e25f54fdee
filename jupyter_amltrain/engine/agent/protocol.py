"""The messages between the agent and its clients: one JSON object per line over a Unix socket.

Every request names an ``op``; every answer has ``ok`` and, when it is false, an ``error`` that says what went
wrong and the fix. Secrets (a registry password) travel inside a ``run`` request and live in the agent's memory
only, as they did in a supervisor's.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Literal, TypedDict

Op = Literal["ping", "run", "adopt", "wake", "status", "stop", "follow"]
MAX_MESSAGE = 1 << 20  # a request is small: a run id, a path, a password


class RunSettings(TypedDict, total=False):
    """The submitter's settings that shape a run, kept in its plan: the agent serves every submitter of the store
    home, and a submitter may hold them in its environment or in memory only."""

    ca_bundle: str
    inject_ca_bundle: bool
    poll_interval: float
    declared_gpus: list[int]
    system_metrics_interval: float


class Request(TypedDict, total=False):
    op: Op
    workspace: str  # the workspace's folder (under the agent's store home)
    run_id: str
    secrets: dict[str, str]
    offsets: dict[str, int]  # follow: how far the subscriber has read each log


class RunState(TypedDict):
    workspace: str
    run_id: str
    phase: str  # what the run's thread does now: queued, preparing, running, ...


class Answer(TypedDict, total=False):
    ok: bool
    error: str
    pid: int
    home: str
    started: float
    runs: list[RunState]
    adopted: list[str]


def send(sock: socket.socket, message: Request | Answer) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def receive(sock: socket.socket) -> dict[str, Any] | None:
    """One message, or None when the peer closed the connection first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_MESSAGE:
            raise ValueError(f"message over {MAX_MESSAGE} bytes")
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("a message is a JSON object")
    return value

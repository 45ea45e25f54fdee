"""Following a run: its status changes and the new text of its logs, as they happen. The one follower.

Every face that follows a run (``wait_for_completion(show_output=True)``, ``%aml_logs --follow``, ``amltrain
logs --follow``) reads ``follow_run``. The agent that drives the run publishes to it over its socket: a line
written to a log, or a status written to the store, wakes the subscriber at once instead of at its next poll.
The run's files stay the durable copy: a subscriber that joins late, or reconnects after the agent restarted,
gives the offsets it has and gets everything after them; when no agent can be reached, the files are read
directly until the run ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from jupyter_amltrain.engine.store.layout import RunLayout, WorkspaceLayout

# The logs a run's stream shows, in the order v1 streams them: the image build, then the job's output.
STREAMED_LOGS = ("azureml-logs/20_image_build_log.txt", "user_logs/std_log.txt")
FALLBACK_POLL_SECONDS = 0.05
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class FollowEvent:
    kind: Literal["log", "status", "end"]
    name: str = ""  # log events: the log's name (one of STREAMED_LOGS)
    offset: int = 0  # log events: the byte offset of ``text`` in the log
    text: str = ""
    status: str = ""  # status and end events
    sub_status: str = ""


@dataclass
class Offsets:
    """How far a subscriber has read each log, in bytes."""

    by_name: dict[str, int] = field(default_factory=dict)

    def advance(self, event: FollowEvent) -> None:
        if event.kind == "log":
            self.by_name[event.name] = event.offset + len(event.text.encode("utf-8", "surrogateescape"))


def log_path(layout: RunLayout, name: str) -> Path:
    return {"azureml-logs/20_image_build_log.txt": layout.build_log, "user_logs/std_log.txt": layout.std_log}[name]


def complete_utf8(data: bytes) -> bytes:
    """``data`` without a trailing partial UTF-8 character (it is sent with the next chunk)."""
    end = len(data)
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte or ASCII: does its character fit in what we have?
            need = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            return data if back >= need else data[: end - back]
    return data


def read_new(layout: RunLayout, offsets: Offsets, names: Sequence[str] = STREAMED_LOGS) -> list[FollowEvent]:
    """The logs' text past ``offsets`` (whole UTF-8 characters), in stream order; advances nothing."""
    events = []
    for name in names:
        path = log_path(layout, name)
        start = offsets.by_name.get(name, 0)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            size = os.fstat(fd).st_size
            if size <= start:
                if name not in offsets.by_name:  # the log exists, still empty: its stream begins here
                    events.append(FollowEvent("log", name, 0, ""))
                continue
            data = complete_utf8(os.pread(fd, min(size - start, CHUNK_BYTES), start))
        finally:
            os.close(fd)
        if data:
            events.append(FollowEvent("log", name, start, data.decode("utf-8", "replace")))
    return events


def follow_run(home: Path, workspace: WorkspaceLayout, run_id: str, *, offsets: Offsets | None = None,
               timeout: float | None = None) -> Iterator[FollowEvent]:
    """Status changes and new log text of ``run_id`` until it ends (an ``end`` event), or ``timeout``.

    Through the agent when it answers (and it is started when it does not: a run needs a driver to end); from
    the files, read every ``FALLBACK_POLL_SECONDS``, when no agent can be reached."""
    from jupyter_amltrain.engine.agent.client import AgentUnavailable, ensure_agent, subscribe

    offsets = offsets or Offsets()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            ensure_agent(home)
            for event in subscribe(home, workspace.root, run_id, offsets.by_name, deadline=deadline):
                offsets.advance(event)
                yield event
                if event.kind == "end":
                    return
            if deadline is not None and time.monotonic() >= deadline:
                return
        except (TimeoutError, AgentUnavailable, OSError):
            yield from run_events(workspace, run_id, offsets, token=lambda: 0,
                                  wait=lambda _: time.sleep(FALLBACK_POLL_SECONDS), deadline=deadline)
            return
        # The agent went away mid-stream (killed, or restarted by its watchdog): join again where we were.


def run_events(workspace: WorkspaceLayout, run_id: str, offsets: Offsets, *, token: Callable[[], int],
               wait: Callable[[int], None], deadline: float | None = None) -> Iterator[FollowEvent]:
    """The run's events from its files and its store row, from ``offsets`` (advanced as they are yielded) to
    its end. The one loop behind every follower: the agent streams it (``wait`` woken by each write there),
    and ``follow_run`` reads it directly when no agent answers (``wait`` a short sleep). ``token()`` is taken
    before each look, so a write during the look still ends the ``wait`` that follows."""
    from jupyter_amltrain.engine.runs import records
    from jupyter_amltrain.engine.store.db import Store

    store = Store(workspace.database)
    layout = RunLayout(workspace.run_dir(run_id))
    said: tuple[str, str] | None = None
    try:
        while True:
            seen = token()
            record = records.get_run(store, run_id)
            for event in read_new(layout, offsets):
                offsets.advance(event)
                yield event
            if record is None:
                yield FollowEvent("end")
                return
            if (record.status, record.sub_status) != said:
                said = (record.status, record.sub_status)
                yield FollowEvent("status", status=record.status, sub_status=record.sub_status)
            if record.terminal:
                for event in read_new(layout, offsets):  # the last lines, written before the end
                    offsets.advance(event)
                    yield event
                yield FollowEvent("end", status=record.status, sub_status=record.sub_status)
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            wait(seen)
    finally:
        store.close()

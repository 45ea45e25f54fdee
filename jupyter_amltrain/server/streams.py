"""A run's log, live, as server-sent events: ``GET runs/{run_id}/logs/stream``.

Plain HTTP through the Jupyter server itself (no second server, no websocket upgrade for a proxy to drop), so
it works wherever JupyterLab does. Events:

* ``file``: ``{"file"}``, the log the next lines belong to. Without ``?file=`` (or with ``&follow=true``) the
  stream follows the run's current log: the image build log while it builds, then the job's output; it
  moves on once the log it reads has nothing new, and reads the next one from offset 0.
* ``log``: ``{"file", "text", "offset", "size"}``, complete lines; ``id`` is the offset after them, so a client
  that reconnects with ``?file=&offset=&follow=true`` (or ``Last-Event-ID``) resumes without gaps or repeats.
* ``status``: ``{"status", "sub_status"}`` whenever it changes.
* ``end``: ``{"status"}``, once the run is over and every line was sent (a last line without its newline
  included); the response then ends.
* ``error``: ``{"message"}``, a refusal that came up after the stream started; the response then ends.

Comment lines (``:``) keep idle connections open through proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from jupyter_amltrain.engine.runs.follow import follow_run
from jupyter_amltrain.engine.runs.recovery import ensure_supervised
from jupyter_amltrain.engine.store.layout import RunLayout
from jupyter_amltrain.engine.views.logs import MAX_CHUNK, LogChunk
from jupyter_amltrain.engine.views.run_details import current_log, run_log_files, tail_offset
from jupyter_amltrain.engine.workspace import LocalWorkspace
from jupyter_amltrain.server import payloads
from jupyter_amltrain.server.base import AmlTrainHandler
from jupyter_amltrain.server.context import ApiError

KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True)
class Tick:
    status: str
    sub_status: str
    terminal: bool
    file: str | None
    chunk: LogChunk | None
    more: bool = False   # the read stopped at its size limit: read on at once rather than after a pause


def read_tick(ws: LocalWorkspace, run_id: str, name: str | None, offset: int, follow: bool,
              tail: int | None = None) -> Tick:
    """One look at the run: its status first, then the log, so that a terminal status means the log is whole.
    Following, the reader moves on to the run's current log once the one it reads has nothing new."""
    record = payloads.find_run(ws, run_id)
    if follow and not record.terminal:  # a live stream waits on the run: a killed supervisor is replaced
        ensure_supervised(ws, record.run_id)
    chosen = None
    if follow:
        chosen = current_log(run_log_files(RunLayout(ws.layout.run_dir(record.run_id))), record.status)
        name = name or chosen
    if name is None:
        return Tick(record.status, record.sub_status, record.terminal, None, None)
    log = payloads.resolve_log(ws, record, name)  # the run's regular file, never a link the job made
    if tail is not None:
        offset = tail_offset(log, tail)
    chunk = payloads.read_log(log, offset, MAX_CHUNK, final=record.terminal)
    if follow and not chunk.text and chosen is not None and chosen != name:
        name, offset = chosen, 0
        chunk = payloads.read_log(payloads.resolve_log(ws, record, name), 0, MAX_CHUNK, final=record.terminal)
    # While the run lives, a partial last line also leaves offset < size: only a read cut by the limit means
    # more is waiting. Once it is over, whatever is left (that last line too) is read without pausing.
    more = chunk.size - offset > MAX_CHUNK or (record.terminal and chunk.offset < chunk.size)
    return Tick(record.status, record.sub_status, record.terminal, name, chunk, more)


class LogStreamHandler(AmlTrainHandler):
    _closed = False
    _pending = False  # events written since the last flush

    def _woken_by_follower(self, ws: LocalWorkspace, run_id: str) -> asyncio.Event:
        """An event set (on this loop) at each event of the run's one follower (engine/runs/follow.py), from a
        thread that ends with the run or with this connection. What is sent is still read by ``read_tick``:
        the files are the durable copy, and a reconnecting client resumes from its offset."""
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()

        def watch() -> None:
            with contextlib.suppress(Exception):  # a follower that fails only costs latency: the timer remains
                for _ in follow_run(Path(ws.settings.home), ws.layout, run_id):
                    if self._closed:
                        return
                    loop.call_soon_threadsafe(wake.set)

        threading.Thread(target=watch, name=f"amltrain-follow-{run_id}", daemon=True).start()
        return wake

    def on_connection_close(self) -> None:
        self._closed = True

    def send(self, event: str, data: dict[str, Any], event_id: str | None = None) -> None:
        head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
        self.write(head + f"data: {json.dumps(data)}\n\n")
        self._pending = True

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        name = self.get_query_argument("file", None) or None
        follow = name is None or self.get_query_argument("follow", "") in ("1", "true")
        last_id = self.request.headers.get("Last-Event-ID", "")
        offset = self.int_argument("offset", int(last_id) if last_id.isdigit() else 0) or 0
        tail = self.int_argument("tail", minimum=1)
        interval = max(0.05, self.context.config.log_stream_interval)

        # The first look happens before any byte is sent, so a refused request still gets its status code.
        ws, tick = await self.in_workspace(lambda ws: (ws, read_tick(ws, run_id, name, offset, follow, tail)))
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx in front of Jupyter must not hold events back
        status: tuple[str, str] | None = None
        last_write = time.monotonic()
        wake = self._woken_by_follower(ws, run_id) if follow and not tick.terminal else None
        try:
            while not self._closed:
                if tick.file != name or (tick.file is not None and status is None):
                    name = tick.file
                    self.send("file", {"file": name})
                if (tick.status, tick.sub_status) != status:
                    status = (tick.status, tick.sub_status)
                    self.send("status", {"status": tick.status, "sub_status": tick.sub_status})
                more = tick.more
                if tick.chunk is not None and tick.chunk.text:
                    offset = tick.chunk.offset
                    self.send("log", {"file": name, "text": tick.chunk.text, "offset": offset,
                                      "size": tick.chunk.size}, str(offset))
                elif tick.chunk is not None:
                    offset = tick.chunk.offset
                if tick.terminal and not more:
                    self.send("end", {"status": tick.status})
                    break
                if self._pending or time.monotonic() - last_write >= KEEPALIVE_SECONDS:
                    if not self._pending:
                        self.write(": keep-alive\n\n")
                    await self.flush()
                    self._pending, last_write = False, time.monotonic()
                if not more and wake is not None:
                    # The run's follower wakes us the moment a line or a status is written; the interval
                    # remains as a fallback (and is all there is without an agent).
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=interval)
                    wake.clear()
                elif not more:
                    await asyncio.sleep(interval)
                try:
                    tick = await self.context.call(read_tick, ws, run_id, name, offset, follow)
                except ApiError as error:
                    self.send("error", {"message": error.message})
                    break
                except Exception as error:  # headers are out: say it in the stream, then end it
                    self.log.warning("jupyter-amltrain: log stream of %s failed: %s", run_id, error)
                    self.send("error", {"message": f"Reading the log failed: {error}. Reload to resume."})
                    break
            if not self._closed:
                await self.finish(set_content_type="text/event-stream")
        except StreamClosedError:  # the reader went away: nothing left to do
            pass

"""Append-only tracking events, one JSON object per line, written from inside the job.

Runs inside job containers: standard library only, valid Python 3.6.

Several processes of one job (DataLoader workers, torchrun ranks) may log to the same file. The file is
opened with O_APPEND and every event is one ``os.write`` of one complete line, so the kernel appends each
line whole and lines from different processes never interleave. There is no user-space buffer: an event
is in the file (the page cache) when the call returns, so a crash of the job loses nothing already logged.
The host reads the file with ``jupyter_amltrain.engine.tracking.ingest``.

Event shapes::

    {"op": "metric", "kind": "scalar|list|row|table|image", "name": .., "value": .., "step": ..,
     "description": .., "t": <epoch seconds>}
    {"op": "tag", "key": .., "value": ..}
    {"op": "property", "key": .., "value": ..}
    {"op": "file", "name": "outputs/x.png", "source": "<path relative to the run folder>"}
"""


import json
import os
import time
from typing import Any, Dict, Optional, Union

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class EventWriter:
    def __init__(self, path: "Union[str, os.PathLike[str]]"):
        self.path = os.fspath(path)
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, event: Dict[str, Any]) -> None:
        """Append one event. Values must already be JSON-ready (see ``values``); NaN is refused here."""
        if self._fd < 0:
            raise ValueError("EventWriter for %s is closed; create a new one to keep logging." % self.path)
        data = (_ENCODER.encode(event) + "\n").encode("utf-8")
        written = os.write(self._fd, data)
        while written < len(data):
            # Only a full disk or a signal mid-write gets here; the line may then be split, and the
            # ingester skips the damaged line rather than losing everything after it.
            written += os.write(self._fd, data[written:])

    def metric(
        self, kind: str, name: str, value: Any, step: Optional[int] = None, description: str = ""
    ) -> None:
        self.write({"op": "metric", "kind": kind, "name": name, "value": value, "step": step,
                    "description": description, "t": time.time()})

    def tag(self, key: str, value: str) -> None:
        self.write({"op": "tag", "key": key, "value": value})

    def property(self, key: str, value: str) -> None:
        self.write({"op": "property", "key": key, "value": value})

    def file(self, name: str, source: str) -> None:
        self.write({"op": "file", "name": name, "source": source})

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

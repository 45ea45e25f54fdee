"""Background refresh for live widgets: one daemon thread per widget, throttled, batched, stoppable.

Why this shape:

* Trait updates from a worker thread are the way ipywidgets documents for background updates; each push is
  one comm message on iopub, which the kernel sends even while a cell is busy. Nothing here prints or opens
  an ``Output`` context: with ipykernel 7 a thread's output may land in whichever cell ran last.
* ``push_state`` sends only the traits whose value changed, all in one message (``hold_sync``), so an idle
  run costs nothing on the wire and a busy one at most one message per tick.
* ``Refresher`` ticks at most every ``interval`` seconds; ``wake()`` (a user picked another log) brings the
  next tick forward but never closer than ``min_gap`` to the last, and a tick that answers False (the run
  ended) stops the thread: a finished run is not polled again, unlike v1's widget.
* Repeated errors stop it too (v1 gave up after three of the same kind), handing the last one to ``on_error``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

MAX_ERRORS = 3


def push_state(widget: Any, state: dict[str, Any]) -> list[str]:
    """Set the traits of ``state`` that differ from the widget's, in one comm message; returns their names."""
    changed = [name for name, value in state.items() if getattr(widget, name) != value]
    if changed:
        with widget.hold_sync():
            for name in changed:
                setattr(widget, name, state[name])
    return changed


class Refresher:
    """Calls ``tick()`` on a daemon thread until it returns False, ``stop()`` is called, or it keeps failing."""

    def __init__(self, tick: Callable[[], bool], *, interval: float, name: str, min_gap: float = 0.2,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self._tick = tick
        self.interval = interval
        self.min_gap = min(min_gap, interval)
        self.name = name
        self._on_error = on_error
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.last_error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start ticking unless already running; returns True when a thread was started."""
        with self._guard:
            if self.running:
                return False
            self._stop.clear()
            self._wake.clear()
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
            return True

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True when it has (or never ran)."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _loop(self) -> None:
        errors = 0
        last = 0.0
        while not self._stop.is_set():
            last = time.monotonic()
            try:
                keep_going = self._tick()
                errors = 0
            except Exception as error:  # one bad tick (a busy store, a file rotating) must not kill the view
                errors += 1
                self.last_error = error
                if errors >= MAX_ERRORS:
                    if self._on_error is not None:
                        self._on_error(error)
                    return
                keep_going = True
            if not keep_going:
                return
            self._wake.wait(self.interval)
            self._wake.clear()
            gap = time.monotonic() - last
            if gap < self.min_gap:
                self._stop.wait(self.min_gap - gap)


class _LiveDisplays:
    """Objects shown with a display id whose static text/HTML should follow the live state.

    The static parts of an output (what nbconvert, GitHub and a kernel-less reopen show) are only rewritten
    from the main thread, after each cell (IPython's ``post_run_cell``), never from a refresh thread.
    """

    def __init__(self) -> None:
        self._items: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self._lock:
            self._items.add(item)

    def flush(self, *_: Any) -> None:
        with self._lock:
            items = list(self._items)
        for item in items:
            if item._update_static_display():
                with self._lock:
                    self._items.discard(item)


live_displays = _LiveDisplays()

"""Process launcher for local-process runs (no Docker)::

    python -m jupyter_amltrain.engine.runtime.launch --log FILE --stderr-tail FILE --exit-file FILE \\
        [--timeout SECONDS] [--kill-grace SECONDS] -- cmd arg...

Standard library only, valid Python 3.6 (it also runs with the job's interpreter).

It starts ``cmd`` in its own process group, copies stdout and stderr line by line into the log (flushed
per line, so a reader tailing it sees output within milliseconds), keeps the last 50 stderr lines in the
stderr-tail file, forwards SIGTERM/SIGINT to the child's group (cancel), enforces ``--timeout`` (SIGTERM,
then SIGKILL after the grace period) and finally writes the exit file atomically::

    {"exit_code": int|null, "signal": int|null, "timed_out": bool, "ended": epoch_seconds}

The exit file is how the run's supervisor learns the outcome, even if the supervisor was restarted
meanwhile; so the launcher outlives its parent (the caller starts it with ``start_new_session``), ignores
SIGHUP and never writes to its own stdout/stderr, which may be pipes nobody reads any more.
"""


import argparse
import codecs
import collections
import errno
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from typing import IO, Any, Deque, Dict, List, Optional, Tuple

TAIL_LINES = 50
TAIL_LINE_CHARS = 4096  # progress bars redraw with \r on one "line"; keep the tail file small
DEFAULT_KILL_GRACE = 10.0
IDLE_FLUSH_SECONDS = 0.2  # a partial line (prompt, progress bar) is written after this much silence
MAX_PARTIAL_CHARS = 65536
DRAIN_SECONDS = 2.0  # after the child exits, how long to wait for processes it left holding the pipes
TAIL_WRITE_INTERVAL = 0.5
READ_SIZE = 65536
EXIT_NOT_STARTED = 127  # the shell's code for "command not found"


RESERVED_BYTES = 512  # room kept for the exit file from the start: a job may fill the disk before it ends


def reserve(path: str) -> str:
    """A file of RESERVED_BYTES beside ``path``, written now while there is room, that the exit file can be
    written into in place later, when the disk may be full."""
    reserved = path + ".reserved"
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(reserved, "wb") as f:
        f.write(b" " * RESERVED_BYTES)
        f.flush()
        os.fsync(f.fileno())
    return reserved


def write_into_reserved(reserved: str, path: str, text: str) -> None:
    """``text`` (at most RESERVED_BYTES) over the reserved file's blocks, then renamed to ``path``: no new block
    is needed, so this works on a full disk. Readers of JSON ignore the padding."""
    data = text.encode("utf-8")
    if len(data) > RESERVED_BYTES:
        raise OSError("launch: the exit record does not fit its reserved room")
    with open(reserved, "r+b") as f:
        f.write(data + b" " * (RESERVED_BYTES - len(data)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(reserved, path)


def write_atomic(path: str, text: str) -> None:
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)  # nothing half-written left behind (a full disk)
        except OSError:
            pass
        raise


class _Stream:
    """One of the child's output pipes: bytes -> text (invalid UTF-8 replaced) -> lines."""

    def __init__(self, name: str, pipe: IO[bytes]):
        self.name = name
        self.pipe = pipe
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.partial = ""
        self.last_data = 0.0


class Launcher:
    def __init__(
        self,
        cmd: List[str],
        log_path: str,
        tail_path: str,
        exit_path: str,
        timeout: Optional[float] = None,
        kill_grace: float = DEFAULT_KILL_GRACE,
    ):
        self.cmd = cmd
        self.log_path = log_path
        self.tail_path = tail_path
        self.exit_path = exit_path
        self.reserved: Optional[str] = None  # the exit record's room, kept from the start (see reserve)
        self.dropped = 0  # bytes of output a full disk had no room for
        self.timeout = timeout if timeout and timeout > 0 else None
        self.kill_grace = kill_grace
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.reaped = False
        self.timed_out = False
        self.pending_signals: List[int] = []
        self.kill_at: Optional[float] = None
        self.tail: Deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.tail_partial = ""
        self.tail_dirty = False
        self.tail_written = 0.0
        self.midline: Optional[str] = None  # stream whose unfinished line ends the log
        self.log_fd = -1

    # -- signals ----------------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.proc is None:
            self.pending_signals.append(signum)  # forwarded as soon as the child exists
            return
        self._signal_group(signum)
        if signum == signal.SIGTERM and self.kill_at is None:
            self.kill_at = time.monotonic() + self.kill_grace

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # A handler, not SIG_IGN: ignored signals stay ignored across exec, and the child should see SIGHUP.
        signal.signal(signal.SIGHUP, lambda signum, frame: None)

    def _signal_group(self, signum: int) -> None:
        if self.proc is None or self.reaped:
            return  # once reaped, the pid may belong to someone else
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _child_exited(self) -> bool:
        """True once the child has exited, without reaping it, so its pid (= group id) stays ours."""
        assert self.proc is not None
        if self.proc.returncode is not None:
            return True
        waitid = getattr(os, "waitid", None)
        if waitid is None:
            return self.proc.poll() is not None
        try:
            info = waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self.proc.poll() is not None
        return info is not None

    # -- output -----------------------------------------------------------------------------------------

    def _write_log(self, text: str) -> None:
        if not text:
            return
        data = text.encode("utf-8")
        written = 0
        try:
            while written < len(data):
                written += os.write(self.log_fd, data[written:])
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            # A full disk (often the job's own doing): its output is dropped, but it is still followed to its
            # end, so that its real exit code is recorded (in the exit record's reserved room).
            self.dropped += len(data) - written

    def _emit(self, stream: _Stream, text: str, final: bool = False) -> None:
        """Write complete lines of ``text`` (plus the stream's held partial line) to the log."""
        text = stream.partial + text
        cut = text.rfind("\n") + 1
        complete, stream.partial = text[:cut], text[cut:]
        if final or len(stream.partial) > MAX_PARTIAL_CHARS:
            complete, stream.partial = text, ""
        if complete:
            self._to_log(stream, complete)

    def _to_log(self, stream: _Stream, text: str) -> None:
        out = text
        if self.midline is not None and self.midline != stream.name:
            out = "\n" + out  # end the other stream's unfinished line first, so lines never merge
        self._write_log(out)
        self.midline = None if text.endswith("\n") else stream.name
        if stream.name == "stderr":
            self._add_tail(text)

    def _flush_partial(self, stream: _Stream) -> None:
        if stream.partial:
            text, stream.partial = stream.partial, ""
            self._to_log(stream, text)

    def _add_tail(self, text: str) -> None:
        lines = (self.tail_partial + text).split("\n")
        self.tail_partial = lines.pop()[-TAIL_LINE_CHARS:]
        for line in lines[-TAIL_LINES:]:
            self.tail.append(line[-TAIL_LINE_CHARS:] + "\n")
        self.tail_dirty = True

    def _write_tail(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tail_dirty and (force or now - self.tail_written >= TAIL_WRITE_INTERVAL):
            try:
                write_atomic(self.tail_path, "".join(self.tail) + self.tail_partial)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return  # a full disk: the tail waits for room (it is kept in memory); the job goes on
            self.tail_dirty = False
            self.tail_written = now

    # -- main loop --------------------------------------------------------------------------------------

    def _start(self) -> bool:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # print() shows up in the log as it happens
        try:
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=env, start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            message = "launch: cannot start %s: %s. Check the command and that it is installed.\n" % (
                " ".join(self.cmd), exc)
            self._write_log(message)
            self.tail.append(message)
            self.tail_dirty = True
            return False
        for signum in self.pending_signals:
            self._on_signal(signum, None)
        return True

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None and self.proc.stderr is not None
        selector = selectors.DefaultSelector()
        streams: Dict[int, _Stream] = {}
        for name, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            stream = _Stream(name, pipe)
            streams[pipe.fileno()] = stream
            selector.register(pipe.fileno(), selectors.EVENT_READ, stream)
        deadline = time.monotonic() + self.timeout if self.timeout else None
        exited_at: Optional[float] = None
        try:
            while True:
                for key, _ in selector.select(IDLE_FLUSH_SECONDS / 2):
                    stream = key.data
                    data = os.read(key.fd, READ_SIZE)
                    if data:
                        stream.last_data = time.monotonic()
                        self._emit(stream, stream.decoder.decode(data))
                    else:
                        self._emit(stream, stream.decoder.decode(b"", final=True), final=True)
                        selector.unregister(key.fd)
                        del streams[key.fd]
                now = time.monotonic()
                for stream in streams.values():
                    if stream.partial and now - stream.last_data >= IDLE_FLUSH_SECONDS:
                        self._flush_partial(stream)
                self._write_tail()
                if deadline is not None and not self.timed_out and exited_at is None and now >= deadline:
                    self.timed_out = True
                    self._signal_group(signal.SIGTERM)
                    self.kill_at = now + self.kill_grace
                if exited_at is None and self._child_exited():
                    exited_at = now
                elif exited_at is None and self.kill_at is not None and now >= self.kill_at:
                    self._signal_group(signal.SIGKILL)
                    self.kill_at = None
                if exited_at is not None and (not streams or now - exited_at >= DRAIN_SECONDS):
                    break
        finally:
            for stream in list(streams.values()):
                self._flush_partial(stream)
            selector.close()

    def _finish(self, started: bool) -> Tuple[Optional[int], Optional[int]]:
        exit_code: Optional[int] = None
        sig: Optional[int] = None
        if not started:
            exit_code = EXIT_NOT_STARTED
        elif self.proc is not None:
            # Whatever the child left in its group (daemons, stray workers) goes with it, as in a container.
            self._signal_group(signal.SIGKILL)
            returncode = self.proc.wait()
            self.reaped = True
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
            if returncode < 0:
                sig = -returncode
            else:
                exit_code = returncode
        self._write_tail(force=True)
        record = json.dumps(
            {"exit_code": exit_code, "signal": sig, "timed_out": self.timed_out, "ended": time.time()})
        try:
            write_atomic(self.exit_path, record)
        except OSError:
            if self.reserved is None:
                raise
            write_into_reserved(self.reserved, self.exit_path, record)
            self.reserved = None
        if self.reserved is not None:
            try:
                os.unlink(self.reserved)
            except OSError:
                pass
        return exit_code, sig

    def run(self) -> int:
        self._install_signals()
        try:
            self.reserved = reserve(self.exit_path)
        except OSError:
            self.reserved = None  # already full: the exit record is tried all the same
        self.log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        started = False
        try:
            started = self._start()
            if started:
                self._pump()
        except Exception as exc:  # keep going: the exit file must still be written
            try:
                self._write_log("\nlaunch: internal error while following the process: %r\n" % (exc,))
            except OSError:
                pass  # the log is unwritable (disk full?); the exit file below may still make it
        finally:
            exit_code, sig = self._finish(started)
            os.close(self.log_fd)
        return exit_code if exit_code is not None else 128 + (sig or 0)


def _parse(argv: List[str]) -> Tuple[argparse.Namespace, List[str]]:
    if "--" not in argv:
        raise SystemExit("launch: put the command after '--', e.g. launch --log L ... -- python train.py")
    split = argv.index("--")
    cmd = argv[split + 1:]
    if not cmd:
        raise SystemExit("launch: no command after '--'; give the program to run, e.g. -- python train.py")
    parser = argparse.ArgumentParser(prog="python -m jupyter_amltrain.engine.runtime.launch")
    parser.add_argument("--log", required=True, help="file receiving stdout and stderr (appended)")
    parser.add_argument("--stderr-tail", required=True, help="file holding the last 50 stderr lines")
    parser.add_argument("--exit-file", required=True, help="JSON outcome, written atomically at the end")
    parser.add_argument("--timeout", type=float, default=None, help="max run duration in seconds")
    parser.add_argument("--kill-grace", type=float, default=DEFAULT_KILL_GRACE,
                        help="seconds between SIGTERM and SIGKILL on timeout or cancel")
    return parser.parse_args(argv[:split]), cmd


def main(argv: Optional[List[str]] = None) -> int:
    args, cmd = _parse(sys.argv[1:] if argv is None else list(argv))
    launcher = Launcher(cmd, args.log, args.stderr_tail, args.exit_file, args.timeout, args.kill_grace)
    return launcher.run()


if __name__ == "__main__":
    sys.exit(main())

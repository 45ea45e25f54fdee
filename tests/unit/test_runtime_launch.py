"""The local-process launcher (engine/runtime/launch.py), run as ``python -m`` like the supervisor does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
WAIT = 60.0  # generous upper bound for waiting on a file; not a timing assertion


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


class Launch:
    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        self.log = tmp_path / "user_logs" / "std_log.txt"
        self.tail = tmp_path / "system_logs" / "stderr.txt"
        self.exit = tmp_path / "system_logs" / "exit.json"
        self.log.parent.mkdir(parents=True)

    def argv(self, script: str, *options: str) -> list[str]:
        return [sys.executable, "-m", "jupyter_amltrain.engine.runtime.launch", "--log", str(self.log),
                "--stderr-tail", str(self.tail), "--exit-file", str(self.exit), *options,
                "--", sys.executable, "-c", textwrap.dedent(script)]

    def start(self, script: str, *options: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.Popen(self.argv(script, *options), env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def run(self, script: str, *options: str) -> tuple[int, dict[str, Any]]:
        proc = self.start(script, *options)
        _, err = proc.communicate(timeout=120)
        assert not err, err.decode()  # the launcher never writes to its own stderr
        return proc.returncode, self.outcome()

    def outcome(self) -> dict[str, Any]:
        return json.loads(self.exit.read_text())

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""


@pytest.fixture
def launch(tmp_path: Path) -> Launch:
    return Launch(tmp_path)


def test_exit_code_and_both_streams_in_the_log(launch: Launch) -> None:
    code, outcome = launch.run("""
        import os, sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
        print("unbuffered", os.environ.get("PYTHONUNBUFFERED"))
        sys.exit(3)
    """)
    assert code == 3
    assert outcome["exit_code"] == 3 and outcome["signal"] is None and outcome["timed_out"] is False
    assert isinstance(outcome["ended"], float)
    lines = launch.log_text().splitlines()
    assert sorted(lines) == ["to stderr", "to stdout", "unbuffered 1"]
    assert launch.tail.read_text() == "to stderr\n"
    assert not list(launch.exit.parent.glob("*.tmp.*"))  # written atomically, no leftovers


def test_success_appends_to_an_existing_log(launch: Launch) -> None:
    launch.log.write_text("earlier line\n")
    code, outcome = launch.run("print('hello')")
    assert code == 0 and outcome["exit_code"] == 0
    assert launch.log_text() == "earlier line\nhello\n"


def test_binary_garbage_and_a_final_partial_line(launch: Launch) -> None:
    code, _ = launch.run(r"""
        import sys
        sys.stdout.buffer.write(b"bad \xff\xfe bytes\n")
        sys.stdout.buffer.write(b"no newline at the end")
    """)
    assert code == 0
    assert launch.log_text() == "bad \ufffd\ufffd bytes\nno newline at the end"


def test_a_partial_line_shows_up_before_its_newline(launch: Launch) -> None:
    go = launch.dir / "go"
    proc = launch.start(f"""
        import os, sys, time
        sys.stdout.write("progress 50%")
        sys.stdout.flush()
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        print(" done")
    """)
    wait_for(lambda: "progress 50%" in launch.log_text(), "the partial line in the log")
    go.touch()
    assert proc.wait(timeout=120) == 0
    assert launch.log_text() == "progress 50% done\n"


def test_stderr_tail_keeps_the_last_50_lines(launch: Launch) -> None:
    code, _ = launch.run("""
        import sys
        for i in range(80):
            print("err", i, file=sys.stderr)
            print("out", i)
        sys.exit(1)
    """)
    assert code == 1
    assert launch.tail.read_text().splitlines() == [f"err {i}" for i in range(30, 80)]
    assert len(launch.log_text().splitlines()) == 160


def test_stdout_and_stderr_lines_never_merge(launch: Launch) -> None:
    code, _ = launch.run("""
        import sys
        for i in range(200):
            sys.stdout.write("o%d-" % i)
            sys.stdout.write("tail\\n")
            sys.stderr.write("e%d-" % i)
            sys.stderr.write("tail\\n")
    """)
    assert code == 0
    text = launch.log_text()
    # A line may be split if a stream stalls mid-line, but text of the two streams never shares a line.
    assert not [line for line in text.splitlines() if "o" in line and "e" in line]
    assert text.count("tail") == 400
    assert all(f"o{i}-" in text and f"e{i}-" in text for i in range(200))


def test_command_not_found(launch: Launch) -> None:
    argv = launch.argv("")
    argv[argv.index("--") + 1:] = ["/definitely/not/a/program"]
    proc = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, timeout=120)
    assert proc.returncode == 127
    assert launch.outcome()["exit_code"] == 127
    assert "cannot start /definitely/not/a/program" in launch.log_text()
    assert "cannot start" in launch.tail.read_text()


def test_killed_by_a_signal(launch: Launch) -> None:
    code, outcome = launch.run("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert outcome["exit_code"] is None and outcome["signal"] == signal.SIGKILL
    assert code == 128 + signal.SIGKILL


def test_timeout_terminates_and_is_recorded(launch: Launch) -> None:
    _, outcome = launch.run("""
        import time
        print("started", flush=True)
        time.sleep(600)
    """, "--timeout", "1")
    assert outcome == {**outcome, "exit_code": None, "signal": signal.SIGTERM, "timed_out": True}
    assert "started" in launch.log_text()


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(launch: Launch) -> None:
    _, outcome = launch.run("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(600)
    """, "--timeout", "1", "--kill-grace", "0.5")
    assert outcome["signal"] == signal.SIGKILL and outcome["timed_out"] is True


def test_sigterm_is_forwarded_to_the_child(launch: Launch) -> None:
    proc = launch.start("""
        import signal, sys, time
        def stop(signum, frame):
            print("child got SIGTERM", flush=True)
            sys.exit(42)
        signal.signal(signal.SIGTERM, stop)
        print("ready", flush=True)
        time.sleep(600)
    """)
    wait_for(lambda: "ready" in launch.log_text(), "the child to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 42
    assert launch.outcome() == {**launch.outcome(), "exit_code": 42, "signal": None, "timed_out": False}
    assert "child got SIGTERM" in launch.log_text()


def test_sigint_reaches_the_whole_process_group(launch: Launch) -> None:
    proc = launch.start("""
        import subprocess, sys
        worker = subprocess.Popen([sys.executable, "-c",
            "import time\\ntry:\\n    print('worker ready', flush=True); time.sleep(600)\\n"
            "except KeyboardInterrupt:\\n    print('worker interrupted', flush=True)"])
        try:
            worker.wait()
        except KeyboardInterrupt:
            worker.wait()
            print("main interrupted", flush=True)
    """)
    wait_for(lambda: "worker ready" in launch.log_text(), "the worker to start")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 0
    assert {"worker interrupted", "main interrupted"} <= set(launch.log_text().splitlines())


def test_processes_left_holding_the_pipes_do_not_hang_the_launcher(launch: Launch) -> None:
    marker = launch.dir / "orphan.pid"
    code, outcome = launch.run(f"""
        import subprocess, sys
        orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(marker)!r}, "w").write(str(orphan.pid))
        print("main done")
    """)
    assert code == 0 and outcome["exit_code"] == 0
    orphan = int(marker.read_text())
    # The launcher kills what the job left behind in its group, as ending a container would.
    wait_for(lambda: not _alive(orphan), "the orphan to be killed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie reparented to init may linger briefly; treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_launcher_survives_the_death_of_its_parent(launch: Launch) -> None:
    go = launch.dir / "go"
    job = textwrap.dedent(f"""
        import os, time
        print("job started", flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        print("job finished after its launcher's parent died", flush=True)
    """)
    argv = launch.argv(job)
    parent_code = textwrap.dedent(f"""
        import subprocess, sys, time
        launcher = subprocess.Popen({argv!r}, start_new_session=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        print(launcher.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert parent.stdout is not None
    launcher_pid = int(parent.stdout.readline())
    wait_for(lambda: "job started" in launch.log_text(), "the job to start")
    parent.kill()
    parent.wait(timeout=120)
    parent.stdout.close()  # the launcher's own stdout/stderr pipes now have no reader
    go.touch()
    outcome = wait_for(lambda: launch.exit.exists() and launch.outcome(), "the exit file")
    assert outcome["exit_code"] == 0
    assert "job finished after its launcher's parent died" in launch.log_text()
    wait_for(lambda: not _alive(launcher_pid), "the launcher to exit")


def test_usage_errors_name_the_fix(launch: Launch) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "jupyter_amltrain.engine.runtime.launch"]
    no_sep = subprocess.run([*base, "--log", "x", "python"], env=env, capture_output=True, text=True, timeout=60)
    assert no_sep.returncode != 0 and "put the command after '--'" in no_sep.stderr
    no_cmd = subprocess.run([*base, "--log", "x", "--"], env=env, capture_output=True, text=True, timeout=60)
    assert no_cmd.returncode != 0 and "no command after '--'" in no_cmd.stderr

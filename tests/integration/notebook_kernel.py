"""Driving a real kernel from tests: execute cells, and follow widget models from the iopub traffic the way a
front end does (comm_open with the full state, then update messages with the changed traits)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

RUN_DETAILS_VIEW = "jupyter_amltrain.widgets.run_details.RunDetailsView"
RUN_HISTORY_VIEW = "jupyter_amltrain.widgets.run_history.RunHistoryView"

# The job used by the kernel and magics tests. After its first epoch it waits for a file named "go" in its
# working folder, which the test writes only once the widget has shown that epoch: the widget is seen
# mid-run on any machine, however slow, and no test depends on how long anything takes.
TRAIN_PY = '''\
import argparse
import sys
import time
from pathlib import Path

from jupyter_amltrain.core import Run

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--wait-for-go", action="store_true")
parser.add_argument("--needs", default="")
args = parser.parse_args()
if args.needs:
    module = __import__(args.needs)
    print(f"{args.needs} {module.__version__} from the environment", flush=True)
run = Run.get_context()
for epoch in range(1, args.epochs + 1):
    run.log("loss", round(1.0 / epoch, 4))
    print(f"epoch {epoch} loss {1.0 / epoch:.3f}", flush=True)
    if epoch == 1 and args.wait_for_go:
        deadline = time.time() + 600
        while not Path("go").exists():
            if time.time() > deadline:
                sys.exit("nobody said go")
            time.sleep(0.1)
print("done", flush=True)
'''


def install_test_kernel(prefix: Path, name: str) -> Path:
    """Install the preloaded kernelspec with the real command line; returns its kernels folder.

    The ``jupyter`` of this interpreter's environment (next to ``sys.executable``), never one from PATH."""
    jupyter = Path(sys.executable).parent / "jupyter"
    subprocess.run([str(jupyter), "amltrain", "install-kernel", "--prefix", str(prefix), "--name", name],
                   check=True, capture_output=True, text=True)
    return prefix / "share" / "jupyter" / "kernels"


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    displays: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


class Kernel:
    def __init__(self, kernels_dir: Path, name: str, *, cwd: Path, env: dict[str, str]) -> None:
        self.manager = KernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(
            kernel_dirs=[str(kernels_dir)]))
        self.manager.start_kernel(cwd=str(cwd), env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=180)
        self.models: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def _track(self, message: dict[str, Any]) -> None:
        kind, content = message["msg_type"], message["content"]
        if kind == "comm_open":
            self.models[content["comm_id"]] = dict(content["data"].get("state", {}))
        elif kind == "comm_msg" and content["data"].get("method") == "update":
            self.models.setdefault(content["comm_id"], {}).update(content["data"].get("state", {}))

    def execute(self, code: str, timeout: float = 600) -> Result:
        msg_id = self.client.execute(code)
        result = Result()
        deadline = time.monotonic() + timeout
        while True:
            message = self.client.get_iopub_msg(timeout=max(deadline - time.monotonic(), 1))
            self._track(message)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind in ("display_data", "update_display_data", "execute_result"):
                result.displays.append(content["data"])
            elif kind == "error":
                result.error = "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        while True:  # the reply says whether the cell failed; a UsageError only prints to stderr
            reply = self.client.get_shell_msg(timeout=max(deadline - time.monotonic(), 1))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        if reply["content"]["status"] == "error" and result.error is None:
            result.error = f"{reply['content']['ename']}: {reply['content']['evalue']}"
        return result

    def ok(self, code: str, timeout: float = 600) -> Result:
        result = self.execute(code, timeout)
        assert result.error is None, f"cell failed:\n{code}\n{result.error}\n{result.stderr}"
        return result

    def value(self, expression: str) -> Any:
        """A JSON-able expression's value in the kernel."""
        return json.loads(self.ok(f"import json as _j; print(_j.dumps({expression}))").stdout)

    def model(self, anywidget_id: str, **match: Any) -> dict[str, Any] | None:
        for state in self.models.values():
            if state.get("_anywidget_id") == anywidget_id and all(state.get(k) == v for k, v in match.items()):
                return state
        return None

    def wait_for(self, condition: Callable[[], bool], timeout: float = 600, what: str = "") -> None:
        """Read iopub (widget updates from the kernel's threads arrive while it is idle) until ``condition``."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; widget models: {self.models}")
            try:
                self._track(self.client.get_iopub_msg(timeout=1))
            except queue.Empty:
                pass

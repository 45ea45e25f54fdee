"""Where the agent of a store home keeps its lock, socket, pid and log: ``<home>/agent/``, its owner's alone."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

AGENT_MODULE = "jupyter_amltrain.engine.agent"


@dataclass(frozen=True)
class AgentPaths:
    home: Path

    @property
    def folder(self) -> Path:
        return self.home / "agent"

    @property
    def lock(self) -> Path:
        """Held (flock) for the agent's whole life: two agents of one home never run at once."""
        return self.folder / "agent.lock"

    @property
    def socket(self) -> Path:
        """In the agent's folder; where that path is over what AF_UNIX allows (108 bytes), in a private folder
        of this user's under $XDG_RUNTIME_DIR or /tmp, named by the home's hash."""
        path = self.folder / "agent.sock"
        if len(str(path).encode()) < 100:
            return path
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return private_runtime_dir() / f"agent-{digest}.sock"

    @property
    def pid(self) -> Path:
        return self.folder / "agent.pid"

    @property
    def log(self) -> Path:
        return self.folder / "agent.log"

    def ensure(self) -> AgentPaths:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)  # the socket inside is the owner's alone
        return self



def private_runtime_dir() -> Path:
    """A folder only this user can enter: $XDG_RUNTIME_DIR, else /tmp/amltrain-<uid> (made 0700, and refused
    when someone else made it first)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(runtime) / "amltrain" if runtime else Path(tempfile.gettempdir()) / f"amltrain-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.lstat()
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077 or not stat.S_ISDIR(info.st_mode):
        raise PermissionError(f"{folder} is not a private folder of uid {os.getuid()}: remove it, or set "
                              "XDG_RUNTIME_DIR to a folder only you can enter")
    return folder


def agent_pid(paths: AgentPaths) -> int | None:
    """The pid of the live agent of ``paths.home``, or None: its pid file names a process that runs the agent."""
    try:
        pid = int(paths.pid.read_text().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read().split(b"\0")
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None
    except (OSError, ValueError, IndexError):
        return None
    if AGENT_MODULE.encode() in argv and str(paths.home).encode() in argv:
        return pid
    return None

"""Finding runs whose supervisor died and giving them a new one.

Called whenever a workspace is opened, so a run orphaned by a crash is finished by whoever looks next.
"""

from __future__ import annotations

import time

from jupyter_amltrain.engine.runs import records
from jupyter_amltrain.engine.runs.submit import spawn_supervisor
from jupyter_amltrain.engine.workspace import LocalWorkspace

CLAIM_SECONDS = 30.0  # a claim newer than this belongs to a recoverer that is still starting its supervisor


def supervisor_alive(pid: int | None, run_id: str) -> bool:
    if not pid or pid < 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return run_id.encode() in cmdline.read()  # a reused pid runs something else
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def recover_orphans(ws: LocalWorkspace) -> list[str]:
    recovered: list[str] = []
    placeholders = ",".join("?" * len(records.ACTIVE))
    now = time.time()
    for row in ws.store.query(
        f"SELECT run_id, supervisor_pid, status, created FROM runs WHERE status IN ({placeholders})",
        records.ACTIVE,
    ):
        run_id = row["run_id"]
        if row["status"] == "NotStarted" and now - row["created"] < CLAIM_SECONDS:
            continue  # still being submitted
        if supervisor_alive(row["supervisor_pid"], run_id):
            continue
        with ws.store.write() as db:
            current = db.execute("SELECT supervisor_pid, supervisor_started FROM runs WHERE run_id = ?",
                                 (run_id,)).fetchone()
            claimed = current["supervisor_pid"] == -1 and now - (current["supervisor_started"] or 0) < CLAIM_SECONDS
            if claimed or supervisor_alive(current["supervisor_pid"], run_id):
                continue
            db.execute("UPDATE runs SET supervisor_pid = -1, supervisor_started = ? WHERE run_id = ?", (now, run_id))
        pid = spawn_supervisor(ws, run_id, {}, recover=True)
        records.update_run(ws.store, run_id, supervisor_pid=pid)
        recovered.append(run_id)
    return recovered

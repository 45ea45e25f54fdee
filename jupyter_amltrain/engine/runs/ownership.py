"""Who a job's container runs as, and who owns the run's files before and after.

Images that run as a non-root USER (the Jupyter docker-stacks run as uid 1000) run as that user. Their run
folders must then be writable by it while the job runs, and belong to the submitting person afterwards:

* submitted by root (CI, servers): the folders the job writes (the working copy's folders, ``outputs/``,
  ``logs/``, the tracking and uploads folders) are handed to the image's uid before the start, and everything the
  job left is handed back to root when it ends. The working copy's files stay root's: they are hard links into
  the snapshot store, which the job must not be able to change.
* submitted by a user whose uid is the image's: nothing to do.
* submitted by another non-root user: that user cannot give files away, so the job runs as the submitter's
  uid instead (its files come back theirs), with HOME in /tmp, and the log says so. ``--user`` in
  ``DockerConfiguration(arguments=...)`` chooses otherwise.

A marker in the run's folder records a hand-over, so a supervisor that recovers the run hands the files back too.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from jupyter_amltrain.engine.images.probe import ImageFacts
from jupyter_amltrain.engine.store.layout import RunLayout

SCRATCH_HOME = "/tmp"  # any uid can write here, in every image


@dataclass(frozen=True)
class ContainerIdentity:
    user: str | None  # docker's user option; None: the image's USER
    entrypoint: list[str] | None  # None: the image's ENTRYPOINT; [""]: none
    environment: dict[str, str]  # HOME, when the user's own is not writable
    hand_to: tuple[int, int] | None  # uid:gid the run folders are handed to for the job
    notes: list[str]  # for the run's control log


def container_identity(
    facts: ImageFacts,
    *,
    submitter: tuple[int, int],
    user_option: str | None = None,
    entrypoint_option: str | None = None,
) -> ContainerIdentity:
    """How the job's container starts in an image with ``facts``, for a run submitted by uid:gid ``submitter``.
    ``user_option``/``entrypoint_option``: ``--user``/``--entrypoint`` from the run's docker arguments."""
    notes: list[str] = []
    entrypoint: list[str] | None = None
    if entrypoint_option is not None:
        # [""] is how the engine API is told "no ENTRYPOINT" (an empty list keeps the image's).
        entrypoint = [entrypoint_option] if entrypoint_option else [""]
        notes.append(f"ENTRYPOINT set by --entrypoint to {entrypoint_option or 'none'}")
    elif facts.entrypoint_mode == "bypassed":
        entrypoint = [""]
        notes.append(f"the image's ENTRYPOINT {facts.entrypoint} is bypassed: it does not run the command it is "
                     "given (DockerConfiguration arguments ['--entrypoint=...'] to choose another)")
    elif facts.entrypoint_mode == "kept":
        notes.append(f"the image's ENTRYPOINT {facts.entrypoint} runs first (it hands over to the job's command)")

    uid, gid = submitter
    environment: dict[str, str] = {}
    hand_to: tuple[int, int] | None = None
    user: str | None = None
    if user_option:
        user = user_option
        numeric = user_option.split(":")
        if uid == 0 and numeric[0].isdigit() and numeric[0] != "0":
            hand_to = (int(numeric[0]), int(numeric[1]) if len(numeric) > 1 and numeric[1].isdigit() else 0)
        environment["HOME"] = SCRATCH_HOME
        notes.append(f"runs as {user_option} (--user), HOME {SCRATCH_HOME}")
    elif uid == 0 or uid == facts.uid:
        if facts.uid != 0 and uid == 0:
            hand_to = (facts.uid, facts.gid)
        if not facts.home_writable:
            environment["HOME"] = SCRATCH_HOME
        notes.append(f"runs as the image's user {facts.runs_as}, HOME "
                     f"{environment.get('HOME', facts.home)}")
    else:
        user = f"{uid}:{gid}"
        environment["HOME"] = SCRATCH_HOME
        notes.append(f"runs as uid {uid} (the submitting user) instead of the image's user {facts.runs_as}, so "
                     f"that its files are yours; HOME {SCRATCH_HOME} (pass --user to choose)")
    return ContainerIdentity(user, entrypoint, environment, hand_to, notes)


def _marker(layout: RunLayout) -> Path:
    return layout.exit_file.parent / "handed-to.json"


def hand_run_folders(layout: RunLayout, uid: int, gid: int) -> None:
    """Make the folders the job writes owned by ``uid``:``gid`` (directories only: files in the working copy
    are the snapshot store's)."""
    marker = _marker(layout)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"uid": uid, "gid": gid}))
    for top in (layout.wd, layout.tracking, layout.uploads):
        if not top.is_dir() or top.is_symlink():
            continue
        os.lchown(top, uid, gid)
        for folder, dirs, _ in os.walk(top):  # os.walk does not follow symlinks to directories
            for name in dirs:
                os.lchown(os.path.join(folder, name), uid, gid)


def reclaim_run_folders(layout: RunLayout) -> int:
    """After a hand-over, give everything the job owns in the run's folder back to this process's user.
    Never follows a symlink. Returns how many entries changed owner."""
    marker = _marker(layout)
    try:
        handed = json.loads(marker.read_text())
    except (OSError, ValueError):
        return 0
    me = (os.getuid(), os.getgid())
    changed = 0
    for folder, dirs, files in os.walk(layout.root):
        for name in (*dirs, *files):
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                if os.lstat(path).st_uid == handed.get("uid"):
                    os.lchown(path, *me)
                    changed += 1
    with contextlib.suppress(OSError):
        if os.lstat(layout.root).st_uid != me[0]:
            os.lchown(layout.root, *me)
    marker.unlink(missing_ok=True)
    return changed

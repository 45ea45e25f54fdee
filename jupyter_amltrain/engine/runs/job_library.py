"""The Python library a job's container sees at ``/amltrain/lib``: the job runtime and nothing else.

Images bring any Python from 3.6 on, with nothing installed. The host package needs 3.10 and its dependencies,
so the container gets a package of its own: ``jupyter_amltrain.core.Run`` and ``jupyter_amltrain.core.run.Run``
(v1's import paths for a script's run) backed by ``engine/runtime`` (standard library, Python 3.6 syntax;
``tests/unit/test_runtime_purity.py`` holds it there). It is assembled once per version of the runtime, in the
store home, and mounted read-only. Local-process runs use the host's own Python and keep the whole package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import jupyter_amltrain

RUNTIME_DIR = Path(jupyter_amltrain.__file__).resolve().parent / "engine" / "runtime"

_STUBS = {
    "jupyter_amltrain/__init__.py": (
        '"""jupyter-amltrain inside a job: the job runtime only (the rest of the package lives on the host)."""\n'
        f"__version__ = {jupyter_amltrain.__version__!r}\nVERSION = __version__\n"
    ),
    "jupyter_amltrain/core/__init__.py": (
        '"""``jupyter_amltrain.core`` inside a job: ``Run`` (``Run.get_context()``), as in v1 training scripts.\n\n'
        "Workspaces, environments and submissions are the notebook's side; a job reaches its run only.\n"
        '"""\n'
        "from jupyter_amltrain.core.run import Run  # noqa: F401\n"
    ),
    "jupyter_amltrain/core/run.py": (
        '"""``jupyter_amltrain.core.run`` inside a job."""\n'
        "from jupyter_amltrain.engine.runtime.job_run import Run  # noqa: F401\n"
    ),
    "jupyter_amltrain/engine/__init__.py": '"""The job runtime (see engine/runtime)."""\n',
}


def job_library_files() -> dict[str, bytes]:
    """Every file of the job library, by path relative to its root."""
    files = {name: text.encode() for name, text in _STUBS.items()}
    for source in sorted(RUNTIME_DIR.glob("*.py")):
        files[f"jupyter_amltrain/engine/runtime/{source.name}"] = source.read_bytes()
    return files


@lru_cache(maxsize=8)
def job_library(home: Path) -> Path:
    """The job library's folder under ``home``, made on first use (all or nothing, safe between processes)."""
    files = job_library_files()
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    target = Path(home) / "runtime-lib" / f"job-{digest.hexdigest()[:16]}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".job-", dir=target.parent))
    try:
        for name, data in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        # Read-only for the job, readable by any user an image runs as.
        for folder, _, names in os.walk(staging):
            os.chmod(folder, 0o755)
            for name in names:
                os.chmod(os.path.join(folder, name), 0o644)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # not "made meanwhile by another process"
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

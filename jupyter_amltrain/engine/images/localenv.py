"""System-managed environments for runs without Docker: a cached venv per environment hash on the host.

Azure ML keeps these at ``~/.azureml/envs/azureml_<hash>``; ours live in ``envs_dir/azureml_<hash>``. The venv is
made with the host's interpreter and pip (conda specs mapped to PyPI) in a staging folder next to it, and moved
into place only when every install succeeded, so a folder under the final name is always complete. Moving a
venv breaks the absolute paths pip writes into ``bin/`` scripts, so those are rewritten before the move.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path

from jupyter_amltrain.engine.images.conda_pypi import map_conda_packages
from jupyter_amltrain.engine.images.dockerfile import requested_python
from jupyter_amltrain.engine.images.failure_hints import install_failure_hint
from jupyter_amltrain.engine.images.locks import file_lock
from jupyter_amltrain.engine.images.spec import ImageSpec, image_hash
from jupyter_amltrain.engine.images.tls import ca_bundle_to_inject, install_environment
from jupyter_amltrain.engine.settings import AmlTrainSettings, load_settings
from jupyter_amltrain.exceptions import EnvironmentException

Log = Callable[[str], None]

TAIL_LINES = 20
REQUIREMENTS_FILE = "amltrain-requirements.txt"


def local_env_path(spec: ImageSpec, envs_dir: Path) -> Path:
    return envs_dir / f"azureml_{image_hash(spec)}"


def ensure_local_env(
    spec: ImageSpec,
    envs_dir: Path,
    *,
    log: Log,
    settings: AmlTrainSettings | None = None,
    progress: Log | None = None,
) -> Path:
    """The Python interpreter to run ``spec`` with on this host, creating its venv first unless cached.

    User-managed environments get their ``interpreter_path``; nothing is installed. A bare ``python`` or
    ``python3`` (v1's default) means this interpreter, as for runs (core/submission.py): the one whose packages
    the user already has, whatever PATH holds. Any other name is looked up on PATH.
    """
    if spec.user_managed:
        interpreter = spec.interpreter_path or "python"
        found = sys.executable if interpreter in ("python", "python3") else shutil.which(interpreter)
        if not found:
            raise EnvironmentException(
                f"interpreter_path '{spec.interpreter_path}' is not found on this host. Fix: set "
                "python.interpreter_path to a Python executable here, or user_managed_dependencies=False"
            )
        return Path(found)
    target = local_env_path(spec, envs_dir)
    python = target / "bin" / "python"
    if python.exists():
        log(f"Environment {target} found: cache hit, no build")
        return python
    settings = settings or load_settings()
    mapping = map_conda_packages(spec.conda_packages)
    mapping.check()
    with file_lock(envs_dir / ".locks" / f"{target.name}.lock"):
        if python.exists():  # made by another process while we waited
            log(f"Environment {target} found: cache hit, no build")
            return python
        log(f"Materialized conda environment not found on target: {target}")
        want = requested_python(spec)
        have = ".".join(str(part) for part in sys.version_info[:3])
        if want and not (have == want or have.startswith(want + ".")):
            log(f"warning: the environment asks for Python {want}; without conda this host's Python {have} is used")
        if mapping.skipped:
            log("conda packages skipped (PyPI wheels bundle what they provide): " + ", ".join(mapping.skipped))
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=envs_dir))
        try:
            requirements = [*spec.pip_options, *mapping.requirements, *spec.pip_packages]
            _create(staging, requirements, spec, settings, log, progress)
            _relocate(staging, target)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    log(f"Environment {target} created")
    return python


def _create(
    staging: Path, requirements: list[str], spec: ImageSpec, settings: AmlTrainSettings, log: Log,
    progress: Log | None,
) -> None:
    if progress:
        progress("creating virtual environment")
    _run([sys.executable, "-m", "venv", str(staging)], spec, settings, log, os.environ.copy())
    if not requirements:
        return
    (staging / REQUIREMENTS_FILE).write_text("".join(f"{line}\n" for line in requirements))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if ca_bundle_to_inject(settings) is not None:  # validates the configured bundle
        env.update(install_environment(settings.ca_bundle))
    if progress:
        progress("installing Python packages")
    _run([str(staging / "bin" / "python"), "-m", "pip", "install", "-r", str(staging / REQUIREMENTS_FILE)],
         spec, settings, log, env)


def _run(command: list[str], spec: ImageSpec, settings: AmlTrainSettings, log: Log, env: dict[str, str]) -> None:
    tail: deque[str] = deque(maxlen=200)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            log(line)
            tail.append(line)
    if process.returncode != 0:
        shown = list(tail)[-TAIL_LINES:]
        hint = install_failure_hint(spec, "\n".join(tail), settings) or "Fix: see the log above"
        raise EnvironmentException(
            f"Creating the local environment failed: {' '.join(command[:4])}... exited with code "
            f"{process.returncode}.\n{hint}\nLast {len(shown)} lines:\n  " + "\n  ".join(shown)
        )


def _relocate(staging: Path, target: Path) -> None:
    """Point the scripts and config of the venv at ``staging`` to ``target``, where it is about to move."""
    old, new = str(staging).encode(), str(target).encode()
    for path in [*(staging / "bin").iterdir(), staging / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old in data:
            path.write_bytes(data.replace(old, new))

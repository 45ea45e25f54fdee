"""What an image offers a job: its Python, its user, its ENTRYPOINT. Found once per image, by looking inside.

Users bring images we did not build: Debian with only ``python3``, CUDA images with a wrapper ENTRYPOINT, Jupyter
images running as uid 1000, old Pythons, images with no shell. A job must either run in them or fail at
Preparing with the fix, never with exit 127 at Running. So before a job's first container, the image is probed:

* **Interpreter.** With v1's default ``interpreter_path`` (``python``) the job uses ``python`` from the image's
  PATH, else ``python3``; one that is Python 2 or older than 3.6 is passed over, and refused when nothing else is
  there. An explicit ``interpreter_path`` (or a system-managed environment's own Python) is used exactly as
  given, and only checked. Each candidate is run directly (Docker looks it up on the image's PATH), not through
  a shell, so an image without a shell can still run a script.
* **User.** Who the image runs as (its USER, uid, gid), its HOME and whether that is writable.
* **ENTRYPOINT.** The rule (also in the README): an image's ENTRYPOINT is kept when it hands over to its
  arguments (``exec "$@"``, tini, conda's and CUDA's wrappers), because it often sets up what the job needs. One
  that does not run our command (a fixed program) is bypassed, and the log says so. One that exits with an error
  before our command runs fails the run at Preparing. ``DockerConfiguration(arguments=["--entrypoint="])``
  bypasses any ENTRYPOINT without asking.

The answer is kept in the store home under the image's id, so a cached run pays one small file read, and an
image rebuilt under the same name (a new id) is probed afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import docker
import docker.errors
import requests

from jupyter_amltrain.engine.images.locks import file_lock
from jupyter_amltrain.engine.images.spec import ImageSpec, python_in_image
from jupyter_amltrain.exceptions import EnvironmentException

Log = Callable[[str], None]
EntrypointMode = Literal["none", "kept", "bypassed"]

PROBE_VERSION = 3  # bump when the probe learns something new: cached answers are then probed again
MIN_PYTHON = (3, 6)
DEFAULT_INTERPRETER = "python"  # v1's PythonSection.interpreter_path default
DEFAULT_CANDIDATES = ("python", "python3")
ENTRYPOINT_SECONDS = 20.0  # an ENTRYPOINT still running after this ignores our command (a server, a shell loop)
PROBE_SECONDS = 60.0
MARKER = "AMLTRAIN-PROBE "
ENTRYPOINT_MARKER = "AMLTRAIN-ENTRYPOINT-HANDED-OVER"
# Valid Python 2 and 3 alike, so a Python 2 interpreter answers with its version instead of a SyntaxError.
PROBE_CODE = r"""
import json, os, sys
def importable(name):
    try:
        __import__(name)
        return True
    except Exception:
        return False
home = os.environ.get("HOME") or os.path.expanduser("~")
sys.stdout.write("AMLTRAIN-PROBE " + json.dumps({
    "version": list(sys.version_info[:3]),
    "executable": sys.executable,
    "uid": os.getuid(), "gid": os.getgid(),
    "home": home,
    "home_writable": bool(home) and os.path.isdir(home) and os.access(home, os.W_OK),
    "venv": importable("venv") and importable("ensurepip"),
    "pip": importable("pip"),
    "distutils": sys.version_info >= (3, 10) or importable("distutils.sysconfig"),
    "shell": os.path.exists("/bin/sh"),
}) + "\n")
"""
# What the kernel or runc says when a program is built for another CPU.
_EXEC_FORMAT = "exec format error"
_NOT_FOUND = ("executable file not found", "no such file or directory")


@dataclass(frozen=True)
class ImageFacts:
    """How a job runs in one image (by id). Serialized to the probe cache as is."""

    image_id: str
    interpreter: str  # what the job's command starts: "python3", "/opt/conda/bin/python", an env's own Python
    executable: str  # sys.executable of that interpreter inside the image
    python_version: str  # "3.11.2"
    user: str  # the image's USER ("" when it sets none: root)
    uid: int
    gid: int
    home: str
    home_writable: bool
    path: str  # the image's PATH
    entrypoint: list[str]  # the image's ENTRYPOINT ([] when none)
    entrypoint_mode: EntrypointMode
    has_shell: bool
    has_venv: bool  # venv and ensurepip importable: `python3 -m venv` works
    has_pip: bool
    has_distutils: bool  # before 3.10, tools that make environments without venv (uv) need it
    architecture: str
    note: str  # the interpreter and how it was chosen, for the run's log

    @property
    def runs_as(self) -> str:
        """The image's user, as the logs and views show it."""
        name = self.user.split(":")[0]
        if not name or (name == "root" and self.uid == 0):
            return "root"
        return f"uid {self.uid}" if name == str(self.uid) else f"{name} (uid {self.uid})"

    def describe(self) -> str:
        entry = {"none": "", "kept": f"; ENTRYPOINT {self.entrypoint} kept (it hands over to the command)",
                 "bypassed": f"; ENTRYPOINT {self.entrypoint} bypassed"}[self.entrypoint_mode]
        return (f"interpreter {self.note}, Python {self.python_version} at {self.executable}; "
                f"runs as {self.runs_as}, HOME {self.home or '-'}{entry}")


@dataclass(frozen=True)
class _Attempt:
    started: bool
    exit_code: int | None
    output: str
    error: str = ""
    timed_out: bool = False

    def says(self, *needles: str) -> bool:
        text = f"{self.error}\n{self.output}".lower()
        return any(needle in text for needle in needles)


def interpreter_candidates(interpreter_path: str | None) -> tuple[str, ...]:
    """What to look for: v1's default means "python, else python3"; anything else is used exactly as given."""
    if not interpreter_path or interpreter_path == DEFAULT_INTERPRETER:
        return DEFAULT_CANDIDATES
    return (interpreter_path,)


def image_facts(
    client: docker.DockerClient,
    image: str,
    *,
    candidates: Sequence[str],
    cache_dir: Path,
    log: Log,
    image_id: str | None = None,
) -> ImageFacts:
    """The facts of ``image``, from the cache when this image id was probed before, else probed now.

    Raises ``EnvironmentException`` (the run fails at Preparing) when no job can run in the image."""
    image_id = image_id or client.images.get(image).id
    known = known_facts(cache_dir, image_id, candidates)
    if known is not None:
        return known
    key = _cache_key(image_id, candidates)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Many runs of one new image start at once (a sweep, a queue): one of them looks inside, the others wait.
    with file_lock(cache_dir / f"{key}.lock"):
        known = known_facts(cache_dir, image_id, candidates)
        if known is not None:
            return known
        facts = probe_image(client, image, candidates=candidates, log=log)
        cache = cache_dir / f"{key}.json"
        tmp = cache.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
        tmp.write_text(json.dumps(asdict(facts)))
        os.replace(tmp, cache)
    return facts


def facts_dir(home: str | Path) -> Path:
    """Where the probe's answers are kept under a store home."""
    return Path(home) / "image-facts"


def known_facts(cache_dir: Path, image_id: str, candidates: Sequence[str]) -> ImageFacts | None:
    """What an earlier probe found for this image id, without asking Docker; None if it was never probed."""
    try:
        return ImageFacts(**json.loads((cache_dir / f"{_cache_key(image_id, candidates)}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def job_candidates(spec: ImageSpec) -> tuple[str, ...]:
    """The interpreters a job of ``spec`` may start: a system-managed environment's own Python (explicit), or
    the user-managed ``interpreter_path`` (v1's default "python" means python, else python3)."""
    wanted = python_in_image(spec)
    return (wanted,) if not spec.user_managed else interpreter_candidates(wanted)


def _cache_key(image_id: str, candidates: Sequence[str]) -> str:
    digest = hashlib.sha256(json.dumps([PROBE_VERSION, list(candidates)]).encode()).hexdigest()[:12]
    return f"{image_id.removeprefix('sha256:')[:32]}-{digest}"


def probe_image(client: docker.DockerClient, image: str, *, candidates: Sequence[str], log: Log) -> ImageFacts:
    """Look inside ``image``: one short container per interpreter candidate, and one more for an ENTRYPOINT."""
    attrs = client.images.get(image).attrs
    config = attrs.get("Config") or {}
    env = dict(item.split("=", 1) for item in (config.get("Env") or []) if "=" in item)
    path = env.get("PATH", "")
    user = config.get("User") or ""
    entrypoint = list(config.get("Entrypoint") or [])
    architecture = str(attrs.get("Architecture") or "")
    context = _Context(image, path, user, architecture, _host_architecture(client))
    log(f"Looking inside {image} for {' or '.join(candidates)} (once per image)")

    found: dict[str, object] | None = None
    chosen = ""
    passed_over: list[str] = []
    for candidate in candidates:
        attempt = _run(client, image, entrypoint=[candidate], command=["-c", PROBE_CODE])
        if attempt.says(_EXEC_FORMAT):
            raise EnvironmentException(context.foreign_architecture(candidate))
        report = _report(attempt.output)
        if report is None:
            if attempt.started and attempt.exit_code not in (126, 127):
                passed_over.append(f"{candidate} (did not run: exit code {attempt.exit_code}, "
                                   f"{_last_line(attempt.output)!r})")
            continue
        version = tuple(int(part) for part in report["version"])  # type: ignore[attr-defined]
        if version < MIN_PYTHON:
            passed_over.append(f"{candidate} (Python {'.'.join(map(str, version))})")
            continue
        found, chosen = report, candidate
        break
    if found is None:
        raise EnvironmentException(context.no_python(candidates, passed_over))

    note = chosen
    if chosen != candidates[0]:
        note += f" (no usable {candidates[0]} on the image's PATH: " + (
            "; ".join(passed_over) if passed_over else "not found") + ")"
    mode: EntrypointMode = "none"
    if entrypoint:
        mode = _entrypoint_mode(client, image, entrypoint, chosen, context)
        log(f"ENTRYPOINT {entrypoint}: " + ("kept, it hands over to the command" if mode == "kept" else
                                            "bypassed, it does not run the command it is given"))
    facts = ImageFacts(
        image_id=client.images.get(image).id, interpreter=chosen, executable=str(found["executable"]),
        python_version=".".join(str(part) for part in found["version"]),  # type: ignore[attr-defined]
        user=user, uid=int(found["uid"]), gid=int(found["gid"]),  # type: ignore[call-overload]
        home=str(found["home"] or ""), home_writable=bool(found["home_writable"]), path=path,
        entrypoint=entrypoint, entrypoint_mode=mode, has_shell=bool(found["shell"]), has_venv=bool(found["venv"]),
        has_pip=bool(found["pip"]), has_distutils=bool(found.get("distutils", True)), architecture=architecture,
        note=note,
    )
    log(f"{image}: {facts.describe()}")
    return facts


@dataclass(frozen=True)
class _Context:
    """What every refusal names: the image, its PATH and user, its CPU architecture."""

    image: str
    path: str
    user: str
    architecture: str
    host_architecture: str

    def where(self) -> str:
        return f"(PATH={self.path or 'unset'}, user {self.user or 'root'})"

    def no_python(self, candidates: Sequence[str], passed_over: list[str]) -> str:
        looked = " or ".join(candidates)
        found = f" Found only: {'; '.join(passed_over)}." if passed_over else ""
        too_old = any("Python 2" in item or "Python 3.0" in item or "Python 3.5" in item for item in passed_over)
        need = (f"Jobs need Python {'.'.join(map(str, MIN_PYTHON))} or newer;" if too_old else
                "Jobs need a Python 3 interpreter;")
        explicit = len(candidates) == 1 and candidates[0] not in DEFAULT_CANDIDATES
        fix = ("set env.python.interpreter_path to the image's Python 3 (for example \"/usr/bin/python3\" or "
               "\"/opt/conda/bin/python\")" if not explicit else
               f"correct env.python.interpreter_path ({candidates[0]!r} is not in the image)")
        return (f"The image {self.image} has no usable Python: looked for {looked} {self.where()}.{found} {need} "
                f"Fix: {fix}, or set env.python.user_managed_dependencies = False so that jupyter-amltrain installs "
                "the environment's own Python (this needs python3 or conda in the image), or use a base image "
                "with Python 3.")

    def foreign_architecture(self, program: str) -> str:
        built = self.architecture or "another architecture"
        return (f"The image {self.image} is built for another CPU architecture: running {program} in it failed with "
                f"'exec format error' (the image says {built}, this host runs {self.host_architecture}). Fix: use "
                f"the image's {self.host_architecture} variant (docker pull --platform linux/{self.host_architecture} "
                "...), or rebuild it on this host.")

    def entrypoint_failed(self, entrypoint: list[str], attempt: _Attempt) -> str:
        tail = "\n  ".join(attempt.output.strip().splitlines()[-10:]) or "(no output)"
        return (f"The image {self.image}'s ENTRYPOINT {entrypoint} exited with code {attempt.exit_code} before the "
                f"job's command ran {self.where()}. Its output:\n  {tail}\nFix: correct the ENTRYPOINT in the image, "
                "or bypass it with DockerConfiguration(use_docker=True, arguments=[\"--entrypoint=\"]).")


def _entrypoint_mode(client: docker.DockerClient, image: str, entrypoint: list[str], interpreter: str,
                     context: _Context) -> EntrypointMode:
    # The marker is joined by Python: an ENTRYPOINT that merely echoes its arguments never prints it whole.
    half = len(ENTRYPOINT_MARKER) // 2
    code = f"print({ENTRYPOINT_MARKER[:half]!r} + {ENTRYPOINT_MARKER[half:]!r})"
    attempt = _run(client, image, entrypoint=None, command=[interpreter, "-c", code], timeout=ENTRYPOINT_SECONDS)
    if ENTRYPOINT_MARKER in attempt.output:
        return "kept"
    if attempt.says(_EXEC_FORMAT):
        raise EnvironmentException(context.foreign_architecture(entrypoint[0]))
    if attempt.timed_out or attempt.exit_code == 0:
        return "bypassed"  # it ran something of its own and never our command
    raise EnvironmentException(context.entrypoint_failed(entrypoint, attempt))


def _run(client: docker.DockerClient, image: str, *, entrypoint: list[str] | None, command: list[str],
         timeout: float = PROBE_SECONDS) -> _Attempt:
    """Run one short container of ``image`` and collect its output; never leaves the container behind."""
    try:
        container = client.containers.create(
            image, entrypoint=entrypoint, command=command, detach=True, network_disabled=True,
            labels={"amltrain.probe": "1"},
        )
    except docker.errors.APIError as error:
        return _Attempt(False, None, "", str(error.explanation or error))
    try:
        try:
            container.start()
        except docker.errors.APIError as error:
            return _Attempt(False, None, "", str(error.explanation or error))
        timed_out = False
        code: int | None = None
        try:
            code = int(container.wait(timeout=timeout).get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out = True
            with contextlib.suppress(docker.errors.APIError):
                container.kill()
        output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        return _Attempt(True, code, output, timed_out=timed_out)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)


def _report(output: str) -> dict[str, object] | None:
    for line in output.splitlines():
        if line.startswith(MARKER):
            with contextlib.suppress(ValueError):
                report = json.loads(line[len(MARKER):])
                return report if isinstance(report, dict) else None
    return None


def _last_line(output: str) -> str:
    lines = output.strip().splitlines()
    return lines[-1][:200] if lines else ""


_ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def _host_architecture(client: docker.DockerClient) -> str:
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        name = str(client.info().get("Architecture") or "")
        return _ARCH_NAMES.get(name, name)
    return _ARCH_NAMES.get(os.uname().machine, os.uname().machine)

"""The project's own base image, built from Debian packages without any container registry.

Azure ML's default base images live on mcr.microsoft.com; where no registry is reachable (air-gapped hosts,
CI behind a proxy) they cannot be pulled. ``amltrain/base:bookworm`` stands in for them: a minimal Debian
bookworm root file system with python3, venv, pip and CA certificates, made by ``debootstrap`` from the host's
Debian mirror and turned into an image with ``docker import``. Building it takes a minute or two, once.

Run ``python -m jupyter_amltrain.engine.images.base_image`` (or ``amltrain prepare-base-image``) to build it
ahead of time. ``AMLTRAIN_BASE_IMAGE`` names another local image to use instead (e.g. a ``python:3.11`` image
pulled or loaded by hand), for hosts where debootstrap cannot run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import docker
import docker.errors

from jupyter_amltrain.engine.docker_engine import docker_client
from jupyter_amltrain.engine.images.locks import file_lock
from jupyter_amltrain.engine.images.registry import image_present
from jupyter_amltrain.engine.settings import AmlTrainSettings, load_settings
from jupyter_amltrain.exceptions import DockerEngineException, EnvironmentException

Log = Callable[[str], None]

DEFAULT_BASE_IMAGE = "amltrain/base:bookworm"
BASE_IMAGE_ENV = "AMLTRAIN_BASE_IMAGE"
# v1's azureml.core.runconfig defaults.
DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:20230227.v1"
DEFAULT_GPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.3-cudnn8-ubuntu20.04:20230227.v1"

SUITE = "bookworm"
# python-is-python3: v1's user-managed interpreter_path defaults to "python".
PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
FALLBACK_MIRROR = "http://deb.debian.org/debian"


def image_changes(suite: str) -> list[str]:
    """The Dockerfile instructions ``docker import`` applies to a debootstrapped root."""
    return [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["/bin/bash"]',
        f"LABEL amltrain.base-image={suite}",
    ]

# Azure ML's plain OS+MPI base images (not the curated ones, whose packages a bare Debian does not have).
_AZUREML_BASE = re.compile(r"^mcr\.microsoft\.com/azureml/(openmpi|intelmpi|base|minimal-ubuntu)[^/]*$")
# debootstrap's "I: ..." lines -> the phase shown to the user.
_PHASES = (
    ("I: Retrieving InRelease", "debootstrap: retrieving package lists..."),
    ("I: Retrieving Packages", "debootstrap: retrieving package lists..."),
    ("I: Retrieving ", "debootstrap: retrieving packages..."),
    ("I: Extracting ", "debootstrap: extracting packages..."),
    ("I: Installing ", "debootstrap: installing the base system..."),
    ("I: Configuring ", "debootstrap: configuring packages..."),
    ("I: Base system installed successfully", "debootstrap: done"),
)


def local_base_image() -> str:
    return os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE


def is_azureml_base_image(image: str) -> bool:
    """True for Azure ML's default images (mcr.microsoft.com/azureml/openmpi...), which we can substitute."""
    return bool(_AZUREML_BASE.match(image.split("@", 1)[0].rsplit(":", 1)[0]))


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The host's Debian mirror for bookworm (deb822 ``*.sources`` or one-line ``*.list``), else deb.debian.org."""
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.sources")),
             *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for block in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", block, re.MULTILINE))
                if "deb" in fields.get("Types", "").split() and SUITE in fields.get("Suites", "").split():
                    return fields.get("URIs", "").split()[0]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^\]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                    return words[1]
    return FALLBACK_MIRROR


def ensure_base_image(
    client: docker.DockerClient,
    log: Log,
    *,
    settings: AmlTrainSettings | None = None,
    progress: Log | None = None,
    mirror: str | None = None,
) -> str:
    """The local base image's name, building it first if it is missing (once, even across processes)."""
    image = local_base_image()
    if image_present(client, image):
        return image
    if image != DEFAULT_BASE_IMAGE:
        raise EnvironmentException(
            f"{BASE_IMAGE_ENV}={image} is not present in the local Docker engine. Fix: docker pull or docker load "
            f"it, or unset {BASE_IMAGE_ENV} to build {DEFAULT_BASE_IMAGE} from Debian packages"
        )
    settings = settings or load_settings()
    with file_lock(Path(settings.home) / "locks" / "base-image.lock"):
        if image_present(client, image):  # another process built it while we waited
            return image
        return build_base_image(
            client, log, workdir=Path(settings.home) / "cache", mirror=mirror, progress=progress
        )


def build_base_image(
    client: docker.DockerClient,
    log: Log,
    *,
    workdir: Path,
    tag: str = DEFAULT_BASE_IMAGE,
    mirror: str | None = None,
    progress: Log | None = None,
) -> str:
    """Build ``tag`` now with debootstrap + docker import; ``workdir`` holds the root file system meanwhile."""
    log(f"Building the local base image {tag} from Debian {SUITE} packages; this takes a minute or two, once")
    return build_debian_image(client, log, workdir=workdir, tag=tag, suite=SUITE, packages=PACKAGES, mirror=mirror,
                              progress=progress)


def build_debian_image(
    client: docker.DockerClient,
    log: Log,
    *,
    workdir: Path,
    tag: str,
    suite: str,
    packages: Sequence[str],
    mirror: str | None = None,
    progress: Log | None = None,
) -> str:
    """Any Debian ``suite`` with ``packages`` as image ``tag``, offline of any registry: debootstrap (minbase)
    from the Debian mirror, then docker import. The base image is one; the tests build others (old and new
    Pythons, Python 2) the same way."""
    check_can_debootstrap()
    mirror = mirror or debian_mirror()
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="base-image-rootfs.", dir=workdir))
    try:
        log(f"debootstrap {suite} with {', '.join(packages)} from {mirror}")
        _debootstrap(root, mirror, log, progress, suite=suite, packages=packages)
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        _notify(log, progress, "importing image...")
        _import(client, root, tag, suite)
        log(f"Local image {tag} is ready")
        return tag
    finally:
        _remove_root(root, log)


def prepare_base_image(*, force: bool = False, mirror: str | None = None, log: Log = print) -> str:
    """CLI entry (``amltrain prepare-base-image``): build the base image unless present (or ``force``)."""
    client = docker_client()
    if force and image_present(client, DEFAULT_BASE_IMAGE):
        client.images.remove(DEFAULT_BASE_IMAGE)  # untags only; images built on it keep their layers
    image = ensure_base_image(client, log, mirror=mirror)
    log(f"Base image: {image}")
    return image


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupyter_amltrain.engine.images.base_image",
        description=f"Build the local base image {DEFAULT_BASE_IMAGE} (debootstrap + docker import; needs root).",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    parser.add_argument("--mirror", help="Debian mirror URL (default: the host's, from /etc/apt)")
    args = parser.parse_args(argv)
    try:
        prepare_base_image(force=args.force, mirror=args.mirror, log=lambda line: print(line, flush=True))
    except (EnvironmentException, DockerEngineException) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def check_can_debootstrap() -> None:
    fix = (
        "Fix: install it (apt-get install debootstrap) and run as root, e.g. "
        "'sudo python -m jupyter_amltrain.engine.images.base_image'; or docker pull/load a Python image (e.g. "
        f"python:3.11-slim) and set {BASE_IMAGE_ENV} to its name"
    )
    if not shutil.which("debootstrap"):
        raise EnvironmentException(f"Cannot build the local base image: debootstrap is not installed. {fix}")
    if os.geteuid() != 0:
        raise EnvironmentException(f"Cannot build the local base image: debootstrap needs root. {fix}")


def _notify(log: Log, progress: Log | None, line: str) -> None:
    log(line)
    if progress:
        progress(line)


def _debootstrap(root: Path, mirror: str, log: Log, progress: Log | None, *, suite: str,
                 packages: Sequence[str]) -> None:
    command = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(root), mirror]
    tail: deque[str] = deque(maxlen=20)
    phase = ""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            tail.append(line)
            for prefix, name in _PHASES:
                if line.startswith(prefix):
                    if name != phase:
                        phase = name
                        _notify(log, progress, name)
                    break
            if line.startswith(("E: ", "W: ")):
                log(f"debootstrap: {line}")
    if process.returncode != 0:
        raise EnvironmentException(
            f"debootstrap failed (exit code {process.returncode}) building the local base image from {mirror}. "
            "Last lines:\n  " + "\n  ".join(tail) + "\nFix: check that the Debian mirror is reachable (set "
            "--mirror), or docker pull/load a Python image and set " + BASE_IMAGE_ENV + " to its name"
        )


def _import(client: docker.DockerClient, root: Path, tag: str, suite: str) -> None:
    repository, _, version = tag.rpartition(":")
    with subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as tar:
        assert tar.stdout is not None and tar.stderr is not None
        try:
            result = client.api.import_image_from_stream(
                tar.stdout, repository=repository, tag=version, changes=image_changes(suite)
            )
        except docker.errors.APIError as error:
            raise EnvironmentException(f"docker import of the base image failed: {error}") from error
        errors = tar.stderr.read().decode(errors="replace")
    if tar.returncode != 0 or '"error"' in str(result):
        raise EnvironmentException(f"docker import of the base image failed: {errors or result}")


def _remove_root(root: Path, log: Log) -> None:
    # debootstrap mounts proc/sys inside the root while configuring; a failed run can leave them mounted, and
    # deleting through a mount would delete the host's files. Unmount first; keep the folder if that fails.
    mounts = [
        line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(f"{root}/")
    ]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    still = [line for line in Path("/proc/self/mounts").read_text().splitlines() if f" {root}/" in line]
    if still:
        log(f"warning: {root} still has mounts; left in place for manual removal")
        return
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Images as users bring them, built offline by the tests: Debian suites by debootstrap (the oldest and newest
Pythons Debian's archive here offers, and Python 2), and Dockerfiles layered on them.

Each image is named by a hash of its definition and kept in the engine between sessions, so a rerun costs
nothing; a changed definition builds a new one.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from jupyter_amltrain.engine.images.base_image import DEFAULT_BASE_IMAGE, build_debian_image

REPOSITORY = "amltrain-test/user-image"


@dataclass(frozen=True)
class Debootstrapped:
    suite: str
    packages: tuple[str, ...]


@dataclass(frozen=True)
class Layered:
    base: str  # another image's key, or DEFAULT_BASE_IMAGE
    dockerfile: str  # after its FROM line
    files: tuple[tuple[str, bytes], ...] = ()


def _fake_arm64_program() -> bytes:
    """An ELF header for AArch64 (e_machine 0xB7): the kernel refuses it here with 'exec format error', as it
    does a real arm64 image's programs on an amd64 host without emulation."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = struct.pack("<HHIQQQIHHHHHH", 2, 0xB7, 1, 0x400000, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    return ident + header


WRAPPER = b"""#!/bin/sh
# A wrapper ENTRYPOINT as CUDA and conda images have: set up the environment, then hand over.
export IMAGE_WRAPPER_RAN=yes
exec "$@"
"""

IMAGES: dict[str, Debootstrapped | Layered] = {
    # Debian's archive here: bullseye is the oldest suite (Python 3.9, and Python 2.7), sid the newest (3.14).
    "bullseye": Debootstrapped("bullseye", ("python3", "python2.7", "ca-certificates")),
    "sid": Debootstrapped("sid", ("python3", "ca-certificates")),
    "python2-only": Layered("bullseye", "RUN rm -f /usr/bin/python3 /usr/bin/python3.9 && "
                                        "ln -s python2.7 /usr/bin/python\n"),
    "python3-only": Layered(DEFAULT_BASE_IMAGE, (
        "RUN dpkg --purge --force-depends python-is-python3 python3-pip python3-venv python3.11-venv "
        "python3-pip-whl python3-setuptools-whl python3-wheel python3-setuptools >/dev/null\n")),
    "python-is-python3": Layered(DEFAULT_BASE_IMAGE, "LABEL variant=python-is-python3\n"),
    "venv-on-path": Layered(DEFAULT_BASE_IMAGE, (
        "RUN python3 -m venv /opt/venv && rm -f /usr/bin/python\nENV PATH=/opt/venv/bin:$PATH\n")),
    "entrypoint-wrapper": Layered(DEFAULT_BASE_IMAGE, (
        "COPY wrapper.sh /usr/local/bin/wrapper.sh\nENTRYPOINT [\"/usr/local/bin/wrapper.sh\"]\n"),
        (("wrapper.sh", WRAPPER),)),
    "entrypoint-fixed-program": Layered(DEFAULT_BASE_IMAGE, 'ENTRYPOINT ["/bin/echo", "serving the model"]\n'),
    "entrypoint-fails": Layered(DEFAULT_BASE_IMAGE, (
        'ENTRYPOINT ["/bin/sh", "-c", "echo licence not accepted >&2; exit 3", "--"]\n')),
    "non-root": Layered(DEFAULT_BASE_IMAGE, "RUN useradd -u 1000 -m trainer\nUSER trainer\n"),
    "non-root-no-home": Layered(DEFAULT_BASE_IMAGE, "USER 1000:1000\n"),
    "no-shell": Layered(DEFAULT_BASE_IMAGE, (
        'RUN ["/usr/bin/rm", "-f", "/usr/bin/sh", "/usr/bin/bash", "/usr/bin/dash"]\n')),
    "foreign-architecture": Layered("scratch", (
        "COPY program /usr/bin/python\nCOPY program /usr/bin/python3\nCOPY program /bin/sh\n"),
        (("program", _fake_arm64_program()),)),
}


def _key(name: str) -> str:
    definition = IMAGES[name]
    parts = [repr(definition)]
    if isinstance(definition, Layered) and definition.base in IMAGES:
        parts.append(_key(definition.base))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def image_tag(name: str) -> str:
    return f"{REPOSITORY}:{name}-{_key(name)}"


def user_image(client: docker.DockerClient, name: str, log: Callable[[str], None] = print) -> str:
    """The image ``name`` of IMAGES, built now unless an identical one is in the engine."""
    tag = image_tag(name)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    definition = IMAGES[name]
    if isinstance(definition, Debootstrapped):
        with tempfile.TemporaryDirectory(prefix="user-image-") as workdir:
            build_debian_image(client, log, workdir=Path(workdir), tag=tag, suite=definition.suite,
                               packages=definition.packages)
        return tag
    base = definition.base if definition.base not in IMAGES else user_image(client, definition.base, log)
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for file_name, data in (("Dockerfile", f"FROM {base}\n{definition.dockerfile}".encode()),
                                *definition.files):
            info = tarfile.TarInfo(file_name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    context.seek(0)
    for item in client.api.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, pull=False,
                                 decode=True):
        if "error" in item:
            raise RuntimeError(f"building the test image {name} failed: {item['error']}")
    return tag

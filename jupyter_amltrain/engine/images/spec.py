"""What defines an environment's image, and the deterministic hash that names it.

The hash covers what changes the image's contents: base image or Dockerfile, the registry it comes from,
Python dependencies in their given order, and whether they are user- or system-managed. It leaves out the
environment's name and version (as v1 does), environment variables (set at run time) and the registry
password (a secret, never part of any record).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

IMAGE_REPOSITORY = "azureml/azureml_"
ENVS_ROOT_IN_IMAGE = "/azureml-envs"


@dataclass(frozen=True)
class RegistrySpec:
    address: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class ImageSpec:
    base_image: str | None = None
    dockerfile: str | None = None
    registry: RegistrySpec = field(default_factory=RegistrySpec)
    user_managed: bool = False
    interpreter_path: str = "python"
    conda_channels: tuple[str, ...] = ()
    conda_packages: tuple[str, ...] = ()
    pip_packages: tuple[str, ...] = ()
    pip_options: tuple[str, ...] = ()
    python_version: str | None = None

    def canonical(self) -> dict[str, object]:
        data = asdict(self)
        if self.user_managed:
            # Dependencies of a user-managed environment are never installed, so they cannot change the image.
            for key in ("conda_channels", "conda_packages", "pip_packages", "pip_options", "python_version"):
                data.pop(key)
        return data


def image_hash(spec: ImageSpec) -> str:
    payload = json.dumps(spec.canonical(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def image_tag(spec: ImageSpec) -> str:
    return f"{IMAGE_REPOSITORY}{image_hash(spec)}"


def env_prefix_in_image(spec: ImageSpec) -> str:
    return f"{ENVS_ROOT_IN_IMAGE}/azureml_{image_hash(spec)}"


def python_in_image(spec: ImageSpec) -> str:
    """The interpreter a job of this environment runs with, inside its image."""
    if spec.user_managed:
        return spec.interpreter_path or "python"
    return f"{env_prefix_in_image(spec)}/bin/python"

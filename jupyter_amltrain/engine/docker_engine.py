"""The one way the core reaches the Docker engine, with the fix in the error when it cannot."""

from __future__ import annotations

import docker
from docker.errors import DockerException

from jupyter_amltrain.exceptions import DockerEngineException


def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except DockerException as exc:
        raise DockerEngineException(
            f"Cannot reach the Docker engine ({exc}). Start it (for example `sudo dockerd &` or `sudo systemctl "
            "start docker`) and make sure your user may use /var/run/docker.sock (or set DOCKER_HOST), or run "
            "without Docker by setting environment.docker.enabled = False."
        ) from exc
    return client

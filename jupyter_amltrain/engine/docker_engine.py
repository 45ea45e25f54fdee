"""The one way the core reaches the Docker engine, with the fix in the error when it cannot."""

from __future__ import annotations

import threading

import docker
from docker.errors import DockerException

from jupyter_amltrain.exceptions import DockerEngineException

_warm: dict[str, docker.DockerClient] = {}
_warm_lock = threading.Lock()


def docker_client(host: str | None = None) -> docker.DockerClient:
    """A client of the engine at ``host`` (a DOCKER_HOST value), else of this process's environment's."""
    try:
        client = docker.DockerClient(base_url=host, timeout=120) if host else docker.from_env(timeout=120)
        client.ping()
    except DockerException as exc:
        raise DockerEngineException(
            f"Cannot reach the Docker engine ({exc}). Start it (for example `sudo dockerd &` or `sudo systemctl "
            "start docker`) and make sure your user may use /var/run/docker.sock (or set DOCKER_HOST), or run "
            "without Docker by setting environment.docker.enabled = False."
        ) from exc
    return client


def warm_docker_client(host: str | None = None) -> docker.DockerClient:
    """One client per engine for the life of this process (the agent's): no version call and ping per run.
    Its connection pool reconnects by itself after the engine restarts."""
    key = host or ""
    with _warm_lock:
        client = _warm.get(key)
        if client is None:
            client = _warm[key] = docker_client(host)
        return client

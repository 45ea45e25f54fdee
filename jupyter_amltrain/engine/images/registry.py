"""Pulling base images, from private registries with the environment's credentials.

Credentials go to the Docker engine in the pull request's ``X-Registry-Auth`` header only: nothing is written to
``~/.docker/config.json`` (no ``docker login``), and the password is never stored, logged or put in a message.
They are sent only to the registry named in ``base_image_registry.address``, never to another one.
"""

from __future__ import annotations

from collections.abc import Callable

import docker
import docker.errors
from docker import auth as docker_auth
from docker.utils import parse_repository_tag

from jupyter_amltrain.engine.images.spec import RegistrySpec
from jupyter_amltrain.exceptions import RegistryException

Log = Callable[[str], None]

# Pull statuses repeated per layer many times a second: shown as progress, not logged.
_NOISY_STATUSES = ("Downloading", "Extracting", "Waiting", "Verifying Checksum")


def normalize_address(address: str | None) -> str | None:
    """'myregistry.azurecr.io' for 'https://MyRegistry.azurecr.io/'; None for no address."""
    if not address:
        return None
    text = address.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    return text.rstrip("/").lower() or None


def registry_of(image: str) -> str:
    """The registry host an image reference pulls from ('docker.io' for Docker Hub)."""
    repository, _ = parse_repository_tag(image)
    return docker_auth.resolve_repository_name(repository)[0].lower()


def qualify(image: str, registry: RegistrySpec) -> str:
    """``image`` prefixed with the registry address unless it already names that registry (v1 accepts both)."""
    address = normalize_address(registry.address)
    if not address or registry_of(image) == address:
        return image
    return f"{address}/{image}"


def image_present(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def pull(
    client: docker.DockerClient,
    image: str,
    *,
    registry: RegistrySpec,
    password: str | None,
    log: Log,
    progress: Log | None = None,
) -> None:
    """Pull ``image``, with ``registry``'s credentials when the image comes from that registry.

    Raises RegistryException saying whether the registry refused the credentials, could not be reached, or has
    no such image, with the fix; the password is masked out of anything the engine echoes back.
    """
    host = registry_of(image)
    auth_config = None
    if registry.username and normalize_address(registry.address) == host:
        auth_config = {"username": registry.username, "password": password or ""}
    log(f"Pulling image {image} from {host}" + (f" as user '{registry.username}'" if auth_config else ""))
    layers: dict[str, str] = {}
    try:
        for item in client.api.pull(image, stream=True, decode=True, auth_config=auth_config):
            if "error" in item:
                raise docker.errors.APIError(str(item["error"]))
            status, layer = str(item.get("status", "")), str(item.get("id", ""))
            if layer and status:
                layers[layer] = status
            if progress and layers:
                done = sum(1 for s in layers.values() if s in ("Pull complete", "Already exists"))
                progress(f"pulling {image}: {done}/{len(layers)} layers")
            if status and not status.startswith(_NOISY_STATUSES):
                log(f"{layer}: {status}" if layer else status)
    except docker.errors.APIError as error:
        raise pull_error(image, host, registry.username if auth_config else None, password, error) from None


def pull_error(
    image: str, host: str, username: str | None, password: str | None, error: docker.errors.APIError
) -> RegistryException:
    """A RegistryException that tells refused credentials, an unreachable registry and a missing image apart
    (``details["reason"]``: credentials, unreachable, not-found or other)."""
    detail = str(error.explanation or error)
    if password:
        detail = detail.replace(password, "****")
    lowered = detail.lower()
    reason = "other"
    if "no basic auth credentials" in lowered or (not username and "unauthorized" in lowered):
        reason = "credentials"
        message = (
            f"registry {host} requires credentials to pull {image} ({detail}). Fix: set "
            f"base_image_registry.address='{host}', .username and .password"
        )
    elif username and any(k in lowered for k in ("unauthorized", "authentication required", "incorrect username")):
        reason = "credentials"
        message = (
            f"registry {host} refused the credentials for user '{username}' (unauthorized). "
            "Fix: check base_image_registry.username/password"
        )
    elif any(k in lowered for k in ("manifest unknown", "not found", "repository does not exist", "name unknown")):
        reason = "not-found"
        message = (
            f"image {image} was not found in registry {host} ({detail}). Fix: check the image name and tag "
            "(docker.base_image or the Dockerfile's FROM line)"
        )
    elif any(
        k in lowered
        for k in ("dial tcp", "no such host", "connection refused", "timeout", "x509", "tls:", "http response")
    ):
        reason = "unreachable"
        message = (
            f"registry {host} cannot be reached to pull {image} ({detail}). Fix: check "
            "base_image_registry.address and that the registry is running and reachable from the Docker engine, "
            "or load the image locally (docker load / docker build) under that name"
        )
    else:
        message = f"pulling {image} from {host} failed: {detail}. Fix: check the image name and the registry"
    # details["reason"] lets callers tell the cases apart (e.g. substitute only unreachable Azure ML images).
    return RegistryException(message, reason=reason, image=image, registry=host)

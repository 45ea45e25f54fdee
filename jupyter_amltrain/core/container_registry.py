"""``ContainerRegistry``: where a private base image comes from (v1 ``azureml.core.container_registry``).

The password lives only in this object, in memory. Every serialization (``__repr__``, the registered
definition, ``save_to_directory``) writes ``None`` in its place, so an environment fetched back with
``Environment.get`` has no password: set ``env.docker.base_image_registry.password`` again in the session
that builds the image (or log the host's Docker into the registry with ``docker login <address>``).
"""

from __future__ import annotations

from typing import Any


class ContainerRegistry:
    """Address and credentials of a container registry (v1: ``address``, ``username``, ``password``)."""

    def __init__(self) -> None:
        self.address: str | None = None
        self.username: str | None = None
        self.password: str | None = None
        self.registry_identity: Any = None

    def _serialize_to_dict(self) -> dict[str, Any]:
        # The password is a secret: never part of any record, whatever it is set to.
        return {"address": self.address, "username": self.username, "password": None}

    @staticmethod
    def _deserialize(data: dict[str, Any] | None) -> ContainerRegistry:
        registry = ContainerRegistry()
        if data:
            registry.address = data.get("address")
            registry.username = data.get("username")
        return registry

    def __repr__(self) -> str:
        password = "***" if self.password else None
        return f"ContainerRegistry(address={self.address!r}, username={self.username!r}, password={password!r})"

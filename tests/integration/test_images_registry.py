"""Base images from a private registry with username/password (the seed article's base_image_registry), against
a real ``docker-registry`` with htpasswd auth: right, wrong and no credentials, unreachable registry, missing
image, Dockerfile FROM pre-pulls; the password never lands in ~/.docker/config.json, messages, logs or images."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from jupyter_amltrain.engine.images.builder import ImageBuilder
from jupyter_amltrain.engine.images.registry import image_present
from jupyter_amltrain.engine.images.spec import ImageSpec, RegistrySpec, image_tag
from jupyter_amltrain.engine.settings import load_settings
from jupyter_amltrain.exceptions import RegistryException

pytestmark = pytest.mark.docker

DOCKER_CONFIG = Path.home() / ".docker" / "config.json"


@pytest.fixture(scope="module")
def pushed(private_registry: Any) -> str:
    """The base image in the private registry, under a name unique to this run, with no local copy."""
    return str(private_registry.push_base_image(f"amltrain-test/fastai2:{uuid.uuid4().hex[:8]}"))


@pytest.fixture
def builder(docker_client: docker.DockerClient, tmp_path: Path) -> ImageBuilder:
    return ImageBuilder(docker_client, load_settings(home=str(tmp_path)))


@pytest.fixture(autouse=True)
def docker_config_untouched() -> Iterator[None]:
    before = DOCKER_CONFIG.read_bytes() if DOCKER_CONFIG.exists() else None
    yield
    assert (DOCKER_CONFIG.read_bytes() if DOCKER_CONFIG.exists() else None) == before, "~/.docker/config.json changed"


def _spec(image: str, registry: Any, username: str | None = None) -> ImageSpec:
    return ImageSpec(base_image=image, user_managed=True,
                     registry=RegistrySpec(registry.address, username or registry.username))


def _forget(client: docker.DockerClient, image: str) -> None:
    if image_present(client, image):
        client.images.remove(image)


def test_wrong_password_is_refused_without_showing_it(
    builder: ImageBuilder, private_registry: Any, pushed: str, docker_client: docker.DockerClient
) -> None:
    _forget(docker_client, pushed)
    lines: list[str] = []
    with pytest.raises(RegistryException) as raised:
        builder.ensure(_spec(pushed, private_registry), password="wrong-" + private_registry.password,
                       log=lines.append)
    message = str(raised.value)
    assert (f"registry {private_registry.address} refused the credentials for user '{private_registry.username}' "
            "(unauthorized). Fix: check base_image_registry.username/password") in message
    assert private_registry.password not in message + "\n".join(lines)
    assert not image_present(docker_client, pushed)


def test_missing_credentials_are_asked_for(
    builder: ImageBuilder, private_registry: Any, pushed: str, docker_client: docker.DockerClient
) -> None:
    _forget(docker_client, pushed)
    spec = ImageSpec(base_image=pushed, user_managed=True)
    with pytest.raises(RegistryException, match=r"requires credentials.*Fix: set base_image_registry"):
        builder.ensure(spec, password=None, log=lambda line: None)


def test_unreachable_registry_is_named_with_the_fix(builder: ImageBuilder, private_registry: Any) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    spec = ImageSpec(base_image=f"{address}/amltrain-test/nothing:1", user_managed=True,
                     registry=RegistrySpec(address, private_registry.username))
    with pytest.raises(RegistryException) as raised:
        builder.ensure(spec, password=private_registry.password, log=lambda line: None)
    assert f"registry {address} cannot be reached" in str(raised.value)
    assert "connection refused" in str(raised.value) and "Fix: check base_image_registry.address" in str(raised.value)
    assert private_registry.password not in str(raised.value)


def test_missing_image_is_named(builder: ImageBuilder, private_registry: Any, pushed: str) -> None:
    missing = pushed.rpartition(":")[0] + ":no-such-tag"
    with pytest.raises(RegistryException) as raised:
        builder.ensure(_spec(missing, private_registry), password=private_registry.password, log=lambda line: None)
    assert f"image {missing} was not found in registry {private_registry.address}" in str(raised.value)


def test_right_credentials_pull_the_base_image_and_then_reuse_it(
    builder: ImageBuilder, private_registry: Any, pushed: str, docker_client: docker.DockerClient
) -> None:
    _forget(docker_client, pushed)
    lines: list[str] = []
    # v1 also accepts the image name without the registry: the address is put in front.
    unqualified = pushed.removeprefix(private_registry.address + "/")
    built = builder.ensure(_spec(unqualified, private_registry), password=private_registry.password,
                           log=lines.append)
    assert built.tag == pushed and not built.cache_hit and built.python == "python"
    assert f"Pulling image {pushed} from {private_registry.address} as user '{private_registry.username}'" in lines
    assert image_present(docker_client, pushed)
    assert private_registry.password not in "\n".join(lines)

    again = builder.ensure(_spec(pushed, private_registry), password=private_registry.password, log=lines.append)
    assert again.cache_hit and again.tag == pushed


def test_dockerfile_from_a_private_image_is_pre_pulled_and_leaves_no_secret(
    builder: ImageBuilder, private_registry: Any, pushed: str, docker_client: docker.DockerClient,
    created_images: Any,
) -> None:
    _forget(docker_client, pushed)
    dockerfile = f"# amltrain-test-{uuid.uuid4().hex[:12]}\nFROM {pushed}\nRUN echo built on the private image\n"
    spec = ImageSpec(dockerfile=dockerfile, registry=RegistrySpec(private_registry.address,
                                                                  private_registry.username))
    lines: list[str] = []
    created_images.tags.append(image_tag(spec))
    created_images.build_logs.append(lines)
    built = builder.ensure(spec, password=private_registry.password, log=lines.append)
    assert "built on the private image" in lines and not built.cache_hit
    image = docker_client.images.get(built.tag)
    history = json.dumps(image.history())
    assert private_registry.password not in history
    assert private_registry.password not in json.dumps(image.attrs)  # labels, env, build config
    assert private_registry.password not in "\n".join(lines)

"""Docker fixtures for integration tests: the engine, the local base image, a private registry with auth."""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import yaml

from jupyter_amltrain.engine.images.base_image import ensure_base_image
from jupyter_amltrain.engine.images.spec import ImageSpec, image_tag
from jupyter_amltrain.engine.settings import load_settings

REGISTRY_BINARY = "/usr/bin/docker-registry"  # Debian's docker-registry package (distribution 2.8)
_LAYER = re.compile(r"^ ---> ([0-9a-f]{12})$")


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        pytest.skip(f"no Docker engine: {error}")
    return client


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The local base image (amltrain/base:bookworm), built once if the engine lacks it (~1-2 min)."""
    settings = load_settings(home=str(tmp_path_factory.mktemp("base-image-home")))
    return ensure_base_image(docker_client, lambda line: print(f"[base image] {line}", flush=True), settings=settings)


@dataclass
class CreatedImages:
    """What a test's builds create: tags it names, and build logs whose " ---> <id>" lines name the layers."""

    tags: list[str] = field(default_factory=list)
    build_logs: list[list[str]] = field(default_factory=list)


@pytest.fixture
def created_images(docker_client: docker.DockerClient) -> Iterator[CreatedImages]:
    """Removes, after the test, the tags it created (absent before) and the untagged layers its builds left
    (a failed build keeps its finished steps as cache). Only images this test made are touched."""
    created = CreatedImages()
    before = {tag for image in docker_client.images.list() for tag in image.tags}
    yield created
    for tag in created.tags:
        if tag not in before:
            try:
                docker_client.images.remove(tag)
            except docker.errors.ImageNotFound:
                pass
    layers = [m.group(1) for lines in created.build_logs for m in map(_LAYER.match, lines) if m]
    for layer in reversed(layers):  # children before parents
        try:
            if not docker_client.images.get(layer).tags:
                docker_client.images.remove(layer)
        except docker.errors.APIError:  # gone with its child, or still a parent of a tagged image
            pass


@dataclass
class PrivateRegistry:
    """A ``docker-registry`` on 127.0.0.1 with htpasswd auth (plain HTTP: Docker trusts 127.0.0.0/8)."""

    address: str
    username: str
    password: str
    client: docker.DockerClient
    pushed: list[str] = field(default_factory=list)

    def push(self, local_image: str, name: str, *, keep_local: bool = False) -> str:
        """Push ``local_image`` as ``<address>/<name>`` with credentials in the request only (no docker login);
        the local copy of that tag is removed unless ``keep_local``, so using it means pulling it."""
        reference = f"{self.address}/{name}"
        repository, _, tag = reference.rpartition(":")
        self.client.images.get(local_image).tag(repository, tag)
        auth = {"username": self.username, "password": self.password}
        for item in self.client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
            if "error" in item:
                raise RuntimeError(f"push of {reference} failed: {item['error']}")
        self.pushed.append(reference)
        if not keep_local:
            self.client.images.remove(reference)
        return reference

    def push_base_image(self, name: str) -> str:
        return self.push("amltrain/base:bookworm", name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def private_registry(
    docker_client: docker.DockerClient, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateRegistry]:
    if not Path(REGISTRY_BINARY).exists() or not shutil.which("htpasswd"):
        pytest.skip("needs docker-registry and htpasswd (apt-get install docker-registry apache2-utils)")
    folder = tmp_path_factory.mktemp("registry")
    username, password = "amltrain-test-user", secrets.token_urlsafe(18)
    htpasswd = subprocess.run(["htpasswd", "-Bbn", username, password], check=True, capture_output=True, text=True)
    (folder / "htpasswd").write_text(htpasswd.stdout)
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(folder / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        "auth": {"htpasswd": {"realm": "amltrain-test", "path": str(folder / "htpasswd")}},
    }
    (folder / "config.yml").write_text(yaml.safe_dump(config))
    with (folder / "registry.log").open("wb") as output:
        process = subprocess.Popen([REGISTRY_BINARY, "serve", str(folder / "config.yml")], stdout=output,
                                   stderr=subprocess.STDOUT)
    registry = PrivateRegistry(f"127.0.0.1:{port}", username, password, docker_client)
    try:
        _wait_until_answering(f"http://127.0.0.1:{port}/v2/", process, folder / "registry.log")
        yield registry
    finally:
        for reference in registry.pushed:
            try:
                docker_client.images.remove(reference)
            except docker.errors.ImageNotFound:
                pass
        process.terminate()
        process.wait(timeout=30)


def _wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError as error:
            if error.code == 401:  # up, and asking for credentials
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"docker-registry did not answer at {url}: {log.read_text()}")


@pytest.fixture
def fresh_environment_images(docker_client: docker.DockerClient) -> Iterator[Callable[[ImageSpec], None]]:
    """Environment images built during the test are removed afterwards, with the layer cache their build left,
    so the next run builds (and prints) again. Images present before the test are left alone. The fixture's
    value forgets one spec's image up front, for tests that must see a real build."""

    def environment_images() -> set[str]:
        return {image.id for image in docker_client.images.list(filters={"label": "amltrain.hash"})}

    def forget(spec: ImageSpec) -> None:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(image_tag(spec), force=True)

    before = environment_images()
    yield forget
    for image_id in environment_images() - before:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.images.remove(image_id, force=True)


@pytest.fixture
def cancel_leftover_runs(ws: Any) -> Iterator[None]:
    """After the test, cancel the workspace's runs still live and remove their containers, so a failing test
    leaves no job holding GPUs or a node behind it."""
    from jupyter_amltrain.engine.runs import records

    yield
    store = ws._local.store
    live = [row["run_id"] for row in store.query("SELECT run_id FROM runs WHERE status NOT IN "
                                                 "('Completed', 'Failed', 'Canceled')")]
    if not live:  # nothing to stop: and the test may have pointed DOCKER_HOST at a daemon that is gone now
        return
    client = docker.from_env()
    for run_id in live:
        records.request_cancel(store, run_id)
        for container in client.containers.list(all=True, sparse=True,
                                                filters={"label": f"amltrain.run_id={run_id}"}):
            container.remove(force=True)

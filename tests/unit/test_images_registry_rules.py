from __future__ import annotations

from pathlib import Path

import docker.errors
import pytest

from jupyter_amltrain.engine.images.base_image import (
    DEFAULT_CPU_IMAGE,
    DEFAULT_GPU_IMAGE,
    FALLBACK_MIRROR,
    check_can_debootstrap,
    debian_mirror,
    is_azureml_base_image,
)
from jupyter_amltrain.engine.images.registry import normalize_address, pull_error, qualify, registry_of
from jupyter_amltrain.engine.images.spec import RegistrySpec
from jupyter_amltrain.exceptions import EnvironmentException

SEED_IMAGE = "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210615.v1"


@pytest.mark.parametrize(
    ("image", "expected"),
    [(DEFAULT_CPU_IMAGE, True), (DEFAULT_GPU_IMAGE, True), (SEED_IMAGE, True),
     ("mcr.microsoft.com/azureml/intelmpi2018.3-ubuntu16.04", True), ("mcr.microsoft.com/azureml/base:0.2.4", True),
     ("mcr.microsoft.com/azureml/curated/sklearn-1.5:1", False), ("python:3.11", False),
     ("myregistry.azurecr.io/azureml/openmpi4.1.0-ubuntu20.04", False)],
)
def test_azureml_default_images_are_substitutable(image: str, expected: bool) -> None:
    assert is_azureml_base_image(image) is expected


@pytest.mark.parametrize(
    ("image", "registry", "expected"),
    [("fastai2:latest", RegistrySpec("myregistry.azurecr.io", "u"), "myregistry.azurecr.io/fastai2:latest"),
     ("myregistry.azurecr.io/fastai2:latest", RegistrySpec("https://MyRegistry.azurecr.io/", "u"),
      "myregistry.azurecr.io/fastai2:latest"),
     ("fastdotai/fastai2:latest", RegistrySpec(), "fastdotai/fastai2:latest"),
     ("127.0.0.1:5000/x/y:1", RegistrySpec("127.0.0.1:5000"), "127.0.0.1:5000/x/y:1")],
)
def test_qualify_prefixes_the_registry_once(image: str, registry: RegistrySpec, expected: str) -> None:
    assert qualify(image, registry) == expected


def test_registry_of_and_address_normalisation() -> None:
    assert registry_of("python:3.11") == "docker.io"
    assert registry_of("127.0.0.1:5000/x/y:1") == "127.0.0.1:5000"
    assert registry_of(DEFAULT_CPU_IMAGE) == "mcr.microsoft.com"
    assert normalize_address("http://127.0.0.1:5000/") == "127.0.0.1:5000"
    assert normalize_address("") is None


@pytest.mark.parametrize(
    ("explanation", "username", "reason", "says"),
    [
        ("unauthorized: authentication required", "alice", "credentials",
         "registry 127.0.0.1:5000 refused the credentials for user 'alice' (unauthorized). "
         "Fix: check base_image_registry.username/password"),
        ('Head "http://127.0.0.1:5000/v2/x/manifests/1": no basic auth credentials', None, "credentials",
         "requires credentials"),
        ('Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused', "alice",
         "unreachable", "registry 127.0.0.1:5000 cannot be reached"),
        ("manifest for 127.0.0.1:5000/x:1 not found: manifest unknown", "alice", "not-found",
         "image 127.0.0.1:5000/x:1 was not found"),
    ],
)
def test_pull_errors_name_the_problem_and_the_fix(explanation: str, username: str | None, reason: str,
                                                 says: str) -> None:
    error = pull_error("127.0.0.1:5000/x:1", "127.0.0.1:5000", username, "pw-secret",
                       docker.errors.APIError(explanation))
    assert says in str(error) and "Fix:" in str(error)
    assert error.details["reason"] == reason


def test_password_echoed_by_the_engine_is_masked() -> None:
    error = pull_error("r/x:1", "r", "alice", "pw-secret", docker.errors.APIError("weird failure for pw-secret"))
    assert "pw-secret" not in str(error) and "****" in str(error)


def test_debian_mirror_from_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    assert debian_mirror(tmp_path) == FALLBACK_MIRROR
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://other.example/debian bookworm main\n")
    assert debian_mirror(tmp_path) == "http://other.example/debian"


def test_base_image_build_without_debootstrap_names_the_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no debootstrap on it
    with pytest.raises(EnvironmentException) as raised:
        check_can_debootstrap()
    message = str(raised.value)
    assert "debootstrap is not installed" in message and "apt-get install debootstrap" in message
    assert "AMLTRAIN_BASE_IMAGE" in message and "run as root" in message

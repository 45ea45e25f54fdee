"""Image builds on the real Docker engine: CA injection through the TLS-intercepting proxy, cache hits, the seed
Dockerfile on the local base image, and failures that name their cause."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from jupyter_amltrain.engine.images.base_image import DEFAULT_CPU_IMAGE
from jupyter_amltrain.engine.images.builder import BuiltImage, ImageBuilder
from jupyter_amltrain.engine.images.registry import image_present
from jupyter_amltrain.engine.images.spec import ImageSpec, image_hash, image_tag
from jupyter_amltrain.engine.images.tls import CA_BUNDLE_IN_IMAGE
from jupyter_amltrain.engine.settings import load_settings
from jupyter_amltrain.exceptions import ImageBuildException

pytestmark = pytest.mark.docker

SEED_IMAGE = "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210615.v1"


def _marker() -> str:
    # A comment unique to this test run, so its image hash (and tag) is never cached from an earlier run.
    return f"# amltrain-test-{uuid.uuid4().hex[:12]}"


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.progress: list[str] = []

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _ensure(
    builder: ImageBuilder, spec: ImageSpec, created: Any = None, password: str | None = None
) -> tuple[BuiltImage, Recorder]:
    seen = Recorder()
    if created is not None:
        created.tags.append(image_tag(spec))
        created.build_logs.append(seen.lines)
    built = builder.ensure(spec, password=password, log=seen.lines.append, progress=seen.progress.append)
    return built, seen


def _run(client: docker.DockerClient, image: str, command: list[str]) -> str:
    name = f"amltrain-test-{uuid.uuid4().hex[:8]}"
    return client.containers.run(image, command, name=name, remove=True).decode()


@pytest.mark.slow
def test_pip_install_goes_through_the_proxy_only_with_the_injected_ca_bundle(
    docker_client: docker.DockerClient, base_image: str, created_images: Any, tmp_path: Path
) -> None:
    spec = ImageSpec(base_image=base_image, pip_packages=("six", _marker()))
    tag = image_tag(spec)
    without_ca = ImageBuilder(docker_client, load_settings(home=str(tmp_path), inject_ca_bundle=False))
    with pytest.raises(ImageBuildException) as raised:
        _ensure(without_ca, spec, created_images)
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
    assert "inject_ca_bundle=False" in str(raised.value) and "Fix:" in str(raised.value)
    assert not image_present(docker_client, tag)

    builder = ImageBuilder(docker_client, load_settings(home=str(tmp_path)))
    built, seen = _ensure(builder, spec, created_images)
    assert (built.tag, built.hash, built.cache_hit, built.base_substituted) == (tag, image_hash(spec), False, None)
    assert built.python == f"/azureml-envs/azureml_{image_hash(spec)}/bin/python"  # the environment's own, checked
    assert built.facts.python_version.startswith("3.11") and built.facts.runs_as == "root"
    assert f"Materialized image not found on target: {tag}" in seen.lines
    assert any(line.startswith("Step 1/") for line in seen.lines)
    assert any(status.startswith("building image: step ") for status in seen.progress)
    assert "Successfully installed six" in seen.text
    assert _run(docker_client, tag, [built.python, "-c", "import six, sys; print(sys.prefix)"]).strip() == (
        f"/azureml-envs/azureml_{image_hash(spec)}"
    )
    # The bundle served the install only: not left in the image, not in its environment.
    image = docker_client.images.get(tag)
    assert image.labels["amltrain.hash"] == image_hash(spec)
    assert not any("PIP_CERT" in variable for variable in image.attrs["Config"]["Env"])
    assert _run(docker_client, tag, ["sh", "-c", f"test -e {CA_BUNDLE_IN_IMAGE} && echo present || echo absent"]) == (
        "absent\n"
    )

    again, seen = _ensure(builder, spec, created_images)
    assert again.cache_hit and again.tag == tag
    assert seen.lines == [f"Image {tag} found: cache hit, no build"]


def test_seed_dockerfile_builds_on_the_local_base_and_streams_its_log(
    docker_client: docker.DockerClient, base_image: str, created_images: Any, tmp_path: Path
) -> None:
    # the marker goes on the RUN line too: Docker's layer cache must not replay the step without its output
    dockerfile = f'{_marker()}\nFROM {SEED_IMAGE}\nRUN echo "Hello from custom container!" {_marker()}\n'
    spec = ImageSpec(dockerfile=dockerfile, user_managed=True)
    builder = ImageBuilder(docker_client, load_settings(home=str(tmp_path)))
    built, seen = _ensure(builder, spec, created_images)
    assert not built.cache_hit and built.base_substituted == base_image and built.python == "python"
    assert (f"{SEED_IMAGE} cannot be pulled (no registry reachable); using the local equivalent {base_image}"
            in seen.lines)
    assert "Hello from custom container!" in seen.lines
    steps = [status for status in seen.progress if status.startswith("building image: step ")]
    done, total = steps[-1].removeprefix("building image: step ").split("/")
    assert steps[0] == f"building image: step 1/{total}" and done == total
    assert _run(docker_client, built.tag, ["python", "-c", "print('ok')"]) == "ok\n"

    again, _ = _ensure(builder, spec, created_images)
    assert again.cache_hit and again.base_substituted == base_image


def test_user_managed_default_image_runs_on_the_local_base_without_a_build(
    docker_client: docker.DockerClient, base_image: str, tmp_path: Path
) -> None:
    builder = ImageBuilder(docker_client, load_settings(home=str(tmp_path)))
    built, seen = _ensure(builder, ImageSpec(base_image=DEFAULT_CPU_IMAGE, user_managed=True))
    assert built.tag == base_image and built.base_substituted == base_image and built.python == "python"
    assert not any(line.startswith("Step ") for line in seen.lines)


def test_failing_dockerfile_raises_with_the_step_and_leaves_no_image(
    docker_client: docker.DockerClient, base_image: str, created_images: Any, tmp_path: Path
) -> None:
    spec = ImageSpec(dockerfile=f"{_marker()}\nFROM {base_image}\nRUN echo about to fail && exit 3\n",
                     user_managed=True)
    with pytest.raises(ImageBuildException) as raised:
        _ensure(ImageBuilder(docker_client, load_settings(home=str(tmp_path))), spec, created_images)
    message = str(raised.value)
    assert "at Step 2/4 : RUN echo about to fail && exit 3" in message  # FROM, RUN, then the two labels
    assert "returned a non-zero code: 3" in message and "about to fail" in message
    assert not image_present(docker_client, image_tag(spec))


def test_image_without_python_fails_with_the_fix(
    docker_client: docker.DockerClient, base_image: str, created_images: Any, tmp_path: Path
) -> None:
    spec = ImageSpec(dockerfile=f"{_marker()}\nFROM {base_image}\nRUN rm -f /usr/bin/python3* /usr/bin/python\n")
    with pytest.raises(ImageBuildException) as raised:
        _ensure(ImageBuilder(docker_client, load_settings(home=str(tmp_path))), spec, created_images)
    assert ("the image built from the Dockerfile has neither conda nor python3; set "
            "python.user_managed_dependencies=True and interpreter_path, or use a base image with Python"
            in str(raised.value))
    assert not image_present(docker_client, image_tag(spec))


def test_conda_only_package_on_an_image_without_conda_fails_with_the_fix(
    docker_client: docker.DockerClient, base_image: str, created_images: Any, tmp_path: Path
) -> None:
    spec = ImageSpec(base_image=base_image, conda_packages=("cudatoolkit=11.3", "numpy"), pip_options=(_marker(),))
    with pytest.raises(ImageBuildException) as raised:
        _ensure(ImageBuilder(docker_client, load_settings(home=str(tmp_path))), spec, created_images)
    assert "conda package 'cudatoolkit' has no PyPI equivalent" in str(raised.value)
    assert not image_present(docker_client, image_tag(spec))


def test_base_image_replaced_under_the_same_name_triggers_a_rebuild(
    docker_client: docker.DockerClient, base_image: str, created_images: Any, tmp_path: Path
) -> None:
    base = f"amltrain-test-base:{uuid.uuid4().hex[:8]}"
    repository, tag = base.split(":")
    docker_client.images.get(base_image).tag(repository, tag)
    created_images.tags.append(base)
    spec = ImageSpec(base_image=base, pip_options=(_marker(),))  # no packages: only the venv
    builder = ImageBuilder(docker_client, load_settings(home=str(tmp_path)))
    first, _ = _ensure(builder, spec, created_images)
    assert not first.cache_hit
    assert _ensure(builder, spec, created_images)[0].cache_hit

    # The user rebuilds their base image under the same name: the environment image is rebuilt on it.
    variant = ImageSpec(dockerfile=f"{_marker()}\nFROM {base_image}\nRUN touch /variant\n", user_managed=True)
    replaced, _ = _ensure(builder, variant, created_images)
    docker_client.images.get(replaced.tag).tag(repository, tag)
    rebuilt, seen = _ensure(builder, spec, created_images)
    assert not rebuilt.cache_hit
    assert f"Base image {base} changed since {first.tag} was built; rebuilding" in seen.lines
    assert _run(docker_client, rebuilt.tag, ["ls", "/variant"]) == "/variant\n"

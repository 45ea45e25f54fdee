from __future__ import annotations

import json
import tarfile

import yaml

from jupyter_amltrain.engine.images.dockerfile import (
    EXIT_CONDA_ONLY,
    HASH_LABEL,
    SPEC_LABEL,
    from_images,
    needs_build,
    render_build_context,
    requested_python,
    rewrite_from,
)
from jupyter_amltrain.engine.images.spec import ImageSpec, env_prefix_in_image, image_hash
from jupyter_amltrain.engine.images.tls import CA_BUNDLE_IN_IMAGE

SEED_IMAGE = "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210615.v1"
CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:20230227.v1"
SEED_DOCKERFILE = """
FROM mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210615.v1
RUN echo "Hello from custom container!"
"""
SYSTEM = ImageSpec(
    base_image="amltrain/base:bookworm",
    conda_channels=("conda-forge",),
    conda_packages=("python=3.11", "numpy=1.24", "pytorch"),
    pip_packages=("six==1.16.0",),
    pip_options=("--extra-index-url https://example.org/simple",),
)


def test_system_managed_adds_the_isolated_environment_after_the_base() -> None:
    context = render_build_context(SYSTEM, base_image="amltrain/base:bookworm")
    prefix = env_prefix_in_image(SYSTEM)
    lines = context.dockerfile.splitlines()
    assert lines[0] == "FROM amltrain/base:bookworm"
    assert "COPY amltrain-setup/ /usr/local/share/amltrain/" in lines
    assert 'RUN ["/bin/sh", "/usr/local/share/amltrain/setup-env.sh"]' in lines
    assert f"ENV PATH={prefix}/bin:$PATH AZUREML_CONDA_ENVIRONMENT_PATH={prefix}" in lines
    requirements = context.files["amltrain-setup/requirements.txt"].decode().splitlines()
    assert requirements == ["--extra-index-url https://example.org/simple", "numpy==1.24.*", "torch", "six==1.16.0"]
    environment = yaml.safe_load(context.files["amltrain-setup/environment.yml"])
    assert environment["channels"] == ["conda-forge"]
    assert environment["dependencies"] == [
        "python=3.11", "numpy=1.24", "pytorch", "pip",
        {"pip": ["--extra-index-url https://example.org/simple", "six==1.16.0"]},
    ]
    script = context.files["amltrain-setup/setup-env.sh"].decode()
    assert f"prefix={prefix}" in script
    assert "python3 -m venv" in script and "env create -p" in script and "command -v" in script


def test_labels_carry_hash_and_canonical_spec() -> None:
    context = render_build_context(SYSTEM, base_image="x")
    assert context.labels[HASH_LABEL] == image_hash(SYSTEM)
    assert json.loads(context.labels[SPEC_LABEL]) == json.loads(json.dumps(SYSTEM.canonical()))


def test_python_version_without_conda_package_pins_conda_python() -> None:
    spec = ImageSpec(base_image="b", pip_packages=("six",), python_version="3.10")
    environment = yaml.safe_load(render_build_context(spec, base_image="b").files["amltrain-setup/environment.yml"])
    assert environment["dependencies"][0] == "python=3.10"
    assert requested_python(spec) == "3.10"
    assert requested_python(SYSTEM) == "3.11"
    assert "Python 3.10" in render_build_context(spec, base_image="b").files["amltrain-setup/setup-env.sh"].decode()


def test_conda_only_packages_fail_only_when_the_image_has_no_conda() -> None:
    spec = ImageSpec(base_image="b", conda_packages=("cudatoolkit=11.3", "numpy"))
    context = render_build_context(spec, base_image="b")
    assert "cudatoolkit" in context.files["amltrain-setup/conda-only.txt"].decode()
    assert "cudatoolkit=11.3" in context.files["amltrain-setup/environment.yml"].decode()
    assert f"exit {EXIT_CONDA_ONLY}" in context.files["amltrain-setup/setup-env.sh"].decode()


def test_user_managed_dockerfile_is_the_users_own_with_from_rewritten() -> None:
    spec = ImageSpec(dockerfile=SEED_DOCKERFILE, user_managed=True)
    context = render_build_context(
        spec, from_replacements={SEED_IMAGE: "amltrain/base:bookworm"}
    )
    assert context.dockerfile == '\nFROM amltrain/base:bookworm\nRUN echo "Hello from custom container!"\n'
    assert context.files == {}
    assert needs_build(spec)


def test_user_managed_base_image_needs_no_build() -> None:
    assert not needs_build(ImageSpec(base_image="python:3.11", user_managed=True))
    assert needs_build(ImageSpec(base_image="python:3.11"))


def test_from_rewrite_keeps_options_stage_names_and_other_lines() -> None:
    dockerfile = (
        "ARG X=1\n"
        "FROM --platform=linux/amd64 mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:20230227.v1 AS build\n"
        "RUN make\n"
        "from build as final\n"
        "FROM other/image:1\n"
        "COPY --from=build /a /a\n"
    )
    assert from_images(dockerfile) == [CPU_IMAGE, "other/image:1"]
    rewritten = rewrite_from(dockerfile, {CPU_IMAGE: "amltrain/base:bookworm"})
    assert rewritten == dockerfile.replace(CPU_IMAGE, "amltrain/base:bookworm")


def test_from_images_skips_scratch_and_build_args() -> None:
    assert from_images("FROM scratch\nFROM ${BASE}\nFROM $BASE AS x\nFROM x\n") == []


def test_users_user_is_restored_after_the_environment_step() -> None:
    spec = ImageSpec(dockerfile="FROM amltrain/base:bookworm\nUSER 1000\n")
    lines = render_build_context(spec).dockerfile.splitlines()
    assert lines.index("USER root") < lines.index('RUN ["/bin/sh", "/usr/local/share/amltrain/setup-env.sh"]')
    assert lines[-1] == "USER 1000"


def test_ca_bundle_goes_in_the_context_not_the_hash() -> None:
    with_ca = render_build_context(SYSTEM, base_image="b", ca_bundle=b"PEM")
    without = render_build_context(SYSTEM, base_image="b")
    assert with_ca.files["amltrain-setup/ca-bundle.crt"] == b"PEM"
    assert "amltrain-setup/ca-bundle.crt" not in without.files
    assert with_ca.labels == without.labels and with_ca.dockerfile == without.dockerfile
    script = with_ca.files["amltrain-setup/setup-env.sh"].decode()
    assert f"PIP_CERT={CA_BUNDLE_IN_IMAGE}" in script and f"CONDA_SSL_VERIFY={CA_BUNDLE_IN_IMAGE}" in script
    assert f"rm -f {CA_BUNDLE_IN_IMAGE}" in script


def test_tar_holds_dockerfile_and_executable_script() -> None:
    context = render_build_context(SYSTEM, base_image="b")
    with tarfile.open(fileobj=context.tar()) as archive:
        names = archive.getnames()
        assert archive.getmember("amltrain-setup/setup-env.sh").mode == 0o755
        assert archive.extractfile("Dockerfile").read().decode() == context.dockerfile  # type: ignore[union-attr]
    assert names[0] == "Dockerfile"

"""The Docker build context of an environment: Dockerfile, setup script, requirement files, labels.

Layout, like Azure ML's two build steps: (1) the base image, or the user's Dockerfile as given (its FROM lines
only rewritten to local substitutes); (2) for system-managed dependencies, the environment's own Python at
``/azureml-envs/azureml_<hash>``, created by ``amltrain-setup/setup-env.sh``. The script decides at build time
whether the image has conda (``conda env create`` from ``environment.yml``, as Azure ML does) or only python3
(``python3 -m venv`` plus pip from ``requirements.txt``, conda specs mapped to PyPI). Deciding inside the build
needs no extra container run and works for Dockerfiles, whose image does not exist before the build.

Nothing secret goes in here: the registry password only ever reaches the Docker engine's pull call.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from jupyter_amltrain.engine.images.conda_pypi import map_conda_packages, normalize_name, parse_conda_spec
from jupyter_amltrain.engine.images.spec import ImageSpec, env_prefix_in_image, image_hash
from jupyter_amltrain.engine.images.tls import CA_BUNDLE_IN_IMAGE, install_environment

SETUP_DIR = "amltrain-setup"
SETUP_DIR_IN_IMAGE = CA_BUNDLE_IN_IMAGE.rsplit("/", 1)[0]
# Exit codes of setup-env.sh that the builder turns into specific messages.
EXIT_NO_PYTHON = 97
EXIT_CONDA_ONLY = 98
EXIT_NO_VENV = 99
VENV_TOOL = "uv"  # executable in the build context (BuildContext.tar marks it so)

HASH_LABEL = "amltrain.hash"
SPEC_LABEL = "amltrain.spec"
BASE_LABEL = "amltrain.base"

_FROM = re.compile(r"^(\s*FROM\s+)((?:--\S+\s+)*)(\S+)(.*)$", re.IGNORECASE)
_STAGE = re.compile(r"^\s+AS\s+(\S+)", re.IGNORECASE)
_USER = re.compile(r"^\s*USER\s+(.+?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class BuildContext:
    dockerfile: str
    files: dict[str, bytes] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def tar(self) -> io.BytesIO:
        """The context as an uncompressed tar, with fixed metadata so Docker's layer cache can reuse COPYs."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, data in {"Dockerfile": self.dockerfile.encode(), **self.files}.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o755 if name.endswith((".sh", f"/{VENV_TOOL}")) else 0o644
                archive.addfile(info, io.BytesIO(data))
        buffer.seek(0)
        return buffer


def needs_build(spec: ImageSpec) -> bool:
    """User-managed environments on a plain base image run in that image as it is."""
    return bool(spec.dockerfile) or not spec.user_managed


def image_labels(spec: ImageSpec) -> dict[str, str]:
    return {
        HASH_LABEL: image_hash(spec),
        SPEC_LABEL: json.dumps(spec.canonical(), sort_keys=True, separators=(",", ":")),
    }


def from_images(dockerfile: str) -> list[str]:
    """Images named by FROM lines, in order, without build-stage names, ``scratch`` or ``$ARG`` references."""
    images: list[str] = []
    stages: set[str] = set()
    for line in dockerfile.splitlines():
        match = _FROM.match(line)
        if not match:
            continue
        image = match.group(3)
        if image.lower() not in stages and image != "scratch" and "$" not in image and image not in images:
            images.append(image)
        stage = _STAGE.match(match.group(4))
        if stage:
            stages.add(stage.group(1).lower())
    return images


def rewrite_from(dockerfile: str, replacements: Mapping[str, str]) -> str:
    """``dockerfile`` with the images of its FROM lines replaced; every other line kept byte for byte."""
    if not replacements:
        return dockerfile
    lines = dockerfile.splitlines(keepends=True)
    for index, line in enumerate(lines):
        match = _FROM.match(line)
        if match and match.group(3) in replacements:
            lines[index] = match.group(1) + match.group(2) + replacements[match.group(3)] + match.group(4)
            if line.endswith("\n") and not lines[index].endswith("\n"):
                lines[index] += "\n"
    return "".join(lines)


def render_build_context(
    spec: ImageSpec,
    *,
    base_image: str | None = None,
    from_replacements: Mapping[str, str] | None = None,
    ca_bundle: bytes | None = None,
    venv_tool: bytes | None = None,
    base_user: str | None = None,
) -> BuildContext:
    """The build context of ``spec``.

    ``base_image`` is the image to build on when the spec has no Dockerfile (the spec's own, qualified or
    substituted by the caller); ``from_replacements`` rewrites a Dockerfile's FROM images; ``ca_bundle`` is
    trusted by the install steps only.
    """
    if spec.dockerfile:
        first_stage = rewrite_from(spec.dockerfile, from_replacements or {})
    elif base_image:
        first_stage = f"FROM {base_image}\n"
    else:
        raise ValueError("render_build_context needs base_image for a spec without a Dockerfile")
    labels = image_labels(spec)
    if spec.user_managed:
        return BuildContext(first_stage, {}, labels)

    prefix = env_prefix_in_image(spec)
    files = _environment_files(spec)
    if ca_bundle:
        files[f"{SETUP_DIR}/{CA_BUNDLE_IN_IMAGE.rsplit('/', 1)[1]}"] = ca_bundle
    if venv_tool:
        files[f"{SETUP_DIR}/{VENV_TOOL}"] = venv_tool
    # The setup writes /azureml-envs as root; the image's own user (a USER line, else its base image's) comes back.
    users = [m.group(1) for m in map(_USER.match, first_stage.splitlines()) if m]
    if not users and base_user and base_user not in ("root", "0", "0:0"):
        users = [base_user]
    lines = [
        first_stage.rstrip("\n"),
        "",
        f"# jupyter_amltrain: the environment's own Python at {prefix} (system-managed dependencies)",
    ]
    if users:
        lines.append("USER root")
    lines += [
        f"COPY {SETUP_DIR}/ {SETUP_DIR_IN_IMAGE}/",
        f'RUN ["/bin/sh", "{SETUP_DIR_IN_IMAGE}/setup-env.sh"]',
        f"ENV PATH={prefix}/bin:$PATH AZUREML_CONDA_ENVIRONMENT_PATH={prefix}",
    ]
    if users:
        lines.append(f"USER {users[-1]}")
    return BuildContext("\n".join(lines) + "\n", files, labels)


def requested_python(spec: ImageSpec) -> str | None:
    """The pinned Python version of ``spec`` ('3.8'), from python_version or a ``python=`` conda package."""
    return spec.python_version or map_conda_packages(spec.conda_packages).python


def _environment_files(spec: ImageSpec) -> dict[str, bytes]:
    mapping = map_conda_packages(spec.conda_packages)
    requirements = [*spec.pip_options, *mapping.requirements, *spec.pip_packages]
    files = {
        f"{SETUP_DIR}/environment.yml": _environment_yml(spec).encode(),
        f"{SETUP_DIR}/requirements.txt": "".join(f"{line}\n" for line in requirements).encode(),
        f"{SETUP_DIR}/setup-env.sh": _setup_script(spec, mapping.skipped).encode(),
    }
    refusal = mapping.refusal()
    if refusal:
        # Only fatal when the image turns out to have no conda, which the setup script finds out.
        files[f"{SETUP_DIR}/conda-only.txt"] = "".join(f"amltrain: {line}\n" for line in refusal.splitlines()).encode()
    return files


def _environment_yml(spec: ImageSpec) -> str:
    names = {normalize_name(parse_conda_spec(s)[0]) for s in spec.conda_packages}
    dependencies: list[object] = []
    if "python" not in names:
        dependencies.append(f"python={spec.python_version}" if spec.python_version else "python")
    dependencies += list(spec.conda_packages)
    pip_lines = [*spec.pip_options, *spec.pip_packages]
    if pip_lines:
        if "pip" not in names:
            dependencies.append("pip")
        dependencies.append({"pip": pip_lines})
    document: dict[str, object] = {"name": f"azureml_{image_hash(spec)}"}
    if spec.conda_channels:
        document["channels"] = list(spec.conda_channels)
    document["dependencies"] = dependencies
    return yaml.safe_dump(document, sort_keys=False)


def _setup_script(spec: ImageSpec, skipped: list[str]) -> str:
    here = SETUP_DIR_IN_IMAGE
    bundle = CA_BUNDLE_IN_IMAGE
    trust = " ".join(f"{name}={value}" for name, value in install_environment(bundle).items())
    want = requested_python(spec)
    python_check = ""
    if want:
        python_check = f"""  have=$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
  case "$have" in
    {shlex.quote(want)}|{shlex.quote(want)}.*) ;;
    *) echo "amltrain: warning: the environment asks for Python {want}; the image has no conda to install it, \
so the image's Python $have is used" ;;
  esac
"""
    skipped_note = ""
    if skipped:
        listed = ", ".join(sorted({parse_conda_spec(s)[0] for s in skipped}))
        skipped_note = f'  echo "amltrain: conda packages skipped (PyPI wheels bundle what they provide): {listed}"\n'
    return f"""#!/bin/sh
# Generated by jupyter_amltrain: creates the environment's own Python at $prefix, with conda when the image
# has it (as Azure ML does), else with python3 -m venv and pip.
set -eu
here={here}
prefix={shlex.quote(env_prefix_in_image(spec))}
if [ -f {bundle} ]; then
  # Trust the injected CA bundle (e.g. a TLS-intercepting proxy) for these installs only.
  export {trust}
fi
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1
conda=
for candidate in micromamba mamba conda /opt/conda/bin/conda /opt/miniconda/bin/conda; do
  if command -v "$candidate" >/dev/null 2>&1; then conda=$candidate; break; fi
done
if [ -n "$conda" ]; then
  echo "amltrain: creating conda environment $prefix with $conda"
  case "$(basename "$conda")" in
    micromamba) "$conda" create -y -p "$prefix" -f "$here/environment.yml" ;;
    *) "$conda" env create -p "$prefix" -f "$here/environment.yml" ;;
  esac
  "$conda" clean -a -y >/dev/null 2>&1 || true
elif command -v python3 >/dev/null 2>&1; then
  if [ -f "$here/conda-only.txt" ]; then cat "$here/conda-only.txt"; exit {EXIT_CONDA_ONLY}; fi
{python_check}{skipped_note}  if python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
    echo "amltrain: no conda in the image; creating $prefix with python3 -m venv and pip"
    python3 -m venv "$prefix"
    "$prefix/bin/python" -m pip install -r "$here/requirements.txt"
  elif [ -x "$here/{VENV_TOOL}" ]; then
    # Debian's python3 without python3-venv (no venv/ensurepip, no pip): uv makes the environment itself.
    echo "amltrain: no conda in the image, and its python3 has no venv module; creating $prefix with uv"
    export UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
    "$here/{VENV_TOOL}" venv --python "$(command -v python3)" "$prefix"
    "$here/{VENV_TOOL}" pip install --python "$prefix/bin/python" -r "$here/requirements.txt"
  else
    echo "amltrain: the image's python3 has no venv module (Debian: apt-get install python3-venv)"
    exit {EXIT_NO_VENV}
  fi
else
  echo "amltrain: the image has neither conda nor python3"
  exit {EXIT_NO_PYTHON}
fi
rm -f {bundle} "$here/{VENV_TOOL}"
"""


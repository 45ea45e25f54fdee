"""What to tell the user when installing an environment's packages fails, in an image or a local venv."""

from __future__ import annotations

import re

from jupyter_amltrain.engine.images.conda_pypi import map_conda_packages, normalize_name, parse_conda_spec
from jupyter_amltrain.engine.images.spec import ImageSpec
from jupyter_amltrain.engine.images.tls import CaBundleSettings

_NO_DISTRIBUTION = re.compile(r"No matching distribution found for ([A-Za-z0-9_.\-]+)")
_REQUIREMENT_NAME = re.compile(r"^[A-Za-z0-9_.\-]+")


def install_failure_hint(spec: ImageSpec, log_text: str, settings: CaBundleSettings) -> str | None:
    """The likely cause and fix found in an install log, or None when nothing known matches."""
    if "CERTIFICATE_VERIFY_FAILED" in log_text or "certificate verify failed" in log_text:
        if not settings.inject_ca_bundle:
            state = "is off (inject_ca_bundle=False)"
        else:
            state = f"used {settings.ca_bundle}" if settings.ca_bundle else "has no bundle (ca_bundle='')"
        return (
            "TLS certificate verification failed while installing packages: a proxy probably intercepts TLS, and "
            f"CA injection {state}. Fix: set settings.ca_bundle (or AMLTRAIN_CA_BUNDLE) to the proxy's CA bundle "
            "and inject_ca_bundle=True"
        )
    if "ensurepip is not available" in log_text or "No module named venv" in log_text:
        return (
            "the image's python3 has no venv module. Fix: add 'RUN apt-get update && apt-get install -y "
            "python3-venv' to the Dockerfile, or use a base image with conda"
        )
    missing = _NO_DISTRIBUTION.search(log_text)
    if missing:
        return _no_distribution_hint(spec, missing.group(1))
    return None


def _no_distribution_hint(spec: ImageSpec, name: str) -> str:
    wanted = normalize_name(name)
    for conda_spec in spec.conda_packages:
        mapped = map_conda_packages([conda_spec]).requirements
        found = _REQUIREMENT_NAME.match(mapped[0]) if mapped else None
        if found and normalize_name(found.group(0)) == wanted:
            return (
                f"pip found no distribution '{name}': it comes from conda package '{parse_conda_spec(conda_spec)[0]}',"
                " which has no PyPI equivalent under that name and version. Fix: use a base image with conda, or "
                "replace it by the PyPI package in pip_packages"
            )
    return (
        f"pip found no distribution '{name}'. Fix: check the package name and version, and pip_options "
        "(e.g. --extra-index-url) for packages from another index"
    )

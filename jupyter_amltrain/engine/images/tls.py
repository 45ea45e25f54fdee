"""The CA bundle that package installs trust, so builds work behind a TLS-intercepting proxy.

Hosts behind such a proxy trust its CA; containers do not, so pip inside an image build fails with
CERTIFICATE_VERIFY_FAILED. We copy the host's bundle (``settings.ca_bundle``) into the build context and point
only the install commands at it. It is an input of the build, not of the environment: the image hash ignores
it, so the same environment gets the same image name on every host.
"""

from __future__ import annotations

import re
import ssl
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from jupyter_amltrain.exceptions import EnvironmentException

CA_BUNDLE_IN_IMAGE = "/usr/local/share/amltrain/ca-bundle.crt"

_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.DOTALL)


class CaBundleSettings(Protocol):
    ca_bundle: str
    inject_ca_bundle: bool


def ca_bundle_to_inject(settings: CaBundleSettings) -> bytes | None:
    """The PEM certificates to inject, or None when injection is off or no bundle is configured."""
    if not settings.inject_ca_bundle or not settings.ca_bundle:
        return None
    path = Path(settings.ca_bundle)
    try:
        stat = path.stat()
    except OSError:
        return read_ca_bundle(path)  # says what is wrong with it
    return _read_once(path, stat.st_mtime_ns, stat.st_size)  # every submit checks it: read a file once


@lru_cache(maxsize=4)
def _read_once(path: Path, mtime_ns: int, size: int) -> bytes:
    return read_ca_bundle(path)


def read_ca_bundle(path: Path) -> bytes:
    """The certificates of the PEM bundle at ``path`` (comments dropped), checked to load in OpenSSL."""
    fix = "Fix: point settings.ca_bundle (or AMLTRAIN_CA_BUNDLE) at a PEM bundle, or set it to '' to inject none."
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EnvironmentException(f"The CA bundle {path} (settings.ca_bundle) does not exist. {fix}") from None
    except OSError as error:
        raise EnvironmentException(f"The CA bundle {path} cannot be read: {error}. {fix}") from error
    certificates = _CERTIFICATE.findall(data)
    if not certificates:
        raise EnvironmentException(f"The CA bundle {path} holds no PEM certificate (BEGIN CERTIFICATE). {fix}")
    pem = b"\n".join(certificates) + b"\n"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError) as error:
        raise EnvironmentException(f"The CA bundle {path} is not valid PEM: {error}. {fix}") from error
    return pem


def install_environment(bundle_path: str) -> dict[str, str]:
    """Variables that make pip, requests, conda and OpenSSL-based tools trust ``bundle_path``."""
    return {
        "PIP_CERT": bundle_path,
        "REQUESTS_CA_BUNDLE": bundle_path,
        "SSL_CERT_FILE": bundle_path,
        "CURL_CA_BUNDLE": bundle_path,
        "CONDA_SSL_VERIFY": bundle_path,
    }

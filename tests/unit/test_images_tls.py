from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from jupyter_amltrain.engine.images.tls import ca_bundle_to_inject, read_ca_bundle
from jupyter_amltrain.engine.settings import HOST_CA_BUNDLE
from jupyter_amltrain.exceptions import EnvironmentException

needs_host_bundle = pytest.mark.skipif(not Path(HOST_CA_BUNDLE).is_file(), reason="host has no CA bundle")


def _pem() -> bytes:
    """One real CA certificate, the first of the host's bundle."""
    data = Path(HOST_CA_BUNDLE).read_bytes()
    end = b"-----END CERTIFICATE-----"
    start = data.index(b"-----BEGIN CERTIFICATE-----")
    return data[start : data.index(end, start) + len(end)] + b"\n"


def _settings(path: str, inject: bool = True) -> SimpleNamespace:
    return SimpleNamespace(ca_bundle=path, inject_ca_bundle=inject)


@needs_host_bundle
def test_bundle_certificates_are_returned_without_comments(tmp_path: Path) -> None:
    pem = _pem()
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(b"# corporate proxy CA\n" + pem + b"\n# another comment\n")
    assert ca_bundle_to_inject(_settings(str(bundle))) == pem


def test_nothing_is_injected_when_off_or_empty(tmp_path: Path) -> None:
    assert ca_bundle_to_inject(_settings("")) is None
    assert ca_bundle_to_inject(_settings(str(tmp_path / "missing.crt"), inject=False)) is None


def test_missing_bundle_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "missing.crt"
    with pytest.raises(EnvironmentException) as raised:
        ca_bundle_to_inject(_settings(str(missing)))
    assert str(missing) in str(raised.value) and "does not exist" in str(raised.value)
    assert "Fix:" in str(raised.value) and "AMLTRAIN_CA_BUNDLE" in str(raised.value)


@pytest.mark.parametrize(
    "content",
    [b"not a certificate\n", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
)
def test_non_pem_bundle_is_refused(tmp_path: Path, content: bytes) -> None:
    bundle = tmp_path / "bad.crt"
    bundle.write_bytes(content)
    with pytest.raises(EnvironmentException, match="Fix:"):
        read_ca_bundle(bundle)


@needs_host_bundle
def test_host_bundle_loads() -> None:
    assert read_ca_bundle(Path(HOST_CA_BUNDLE)).count(b"BEGIN CERTIFICATE") > 10

from __future__ import annotations

import pytest

from jupyter_amltrain.engine.images.conda_pypi import conda_to_pip, map_conda_packages, parse_conda_spec
from jupyter_amltrain.exceptions import EnvironmentException


@pytest.mark.parametrize(
    ("conda", "pip"),
    [
        ("numpy", "numpy"),
        ("numpy=1.24", "numpy==1.24.*"),
        ("numpy=1.24.1", "numpy==1.24.1.*"),
        ("numpy==1.24.1", "numpy==1.24.1"),
        ("numpy>=1.22", "numpy>=1.22"),
        ("numpy>=1.22,<1.25", "numpy>=1.22,<1.25"),
        ("numpy >=1.22, <1.25", "numpy>=1.22,<1.25"),
        ("numpy != 1.23.0", "numpy!=1.23.0"),
        ("numpy=1.24=py311h64a7726_0", "numpy==1.24.*"),
        ("numpy==1.24.1=py311h64a7726_0", "numpy==1.24.1"),
        ("numpy 1.24.1 py311h64a7726_0", "numpy==1.24.1"),
        ("numpy 1.24.*", "numpy==1.24.*"),
        ("numpy=1.24.*", "numpy==1.24.*"),
        ("numpy *", "numpy"),
        ("numpy=*=py311h64a7726_0", "numpy"),
        ("conda-forge::numpy=1.24", "numpy==1.24.*"),
        ("numpy[version='>=1.22,<2']", "numpy>=1.22,<2"),
        ("pytorch", "torch"),
        ("pytorch::pytorch=2.1", "torch==2.1.*"),
        ("py-xgboost=1.7", "xgboost==1.7.*"),
        ("tensorflow-gpu==2.12.0", "tensorflow==2.12.0"),
        ("matplotlib-base>=3.5", "matplotlib>=3.5"),
        ("opencv", "opencv-python"),
        ("py-opencv=4.8", "opencv-python==4.8.*"),
        ("pillow", "pillow"),
        ("pyyaml", "pyyaml"),
        ("lightgbm=3.3", "lightgbm==3.3.*"),
        ("pandas", "pandas"),
        ("scikit-learn=1.3", "scikit-learn==1.3.*"),
        ("msgpack-python", "msgpack"),
        ("python-graphviz", "graphviz"),
    ],
)
def test_conda_spec_becomes_pip_requirement(conda: str, pip: str) -> None:
    assert conda_to_pip([conda]) == [pip]


@pytest.mark.parametrize("tooling", ["python=3.8", "pip", "setuptools=68", "wheel", "python==3.10.4"])
def test_interpreter_and_packaging_tools_are_not_requirements(tooling: str) -> None:
    assert conda_to_pip([tooling]) == []


@pytest.mark.parametrize(
    ("specs", "python"),
    [(["python=3.8"], "3.8"), (["python==3.10.4"], "3.10.4"), (["python>=3.8"], None), (["numpy"], None),
     (["python 3.9.*"], "3.9")],
)
def test_python_version_is_reported_separately(specs: list[str], python: str | None) -> None:
    assert map_conda_packages(specs).python == python


@pytest.mark.parametrize(
    "bundled", ["libgcc-ng", "_libgcc_mutex=0.1", "openssl=3.0", "mkl", "mkl-service", "blas=*=mkl"]
)
def test_native_libraries_that_wheels_bundle_are_skipped_and_reported(bundled: str) -> None:
    mapping = map_conda_packages([bundled, "numpy"])
    assert mapping.requirements == ["numpy"]
    assert mapping.skipped == [bundled]
    mapping.check()


@pytest.mark.parametrize(
    ("conda_only", "fix_mentions"),
    [
        ("cudatoolkit=11.3", "torch bundle their CUDA"),
        ("cudnn", "nvidia-"),
        ("nccl", "nvidia-"),
        ("pytorch-cuda=11.8", "torch bundle"),
        ("openmpi", "apt-get install -y openmpi-bin"),
        ("r-base", "apt-get install -y r-base"),
        ("r-ggplot2", "R packages"),
        ("cpuonly", "download.pytorch.org/whl/cpu"),
    ],
)
def test_conda_only_package_is_refused_with_its_fix(conda_only: str, fix_mentions: str) -> None:
    with pytest.raises(EnvironmentException) as raised:
        conda_to_pip(["numpy", conda_only])
    message = str(raised.value)
    name = parse_conda_spec(conda_only)[0]
    assert f"conda package '{name}' has no PyPI equivalent" in message
    assert fix_mentions in message
    assert "base image that has conda" in message


def test_every_conda_only_package_is_named_at_once() -> None:
    with pytest.raises(EnvironmentException) as raised:
        conda_to_pip(["cudatoolkit=11.3", "numpy", "cudnn"])
    assert "'cudatoolkit'" in str(raised.value) and "'cudnn'" in str(raised.value)


def test_either_or_version_is_refused() -> None:
    with pytest.raises(EnvironmentException, match="'\\|'"):
        conda_to_pip(["numpy 1.22|1.24"])


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [("conda-forge/linux-64::numpy==1.24.1=py_0", ("numpy", "==1.24.1")), ("numpy", ("numpy", "")),
     ("scikit-learn >= 1.0", ("scikit-learn", ">=1.0"))],
)
def test_parse_conda_spec(spec: str, parsed: tuple[str, str]) -> None:
    assert parse_conda_spec(spec) == parsed

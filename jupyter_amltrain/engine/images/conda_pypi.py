"""Conda package specs as pip requirements, for images and hosts without conda.

v1 environments list dependencies as conda packages (``CondaDependencies``). Where the image has no conda we
install them from PyPI instead, so each spec is translated: conda's version syntax into PEP 440, conda names
into PyPI names. Three kinds of conda packages get no requirement:

* the interpreter and packaging tools (``python``, ``pip``, ``setuptools``, ``wheel``): the environment's
  interpreter comes from the image, and venv brings its own pip;
* native libraries that conda ships separately but PyPI wheels bundle (``libgcc-ng``, ``openssl``, BLAS
  variants such as ``mkl``/``mkl-service``...): they appear in every ``conda env export`` and pip needs
  nothing for them, so they are skipped and reported, not refused;
* conda-only packages that provide something PyPI cannot (``cudatoolkit``, ``cudnn``, ``openmpi``, R...):
  refused with an :class:`EnvironmentException` that says what to do instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from jupyter_amltrain.exceptions import EnvironmentException

# Conda name -> PyPI name, where they differ. Keys are normalised (lower case, "_" -> "-").
PYPI_NAMES: dict[str, str] = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-xgboost-gpu": "xgboost",
    "tensorflow-gpu": "tensorflow",
    "keras-gpu": "keras",
    "matplotlib-base": "matplotlib",
    "opencv": "opencv-python",
    "py-opencv": "opencv-python",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "python-graphviz": "graphviz",
    "pyqt": "PyQt5",
    "py-lightgbm": "lightgbm",
}

TOOLING = frozenset({"python", "pip", "setuptools", "wheel"})

# Native libraries and build variants that PyPI wheels bundle or do not need ("-libgcc-mutex" is
# "_libgcc_mutex" normalised).
BUNDLED_IN_WHEELS = frozenset(
    {
        "-libgcc-mutex", "-openmp-mutex", "libgcc-ng", "libgcc", "libstdcxx-ng", "libstdcxx", "libgfortran-ng",
        "libgfortran5", "libgomp", "ld-impl-linux-64", "libffi", "openssl", "ca-certificates", "zlib", "libzlib",
        "xz", "bzip2", "readline", "ncurses", "sqlite", "tk", "libuuid", "libnsl", "libsqlite", "libxcrypt",
        "libedit", "expat", "libexpat", "liblzma", "libmpdec", "icu", "libiconv", "libxml2", "jpeg",
        "libjpeg-turbo", "libpng", "libtiff", "libwebp", "libwebp-base", "freetype", "lcms2", "openjpeg",
        "zstd", "lz4-c", "snappy", "libprotobuf", "zeromq", "libsodium", "libarrow", "arrow-cpp", "tbb",
        "mkl", "mkl-service", "mkl-fft", "mkl-random", "mkl-include", "intel-openmp", "blas", "libblas",
        "libcblas", "liblapack", "liblapacke", "openblas", "libopenblas", "nomkl", "llvm-openmp",
    }
)

_CUDA_FIX = (
    "remove it: the PyPI wheels of torch bundle their CUDA libraries (tensorflow: use pip 'tensorflow[and-cuda]'; "
    "other CUDA libraries come as pip packages 'nvidia-*', e.g. 'nvidia-cudnn-cu12')"
)
_SYSTEM_FIX = "install it in a Dockerfile (e.g. 'RUN apt-get update && apt-get install -y {apt}')"

# Conda-only packages with no PyPI equivalent -> what to do instead.
CONDA_ONLY: dict[str, str] = {
    "cudatoolkit": _CUDA_FIX,
    "cudatoolkit-dev": _CUDA_FIX,
    "cuda-toolkit": _CUDA_FIX,
    "cuda-runtime": _CUDA_FIX,
    "cuda-cudart": _CUDA_FIX,
    "cuda-nvcc": _CUDA_FIX,
    "pytorch-cuda": _CUDA_FIX,
    "cudnn": _CUDA_FIX,
    "nccl": _CUDA_FIX,
    "cpuonly": "remove it; for CPU-only torch wheels add the pip option "
    "'--extra-index-url https://download.pytorch.org/whl/cpu'",
    "openmpi": _SYSTEM_FIX.format(apt="openmpi-bin libopenmpi-dev") + "; the Python bindings are pip 'mpi4py'",
    "mpich": _SYSTEM_FIX.format(apt="mpich") + "; the Python bindings are pip 'mpi4py'",
    "graphviz": _SYSTEM_FIX.format(apt="graphviz") + "; the Python bindings are pip 'graphviz'",
    "ffmpeg": _SYSTEM_FIX.format(apt="ffmpeg") + ", or use pip 'imageio-ffmpeg'",
    "git": _SYSTEM_FIX.format(apt="git"),
    "gcc": _SYSTEM_FIX.format(apt="gcc"),
    "gxx": _SYSTEM_FIX.format(apt="g++"),
    "gxx-linux-64": _SYSTEM_FIX.format(apt="g++"),
    "gcc-linux-64": _SYSTEM_FIX.format(apt="gcc"),
    "make": _SYSTEM_FIX.format(apt="make"),
    "hdf5": _SYSTEM_FIX.format(apt="libhdf5-dev") + "; pip 'h5py' wheels bundle it",
    "nodejs": _SYSTEM_FIX.format(apt="nodejs"),
    "r-base": _SYSTEM_FIX.format(apt="r-base"),
}

_OPERATORS = ("==", ">=", "<=", "!=", "~=", ">", "<", "=")
_NAME = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$")
_BRACKET = re.compile(r"^([A-Za-z0-9_.\-]+)\s*\[(.*)\]\s*$")
_BRACKET_VERSION = re.compile(r"""version\s*=\s*['"]?([^'",\]]+(?:,[^'",\]]+)*)['"]?""")


@dataclass(frozen=True)
class CondaMapping:
    """What the conda specs become for pip, and what was left out on purpose."""

    requirements: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    python: str | None = None
    refused: list[str] = field(default_factory=list)

    def refusal(self) -> str | None:
        """Why pip cannot install these specs, naming each refused one with its fix; None when it can."""
        if not self.refused:
            return None
        return (
            "The image (or host) has no conda, so conda packages are installed from PyPI, and these cannot be:\n  "
            + "\n  ".join(self.refused)
            + "\nOr use a base image that has conda, which installs them as conda packages."
        )

    def check(self) -> None:
        refusal = self.refusal()
        if refusal:
            raise EnvironmentException(refusal)


def normalize_name(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def conda_to_pip(specs: Sequence[str]) -> list[str]:
    """PEP 508 requirements for ``specs``; raise EnvironmentException naming every conda-only package."""
    mapping = map_conda_packages(specs)
    mapping.check()
    return mapping.requirements


def map_conda_packages(specs: Sequence[str]) -> CondaMapping:
    """Translate every spec; refusals are collected (see :meth:`CondaMapping.check`), not raised."""
    requirements: list[str] = []
    skipped: list[str] = []
    python: str | None = None
    refused: list[str] = []
    for raw in specs:
        name, version = parse_conda_spec(raw)
        key = normalize_name(name)
        if key == "python":
            python = _pinned_version(version) or python
            continue
        if key in TOOLING:
            continue
        if key in BUNDLED_IN_WHEELS:
            skipped.append(raw)
            continue
        if key in CONDA_ONLY or key.startswith("r-"):
            fix = CONDA_ONLY.get(key, "install R packages in a Dockerfile or use a base image with conda")
            refused.append(f"conda package '{name}' has no PyPI equivalent. Fix: {fix}")
            continue
        if "|" in version:
            refused.append(f"conda package spec '{raw}' uses '|' (either/or), which pip cannot express. "
                           "Fix: keep one range, e.g. 'numpy>=1.22,<1.25'")
            continue
        requirements.append(PYPI_NAMES.get(key, name) + _pip_version(version))
    return CondaMapping(requirements, skipped, python, refused)


def parse_conda_spec(spec: str) -> tuple[str, str]:
    """Split a conda MatchSpec into (name, conda version constraint); channel and build string are dropped."""
    text = spec.strip()
    if "::" in text:
        text = text.split("::", 1)[1]
    bracket = _BRACKET.match(text)
    if bracket:
        found = _BRACKET_VERSION.search(bracket.group(2))
        return bracket.group(1), found.group(1).replace(" ", "") if found else ""
    match = _NAME.match(text)
    if not match or not match.group(1):
        raise EnvironmentException(f"Cannot read conda package spec {spec!r}. Fix: write it as 'name', "
                                   "'name=1.2', 'name==1.2.3' or 'name>=1.2,<2'.")
    name, rest = match.group(1), match.group(2).strip()
    # Join "numpy >= 1.2 , <2" into ">=1.2,<2"; what is left after a space is a build string.
    rest = re.sub(r"(?<=[=<>!~,])\s+", "", rest)
    rest = re.sub(r"\s+(?=,)", "", rest)
    version = rest.split()[0] if rest else ""
    # "numpy=1.24=py311h_0" and "numpy==1.24.1=py311h_0": the last '=' starts the build string.
    if version.startswith("==") and "=" in version[2:]:
        version = "==" + version[2:].split("=", 1)[0]
    elif version.startswith("=") and not version.startswith("==") and "=" in version[1:]:
        version = "=" + version[1:].split("=", 1)[0]
    return name, version


def _pip_version(version: str) -> str:
    if not version or version == "*":
        return ""
    return ",".join(clause for part in version.split(",") if (clause := _pip_clause(part)))


def _pip_clause(part: str) -> str:
    for op in _OPERATORS:
        if part.startswith(op):
            value = part[len(op) :]
            break
    else:
        op, value = "", part
    star = value.endswith("*")
    value = value.rstrip("*").rstrip(".")
    if not value:  # "=*" or "*": any version
        return ""
    if op == "=":  # conda's fuzzy '=1.24' matches 1.24, 1.24.1...
        return f"=={value}.*"
    if op in ("", "==", "!="):
        return f"{op or '=='}{value}.*" if star else f"{op or '=='}{value}"
    return f"{op}{value}"  # ordering operators ignore a trailing '*' in conda too


def _pinned_version(version: str) -> str | None:
    """'3.8' for 'python=3.8' or 'python==3.8'; None for ranges, which pip cannot choose an interpreter by."""
    if version.startswith(("==", "=")) and "," not in version:
        return version.lstrip("=").rstrip("*").rstrip(".") or None
    if version and version[0].isdigit() and "," not in version:
        return version.rstrip("*").rstrip(".")
    return None

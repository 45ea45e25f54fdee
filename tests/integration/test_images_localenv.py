"""System-managed environments without Docker: a cached venv per environment hash, built with the host's pip."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from jupyter_amltrain.engine.images.localenv import ensure_local_env, local_env_path
from jupyter_amltrain.engine.images.spec import ImageSpec
from jupyter_amltrain.engine.settings import load_settings
from jupyter_amltrain.exceptions import EnvironmentException


def _marker() -> str:
    return f"# amltrain-test-{uuid.uuid4().hex[:12]}"


@pytest.mark.slow
def test_venv_is_built_once_moved_into_place_and_then_reused(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    envs.mkdir()
    spec = ImageSpec(conda_packages=("python=3.8", "libgcc-ng"), pip_packages=("six", _marker()))
    settings = load_settings(home=str(tmp_path))
    lines: list[str] = []
    python = ensure_local_env(spec, envs, log=lines.append, settings=settings)
    target = local_env_path(spec, envs)
    assert python == target / "bin" / "python"
    assert f"Materialized conda environment not found on target: {target}" in lines
    assert any("asks for Python 3.8" in line for line in lines)
    assert any("skipped" in line and "libgcc-ng" in line for line in lines)
    assert subprocess.run([python, "-c", "import six"], check=False).returncode == 0
    # Scripts written in the staging folder were pointed at the final one before the move.
    assert subprocess.run([target / "bin" / "pip", "--version"], capture_output=True, text=True,
                          check=True).stdout.count(str(target)) == 1
    assert sorted(p.name for p in envs.iterdir()) == [".locks", target.name]

    again: list[str] = []
    assert ensure_local_env(spec, envs, log=again.append, settings=settings) == python
    assert again == [f"Environment {target} found: cache hit, no build"]


@pytest.mark.slow
def test_failed_install_leaves_nothing_and_says_why(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    envs.mkdir()
    spec = ImageSpec(pip_packages=(f"amltrain-test-no-such-package-{uuid.uuid4().hex[:8]}",))
    with pytest.raises(EnvironmentException) as raised:
        ensure_local_env(spec, envs, log=lambda line: None, settings=load_settings(home=str(tmp_path)))
    assert "pip found no distribution 'amltrain-test-no-such-package-" in str(raised.value)
    assert [p.name for p in envs.iterdir()] == [".locks"]


def test_conda_only_package_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    envs.mkdir()
    with pytest.raises(EnvironmentException, match="conda package 'cudatoolkit' has no PyPI equivalent"):
        ensure_local_env(ImageSpec(conda_packages=("cudatoolkit=11.3",)), envs, log=lambda line: None,
                         settings=load_settings(home=str(tmp_path)))
    assert list(envs.iterdir()) == []


def test_user_managed_runs_with_its_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # v1's default "python" is this interpreter, not one on PATH
    for default in ("python", "python3"):
        python = ensure_local_env(ImageSpec(user_managed=True, interpreter_path=default), tmp_path,
                                  log=lambda line: None)
        assert python == Path(sys.executable)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # other names are looked up on PATH
    versioned = "python{}.{}".format(*sys.version_info[:2])
    python = ensure_local_env(ImageSpec(user_managed=True, interpreter_path=versioned), tmp_path,
                              log=lambda line: None)
    assert python == Path(sys.executable).parent / versioned
    with pytest.raises(EnvironmentException, match="interpreter_path 'no-such-python' is not found"):
        ensure_local_env(ImageSpec(user_managed=True, interpreter_path="no-such-python"), tmp_path,
                         log=lambda line: None)

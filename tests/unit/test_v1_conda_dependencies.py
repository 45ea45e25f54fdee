"""CondaDependencies: v1 defaults, edits, and errors for malformed conda files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jupyter_amltrain.core.conda_dependencies import PYTHON_DEFAULT_VERSION, CondaDependencies
from jupyter_amltrain.exceptions import UserErrorException


def test_default_has_python_and_no_azureml_packages() -> None:
    cd = CondaDependencies()
    assert cd.get_python_version() == PYTHON_DEFAULT_VERSION
    assert list(cd.pip_packages) == []
    assert cd.as_dict()["name"] == "project_environment"
    assert list(cd.conda_channels) == ["conda-forge"]


def test_create_builds_v1_structure() -> None:
    cd = CondaDependencies.create(
        pip_packages=["azureml-defaults", "scikit-learn==1.3.0"], conda_packages=["numpy"], python_version="3.10"
    )
    data = cd.as_dict()
    assert data["dependencies"] == [
        "python=3.10",
        {"pip": ["azureml-defaults", "scikit-learn==1.3.0"]},
        "numpy",
    ]
    assert cd.get_python_version() == "3.10"
    # pin_sdk_version must not rewrite packages: there is no SDK version to pin to.
    assert "azureml-defaults" in list(cd.pip_packages)


def test_create_with_index_url_adds_pip_options_not_packages() -> None:
    cd = CondaDependencies.create(pip_indexurl="https://mirror/simple", pip_packages=["torch"])
    assert list(cd.pip_options) == [
        "--index-url https://mirror/simple",
        "--extra-index-url https://pypi.python.org/simple",
    ]
    assert list(cd.pip_packages) == ["torch"]


def test_add_pip_package_replaces_same_package_and_moves_it_last() -> None:
    cd = CondaDependencies()
    cd.add_pip_package("numpy==1.0")
    cd.add_pip_package("pandas")
    cd.add_pip_package("numpy>=2")
    assert list(cd.pip_packages) == ["pandas", "numpy>=2"]
    cd.remove_pip_package("pandas")
    assert list(cd.pip_packages) == ["numpy>=2"]


def test_conda_package_python_spec_sets_version_in_place() -> None:
    cd = CondaDependencies()
    cd.add_conda_package("pandas")
    cd.add_conda_package("python=3.11")
    assert list(cd.conda_packages) == ["python=3.11", "pandas"]
    assert cd.get_python_version() == "3.11"
    # python-dateutil is not python
    cd.add_conda_package("python-dateutil")
    assert cd.get_python_version() == "3.11"


def test_python_cannot_be_removed() -> None:
    cd = CondaDependencies.create(python_version="3.10")
    with pytest.raises(UserErrorException, match="set_python_version"):
        cd.remove_conda_package("python=3.10")


def test_pip_option_and_package_are_not_interchangeable() -> None:
    cd = CondaDependencies()
    with pytest.raises(UserErrorException, match="set_pip_option"):
        cd.add_pip_package("--index-url x")
    with pytest.raises(UserErrorException, match="add_pip_package"):
        cd.set_pip_option("numpy")
    cd.set_pip_option("--index-url a")
    cd.set_pip_option("--index-url b")  # same flag replaces
    assert list(cd.pip_options) == ["--index-url b"]


def test_channels_are_unique_and_removable() -> None:
    cd = CondaDependencies()
    cd.add_channel("pytorch")
    cd.add_channel("pytorch")
    assert list(cd.conda_channels) == ["conda-forge", "pytorch"]
    cd.remove_channel("conda-forge")
    assert list(cd.conda_channels) == ["pytorch"]


def test_property_lists_are_copies() -> None:
    cd = CondaDependencies.create(pip_packages=["numpy"])
    packages = list(cd.pip_packages)
    packages.append("evil")
    assert list(cd.pip_packages) == ["numpy"]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cd = CondaDependencies.create(pip_packages=["numpy"], conda_packages=["pandas"])
    path = tmp_path / "env.yml"
    assert cd.save(str(path)) == str(path)
    loaded = CondaDependencies(str(path))
    assert loaded.as_dict() == cd.as_dict()
    assert yaml.safe_load(cd.serialize_to_string()) == cd.as_dict()


def test_save_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UserErrorException, match="file path"):
        CondaDependencies().save(str(tmp_path))


def test_save_to_file_returns_relative_path(tmp_path: Path) -> None:
    relative = CondaDependencies().save_to_file(str(tmp_path))
    assert relative == ".azureml/auto_conda_dependencies.yml"
    assert (tmp_path / relative).is_file()


def test_save_requires_python(tmp_path: Path) -> None:
    cd = CondaDependencies(_underlying_structure={"dependencies": ["numpy"]})
    with pytest.raises(UserErrorException, match="Python package is missing"):
        cd.save(str(tmp_path / "x.yml"))


def test_loads_a_real_conda_export(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text(
        "name: myenv\nchannels:\n  - defaults\ndependencies:\n  - python=3.9.7\n  - pip\n"
        "  - pip:\n      - torch==2.0.1\n      - --find-links https://x\nprefix: /opt/conda/envs/myenv\n"
    )
    cd = CondaDependencies(str(path))
    assert cd.get_python_version() == "3.9.7"
    assert list(cd.pip_packages) == ["torch==2.0.1"]
    assert list(cd.pip_options) == ["--find-links https://x"]
    assert list(cd.conda_packages) == ["python=3.9.7", "pip"]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("name: x\ndependencies:\n  - numpy\n   - bad: [\n", None, "not valid YAML"),
        ("name: x\ndependencies:\n  - numpy\n  - 3.5\n", 4, "must be a conda spec string"),
        ("name: x\npackages:\n  - numpy\n", 2, "unknown key 'packages'"),
        ("name: x\ndependencies: numpy\n", 2, "'dependencies' must be a list"),
        ("name: x\ndependencies:\n  - pip: numpy\n", 3, "'pip' must be a list"),
        ("- numpy\n- pandas\n", 1, "top level must be a mapping"),
    ],
)
def test_malformed_file_errors_name_file_line_and_shape(
    tmp_path: Path, text: str, line: int | None, problem: str
) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(text)
    with pytest.raises(UserErrorException) as raised:
        CondaDependencies(str(path))
    message = str(raised.value)
    assert str(path) in message
    assert problem in message
    assert "dependencies:" in message  # the expected structure is shown
    if line is not None:
        assert f"line {line}" in message


def test_yaml_syntax_error_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("name: x\ndependencies:\n  - numpy\n  - 'unterminated\n")
    with pytest.raises(UserErrorException, match=r"line \d+, column \d+"):
        CondaDependencies(str(path))


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    with pytest.raises(UserErrorException, match="is empty"):
        CondaDependencies(str(empty))
    with pytest.raises(UserErrorException, match="not found"):
        CondaDependencies(str(tmp_path / "nope.yml"))


def test_merge_requirements() -> None:
    assert CondaDependencies.merge_requirements(["a>1", "b", "a<3"]) == ["a>1,<3", "b"]

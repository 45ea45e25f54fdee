"""What ``pip install`` puts where: the prebuilt panel and the server extension's enabling file, and a build
from a clone that still works on a machine without Node.js."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import jupyter_amltrain

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "jupyter_amltrain" / "labextension"


def test_entry_points_name_the_server_extension_and_the_panel() -> None:
    package = json.loads((REPO / "labextension" / "package.json").read_text())
    (paths,) = jupyter_amltrain._jupyter_labextension_paths()
    assert paths["dest"] == package["name"]
    assert (REPO / "labextension" / package["jupyterlab"]["outputDir"]).resolve() == \
        Path(jupyter_amltrain.__file__).parent / paths["src"]
    (point,) = jupyter_amltrain._jupyter_server_extension_points()
    assert callable(importlib.import_module(point["module"])._load_jupyter_server_extension)
    enabled = json.loads((REPO / "jupyter-config" / "server-config" / "jupyter_amltrain.json").read_text())
    assert enabled == {"ServerApp": {"jpserver_extensions": {"jupyter_amltrain": True}}}


def test_build_without_node_warns_and_builds_the_python_package(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("hatch_build", REPO / "labextension" / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.warns(UserWarning, match="Node.js not found"):
        hook.build_labextension("wheel", "standard", path="labextension", build_cmd="build:prod", npm=["jlpm"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_wheel_ships_the_prebuilt_panel_and_enables_the_server_extension(tmp_path: Path) -> None:
    if not (BUNDLE / "static" / "style.js").is_file():
        pytest.skip("the labextension is not built (jlpm install && jlpm build:prod in labextension/)")
    pytest.importorskip("hatch_jupyter_builder")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=240)
    (wheel,) = tmp_path.glob("jupyter_amltrain-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "jupyter_amltrain-0.1.0.data/data/"
    panel = f"{data}share/jupyter/labextensions/jupyter-amltrain/"
    assert f"{data}etc/jupyter/jupyter_server_config.d/jupyter_amltrain.json" in names
    assert {f"{panel}package.json", f"{panel}install.json", f"{panel}static/style.js"} <= names
    built = json.loads(zipfile.ZipFile(wheel).read(f"{panel}package.json"))
    assert f"{panel}{built['jupyterlab']['_build']['load']}" in names  # the entry point JupyterLab loads
    assert not [name for name in names if "node_modules" in name or name.startswith("labextension/")]

"""engine/runtime runs inside job images: standard library only, Python 3.6 and newer."""

from __future__ import annotations

import ast
import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "jupyter_amltrain" / "engine" / "runtime"
MODULES = sorted(
    "jupyter_amltrain.engine.runtime" + ("" if p.stem == "__init__" else "." + p.stem)
    for p in RUNTIME.glob("*.py")
)
# Importing a runtime module runs these package __init__ files too; they must stay stdlib-only as well.
ALLOWED_OWN = {"jupyter_amltrain", "jupyter_amltrain.engine", *MODULES}


def stdlib_only_path() -> list[str]:
    # os.__file__ is in the base interpreter's stdlib even inside a virtual environment (sysconfig's
    # platstdlib would name the venv, which has no lib-dynload).
    stdlib = os.path.dirname(os.__file__)
    return [str(REPO), stdlib, os.path.join(stdlib, "lib-dynload")]


def test_runtime_modules_import_only_the_standard_library() -> None:
    assert len(MODULES) >= 5
    code = textwrap.dedent(f"""
        import importlib, json, sys
        sys.path[:] = {stdlib_only_path()!r}
        for name in {MODULES!r}:
            importlib.import_module(name)
        print(json.dumps(sorted(sys.modules)))
    """)
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ.get("PATH", "")})
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    foreign = [m for m in loaded if m.split(".")[0] not in sys.stdlib_module_names
               and m != "__main__" and m not in ALLOWED_OWN]
    assert foreign == []
    assert set(MODULES) <= set(loaded)


def test_runtime_sources_import_only_stdlib_or_runtime_and_leave_annotations_unevaluated_free() -> None:
    for path in sorted(RUNTIME.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                # Python 3.6 has no `annotations` future: a SyntaxError before the job's first line.
                assert all(a.name != "annotations" for a in node.names), f"{path.name}: no annotations future (3.6)"
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                own = name.startswith("jupyter_amltrain.engine.runtime")
                assert own or name.split(".")[0] in sys.stdlib_module_names, f"{path.name} imports {name}"


def test_job_library_needs_nothing_newer_than_python_36(tmp_path: Path) -> None:
    """vermin reads every file the job library holds (the runtime and the package stubs) and names the oldest
    Python that runs it, annotations included: they are evaluated on 3.6."""
    from jupyter_amltrain.engine.runs.job_library import job_library

    library = job_library(tmp_path)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "vermin"), "--no-tips", "--violations", "--eval-annotations", "-t=3.6-",
         str(library)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Minimum required versions: 3.6" in proc.stdout or "Minimum required versions: ~" in proc.stdout


def test_job_library_gives_v1_import_paths_with_the_standard_library_alone(tmp_path: Path) -> None:
    from jupyter_amltrain.engine.runs.job_library import job_library

    library = job_library(tmp_path / "home")
    assert job_library(tmp_path / "home") == library  # made once
    stdlib = os.path.dirname(os.__file__)
    tracking = tmp_path / "tracking"
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:] = [{str(library)!r}, {stdlib!r}, {os.path.join(stdlib, "lib-dynload")!r}]
        from jupyter_amltrain.core import Run
        from jupyter_amltrain.core.run import Run as Same
        assert Run is Same
        run = Run.get_context()
        run.log("loss", 0.5)
        run.tag("k", "v")
        run.complete()
        print(json.dumps({{"run": str(run), "modules": sorted(sys.modules)}}))
    """)
    env = {"AZUREML_RUN_ID": "r-1", "AMLTRAIN_TRACKING_DIR": str(tracking), "AZUREML_ARM_PROJECT_NAME": "exp",
           "PATH": os.environ.get("PATH", "")}
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["run"].startswith("Run(Experiment: exp,\nId: r-1,")
    foreign = [m for m in report["modules"] if m.split(".")[0] not in sys.stdlib_module_names
               and m != "__main__" and not m.startswith("jupyter_amltrain")]
    assert foreign == []
    events = [json.loads(line) for line in (tracking / "events.jsonl").read_text().splitlines()]
    assert [e.get("name") or e.get("key") for e in events][:1] == ["loss"]


def _pyenv_python(version: str) -> str | None:
    """A real interpreter of ``version`` ('3.6') on this machine (pyenv's builds), or None."""
    pyenv = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    for candidate in [*pyenv, shutil.which(f"python{version}")]:
        if not candidate:
            continue
        # A pyenv shim can exist without a usable interpreter behind it; ask it.
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, timeout=60)
        if probe.stdout.strip() == version:
            return candidate
    return None


@pytest.mark.parametrize("version", ["3.6", "3.7", "3.8"])
def test_job_library_works_on_real_old_pythons(tmp_path: Path, version: str) -> None:
    """The oldest Pythons a user's image may hold, where this machine has them (Debian's archive here offers
    3.9 and newer: tests/integration/test_user_images.py runs those in containers)."""
    from jupyter_amltrain.engine.runs.job_library import job_library

    python = _pyenv_python(version)
    if python is None:
        pytest.skip(f"no Python {version} interpreter on this machine")
    library = job_library(tmp_path / "home")
    code = textwrap.dedent(f"""
        import json, subprocess, sys
        sys.path[:0] = [{str(library)!r}]
        from jupyter_amltrain.core import Run
        run = Run.get_context()
        run.log("m", float("nan"), step=1)
        run.log_row("row", x=1)
        run.log_table("t", {{"a": [1, 2]}})
        run.tag("k")
        run.upload_file("outputs/copy.txt", {str(tmp_path / "src.txt")!r})
        launcher = [sys.executable, "-m", "jupyter_amltrain.engine.runtime.launch",
                    "--log", {str(tmp_path / "log.txt")!r}, "--stderr-tail", {str(tmp_path / "tail.txt")!r},
                    "--exit-file", {str(tmp_path / "exit.json")!r}, "--", sys.executable, "-c", "print('hi')"]
        import os
        code = subprocess.call(launcher, env=dict(os.environ, PYTHONPATH={str(library)!r}))
        print(json.dumps({{"version": "%d.%d" % sys.version_info[:2], "launcher": code}}))
    """)
    (tmp_path / "src.txt").write_text("data")
    env = {"AZUREML_RUN_ID": "r-1", "AMLTRAIN_TRACKING_DIR": str(tmp_path / "tracking"),
           "AMLTRAIN_RUN_WORKDIR": str(tmp_path / "wd"), "PATH": os.environ.get("PATH", "")}
    # cwd: `python -m` looks in the current folder first, which must not be this checkout.
    proc = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"version": version, "launcher": 0}
    kinds = [json.loads(line).get("kind") for line in (tmp_path / "tracking" / "events.jsonl").read_text().splitlines()]
    assert kinds[:4] == ["scalar", "row", "table", None]
    assert (tmp_path / "wd" / "outputs" / "copy.txt").read_text() == "data"
    assert (tmp_path / "log.txt").read_text() == "hi\n"
    assert json.loads((tmp_path / "exit.json").read_text())["exit_code"] == 0

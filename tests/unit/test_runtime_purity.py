"""engine/runtime runs inside job images: standard library only, Python 3.8 syntax."""

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


def test_runtime_sources_are_python_38_and_import_only_stdlib_or_runtime() -> None:
    for path in sorted(RUNTIME.glob("*.py")):
        source = path.read_text()
        tree = ast.parse(source, filename=str(path), feature_version=(3, 8))
        future = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
        docstring_only = all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in tree.body)
        assert docstring_only or any(a.name == "annotations" for n in future for a in n.names), (
            f"{path.name}: needs 'from __future__ import annotations' so annotations are not evaluated on 3.8"
        )
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Match), f"{path.name}: match needs Python 3.10"
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                own = name.startswith("jupyter_amltrain.engine.runtime")
                assert own or name.split(".")[0] in sys.stdlib_module_names, f"{path.name} imports {name}"


def _python38() -> str | None:
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python")))
    for candidate in [*pyenv, shutil.which("python3.8")]:
        if not candidate:
            continue
        # A pyenv shim can exist without a usable interpreter behind it; ask it.
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 8))"],
                               capture_output=True, text=True, timeout=60)
        if probe.stdout.strip() == "True":
            return candidate
    return None


def test_runtime_works_on_a_real_python_38(tmp_path: Path) -> None:
    python = _python38()
    if python is None:
        pytest.skip("no Python 3.8 interpreter on this machine")
    code = textwrap.dedent(f"""
        import json, subprocess, sys
        sys.path[:0] = [{str(REPO)!r}]
        from jupyter_amltrain.engine.runtime.context import JobContext
        ctx = JobContext("r1", {str(tmp_path / "tracking")!r}, {str(tmp_path / "wd")!r})
        ctx.log("m", float("nan"), step=1)
        ctx.log_row("row", x=1)
        ctx.log_table("t", {{"a": [1, 2]}})
        ctx.tag("k")
        launcher = [sys.executable, "-m", "jupyter_amltrain.engine.runtime.launch",
                    "--log", {str(tmp_path / "log.txt")!r}, "--stderr-tail", {str(tmp_path / "tail.txt")!r},
                    "--exit-file", {str(tmp_path / "exit.json")!r}, "--", sys.executable, "-c", "print('hi')"]
        import os
        code = subprocess.call(launcher, env=dict(os.environ, PYTHONPATH={str(REPO)!r}))
        print(json.dumps({{"version": list(sys.version_info[:2]), "launcher": code}}))
    """)
    proc = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"version": [3, 8], "launcher": 0}
    kinds = [json.loads(line).get("kind") for line in (tmp_path / "tracking" / "events.jsonl").read_text().splitlines()]
    assert kinds == ["scalar", "row", "table", None]
    assert (tmp_path / "log.txt").read_text() == "hi\n"
    assert json.loads((tmp_path / "exit.json").read_text())["exit_code"] == 0

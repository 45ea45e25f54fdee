"""The pure parts of running in users' images: the probe's Python code on real old interpreters, the choice of
interpreter candidates, who a container runs as, and the hand-over of run folders (real chown, as root)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from test_runtime_purity import _pyenv_python

from jupyter_amltrain.engine.images.probe import MARKER, PROBE_CODE, ImageFacts, interpreter_candidates
from jupyter_amltrain.engine.runs.ownership import container_identity, hand_run_folders, reclaim_run_folders
from jupyter_amltrain.engine.store.layout import RunLayout

FACTS = ImageFacts(
    image_id="sha256:abc", interpreter="python3", executable="/usr/bin/python3", python_version="3.11.2",
    user="trainer", uid=1000, gid=1000, home="/home/trainer", home_writable=True, path="/usr/bin:/bin",
    entrypoint=[], entrypoint_mode="none", has_shell=True, has_venv=False, has_pip=False, has_distutils=True,
    architecture="amd64", note="python3 (no usable python on the image's PATH: not found)",
)


@pytest.mark.parametrize("version", ["2.7", "3.6", "3.7"])
def test_the_probe_answers_on_every_python_it_may_meet(version: str) -> None:
    """Python 2 must answer with its version (so the error can say 'Python 2.7'), not with a SyntaxError."""
    python = _pyenv_python(version)
    if python is None:
        pytest.skip(f"no Python {version} interpreter on this machine")
    out = subprocess.run([python, "-c", PROBE_CODE], capture_output=True, text=True, timeout=60, check=True).stdout
    report = json.loads(out.split(MARKER, 1)[1])
    assert ".".join(map(str, report["version"][:2])) == version
    assert report["uid"] == os.getuid() and report["shell"] is True
    assert set(report) >= {"executable", "home", "home_writable", "venv", "pip", "distutils"}


def test_v1_default_interpreter_means_python_else_python3_and_anything_else_is_exact() -> None:
    assert interpreter_candidates("python") == ("python", "python3")
    assert interpreter_candidates(None) == ("python", "python3")
    assert interpreter_candidates("/opt/conda/bin/python") == ("/opt/conda/bin/python",)
    assert interpreter_candidates("python3") == ("python3",)


def test_root_submitter_runs_a_non_root_image_as_its_user_and_hands_it_the_folders() -> None:
    identity = container_identity(FACTS, submitter=(0, 0))
    assert identity.user is None and identity.hand_to == (1000, 1000) and identity.environment == {}
    assert identity.entrypoint is None
    assert "runs as the image's user trainer (uid 1000), HOME /home/trainer" in identity.notes


def test_a_user_whose_uid_is_the_images_needs_nothing_and_another_user_runs_as_themselves() -> None:
    same = container_identity(FACTS, submitter=(1000, 1000))
    assert same.user is None and same.hand_to is None
    other = container_identity(FACTS, submitter=(1001, 1001))
    assert other.user == "1001:1001" and other.hand_to is None and other.environment == {"HOME": "/tmp"}
    assert "instead of the image's user trainer (uid 1000)" in other.notes[-1]


def test_an_unwritable_home_becomes_tmp_and_user_option_wins() -> None:
    no_home = container_identity(replace(FACTS, home="/", home_writable=False), submitter=(0, 0))
    assert no_home.environment == {"HOME": "/tmp"}
    chosen = container_identity(FACTS, submitter=(0, 0), user_option="2000:2000")
    assert chosen.user == "2000:2000" and chosen.hand_to == (2000, 2000)


def test_entrypoint_rule() -> None:
    kept = container_identity(replace(FACTS, entrypoint=["/entry.sh"], entrypoint_mode="kept"), submitter=(0, 0))
    assert kept.entrypoint is None  # the image's own runs, then hands over
    bypassed = replace(FACTS, entrypoint=["/bin/echo", "x"], entrypoint_mode="bypassed")
    assert container_identity(bypassed, submitter=(0, 0)).entrypoint == [""]  # the engine API's "none"
    assert container_identity(FACTS, submitter=(0, 0), entrypoint_option="").entrypoint == [""]
    assert container_identity(FACTS, submitter=(0, 0), entrypoint_option="/x.sh").entrypoint == ["/x.sh"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_run_folders_are_handed_over_and_everything_comes_back_without_following_links(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path / "run").ensure()
    (layout.wd / "outputs").mkdir(parents=True)
    (layout.wd / "src").mkdir()
    snapshot_file = layout.wd / "src" / "train.py"  # a hard link into the snapshot store: stays root's
    snapshot_file.write_text("print()")
    outside = tmp_path / "host-file"
    outside.write_text("secret")
    hand_run_folders(layout, 1000, 1000)
    assert (layout.wd / "outputs").stat().st_uid == 1000 and layout.tracking.stat().st_uid == 1000
    assert snapshot_file.stat().st_uid == 0
    # what the job (uid 1000) leaves
    made = layout.wd / "outputs" / "model.txt"
    made.write_text("w")
    os.chown(made, 1000, 1000)
    link = layout.wd / "outputs" / "leak"
    link.symlink_to(outside)
    os.lchown(link, 1000, 1000)
    os.chown(outside, 1000, 1000)  # a host file that happens to belong to uid 1000
    assert reclaim_run_folders(layout) >= 5
    for path in (layout.wd, layout.wd / "outputs", made, layout.tracking):
        assert path.stat().st_uid == 0, path
    assert link.lstat().st_uid == 0 and outside.stat().st_uid == 1000  # the link, never its target
    assert reclaim_run_folders(layout) == 0  # once

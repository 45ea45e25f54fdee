"""`amltrain doctor` against the real engine: what it finds here, and the fix it gives for what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from jupyter_amltrain.cli.main import main
from jupyter_amltrain.engine.doctor import ERROR, OK, SKIPPED, WARNING, healthy, run_checks
from jupyter_amltrain.engine.settings import load_settings


@pytest.mark.docker
@pytest.mark.usefixtures("base_image")
def test_doctor_reports_each_part_of_a_working_machine(amltrain_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AMLTRAIN_DECLARED_GPUS", "0,1")
    results = {r.name: r for r in run_checks()}
    assert list(results) == ["Docker engine", "GPUs", "NVIDIA container runtime", "Disk space", "Default image"]
    assert results["Docker engine"].status == OK and "answering" in results["Docker engine"].detail
    assert results["Default image"].status == OK and "amltrain/base:bookworm present" in results["Default image"].detail
    assert results["GPUs"].status == WARNING
    assert "declared GPU inventory in use: 0,1 (no real GPUs)" in results["GPUs"].detail
    assert results["NVIDIA container runtime"].status == OK  # not needed without real GPUs
    assert results["Disk space"].status in (OK, WARNING) and str(amltrain_home.parent) in results["Disk space"].detail
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "[     ok] Docker engine" in out and out.rstrip().endswith("Ready.")
    assert main(["doctor", "--json"]) == 0
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} == set(results)


def test_doctor_names_the_fix_when_the_engine_is_unreachable(amltrain_home: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    results = run_checks(load_settings(), docker_client_factory=lambda: docker.DockerClient(
        base_url=f"unix://{amltrain_home}/no-docker.sock", timeout=5))
    by_name = {r.name: r for r in results}
    assert by_name["Docker engine"].status == ERROR and "systemctl start docker" in by_name["Docker engine"].fix
    assert by_name["Default image"].status == SKIPPED and by_name["NVIDIA container runtime"].status == SKIPPED
    assert not healthy(results)


@pytest.mark.docker
def test_doctor_says_how_to_get_the_default_image(amltrain_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMLTRAIN_BASE_IMAGE", "amltrain/never-built:nothing")
    image = {r.name: r for r in run_checks()}["Default image"]
    assert image.status == ERROR and "amltrain/never-built:nothing missing" in image.detail
    assert "amltrain prepare" in image.fix


def test_a_declared_inventory_with_bad_ids_is_an_error_with_its_fix(amltrain_home: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMLTRAIN_DECLARED_GPUS", "zero,one")
    gpus = {r.name: r for r in run_checks(docker_client_factory=lambda: docker.DockerClient(
        base_url=f"unix://{amltrain_home}/no-docker.sock", timeout=5))}["GPUs"]
    assert gpus.status == ERROR and "AMLTRAIN_DECLARED_GPUS" in gpus.fix and "not a GPU list" in gpus.detail

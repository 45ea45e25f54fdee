"""The machine a set of figures came from: without it a figure cannot be compared with anything."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _docker() -> dict[str, Any]:
    try:
        import docker

        info = docker.from_env().info()
    except Exception as exc:  # the figures that need Docker say so themselves
        return {"error": str(exc)}
    return {"server": info.get("ServerVersion"), "storage_driver": info.get("Driver"),
            "cgroup": info.get("CgroupVersion"), "runtimes": sorted(info.get("Runtimes") or {})}


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _gpus() -> list[str]:
    from jupyter_amltrain.engine.compute.gpus import detect_gpus

    return [gpu.name for gpu in detect_gpus()]


def machine_info() -> dict[str, Any]:
    return {
        "os": _os_name(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "docker": _docker(),
        "gpus": _gpus(),
        "commit": _git_commit(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews every figure
    }


def describe(info: dict[str, Any]) -> str:
    docker = info.get("docker") or {}
    engine = f"Docker {docker.get('server')} {docker.get('storage_driver')}" if docker.get("server") else "no Docker"
    gpus = ", ".join(info.get("gpus") or []) or "no GPU"
    return (f"{info.get('cpus')} cores ({info.get('cpu_model')}), {info.get('memory_gib')} GiB, {info.get('os')}, "
            f"kernel {info.get('kernel')}, {engine}, Python {info.get('python')}, {gpus}, commit {info.get('commit')}, "
            f"load average {info.get('load_average_1m')} at the start")

"""Environment cache hit: resolving an unchanged environment to its image, against ``docker build`` of the
same Dockerfile and context with every layer cached. Target: at most 0.05x.

The environment is v1's default shape: system-managed Python dependencies on a base image, which needs a
build (``/azureml-envs/azureml_<hash>``). It is built once, then resolved again as the agent does for each run
(its warm Docker client, then ``ImageBuilder.ensure``). The baseline builds the very context our builder
rendered (Dockerfile, setup script, CA bundle), tagged separately, after one unmeasured warm-up build.
Both images carry ``amltrain.bench=<session>`` and are removed afterwards.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from bench.measure import Options, Result, Target, main_for, median, stopwatch, timed
from bench.sandbox import BASE_IMAGE, BENCH_LABEL, SESSION, isolated_workspace, remove_labelled

BASELINE_TAG = f"amltrain-bench/env-cache-baseline:{SESSION}"
SESSION_NOTE = "# amltrain bench session "
STALE_SECONDS = 3600  # older than any benchmark run: left behind when the Docker engine went away mid-run


def _environment() -> Any:
    from jupyter_amltrain.core import Environment

    env = Environment("bench-env-cache")
    env.docker.base_image = BASE_IMAGE
    env.python.user_managed_dependencies = False  # v1's default: the image gets the environment's own Python
    return env


def _spec(env: Any) -> Any:
    from dataclasses import replace

    from jupyter_amltrain.core.environment import image_spec

    # The image must be this session's own, so that removing it afterwards removes nothing anyone else
    # built or uses: a comment line in the requirements (pip ignores it) changes the hash and nothing else.
    return replace(image_spec(env), pip_options=(f"{SESSION_NOTE}{SESSION}",))


def _resolve(spec: Any) -> tuple[Any, float]:
    """What the agent does for a run (its warm Docker client, then ``ensure``); also returns the seconds the
    client took (the first round opens it, as the agent does once in its life)."""
    from jupyter_amltrain.engine.docker_engine import warm_docker_client
    from jupyter_amltrain.engine.images.builder import ImageBuilder
    from jupyter_amltrain.engine.settings import load_settings

    with stopwatch() as connect:
        client = warm_docker_client()
    return ImageBuilder(client, load_settings()).ensure(spec, password=None, log=lambda _: None), connect()


def _write_context(spec: Any, folder: Path) -> None:
    from jupyter_amltrain.engine.images.dockerfile import render_build_context
    from jupyter_amltrain.engine.images.tls import ca_bundle_to_inject
    from jupyter_amltrain.engine.settings import load_settings

    context = render_build_context(spec, base_image=BASE_IMAGE, ca_bundle=ca_bundle_to_inject(load_settings()))
    with tarfile.open(fileobj=context.tar()) as archive:
        archive.extractall(folder, filter="data")


def _docker_build(folder: Path) -> None:
    done = subprocess.run(["docker", "build", "-q", "--label", f"{BENCH_LABEL}={SESSION}", "-t", BASELINE_TAG,
                           str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"baseline docker build failed: {done.stderr.strip()}")


def run(options: Options) -> list[Result]:
    rounds = 3 if options.quick else 15
    remove_stale_images()
    with isolated_workspace("env-cache"), tempfile.TemporaryDirectory(prefix="amltrain-bench-ctx-") as tmp:
        spec = _spec(_environment())
        try:
            with stopwatch() as first_build:
                built, _ = _resolve(spec)
            build_seconds = first_build()
            _write_context(spec, Path(tmp))
            _docker_build(Path(tmp))  # warm-up: the layer cache now holds every step
            ours, connects, bare = [], [], []
            removed_outside = 0
            for _ in range(rounds):
                if not _present(built.tag):
                    # Something outside this benchmark removed the image (another test's cleanup of
                    # environment images); building it again is not a cache hit, so that round is skipped.
                    removed_outside += 1
                    _resolve(spec)
                    continue
                with stopwatch() as elapsed:
                    found, connect = _resolve(spec)
                if not found.cache_hit:
                    raise RuntimeError("the unchanged environment was rebuilt although its image was there: the "
                                       "cache check is broken")
                ours.append(elapsed())
                connects.append(connect)
                bare.append(timed(lambda: _docker_build(Path(tmp))))
        finally:
            _remove_image(built.tag if "built" in locals() else None)
            remove_labelled()
    if not ours:
        raise RuntimeError(f"the environment image was removed outside the benchmark in all {rounds} rounds")
    value, baseline = median(ours), median(bare)
    return [Result(
        "env_cache_hit", value, "s", "docker build, all layers cached", baseline, target=Target(0.05),
        details={"rounds": rounds, "rounds_skipped": removed_outside, "ours_s": ours, "docker_client_s": connects,
                 "docker_build_s": bare,
                 "first_build_s": build_seconds,
                 "image": built.tag, "builder": "docker CLI default (classic builder on Docker 20.10)"},
        notes=[*([f"{removed_outside} of {rounds} rounds skipped: the image had been removed outside the benchmark."]
                 if removed_outside else []),
               f"The agent's Docker client is opened once in its life (docker-py asks the engine for its version, "
               f"then pings it); per run it costs {median(connects) * 1000:.2f} ms.",
               f"The first build of this environment took {build_seconds:.1f} s (venv on the base image, no "
               "packages); v1 quotes up to 5 minutes for a first environment build."],
    )]


def _present(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def _remove_image(tag: str | None) -> None:
    if tag is None:
        return
    subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True)


def remove_stale_images() -> None:
    """Environment images of earlier benchmark sessions that could not be removed then (their spec carries
    the session note, so nothing else matches)."""
    import docker
    import docker.errors

    from jupyter_amltrain.engine.images.dockerfile import HASH_LABEL, SPEC_LABEL

    client = docker.from_env()
    for image in client.images.list(filters={"label": HASH_LABEL}):
        spec = (image.labels or {}).get(SPEC_LABEL, "")
        created = image.attrs.get("Created", "")
        if SESSION_NOTE in spec and SESSION_NOTE + SESSION not in spec and _age_seconds(created) > STALE_SECONDS:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)


def _age_seconds(created: str) -> float:
    from datetime import datetime, timezone

    try:  # Docker writes nanoseconds; Python parses at most microseconds
        stamp = datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return 0.0
    return (datetime.now(timezone.utc) - stamp).total_seconds()


if __name__ == "__main__":
    sys.exit(main_for(run, __doc__))

"""Interpreter resolution on a cached run: what looking inside a user's image (python, else python3; its user;
its ENTRYPOINT) costs once the answer is kept with the image, against the same cached environment resolution
without it. Target: at most 0.10x (a few milliseconds).

A user-managed environment on a local image (the base image, as users' own images are) is resolved as a run's
supervisor does (``ImageBuilder.ensure``), which now includes the resolution; the resolution alone
(``image_facts`` with its answer kept) is timed in the same rounds, and the baseline is the difference: the
environment resolution as it was without it. The first resolution of the image (probe containers) is reported
too: it is paid once per image id.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.measure import Options, Result, Target, main_for, median, stopwatch
from bench.sandbox import BASE_IMAGE, isolated_workspace


def run(options: Options) -> list[Result]:
    from jupyter_amltrain.core import Environment
    from jupyter_amltrain.core.environment import image_spec
    from jupyter_amltrain.engine.docker_engine import docker_client
    from jupyter_amltrain.engine.images.builder import ImageBuilder
    from jupyter_amltrain.engine.images.probe import image_facts, job_candidates
    from jupyter_amltrain.engine.settings import load_settings

    rounds = 5 if options.quick else 50
    with isolated_workspace("interpreter-resolution"):
        env = Environment("bench-interpreter")
        env.docker.base_image = BASE_IMAGE
        env.python.user_managed_dependencies = True
        spec = image_spec(env)
        client = docker_client()
        builder = ImageBuilder(client, load_settings())
        lines: list[str] = []

        def log(line: str) -> None:
            lines.append(line)

        with stopwatch() as first:
            built = builder.ensure(spec, password=None, log=log)
        first_seconds = first()
        totals: list[float] = []
        resolutions: list[float] = []
        for _ in range(rounds):
            start = time.perf_counter()
            again: Any = builder.ensure(spec, password=None, log=log)
            totals.append(time.perf_counter() - start)
            start = time.perf_counter()
            # as ensure() calls it: the image id is known from the lookup every cached resolution makes anyway
            image_facts(client, built.tag, candidates=job_candidates(spec), cache_dir=builder.facts_dir, log=log,
                        image_id=built.facts.image_id)
            resolutions.append(time.perf_counter() - start)
            assert again.facts == built.facts
        probes = sum("Looking inside" in line for line in lines)
    value = median(resolutions)
    baseline = max(median(totals) - value, 1e-9)
    return [Result(
        "interpreter_resolution_cached", value, "s", "cached environment resolution without it", baseline,
        target=Target(0.10),
        details={"rounds": rounds, "resolution_s": resolutions, "ensure_with_resolution_s": totals,
                 "first_resolution_s": first_seconds, "probes": probes, "facts": built.facts.describe()},
        notes=[f"First resolution of {BASE_IMAGE} (probe containers, once per image id): {first_seconds:.2f} s; "
               f"{probes} probe(s) in {rounds + 1} resolutions.",
               f"Resolved: {built.facts.describe()}",
               "Cached: one small file read (the image id comes from the lookup the cache check makes anyway) "
               f"under {Path(builder.facts_dir).name}/."],
    )]


if __name__ == "__main__":
    sys.exit(main_for(run, __doc__))

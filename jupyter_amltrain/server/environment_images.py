"""Whether each environment's image is built: the image named by the environment's hash, or, for a
user-managed environment on a plain base image, that base image (or the local stand-in for Azure ML's).

Docker is asked once per call (one image listing); when the engine does not answer, states are "unknown"
and the reason is reported, never raised: the rest of the panel still works without Docker.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from jupyter_amltrain.core.environment import environment_from_dict, image_spec
from jupyter_amltrain.engine.images.base_image import DEFAULT_CPU_IMAGE, is_azureml_base_image, local_base_image
from jupyter_amltrain.engine.images.dockerfile import needs_build
from jupyter_amltrain.engine.images.probe import facts_dir, job_candidates, known_facts
from jupyter_amltrain.engine.images.registry import qualify
from jupyter_amltrain.engine.images.spec import image_hash, image_tag
from jupyter_amltrain.engine.views.environments import EnvironmentUse

BUILT, NOT_BUILT, UNKNOWN, PROCESS, UNSUPPORTED = "built", "not built", "unknown", "local process", "unsupported"


@dataclass(frozen=True)
class EnvironmentState:
    name: str
    version: int | None
    runs: int
    last_used: float | None
    docker: bool
    user_managed: bool
    image: str | None        # what a run of it starts from: its built image, or the base image used as is
    image_hash: str | None
    state: str               # built | not built | unknown | local process | unsupported
    substitute: str | None   # the local image that stands in for an Azure ML base image that cannot be pulled
    detail: str
    interpreter: str | None = None  # once a run used the image: the interpreter it resolved to, and Python's version
    user: str | None = None         # ... and the user its jobs run as

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DockerImages:
    tags: frozenset[str]
    reachable: bool
    error: str
    ids: dict[str, str] = field(default_factory=dict)  # tag -> image id


def local_images() -> DockerImages:
    """Every image tag the Docker engine holds, in one call (bounded by a short timeout)."""
    try:
        import docker

        client = docker.from_env(timeout=5)
    except Exception as error:
        return DockerImages(frozenset(), False, f"Docker engine not reachable: {error}")
    try:
        ids = {tag: image.id for image in client.images.list() for tag in image.tags}
        return DockerImages(frozenset(ids), True, "", ids)
    except Exception as error:
        return DockerImages(frozenset(), False, f"Docker engine not reachable: {error}")
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _present(tags: frozenset[str], image: str) -> bool:
    # Docker lists an untagged reference as name:latest.
    return image in tags or (":" not in image.rsplit("/", 1)[-1] and f"{image}:latest" in tags)


def environment_state(use: EnvironmentUse, images: DockerImages, home: str | None = None) -> EnvironmentState:
    """``home``: the store home, whose probe answers name the interpreter and user of built images."""
    environment = environment_from_dict({**use.definition, "name": use.name})
    docker = bool(environment.docker.enabled) or use.docker_runs > 0
    user_managed = bool(environment.python.user_managed_dependencies)

    def result(image: str | None, digest: str | None, state: str, detail: str,
               substitute: str | None = None) -> EnvironmentState:
        return EnvironmentState(name=use.name, version=use.version, runs=use.runs, last_used=use.last_used,
                                docker=docker, user_managed=user_managed, image=image, image_hash=digest,
                                state=state, substitute=substitute, detail=detail)

    try:
        spec = image_spec(environment)
    except Exception as error:  # e.g. a Docker build context, which local builds refuse
        return result(None, None, UNSUPPORTED, str(error))
    digest = image_hash(spec)
    if not docker:
        detail = ("runs with the notebook's interpreter" if user_managed
                  else "runs in a cached virtual environment on this host")
        return result(None, digest, PROCESS, detail)
    image = image_tag(spec) if needs_build(spec) else qualify(spec.base_image or DEFAULT_CPU_IMAGE, spec.registry)
    if not images.reachable:
        return result(image, digest, UNKNOWN, images.error)
    if _present(images.tags, image):
        state = result(image, digest, BUILT, "image present" if needs_build(spec) else "base image used as it is")
        image_id = images.ids.get(image) or images.ids.get(f"{image}:latest")
        facts = known_facts(facts_dir(home), image_id, job_candidates(spec)) if home and image_id else None
        if facts is None:
            return state
        return replace(state, interpreter=f"{facts.interpreter} (Python {facts.python_version})", user=facts.runs_as)
    substitute = local_base_image()
    if not needs_build(spec) and is_azureml_base_image(image) and _present(images.tags, substitute):
        return result(image, digest, BUILT, f"{image} cannot be pulled here; runs use {substitute}", substitute)
    detail = "built by the next run that uses it" if needs_build(spec) else "pulled by the next run that uses it"
    return result(image, digest, NOT_BUILT, detail)

"""From an ImageSpec to a ready local image: cache check, base image pull or substitute, streamed build.

The image of an environment is named ``azureml/azureml_<hash>`` (as in Azure ML) and labelled with that hash and
the spec, so the cache check is a label lookup and never starts a build. User-managed environments on a plain
base image need no build: they run in the base image itself (not a re-tagged alias of it, so an image rebuilt
under the same name by the user is used at once instead of a stale copy).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests

from jupyter_amltrain.engine.images.base_image import DEFAULT_CPU_IMAGE, ensure_base_image, is_azureml_base_image
from jupyter_amltrain.engine.images.dockerfile import (
    BASE_LABEL,
    EXIT_CONDA_ONLY,
    EXIT_NO_PYTHON,
    HASH_LABEL,
    from_images,
    needs_build,
    render_build_context,
)
from jupyter_amltrain.engine.images.failure_hints import install_failure_hint
from jupyter_amltrain.engine.images.locks import file_lock
from jupyter_amltrain.engine.images.registry import image_present, pull, qualify
from jupyter_amltrain.engine.images.spec import ImageSpec, image_hash, image_tag, python_in_image
from jupyter_amltrain.engine.images.tls import ca_bundle_to_inject
from jupyter_amltrain.engine.settings import AmlTrainSettings
from jupyter_amltrain.exceptions import DockerEngineException, ImageBuildException, RegistryException

Log = Callable[[str], None]

SUBSTITUTE_LABEL = "amltrain.base-substitute"
TAIL_LINES = 20  # shown in the error; hints look further back
HINT_LINES = 200
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_EXIT_CODE = re.compile(r"returned a non-zero code: (\d+)")


@dataclass(frozen=True)
class BuiltImage:
    tag: str  # what to run: azureml/azureml_<hash>, or the base image itself for user-managed envs
    hash: str
    cache_hit: bool
    python: str  # the interpreter inside the image
    base_substituted: str | None  # the local image used in place of an unreachable Azure ML base image


@dataclass(frozen=True)
class _Base:
    image: str  # what the build uses
    substitute: str | None
    was_local: bool


class ImageBuilder:
    def __init__(self, client: docker.DockerClient, settings: AmlTrainSettings) -> None:
        self.client = client
        self.settings = settings

    def ensure(
        self,
        spec: ImageSpec,
        *,
        password: str | None,
        log: Log,
        progress: Log | None = None,
    ) -> BuiltImage:
        """The image of ``spec``, built now unless cached. ``log`` gets every build line as it comes;
        ``progress`` gets short sub-statuses ("pulling ...", "building image: step 3/7")."""
        self._check_engine()
        digest, tag, python = image_hash(spec), image_tag(spec), python_in_image(spec)
        if not needs_build(spec):
            base = self._resolve_base(_base_reference(spec), spec, password, log, progress)
            if base.was_local:
                log(f"Image {base.image} found: cache hit, no build (user-managed dependencies, used as it is)")
            return BuiltImage(base.image, digest, base.was_local, python, base.substitute)

        hit = self._cache_hit(spec, log)
        if hit:
            return hit
        with file_lock(Path(self.settings.home) / "locks" / f"image-{digest}.lock"):
            hit = self._cache_hit(spec, log)  # built by another process while we waited
            if hit:
                return hit
            log(f"Materialized image not found on target: {tag}")
            substitute = self._build(spec, tag, password, log, progress)
        return BuiltImage(tag, digest, False, python, substitute)

    def _check_engine(self) -> None:
        try:
            self.client.ping()
        except (docker.errors.DockerException, requests.exceptions.ConnectionError) as error:
            raise DockerEngineException(
                f"The Docker engine is not answering ({error}). Fix: start Docker (systemctl start docker), check "
                "DOCKER_HOST, and that this user may use the socket (docker group)"
            ) from error

    def _cache_hit(self, spec: ImageSpec, log: Log) -> BuiltImage | None:
        tag, digest = image_tag(spec), image_hash(spec)
        try:
            labels = self.client.images.get(tag).labels or {}
        except docker.errors.ImageNotFound:
            return None
        if labels.get(HASH_LABEL) != digest:
            return None
        # Rebuild when the base image was replaced under the same name (pushed/pulled/rebuilt with the tag).
        name, _, built_on = labels.get(BASE_LABEL, "").rpartition("@")
        if name and image_present(self.client, name) and self.client.images.get(name).id != built_on:
            log(f"Base image {name} changed since {tag} was built; rebuilding")
            return None
        log(f"Image {tag} found: cache hit, no build")
        return BuiltImage(tag, digest, True, python_in_image(spec), labels.get(SUBSTITUTE_LABEL) or None)

    def _resolve_base(
        self, image: str, spec: ImageSpec, password: str | None, log: Log, progress: Log | None
    ) -> _Base:
        """A local image for ``image``: as present, pulled, or (Azure ML defaults only) the local substitute."""
        if image_present(self.client, image):
            return _Base(image, None, True)
        try:
            if progress:
                progress(f"pulling base image {image}")
            pull(self.client, image, registry=spec.registry, password=password, log=log, progress=progress)
            return _Base(image, None, False)
        except RegistryException as error:
            if error.details.get("reason") != "unreachable" or not is_azureml_base_image(image):
                raise
        substitute = ensure_base_image(self.client, log, settings=self.settings, progress=progress)
        log(f"{image} cannot be pulled (no registry reachable); using the local equivalent {substitute}")
        return _Base(substitute, substitute, False)

    def _build(
        self, spec: ImageSpec, tag: str, password: str | None, log: Log, progress: Log | None
    ) -> str | None:
        """Build and tag ``tag``; returns the substituted base image, if any."""
        replacements: dict[str, str] = {}
        base: _Base | None = None
        if spec.dockerfile:
            for image in from_images(spec.dockerfile):
                # The classic builder cannot authenticate its own pulls: pull FROM images with the credentials.
                resolved = self._resolve_base(image, spec, password, log, progress)
                if resolved.substitute:
                    replacements[image] = resolved.substitute
            substitute = next(iter(replacements.values()), None)
        else:
            base = self._resolve_base(_base_reference(spec), spec, password, log, progress)
            substitute = base.substitute
        context = render_build_context(
            spec,
            base_image=base.image if base else None,
            from_replacements=replacements,
            ca_bundle=ca_bundle_to_inject(self.settings),
        )
        labels = dict(context.labels)
        if base:
            labels[BASE_LABEL] = f"{base.image}@{self.client.images.get(base.image).id}"
        if substitute:
            labels[SUBSTITUTE_LABEL] = substitute
        stream = self.client.api.build(
            fileobj=context.tar(), custom_context=True, tag=tag, labels=labels, rm=True, forcerm=True,
            pull=False, decode=True, timeout=None,
        )
        self._follow(stream, spec, tag, base.image if base else "built from the Dockerfile", log, progress)
        if not image_present(self.client, tag):
            raise ImageBuildException(f"The build of {tag} ended without an image. Fix: see the build log above")
        log(f"Image {tag} built")
        return substitute

    def _follow(
        self, stream: Iterable[dict[str, object]], spec: ImageSpec, tag: str, base: str, log: Log,
        progress: Log | None,
    ) -> None:
        tail: deque[str] = deque(maxlen=HINT_LINES)
        step = ""
        pending = ""
        error = ""
        try:
            for item in stream:
                if "error" in item:
                    error = str(item["error"]).strip()
                    continue
                pending += str(item.get("stream", ""))
                *lines, pending = pending.split("\n")
                for line in lines:
                    line = line.rstrip("\r")
                    log(line)
                    tail.append(line)
                    match = _STEP.match(line)
                    if match:
                        step = line
                        if progress:
                            progress(f"building image: step {match.group(1)}/{match.group(2)}")
        except docker.errors.APIError as api_error:
            error = str(api_error.explanation or api_error)
        if pending.strip():
            log(pending)
            tail.append(pending)
        if error:
            log(error)
            raise ImageBuildException(_failure_message(spec, tag, base, step, error, list(tail), self.settings))


def _base_reference(spec: ImageSpec) -> str:
    # v1's DockerSection defaults base_image to DEFAULT_CPU_IMAGE.
    return qualify(spec.base_image or DEFAULT_CPU_IMAGE, spec.registry)


def _failure_message(
    spec: ImageSpec, tag: str, base: str, step: str, error: str, tail: list[str], settings: AmlTrainSettings
) -> str:
    where = f" at {step}" if step else ""
    text = "\n".join(tail)
    code = _EXIT_CODE.search(error)
    exit_code = int(code.group(1)) if code else None
    if exit_code == EXIT_NO_PYTHON:
        hint = (
            f"the image {base} has neither conda nor python3; set python.user_managed_dependencies=True and "
            "interpreter_path, or use a base image with Python"
        )
    elif exit_code == EXIT_CONDA_ONLY:
        hint = "\n".join(line.removeprefix("amltrain: ") for line in tail if line.startswith("amltrain: "))
    else:
        hint = install_failure_hint(spec, text, settings) or (
            "Fix: the build log shows the failing command; correct the Dockerfile or the dependencies"
        )
    shown = tail[-TAIL_LINES:]
    return (
        f"Building image {tag} failed{where}: {error}\n{hint}\nLast {len(shown)} lines of the build log:\n  "
        + "\n  ".join(shown)
    )


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
    EXIT_NO_VENV,
    HASH_LABEL,
    from_images,
    needs_build,
    render_build_context,
)
from jupyter_amltrain.engine.images.failure_hints import install_failure_hint
from jupyter_amltrain.engine.images.locks import file_lock
from jupyter_amltrain.engine.images.probe import ImageFacts, facts_dir, image_facts, job_candidates
from jupyter_amltrain.engine.images.registry import image_present, pull, qualify
from jupyter_amltrain.engine.images.spec import ImageSpec, image_hash, image_tag
from jupyter_amltrain.engine.images.tls import ca_bundle_to_inject
from jupyter_amltrain.engine.settings import AmlTrainSettings
from jupyter_amltrain.exceptions import (
    DockerEngineException,
    EnvironmentException,
    ImageBuildException,
    RegistryException,
)

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
    base_substituted: str | None  # the local image used in place of an unreachable Azure ML base image
    facts: ImageFacts  # the interpreter, user and ENTRYPOINT a job gets in it (engine/images/probe.py)

    @property
    def python(self) -> str:
        """The interpreter a job starts inside the image."""
        return self.facts.interpreter


@dataclass(frozen=True)
class _Base:
    image: str  # what the build uses
    substitute: str | None
    was_local: bool
    image_id: str | None = None  # known when it was local: spares the probe another inspect


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
        """The image of ``spec``, built now unless cached, and what a job gets in it (interpreter, user,
        ENTRYPOINT: probed once per image). ``log`` gets every build line as it comes; ``progress`` gets short
        sub-statuses ("pulling ...", "building image: step 3/7"). Raises ``EnvironmentException`` when no job
        can run in the image (no Python 3, another CPU architecture, an ENTRYPOINT that fails)."""
        # No ping first: a cached resolution is a few milliseconds, and a ping would be a fifth of it. An engine
        # that does not answer fails the first real call instead, and is said the same way.
        try:
            return self._ensure(spec, password=password, log=log, progress=progress)
        except requests.exceptions.ConnectionError as error:
            raise DockerEngineException(
                f"The Docker engine is not answering ({error}). Fix: start Docker (systemctl start docker), check "
                "DOCKER_HOST, and that this user may use the socket (docker group)"
            ) from error

    def _ensure(self, spec: ImageSpec, *, password: str | None, log: Log, progress: Log | None) -> BuiltImage:
        digest, tag = image_hash(spec), image_tag(spec)
        if not needs_build(spec):
            base = self._resolve_base(_base_reference(spec), spec, password, log, progress)
            if base.was_local:
                log(f"Image {base.image} found: cache hit, no build (user-managed dependencies, used as it is)")
            return self._with_facts(base.image, spec, digest, base.was_local, base.substitute, log, progress,
                                    base.image_id)

        hit = self._cache_hit(spec, log)
        if hit is not None:
            return self._with_facts(tag, spec, digest, True, hit[0], log, progress, hit[1])
        with file_lock(Path(self.settings.home) / "locks" / f"image-{digest}.lock"):
            hit = self._cache_hit(spec, log)  # built by another process while we waited
            if hit is not None:
                return self._with_facts(tag, spec, digest, True, hit[0], log, progress, hit[1])
            log(f"Materialized image not found on target: {tag}")
            substitute = self._build(spec, tag, password, log, progress)
        return self._with_facts(tag, spec, digest, False, substitute, log, progress)

    def _with_facts(self, tag: str, spec: ImageSpec, digest: str, cache_hit: bool, substitute: str | None,
                    log: Log, progress: Log | None, image_id: str | None = None) -> BuiltImage:
        if progress:
            progress("checking the image's interpreter and user")
        facts = image_facts(self.client, tag, candidates=job_candidates(spec), cache_dir=self.facts_dir, log=log,
                            image_id=image_id)
        return BuiltImage(tag, digest, cache_hit, substitute or None, facts)

    @property
    def facts_dir(self) -> Path:
        return facts_dir(self.settings.home)

    def _cache_hit(self, spec: ImageSpec, log: Log) -> tuple[str, str] | None:
        """None when ``spec`` must be built; else the base substitute it was built on ('' for none) and the
        image's id."""
        tag, digest = image_tag(spec), image_hash(spec)
        try:
            found = self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            return None
        labels = found.labels or {}
        if labels.get(HASH_LABEL) != digest:
            return None
        # Rebuild when the base image was replaced under the same name (pushed/pulled/rebuilt with the tag).
        name, _, built_on = labels.get(BASE_LABEL, "").rpartition("@")
        current = _local_id(self.client, name) if name else None
        if current is not None and current != built_on:
            log(f"Base image {name} changed since {tag} was built; rebuilding")
            return None
        log(f"Image {tag} found: cache hit, no build")
        return labels.get(SUBSTITUTE_LABEL) or "", str(found.id)

    def _resolve_base(
        self, image: str, spec: ImageSpec, password: str | None, log: Log, progress: Log | None
    ) -> _Base:
        """A local image for ``image``: as present, pulled, or (Azure ML defaults only) the local substitute."""
        found = _local_id(self.client, image)
        if found:
            return _Base(image, None, True, found)
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
            venv_tool=self._venv_tool(spec, base, log),
            base_user=self._user_of(base.image if base else from_images(spec.dockerfile or "")[-1:], replacements),
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

    def _user_of(self, image: str | list[str], replacements: dict[str, str]) -> str | None:
        """The USER an image runs as (None when unknown: a FROM image that is a build stage or an ARG)."""
        name = image if isinstance(image, str) else (image[0] if image else "")
        name = replacements.get(name, name)
        try:
            return str((self.client.images.get(name).attrs.get("Config") or {}).get("User") or "") if name else None
        except docker.errors.ImageNotFound:
            return None

    def _venv_tool(self, spec: ImageSpec, base: _Base | None, log: Log) -> bytes | None:
        """uv, for images whose python3 cannot make a virtual environment (Debian's python3 without
        python3-venv, no pip): it creates the environment and installs into it without either.

        Only where it may be needed: a Dockerfile's image does not exist before the build, so it always gets
        it; a plain base image is looked at first (once per image) and gets it only when it lacks venv."""
        if spec.user_managed:
            return None
        if base is not None:
            try:
                facts = image_facts(self.client, base.image, candidates=("python3",), cache_dir=self.facts_dir,
                                    log=log)
            except EnvironmentException:
                facts = None  # no python3 (a conda-only image, or none at all): the setup script decides
            if facts is not None and not facts.has_shell:
                raise EnvironmentException(
                    f"The image {base.image} has no shell (/bin/sh), which installing system-managed dependencies "
                    "needs. Fix: set env.python.user_managed_dependencies = True (the job then runs with the "
                    "image's own Python, no shell needed), or use a base image with a shell."
                )
            if facts is not None and facts.has_venv:
                return None
            if facts is not None and not facts.has_distutils:
                raise EnvironmentException(
                    f"The image {base.image} has Python {facts.python_version} without its venv module and without "
                    "distutils, so no environment can be made in it for system-managed dependencies. Fix: install "
                    "python3-venv in the image (Debian/Ubuntu: apt-get install python3-venv), or set "
                    "env.python.user_managed_dependencies = True and install the packages in the image yourself."
                )
        from uv import find_uv_bin

        return Path(find_uv_bin()).read_bytes()

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


def _local_id(client: docker.DockerClient, image: str) -> str | None:
    try:
        return str(client.images.get(image).id)
    except docker.errors.ImageNotFound:
        return None


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
    elif exit_code == EXIT_NO_VENV:
        hint = (
            f"the image {base} has python3 without its venv module, and the build had no uv to do without it; "
            "install python3-venv in the image, or set python.user_managed_dependencies=True"
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


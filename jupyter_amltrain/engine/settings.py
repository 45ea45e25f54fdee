"""Where the store lives and how builds reach the network, as traitlets configuration.

Precedence: explicit keyword arguments, then environment variables (``AMLTRAIN_HOME``, ``AMLTRAIN_CA_BUNDLE``),
then ``amltrain_config.json`` in the Jupyter config directories, then defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, Float, Int, List, Unicode, Union
from traitlets.config import Configurable
from traitlets.config.loader import Config, JSONFileConfigLoader

HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class AmlTrainSettings(Configurable):
    home = Unicode(
        help="Folder holding every workspace store, cached environments and the base image cache."
    ).tag(config=True)
    ca_bundle = Unicode(
        help="PEM bundle trusted by package installs inside image builds and local environments. Defaults to "
        "the host's bundle, so a TLS-intercepting corporate proxy trusted by the host is trusted by builds. "
        "Set to an empty string to inject nothing."
    ).tag(config=True)
    inject_ca_bundle = Bool(True, help="Inject ca_bundle into builds.").tag(config=True)
    poll_interval = Float(0.2, help="Seconds between supervisor checks of queue and container state.").tag(
        config=True
    )
    declared_gpus = Union(
        [List(Int()), Int(), Unicode()], default_value=None, allow_none=True,
        help="A stand-in GPU inventory for machines without GPUs (CI): ids [0, 1, 2, 3] or '0,1,2,3', or a count (4). "
        "Runs book these GPUs and containers get CUDA_VISIBLE_DEVICES, without device requests. Refused when NVML "
        "finds real GPUs. Environment variable: AMLTRAIN_DECLARED_GPUS.",
    ).tag(config=True)
    system_metrics_interval = Float(
        1.0, help="Seconds between samples of a running job's GPU, CPU and memory use; 0 turns sampling off. "
        "Environment variable: AMLTRAIN_SYSTEM_METRICS_INTERVAL."
    ).tag(config=True)

    def _default_home(self) -> str:
        return str(Path.home() / ".amltrain")


def _config_from_files() -> Config:
    try:
        from jupyter_core.paths import jupyter_config_path
    except ImportError:  # jupyter_core comes with jupyterlab; stay usable without it
        return Config()
    merged = Config()
    for folder in reversed(jupyter_config_path()):
        if os.path.isfile(os.path.join(folder, "amltrain_config.json")):
            merged.merge(JSONFileConfigLoader("amltrain_config.json", path=folder).load_config())
    return merged


def load_settings(**overrides: object) -> AmlTrainSettings:
    settings = AmlTrainSettings(config=_config_from_files())
    if not settings.home:
        settings.home = os.environ.get("AMLTRAIN_HOME") or str(Path.home() / ".amltrain")
    elif os.environ.get("AMLTRAIN_HOME"):
        settings.home = os.environ["AMLTRAIN_HOME"]
    if "AMLTRAIN_CA_BUNDLE" in os.environ:
        settings.ca_bundle = os.environ["AMLTRAIN_CA_BUNDLE"]
    elif not settings.ca_bundle and os.path.isfile(HOST_CA_BUNDLE):
        settings.ca_bundle = HOST_CA_BUNDLE
    if os.environ.get("AMLTRAIN_DECLARED_GPUS") is not None:
        settings.declared_gpus = os.environ["AMLTRAIN_DECLARED_GPUS"]
    if os.environ.get("AMLTRAIN_SYSTEM_METRICS_INTERVAL"):
        settings.system_metrics_interval = float(os.environ["AMLTRAIN_SYSTEM_METRICS_INTERVAL"])
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings

"""``RunConfiguration`` and its sections (v1 ``azureml.core.runconfig``).

``RunConfiguration._serialize_to_dict()`` gives the v1 ``runDefinition`` dict that ``run.get_details()`` shows.
Sections that only mean something on Azure (HDI, Spark, Databricks, data references) are left out, except
for the keys the runDefinition dict always carries.
"""

from __future__ import annotations

import json
import logging
import shlex
from typing import Any

from jupyter_amltrain.core.conda_dependencies import CondaDependencies
from jupyter_amltrain.core.environment import (
    _DEFAULT_SHM_SIZE,
    DEFAULT_CPU_IMAGE,
    DEFAULT_GPU_IMAGE,
    DockerSection,
    Environment,
    PythonSection,
    SparkSection,
)
from jupyter_amltrain.exceptions import UserErrorException

module_logger = logging.getLogger(__name__)

MPI_CPU_IMAGE = DEFAULT_CPU_IMAGE
MPI_GPU_IMAGE = DEFAULT_GPU_IMAGE
LOCAL_RUNCONFIG_NAME = "local"
SUPPORTED_PYTORCH_BACKENDS = ("nccl", "gloo")

__all__ = [
    "DEFAULT_CPU_IMAGE",
    "DEFAULT_GPU_IMAGE",
    "AmlComputeConfiguration",
    "DockerConfiguration",
    "DockerSection",
    "Environment",
    "EnvironmentDefinition",
    "HistoryConfiguration",
    "MpiConfiguration",
    "PyTorchConfiguration",
    "PythonSection",
    "RunConfiguration",
    "SparkSection",
    "TensorflowConfiguration",
]


class EnvironmentDefinition(Environment):
    """DEPRECATED in v1: use ``Environment``."""

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)


class DockerConfiguration:
    """Docker runtime settings of a job: whether to use a container, its shared memory and extra arguments.

    ``shm_size`` defaults to ``'2g'`` as in v1 (Docker's own 64 MB default breaks PyTorch data loaders).
    """

    def __init__(
        self,
        use_docker: bool = False,
        shared_volumes: bool = True,
        arguments: list[str] | None = None,
        shm_size: str | None = _DEFAULT_SHM_SIZE,
    ) -> None:
        self.use_docker = use_docker
        self.shared_volumes = shared_volumes
        self.arguments = list(arguments or [])
        self.shm_size = shm_size

    def _to_dict(self) -> dict[str, Any]:
        return {
            "useDocker": self.use_docker,
            "sharedVolumes": self.shared_volumes,
            "shmSize": self.shm_size,
            "arguments": list(self.arguments),
        }


class MpiConfiguration:
    """Distributed MPI job: processes per node and node count."""

    def __init__(self, process_count_per_node: int = 1, node_count: int = 1) -> None:
        self.process_count_per_node = process_count_per_node
        self.node_count = node_count


class PyTorchConfiguration:
    """Distributed PyTorch job: backend ('nccl' or 'gloo'), total processes and node count."""

    def __init__(self, communication_backend: str = "Nccl", process_count: int | None = None, node_count: int = 1):
        if communication_backend.lower() not in SUPPORTED_PYTORCH_BACKENDS:
            raise UserErrorException(
                f"{communication_backend} is not a supported backend. 'communication_backend' must be 'Nccl' or 'Gloo'."
            )
        self.communication_backend = communication_backend.lower()
        self.process_count = process_count
        self.node_count = node_count


class TensorflowConfiguration:
    """Distributed TensorFlow (parameter server) job: workers and parameter servers."""

    def __init__(self, worker_count: int = 1, parameter_server_count: int = 1) -> None:
        self.worker_count = worker_count
        self.parameter_server_count = parameter_server_count


class HistoryConfiguration:
    """Run history switches; ``directories_to_watch`` are streamed while the run is live."""

    def __init__(self) -> None:
        self.output_collection = True
        self.snapshot_project = True
        self.directories_to_watch = ["logs"]
        self.enable_mlflow_tracking = True


class AmlComputeConfiguration:
    """Run-based cluster settings (kept so v1 code that sets ``vm_size`` keeps working)."""

    def __init__(self) -> None:
        self.vm_size: str | None = None
        self.vm_priority: str | None = None
        self._retain_cluster = False
        self._name: str | None = None
        self._cluster_max_node_count: int | None = None


class RunConfiguration:
    """What to run (script/arguments or command), where (target) and in which environment."""

    def __init__(
        self,
        script: str | None = None,
        arguments: list[Any] | None = None,
        framework: str | None = None,
        communicator: str | None = None,
        conda_dependencies: CondaDependencies | None = None,
        _history_enabled: bool | None = None,
        _path: str | None = None,
        _name: str | None = None,
        command: list[str] | str | None = None,
    ) -> None:
        self._name = _name
        self._path = _path
        self.script = script
        self.command: list[str] | str = command if command else ""
        self.arguments: list[Any] = arguments if arguments else []
        self._target = LOCAL_RUNCONFIG_NAME
        self.framework = framework if framework else "Python"
        self.communicator = communicator if communicator else "None"
        self.max_run_duration_seconds: int | None = None
        self.node_count = 1
        self.priority: int | None = None
        self.environment: Environment = EnvironmentDefinition(name="default-environment")
        self.history = HistoryConfiguration()
        self.docker = DockerConfiguration()
        self.tensorflow = TensorflowConfiguration()
        self.mpi = MpiConfiguration()
        self.pytorch = PyTorchConfiguration()
        self.amlcompute = AmlComputeConfiguration()
        self.data_references: dict[str, Any] = {}
        self.data: dict[str, Any] = {}
        self.output_data: dict[str, Any] = {}
        self.datacaches: list[Any] = []
        self.services: dict[str, Any] = {}
        self.source_directory_data_store: str | None = None
        self.credential_passthrough = False
        self._environment_variables: dict[str, str] = {}
        self._auto_prepare_environment = True
        if _history_enabled:
            self.history.output_collection = _history_enabled
        self.environment.python.conda_dependencies = conda_dependencies or CondaDependencies()

    @property
    def target(self) -> str:
        """Name of the compute target; ``'local'`` (this machine) by default."""
        return self._target

    @target.setter
    def target(self, target: Any) -> None:
        # v1 keeps only the name of a ComputeTarget object.
        name = target if isinstance(target, str) else getattr(target, "name", None)
        if not isinstance(name, str) or not name:
            raise UserErrorException(
                f"target must be a compute target name or a ComputeTarget object, not {type(target).__name__}. "
                "Use 'local' for this machine or ws.compute_targets['<name>']."
            )
        self._target = name

    @property
    def environment_variables(self) -> dict[str, str]:
        """Variables set in the run's process (on top of the environment's own)."""
        return self._environment_variables

    @environment_variables.setter
    def environment_variables(self, value: dict[str, str]) -> None:
        self._environment_variables = dict(value or {})

    @property
    def auto_prepare_environment(self) -> bool:
        """DEPRECATED and unused: environments are always prepared before a run."""
        module_logger.warning(_AUTO_PREPARE_MESSAGE)
        return self._auto_prepare_environment

    @auto_prepare_environment.setter
    def auto_prepare_environment(self, value: bool) -> None:
        module_logger.warning(_AUTO_PREPARE_MESSAGE)
        self._auto_prepare_environment = bool(value)

    def __repr__(self) -> str:
        return json.dumps(self._serialize_to_dict(), indent=4)

    def _serialize_to_dict(self) -> dict[str, Any]:
        """The v1 ``runDefinition`` dict (camelCase keys, registry password None)."""
        command = self.command
        if isinstance(command, list):
            # Displayed as one string as in v1; shlex.join round-trips through shlex.split.
            command = shlex.join(str(part) for part in command)
        return {
            "script": self.script,
            "command": command or "",
            "useAbsolutePath": False,
            "arguments": [str(argument) for argument in self.arguments],
            "sourceDirectoryDataStore": self.source_directory_data_store,
            "framework": self.framework,
            "communicator": self.communicator,
            "target": self.target,
            "dataReferences": {},
            "data": {},
            "outputData": {},
            "jobName": None,
            "maxRunDurationSeconds": self.max_run_duration_seconds,
            "nodeCount": self.node_count,
            "priority": self.priority,
            "credentialPassthrough": self.credential_passthrough,
            "environment": self.environment._serialize_to_dict(),
            "history": {
                "outputCollection": self.history.output_collection,
                "directoriesToWatch": list(self.history.directories_to_watch),
                "enableMLflowTracking": self.history.enable_mlflow_tracking,
                "snapshotProject": self.history.snapshot_project,
            },
            "amlCompute": {
                "name": self.amlcompute._name,
                "vmSize": self.amlcompute.vm_size,
                "vmPriority": self.amlcompute.vm_priority,
                "retainCluster": self.amlcompute._retain_cluster,
                "clusterMaxNodeCount": self.amlcompute._cluster_max_node_count,
            },
            "tensorflow": {
                "workerCount": self.tensorflow.worker_count,
                "parameterServerCount": self.tensorflow.parameter_server_count,
            },
            "mpi": {"processCountPerNode": self.mpi.process_count_per_node},
            "pyTorch": {
                "communicationBackend": self.pytorch.communication_backend,
                "processCount": self.pytorch.process_count,
            },
            "docker": self.docker._to_dict(),
            "environmentVariables": dict(self.environment_variables),
            "commandReturnCodeConfig": {"returnCode": "Zero", "successfulReturnCodes": []},
        }


_AUTO_PREPARE_MESSAGE = "'auto_prepare_environment' is deprecated and unused. It will be removed in a future release."

"""Exceptions with the names and bases of ``azureml.exceptions``.

Every error raised to users comes from here, so ``except ComputeTargetException`` and friends written for
Azure ML SDK v1 keep working. Messages name the problem and, where there is one, the fix.
"""

from __future__ import annotations


class AzureMLException(Exception):
    """Base of every error this package raises (v1: ``azureml.exceptions.AzureMLException``)."""

    def __init__(self, exception_message: str = "", inner_exception: BaseException | None = None, **kwargs: object):
        super().__init__(exception_message)
        self.message = exception_message
        self.inner_exception = inner_exception
        self.details = kwargs

    def __str__(self) -> str:
        return self.message


class UserErrorException(AzureMLException):
    """The caller gave something we cannot use; the message says what and how to fix it."""


class ComputeTargetException(AzureMLException):
    """Compute target missing, misconfigured or unusable."""


class ExperimentExecutionException(AzureMLException):
    """Submitting or following a run failed."""


class ActivityFailedException(AzureMLException):
    """A run ended Failed; ``error_details`` holds the JSON of ``get_details()['error']``."""

    def __init__(self, error_details: str, inner_exception: BaseException | None = None):
        super().__init__(f"ActivityFailedException:\n Message: {error_details}", inner_exception)
        self.error_details = error_details


class SnapshotException(AzureMLException):
    """The source directory cannot be snapshotted (over a limit, unreadable)."""


class RunEnvironmentException(AzureMLException):
    """Run context used outside a run in a way that needs one."""


class TrainingException(AzureMLException):
    """Training configuration error."""


class ProjectSystemException(AzureMLException):
    """Workspace configuration or store problem."""


class WorkspaceException(ProjectSystemException):
    """Workspace cannot be found or opened."""


class ModelNotFoundException(AzureMLException):
    """No registered model matches."""


class ModelPathNotFoundException(AzureMLException):
    """The model path does not exist in the run's files."""


class EnvironmentException(UserErrorException):
    """An environment definition cannot be built or used."""


class ImageBuildException(EnvironmentException):
    """Building the environment's Docker image failed; the build log holds the details."""


class RegistryException(EnvironmentException):
    """A container registry refused or could not be reached."""


class DockerEngineException(AzureMLException):
    """The Docker engine is missing or not answering."""

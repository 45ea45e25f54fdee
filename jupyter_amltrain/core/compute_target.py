"""v1 ``azureml.core.compute_target``: the module notebooks import ``ComputeTargetException`` from."""

from jupyter_amltrain.core.compute.compute import ComputeTarget
from jupyter_amltrain.exceptions import ComputeTargetException

__all__ = ["ComputeTarget", "ComputeTargetException"]

"""v1 ``azureml.core.compute``: compute targets backed by local node pools."""

from jupyter_amltrain.core.compute.amlcompute import AmlCompute, AmlComputeProvisioningConfiguration
from jupyter_amltrain.core.compute.compute import ComputeTarget

__all__ = ["AmlCompute", "AmlComputeProvisioningConfiguration", "ComputeTarget"]

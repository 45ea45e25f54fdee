"""Live notebook views of runs (v1 ``azureml.widgets``): ``RunDetails(run).show()``, ``RunHistory``,
``GpuMonitor``. Each works in any front end with ipywidgets 8 (JupyterLab, Notebook 7, VS Code) and renders
as text/HTML where there is none."""

from __future__ import annotations

from jupyter_amltrain.widgets.gpu_monitor import GpuMonitor
from jupyter_amltrain.widgets.run_details import RunDetails
from jupyter_amltrain.widgets.run_history import RunHistory

__all__ = ["GpuMonitor", "RunDetails", "RunHistory"]

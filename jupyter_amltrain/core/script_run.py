"""``ScriptRun``: the run ``Experiment.submit(ScriptRunConfig)`` returns (v1 ``azureml.core.script_run``)."""

from __future__ import annotations

from jupyter_amltrain.core.run import Run


class ScriptRun(Run):
    RUN_TYPE = "azureml.scriptrun"

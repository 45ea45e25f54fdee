"""Settings of the server extension, as traitlets configuration (``c.AmlTrainServer.workspace = "my-ws"`` in
``jupyter_server_config.py``, or ``--AmlTrainServer.workspace=my-ws`` on the command line)."""

from __future__ import annotations

from traitlets import Float, Int, Unicode
from traitlets.config import Configurable


class AmlTrainServer(Configurable):
    workspace = Unicode(
        "",
        help="Workspace the panel shows. Empty: the one named by a v1 config.json found from the server's root "
        "directory upwards (.azureml/config.json, as Workspace.from_config() finds it), else 'default'. A request "
        "may name another with ?workspace=NAME.",
    ).tag(config=True)
    log_stream_interval = Float(
        0.5, help="Seconds between checks of a followed log file for new lines (server-sent events)."
    ).tag(config=True)
    reader_threads = Int(
        4, help="Threads that read the store, log files, NVML and Docker, so none of it blocks the server."
    ).tag(config=True)

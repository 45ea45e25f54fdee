"""The Jupyter server extension: the REST API the JupyterLab panel reads, under ``<base_url>/jupyter-amltrain/api/``.

Enabled on install (``etc/jupyter/jupyter_server_config.d/jupyter_amltrain.json``); ``jupyter server extension
enable jupyter_amltrain`` in a development checkout. Nothing here is imported by kernels or jobs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyter_amltrain.server.config import AmlTrainServer
from jupyter_amltrain.server.context import SETTINGS_KEY, ServerContext


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "jupyter_amltrain.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from jupyter_amltrain.server.handlers import url_table

    config = AmlTrainServer(parent=server_app)
    executor = ThreadPoolExecutor(max_workers=max(1, config.reader_threads), thread_name_prefix="amltrain-api")
    web_app = server_app.web_app
    web_app.settings[SETTINGS_KEY] = ServerContext(config, Path(server_app.root_dir).expanduser(), executor)
    web_app.add_handlers(".*$", url_table(web_app.settings["base_url"]))
    server_app.log.info("jupyter-amltrain: REST API at %sjupyter-amltrain/api/", web_app.settings["base_url"])
    # The agent that drives runs, warm before the first submit from a notebook of this server.
    from jupyter_amltrain.engine.agent import warm_agent
    from jupyter_amltrain.engine.settings import load_settings

    warm_agent(Path(load_settings().home).expanduser())


def _unload_jupyter_server_extension(server_app: Any) -> None:
    context = server_app.web_app.settings.get(SETTINGS_KEY)
    if isinstance(context, ServerContext):
        context.executor.shutdown(wait=False, cancel_futures=True)

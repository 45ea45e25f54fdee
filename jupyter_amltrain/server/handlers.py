"""REST handlers under ``<base_url>/jupyter-amltrain/api/`` and their URL table (documented in
docs/openapi.yaml).

Every method is ``@tornado.web.authenticated`` (Jupyter's token or login cookie; POST also needs the XSRF token
when the cookie is what authenticates) and ``@authorized`` against the resource ``amltrain``, so a custom
Jupyter Authorizer can grant read and write separately. Handlers are thin: they parse arguments and run a
payload builder on the reader threads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from jupyter_amltrain.engine.workspace import LocalWorkspace
from jupyter_amltrain.exceptions import AzureMLException
from jupyter_amltrain.server import payloads
from jupyter_amltrain.server.context import SETTINGS_KEY, ApiError, ServerContext

NAMESPACE = "jupyter-amltrain/api"
RUN = r"runs/(?P<run_id>[^/]+)"


class AmlTrainHandler(APIHandler):
    auth_resource = "amltrain"

    @property
    def context(self) -> ServerContext:
        context: ServerContext = self.settings[SETTINGS_KEY]
        return context

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(error, ApiError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": error.message, "reason": None}))
            return
        super().write_error(status_code, **kwargs)

    def int_argument(self, name: str, default: int | None = None, *, minimum: int = 0,
                     maximum: int | None = None) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"Query parameter {name}={raw!r} is not a whole number.") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"{minimum} or more"
            raise ApiError(400, f"Query parameter {name}={value} is out of range: use {bound}.")
        return value

    async def in_workspace(self, build: Callable[[LocalWorkspace], Any]) -> Any:
        """``build(workspace)`` on the reader threads, for the workspace the request names (or the default);
        refusals become JSON errors with the status the payload builder chose."""
        requested = self.get_query_argument("workspace", None)

        def work() -> Any:
            return build(self.context.workspace(requested))

        try:
            return await self.context.call(work)
        except AzureMLException as error:  # the engine's refusals name the fix; they are the caller's to act on
            raise ApiError(400, str(error)) from None

    async def answer(self, build: Callable[[LocalWorkspace], Any]) -> None:
        payload = await self.in_workspace(build)
        await self.finish(json.dumps(payload))


class WorkspaceHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(lambda ws: payloads.workspace_payload(self.context, ws))


class GpusHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(payloads.gpus_payload)


class ComputesHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(payloads.computes_payload)


class EnvironmentsHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(payloads.environments_payload)


class ExperimentsHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(payloads.experiments_payload)


class RunsHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        experiment = self.get_query_argument("experiment", None) or None
        status = self.get_query_argument("status", None) or None
        limit = self.int_argument("limit", 50, minimum=1, maximum=payloads.MAX_PAGE)
        offset = self.int_argument("offset", 0)
        await self.answer(lambda ws: payloads.runs_payload(ws, experiment=experiment, status=status,
                                                           limit=limit or 50, offset=offset or 0))


class RunHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        await self.answer(lambda ws: payloads.run_payload(ws, run_id))


class MetricsHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        since = self.int_argument("since")
        await self.answer(lambda ws: payloads.metrics_payload(ws, run_id, since))


class LogsHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        # Paged: a job can leave a million files in ./logs, and a listing never reads them all at once.
        limit = self.int_argument("limit", payloads.MAX_FILE_PAGE, minimum=1, maximum=payloads.MAX_FILE_PAGE)
        after = self.get_query_argument("after", None) or None
        await self.answer(lambda ws: payloads.logs_payload(ws, run_id, limit=limit or payloads.MAX_FILE_PAGE,
                                                           after=after))


class LogContentHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        name = self.get_query_argument("file", None) or None
        offset = self.int_argument("offset")
        tail = self.int_argument("tail", minimum=1)
        limit = self.int_argument("limit", payloads.MAX_CHUNK, minimum=1) or payloads.MAX_CHUNK
        await self.answer(lambda ws: payloads.log_chunk_payload(ws, run_id, name, offset=offset, tail=tail,
                                                                limit=limit))


class CancelHandler(AmlTrainHandler):
    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        await self.answer(lambda ws: payloads.cancel_payload(ws, run_id))


def routes() -> list[tuple[str, type[AmlTrainHandler]]]:
    """(path under the namespace, handler) for every route; the OpenAPI file documents exactly these."""
    from jupyter_amltrain.server.streams import LogStreamHandler

    return [
        ("workspace", WorkspaceHandler),
        ("gpus", GpusHandler),
        ("computes", ComputesHandler),
        ("environments", EnvironmentsHandler),
        ("experiments", ExperimentsHandler),
        ("runs", RunsHandler),
        (RUN, RunHandler),
        (f"{RUN}/metrics", MetricsHandler),
        (f"{RUN}/logs", LogsHandler),
        (f"{RUN}/logs/content", LogContentHandler),
        (f"{RUN}/logs/stream", LogStreamHandler),
        (f"{RUN}/cancel", CancelHandler),
    ]


def url_table(base_url: str) -> list[tuple[str, type[AmlTrainHandler]]]:
    return [(url_path_join(base_url, NAMESPACE, path), handler) for path, handler in routes()]

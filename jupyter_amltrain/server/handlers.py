"""REST handlers under ``<base_url>/jupyter-amltrain/api/`` and their URL table (documented in
docs/openapi.yaml).

Every method is ``@tornado.web.authenticated`` (Jupyter's token or login cookie; POST also needs the XSRF token
when the cookie is what authenticates) and ``@authorized`` against the resource ``amltrain``, so a custom
Jupyter Authorizer can grant read and write separately. Handlers are thin: they parse arguments and run a
payload builder on the reader threads.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from jupyter_amltrain.server import payloads
from jupyter_amltrain.server.base import AmlTrainHandler
from jupyter_amltrain.server.streams import LogStreamHandler

NAMESPACE = "jupyter-amltrain/api"
RUN = r"runs/(?P<run_id>[^/]+)"


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

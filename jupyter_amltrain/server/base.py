"""The base of every handler of the REST API (handlers.py) and of the log stream (streams.py): Jupyter's
authentication and the ``amltrain`` authorization resource, JSON errors, query arguments, and running payload
builders on the reader threads for the workspace a request names."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jupyter_server.base.handlers import APIHandler

from jupyter_amltrain.engine.workspace import LocalWorkspace
from jupyter_amltrain.exceptions import AzureMLException
from jupyter_amltrain.server.context import SETTINGS_KEY, ApiError, ServerContext


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

"""The workspace store: one SQLite database in WAL mode plus folders of files."""

from jupyter_amltrain.engine.store.db import Store
from jupyter_amltrain.engine.store.layout import WorkspaceLayout

__all__ = ["Store", "WorkspaceLayout"]

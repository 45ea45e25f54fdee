"""Environments a workspace knows: the latest version of each registered one, and those its runs used
without registering them (v1 lets ``ScriptRunConfig`` carry an unregistered ``Environment``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyter_amltrain.engine.environments import list_environments
from jupyter_amltrain.engine.store.db import Store, loads

_NAME = "json_extract(definition, '$.environment.name')"


@dataclass(frozen=True)
class EnvironmentUse:
    name: str
    version: int | None          # None: used by runs, never registered
    definition: dict[str, Any]   # v1 serialized environment (registry password already blanked)
    runs: int
    docker_runs: int             # of those, runs that ran in a container (the run config may ask for Docker)
    last_used: float | None


def list_environment_uses(store: Store) -> list[EnvironmentUse]:
    """By name. A registered environment carries its latest registered definition; an unregistered one the
    definition of its latest run."""
    registered = list_environments(store)
    # SQLite's JSON functions aggregate in the database: one row per environment name, not per run.
    usage: dict[str, tuple[int, int, float | None]] = {
        row["name"]: (int(row["runs"]), int(row["docker_runs"] or 0), float(row["last_used"]))
        for row in store.query(
            f"""SELECT {_NAME} AS name, COUNT(*) AS runs, MAX(created) AS last_used,
                       SUM(json_extract(properties, '$."amltrain.backend"') = 'docker') AS docker_runs
                FROM runs WHERE {_NAME} IS NOT NULL GROUP BY name""")
    }
    uses = []
    for name in sorted(set(registered) | set(usage)):
        count, docker_runs, last = usage.get(name, (0, 0, None))
        if name in registered:
            definition, version = registered[name]
            uses.append(EnvironmentUse(name, version, definition, count, docker_runs, last))
            continue
        row = store.query_one(f"SELECT json_extract(definition, '$.environment') AS env FROM runs WHERE {_NAME} = ? "
                              "ORDER BY created DESC LIMIT 1", (name,))
        uses.append(EnvironmentUse(name, None, loads(row["env"] if row else None, {}), count, docker_runs, last))
    return uses

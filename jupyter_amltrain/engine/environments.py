"""Registered environment definitions: numbered versions per name, in the workspace store.

A definition is the v1 serialized environment dict. Registering one that equals the latest version (ignoring
``name``, ``version`` and ``assetId``) returns that version instead of adding a new one, as v1 does, so
re-running a notebook cell does not pile up identical versions. Secrets never reach the database: every key
named ``password`` is blanked before storing, whatever the caller passed.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from jupyter_amltrain.engine.store import Store
from jupyter_amltrain.engine.store.db import dumps, loads
from jupyter_amltrain.exceptions import UserErrorException

# Identity and bookkeeping fields; they do not make two definitions different.
_IDENTITY_KEYS = ("name", "version", "assetId")


def strip_secrets(definition: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``definition`` with every ``password`` value set to None."""

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: None if str(key).lower() == "password" else scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return copy.deepcopy(value)

    cleaned: dict[str, Any] = scrub(definition)
    return cleaned


def _content(definition: dict[str, Any]) -> str:
    return dumps({key: value for key, value in definition.items() if key not in _IDENTITY_KEYS})


def register_environment(store: Store, name: str, definition: dict[str, Any], image_hash: str) -> int:
    """Store ``definition`` under ``name``; returns its version (the latest one if nothing changed)."""
    if not isinstance(name, str) or not name.strip():
        raise UserErrorException("An environment needs a name to be registered: Environment(name='my-env').")
    cleaned = strip_secrets(definition)
    with store.write() as db:
        row = db.execute(
            "SELECT version, definition FROM environments WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
        ).fetchone()
        if row is not None and _content(loads(row["definition"])) == _content(cleaned):
            return int(row["version"])
        version = 1 if row is None else int(row["version"]) + 1
        cleaned.update(name=name, version=str(version))
        db.execute(
            "INSERT INTO environments(name, version, definition, image_hash, created) VALUES (?, ?, ?, ?, ?)",
            (name, version, dumps(cleaned), image_hash, time.time()),
        )
    return version


def get_environment(store: Store, name: str, version: int | None = None) -> tuple[dict[str, Any], int] | None:
    """The definition and version of ``name`` (latest when ``version`` is None), or None if absent."""
    if version is None:
        row = store.query_one(
            "SELECT version, definition FROM environments WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
        )
    else:
        row = store.query_one(
            "SELECT version, definition FROM environments WHERE name = ? AND version = ?", (name, int(version))
        )
    if row is None:
        return None
    return loads(row["definition"]), int(row["version"])


def get_image_hash(store: Store, name: str, version: int) -> str | None:
    row = store.query_one("SELECT image_hash FROM environments WHERE name = ? AND version = ?", (name, version))
    return None if row is None else str(row["image_hash"])


def list_environments(store: Store) -> dict[str, tuple[dict[str, Any], int]]:
    """Latest version of every registered environment, by name (sorted by name)."""
    rows = store.query(
        "SELECT e.name, e.version, e.definition FROM environments e "
        "JOIN (SELECT name, MAX(version) AS latest FROM environments GROUP BY name) m "
        "ON e.name = m.name AND e.version = m.latest ORDER BY e.name"
    )
    return {row["name"]: (loads(row["definition"]), int(row["version"])) for row in rows}

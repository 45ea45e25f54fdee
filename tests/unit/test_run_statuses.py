"""The run statuses live in one place (engine/runs/statuses.py); the copies outside Python must equal it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

import pytest
import yaml

from jupyter_amltrain.engine.runs import statuses

REPO = Path(__file__).resolve().parents[2]


def test_groupings_partition_the_one_list() -> None:
    assert set(statuses.ALL) == set(get_args(statuses.RunStatus)) == set(statuses.STATUS_FAMILIES)
    assert len(statuses.ALL) == len(set(statuses.ALL))
    assert set(statuses.ACTIVE).isdisjoint(statuses.TERMINAL)
    assert set(statuses.ACTIVE) | set(statuses.TERMINAL) == set(statuses.ALL)
    assert set(statuses.LIFECYCLE) < set(statuses.ACTIVE)
    for group in (statuses.WAITING, statuses.BEFORE_JOB, statuses.EXECUTING, statuses.RUNNING,
                  statuses.POST_PROCESSING):
        assert set(group) <= set(statuses.ACTIVE)
    assert all(statuses.is_terminal(s) != statuses.is_active(s) for s in statuses.ALL)
    assert statuses.family("Completed") == "ok" and statuses.family("no such status") == "waiting"


def test_sql_list_writes_only_run_statuses() -> None:
    assert statuses.sql_list(statuses.TERMINAL) == "('Completed', 'Failed', 'Canceled')"
    assert statuses.sql_list(("Queued",)) == "('Queued')"
    with pytest.raises(ValueError):
        statuses.sql_list(["Completed", "x') OR 1=1 --"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        statuses.sql_list([])


def test_v1_names_are_the_engine_groupings() -> None:
    from jupyter_amltrain.core import run

    assert run.RUNNING_STATES == statuses.RUNNING
    assert run.POST_PROCESSING_STATES == statuses.POST_PROCESSING


def test_labextension_lists_equal_the_engine() -> None:
    source = (REPO / "labextension" / "src" / "format.ts").read_text()
    terminal = re.search(r"export const TERMINAL = \[([^\]]*)\];", source)
    assert terminal is not None, "format.ts must hold `export const TERMINAL = [...]`"
    assert tuple(re.findall(r"'(\w+)'", terminal.group(1))) == statuses.TERMINAL
    families = re.search(r"export const STATUS_FAMILIES[^=]*= \{([^}]*)\};", source)
    assert families is not None, "format.ts must hold `export const STATUS_FAMILIES ... = {...}`"
    assert dict(re.findall(r"(\w+): '(\w+)'", families.group(1))) == statuses.STATUS_FAMILIES
    # ... and it is the only list of statuses in the TypeScript sources.
    for path in (REPO / "labextension" / "src").glob("*.ts"):
        if path.name != "format.ts":
            assert not re.search(r"'(Completed|Failed|Canceled|Finalizing|Queued)'", path.read_text()), path


def test_widget_views_get_the_engine_families() -> None:
    from jupyter_amltrain.widgets.assets import STATIC, view_module

    module = view_module("run_details")
    first = module.split("\n", 1)[0]
    assert first == f"const AML_STATUS_FAMILIES = {json.dumps(statuses.STATUS_FAMILIES)};"
    for path in STATIC.glob("*.js"):
        assert not re.search(r"\"(Completed|Failed|Finalizing|Queued)\"", path.read_text()), path


def test_openapi_documents_the_engine_statuses() -> None:
    spec = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
    parameters = spec["paths"]["/runs"]["get"]["parameters"]
    status = next(p for p in parameters if p.get("name") == "status")
    assert tuple(status["schema"]["enum"]) == statuses.ALL

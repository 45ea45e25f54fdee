"""events.jsonl -> store (ingest), host-side logging (record) and reading back (query)."""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_amltrain.engine.runtime.context import JobContext
from jupyter_amltrain.engine.store.db import Store, loads
from jupyter_amltrain.engine.tracking import (
    add_properties_in_store,
    get_metrics,
    ingest_events,
    log_to_store,
    metric_rows,
    set_tags_in_store,
)
from jupyter_amltrain.exceptions import UserErrorException

RUN = "exp_1700000000_0123abcd"
WRITERS = 4
EVENTS_PER_WRITER = 500


def make_store(path: Path, run_id: str = RUN) -> Store:
    store = Store(path)
    with store.write() as db:
        db.execute("INSERT INTO experiments (name, id, created) VALUES ('exp', 'e-id', 0)")
        db.execute(
            "INSERT INTO runs (run_id, experiment, number, status, target, definition, created) "
            "VALUES (?, 'exp', 1, 'Running', 'local', '{}', 0)",
            (run_id,),
        )
    return store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return make_store(tmp_path / "ws" / "workspace.db")


@pytest.fixture
def ctx(tmp_path: Path) -> JobContext:
    return JobContext(RUN, str(tmp_path / "run" / "tracking"), str(tmp_path / "run" / "wd"))


def events_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "tracking" / "events.jsonl"


def run_row(store: Store) -> Any:
    return store.query_one("SELECT tags, properties, warnings FROM runs WHERE run_id = ?", (RUN,))


def test_job_events_become_v1_metrics(store: Store, ctx: JobContext, tmp_path: Path) -> None:
    ctx.log("acc", 0.5)
    ctx.log("loss", 1.0, step=1)
    ctx.log("loss", float("nan"), step=2)
    ctx.log("loss", float("inf"), step=3)
    ctx.log_list("one", [7])
    ctx.log_row("rows", x=1, y=2)
    ctx.log_row("rows", x=3, y=4)
    ctx.log_table("tbl", {"a": [1, 2]})
    assert ingest_events(store, RUN, events_path(tmp_path)) == 8
    metrics = get_metrics(store, RUN)
    assert metrics["acc"] == 0.5
    assert metrics["loss"][0] == 1.0 and math.isnan(metrics["loss"][1]) and metrics["loss"][2] == math.inf
    assert metrics["one"] == 7
    assert metrics["rows"] == {"x": [1, 3], "y": [2, 4]}
    assert metrics["tbl"] == {"a": [1, 2]}
    assert get_metrics(store, RUN, "acc") == {"acc": 0.5}
    assert get_metrics(store, RUN, "missing") == {}
    loss_rows = [r for r in metric_rows(store, RUN) if r.name == "loss"]
    assert [(r.seq, r.step) for r in loss_rows] == [(1, 1), (2, 2), (3, 3)]


def test_ingest_is_idempotent(store: Store, ctx: JobContext, tmp_path: Path) -> None:
    ctx.log("m", 1)
    assert ingest_events(store, RUN, events_path(tmp_path)) == 1
    assert ingest_events(store, RUN, events_path(tmp_path)) == 0
    ctx.log("m", 2)
    assert ingest_events(store, RUN, events_path(tmp_path)) == 1
    assert get_metrics(store, RUN) == {"m": [1, 2]}


def test_missing_events_file_means_nothing_yet(store: Store, tmp_path: Path) -> None:
    assert ingest_events(store, RUN, tmp_path / "nope" / "events.jsonl") == 0


def test_unknown_run_is_an_error(store: Store, ctx: JobContext, tmp_path: Path) -> None:
    ctx.log("m", 1)
    with pytest.raises(UserErrorException, match="not in this workspace"):
        ingest_events(store, "other_run", events_path(tmp_path))


def test_partial_trailing_line_is_left_for_next_time(store: Store, tmp_path: Path) -> None:
    path = events_path(tmp_path)
    path.parent.mkdir(parents=True)
    line = json.dumps({"op": "metric", "kind": "scalar", "name": "m", "value": 1, "step": None,
                       "description": "", "t": 1.0}) + "\n"
    path.write_text(line + line[:20])
    assert ingest_events(store, RUN, path) == 1
    assert [tuple(r) for r in store.query("SELECT offset FROM ingest_offsets WHERE run_id = ?", (RUN,))] == [
        (len(line),)
    ]
    with path.open("a") as f:
        f.write(line[20:])
    assert ingest_events(store, RUN, path) == 1
    assert get_metrics(store, RUN) == {"m": [1, 1]}


def test_malformed_lines_are_skipped_with_a_warning(store: Store, ctx: JobContext, tmp_path: Path) -> None:
    ctx.log("m", 1)
    with events_path(tmp_path).open("ab") as f:
        f.write(b"{not json\n")
        f.write(b"\xff\xfe\n")
        f.write(b'{"op":"metric","kind":"row","name":"r","value":{"x":[1,2]}}\n')
        f.write(b'{"op":"metric","kind":"gauge","name":"g","value":1}\n')
        f.write(b'{"op":"explode"}\n')
        f.write(b"[1, 2]\n")
    ctx.log("m", 2)
    with pytest.warns(UserWarning, match="skipping malformed event") as caught:
        assert ingest_events(store, RUN, events_path(tmp_path)) == 2
    assert len(caught) == 6
    assert get_metrics(store, RUN) == {"m": [1, 2]}
    assert ingest_events(store, RUN, events_path(tmp_path)) == 0  # not retried


def test_tags_merge_and_properties_are_immutable(store: Store, ctx: JobContext, tmp_path: Path) -> None:
    ctx.tag("stage", "a")
    ctx.set_tags({"stage": "b", "quick": None})
    ctx.add_properties({"framework": "torch"})
    ctx.add_properties({"framework": "torch"})  # same value: fine
    ctx.add_properties({"framework": "jax", "seed": 1})
    ctx.upload_file("outputs/x.txt", io.BytesIO(b"x"))
    with pytest.warns(UserWarning, match="Property 'framework' is already 'torch'"):
        assert ingest_events(store, RUN, events_path(tmp_path)) == 8
    row = run_row(store)
    assert loads(row["tags"]) == {"stage": "b", "quick": ""}
    assert loads(row["properties"]) == {"framework": "torch", "seed": "1"}
    warnings_list = loads(row["warnings"])
    assert len(warnings_list) == 1 and "'jax' was ignored" in warnings_list[0]["message"]


def test_log_to_store_validates_and_writes_nothing_on_error(store: Store) -> None:
    log_to_store(store, RUN, "scalar", "m", 0.5, step=1)
    log_to_store(store, RUN, "row", "r", {"x": 1})
    log_to_store(store, RUN, "list", "l", [float("nan"), 2])
    with pytest.raises(UserErrorException, match="64-bit"):
        log_to_store(store, RUN, "scalar", "m", 2**64)
    with pytest.raises(UserErrorException, match="must be a scalar"):
        log_to_store(store, RUN, "row", "r", {"x": [1, 2]})
    with pytest.raises(UserErrorException, match=r"InvalidColumnLength.*a=1, b=2"):
        log_to_store(store, RUN, "table", "t", {"a": [1], "b": [1, 2]})
    with pytest.raises(UserErrorException, match="Metric name"):
        log_to_store(store, RUN, "scalar", "", 1)
    with pytest.raises(UserErrorException, match="not in this workspace"):
        log_to_store(store, "ghost", "scalar", "m", 1)
    metrics = get_metrics(store, RUN)
    assert metrics["m"] == 0.5 and metrics["r"] == {"x": 1}
    assert math.isnan(metrics["l"][0]) and metrics["l"][1] == 2
    assert [r.name for r in metric_rows(store, RUN)] == ["l", "m", "r"]


def test_log_to_store_reprs_unknown_objects_with_a_warning(store: Store) -> None:
    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    with pytest.warns(UserWarning, match="type Thing"):
        log_to_store(store, RUN, "scalar", "obj", Thing())
    assert get_metrics(store, RUN) == {"obj": "Thing()"}


def test_host_logging_and_job_events_share_seq(store: Store, ctx: JobContext, tmp_path: Path) -> None:
    log_to_store(store, RUN, "scalar", "m", 1)
    ctx.log("m", 2)
    ingest_events(store, RUN, events_path(tmp_path))
    log_to_store(store, RUN, "scalar", "m", 3)
    assert get_metrics(store, RUN) == {"m": [1, 2, 3]}


def test_host_tags_and_properties(store: Store) -> None:
    set_tags_in_store(store, RUN, {"a": 1, "b": None})
    assert add_properties_in_store(store, RUN, {"p": "x"}) == []
    refused = add_properties_in_store(store, RUN, {"p": "y"})
    assert len(refused) == 1 and "'p'" in refused[0]
    row = run_row(store)
    assert loads(row["tags"]) == {"a": "1", "b": ""}
    assert loads(row["properties"]) == {"p": "x"}
    with pytest.raises(UserErrorException, match="Tag key"):
        set_tags_in_store(store, RUN, {"": "v"})


# -- many writers, two ingesters ------------------------------------------------------------------------------

PAD = "p" * 5000  # makes every line longer than PIPE_BUF; appends must still never interleave


def _writer(tracking: str, workdir: str, worker: int, inherited: JobContext | None) -> None:
    ctx = inherited if inherited is not None else JobContext(RUN, tracking, workdir)
    for i in range(EVENTS_PER_WRITER):
        ctx.log(f"w{worker}", i, description=PAD)
    os._exit(0)  # skip pytest's atexit machinery in the forked child


def _ingester(db_path: str, events: str, writers_done: Any, counter: Any) -> None:
    store = Store(Path(db_path))  # a fresh connection: sqlite connections must not cross fork
    total = 0
    while True:
        done = writers_done.is_set()
        applied = ingest_events(store, RUN, Path(events))
        total += applied
        if done and applied == 0:
            break
        time.sleep(0.001)
    with counter.get_lock():
        counter.value += total
    os._exit(0)


def test_concurrent_writers_and_ingesters_apply_each_event_once(tmp_path: Path) -> None:
    db_path = tmp_path / "ws" / "workspace.db"
    make_store(db_path).close()
    tracking, workdir = str(tmp_path / "run" / "tracking"), str(tmp_path / "run" / "wd")
    shared = JobContext(RUN, tracking, workdir)  # two writers inherit its open file, like DataLoader workers
    mp = multiprocessing.get_context("fork")
    writers_done, counter = mp.Event(), mp.Value("i", 0)
    ingesters = [mp.Process(target=_ingester, args=(str(db_path), str(events_path(tmp_path)), writers_done,
                                                    counter)) for _ in range(2)]
    writers = [mp.Process(target=_writer, args=(tracking, workdir, w, shared if w < 2 else None))
               for w in range(WRITERS)]
    for p in ingesters + writers:
        p.start()
    for p in writers:
        p.join(120)
        assert p.exitcode == 0
    writers_done.set()
    for p in ingesters:
        p.join(120)
        assert p.exitcode == 0

    lines = events_path(tmp_path).read_text().splitlines()
    assert len(lines) == WRITERS * EVENTS_PER_WRITER
    assert all(json.loads(line)["description"] == PAD for line in lines)
    assert counter.value == WRITERS * EVENTS_PER_WRITER
    store = Store(db_path)
    metrics = get_metrics(store, RUN)
    for w in range(WRITERS):
        assert metrics[f"w{w}"] == list(range(EVENTS_PER_WRITER))  # each once, in each writer's order
    seqs = store.query("SELECT name, MIN(seq), MAX(seq), COUNT(*) FROM metrics GROUP BY name")
    assert all(tuple(r)[1:] == (1, EVENTS_PER_WRITER, EVENTS_PER_WRITER) for r in seqs)

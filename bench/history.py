"""History: a workspace with 10,000 runs of 20 metrics each (10 logged values per metric, 2 million metric
rows): listing an experiment's runs and building the history widget's data. Target: at most 100 ms, and
growth no worse than linear (measured at 1,000, 5,000 and 10,000 runs).

The store is filled with bulk inserts in the store's own schema (not timed). Timed, with a warm connection
as a live notebook has it (median of 15): ``list_run_summaries`` for the first page (100 runs), and the
``RunHistory`` widget's refresh (its table of 50 runs with their latest metrics, and the comparison curves
of 5 ticked runs). The baseline is the SQL floor of a page: the same two statements as plain rows (the
page's runs, the latest value of each of their metrics), nothing built from them. The full listing (every
run of the experiment in one call) is reported too, timed once per size.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from bench.measure import Options, Result, Target, main_for, median, repeat
from bench.sandbox import isolated_workspace

EXPERIMENT = "history"
METRICS = 20
VALUES_PER_METRIC = 10
PAGE = 100
WIDGET_ROWS = 50  # RunHistory's default limit
SELECTED = 5
ROUNDS = 15


def fill(store: Any, runs: int, first_number: int) -> None:
    """Add ``runs`` completed runs, each with METRICS scalar metrics of VALUES_PER_METRIC values."""
    from jupyter_amltrain.engine.runs.records import ensure_experiment
    from jupyter_amltrain.engine.store.db import dumps

    ensure_experiment(store, EXPERIMENT)
    base = 1_700_000_000.0
    definition = dumps({"environment": {"name": "bench-env"}, "script": "train.py", "target": "local"})
    run_rows, metric_rows = [], []
    for number in range(first_number, first_number + runs):
        run_id = f"{EXPERIMENT}_{number:06d}"
        created = base + number * 60
        run_rows.append((run_id, EXPERIMENT, number, "Completed", "local", number, definition, dumps({}),
                         dumps({"lr": f"{0.001 * (number % 10 + 1):.3f}"}), created, created + 5, created + 55))
        for m in range(METRICS):
            for seq in range(1, VALUES_PER_METRIC + 1):
                value = repr(1.0 / (seq + m + number % 7))  # a finite float's repr is its JSON
                metric_rows.append((run_id, f"metric_{m:02d}", seq, "scalar", value, seq - 1, "",
                                    created + 5 + seq))
    with store.write() as db:
        db.executemany(
            "INSERT INTO runs(run_id, experiment, number, status, target, queue_seq, definition, properties, tags, "
            "created, started, ended) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", run_rows)
        db.executemany("INSERT INTO metrics(run_id, name, seq, kind, value, step, description, time) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", metric_rows)
        db.execute("UPDATE experiments SET next_number = ? WHERE name = ?", (first_number + runs, EXPERIMENT))
    store.db.execute("ANALYZE")  # as a long-lived store would have statistics; cheap, and not timed


def raw_page(store: Any, limit: int) -> None:
    """The floor: the page's run rows and the latest value of each of their metrics, as plain SQL rows (the
    two statements ``list_run_summaries`` runs, without turning rows into summaries)."""
    db = store.db
    ids = [row[0] for row in db.execute(
        "SELECT run_id, experiment, number, status, sub_status, target, definition, created, started, ended, tags "
        "FROM runs WHERE experiment = ? ORDER BY created DESC, number DESC LIMIT ?", (EXPERIMENT, limit))]
    db.execute(f"SELECT run_id, name, value, MAX(seq) FROM metrics WHERE run_id IN ({','.join('?' * len(ids))}) "
               "AND kind = 'scalar' GROUP BY run_id, name", tuple(ids)).fetchall()


def widget_refresher(ws: Any) -> tuple[Callable[[], None], str]:
    """A call that rebuilds the history widget's data, and what it is."""
    try:
        from jupyter_amltrain.widgets.run_history import RunHistory
    except ImportError:
        return _widget_data_without_widget(ws), "list_run_summaries + metric_series of 5 runs (no widget in tree)"
    history = RunHistory(ws, EXPERIMENT)
    picked = [row["run_id"] for row in history.view.rows[:SELECTED]]
    history.select(picked, "metric_00")
    if len(history.view.compare) != SELECTED:
        raise RuntimeError("the history widget did not chart the ticked runs: the benchmark would time nothing")
    return history.refresh, f"RunHistory.refresh (table of {history.limit}, curves of {SELECTED} ticked runs)"


def _widget_data_without_widget(ws: Any) -> Callable[[], None]:
    from jupyter_amltrain.core.workspace import engine_workspace
    from jupyter_amltrain.engine.tracking.query import metric_rows
    from jupyter_amltrain.engine.tracking.shapes import series_for_chart
    from jupyter_amltrain.engine.views.runs import list_run_summaries

    store = engine_workspace(ws).store

    def build() -> None:
        summaries = list_run_summaries(store, EXPERIMENT, limit=WIDGET_ROWS)
        for summary in summaries[:SELECTED]:
            series_for_chart((r.name, r.kind, r.value, r.step) for r in metric_rows(store, summary.run_id))

    return build


def run(options: Options) -> list[Result]:
    from jupyter_amltrain.core.workspace import engine_workspace
    from jupyter_amltrain.engine.views.runs import list_run_summaries

    sizes = (200, 500, 1_000) if options.quick else (1_000, 5_000, 10_000)
    rounds = 5 if options.quick else ROUNDS
    points: list[dict[str, Any]] = []
    with isolated_workspace("history") as sandbox:
        store = engine_workspace(sandbox.ws).store
        filled = 0
        for size in sizes:
            started = time.perf_counter()
            fill(store, size - filled, filled + 1)
            setup = time.perf_counter() - started
            filled = size
            refresh, widget_name = widget_refresher(sandbox.ws)
            page = repeat(lambda: list_run_summaries(store, EXPERIMENT, limit=PAGE), rounds)
            widget = repeat(refresh, rounds)
            floor = repeat(lambda: raw_page(store, PAGE), rounds)
            full = repeat(lambda n=size: list_run_summaries(store, EXPERIMENT, limit=n), 1)  # type: ignore[misc]
            full_floor = repeat(lambda n=size: raw_page(store, n), 1)  # type: ignore[misc]
            points.append({"runs": size, "page_s": median(page), "widget_s": median(widget), "floor_s": median(floor),
                           "full_s": median(full), "full_floor_s": median(full_floor), "setup_s": setup,
                           "first_page_call_s": page[0]})
    last, first = points[-1], points[0]
    scale = last["runs"] / first["runs"]
    table = [f"{p['runs']:,} runs: page {p['page_s'] * 1000:.1f} ms, widget {p['widget_s'] * 1000:.1f} ms, "
             f"floor {p['floor_s'] * 1000:.1f} ms, full listing {p['full_s'] * 1000:.0f} ms" for p in points]
    details = {"points": points, "metrics_per_run": METRICS, "values_per_metric": VALUES_PER_METRIC,
               "widget_call": widget_name}
    growth = {key: last[key] / first[key] for key in ("page_s", "widget_s", "full_s")}
    return [
        Result("history_list_page", last["page_s"] * 1000, "ms", f"SQL floor for {PAGE} runs",
               last["floor_s"] * 1000, target=Target(100.0, on="value"), details=details, notes=table),
        Result("history_widget_data", last["widget_s"] * 1000, "ms", f"SQL floor for {PAGE} runs",
               last["floor_s"] * 1000, target=Target(100.0, on="value"), notes=[f"Timed: {widget_name}."]),
        Result("history_growth_page", growth["page_s"], "x", f"linear ({scale:g}x more runs)", scale,
               target=Target(1.0), notes=["Time at the largest size over time at the smallest, against the "
                                          "growth in runs: at most 1x is no worse than linear."]),
        Result("history_growth_widget", growth["widget_s"], "x", f"linear ({scale:g}x more runs)", scale,
               target=Target(1.0)),
        Result("history_full_listing", last["full_s"] * 1000, "ms", f"SQL floor for all {last['runs']:,} runs",
               last["full_floor_s"] * 1000, details={"growth": growth["full_s"]},
               notes=[f"Grows {growth['full_s']:.1f}x over {scale:g}x more runs."]),
    ]


if __name__ == "__main__":
    sys.exit(main_for(run, __doc__))

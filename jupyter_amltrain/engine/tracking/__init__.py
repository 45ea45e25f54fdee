"""Host side of run tracking: ingest a job's events into the store and read metrics back in v1 shapes.

* ``ingest``  - ``ingest_events``: tracking/events.jsonl -> store, each line exactly once.
* ``record``  - ``log_to_store`` and friends: host-side logging with the job's v1 value rules.
* ``query``   - ``get_metrics`` (v1 shapes) and ``metric_rows``.
* ``shapes``  - ``shape_metrics`` and ``series_for_chart`` over plain rows.
"""

from jupyter_amltrain.engine.tracking.ingest import ingest_events
from jupyter_amltrain.engine.tracking.query import MetricRow, get_metrics, metric_rows
from jupyter_amltrain.engine.tracking.record import add_properties_in_store, log_to_store, set_tags_in_store
from jupyter_amltrain.engine.tracking.shapes import series_for_chart, shape_metrics

__all__ = [
    "MetricRow",
    "add_properties_in_store",
    "get_metrics",
    "ingest_events",
    "log_to_store",
    "metric_rows",
    "series_for_chart",
    "set_tags_in_store",
    "shape_metrics",
]

"""v1 get_metrics() shapes (reference section 1.10) and chart series, from plain rows."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest

from jupyter_amltrain.engine.tracking.shapes import series_for_chart, shape_metrics

LOC = "aml://artifactId/ExperimentRun/dcid.r1/"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param([("a", "scalar", 0.5)], 0.5, id="log once -> scalar"),
        pytest.param([("a", "scalar", 1), ("a", "scalar", 2), ("a", "scalar", 3)], [1, 2, 3],
                     id="log k times -> list in order"),
        pytest.param([("a", "list", [1, 2, 3])], [1, 2, 3], id="log_list -> list"),
        pytest.param([("a", "list", [7])], 7, id="log_list of one element collapses to scalar"),
        pytest.param([("a", "list", [1, 2]), ("a", "list", [3])], [1, 2, 3], id="several log_list append"),
        pytest.param([("a", "list", [])], [], id="empty log_list -> empty list"),
        pytest.param([("a", "row", {"x": 1, "y": 2})], {"x": 1, "y": 2}, id="log_row once -> dict of scalars"),
        pytest.param([("a", "row", {"x": 1, "y": 2}), ("a", "row", {"x": 3, "y": 4})],
                     {"x": [1, 3], "y": [2, 4]}, id="log_row k times -> dict of lists"),
        pytest.param([("a", "table", {"x": [1, 2], "y": [3, 4]})], {"x": [1, 2], "y": [3, 4]},
                     id="log_table -> dict of lists"),
        pytest.param([("a", "table", {"x": [1, 2]}), ("a", "row", {"x": 3})], {"x": [1, 2, 3]},
                     id="log_row appends to log_table (same v1 type)"),
        pytest.param([("a", "row", {"x": 1}), ("a", "row", {"y": 2})], {"x": [1, None], "y": [None, 2]},
                     id="rows with different columns are padded with None"),
        pytest.param([("a", "image", LOC + "p.png")], LOC + "p.png", id="log_image once -> location"),
        pytest.param([("a", "image", LOC + "p.png"), ("a", "image", LOC + "q.png")],
                     [LOC + "p.png", LOC + "q.png"], id="log_image twice -> list of locations"),
    ],
)
def test_v1_shape_table(rows: list[tuple[str, str, Any]], expected: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these is a conflict
        assert shape_metrics(rows) == {"a": expected}


def test_floats_stay_floats_and_names_are_independent() -> None:
    shaped = shape_metrics([("loss", "scalar", 1.0), ("acc", "scalar", 0.5), ("loss", "scalar", 0.5)])
    assert shaped == {"loss": [1.0, 0.5], "acc": 0.5}
    assert isinstance(shaped["acc"], float)


def test_conflicting_kinds_keep_the_first_and_warn() -> None:
    rows = [("m", "scalar", 1.0), ("m", "list", [1, 2]), ("m", "scalar", 2.0), ("m", "row", {"x": 1})]
    with pytest.warns(UserWarning, match="Conflicting metric types for 'm'") as caught:
        shaped = shape_metrics(rows)
    assert shaped == {"m": [1.0, 2.0]}
    assert len(caught) == 2  # one warning per dropped kind, not per dropped row


def test_no_rows_no_metrics() -> None:
    assert shape_metrics([]) == {}


def test_series_for_chart_scalar_steps_and_lists() -> None:
    rows = [
        ("loss", "scalar", 1.0, 10),
        ("loss", "scalar", 0.5, 20),
        ("acc", "scalar", 1, None),
        ("acc", "scalar", float("nan"), None),
        ("curve", "list", [3, 2, 1], None),
        ("table", "row", {"x": 1}, None),
        ("name", "scalar", "resnet", None),
    ]
    series = series_for_chart(rows)
    assert series == {
        "loss": {"steps": [10, 20], "values": [1.0, 0.5]},
        "acc": {"steps": [0, 1], "values": [1.0, None]},
        "curve": {"steps": [0, 1, 2], "values": [3.0, 2.0, 1.0]},
    }
    assert all(isinstance(v, float) for v in series["curve"]["values"])


def test_series_drops_conflicting_rows_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        series = series_for_chart([("m", "scalar", 1.0, None), ("m", "list", [5.0], None)])
    assert series == {"m": {"steps": [0], "values": [1.0]}}


def test_nan_scalar_is_a_float_in_get_metrics_shape() -> None:
    shaped = shape_metrics([("m", "scalar", float("nan"))])
    assert math.isnan(shaped["m"])

"""v1 value rules for run.log & co (engine/runtime/values.py)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from jupyter_amltrain.engine.runtime.values import (
    MetricValueError,
    check_name,
    check_step,
    decode_value,
    list_value,
    row_value,
    scalar_value,
    table_value,
    tag_value,
    validate,
)


class Unknown:
    def __repr__(self) -> str:
        return "Unknown()"


def test_python_scalars_are_kept() -> None:
    assert scalar_value("m", True) is True
    assert scalar_value("m", 3) == 3 and type(scalar_value("m", 3)) is int
    assert scalar_value("m", 0.25) == 0.25
    assert scalar_value("m", "text") == "text"


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_ints_beyond_signed_64_bit_are_rejected(value: int) -> None:
    with pytest.raises(MetricValueError, match=r"64-bit.*float\(value\)"):
        scalar_value("big", value)


def test_int64_bounds_are_accepted() -> None:
    assert scalar_value("m", 2**63 - 1) == 2**63 - 1
    assert scalar_value("m", -(2**63)) == -(2**63)


@pytest.mark.parametrize(("value", "code"), [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")])
def test_non_finite_floats_round_trip_through_json(value: float, code: str) -> None:
    stored = scalar_value("m", value)
    assert stored == code
    back = decode_value(json.loads(json.dumps(stored, allow_nan=False)))
    assert isinstance(back, float)
    assert (math.isnan(back) and math.isnan(value)) or back == value


def test_decode_value_walks_lists_and_tables() -> None:
    decoded = decode_value({"a": ["NaN", 1], "b": ["x", "-Infinity"]})
    assert math.isnan(decoded["a"][0]) and decoded["a"][1] == 1
    assert decoded["b"] == ["x", -math.inf]


def test_unknown_objects_are_stored_as_repr_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    assert scalar_value("m", Unknown()) == "Unknown()"
    err = capsys.readouterr().err
    assert "'m'" in err and "Unknown" in err and "float(value)" in err


def test_a_list_passed_to_log_is_repr_d_and_the_warning_points_to_log_list() -> None:
    messages: list[str] = []
    assert scalar_value("m", [1, 2], warn=messages.append) == "[1, 2]"
    assert "log_list" in messages[0]


def test_numpy_scalars_become_python_scalars() -> None:
    np = pytest.importorskip("numpy")
    assert scalar_value("m", np.float32(0.5)) == 0.5 and type(scalar_value("m", np.float32(0.5))) is float
    assert type(scalar_value("m", np.int64(7))) is int
    assert scalar_value("m", np.bool_(True)) is True
    assert scalar_value("m", np.array(2.5)) == 2.5  # 0-d array
    assert scalar_value("m", np.float64("nan")) == "NaN"
    assert check_step("m", np.int32(4)) == 4
    assert list_value("m", np.array([1, 2, 3])) == [1, 2, 3]
    with pytest.raises(MetricValueError, match="must be a scalar"):
        row_value("m", {"x": np.array([1.0])})
    with pytest.raises(MetricValueError, match="64-bit"):
        scalar_value("m", np.uint64(2**64 - 1))


def test_duck_typed_item_without_numpy() -> None:
    class Scalar:
        shape = ()

        def item(self) -> float:
            return 1.5

    assert scalar_value("m", Scalar()) == 1.5


@pytest.mark.parametrize("name", ["", None, 3, "x" * 256])
def test_bad_names(name: Any) -> None:
    with pytest.raises(MetricValueError, match="Metric name"):
        check_name(name)


def test_name_at_the_limit_is_fine() -> None:
    assert check_name("x" * 255) == "x" * 255


@pytest.mark.parametrize("step", [1.5, "3", True])
def test_step_must_be_an_integer(step: Any) -> None:
    with pytest.raises(MetricValueError, match="step must be an integer"):
        check_step("m", step)


def test_log_list_needs_a_flat_list() -> None:
    assert list_value("m", (1, "a", 2.5)) == [1, "a", 2.5]
    with pytest.raises(MetricValueError, match="needs a list"):
        list_value("m", 3)
    with pytest.raises(MetricValueError, match=r"Element 1 .* must be a scalar"):
        list_value("m", [1, [2, 3]])


def test_log_row_values_must_be_scalars() -> None:
    assert row_value("m", {"x": 1, "y": "a"}) == {"x": 1, "y": "a"}
    with pytest.raises(MetricValueError, match=r"Column 'y' .* must be a scalar.*log_table"):
        row_value("m", {"x": 1, "y": [1, 2]})


def test_log_row_allows_at_most_15_columns() -> None:
    assert len(row_value("m", {f"c{i}": i for i in range(15)})) == 15
    with pytest.raises(MetricValueError, match="16 columns; v1 allows at most 15"):
        row_value("m", {f"c{i}": i for i in range(16)})
    with pytest.raises(MetricValueError, match="no columns"):
        row_value("m", {})


def test_log_table_needs_equal_length_columns() -> None:
    assert table_value("t", {"a": [1, 2], "b": (3, 4)}) == {"a": [1, 2], "b": [3, 4]}
    with pytest.raises(MetricValueError, match=r"InvalidColumnLength.*'t'.*a=3, b=2"):
        table_value("t", {"a": [1, 2, 3], "b": [1, 2]})
    with pytest.raises(MetricValueError, match="column 'a' must be a list"):
        table_value("t", {"a": 1})
    with pytest.raises(MetricValueError, match="dict of column name"):
        table_value("t", [[1, 2]])


def test_table_nan_cells_are_encoded() -> None:
    assert table_value("t", {"a": [math.nan, 1.0]}) == {"a": ["NaN", 1.0]}


def test_validate_dispatches_by_kind() -> None:
    assert validate("scalar", "m", math.inf) == "Infinity"
    assert validate("image", "m", "aml://artifactId/x") == "aml://artifactId/x"
    with pytest.raises(MetricValueError, match="Unknown metric kind 'histogram'"):
        validate("histogram", "m", 1)
    with pytest.raises(MetricValueError, match="Image metric"):
        validate("image", "m", 3)


def test_tag_values_are_strings() -> None:
    assert tag_value(None) == ""
    assert tag_value(3) == "3"
    assert tag_value("v") == "v"

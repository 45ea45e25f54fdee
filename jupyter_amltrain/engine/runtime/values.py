"""Azure ML SDK v1 rules for metric names and values, shared by the job runtime and the host.

Runs inside job containers too: standard library only, valid Python 3.6.

Every function here returns the value in its stored (JSON-ready) form. JSON has no NaN or infinities, so
non-finite floats are stored as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the spellings
Python's ``json`` module uses) and ``decode_value`` turns them back into floats. The cost: a *string*
metric whose text is exactly one of those three reads back as a float.
"""


import math
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional

KINDS = ("scalar", "list", "row", "table", "image")
MAX_NAME_LENGTH = 255  # v1 service limit on metric and column names
MAX_COLUMNS = 15  # v1 service limit on columns per row / table
# v1 service limits on a run's tags and properties (each: at most 50 keys, keys of at most 100 characters,
# values of at most 1000). Past them the service refuses the call; refusing here keeps code portable and
# keeps run listings small (every listing carries every tag).
MAX_TAG_KEY_LENGTH = 100
MAX_TAG_VALUE_LENGTH = 1000
MAX_TAGS = 50
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_FLOAT_CODES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

Warn = Callable[[str], None]


class MetricValueError(ValueError):
    """A metric name or value v1 would refuse; the message says what is wrong and how to fix it.

    The host side re-raises it as ``UserErrorException``; the runtime cannot import that class.
    """


def warn_to_stderr(message: str) -> None:
    """v1 prints (rather than raises) for values it can store only as text."""
    sys.stderr.write("Warning: " + message + "\n")
    sys.stderr.flush()


def check_name(name: Any, what: str = "Metric name") -> str:
    if not isinstance(name, str) or not name:
        raise MetricValueError(
            "%s must be a non-empty string, got %r. Pass a name such as 'accuracy'." % (what, name)
        )
    if len(name) > MAX_NAME_LENGTH:
        raise MetricValueError(
            "%s %r... is %d characters long; the limit is %d. Use a shorter name."
            % (what, name[:40], len(name), MAX_NAME_LENGTH)
        )
    return str(name)


def check_description(description: Any) -> str:
    if description is None:
        return ""
    return description if isinstance(description, str) else str(description)


def check_step(name: str, step: Any) -> Optional[int]:
    if step is None:
        return None
    step = _unwrap(step)
    if isinstance(step, bool) or not isinstance(step, int):
        raise MetricValueError(
            "Metric %r: step must be an integer or None, got %r. Pass step=int(step)." % (name, step)
        )
    _check_int64(name, step)
    return int(step)


def _unwrap(value: Any) -> Any:
    """numpy / torch scalars -> Python scalars, by duck typing (numpy is not importable in every image)."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    item = getattr(value, "item", None)
    if not callable(item):
        return value
    try:
        shape = tuple(getattr(value, "shape", ()))
    except TypeError:
        return value
    if shape != ():  # arrays with elements are not scalars, even one-element ones
        return value
    try:
        return item()
    except Exception:  # an unrelated .item(); treat as an unknown object
        return value


def _is_sequence(value: Any) -> bool:
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return True
    shape = getattr(value, "shape", None)
    return callable(getattr(value, "tolist", None)) and shape is not None and tuple(shape) != ()


def _as_list(value: Any) -> Optional[List[Any]]:
    if isinstance(value, (list, tuple)):
        return list(value)
    tolist = getattr(value, "tolist", None)  # numpy arrays, pandas series, torch tensors
    if callable(tolist):
        result = tolist()
        if isinstance(result, list):
            return result
    return None


def _check_int64(name: str, value: int) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise MetricValueError(
            "Metric %r: integer %d does not fit in a signed 64-bit integer, the largest v1 stores. "
            "Log float(value) or str(value) instead." % (name, value)
        )


def encode_float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def scalar_value(name: str, value: Any, warn: Warn = warn_to_stderr) -> Any:
    """One metric value in stored form: bool, int (64-bit), float (encoded), str, or repr() with a warning."""
    value = _unwrap(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        _check_int64(name, value)
        return int(value)
    if isinstance(value, float):
        return encode_float(float(value))
    if isinstance(value, str):
        return str(value)
    text = repr(value)
    hint = " Use log_list for a list of values." if _is_sequence(value) else ""
    warn(
        "metric %r got a value of type %s, which is not int, float, bool or str; it is stored as the string "
        "%r. Convert it (for example float(value)) to log a number.%s"
        % (name, type(value).__name__, text[:80], hint)
    )
    return text


def _cell(name: str, where: str, value: Any, warn: Warn) -> Any:
    if _is_sequence(value):
        raise MetricValueError(
            "%s of metric %r is a %s, but each value must be a scalar (int, float, bool or str). "
            "Flatten it, or log columns of values with log_table." % (where, name, type(value).__name__)
        )
    return scalar_value(name, value, warn)


def list_value(name: str, value: Any, warn: Warn = warn_to_stderr) -> List[Any]:
    items = _as_list(value)
    if items is None:
        raise MetricValueError(
            "log_list(%r, ...) needs a list of scalars, got %s. Wrap a single value as [value] or use log()."
            % (name, type(value).__name__)
        )
    return [_cell(name, "Element %d" % i, v, warn) for i, v in enumerate(items)]


def _check_columns(name: str, call: str, columns: Mapping[Any, Any]) -> None:
    if not columns:
        raise MetricValueError("%s(%r) got no columns. Pass at least one column, e.g. x=1." % (call, name))
    if len(columns) > MAX_COLUMNS:
        raise MetricValueError(
            "%s(%r) has %d columns; v1 allows at most %d. Split the columns over several metric names."
            % (call, name, len(columns), MAX_COLUMNS)
        )
    for column in columns:
        check_name(column, "Column name of metric %r" % name)


def row_value(name: str, columns: Mapping[str, Any], warn: Warn = warn_to_stderr) -> Dict[str, Any]:
    if not isinstance(columns, Mapping):
        raise MetricValueError("log_row(%r, ...) takes its columns as keyword arguments, e.g. x=1, y=2." % name)
    _check_columns(name, "log_row", columns)
    return {str(k): _cell(name, "Column %r" % k, v, warn) for k, v in columns.items()}


def table_value(name: str, value: Any, warn: Warn = warn_to_stderr) -> Dict[str, List[Any]]:
    if not isinstance(value, Mapping):
        raise MetricValueError(
            "log_table(%r, value) needs a dict of column name -> list of values, got %s."
            % (name, type(value).__name__)
        )
    _check_columns(name, "log_table", value)
    table: Dict[str, List[Any]] = {}
    for column, cells in value.items():
        items = _as_list(cells)
        if items is None:
            raise MetricValueError(
                "log_table(%r): column %r must be a list of values, got %s. Use log_row for one row of scalars."
                % (name, column, type(cells).__name__)
            )
        table[str(column)] = [_cell(name, "A value in column %r" % column, v, warn) for v in items]
    lengths = {column: len(cells) for column, cells in table.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join("%s=%d" % item for item in lengths.items())
        raise MetricValueError(
            "InvalidColumnLength: log_table(%r) needs columns of equal length, got %s. "
            "Give every column the same number of values." % (name, listed)
        )
    return table


def image_value(name: str, value: Any) -> str:
    """The stored value of an image metric: its ``aml://artifactId/...`` data location."""
    if not isinstance(value, str) or not value:
        raise MetricValueError(
            "Image metric %r must hold its data location string (aml://artifactId/...), got %r."
            % (name, value)
        )
    return value


def validate(kind: str, name: Any, value: Any, warn: Warn = warn_to_stderr) -> Any:
    """Check ``name`` and ``value`` for a metric of ``kind``; return the value in stored form."""
    name = check_name(name)
    if kind == "scalar":
        return scalar_value(name, value, warn)
    if kind == "list":
        return list_value(name, value, warn)
    if kind == "row":
        return row_value(name, value, warn)
    if kind == "table":
        return table_value(name, value, warn)
    if kind == "image":
        return image_value(name, value)
    raise MetricValueError("Unknown metric kind %r; use one of %s." % (kind, ", ".join(KINDS)))


def tag_value(value: Any) -> str:
    """v1 tags and properties hold strings; ``tag(key)`` without a value stores an empty string."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def check_tag_key(key: Any, what: str = "Tag") -> str:
    """A tag or property key (``what`` is "Tag" or "Property") within v1's limits."""
    key = check_name(key, what + " key")
    if len(key) > MAX_TAG_KEY_LENGTH:
        raise MetricValueError(
            "%s key %r... is %d characters long; v1 allows at most %d. Use a shorter key."
            % (what, key[:40], len(key), MAX_TAG_KEY_LENGTH)
        )
    return key


def check_tag_value(key: str, value: Any, what: str = "Tag") -> str:
    """The stored (string) value of tag or property ``key``, within v1's limit."""
    text = tag_value(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise MetricValueError(
            "%s %r has a value of %d characters; v1 allows at most %d. Save long text to a file "
            "(run.upload_file) and put its name in the %s instead."
            % (what, key, len(text), MAX_TAG_VALUE_LENGTH, what.lower())
        )
    return text


def decode_value(value: Any) -> Any:
    """Stored form -> Python value (turns the non-finite float codes back into floats)."""
    if isinstance(value, str):
        return _FLOAT_CODES.get(value, value)
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        return {k: decode_value(v) for k, v in value.items()}
    return value

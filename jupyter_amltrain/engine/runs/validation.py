"""Checks on what a run is given, made before anything is written: at submit, and when tags or properties are set.

Each check raises ``UserErrorException`` naming the problem and the fix. They exist because these inputs
otherwise fail late and obscurely: the kernel refuses an ``execve`` whose arguments are too long or hold a
NUL byte, Docker turns ``{"A=B": "x"}`` into ``A="B=x"`` and an empty variable name into an internal error,
and an unbounded tag makes every later run listing as large as the tag.

* ``check_job``: the job's command line and environment variables (names, NUL bytes, the kernel's sizes).
* ``check_tags`` / ``check_properties``: v1's service limits on a run's tags and properties (the per-key rules
  live in ``engine.runtime.values`` so the job side applies the very same ones).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from jupyter_amltrain.engine.runtime.values import (
    MAX_TAGS,
    MetricValueError,
    check_tag_key,
    check_tag_value,
)
from jupyter_amltrain.exceptions import UserErrorException

# Linux refuses any single argument or "NAME=value" string longer than this, terminating NUL included
# (MAX_ARG_STRLEN, 32 pages), whatever ARG_MAX says.
MAX_ARG_STRLEN = 131072
# The kernel caps the total at 3/4 of _STK_LIM (8 MiB) even when the stack limit (and so sysconf) is larger.
KERNEL_ARG_CAP = 6 * 1024 * 1024
# Room for what is added after submit: the AZUREML_*/MLFLOW_*/AMLTRAIN_* variables, PYTHONPATH, GPU
# variables, the launcher's own arguments and the interpreter path that replaces the {python} token.
RESERVED_EXEC_BYTES = 16 * 1024
POINTER_SIZE = struct.calcsize("P")  # execve also copies one pointer per string into the new stack
_FILE_FIX = "Write large inputs to a file in source_directory and pass the file's path instead."


def arg_max() -> int:
    """Bytes this machine's kernel accepts for one exec's arguments plus environment."""
    try:
        limit = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        limit = -1
    if limit <= 0:
        limit = MAX_ARG_STRLEN  # POSIX's smallest ARG_MAX is 4096; Linux never goes below 128 KiB
    return min(limit, KERNEL_ARG_CAP)


def _preview(text: str, at: int = 0, width: int = 40) -> str:
    start = max(0, at - width // 2)
    shown = repr(text[start:start + width])
    return ("..." if start else "") + shown + ("..." if start + width < len(text) else "")


def _encoded(text: str, what: str) -> bytes:
    try:
        return os.fsencode(text)  # what execve and Docker receive
    except UnicodeEncodeError as exc:
        raise UserErrorException(
            f"{what} {_preview(text, exc.start)} holds a character that cannot be encoded for the operating "
            f"system ({exc.reason}). Remove it, or encode the data (e.g. base64) before passing it."
        ) from exc


def check_environment_variable(name: Any, value: Any) -> None:
    """One job environment variable: a POSIX-ish name (non-empty, no '=', no NUL) and a value with no NUL."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise UserErrorException(
            f"Environment variable {name!r}: names and values must be strings, got "
            f"{type(name).__name__} = {type(value).__name__}. Set environment_variables = {{'NAME': 'value'}}."
        )
    if not name:
        raise UserErrorException(
            f"An environment variable has an empty name (value {_preview(value)}). Give it a name, e.g. "
            "environment_variables = {'MY_SETTING': 'value'}, or remove the entry."
        )
    if "=" in name:
        head, _, tail = name.partition("=")
        seen = f"{tail}={value}"
        raise UserErrorException(
            f"Environment variable name {name!r} contains '=', which ends a name: the job would see a variable "
            f"{head!r} set to {seen!r} instead. Use a name without '=' (values may contain it)."
        )
    if "\0" in name:
        raise UserErrorException(
            f"Environment variable name {_preview(name, name.index(chr(0)))} contains a NUL byte (\\x00), which "
            "no process environment can hold. Remove it from the name."
        )
    if "\0" in value:
        raise UserErrorException(
            f"Environment variable {name!r} has a value with a NUL byte (\\x00) in "
            f"{_preview(value, value.index(chr(0)))}, which no process environment can hold. Remove it, or "
            "encode the data (e.g. base64) and decode it in the job."
        )


def check_argument(argument: Any) -> None:
    """One item of the job's command line: a string with no NUL byte."""
    if not isinstance(argument, str):
        raise UserErrorException(
            f"Command-line item {argument!r} is a {type(argument).__name__}; pass arguments as strings."
        )
    if "\0" in argument:
        raise UserErrorException(
            f"The argument {_preview(argument, argument.index(chr(0)))} contains a NUL byte (\\x00), which no "
            "program argument can hold, so the job could not start. Remove it from ScriptRunConfig arguments "
            "(or command), or encode the data (e.g. base64) and decode it in the job."
        )


def check_exec_size(command: Iterable[str], environment: Mapping[str, str],
                    inherited: Mapping[str, str] | None = None, *, limit: int | None = None) -> None:
    """The command line and environment against the kernel's limits, counted as ``execve`` counts them.

    ``inherited``: variables the job's process also gets (this machine's environment, for a local process).
    ``limit``: the total allowed; defaults to ``arg_max()``.
    """
    limit = arg_max() if limit is None else limit
    total = RESERVED_EXEC_BYTES
    largest = ("", 0)
    for argument in command:
        size = len(_encoded(argument, "The argument")) + 1
        if size > MAX_ARG_STRLEN:
            raise UserErrorException(
                f"The argument {_preview(argument)} is {size - 1:,} bytes long; Linux allows at most "
                f"{MAX_ARG_STRLEN - 1:,} bytes in one argument (MAX_ARG_STRLEN), so the job could not start. "
                + _FILE_FIX
            )
        total += size + POINTER_SIZE
        largest = max(largest, (f"the argument {_preview(argument, width=30)}", size), key=lambda item: item[1])
    for name, value in environment.items():
        size = len(_encoded(f"{name}={value}", "The environment variable")) + 1
        if size > MAX_ARG_STRLEN:
            raise UserErrorException(
                f"Environment variable {name!r} is {size - 1:,} bytes long (as NAME=value); Linux allows at most "
                f"{MAX_ARG_STRLEN - 1:,} bytes in one variable (MAX_ARG_STRLEN), so the job could not start. "
                + _FILE_FIX
            )
        total += size + POINTER_SIZE
        largest = max(largest, (f"environment variable {name!r}", size), key=lambda item: item[1])
    host = 0
    for name, value in (inherited or {}).items():
        if name not in environment:
            host += len(os.fsencode(f"{name}={value}")) + 1 + POINTER_SIZE
    total += host
    if total > limit:
        raise UserErrorException(
            f"The job's arguments and environment variables come to {total:,} bytes, over the {limit:,} bytes "
            f"this machine's kernel accepts (ARG_MAX; counting {host:,} bytes of this machine's own environment "
            f"and {RESERVED_EXEC_BYTES:,} reserved for the run's settings), so the job could not start "
            f"(\"Argument list too long\"). The largest part is {largest[0]} ({largest[1] - 1:,} bytes). "
            + _FILE_FIX
        )


def check_job(command: list[str], environment_variables: Mapping[str, str], *,
              inherits_host_environment: bool) -> None:
    """Everything about a job's command line and variables that would stop it from starting.

    ``inherits_host_environment``: a local process gets this machine's environment as well; a container
    gets only its image's (small, and unknown here: covered by the reserve).
    """
    for argument in command:
        check_argument(argument)
    for name, value in environment_variables.items():
        check_environment_variable(name, value)
    check_exec_size(command, environment_variables, os.environ if inherits_host_environment else None)


def _check_pairs(pairs: Any, what: str, call: str, existing: Mapping[str, Any] | None) -> dict[str, str]:
    if not isinstance(pairs, Mapping):
        raise UserErrorException(
            f"{call} needs a dict of {what.lower()} key -> value, got {type(pairs).__name__}."
        )
    clean: dict[str, str] = {}
    try:
        for key, value in pairs.items():
            key = check_tag_key(key, what)
            clean[key] = check_tag_value(key, value, what)
    except MetricValueError as exc:
        raise UserErrorException(str(exc)) from exc
    count = len(set(existing or {}) | set(clean))
    if count > MAX_TAGS:
        raise UserErrorException(
            f"{call} would give the run {count} {what.lower()} keys; v1 allows at most {MAX_TAGS} per run. "
            f"Combine related values into one {what.lower()} (e.g. a JSON string), or save them to a file."
        )
    return clean


def check_tags(tags: Any, existing: Mapping[str, Any] | None = None, *, call: str = "set_tags") -> dict[str, str]:
    """Tags in stored form (string values).

    ``existing``: the run's tags now, for the count limit; ``call``: what the user called, for the message.
    """
    return _check_pairs(tags, "Tag", call, existing)


def check_properties(properties: Any, existing: Mapping[str, Any] | None = None, *,
                     call: str = "add_properties") -> dict[str, str]:
    """Properties in stored form (string values); as ``check_tags``."""
    return _check_pairs(properties, "Property", call, existing)

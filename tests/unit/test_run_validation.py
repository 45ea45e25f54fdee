"""engine/runs/validation: what a run is given is refused before anything is written, with the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_amltrain.engine.runs import validation
from jupyter_amltrain.engine.runs.validation import (
    MAX_ARG_STRLEN,
    POINTER_SIZE,
    RESERVED_EXEC_BYTES,
    arg_max,
    check_argument,
    check_environment_variable,
    check_exec_size,
    check_job,
    check_properties,
    check_tags,
)
from jupyter_amltrain.engine.runtime.context import JobContext
from jupyter_amltrain.engine.runtime.values import MetricValueError
from jupyter_amltrain.engine.store.db import Store, loads
from jupyter_amltrain.engine.tracking import add_properties_in_store, ingest_events, set_tags_in_store
from jupyter_amltrain.exceptions import UserErrorException

RUN = "exp_1700000000_0123abcd"


# -- environment variables ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value", "fragments"), [
    pytest.param("", "x", ["empty name", "Give it a name"], id="empty name"),
    pytest.param("A=B", "x", ["'A=B'", "'A' set to 'B=x'", "without '='"], id="= in name"),
    pytest.param("=A", "x", ["'=A'", "without '='"], id="name starts with ="),
    pytest.param("A\0B", "x", ["NUL", "name"], id="NUL in name"),
    pytest.param("A", "x\0y", ["'A'", "NUL", "base64"], id="NUL in value"),
    pytest.param("A", None, ["strings"], id="value not a string"),
    pytest.param(1, "x", ["strings"], id="name not a string"),
])
def test_bad_environment_variables_are_refused(name: object, value: object, fragments: list[str]) -> None:
    with pytest.raises(UserErrorException) as caught:
        check_environment_variable(name, value)
    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize("name", ["A", "_x1", "lower", "with.dot", "with-dash", "MY VAR", "ÄÖ"])
def test_names_linux_accepts_are_accepted(name: str) -> None:
    # POSIX-ish, not POSIX-portable: Linux and Docker pass these through, so refusing them would break scripts.
    check_environment_variable(name, "value=with=equals")


# -- command line ---------------------------------------------------------------------------------------------

def test_nul_in_an_argument_is_refused_with_where_it_is() -> None:
    with pytest.raises(UserErrorException, match=r"'a\\x00b'.*NUL.*ScriptRunConfig arguments"):
        check_argument("a\0b")
    check_argument("")  # an empty argument is a valid argv entry


def test_one_argument_at_the_per_string_limit_passes_and_one_byte_more_fails() -> None:
    limit = 10 * MAX_ARG_STRLEN
    check_exec_size(["x" * (MAX_ARG_STRLEN - 1)], {}, limit=limit)  # + its NUL: exactly MAX_ARG_STRLEN
    with pytest.raises(UserErrorException, match=r"131,072 bytes long.*MAX_ARG_STRLEN.*file"):
        check_exec_size(["x" * MAX_ARG_STRLEN], {}, limit=limit)


def test_sizes_are_bytes_not_characters() -> None:
    with pytest.raises(UserErrorException, match="MAX_ARG_STRLEN"):
        check_exec_size(["é" * 70_000], {}, limit=10 * MAX_ARG_STRLEN)  # 70,000 characters, 140,000 bytes


def test_a_variable_counts_as_name_equals_value() -> None:
    value = "x" * (MAX_ARG_STRLEN - len("BIG=") - 1)
    check_exec_size([], {"BIG": value}, limit=10 * MAX_ARG_STRLEN)
    with pytest.raises(UserErrorException, match=r"'BIG'.*NAME=value.*MAX_ARG_STRLEN"):
        check_exec_size([], {"BIG": value + "x"}, limit=10 * MAX_ARG_STRLEN)


def test_the_total_counts_strings_their_nuls_pointers_and_the_reserve() -> None:
    args = ["a" * 99, "b" * 99]
    env = {"K": "v" * 97}  # "K=" + 97 = 99 bytes
    exact = RESERVED_EXEC_BYTES + 3 * (100 + POINTER_SIZE)
    check_exec_size(args, env, limit=exact)
    with pytest.raises(UserErrorException) as caught:
        check_exec_size(args, env, limit=exact - 1)
    message = str(caught.value)
    assert f"{exact:,} bytes" in message and "Argument list too long" in message and "ARG_MAX" in message
    assert "file in source_directory" in message


def test_the_total_names_its_largest_part() -> None:
    with pytest.raises(UserErrorException, match=r"largest part is environment variable 'HUGE'"):
        check_exec_size(["x" * 10], {"HUGE": "y" * 5000, "SMALL": "z"}, limit=RESERVED_EXEC_BYTES + 1000)


def test_inherited_variables_count_once_and_overridden_ones_not_at_all() -> None:
    inherited = {"HOME": "h" * 5000, "OVERRIDDEN": "o" * 5000}
    own = {"OVERRIDDEN": "1"}
    base = RESERVED_EXEC_BYTES + len("OVERRIDDEN=1") + 1 + POINTER_SIZE
    home = len("HOME=") + 5000 + 1 + POINTER_SIZE
    check_exec_size([], own, inherited, limit=base + home)
    with pytest.raises(UserErrorException, match=f"counting {home:,} bytes of this machine's own environment"):
        check_exec_size([], own, inherited, limit=base + home - 1)


def test_text_the_operating_system_cannot_encode_is_refused() -> None:
    with pytest.raises(UserErrorException, match="cannot be encoded"):
        check_exec_size(["\ud800"], {}, limit=10 * MAX_ARG_STRLEN)


def test_arg_max_is_the_kernels_figure_capped_as_the_kernel_caps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_ARG_STRLEN <= arg_max() <= validation.KERNEL_ARG_CAP
    monkeypatch.setattr(validation.os, "sysconf", lambda name: 2**40)  # an unlimited stack
    assert arg_max() == validation.KERNEL_ARG_CAP

    def unsupported(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(validation.os, "sysconf", unsupported)
    assert arg_max() == MAX_ARG_STRLEN


def test_check_job_counts_this_machines_environment_only_for_a_local_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMLTRAIN_TEST_PADDING", "p" * 100_000)
    monkeypatch.setattr(validation, "arg_max", lambda: RESERVED_EXEC_BYTES + 50_000)
    check_job(["{python}", "train.py"], {"A": "1"}, inherits_host_environment=False)
    with pytest.raises(UserErrorException, match="this machine's own environment"):
        check_job(["{python}", "train.py"], {"A": "1"}, inherits_host_environment=True)


def test_check_job_refuses_names_and_nul_before_sizes() -> None:
    with pytest.raises(UserErrorException, match="empty name"):
        check_job(["x" * 10 * MAX_ARG_STRLEN], {"": "v"}, inherits_host_environment=False)
    with pytest.raises(UserErrorException, match="NUL"):
        check_job(["a\0", "x" * 10 * MAX_ARG_STRLEN], {}, inherits_host_environment=False)


# -- tags and properties --------------------------------------------------------------------------------------

def test_tags_come_back_as_stored_strings() -> None:
    assert check_tags({"a": 1, "b": None, "c": "x"}) == {"a": "1", "b": "", "c": "x"}


@pytest.mark.parametrize(("tags", "fragments"), [
    pytest.param({"k" * 101: "v"}, ["Tag key", "101 characters", "at most 100"], id="key too long"),
    pytest.param({"": "v"}, ["Tag key", "non-empty"], id="empty key"),
    pytest.param({3: "v"}, ["Tag key", "non-empty string"], id="key not a string"),
    pytest.param({"notes": "x" * 1001}, ["Tag 'notes'", "1001 characters", "at most 1000", "upload_file"],
                 id="value too long"),
    pytest.param({f"t{i}": "v" for i in range(51)}, ["51 tag keys", "at most 50", "JSON"], id="too many"),
    pytest.param(["a"], ["dict", "list"], id="not a dict"),
])
def test_bad_tags_are_refused(tags: object, fragments: list[str]) -> None:
    with pytest.raises(UserErrorException) as caught:
        check_tags(tags)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_limits_are_inclusive() -> None:
    check_tags({"k" * 100: "x" * 1000})
    check_tags({f"t{i}": "v" for i in range(50)})


def test_the_count_includes_the_runs_tags_but_not_twice() -> None:
    existing = {f"t{i}": "v" for i in range(49)}
    check_tags({"t0": "new", "extra": "v"}, existing)  # 50 keys: t0 is already there
    with pytest.raises(UserErrorException, match="set_tags would give the run 51 tag keys"):
        check_tags({"extra": "v", "more": "v"}, existing)


def test_properties_say_property() -> None:
    with pytest.raises(UserErrorException, match="Property 'config' has a value"):
        check_properties({"config": "x" * 1001})
    with pytest.raises(UserErrorException, match="add_properties would give the run 51 property keys"):
        check_properties({"p": "v"}, {f"q{i}": "v" for i in range(50)})


# -- where tags are written: host, job, ingest ----------------------------------------------------------------

def _store(path: Path) -> Store:
    store = Store(path)
    with store.write() as db:
        db.execute("INSERT INTO experiments (name, id, created) VALUES ('exp', 'e-id', 0)")
        db.execute("INSERT INTO runs (run_id, experiment, number, status, target, definition, created) "
                   "VALUES (?, 'exp', 1, 'Running', 'local', '{}', 0)", (RUN,))
    return store


def _row(store: Store) -> tuple[dict[str, str], dict[str, str]]:
    row = store.query_one("SELECT tags, properties FROM runs WHERE run_id = ?", (RUN,))
    return loads(row["tags"], {}), loads(row["properties"], {})


def test_host_side_refusals_write_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path / "workspace.db")
    set_tags_in_store(store, RUN, {f"t{i}": "v" for i in range(50)})
    with pytest.raises(UserErrorException, match="51 tag keys"):
        set_tags_in_store(store, RUN, {"one_more": "v"})
    with pytest.raises(UserErrorException, match="at most 1000"):
        add_properties_in_store(store, RUN, {"ok": "1", "big": "x" * 20_000_000})
    tags, properties = _row(store)
    assert len(tags) == 50 and "one_more" not in tags and properties == {}


def test_the_job_refuses_before_writing_an_event(tmp_path: Path) -> None:
    ctx = JobContext(RUN, str(tmp_path / "run" / "tracking"), str(tmp_path / "run" / "wd"))
    with pytest.raises(MetricValueError, match="Tag 'notes'"):
        ctx.set_tags({"good": "1", "notes": "x" * 20_000_000})
    with pytest.raises(MetricValueError, match="Tag key"):
        ctx.tag("k" * 101, "v")
    with pytest.raises(MetricValueError, match="Property key"):
        ctx.add_properties({"fine": "1", "p" * 101: "v"})
    assert (tmp_path / "run" / "tracking" / "events.jsonl").read_text() == ""


def test_ingest_skips_an_event_over_the_limits(tmp_path: Path) -> None:
    # Events written by something other than our runtime still cannot put an oversized tag in the store.
    store = _store(tmp_path / "workspace.db")
    events = tmp_path / "events.jsonl"
    lines = [{"op": "tag", "key": "notes", "value": "x" * 5000}, {"op": "tag", "key": "ok", "value": "1"}]
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.warns(UserWarning, match="at most 1000"):
        assert ingest_events(store, RUN, events) == 1
    assert _row(store)[0] == {"ok": "1"}

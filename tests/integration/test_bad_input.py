"""Bad input, table-driven: each case gets a clear error naming the problem and the fix, and the store is
left exactly as it was (no run, environment, model or compute half-written)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from jupyter_amltrain.core import Environment, Experiment, Model, Run, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import AmlCompute, ComputeTarget
from jupyter_amltrain.core.conda_dependencies import CondaDependencies
from jupyter_amltrain.core.runconfig import DockerConfiguration, RunConfiguration
from jupyter_amltrain.engine.runs.validation import arg_max
from jupyter_amltrain.exceptions import AzureMLException

TABLES = ("environments", "computes", "runs", "metrics", "models", "run_status_history")
# Experiment(ws, name) creates the experiment on construction, as v1 does: that row is not a half-written submission.


def _state(ws: Workspace) -> dict[str, Any]:
    store = ws._local.store
    counts = {t: store.query_one(f"SELECT COUNT(*) FROM {t}")[0] for t in TABLES}
    files = sorted(str(p.relative_to(ws._local.root)) for sub in ("runs", "models", "snapshots")
                   for p in (ws._local.root / sub).rglob("*"))
    # A refused tag or property would change a run row, not a count.
    rows = [tuple(r) for r in store.query("SELECT run_id, tags, properties, warnings FROM runs ORDER BY run_id")]
    return {"counts": counts, "files": files, "rows": rows}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _src(project: Path, **kwargs: Any) -> ScriptRunConfig:
    _write(project / "src" / "train.py", "print('hi')\n")
    run_config = RunConfiguration()
    run_config.environment.python.user_managed_dependencies = True
    return ScriptRunConfig(source_directory=str(project / "src"), **{"script": "train.py",
                                                                       "run_config": run_config, **kwargs})


def _completed_run(ws: Workspace, project: Path) -> Run:
    run = Experiment(ws, "exp").submit(_src(project))
    run.wait_for_completion()
    return run


def _sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)


def case_missing_script(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_src(p, script="trian.py"))


def case_missing_source_directory(ws: Workspace, p: Path) -> None:
    src = _src(p)
    src.source_directory = str(p / "nope")
    Experiment(ws, "exp").submit(src)


def case_script_escapes_source_directory(ws: Workspace, p: Path) -> None:
    _write(p / "outside.py", "print(1)\n")
    Experiment(ws, "exp").submit(_src(p, script="../outside.py"))


def case_invalid_experiment_name(ws: Workspace, p: Path) -> None:
    Experiment(ws, "bad name with spaces")


def case_experiment_name_traversal(ws: Workspace, p: Path) -> None:
    Experiment(ws, "../../etc")


def case_invalid_workspace_name(ws: Workspace, p: Path) -> None:
    Workspace.get("no spaces allowed!")


def case_config_json_missing(ws: Workspace, p: Path) -> None:
    Workspace.from_config(path="/")


def case_config_json_malformed(ws: Workspace, p: Path) -> None:
    Workspace.from_config(path=str(_write(p / "broken" / "config.json", "{not json")))


def case_unknown_compute(ws: Workspace, p: Path) -> None:
    ComputeTarget(workspace=ws, name="no-such-cluster")


def case_submit_to_unknown_compute(ws: Workspace, p: Path) -> None:
    src = _src(p)
    src.run_config.target = "no-such-cluster"
    Experiment(ws, "exp").submit(src)


def case_reserved_compute_name(ws: Workspace, p: Path) -> None:
    ComputeTarget.create(ws, "local", AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=1))


def case_invalid_compute_name(ws: Workspace, p: Path) -> None:
    ComputeTarget.create(ws, "bad/name", AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=1))


def case_min_nodes_above_max(ws: Workspace, p: Path) -> None:
    AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", min_nodes=3, max_nodes=1)


def case_unknown_vm_size(ws: Workspace, p: Path) -> None:
    ComputeTarget.create(ws, "c1", AmlCompute.provisioning_configuration(vm_size="Standard_XYZ99", max_nodes=1))


def case_gpu_ids_that_do_not_exist(ws: Workspace, p: Path) -> None:
    ComputeTarget.create(ws, "c2", AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=1,
                                                                         gpu_ids=[7]))


def case_malformed_conda_yaml(ws: Workspace, p: Path) -> None:
    Environment.from_conda_specification("env", str(_write(p / "env.yml", "dependencies: [unclosed\n")))


def case_conda_yaml_wrong_structure(ws: Workspace, p: Path) -> None:
    Environment.from_conda_specification("env", str(_write(p / "env.yml", "dependencies: 42\n"))).register(ws)


def case_reserved_environment_name(ws: Workspace, p: Path) -> None:
    Environment("AzureML-Minimal").register(ws)


def case_environment_not_found(ws: Workspace, p: Path) -> None:
    Environment.get(ws, "never-registered")


def case_command_and_script(ws: Workspace, p: Path) -> None:
    ScriptRunConfig(source_directory=str(p), script="train.py", command=["python", "train.py"])


def case_interpreter_path_missing(ws: Workspace, p: Path) -> None:
    src = _src(p)
    src.run_config.environment.python.interpreter_path = "/opt/nowhere/bin/python"
    Experiment(ws, "exp").submit(src)


def case_conda_only_package(ws: Workspace, p: Path) -> None:
    src = _src(p)
    env = src.run_config.environment
    env.python.user_managed_dependencies = False
    env.python.conda_dependencies = CondaDependencies.create(conda_packages=["cudatoolkit=11.3"])
    Experiment(ws, "exp").submit(src)


def case_snapshot_over_size_limit(ws: Workspace, p: Path) -> None:
    src = _src(p)
    _sparse(p / "src" / "data" / "big.bin", 301 * 1024 * 1024)
    Experiment(ws, "exp").submit(src)


def case_snapshot_over_file_limit(ws: Workspace, p: Path) -> None:
    src = _src(p)
    for i in range(2001):
        _write(p / "src" / "many" / f"f{i}.txt", "x")
    Experiment(ws, "exp").submit(src)


def case_metric_value_too_big(ws: Workspace, p: Path) -> None:
    _completed_run(ws, p)
    before = _state(ws)
    run = next(Experiment(ws, "exp").get_runs())
    try:
        run.log("huge", 2**70)
    finally:
        assert _state(ws) == before


def case_metric_table_ragged(ws: Workspace, p: Path) -> None:
    run = _completed_run(ws, p)
    before = _state(ws)
    try:
        run.log_table("t", {"a": [1, 2], "b": [1]})
    finally:
        assert _state(ws) == before


def case_download_outside_folder(ws: Workspace, p: Path) -> None:
    run = _completed_run(ws, p)
    run.download_files(prefix="user_logs", output_directory=str(p / "dl"), output_paths=["../../escape.txt"])


def case_download_unknown_file(ws: Workspace, p: Path) -> None:
    _completed_run(ws, p).download_file("../../workspace.db", str(p / "x"))


def case_model_path_missing(ws: Workspace, p: Path) -> None:
    _completed_run(ws, p).register_model("m", "outputs/never.pkl")


def case_model_name_traversal(ws: Workspace, p: Path) -> None:
    Model.register(ws, str(_write(p / "m.pkl", "x")), "../evil")


def case_model_not_found(ws: Workspace, p: Path) -> None:
    Model(ws, "never-registered")


def case_run_not_found(ws: Workspace, p: Path) -> None:
    Run(Experiment(ws, "exp"), "exp_1_deadbeef")


def case_missing_ca_bundle(ws: Workspace, p: Path) -> None:
    os.environ["AMLTRAIN_CA_BUNDLE"] = str(p / "missing.pem")
    try:
        src = _src(p)
        env = src.run_config.environment
        env.python.user_managed_dependencies = False
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"])
        run = Experiment(ws, "exp").submit(src)
        run.wait_for_completion()
    finally:
        del os.environ["AMLTRAIN_CA_BUNDLE"]


# -- the job's command line and environment variables, refused at submit ---------------------------------------

def _with_variables(p: Path, variables: dict[str, str], **kwargs: Any) -> ScriptRunConfig:
    env = Environment("vars")
    env.python.user_managed_dependencies = True
    env.environment_variables = variables
    _write(p / "src" / "train.py", "print('hi')\n")
    return ScriptRunConfig(source_directory=str(p / "src"), script="train.py", environment=env, **kwargs)


def _pieces(total: int, size: int = 100_000) -> int:
    """How many strings of ``size`` bytes add up to more than ``total``."""
    return total // size + 1


def case_env_var_empty_name(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_with_variables(p, {"": "x"}))


def case_env_var_name_with_equals(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_with_variables(p, {"A=B": "x"}))


def case_run_config_env_var_name_with_equals(ws: Workspace, p: Path) -> None:
    src = _src(p)
    src.run_config.environment_variables = {"=HIDDEN": "1"}
    Experiment(ws, "exp").submit(src)


def case_env_var_name_with_nul(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_with_variables(p, {"MY\0VAR": "x"}))


def case_env_var_value_with_nul(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_with_variables(p, {"TOKEN": "abc\0def"}))


def case_env_var_over_max_arg_strlen(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_with_variables(p, {"BIG": "x" * 200_000}))


def case_env_vars_over_arg_max(ws: Workspace, p: Path) -> None:
    variables = {f"V{i}": "x" * 100_000 for i in range(_pieces(arg_max()))}
    Experiment(ws, "exp").submit(_with_variables(p, variables))


def case_argument_with_nul(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_src(p, arguments=["--name", "a\0b"]))


def case_command_with_nul(ws: Workspace, p: Path) -> None:
    _write(p / "src" / "train.py", "print('hi')\n")
    Experiment(ws, "exp").submit(ScriptRunConfig(source_directory=str(p / "src"),
                                                 command=["python", "train.py", "--x", "1\0"]))


def case_shell_command_with_nul(ws: Workspace, p: Path) -> None:
    _write(p / "src" / "train.py", "print('hi')\n")
    Experiment(ws, "exp").submit(ScriptRunConfig(source_directory=str(p / "src"),
                                                 command="python train.py --x 1\0"))


def case_argument_over_max_arg_strlen(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_src(p, arguments=["--data", "x" * 200_000]))


def case_arguments_over_arg_max(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_src(p, arguments=["x" * 100_000] * _pieces(arg_max())))


def case_arguments_and_variables_together_over_arg_max(ws: Workspace, p: Path) -> None:
    half = _pieces(arg_max()) // 2 + 1  # each half alone fits; together they do not
    variables = {f"V{i}": "x" * 100_000 for i in range(half)}
    Experiment(ws, "exp").submit(_with_variables(p, variables, arguments=["x" * 100_000] * half))


def case_submit_tag_value_too_big(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_src(p), tags={"notes": "x" * 20_000_000})


def case_submit_tag_key_too_long(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_src(p), tags={"k" * 101: "v"})


def case_submit_tag_empty_key(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_src(p), tags={"": "v"})


def case_submit_too_many_tags(ws: Workspace, p: Path) -> None:
    Experiment(ws, "exp").submit(_src(p), tags={f"t{i}": "v" for i in range(51)})


# -- tags, properties and metrics set on a run from the notebook -----------------------------------------------

def _refused_on_completed_run(ws: Workspace, p: Path, action: Callable[[Run], Any]) -> None:
    run = _completed_run(ws, p)
    before = _state(ws)
    try:
        action(run)
    finally:
        assert _state(ws) == before


def case_tag_value_too_big(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.tag("notes", "x" * 20_000_000))


def case_tag_key_too_long(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.tag("k" * 101, "v"))


def case_set_tags_one_bad_writes_none(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.set_tags({"good": "1", "notes": "x" * 1001}))


def case_set_tags_too_many(ws: Workspace, p: Path) -> None:
    run = _completed_run(ws, p)
    run.set_tags({f"t{i}": "v" for i in range(30)})  # fits; 21 more would make 51
    before = _state(ws)
    try:
        run.set_tags({f"u{i}": "v" for i in range(21)})
    finally:
        assert _state(ws) == before


def case_set_tags_not_a_dict(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.set_tags(["a", "b"]))  # type: ignore[arg-type]


def case_property_value_too_big(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.add_properties({"config": "x" * 20_000_000}))


def case_property_key_too_long(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.add_properties({"p" * 101: "v"}))


def case_too_many_properties(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.add_properties({f"p{i}": i for i in range(50)}))


def case_metric_empty_name(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.log("", 1.0))


def case_metric_name_too_long(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.log("m" * 256, 1.0))


def case_metric_list_not_a_list(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.log_list("losses", 0.5))


def case_metric_image_empty_name(ws: Workspace, p: Path) -> None:
    _write(p / "plot.png", "not used")
    _refused_on_completed_run(ws, p, lambda run: run.log_image("", path=str(p / "plot.png")))


def case_metric_row_column_name_too_long(ws: Workspace, p: Path) -> None:
    _refused_on_completed_run(ws, p, lambda run: run.log_row("r", **{"c" * 256: 1}))


# -- the same rules inside the job: the call fails there, before its event is written ---------------------------

def _job(ws: Workspace, p: Path, body: str, check: Callable[[Run], None]) -> None:
    src = _src(p)  # writes a train.py: replace it after
    _write(p / "src" / "train.py", "from jupyter_amltrain.core import Run\nrun = Run.get_context()\n" + body)
    run = Experiment(ws, "exp").submit(src)
    try:
        run.wait_for_completion()
    finally:
        check(run)


def case_job_tag_value_too_big(ws: Workspace, p: Path) -> None:
    def nothing_tagged(run: Run) -> None:
        assert run.get_status() == "Failed"
        assert not {"good", "notes"} & set(run.get_tags())

    _job(ws, p, "run.set_tags({'good': '1', 'notes': 'x' * 20_000_000})\n", nothing_tagged)


def case_job_property_key_too_long(ws: Workspace, p: Path) -> None:
    def no_property(run: Run) -> None:
        assert run.get_status() == "Failed"
        assert not any(key.startswith("pp") for key in run.get_properties())

    _job(ws, p, "run.add_properties({'p' * 101: 'v'})\n", no_property)


def case_job_metric_empty_name(ws: Workspace, p: Path) -> None:
    def no_metric(run: Run) -> None:
        assert run.get_status() == "Failed" and run.get_metrics() == {}

    _job(ws, p, "run.log('', 1.0)\n", no_metric)


CASES: list[tuple[Callable[[Workspace, Path], None], list[str]]] = [
    (case_missing_script, ["trian.py", "did you mean 'train.py'"]),
    (case_missing_source_directory, ["nope", "source_directory"]),
    (case_script_escapes_source_directory, ["outside.py"]),
    (case_invalid_experiment_name, ["Experiment name", "No whitespace"]),
    (case_experiment_name_traversal, ["Experiment name"]),
    (case_invalid_workspace_name, ["Workspace name"]),
    (case_config_json_missing, ["config.json, could not be found"]),
    (case_config_json_malformed, ["not valid JSON", "workspace_name"]),
    (case_unknown_compute, ["ComputeTargetNotFound", "no-such-cluster"]),
    (case_submit_to_unknown_compute, ["no-such-cluster", "ComputeTarget.create"]),
    (case_reserved_compute_name, ["reserved name"]),
    (case_invalid_compute_name, ["bad/name", "letters, digits and hyphens"]),
    (case_min_nodes_above_max, ["min nodes count"]),
    (case_unknown_vm_size, ["Standard_XYZ99", "gpus_per_node"]),
    (case_gpu_ids_that_do_not_exist, ["[7]", "gpu_ids"]),
    (case_malformed_conda_yaml, ["env.yml", "line"]),
    (case_conda_yaml_wrong_structure, ["env.yml", "dependencies"]),
    (case_reserved_environment_name, ["AzureML"]),
    (case_environment_not_found, ["never-registered"]),
    (case_command_and_script, ["command", "script"]),
    (case_interpreter_path_missing, ["/opt/nowhere/bin/python", "user_managed_dependencies"]),
    (case_conda_only_package, ["cudatoolkit", "PyPI"]),
    (case_snapshot_over_size_limit, ["exceeds the limit of 300.0 MB", "big.bin", ".amlignore"]),
    (case_snapshot_over_file_limit, ["exceeds the file limit of 2000", "many"]),
    (case_metric_value_too_big, ["huge", "64"]),
    (case_metric_table_ragged, ["a", "b"]),
    (case_download_outside_folder, ["outside"]),
    (case_download_unknown_file, ["workspace.db", "get_file_names"]),
    (case_model_path_missing, ["outputs/never.pkl"]),
    (case_model_name_traversal, ["../evil"]),
    (case_model_not_found, ["never-registered", "register"]),
    (case_run_not_found, ["exp_1_deadbeef", "get_runs"]),
    (case_missing_ca_bundle, ["missing.pem"]),
    (case_env_var_empty_name, ["empty name", "Give it a name"]),
    (case_env_var_name_with_equals, ["'A=B'", "'A' set to 'B=x'", "without '='"]),
    (case_run_config_env_var_name_with_equals, ["'=HIDDEN'", "without '='"]),
    (case_env_var_name_with_nul, ["'MY\\x00VAR'", "NUL", "Remove it from the name"]),
    (case_env_var_value_with_nul, ["'TOKEN'", "NUL", "base64"]),
    (case_env_var_over_max_arg_strlen, ["'BIG'", "MAX_ARG_STRLEN", "131,071", "file"]),
    (case_env_vars_over_arg_max, ["ARG_MAX", "Argument list too long", "environment variable 'V", "file"]),
    (case_argument_with_nul, ["'a\\x00b'", "NUL", "ScriptRunConfig arguments"]),
    (case_command_with_nul, ["'1\\x00'", "NUL"]),
    (case_shell_command_with_nul, ["NUL", "command"]),
    (case_argument_over_max_arg_strlen, ["200,000 bytes", "MAX_ARG_STRLEN", "file"]),
    (case_arguments_over_arg_max, ["ARG_MAX", "Argument list too long", "the argument 'xxx", "file"]),
    (case_arguments_and_variables_together_over_arg_max, ["ARG_MAX", "Argument list too long"]),
    (case_submit_tag_value_too_big, ["Tag 'notes'", "20000000 characters", "at most 1000", "upload_file"]),
    (case_submit_tag_key_too_long, ["Tag key", "101 characters", "at most 100"]),
    (case_submit_tag_empty_key, ["Tag key", "non-empty"]),
    (case_submit_too_many_tags, ["Experiment.submit(tags=...)", "51 tag keys", "at most 50"]),
    (case_tag_value_too_big, ["Tag 'notes'", "at most 1000", "upload_file"]),
    (case_tag_key_too_long, ["Tag key", "at most 100"]),
    (case_set_tags_one_bad_writes_none, ["Tag 'notes'", "1001 characters"]),
    (case_set_tags_too_many, ["set_tags", "51 tag keys", "at most 50", "JSON"]),
    (case_set_tags_not_a_dict, ["set_tags", "dict", "list"]),
    (case_property_value_too_big, ["Property 'config'", "at most 1000"]),
    (case_property_key_too_long, ["Property key", "at most 100"]),
    (case_too_many_properties, ["add_properties", "property keys", "at most 50"]),
    (case_metric_empty_name, ["Metric name", "non-empty"]),
    (case_metric_name_too_long, ["Metric name", "256 characters", "255"]),
    (case_metric_list_not_a_list, ["log_list('losses'", "float"]),
    (case_metric_image_empty_name, ["Metric name", "non-empty"]),
    (case_metric_row_column_name_too_long, ["Column name of metric 'r'", "255"]),
    (case_job_tag_value_too_big, ["Tag 'notes'", "at most 1000"]),
    (case_job_property_key_too_long, ["Property key", "at most 100"]),
    (case_job_metric_empty_name, ["Metric name", "non-empty"]),
]
# These submit a run first (which writes); each checks the store around its own refused call instead.
SUBMITS_A_RUN = {
    case_metric_value_too_big, case_metric_table_ragged, case_download_outside_folder, case_download_unknown_file,
    case_model_path_missing, case_missing_ca_bundle, case_tag_value_too_big, case_tag_key_too_long,
    case_set_tags_one_bad_writes_none, case_set_tags_too_many, case_set_tags_not_a_dict, case_property_value_too_big,
    case_property_key_too_long, case_too_many_properties, case_metric_empty_name, case_metric_name_too_long,
    case_metric_list_not_a_list, case_metric_image_empty_name, case_metric_row_column_name_too_long,
    case_job_tag_value_too_big, case_job_property_key_too_long, case_job_metric_empty_name,
}


@pytest.mark.parametrize(("case", "expected"), CASES, ids=[c.__name__[5:] for c, _ in CASES])
def test_bad_input_is_refused_clearly_and_leaves_nothing(ws: Workspace, project: Path,
                                                         case: Callable[[Workspace, Path], None],
                                                         expected: list[str]) -> None:
    before = _state(ws)
    with pytest.raises(AzureMLException) as caught:
        case(ws, project)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    if case not in SUBMITS_A_RUN:
        assert _state(ws) == before


def test_bad_input_table_is_big_enough() -> None:
    assert len(CASES) >= 50
    assert json.dumps([c.__name__ for c, _ in CASES])


def _docker_env(**docker: Any) -> Environment:
    env = Environment("bad-docker")
    env.python.user_managed_dependencies = True
    for key, value in docker.items():
        setattr(env.docker, key, value)
    return env


DOCKER_CASES: list[tuple[str, Callable[[Any], Environment], list[str]]] = [
    ("dockerfile_fails_to_build",
     lambda reg: _docker_env(base_image=None, base_dockerfile="FROM amltrain/base:bookworm\nRUN exit 3\n"),
     ["RUN exit 3", "20_image_build_log"]),
    ("base_image_does_not_exist",
     lambda reg: _docker_env(base_image="amltrain-test/never-built:1"),
     ["amltrain-test/never-built:1"]),
    ("unreachable_registry",
     lambda reg: _with_registry(_docker_env(base_image="127.0.0.1:9/team/train:1"), "127.0.0.1:9", "user",
                                "unreachable-secret-4f1d9a"),
     ["127.0.0.1:9", "reach"]),
    ("wrong_registry_password",
     lambda reg: _with_registry(_docker_env(base_image=f"{reg.address}/team/train:1"), reg.address,
                                reg.username, "not-the-password-" + reg.password[:4]),
     ["refused the credentials"]),
]


def _with_registry(env: Environment, address: str, username: str, password: str) -> Environment:
    env.docker.base_image_registry.address = address
    env.docker.base_image_registry.username = username
    env.docker.base_image_registry.password = password
    return env


@pytest.mark.docker
@pytest.mark.parametrize(("name", "make_env", "expected"), DOCKER_CASES, ids=[c[0] for c in DOCKER_CASES])
def test_bad_docker_input_fails_the_run_clearly(ws: Workspace, project: Path, private_registry: Any,
                                               name: str, make_env: Callable[[Any], Environment],
                                               expected: list[str]) -> None:
    env = make_env(private_registry)
    _write(project / "src" / "train.py", "print('hi')\n")
    src = ScriptRunConfig(source_directory=str(project / "src"), script="train.py", environment=env,
                          docker_runtime_config=DockerConfiguration(use_docker=True))
    run = Experiment(ws, "bad-docker").submit(src)
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed"
    message = details["error"]["error"]["message"]
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert not docker.from_env().images.list(filters={"label": f"amltrain.hash={run._record().image_hash}"})
    secret = env.docker.base_image_registry.password
    if secret:
        for path in ws._local.root.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), f"password in {path}"

"""The in-job tracker (JobContext), its event file, and the offline protocol (engine/runtime/context.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from jupyter_amltrain.engine.runtime.context import (
    JobContext,
    OfflineContext,
    check_artifact_name,
    data_location,
    get_context,
)
from jupyter_amltrain.engine.runtime.events import EventWriter
from jupyter_amltrain.engine.runtime.values import MetricValueError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def ctx(run_dir: Path) -> JobContext:
    return JobContext("exp_1_abc", str(run_dir / "tracking"), str(run_dir / "wd"))


def events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "tracking" / "events.jsonl").read_text().splitlines()]


def test_from_env_needs_run_id_and_tracking_dir(tmp_path: Path) -> None:
    assert JobContext.from_env({}) is None
    assert JobContext.from_env({"AZUREML_RUN_ID": "r1"}) is None
    ctx = JobContext.from_env({
        "AZUREML_RUN_ID": "r1",
        "AMLTRAIN_TRACKING_DIR": str(tmp_path / "tracking"),
        "AMLTRAIN_RUN_WORKDIR": str(tmp_path / "wd"),
        "AZUREML_ARM_PROJECT_NAME": "exp",
    })
    assert ctx is not None
    assert (ctx.run_id, ctx.experiment_name, ctx.workdir) == ("r1", "exp", str(tmp_path / "wd"))
    assert ctx.uploads_dir == str(tmp_path / "uploads")


def test_get_context_outside_a_job_is_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZUREML_RUN_ID", raising=False)
    assert isinstance(get_context(), OfflineContext)


def test_metric_events(ctx: JobContext, run_dir: Path) -> None:
    ctx.log("loss", 0.5, description="training loss", step=3)
    ctx.log("loss", float("nan"))
    ctx.log_list("curve", [1, 2])
    ctx.log_row("row", "a row", x=1, y="b")
    ctx.log_table("tbl", {"a": [1, 2], "b": [3, 4]})
    got = [(e["kind"], e["name"], e["value"], e["step"], e["description"]) for e in events(run_dir)]
    assert got == [
        ("scalar", "loss", 0.5, 3, "training loss"),
        ("scalar", "loss", "NaN", None, ""),
        ("list", "curve", [1, 2], None, ""),
        ("row", "row", {"x": 1, "y": "b"}, None, "a row"),
        ("table", "tbl", {"a": [1, 2], "b": [3, 4]}, None, ""),
    ]
    assert all(e["op"] == "metric" and isinstance(e["t"], float) for e in events(run_dir))


def test_invalid_values_write_nothing(ctx: JobContext, run_dir: Path) -> None:
    with pytest.raises(MetricValueError, match="64-bit"):
        ctx.log("big", 2**70)
    with pytest.raises(MetricValueError, match="InvalidColumnLength"):
        ctx.log_table("t", {"a": [1], "b": []})
    assert events(run_dir) == []


def test_tags_and_properties(ctx: JobContext, run_dir: Path) -> None:
    ctx.tag("quick")
    ctx.set_tags({"lr": 0.1, "opt": "adam"})
    ctx.add_properties({"framework": "torch"})
    assert [(e["op"], e["key"], e["value"]) for e in events(run_dir)] == [
        ("tag", "quick", ""), ("tag", "lr", "0.1"), ("tag", "opt", "adam"), ("property", "framework", "torch")
    ]


def test_upload_file_places_outputs_in_workdir_and_others_in_uploads(ctx: JobContext, run_dir: Path,
                                                                    tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights")
    assert ctx.upload_file("outputs/model.bin", str(src)) == "outputs/model.bin"
    assert ctx.upload_file("./extra//notes.txt", io.StringIO("hello")) == "extra/notes.txt"
    ctx.upload_file("logs/raw.bin", io.BytesIO(b"\x00\x01"))
    assert (run_dir / "wd" / "outputs" / "model.bin").read_bytes() == b"weights"
    assert (run_dir / "uploads" / "extra" / "notes.txt").read_text() == "hello"
    assert (run_dir / "wd" / "logs" / "raw.bin").read_bytes() == b"\x00\x01"
    assert [(e["name"], e["source"]) for e in events(run_dir)] == [
        ("outputs/model.bin", "wd/outputs/model.bin"),
        ("extra/notes.txt", "uploads/extra/notes.txt"),
        ("logs/raw.bin", "wd/logs/raw.bin"),
    ]


def test_upload_of_a_file_already_in_place_keeps_it(ctx: JobContext, run_dir: Path) -> None:
    target = run_dir / "wd" / "outputs" / "a.txt"
    target.parent.mkdir(parents=True)
    target.write_text("same")
    ctx.upload_file("outputs/a.txt", str(target))
    assert target.read_text() == "same"
    assert events(run_dir)[0]["name"] == "outputs/a.txt"


@pytest.mark.parametrize(("name", "message"), [
    ("/etc/passwd", "is absolute"),
    ("../escape.txt", "contains '..'"),
    ("outputs/../../x", "contains '..'"),
    ("", "non-empty"),
    ("./", "names no file"),
])
def test_unsafe_artifact_names_are_refused(ctx: JobContext, name: str, message: str, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_text("x")
    with pytest.raises(MetricValueError, match=message):
        ctx.upload_file(name, str(src))


def test_upload_of_missing_file_says_so(ctx: JobContext) -> None:
    with pytest.raises(MetricValueError, match="no such file"):
        ctx.upload_file("outputs/x", "does/not/exist")


def test_upload_folder(ctx: JobContext, run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    assert ctx.upload_folder("outputs/ckpt", str(folder)) == ["outputs/ckpt/a.txt", "outputs/ckpt/sub/b.txt"]
    assert (run_dir / "wd" / "outputs" / "ckpt" / "sub" / "b.txt").read_text() == "b"


def test_log_image_from_path(ctx: JobContext, run_dir: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("outputs").mkdir()
    Path("outputs/cm.png").write_bytes(PNG)
    location = ctx.log_image("confusion", path="outputs/cm.png", description="cm")
    assert location == "aml://artifactId/ExperimentRun/dcid.exp_1_abc/outputs/cm.png"
    assert (run_dir / "wd" / "outputs" / "cm.png").read_bytes() == PNG
    file_event, metric = events(run_dir)
    assert file_event == {"op": "file", "name": "outputs/cm.png", "source": "wd/outputs/cm.png"}
    assert (metric["kind"], metric["name"], metric["value"]) == ("image", "confusion", location)


def test_log_image_outside_the_workdir_keeps_the_file_name(ctx: JobContext, run_dir: Path, tmp_path: Path) -> None:
    image = tmp_path / "elsewhere" / "plot.png"
    image.parent.mkdir()
    image.write_bytes(PNG)
    assert ctx.log_image("p", path=str(image)).endswith("dcid.exp_1_abc/plot.png")
    assert (run_dir / "uploads" / "plot.png").exists()


def test_log_image_refuses_non_images_and_bad_arguments(ctx: JobContext, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(MetricValueError, match="MalformedArgument"):
        ctx.log_image("i", path=str(text))
    with pytest.raises(MetricValueError, match=r"TwoInvalidArgument.*got both"):
        ctx.log_image("i", path=str(text), plot=object())
    with pytest.raises(MetricValueError, match=r"TwoInvalidArgument.*got neither"):
        ctx.log_image("i")
    with pytest.raises(MetricValueError, match=r"ArgumentInvalid.*matplotlib"):
        ctx.log_image("i", plot=object())


class FakeFigure:
    def savefig(self, fname: Any, format: str = "png") -> None:
        assert format == "png"
        fname.write(PNG)


def test_log_image_from_a_plot(ctx: JobContext, run_dir: Path) -> None:
    first = ctx.log_image("fig", plot=FakeFigure())
    second = ctx.log_image("fig", plot=FakeFigure())
    assert first != second  # two plots in the same second do not overwrite each other
    for location in (first, second):
        artifact = location.split("dcid.exp_1_abc/", 1)[1]
        assert artifact.startswith("fig_") and artifact.endswith(".png")
        assert (run_dir / "uploads" / artifact).read_bytes() == PNG


def test_log_image_with_matplotlib(ctx: JobContext, run_dir: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.plot([1, 2, 3])
    artifact = ctx.log_image("mpl", plot=plt).split("dcid.exp_1_abc/", 1)[1]
    assert (run_dir / "uploads" / artifact).read_bytes().startswith(b"\x89PNG")


def test_check_artifact_name_normalizes() -> None:
    assert check_artifact_name("outputs//a/./b.txt") == "outputs/a/b.txt"
    assert data_location("r", "outputs/x.png") == "aml://artifactId/ExperimentRun/dcid.r/outputs/x.png"


def test_event_writer_refuses_nan_and_use_after_close(tmp_path: Path) -> None:
    writer = EventWriter(tmp_path / "e" / "events.jsonl")
    with pytest.raises(ValueError):
        writer.write({"op": "metric", "value": float("nan")})
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.tag("k", "v")
    assert (tmp_path / "e" / "events.jsonl").read_text() == ""


def test_offline_protocol(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = OfflineContext()
    run.log("accuracy", 0.9)
    run.log_list("curve", [1, 2])
    run.log_row("row", x=1)
    run.log_table("tbl", {"a": [1]})
    run.log_image("img", path="outputs/p.png")
    run.upload_file("outputs/m.pkl", "m.pkl")
    run.tag("k", "v")
    run.flush()
    assert capsys.readouterr().out == (
        "Attempted to log scalar metric accuracy:\n0.9\n"
        "Attempted to log list metric curve:\n[1, 2]\n"
        "Attempted to log row metric row:\n{'x': 1}\n"
        "Attempted to log table metric tbl:\n{'a': [1]}\n"
        "Attempted to log image metric img:\noutputs/p.png\n"
        "Attempted to track file outputs/m.pkl at m.pkl\n"
        "Attempted to tag k with v\n"
    )
    assert list(tmp_path.iterdir()) == []  # nothing stored

"""GPU sampler cost: CPU time per sample, here and, whenever one is available, on a machine with real GPUs.

Two figures: ``telemetry.sample_gpus()``, the one-shot reading (NVML initialised and shut down per call),
and the per-run sampler of the supervisor (``runs.system_sampler.SystemSampler``: NVML opened once, the
job's CPU and memory from ``/proc`` or its cgroup, a store write every 5 samples as at its 1 s default),
measured with ``time.thread_time`` over 200 samples. On a host without NVML both take the no-GPU path,
which is reported as such. The baseline is ``nvidia-smi --query-gpu`` (the CPU time of one call, its own
process included) where it exists; elsewhere, the one-second sampling period, so the ratio is the share
of a core that sampling every second takes (W&B and MLflow sample every 10 s).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from typing import Any

from bench.measure import Options, Result, main_for
from bench.sandbox import isolated_workspace

SAMPLES = 200
FLUSH_EVERY = 5  # samples between store writes: FLUSH_SECONDS (5 s) at the 1 s default interval
PERIOD_S = 1.0
NVIDIA_SMI_QUERY = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used,temperature.gpu,power.draw",
                    "--format=csv,noheader,nounits"]


def cpu_per_call(fn: Any, calls: int) -> float:
    """CPU seconds of this thread per call of ``fn``."""
    started = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - started) / calls


def nvidia_smi_cpu(calls: int = 10) -> float | None:
    """CPU seconds per ``nvidia-smi`` query, the child process's own time included; None without it."""
    if shutil.which("nvidia-smi") is None:
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.process_time()
    for _ in range(calls):
        subprocess.run(NVIDIA_SMI_QUERY, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (children + time.process_time() - started) / calls


def _system_sampler_cpu(gpu_uuids: dict[int, str]) -> tuple[float | None, str]:
    """CPU seconds per sample of the per-run sampler, or None with the reason it is not in this tree."""
    try:
        from jupyter_amltrain.core.workspace import engine_workspace
        from jupyter_amltrain.engine.compute.usage import ProcessTreeUsage
        from jupyter_amltrain.engine.runs import records
        from jupyter_amltrain.engine.runs.system_sampler import SystemSampler
    except ImportError as exc:
        return None, f"the per-run sampler (issue #3) is not in this tree ({exc})"
    with isolated_workspace("gpu-sampler") as sandbox:
        store = engine_workspace(sandbox.ws).store
        record = records.create_run(store, experiment="gpu-sampler", target="local", definition={},
                                    snapshot_id=None, properties={}, tags={}, warnings=[])
        sampler = SystemSampler(store, record.run_id, interval=PERIOD_S, gpu_uuids=gpu_uuids,
                                usage=ProcessTreeUsage(os.getpid()), control=lambda _: None)
        started = time.thread_time()
        for index in range(1, SAMPLES + 1):
            sampler.sample()
            if index % FLUSH_EVERY == 0:
                sampler.flush()
        per_sample = (time.thread_time() - started) / SAMPLES
        sampler.stop()
        stored = store.query_one("SELECT COUNT(*) FROM system_metrics WHERE run_id = ?", (record.run_id,))
    if not stored or stored[0] == 0:
        raise RuntimeError("the sampler stored no readings: the benchmark would time nothing")
    return per_sample, f"{stored[0]} readings stored"


def run(options: Options) -> list[Result]:
    from jupyter_amltrain.engine.compute.gpus import detect_gpus
    from jupyter_amltrain.engine.compute.telemetry import sample_gpus

    calls = 20 if options.quick else SAMPLES
    gpus = detect_gpus()
    sample_gpus()  # the first call imports pynvml: a one-time cost, not a per-sample one
    one_shot = cpu_per_call(sample_gpus, calls)
    smi = nvidia_smi_cpu()
    baseline, baseline_value = (("nvidia-smi query", smi * 1000) if smi is not None
                                else (f"{PERIOD_S:g} s sampling period", PERIOD_S * 1000))
    where = (f"{len(gpus)} GPU(s) via NVML: {', '.join(g.name for g in gpus)}" if gpus
             else "no GPU visible to NVML here: this is the no-GPU path (nvmlInit fails, nothing is read)")
    pending = [] if gpus else ["The figure on a machine with real GPUs is pending: none was available to this "
                               "run. Run `python -m bench.gpu_sampler` there to fill it in."]
    results = [Result("gpu_sampler_sample_gpus", one_shot * 1000, "ms CPU", baseline, baseline_value,
                      details={"calls": calls, "gpus": [g.name for g in gpus], "nvidia_smi_ms": smi and smi * 1000},
                      notes=[where, *pending])]
    per_sample, about = _system_sampler_cpu({gpu.index: gpu.uuid for gpu in gpus})
    if per_sample is None:
        results[0].notes.append(f"Not measured: {about}.")
        return results
    results.append(Result(
        "gpu_sampler_per_run", per_sample * 1000, "ms CPU", baseline, baseline_value,
        details={"samples": SAMPLES, "flush_every": FLUSH_EVERY, "stored": about,
                 "core_share_at_1s": per_sample / PERIOD_S},
        notes=[f"GPU readings of {len(gpus)} GPU(s), CPU and memory of a process tree, a store write every "
               f"{FLUSH_EVERY} samples ({about}): {100 * per_sample / PERIOD_S:.3f}% of a core at one sample "
               "per second."],
    ))
    return results


if __name__ == "__main__":
    sys.exit(main_for(run, __doc__))

"""Benchmark a .tflite model: init, first invoke, warm-up, steady-state latency, energy.

>>> from edgesmith.runtime.bench import benchmark
>>> result = benchmark("model.tflite", threads=4, runs=200, log_path="bench.jsonl")
>>> sorted(result["summary"]["latency_ms"])
['max', 'mean', 'min', 'p50', 'p90', 'p99', 'std']
>>> 0 < result["summary"]["latency_ms"]["p50"] <= result["summary"]["latency_ms"]["p99"]
True

The timed section of each run is split in three: ``pre`` (quantize and copy
the inputs in, plus decoding and resizing when the input is an image file),
``invoke`` (the interpreter alone, which is what the latency statistics
describe, as LiteRT's benchmark_model does) and ``post`` (copy out and
dequantize). Energy is measured over the steady-state window only.
"""

from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path

import numpy as np

from .energy import energy_summary, open_meter
from .errors import InputError, SensorError
from .logs import LATENCY_STATS, LogWriter, utc_now
from .metadata import edgesmith_version, read_metadata
from .model import Model
from .sysinfo import cpu_snapshot, device_info, peak_rss_mb, throttled
from .tflite_file import graph_macs

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")  # what PIL reads


def benchmark(model_path, *, threads: int | None = None, runs: int = 100, warmup: int = 10,
              input: str = "random",  # noqa: A002 - mirrors the CLI option
              energy: str = "auto", energy_root: str = "/", profile: dict | None = None, log_path=None,
              backend: str = "auto", tool: str = "edgesmith-bench", progress=None) -> dict:
    """Run the model ``warmup`` + ``runs`` times and return ``{"header", "summary"}``.

    Args:
        input: ``"random"``, a ``.npy``/``.npz`` file, or an image file.
        energy: ``auto``, ``none``, ``rapl``, ``hwmon``, ``pi5``, ``battery``,
            ``csv:FILE`` or ``estimate`` (needs ``profile``).
        profile: a device profile dict (see :mod:`edgesmith.profiles`), used
            by ``estimate`` and recorded in the header.
        log_path: append JSONL records here (see docs/log-schema.md).
        progress: called as ``progress(phase, done, total)``.
    """
    if runs < 1 or warmup < 0:
        raise InputError(f"runs must be >= 1 and warmup >= 0 (got runs={runs}, warmup={warmup})")
    path = Path(model_path)
    meter = open_meter(energy, root=energy_root, profile=profile)
    cpu_start = cpu_snapshot(root=energy_root)
    model = Model(path, threads=threads, backend=backend)
    pre, post = _run_steps(model, input)
    header = header_record(model, path, tool, threads, runs, warmup, input, energy, profile)
    log = LogWriter(log_path) if log_path else None
    write = log.write if log else (lambda record: None)
    try:
        write(header)
        warm = _timed_runs(pre, model.invoke, post, max(warmup, 1), "warmup", write, progress)
        if meter is not None:
            meter.start()
        steady = _timed_runs(pre, model.invoke, post, runs, "steady", write, progress)
        reading, reason = stop_meter(meter, energy)
        summary = summary_record(model, header, warm, steady, reading, reason, cpu_start, energy_root)
        write(summary)
    finally:
        if log is not None:
            log.close()
    return {"header": header, "summary": summary}


def alternating_p50s(paths: dict, rounds: int, *, runs: int = 100, warmup: int = 10, threads: int | None = 1,
                     progress=None) -> dict:
    """``{name: [p50 in ms of each round]}``: each round benchmarks every model of ``paths`` (``{name: .tflite}``)
    once, in turn, so a busy machine's noise falls on all of them alike; compare medians, or per-round ratios."""
    notify = progress or (lambda stage, done, total: None)
    p50s = {name: [] for name in paths}
    for index in range(rounds):
        notify("benchmark", index, rounds)
        for name, path in paths.items():
            summary = benchmark(path, runs=runs, warmup=warmup, energy="none", threads=threads)["summary"]
            p50s[name].append(summary["latency_ms"]["p50"])
    notify("benchmark", rounds, rounds)
    return p50s


def _run_steps(model: Model, source: str):
    """The ``pre`` and ``post`` callables for one timed run."""
    if Path(str(source)).suffix.lower() in IMAGE_SUFFIXES:
        from .classifier import Classifier, open_image

        classifier = Classifier(model)
        image = open_image(source)
        model.prepare(classifier.preprocess(image))
        return (lambda: model.set_inputs([classifier.preprocess(image)])), model.get_outputs
    arrays = model.prepare(load_inputs(model, source))
    return (lambda: model.set_inputs(arrays)), model.get_outputs


def load_inputs(model: Model, source: str):
    """Benchmark inputs: seeded random values, or arrays from a .npy/.npz file."""
    if source == "random":
        rng = np.random.default_rng(0)
        return [_random_input(spec, rng) for spec in model.inputs]
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{source}: no such input file (use random, a .npy/.npz file or an image)")
    if path.suffix == ".npz":
        with np.load(path) as archive:
            arrays = {name: archive[name] for name in archive.files}
        return arrays if len(model.inputs) > 1 else _with_batch(model.inputs[0], next(iter(arrays.values())))
    if path.suffix != ".npy":
        raise InputError(f"{source}: unsupported input file type (use .npy, .npz or an image)")
    return _with_batch(model.inputs[0], np.load(path))


def _with_batch(spec, array: np.ndarray) -> np.ndarray:
    """Accept one sample without its batch axis."""
    return array[None] if array.ndim == len(spec.shape) - 1 else array


def _random_input(spec, rng) -> np.ndarray:
    shape = [d if d > 0 else 1 for d in spec.shape]
    if spec.dtype.kind == "f" or spec.quantized:
        return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    if spec.dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(0, 100, shape).astype(spec.dtype)


def _timed_runs(pre, invoke, post, count: int, phase: str, write, progress) -> list:
    """Time ``count`` runs; return [(pre_ms, invoke_ms, post_ms), ...]."""
    clock = time.perf_counter
    timings = []
    for i in range(count):
        wall, t0 = time.time(), clock()
        pre()
        t1 = clock()
        invoke()
        t2 = clock()
        post()
        t3 = clock()
        pre_ms, invoke_ms, post_ms = (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3
        timings.append((pre_ms, invoke_ms, post_ms))
        write({"type": "run", "i": i, "phase": phase, "t": wall, "pre_ms": pre_ms, "invoke_ms": invoke_ms,
               "post_ms": post_ms})
        if progress is not None:
            progress(phase, i + 1, count)
    return timings


def latency_stats(values_ms) -> dict:
    """min/mean/p50/p90/p99/max/std (population) of a list of milliseconds."""
    values = np.asarray(values_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    stats = (values.min(), values.mean(), p50, p90, p99, values.max(), values.std())
    return {name: float(value) for name, value in zip(LATENCY_STATS, stats)}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def header_record(model, path, tool, threads, runs, warmup, source, energy, profile) -> dict:
    """The log's ``header`` record for a session with ``model`` (shared with the Pi example)."""
    metadata = read_metadata(path)
    macs = (metadata or {}).get("macs") or graph_macs(path)
    device = device_info()
    device["profile"] = (profile or {}).get("name")
    return {
        "type": "header",
        "time": utc_now(),
        "tool": tool,
        "tool_version": edgesmith_version(),
        "model": {"path": str(path), "sha256": file_sha256(path), "size_bytes": path.stat().st_size,
                  "macs": macs, "metadata": metadata},
        "device": device,
        "runtime": {"backend": model.backend, "threads": threads, "delegate": "xnnpack",
                    "python": platform.python_version()},
        "config": {"runs": runs, "warmup": warmup, "input": str(source), "energy": energy},
    }


def stop_meter(meter, spec: str):
    """Stop ``meter``: ``(reading, None)``, or ``(None, why)`` when there is no meter or it failed
    at the end (a CSV log not covering the window, say)."""
    if meter is None:
        return None, ("energy measurement disabled (--energy none)" if spec == "none" else
                      "no energy meter found on this device (tried pi5, hwmon, rapl, battery)")
    try:
        return meter.stop(), None
    except SensorError as error:
        return None, str(error)


def summary_record(model, header, warm, steady, reading, reason, cpu_start, root) -> dict:
    """The log's ``summary`` record from warm-up and steady ``(pre, invoke, post)`` timings."""
    cpu_end = cpu_snapshot(root=root)
    pre, invoke, post = (list(column) for column in zip(*steady))
    latency = latency_stats(invoke)
    macs = header["model"]["macs"]
    warm_invoke = [t[1] for t in warm]
    return {
        "type": "summary",
        "runs": len(steady),
        "init_ms": model.init_ms,
        "first_invoke_ms": warm_invoke[0],
        "warmup_ms": {"n": len(warm_invoke), "mean": float(np.mean(warm_invoke)), "max": float(np.max(warm_invoke))},
        "latency_ms": latency,
        "pre_ms": latency_stats(pre),
        "post_ms": latency_stats(post),
        "throughput_ips": 1000.0 / latency["mean"] if latency["mean"] > 0 else None,
        "peak_rss_mb": peak_rss_mb(),
        "cpu": {"temp_c_start": cpu_start.get("temp_c"), "temp_c_end": cpu_end.get("temp_c"),
                "freq_mhz_start": cpu_start.get("freq_mhz"), "freq_mhz_end": cpu_end.get("freq_mhz"),
                "throttled": throttled(cpu_start, cpu_end)},
        "macs": macs,
        "gmacs_per_s": (macs / (latency["p50"] * 1e6)) if macs and latency["p50"] > 0 else None,
        "energy": energy_summary(reading, len(steady), reason),
    }

"""edgesmith bench on real models: statistics, the JSONL log, energy, inputs and errors."""

import json

import numpy as np
import pytest
from PIL import Image

from edgesmith.runtime import InputError, write_metadata
from edgesmith.runtime.bench import benchmark, latency_stats
from edgesmith.runtime.logs import read_log
from edgesmith.runtime.tflite_file import graph_macs


def test_summary_and_log_follow_the_schema(tflite_models, tmp_path):
    log = tmp_path / "bench.jsonl"
    result = benchmark(tflite_models["float"], runs=30, warmup=3, energy="none", log_path=log)
    records = read_log(log)  # validates every line
    kinds = [r["type"] for r in records]
    assert kinds == ["header"] + ["run"] * 33 + ["summary"]
    steady = [r["invoke_ms"] for r in records if r["type"] == "run" and r["phase"] == "steady"]
    summary = result["summary"]
    assert {**summary, "schema": records[-1]["schema"]} == records[-1]
    assert summary["runs"] == 30
    assert summary["latency_ms"] == pytest.approx(latency_stats(steady))
    lat = summary["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert summary["first_invoke_ms"] == records[1]["invoke_ms"]
    assert summary["energy"] == {"available": False, "reason": "energy measurement disabled (--energy none)"}
    assert summary["macs"] == graph_macs(tflite_models["float"]) > 0
    assert summary["gmacs_per_s"] == pytest.approx(summary["macs"] / (lat["p50"] * 1e6))
    assert summary["peak_rss_mb"] > 10


def test_statistics_use_linear_percentiles():
    stats = latency_stats([1.0, 2.0, 3.0, 4.0, 10.0])
    assert stats["p50"] == 3.0 and stats["p90"] == pytest.approx(7.6) and stats["mean"] == 4.0
    assert stats["std"] == pytest.approx(np.std([1, 2, 3, 4, 10]))


def test_estimated_energy_is_marked(tflite_models):
    profile = {"name": "test-board", "cores": 4, "idle_w": 2.0, "active_w": 6.0}
    energy = benchmark(tflite_models["float"], runs=50, warmup=1, energy="estimate", profile=profile)["summary"]["energy"]
    assert energy["available"] and energy["estimated"] is True
    assert energy["meter"] == "estimate:test-board"
    # at least the idle draw over the window, at most full active power
    per_run_s = energy["seconds"] / 50
    assert 2.0 * per_run_s * 1000 <= energy["mj_per_inference"] <= 6.0 * per_run_s * 1000 * 1.5


def test_inputs_from_npy_and_image(tflite_models, tmp_path):
    sample = tflite_models["samples"][0]
    np.save(tmp_path / "one.npy", sample)  # no batch axis: added
    assert benchmark(tflite_models["float"], runs=3, warmup=0, energy="none", input=str(tmp_path / "one.npy"))
    labelled = write_metadata(tflite_models["int8"], {"labels": list("abcd")}, tmp_path / "l.tflite")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "img.png")
    result = benchmark(labelled, runs=3, warmup=0, energy="none", input=str(tmp_path / "img.png"))
    assert result["summary"]["pre_ms"]["p50"] > 0


def test_bad_inputs(tflite_models, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(InputError, match=r"expected shape \[\?,16,16,3\]"):
        benchmark(tflite_models["float"], runs=1, energy="none", input=str(tmp_path / "wrong.npy"))
    with pytest.raises(InputError, match="no such input file"):
        benchmark(tflite_models["float"], runs=1, energy="none", input=str(tmp_path / "nope.npy"))
    with pytest.raises(InputError, match="runs must be"):
        benchmark(tflite_models["float"], runs=0, energy="none")

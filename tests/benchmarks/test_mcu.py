"""benchmarks/mcu.py --architectures at a tiny size: a row measured in TFLite Micro (or a one-line refusal, never
a crash), and a table that gives every row, whatever its outcome, the same columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist.npz"


@pytest.fixture(scope="module")
def benchmark(load_benchmark):
    return load_benchmark("mcu")


@pytest.mark.slow  # trains a Conv1D model (one epoch on 300 images) and converts it: about 15 s
def test_a_trained_architecture_is_measured_in_tflm(benchmark, tmp_path):
    if not MNIST.is_file():
        pytest.skip(f"{MNIST} is not present")
    benchmark.main(["--architectures", "kws-conv1d", "--recipes", "mcu-int8", "--train-samples", "300",
                    "--test-samples", "50", "--source-epochs", "1", "--out", str(tmp_path), "--json"])
    result = json.loads((tmp_path / "results.json").read_text())
    (row,) = result["rows"]
    assert (row["model"], row["recipe"]) == ("kws-conv1d", "mcu-int8") and "crash" not in row, row
    assert "refused" not in row, row["refused"]
    assert row["accuracy"]["samples"] == 50 and row["accuracy"]["top1_agreement"] >= 0.9
    assert row["source_accuracy"] > 0.2  # 10 classes: above chance after one epoch
    assert row["flash"] > row["model_bytes"] > 0 and row["arena_smallest"] > 0
    assert row["not_compressed"].startswith("nothing to compress")  # plain int8: too many values per kernel
    assert row["flash_vs_mcu_int8"] == 1.0
    table = benchmark.markdown_table(result["rows"])
    assert "| kws-conv1d | mcu-int8 | 22,218 |" in table


def test_every_outcome_is_one_table_row_with_every_column(benchmark):
    memory = {"model_bytes": 900, "flash": 1000, "arena_recorded": 40, "arena_smallest": 48, "arena": 48,
              "fits": ["a"], "profiles": 2}
    accuracy = {"tflm_accuracy": 0.88, "reference_accuracy": 0.88, "top1_agreement": 1.0, "outputs_differing": 0,
                "samples": 10}
    measured = {"params": 1234, "source_accuracy": 0.9, "accuracy": accuracy}
    rows = [
        {"model": "m", "recipe": "mcu-int8", **measured, **memory, "not_compressed": "nothing to compress: why"},
        {"model": "m", "recipe": "small", **measured, **memory, "flash_vs_mcu_int8": 0.5, "compression": {
            "before": memory, "after": {**memory, "flash": 500, "arena": 400, "fits": []}, "flash_ratio": 0.5,
            "check": {"samples": 10, "inputs": "data", "identical": True}, "tensors": 2}},
        {"model": "m", "recipe": "r", "refused": "ConversionError: a | b"},
        {"model": "m", "recipe": "c", "crash": "KeyError: 'x'"},
    ]
    lines = benchmark.markdown_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert {line.count(" | ") for line in lines[2:]} == {len(benchmark.HEADER) - 1}
    assert "88.00 % (-2.00 pt)" in lines[2] and "40 / 48 B" in lines[2] and "1/2: a" in lines[2]
    assert "500 B (0.500x), identical on 10 data | 400 B | none | 0.500x" in lines[3]
    assert "refused: ConversionError: a / b" in lines[4] and "CRASH: KeyError: 'x'" in lines[5]
